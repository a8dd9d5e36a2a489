"""The editors: one table (``METHODS``) of every method the gate can edit with, by name.

A ``recipes.Method`` record carries all there is to know of one: what it can do (edit several facts in one call,
needs the request's ground truth), default hyper-parameters derived from the model's structure (``recipes``), which
parameters it may change (so that a session can snapshot and restore exactly those), how it edits (``session``:
an ``editors.EditSession``; EasyEdit's ``easyedit.EditRun`` for ROME, MEMIT, FT and KN, ``mend.MendRun`` for MEND)
and what it is (``version``; ``describe`` gives the provenance and the edit cache key's part).  A user's own editor
(``--editguard-editor module:function``) becomes a record of the same shape (``user_editor``).  ``resolve_hparams``
lays an EasyEdit-style YAML file over the defaults; EasyEdit YAML files write ``5e-4`` for floats, which YAML 1.1
reads as a string: EasyEdit converts such strings itself, and so does ``resolve_hparams``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from editguard.editing.recipes import (
    EditError,
    Method,
    _ft_parameters,
    _kept_kn_edit,
    _kn_parameters,
    _layout_defaults,
    _named_rewrites,
    ft_defaults,
    kn_defaults,
    memit_defaults,
    model_layout,
    model_of,
    rome_defaults,
)

__all__ = ["BATCH_METHODS", "METHODS", "EditError", "Method", "hparams_file_keys", "method", "resolve_hparams"]


def _easyedit_session(record: Method, model: Any, tokenizer: Any, hparams: dict[str, Any], **options: Any) -> Any:
    from editguard.editing.easyedit import EditRun

    return EditRun(model, tokenizer, hparams, record=record, **options)


def _mend_session(record: Method, model: Any, tokenizer: Any, hparams: dict[str, Any], **options: Any) -> Any:
    from editguard.editing.mend import MendRun

    return MendRun(model, tokenizer, hparams, **options)


def _easyedit_version() -> str:
    from importlib import metadata

    try:
        return f"easyeditor {metadata.version('easyeditor')}"
    except metadata.PackageNotFoundError:
        return "easyeditor (not installed)"


def _mend_version() -> str:
    from editguard.editing.mend import MEND_FORMAT

    return f"{_easyedit_version()}, editguard MEND format {MEND_FORMAT}"


def _mend_defaults(model: Any) -> dict[str, Any]:
    from editguard.editing.mend import gate_hparams

    return gate_hparams(model_of(model))


def _mend_parameters(model: Any, hparams: dict[str, Any]) -> list[str]:
    return list(hparams["inner_params"])


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method("ROME", _layout_defaults(rome_defaults), _named_rewrites, _easyedit_session, _easyedit_version, hparams_class="ROMEHyperParams"),
        Method("MEMIT", _layout_defaults(memit_defaults), _named_rewrites, _easyedit_session, _easyedit_version, batchable=True,
               hparams_class="MEMITHyperParams"),
        Method("FT", _layout_defaults(ft_defaults), _ft_parameters, _easyedit_session, _easyedit_version, batchable=True,
               hparams_class="FTHyperParams"),
        Method("KN", _layout_defaults(kn_defaults), _kn_parameters, _easyedit_session, _easyedit_version, needs_ground_truth=True,
               hparams_class="KNHyperParams", wrap_apply=_kept_kn_edit),
        Method("MEND", _mend_defaults, _mend_parameters, _mend_session, _mend_version, batchable=True, hparams_class="MENDHyperParams"),
    )
}  # fmt: skip


BATCH_METHODS = tuple(name for name, record in METHODS.items() if record.batchable)


def method(name: str) -> Method:
    """The editor of ``name``: a method of the table, or a user's ``module:function`` (``user_editor``)."""
    if ":" in name:
        from editguard.editing.user_editor import user_editor

        return user_editor(name)
    key = name.upper()
    if key not in METHODS:
        raise EditError(f"unknown edit method {name!r}; choose one of {', '.join(sorted(METHODS))}, or name your own editor as module:function")
    return METHODS[key]


def resolve_hparams(method_name: str, model: Any, hparams_file: Path | None, device: str) -> dict[str, Any]:
    """Defaults for the model (a loaded model, or its config), overridden key by key by an EasyEdit-style YAML file."""
    record = method(method_name)
    try:
        hparams = record.defaults(model)  # read off the model's structure (recipes); a user's editor has none
    except EditError:
        if hparams_file is None:
            raise
        hparams = {}  # a structure editguard cannot read: the file must give every field
    if hparams_file is not None:
        hparams.update(_read_yaml(hparams_file, record.name))
    hparams["device"] = device
    hparams["alg_name"] = record.name
    return hparams


def hparams_file_keys(path: Path, method_name: str) -> set[str]:
    """The names a user's hyper-parameters file sets (EditError when it cannot be read)."""
    return set(_read_yaml(path, method(method_name).name))


_SCIENTIFIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _read_yaml(path: Path, method_name: str) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise EditError(f"hyper-parameters file {str(path)!r} does not exist; check --editguard-hparams")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise EditError(f"hyper-parameters file {str(path)!r} is not valid YAML: {error}") from None
    if not isinstance(values, dict):
        raise EditError(f"hyper-parameters file {str(path)!r} must hold a mapping of names to values")
    named = str(values.get("alg_name", method_name)).upper()
    if named != method_name:
        raise EditError(f"hyper-parameters file {str(path)!r} is for {named}, not {method_name}; fix 'alg_name'")
    values.pop("model_name", None)  # the model is the one editguard loaded, never re-read by EasyEdit
    values.pop("device", None)
    # YAML 1.1 reads 5e-4 as a string; EasyEdit's own loader turns such strings into floats.
    return {key: float(value) if isinstance(value, str) and _SCIENTIFIC.fullmatch(value) else value for key, value in values.items()}
