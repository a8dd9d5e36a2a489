"""The scoring seam: what every backend offers, and what one run's backends offer together.

A ``Backend`` scores requests on one model (the base, or the base with one edit): batched, list in and list out,
as ``evaluator.Evaluator`` documents the requests (where whitespace and special tokens go).  ``Backends`` holds a
run's backends of one kind: the backend of the base or of base + a delta, what the output cache keys their results
by beside the model's identity, and ``close`` for what the kind started (a vLLM server).  The kinds are a table
(``table.BACKENDS``); nothing outside it tests a backend's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class BackendError(RuntimeError):
    """A backend could not score (an engine that does not answer, a server that died): could not check, never a score.
    The message names where and what to check."""


class Backend(Protocol):
    """Scores requests on one model."""

    tokenizer: Any  # the base model's tokenizer: prompts are rendered (chat templates) and tokenised with it

    def loglikelihood_with_lengths(self, requests: Sequence[Any]) -> list[tuple[float, int]]:
        """(sum of the continuation's log-probabilities, its token count) per ``LoglikelihoodRequest``, in order."""
        ...

    def generate(self, requests: Sequence[Any]) -> list[str]:
        """Greedy continuation of each ``GenerationRequest``, in order, cut at its first stop string."""
        ...

    def truncated(self, requests: Sequence[Any]) -> list[bool]:
        """Which requests are longer than the model's context and are cut from the left when scored."""
        ...

    def identity(self) -> dict[str, Any]:
        """What decides this backend's numbers beside the model's own identity (kind, version, numerics, endpoint)."""
        ...

    def close(self) -> None:
        """Let go of what this backend holds (nothing, for one in process)."""
        ...


class Backends(Protocol):
    """One run's backends of one kind."""

    def backend(self, delta: Any = None, *, max_batch: int | None = None) -> Backend:
        """The backend of the base model (``delta=None``) or of base + ``delta`` (``max_batch``: rows per pass, where the
        kind batches itself)."""
        ...

    def identity(self) -> dict[str, Any]:
        """What the output cache keys this kind's results by, beside the model's identity and the task."""
        ...

    def explain(self, error: BackendError) -> str:
        """The sentence a ``BackendError`` becomes (a dead server's log, say)."""
        ...

    def close(self) -> None:
        """Stop what the run started; idempotent."""
        ...
