"""Make the registry's `easyeditor 0.0.1.dev0` importable and runnable on a modern stack.

Owns every work-around EasyEdit needs, and nothing else:

* Its package ``__init__`` imports dozens of packages that only its multimodal and trainer code
  uses (timm, cv2, hydra, openai, ...).  Imports *made from easyeditor modules* of a package that
  is not installed get an inert placeholder module; anyone else importing the same name still
  sees it missing (transformers probes ``torchvision`` and would crash on a placeholder).
* It hard-codes ``f"cuda:{hparams.device}"``.  Its source is rewritten to ``f"{hparams.device}"``
  as it is imported, so ``device`` may be ``"cpu"`` or ``"cuda:1"``.  No bytecode is written and
  nothing in site-packages changes.
* transformers >= 4.56 moved three helpers out of ``modeling_utils`` into ``pytorch_utils``, and 5.x removed
  ``find_pruneable_heads_and_indices`` altogether.  Only the multimodal Q-Former imports them: its import is
  rewritten to take each from wherever this transformers keeps it, or a stand-in that raises when called.
* MEMIT's ``compute_z`` reads a transformer block's output as a tuple (``output[0]``).  GPT-2 blocks
  still return one in transformers 4.55, Llama blocks return the hidden-state tensor itself, so
  ``output[0]`` took the first sequence of the batch and MEMIT crashed on Llama models.  Those three
  reads are rewritten to take the tensor out of a tuple only when there is one.
* Half precision and split models: ROME multiplies a left vector in the model's dtype (bfloat16) by a
  float32 right vector, which torch refuses; the rank-one update is made in float32 on the left vector's
  device (``_rank_one``) and added to the weight once, rounding to its dtype once.  The vector ROME and
  MEMIT optimise is added to the hidden state on that state's device, and the editor does not move a
  model accelerate has placed (``hf_device_map``) onto one device.
* MEMIT's ``layer_stats`` reads the context length from three config names and raises NotImplementedError for a
  model whose config has none (Bloom, ALiBi): it reads ``models.context_length`` then (at most 2048; it only sizes
  the statistics' batches, which editguard computes itself).
* KN knows the module names of GPT-2, GPT-J and Llama by name only; it is handed the model's own
  (``layouts.Layout.kn_attributes``) right after it is built.
* MEND's training edit runs the model through higher's monkey-patched copy, whose ``ModuleList`` cannot be
  rebuilt from a slice; transformers >= 4.48 loops over ``self.layers[: num_hidden_layers]`` (Llama, Qwen2).
  The patched copy's lists are made to slice into a plain ``ModuleList`` of the patched layers (``_sliceable``).
* MEND's ``apply_to_model`` computes a label mask and then passes the unmasked target ids: in a batch of
  targets of different lengths the padding became a target.  Padding is masked with -100, as its own
  ``label_tok`` and its trainer's datasets do.
* Importing it configures the root logger, and it seeds the global RNGs; both are undone.

``import_easyeditor()`` is the only entry point.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import random
import sys
import types
import warnings
from collections.abc import Iterator
from typing import Any

EASYEDIT = "easyeditor"
_REWRITES = ((b"cuda:{", b"{"),)
_BLOCK_OUTPUT_HELPER = b"""

def _block_output(output):  # added by editguard: a block returns a tuple (GPT-2) or a tensor (Llama)
    return output[0] if isinstance(output, tuple) else output
"""
_RANK_ONE_HELPER = b"""

def _rank_one(left, right):  # added by editguard: float32, on the left vector's device (bfloat16 left, float32 right)
    return left.float().unsqueeze(1) @ right.float().to(left.device).unsqueeze(0)
"""
_QFORMER_HELPERS = b"""

def _editguard_helper(name):  # added by editguard: transformers moved these (4.56) and removed some (5.x)
    import importlib
    for home in ("transformers.pytorch_utils", "transformers.modeling_utils"):
        found = getattr(importlib.import_module(home), name, None)
        if found is not None:
            return found
    def removed(*args, **kwargs):
        raise NotImplementedError(f"transformers no longer has {name}, which easyeditor's Q-Former needs")
    return removed

apply_chunking_to_forward = _editguard_helper("apply_chunking_to_forward")
find_pruneable_heads_and_indices = _editguard_helper("find_pruneable_heads_and_indices")
prune_linear_layer = _editguard_helper("prune_linear_layer")
"""
_POSITIONS_HELPER = b"""

def _editguard_positions(model):  # added by editguard: a config naming no context length (Bloom: ALiBi)
    from editguard.models import context_length

    return min(context_length(model.config, None), 2048)
