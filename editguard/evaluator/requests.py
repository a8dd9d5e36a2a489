"""The requests the evaluator answers, the records it groups them into, and the cut at a stop string.

``LoglikelihoodRequest(context, continuation)``: the two are tokenised separately and concatenated, so whitespace
belongs to the continuation (``" positive"``); no special tokens are added beyond what the tokenizer adds to the
context itself.  ``GenerationRequest(prompt, max_new_tokens, stop)``: the prompt is encoded with the tokenizer's
special tokens unless ``add_special_tokens=False`` (a prompt already rendered by a chat template); its output is
cut at the first stop string (``_cut``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoglikelihoodRequest:
    context: str
    continuation: str


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    max_new_tokens: int
    stop: tuple[str, ...] = ()
    add_special_tokens: bool = True


@dataclass(frozen=True)
class _Context:
    """One context and the continuations scored after it (by request index)."""

    tokens: tuple[int, ...]
    continuations: tuple[tuple[int, tuple[int, ...]], ...]
    first: int  # smallest request index, for a deterministic order among equal lengths


@dataclass(frozen=True)
class _Prompt:
    index: int
    tokens: tuple[int, ...]


def _joined_width(context: _Context) -> int:
    """Tokens of a context and its single continuation run as one row (the last token is only predicted)."""
    return len(context.tokens) + len(context.continuations[0][1]) - 1


def _first(context: _Context) -> int:
    return context.first


def _requests_in(batch: list[_Context]) -> int:
    return sum(len(c.continuations) for c in batch)


def _prompt_width(prompt: _Prompt, extra: int) -> int:
    return len(prompt.tokens) + extra  # a generation row grows by up to ``extra`` tokens


def _prompt_index(prompt: _Prompt) -> int:
    return prompt.index


def _prompt_tokens(prompt: _Prompt) -> tuple[int, ...]:
    return prompt.tokens


def _longest_first(prompts: list[_Prompt]) -> list[_Prompt]:
    return sorted(prompts, key=lambda prompt: (-len(prompt.tokens), prompt.index))


def _cut(text: str, stop: tuple[str, ...]) -> str:
    """Text up to the first stop string (generation may run past it inside a batch)."""
    positions = [text.find(marker) for marker in stop if marker and marker in text]
    return text[: min(positions)] if positions else text
