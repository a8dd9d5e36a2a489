"""Start-up checks: every problem that stops the whole gate, found once, before any ability is scored.

Two steps.  ``check_inputs`` looks at what the options name without loading a model: the baselines
folder, the device, the model's files, the edits file or the edited model's delta file (read once: finite,
changing something), and the gated abilities' baseline files (well formed: finite values of the metric's
shape), so a typo costs a second, not a model load.  ``check_loaded`` then loads the base model (once; the
run keeps it) and checks what needs it: the base weights are finite, the edited model fits the base, and
every edit request fits in the model's context.  Each problem is one ``GateProblem`` sentence naming the
option or file (and record and field) and the fix.

What only a test can find stays with the test, as "could not check" for its ability: a baseline that is
missing or stale, data that does not load, an edit that EasyEdit cannot make.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from editguard.errors import GateProblem

if TYPE_CHECKING:
    from editguard.settings import Settings
    from editguard.stages.edits import Edits


def check_start(settings: Settings, edits: Edits, base: Callable[[], Any], abilities: Sequence[str], *, load: bool = True) -> None:
    """``check_inputs``, then (``load``) ``check_loaded``; raises the first ``GateProblem`` found.  ``edits`` is the
    run's edits stage (it keeps what it read), ``base`` loads the base model (once)."""
    check_inputs(settings, edits, abilities, read_edited=load)
    if load:
        check_loaded(settings, edits, base())


def check_inputs(settings: Settings, edits: Edits, abilities: Sequence[str], *, read_edited: bool = True) -> None:
    """What the options name, checked without loading a model.  ``read_edited=False`` (an xdist controller, which
    gates nothing itself) checks the edited model's path only.  Temporaries a killed write left in the model's
    baselines folder are removed here, once."""
    from editguard.models import DeviceError, ModelSourceError, check_source, model_name, resolve_device
    from editguard.stack import UnsupportedStack, check_stack

    try:
        check_stack()
    except UnsupportedStack as error:
        raise GateProblem(str(error)) from None
    check_folder(settings.baselines)
    name = model_name(settings.model)
    check_folder(settings.baselines / name)
    _remove_stale_temporaries(settings.baselines / name)
    try:
        if settings.device.startswith("cuda"):
            resolve_device(settings.device)
        check_source(settings.model)
    except (DeviceError, ModelSourceError) as error:
        raise GateProblem(str(error)) from None
    from editguard.backends import backend_kind

    problem = backend_kind(settings.backend).start_problem(settings)
    if problem:
        raise GateProblem(problem)
    if settings.update_baselines:
        return
    for ability in abilities:
        check_baseline_file(settings, name, ability)
    if settings.edited is not None and read_edited:
        edits.edited_file  # noqa: B018 -- read and checked once; the run keeps it
    elif settings.edited is not None:
        _check_edited_path(settings.edited)
    else:
        edits.located_requests  # noqa: B018 -- read and checked once; the run keeps them
        _check_editor(settings.editor)


def check_loaded(settings: Settings, edits: Edits, base: Any) -> None:
    """What needs the base model: its weights, and the edit against it (the delta fits; the requests fit the context)."""
    check_finite_weights(base)
    if settings.update_baselines:
        return
    if settings.edited is not None:
        edits.variants  # noqa: B018 -- the delta is checked against the base once; the run keeps it
    else:
        edits.check_context()


def _remove_stale_temporaries(folder: Path) -> None:
    from editguard.atomic import remove_stale_temporaries

    if folder.is_dir():
        remove_stale_temporaries(folder)


def _check_editor(spec: str | None) -> None:
    """A user's own editor (``--editguard-editor``) imports and is a callable, before any model loads."""
    if spec is None:
        return
    from editguard.editing.recipes import EditError
    from editguard.editing.user_editor import load_callable

    try:
        load_callable(spec)
    except EditError as error:
        raise GateProblem(str(error)) from None


def _check_edited_path(path: Path) -> None:
    from editguard.editing.delta import DeltaError
    from editguard.editing.external import check_edited_path

    try:
        check_edited_path(path)
    except DeltaError as error:
        raise GateProblem(str(error)) from None


def check_folder(folder: Path) -> None:
    """The baselines folder (or a model's folder in it) is a folder or not there yet, never a file or a link to
    nowhere (which could not be created either)."""
    if folder.is_symlink() and not folder.exists():
        raise GateProblem(
            f"--editguard-baselines: {folder} is a link to {os.readlink(folder)}, which does not exist; create the folder "
            "it points at, or remove the link (the folder is then created)"
        )
    if folder.exists() and not folder.is_dir():
        raise GateProblem(
            f"--editguard-baselines: {folder} is a file, not a folder; point --editguard-baselines at a folder "
            "(it is created when missing), e.g. baselines/"
        )


def check_finite_weights(base: Any) -> None:
    """Refuse a base model with NaN or inf weights: every score of it, edited or not, would be noise."""
    import torch

    for name, tensor in base.model.state_dict().items():
        if tensor.is_floating_point() and tensor.device.type != "meta" and not bool(torch.isfinite(tensor).all()):
            raise GateProblem(
                f"--editguard-model {base.source}: weight {name!r} holds non-finite values (NaN or inf); "
                "the base model is broken, so load or convert it again"
            )


def check_baseline_file(settings: Settings, model: str, ability: str) -> None:
    """A baseline file that is there must be well formed (a missing one is the ability's own problem)."""
    from editguard.baselines import BaselineError, BaselineStore

    try:
        BaselineStore(settings.baselines).read(model, ability, settings.protocol)
    except BaselineError as error:
        raise GateProblem(str(error)) from None
