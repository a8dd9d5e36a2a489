"""Greedy generation: ``generate([GenerationRequest(prompt, max_new_tokens, stop), ...]) -> [str, ...]``.

Prompts are left-padded after their shared prefix (positions follow the attention mask) and decoding uses the
key/value cache.  The evaluator decodes on its own (``_streamed``): a row leaves the batch once it has hit EOS, a
stop string or its token limit, and the next prompts join the rows still decoding once a quarter of the batch is
free (``REFILL_SHARE``), so one long answer does not keep a batch of short ones decoding and batches do not wait
for one another.  Each output is cut at its first stop string.  A model whose generation config asks for more than
argmax (a repetition penalty, say), and every model when ``own_decoding`` is off, decodes through
``model.generate`` instead (``_generation_plan``: each prefix cluster's prompts batched behind its own shared
prefix, filled up to ``GENERATION_BUDGET_FACTOR`` times the token budget); it is also the reference the own
decoding is tested against, output for output."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from editguard.evaluator.batching import GENERATION_BUDGET_FACTOR
from editguard.evaluator.passes import ModelPasses
from editguard.evaluator.prefix import NO_PREFIX, _clustered, _Prefix
from editguard.evaluator.requests import GenerationRequest, _cut, _longest_first, _Prompt, _prompt_index, _prompt_tokens, _prompt_width
from editguard.evaluator.stream import _Rows, _worth_compacting
from editguard.stack import cache_argument, cache_from_layers

# Joined decoding (``_streamed``): the next prompts join the rows still decoding once this share of the room is free.
REFILL_SHARE = 4

# Generation-config fields and the values that leave greedy decoding plain argmax (anything else: generate()).
_GREEDY_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "num_beams": (None, 1), "penalty_alpha": (None,), "dola_layers": (None,), "guidance_scale": (None, 1.0),
    "repetition_penalty": (None, 1.0), "encoder_repetition_penalty": (None, 1.0), "no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,), "sequence_bias": (None,), "min_length": (None, 0), "min_new_tokens": (None, 0),
    "suppress_tokens": (None,), "begin_suppress_tokens": (None,), "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,), "forced_decoder_ids": (None,), "exponential_decay_length_penalty": (None,),
    "watermarking_config": (None,),
}  # fmt: skip


class Generation(ModelPasses):
    """An evaluator's greedy generation: its own streamed decoding, or ``model.generate``."""

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        """Greedy continuation of each prompt, in request order, cut at the first stop string."""
        outputs = [""] * len(requests)
        groups: dict[tuple[int, tuple[str, ...]], list[_Prompt]] = {}
        for index, request in enumerate(requests):
            tokens = self._cut_left(self._encoded(request.prompt, request.add_special_tokens), self._overflow(request))
            groups.setdefault((request.max_new_tokens, request.stop), []).append(_Prompt(index, tokens))
        for (max_new_tokens, stop), members in sorted(groups.items()):
            if self.own_decoding and self._plain_greedy:
                streams = itertools.chain.from_iterable(
                    self._streamed(cluster, max_new_tokens, stop, prefix)
                    for cluster, prefix in _clustered(members, _prompt_tokens, self._forward, self.share_prefix)
                )
                for finished in self._progress(streams, len(members), "generation", len):
                    for item, made in finished:
                        outputs[item.index] = _cut(self.tokenizer.decode(made, skip_special_tokens=True), stop)
                continue
            plan = self._generation_plan(members, max_new_tokens, stop)
            for run, batch in self._progress(plan, len(members), "generation", lambda step: len(step[1])):
                texts = self._with_backoff(run, batch)
                for item, text in zip(batch, texts):
                    outputs[item.index] = _cut(text, stop)
        return outputs

    # ------------------------------------------------------------------ own decoding

    def _streamed(self, prompts: list[_Prompt], max_new_tokens: int, stop: tuple[str, ...], prefix: _Prefix) -> Iterator[list[tuple[_Prompt, list[int]]]]:
        """Greedy decoding of a cluster's prompts as one stream of rows; yields the rows that finish, with their tokens.

        A row is finished at an end-of-sequence token, at its first stop string, or at ``max_new_tokens``.  Rows
        are admitted longest first, as many as the token budget and the row cap allow (``_free_rows``); finished rows
        leave, and once a quarter of the room is free (``REFILL_SHARE``) the next prompts are encoded and join the
        rows still decoding.  Batch after batch, each batch's last long answers would decode a few rows at a time,
        each step reading every weight once; joined, the long answers of several batches share their steps
        (docs/performance.md, "Evaluator design notes").  Each row's tokens are what ``generate`` makes (the same
        forward pass, positions and argmax; a row's keys, values and logits do not depend on the rows beside it or
        on the masked columns between its prefix and its own tokens, as the batch-size tests check).  The host reads
        the new tokens once per step, for the stop check.  On CUDA an out-of-memory error (in a prompt pass or a
        decoding step) halves the token budget and the row cap and starts every row that has not finished again."""
        import torch

        if max_new_tokens < 1:
            yield [(prompt, []) for prompt in prompts]
            return
        shared = len(prefix)
        done: set[int] = set()  # the prompts whose rows have finished (and been yielded), by index
        waiting = _longest_first(prompts)  # as _batches orders them
        while waiting:
            rows: _Rows | None = None
            try:
                while True:
                    kept = rows.unfinished() if rows else []
                    live = [rows.prompts[slot] for slot in kept] if rows else []
                    free = self._free_rows(waiting[0], live, shared, max_new_tokens) if waiting else 0
                    if waiting and (not kept or free >= max(1, (free + len(kept)) // REFILL_SHARE)):
                        admitted, waiting = waiting[:free], waiting[free:]
                        parts = self._admitted(admitted, prefix)
                        finished = [row for part in parts for row in part.record(max_new_tokens, stop, self)]
                        if rows is not None and kept:
                            parts.insert(0, rows.select(kept, shared))
                        rows = None  # the old rows' cache (finished rows included) is let go before the join
                        rows = _Rows.stacked(parts, shared)
                        del parts  # the parts' own caches are let go once joined, not at the next admission
                    elif rows is None or not kept:
                        break
                    else:
                        if len(kept) < len(rows.prompts) and _worth_compacting(len(rows.prompts), len(kept), rows.steps_left(kept, max_new_tokens)):
                            rows = rows.select(kept, shared)
                        rows.step(self)
                        finished = rows.record(max_new_tokens, stop, self)
                    if finished:
                        done.update(prompt.index for prompt, _ in finished)
                        yield finished
            except torch.OutOfMemoryError:
                if self.max_batch <= 1:
                    raise
                torch.cuda.empty_cache()
                self.token_budget = max(1, self.token_budget // 2)
                self.max_batch //= 2
                waiting = _longest_first([prompt for prompt in prompts if prompt.index not in done])

    def _free_rows(self, next_prompt: _Prompt, live: list[_Prompt], shared: int, max_new_tokens: int) -> int:
        """How many prompts may join the ``live`` rows, the next being ``next_prompt``: ``_batches``'s rule for the
        whole batch (rows x (longest prompt after the prefix + new tokens) within the generation budget, at most
        ``max_batch`` rows), and at least one when nothing is live."""
        own = max(len(prompt.tokens) for prompt in [next_prompt, *live]) - shared
        rows = min(self.max_batch, self.token_budget * GENERATION_BUDGET_FACTOR // (own + max_new_tokens))
        return max(rows - len(live), 0 if live else 1)

    def _admitted(self, prompts: list[_Prompt], prefix: _Prefix) -> list[_Rows]:
        """New rows, the prompts encoded in chunks of like width, each row with its first greedy token (not yet recorded):
        one part per chunk, for ``_Rows.stacked``.

        Chunks of like width (``_least_padded``), so that a short prompt's pass is not padded to the batch's longest
        prompt (docs/performance.md, "Evaluator design notes").  Each chunk's rows are laid out as ``_prompt_rows``
        lays out a batch of them alone (the prefix, then each row's own tokens left-padded); a row's keys, values and
        next token depend on its own tokens and positions, not on how much padding its chunk had."""
        import torch

        input_ids, attention = self._prompt_rows(prompts, prefix)
        positions = attention.cumsum(-1) - 1
        positions.masked_fill_(attention == 0, 1)  # as generate() does: pads' own positions are never read
        shared, width = len(prefix), input_ids.shape[1]
        own = attention[:, shared:].sum(dim=1).tolist()  # each row's prompt tokens after the prefix
        parts = []
        for chunk in self._least_padded(list(range(len(prompts))), lambda row: own[row], lambda row: row):
            narrow = max(own[row] for row in chunk)
            index, start = torch.tensor(chunk, device=input_ids.device), width - narrow
            mask = torch.cat([attention[index, :shared], attention[index, start:]], dim=1)  # (chunk, shared + narrow)
            # A cache object from the start: some models (GPT-2) return the legacy tuples when given none.
            past = prefix.cache(len(chunk)) if shared else cache_from_layers(())
            states, cache = self._forward(
                input_ids[index, start:], mask, past=past, use_cache=True, position_ids=positions[index, start:],
                cache_position=torch.arange(shared, shared + narrow, device=input_ids.device),
            )  # fmt: skip
            parts.append(_Rows([prompts[row] for row in chunk], self._next_tokens(states), mask, positions[index, -1], cache))
        return parts

    def _next_tokens(self, states: Any) -> Any:
        """The greedy choice after each row's last position (argmax of float32 logits, as generate() takes it)."""
        import torch

        with torch.inference_mode():
            return self._logits(states[:, -1]).float().argmax(dim=-1)

    @functools.cached_property
    def _end_tokens(self) -> frozenset[int]:
        ends = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if ends is None:
            ends = self.tokenizer.eos_token_id
        return frozenset([] if ends is None else [ends] if isinstance(ends, int) else ends)

    # ------------------------------------------------------------------ through model.generate

    @functools.cached_property
    def _plain_greedy(self) -> bool:
        """Whether ``_streamed`` makes what ``generate`` would: a decoder-only model whose generation config asks for
        nothing beyond greedy argmax (no repetition penalty, banned or forced tokens, minimum length, beams)."""
        config = getattr(self.model, "generation_config", None)
        if config is None or getattr(self.model.config, "is_encoder_decoder", False):
            return False
        return all(getattr(config, name, None) in neutral for name, neutral in _GREEDY_NEUTRAL.items())

    def _generation_plan(
        self, members: list[_Prompt], max_new_tokens: int, stop: tuple[str, ...]
    ) -> Iterator[tuple[Callable[..., list[str]], list[_Prompt]]]:
        """(run, batch) for every batch through ``model.generate``: each prefix cluster's prompts batched behind its own
        shared prefix."""
        for cluster, prefix in _clustered(members, _prompt_tokens, self._forward, self.share_prefix):
            run = functools.partial(self._generate_batch, max_new_tokens=max_new_tokens, stop=stop, prefix=prefix)
            width = functools.partial(_prompt_width, extra=max_new_tokens - len(prefix))
            for batch in self._batches(cluster, width, _prompt_index, budget=self.token_budget * GENERATION_BUDGET_FACTOR):
                yield run, batch

    def _generate_batch(self, batch: list[_Prompt], max_new_tokens: int, stop: tuple[str, ...], prefix: _Prefix = NO_PREFIX) -> list[str]:
        """Greedy outputs of one batch through ``model.generate`` (the reference ``_streamed`` is tested against)."""
        import torch

        input_ids, attention = self._prompt_rows(batch, prefix)
        width = input_ids.shape[1]
        extra: dict[str, Any] = {"stop_strings": list(stop), "tokenizer": self.tokenizer} if stop else {}
        if len(prefix):
            extra[cache_argument(self.model)] = prefix.cache(len(batch))
        with torch.inference_mode():
            generated = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=self._pad_id,
                use_cache=True,
                **extra,
            )
        return self.tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True)
