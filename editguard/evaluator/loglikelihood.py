"""Log-likelihood scoring: ``loglikelihood([LoglikelihoodRequest(context, continuation), ...]) -> [float, ...]``.

Requests that share a context (an example's answer choices) share one forward pass of that context.  Contexts are
sorted by length and packed into batches under a token budget (``_least_padded``), right-padded; the vocabulary
head and log-softmax run only at the positions that are read (``_read_head``).  A continuation's first token is
read off the context's last state; longer continuations run their remaining tokens on the context's key/value
cache, with positions that continue each context (``_score_contexts``).  A context with a single continuation (a
text's perplexity, the channel form's passage) runs as one row with it instead, one pass and no cache to copy
(``_score_joined``).  So a score does not depend on the batch it lands in or on the order of the requests."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from editguard import evaluator as package  # names the tests patch on the package (HEAD_POSITIONS)
from editguard.evaluator.kvcache import _select_rows
from editguard.evaluator.passes import ModelPasses
from editguard.evaluator.prefix import NO_PREFIX, _clustered, _Prefix
from editguard.evaluator.requests import LoglikelihoodRequest, _Context, _first, _joined_width, _requests_in

HEAD_POSITIONS = 512  # positions per call of the vocabulary head when scoring (a 49k vocabulary: 100 MB of logits)


class LoglikelihoodScoring(ModelPasses):
    """An evaluator's log-likelihood scoring."""

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        """Sum of log-probabilities of each continuation given its context, in request order."""
        return [total for total, _ in self.loglikelihood_with_lengths(requests)]

    def loglikelihood_with_lengths(self, requests: Sequence[LoglikelihoodRequest]) -> list[tuple[float, int]]:
        """(sum of log-probabilities, number of continuation tokens) per request, in request order."""
        contexts = self._contexts(requests)
        plan = itertools.chain.from_iterable(
            self._loglikelihood_plan(cluster, prefix)
            for cluster, prefix in _clustered(contexts, lambda context: context.tokens, self._forward, self.share_prefix)
        )
        scores = [(0.0, 0)] * len(requests)
        for run, batch in self._progress(plan, len(requests), "log-likelihood", lambda step: _requests_in(step[1])):
            for index, total, length in self._with_backoff(run, batch):
                scores[index] = (total, length)
        return scores

    def _loglikelihood_plan(self, contexts: list[_Context], prefix: _Prefix) -> Iterator[tuple[Callable[..., Any], list[_Context]]]:
        """(run, batch) for every batch of contexts that share ``prefix``: single continuations joined to their
        context in one row, answer choices scored on their context's cache."""
        shared = len(prefix)
        alone = [c for c in contexts if len(c.continuations) == 1]  # a text's perplexity, a channel-form pair
        grouped = [c for c in contexts if len(c.continuations) > 1]  # answer choices after one context
        joined = functools.partial(self._score_joined, prefix=prefix)
        split = functools.partial(self._score_contexts, prefix=prefix)
        yield from ((joined, batch) for batch in self._least_padded(alone, lambda c: _joined_width(c) - shared, _first))
        yield from ((split, batch) for batch in self._least_padded(grouped, lambda c: len(c.tokens) - shared, _first))

    def _contexts(self, requests: Sequence[LoglikelihoodRequest]) -> list[_Context]:
        encoded: dict[str, tuple[int, ...]] = {}
        members: dict[str, list[tuple[int, tuple[int, ...]]]] = {}
        overflow: dict[str, int] = {}
        for index, request in enumerate(requests):
            if request.context not in encoded:
                encoded[request.context] = self._encoded(request.context, True)
                if not encoded[request.context]:
                    raise ValueError(f"context {request.context!r} encodes to no tokens; nothing predicts the continuation")
            continuation = self._encoded(request.continuation, False)
            if not continuation:
                raise ValueError(f"continuation {request.continuation!r} encodes to no tokens")
            overflow[request.context] = max(overflow.get(request.context, 0), self._overflow(request))
            members.setdefault(request.context, []).append((index, continuation))
        return [_Context(self._cut_left(encoded[text], overflow[text]), tuple(group), group[0][0]) for text, group in members.items()]

    def _score_contexts(self, batch: list[_Context], prefix: _Prefix = NO_PREFIX) -> list[tuple[int, float, int]]:
        """(request index, log-likelihood, continuation length) for every continuation in the batch.

        With a shared ``prefix``, only each context's tokens after it are encoded, on the prefix's cache."""
        import torch

        shared = len(prefix)
        lengths = torch.tensor([len(c.tokens) for c in batch])
        input_ids, own = self._right_padded([c.tokens[shared:] for c in batch])  # (batch, seq - shared)
        attention = torch.cat([torch.ones((len(batch), shared), dtype=own.dtype), own], dim=1)  # (batch, seq)
        longer = [(row, index, tokens) for row, c in enumerate(batch) for index, tokens in c.continuations if len(tokens) > 1]
        longer.sort(key=lambda item: -len(item[2]))  # continuations of like length share a pass: less padding
        # Right padding needs no attention mask here: causal attention never lets a real position see the
        # pads after it, and without a mask attention runs on the fused causal kernel.
        positions = _after(shared, len(batch), input_ids.shape[1]) if shared else {}
        past = prefix.cache(len(batch)) if shared else None
        states, cache = self._forward(input_ids, None, use_cache=bool(longer), past=past, **positions)  # (batch, seq - shared, width)
        last = states[torch.arange(len(batch)), lengths - 1 - shared]  # (batch, width): predicts each continuation's first token
        first = torch.log_softmax(self._logits(last).float(), dim=-1)  # (batch, vocab)
        totals = {index: float(first[row, tokens[0]]) for row, c in enumerate(batch) for index, tokens in c.continuations}
        for chunk in self._cache_chunks(longer, input_ids.shape[1]):
            for index, rest in self._score_rest(chunk, cache, attention, lengths):
                totals[index] += rest
        return [(index, totals[index], len(tokens)) for c in batch for index, tokens in c.continuations]

    def _score_joined(self, batch: list[_Context], prefix: _Prefix = NO_PREFIX) -> list[tuple[int, float, int]]:
        """(request index, log-likelihood, continuation length) for contexts with a single continuation.

        Context and continuation run as one row in one pass (no key/value cache to copy, right padding without
        a mask), and the head reads the positions that predict the continuation's tokens."""
        import torch

        shared = len(prefix)
        rows = [c.tokens[shared:] + c.continuations[0][1][:-1] for c in batch]
        input_ids, _ = self._right_padded(rows)  # (batch, seq - shared)
        positions = _after(shared, len(batch), input_ids.shape[1]) if shared else {}
        past = prefix.cache(len(batch)) if shared else None
        states, _ = self._forward(input_ids, None, past=past, **positions)  # (batch, seq - shared, width)
        answers = [c.continuations[0] for c in batch]  # (request index, tokens): the one continuation of each
        starts = [len(c.tokens) - 1 - shared for c in batch]  # the context's last position predicts the first token
        totals = self._read_head([(states[row, start : start + len(tokens)], tokens) for row, (start, (_, tokens)) in enumerate(zip(starts, answers))])
        return [(index, total, len(tokens)) for (index, tokens), total in zip(answers, totals)]

    def _score_rest(self, rows: list[tuple[int, int, tuple[int, ...]]], cache: Any, attention: Any, lengths: Any) -> list[tuple[int, float]]:
        """Tokens 2.. of each continuation, run on its context's cached keys and values."""
        import torch

        picked = torch.tensor([row for row, _, _ in rows])
        inputs, mask = self._right_padded([tokens[:-1] for _, _, tokens in rows])  # (rows, m - 1)
        width = attention.shape[1]
        steps = torch.arange(inputs.shape[1])
        states, _ = self._forward(
            inputs,
            torch.cat([attention[picked], mask], dim=1),
            past=_select_rows(cache, picked),
            position_ids=lengths[picked][:, None] + steps[None, :],
            cache_position=width + steps,
        )  # (rows, m - 1, width)
        totals = self._read_head([(states[row, : len(tokens) - 1], tokens[1:]) for row, (_, _, tokens) in enumerate(rows)])
        return [(index, total) for (_, index, _), total in zip(rows, totals)]

    def _read_head(self, reads: list[tuple[Any, tuple[int, ...]]]) -> list[float]:
        """Sum of the log-probabilities of each read's target tokens, given the hidden states (m, width) that
        predict them.

        The vocabulary head runs once over many reads' positions (up to ``HEAD_POSITIONS``) rather than once per
        row, which read its whole weight for a dozen positions (docs/performance.md, "Evaluator design notes").
        Each position's log-probabilities are the same whichever rows share its call, up to float rounding."""
        import torch

        totals: list[float] = []
        for group in _head_groups(reads):
            logits = self._logits(torch.cat([states for states, _ in group])).float()  # (positions, vocab)
            targets = torch.tensor([token for _, tokens in group for token in tokens], device=logits.device)
            picked = torch.log_softmax(logits, dim=-1).gather(1, targets[:, None])[:, 0]  # (positions,)
            totals.extend(float(part.sum()) for part in torch.split(picked, [len(tokens) for _, tokens in group]))
        return totals


def _after(shared: int, rows: int, width: int) -> dict[str, Any]:
    """Position ids and cache positions of ``width`` new tokens that follow ``shared`` cached ones."""
    import torch

    steps = shared + torch.arange(width)
    return {"position_ids": steps[None, :].expand(rows, -1), "cache_position": steps}


def _head_groups(reads: list[tuple[Any, tuple[int, ...]]]) -> Iterator[list[tuple[Any, tuple[int, ...]]]]:
    """Consecutive reads, cut so that a group holds at most ``HEAD_POSITIONS`` positions (a longer read alone)."""
    group: list[tuple[Any, tuple[int, ...]]] = []
    positions = 0
    for read in reads:
        if group and positions + len(read[1]) > package.HEAD_POSITIONS:
            yield group
            group, positions = [], 0
        group.append(read)
        positions += len(read[1])
    if group:
        yield group