"""
_KN_MODULES_HELPER = b"""

def _editguard_modules(kn, hparams):  # added by editguard: the model's own module names, found by introspection
    for name, value in getattr(hparams, "editguard_kn_attributes", {}).items():
        setattr(kn, name, value)
"""
_SLICEABLE_HELPER = b"""

def _sliceable(fmodule):  # added by editguard: transformers >= 4.48 slices self.layers[:n]; higher's patched lists cannot
    import torch
    for module in fmodule.modules():
        if isinstance(module, torch.nn.ModuleList) and "__getitem__" not in vars(type(module)):
            def getitem(self, index, _item=torch.nn.ModuleList.__getitem__):
                if isinstance(index, slice):
                    return torch.nn.ModuleList(list(self._modules.values())[index])
                return _item(self, index)
            type(module).__getitem__ = getitem  # each patched module has a class of its own
    return fmodule
"""
# Rewrites for one module each, applied after _REWRITES: (old, new) pairs, then text appended to the module.
_MODULE_REWRITES: dict[str, tuple[tuple[tuple[bytes, bytes], ...], bytes]] = {
    "easyeditor.models.memit.compute_z": (
        (
            (b"cur_out[0][0, lookup_idxs[0]]", b"_block_output(cur_out)[0, lookup_idxs[0]]"),
            (b"cur_out[0][i, idx, :] += delta", b"_block_output(cur_out)[i, idx, :] += delta.to(_block_output(cur_out).device)"),
            (
                b"tr[hparams.layer_module_tmp.format(loss_layer)].output[0][",
                b"_block_output(tr[hparams.layer_module_tmp.format(loss_layer)].output)[",
            ),
        ),
        _BLOCK_OUTPUT_HELPER,
    ),
    "easyeditor.models.rome.rome_main": (
        (
            (b"upd_matrix = delta_u.unsqueeze(1) @ delta_v.unsqueeze(0)", b"upd_matrix = _rank_one(delta_u, delta_v)"),
            (b"upd_matrix = left_vector.unsqueeze(1) @ right_vector.unsqueeze(0)", b"upd_matrix = _rank_one(left_vector, right_vector)"),
        ),
        _RANK_ONE_HELPER,
    ),
    "easyeditor.models.kn.kn_main": (
        ((b'        device=f"{hparams.device}",\n    )\n', b'        device=f"{hparams.device}",\n    )\n    _editguard_modules(kn, hparams)\n'),),
        _KN_MODULES_HELPER,
    ),
    "easyeditor.trainer.blip2_models.Qformer": (
        (
            (
                b"    PreTrainedModel,\n    apply_chunking_to_forward,\n    find_pruneable_heads_and_indices,\n    prune_linear_layer,\n)",
                b"    PreTrainedModel,\n)",
            ),
        ),
        _QFORMER_HELPERS,
    ),
    "easyeditor.models.rome.layer_stats": (
        (
            (
                b"        else:\n            raise NotImplementedError\n        if batch_tokens is not None",
                b"        else:\n            maxlen = _editguard_positions(model)\n        if batch_tokens is not None",
            ),
            (
                b"    else:\n        raise NotImplementedError\n    if batch_tokens is None:",
                b"    else:\n        npos = _editguard_positions(model)\n    if batch_tokens is None:",
            ),
        ),
        _POSITIONS_HELPER,
    ),
    "easyeditor.editors.editor": (
        (
            (
                b"if not hparams.model_parallel and hasattr(hparams, 'device'):",
                b"if not hparams.model_parallel and hasattr(hparams, 'device') and not getattr(self.model, 'hf_device_map', None):",
            ),
        ),
        b"",
    ),
    "easyeditor.models.rome.compute_v": (
        ((b"cur_out[i, idx, :] += delta", b"cur_out[i, idx, :] += delta.to(cur_out.device)"),),
        b"",
    ),
    "easyeditor.trainer.algs.MEND": (
        ((b"edited_model = monkeypatch(edited_model, in_place=True)", b"edited_model = _sliceable(monkeypatch(edited_model, in_place=True))"),),
        _SLICEABLE_HELPER,
    ),
    "easyeditor.models.mend.mend_main": (
        (
            (
                b"labels=target_tok['input_ids'],",
                b"labels=target_tok['input_ids'].masked_fill(target_tok['attention_mask'] == 0, -100),",
            ),
        ),
        b"",
    ),
}


class EasyEditUnavailable(ImportError):
    """easyeditor is not installed or cannot be imported."""


def _is_easyedit_name(name: str | None) -> bool:
    return name is not None and (name == EASYEDIT or name.startswith(EASYEDIT + "."))


def _importing_module_name() -> str | None:
    """Name of the module whose code triggered the import in progress (skipping importlib)."""
    frame: types.FrameType | None = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not (name.startswith("importlib") or name.startswith("_frozen_importlib") or name == __name__):
            return name
        frame = frame.f_back
    return None


class _RewritingLoader(importlib.machinery.SourceFileLoader):
    """Compiles easyeditor source as ``rewritten_source`` gives it: device-neutral, with the module fixes above."""

    def get_code(self, fullname: str) -> types.CodeType:
        source = rewritten_source(fullname, self.get_data(self.get_filename(fullname)))
        with warnings.catch_warnings():  # its docstrings hold invalid escapes; not the user's concern
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return compile(source, self.get_filename(fullname), "exec", dont_inherit=True)


def rewritten_source(fullname: str, source: bytes) -> bytes:
    """The source of easyeditor module ``fullname`` as editguard runs it."""
    for old, new in _REWRITES:
        source = source.replace(old, new)
    pairs, appended = _MODULE_REWRITES.get(fullname, ((), b""))
    for old, new in pairs:
        source = source.replace(old, new)
    return source + appended


class _Missing(type):
    """Metaclass of placeholder objects: any attribute is another placeholder; using one raises."""

    def __getattr__(cls, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _missing(f"{cls.__qualname__}.{attr}")

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise EasyEditUnavailable(
            f"easyeditor needs the optional package for {cls.__qualname__!r} here; "
            f"install it to use this EasyEdit feature"
        )


def _missing(qualname: str) -> type:
    return _Missing(qualname.rsplit(".", 1)[-1], (), {"__qualname__": qualname})


class _PlaceholderModule(types.ModuleType):
    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _missing(f"{self.__name__}.{attr}")


class _PlaceholderLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _PlaceholderModule(spec.name)
        module.__path__ = []  # a package, so `from missing.sub import x` works too
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


class _EasyEditFinder(importlib.abc.MetaPathFinder):
    """Routes easyeditor's own modules through the rewriting loader and stubs its missing imports."""

    def __init__(self) -> None:
        self.placeholders: set[str] = set()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if _is_easyedit_name(fullname):
            return self._easyedit_spec(fullname, path)
        if not _is_easyedit_name(_importing_module_name()):
            return None
        top = fullname.partition(".")[0]
        if top in self.placeholders or importlib.machinery.PathFinder.find_spec(top) is None:
            self.placeholders.add(top)
            return importlib.machinery.ModuleSpec(fullname, _PlaceholderLoader(), is_package=True)
        return None

    def _easyedit_spec(self, fullname: str, path: Any) -> importlib.machinery.ModuleSpec | None:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        spec.loader = _RewritingLoader(fullname, str(spec.origin))
        return spec


