"""The in-process backend: the Hugging Face model this process loaded, scored by ``evaluator.Evaluator``, with an
edit's weight delta applied in place for each call and reverted exactly afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any

from editguard.stack import output_versions


def numerics(base: Any) -> dict[str, Any]:
    """What decides an in-process model's numbers beside its identity: dtype, device kind, torch and transformers."""
    versions = output_versions()
    return {"dtype": str(base.model.dtype), "device": str(base.device).partition(":")[0], **versions}


class InProcessBackend:
    """``base`` (``models.LoadedModel``), or base + ``delta``; ``max_batch`` rows a pass (None: the device's default)."""

    def __init__(self, base: Any, delta: Any = None, *, max_batch: int | None = None, progress: bool = False):
        self.base, self.delta = base, delta
        self.max_batch, self.progress = max_batch, progress

    @property
    def tokenizer(self) -> Any:
        return self.base.tokenizer

    @cached_property
    def evaluator(self) -> Any:
        from editguard.evaluator import Evaluator

        return Evaluator(self.base.model, self.base.tokenizer, max_batch=self.max_batch, progress=self.progress)

    @contextlib.contextmanager
    def _edited(self) -> Iterator[None]:
        from editguard.editing.delta import applied

        with applied(self.base.model, self.delta) if self.delta is not None else contextlib.nullcontext():
            yield

    def loglikelihood_with_lengths(self, requests: Sequence[Any]) -> list[tuple[float, int]]:
        with self._edited():
            return self.evaluator.loglikelihood_with_lengths(requests)

    def loglikelihood(self, requests: Sequence[Any]) -> list[float]:
        return [total for total, _ in self.loglikelihood_with_lengths(requests)]

    def generate(self, requests: Sequence[Any]) -> list[str]:
        with self._edited():
            return self.evaluator.generate(requests)

    def truncated(self, requests: Sequence[Any]) -> list[bool]:
        return self.evaluator.truncated(requests)

    def greedy_tokens(self, prompt: str, tokens: int) -> list[int]:
        """The first ``tokens`` greedy token ids after ``prompt`` (``model.generate``; the locality property's answer)."""
        import torch

        from editguard.models import input_device

        ids = torch.tensor([list(self.tokenizer(prompt)["input_ids"])], device=input_device(self.base.model))
        with self._edited(), torch.no_grad():
            out = self.base.model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens, do_sample=False, pad_token_id=self.tokenizer.pad_token_id
            )
        return [int(t) for t in out[0, ids.shape[1] :]]

    def token_ranks(self, prompt: str, continuation: list[int]) -> list[int]:
        """For each token of ``continuation`` read after ``prompt``: how many tokens the model ranks above it (0: its
        greedy choice); the locality property's test of an answer kept up to near ties."""
        import torch

        from editguard.models import input_device

        if not continuation:
            return []
        context = list(self.tokenizer(prompt)["input_ids"])
        ids = torch.tensor([context + continuation], device=input_device(self.base.model))
        with self._edited(), torch.no_grad():
            logits = self.base.model(ids).logits[0, len(context) - 1 : -1].float()  # (answer tokens, vocab)
        chosen = logits[torch.arange(len(continuation)), torch.tensor(continuation)]
        return [int(n) for n in (logits > chosen[:, None]).sum(dim=1)]

    def identity(self) -> dict[str, Any]:
        from editguard.evaluator import EVALUATOR_VERSION

        return {"version": EVALUATOR_VERSION, **numerics(self.base)}

    def close(self) -> None:
        return None


class InProcessBackends:
    """The run's in-process backends (``--editguard-backend hf``)."""

    def __init__(self, settings: Any, base: Any, *, progress: bool = False):
        self.settings, self._base, self.progress = settings, base, progress

    def backend(self, delta: Any = None, *, max_batch: int | None = None) -> InProcessBackend:
        batch = max_batch or self.settings.batch_size  # None: the device's default (evaluator.default_max_batch)
        return InProcessBackend(self._base(), delta, max_batch=batch, progress=self.progress and max_batch is None)

    def identity(self) -> dict[str, Any]:
        return InProcessBackend(self._base()).identity()

    def explain(self, error: Exception) -> str:
        return str(error)

    def close(self) -> None:
        return None
