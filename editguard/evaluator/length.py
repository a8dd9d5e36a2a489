"""Length: a model reads at most ``context`` positions (``models.context_length``: its config's position table or
context; its tokenizer's for a model whose config names none).

A request longer than that is cut from the left, as lm-evaluation-harness does: a context keeps its last tokens
before its continuation, a prompt its last tokens before the new ones.  ``truncated`` says which requests are cut
(the gate counts them in its reports); both models of a comparison read the same cut requests.  A continuation
longer than the whole context is refused: nothing before it could predict it."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from editguard.evaluator.requests import GenerationRequest, LoglikelihoodRequest
from editguard.models import context_length


class Lengths:
    """An evaluator's encodings and the cut of requests longer than the model's context."""

    model: Any
    tokenizer: Any
    _context: int | None  # the context given to the evaluator, if any

    @functools.cached_property
    def context(self) -> int:
        """The most positions the model reads (``models.context_length``), unless given."""
        return self._context or context_length(self.model.config, self.tokenizer)

    def _encoded(self, text: str, special: bool) -> tuple[int, ...]:
        """``text``'s token ids (with the tokenizer's special tokens when ``special``), encoded once per evaluator."""
        key = (text, special)
        if key not in self._encodings:
            self._encodings[key] = tuple(self.tokenizer(text, add_special_tokens=special)["input_ids"])
        return self._encodings[key]

    @functools.cached_property
    def _encodings(self) -> dict[tuple[str, bool], tuple[int, ...]]:
        return {}

    def truncated(self, requests: Sequence[LoglikelihoodRequest | GenerationRequest]) -> list[bool]:
        """Which requests are longer than the model's context and are cut from the left when scored."""
        return [self._overflow(request) > 0 for request in requests]

    def _overflow(self, request: LoglikelihoodRequest | GenerationRequest) -> int:
        """How many tokens a request is longer than the context: the context (or prompt) loses that many on its left."""
        if isinstance(request, GenerationRequest):
            return len(self._encoded(request.prompt, request.add_special_tokens)) + request.max_new_tokens - self.context
        continuation = self._encoded(request.continuation, False)
        if len(continuation) > self.context:
            raise ValueError(
                f"continuation {request.continuation[:60]!r} is {len(continuation):,} tokens, more than the model's "
                f"context of {self.context:,}; nothing before it could predict it"
            )
        return len(self._encoded(request.context, True)) + len(continuation) - 1 - self.context

    def _cut_left(self, tokens: tuple[int, ...], overflow: int) -> tuple[int, ...]:
        """``tokens`` without their first ``overflow`` (at least one token stays)."""
        return tokens[min(max(overflow, 0), len(tokens) - 1) :]