_FINDER = _EasyEditFinder()


@contextlib.contextmanager
def _preserved_global_state() -> Iterator[None]:
    """Undo what importing easyeditor does to the process: root logging and RNG seeds."""
    import numpy as np
    import torch

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    states = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])


def _quiet(module: types.ModuleType) -> None:
    """easyeditor logs every step at INFO and adds a logs/run.log file handler per editor."""
    logger = logging.getLogger(EASYEDIT)
    logger.setLevel(logging.WARNING)
    editor = sys.modules.get(f"{EASYEDIT}.editors.editor")
    if editor is not None:
        setattr(editor, "make_logs", lambda: None)


def _drop_placeholders_from_sys_modules() -> None:
    """Placeholders stay bound inside easyeditor but vanish for everyone else."""
    for name in list(sys.modules):
        if name.partition(".")[0] in _FINDER.placeholders:
            del sys.modules[name]


def import_easyeditor() -> types.ModuleType:
    """Import easyeditor with the work-arounds above; idempotent."""
    if EASYEDIT in sys.modules:
        return sys.modules[EASYEDIT]
    if importlib.machinery.PathFinder.find_spec(EASYEDIT) is None:
        raise EasyEditUnavailable(
            "the editor, easyeditor, is not installed; install it with: "
            "pip install 'editguard[editing]' && pip install --no-deps easyeditor==0.0.1.dev0"
        )
    import transformers  # noqa: F401  (resolve transformers' own optional-package probes first)

    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    with _preserved_global_state():
        module = importlib.import_module(EASYEDIT)
    _drop_placeholders_from_sys_modules()
    _quiet(module)
    return module


def placeholder_names() -> frozenset[str]:
    """Top-level packages easyeditor imported that are not installed (stubbed for it alone)."""
    return frozenset(_FINDER.placeholders)
