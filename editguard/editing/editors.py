"""The editor seam: how the gate edits, whatever the method.

An editor is a record of ``methods.METHODS`` (ROME, MEMIT, FT, KN and MEND), or a user's own callable
(``user_editor``: ``--editguard-editor module:function``) made into a record of the same shape.  Each record opens an
``EditSession`` on a model: prepared once on entry (covariance statistics, a trained hypernetwork), it turns requests
into weight changes (``apply``: one after another, each on the last; ``apply_batch``: several as one edit), says the
change since entry as a ``WeightDelta`` (``delta``), goes back to the start (``restart``), and leaves the model bit for
bit as it found it on exit.  ``Method.describe`` names the editor, its version and hyper-parameters: the provenance
and the edit cache key.  The modes (``modes``) and the gate's edits stage work through this seam alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from editguard.editing.methods import METHODS, Method, method
from editguard.editing.requests import EditRequest


class EditSession(Protocol):
    def __enter__(self) -> EditSession: ...

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> Any: ...

    def apply(self, requests: Sequence[EditRequest]) -> list[dict[str, Any]]:
        """Edit one request after another, each on the model the last one edited; per request, its metrics."""
        ...

    def apply_batch(self, requests: Sequence[EditRequest]) -> list[dict[str, Any]]:
        """Edit all ``requests`` as one edit of the model as it is now; per request, its metrics."""
        ...

    def delta(self) -> Any:
        """The change since the session opened (``delta.WeightDelta``)."""
        ...

    def restart(self) -> None:
        """Put the model back to how the session found it (and the editor's random state to its start)."""
        ...


def editor_for(name: str) -> Method:
    """The editor of ``name``: a method of the table, or a user's ``module:function`` (``user_editor``)."""
    return method(name)


def open_session(
    model: Any, tokenizer: Any, hparams: dict[str, Any], *, seed: int = 0, cache_dir: Path | None = None,
    model_fingerprint: str | None = None,
) -> EditSession:  # fmt: skip
    """An edit session of the editor ``hparams["alg_name"]`` names."""
    record = editor_for(hparams["alg_name"])
    return record.session(record, model, tokenizer, hparams, seed=seed, cache_dir=cache_dir, model_fingerprint=model_fingerprint)  # type: ignore[no-any-return]


__all__ = ["METHODS", "EditSession", "editor_for", "open_session"]
