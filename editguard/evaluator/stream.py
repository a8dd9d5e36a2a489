"""The rows a generation stream is decoding (``_Rows``: one decoding step of all of them, each row's new token
recorded, the rows kept or joined), when finished rows are worth dropping, and the stop-string check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from editguard.evaluator.kvcache import _select_rows, _stacked, _widened_mask
from editguard.evaluator.requests import _cut, _Prompt
from editguard.stack import cache_from_layers, cache_layers



class Decoder(Protocol):
    """What a stream needs of the evaluator that decodes it."""

    tokenizer: Any

    @property
    def _end_tokens(self) -> frozenset[int]: ...

    def _forward(self, input_ids: Any, attention: Any, *, use_cache: bool = False, past: Any = None, **positions: Any) -> tuple[Any, Any]: ...

    def _next_tokens(self, states: Any) -> Any: ...


@dataclass
class _Rows:
    """The rows a generation stream is decoding, by batch slot: each row's prompt, the tokens it has made and
    whether it has finished; its next token (not yet recorded), attention mask and last position; the key/value cache.

    Each row is laid out as a batch of ``_prompt_rows``: the shared prefix, masked columns, the row's own tokens and
    the ones it has made, so that rows joined from several admissions line up on the right."""

    prompts: list[_Prompt]
    following: Any  # (rows,)
    attention: Any  # (rows, width)
    last: Any  # (rows,)
    cache: Any  # a transformers cache of (rows, kv heads, width, head dim) per layer
    made: list[list[int]] = field(default_factory=list)
    done: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.made = self.made or [[] for _ in self.prompts]
        self.done = self.done or [False] * len(self.prompts)

    def unfinished(self) -> list[int]:
        return [slot for slot, done in enumerate(self.done) if not done]

    def steps_left(self, slots: list[int], max_new_tokens: int) -> int:
        return max(max_new_tokens - len(self.made[slot]) for slot in slots)

    def record(self, max_new_tokens: int, stop: tuple[str, ...], evaluator: Decoder) -> list[tuple[_Prompt, list[int]]]:
        """Append each unfinished row's next token; the rows that finish with it, and their tokens."""
        finished = []
        ends = evaluator._end_tokens
        for slot, token in enumerate(self.following.tolist()):
            if self.done[slot]:
                continue
            made = self.made[slot]
            made.append(token)
            if token in ends or len(made) >= max_new_tokens or (stop and _has_stop(evaluator.tokenizer, made, stop)):
                self.done[slot] = True
                finished.append((self.prompts[slot], made))
        return finished

    def step(self, evaluator: Decoder) -> None:
        """One decoding step of every row: each row's next token from the one just recorded."""
        import torch

        self.attention = torch.cat([self.attention, self.attention.new_ones((len(self.prompts), 1))], dim=1)
        self.last = self.last + 1
        step_at = torch.tensor([self.attention.shape[1] - 1], device=self.attention.device)
        states, self.cache = evaluator._forward(
            self.following[:, None], self.attention, past=self.cache, position_ids=self.last[:, None], cache_position=step_at
        )
        self.following = evaluator._next_tokens(states)

    def select(self, slots: list[int], shared: int) -> _Rows:
        """The given rows alone, without the masked columns after the prefix that all of them have."""
        import torch

        index = torch.tensor(slots, device=self.attention.device)
        attention = self.attention[index]
        pads = int((attention[:, shared:] == 0).sum(dim=1).min())  # every row's pads sit right after the prefix
        if pads:
            attention = torch.cat([attention[:, :shared], attention[:, shared + pads :]], dim=1)
        cache = _select_rows(self.cache, index, shared, pads)
        return _Rows(
            [self.prompts[slot] for slot in slots], self.following[index.to(self.following.device)], attention,
            self.last[index.to(self.last.device)], cache, [self.made[slot] for slot in slots], [self.done[slot] for slot in slots],
        )  # fmt: skip

    @staticmethod
    def stacked(parts: list[_Rows], shared: int) -> _Rows:
        """The parts' rows in one batch, in order, the narrower parts widened by masked columns after the prefix
        (``_stacked``: each part's cache copied once, the chunks of an admission and the rows still decoding alike)."""
        if len(parts) == 1:
            return parts[0]
        import torch

        width = max(part.attention.shape[1] for part in parts)
        return _Rows(
            [prompt for part in parts for prompt in part.prompts], torch.cat([part.following for part in parts]),
            torch.cat([_widened_mask(part.attention, shared, width - part.attention.shape[1]) for part in parts]),
            torch.cat([part.last for part in parts]), cache_from_layers(_stacked([cache_layers(part.cache) for part in parts], shared)),
            [made for part in parts for made in part.made], [done for part in parts for done in part.done],
        )  # fmt: skip


def _worth_compacting(rows: int, kept: int, steps_left: int) -> bool:
    """Drop finished rows when the row-steps saved (finished rows x steps left) reach the rows copied (kept)."""
    return kept < rows and (rows - kept) * steps_left >= kept


def _has_stop(tokenizer: Any, tokens: list[int], stop: tuple[str, ...]) -> bool:
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    return _cut(text, stop) != text  # the rule that cuts the output decides where it ends
