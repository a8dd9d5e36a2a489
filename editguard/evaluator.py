"""The evaluator: batched log-likelihood scoring and greedy generation on a causal LM.

The model interface is list in, list out::

    loglikelihood([LoglikelihoodRequest(context, continuation), ...]) -> [float, ...]
    generate([GenerationRequest(prompt, max_new_tokens, stop), ...]) -> [str, ...]

``context`` and ``continuation`` are tokenised separately and concatenated, so whitespace belongs
to the continuation (``" positive"``); no special tokens are added beyond what the tokenizer adds
to the context itself.

Log-likelihood: requests that share a context (an example's answer choices) share one forward pass
of that context.  Contexts are sorted by length and packed into batches under a token budget,
right-padded with an attention mask; the vocabulary head and log-softmax run only at the positions
that are read.  A continuation's first token is read off the context's last state; longer
continuations run their remaining tokens on the context's key/value cache, with positions that
continue each context.  A context with a single continuation (a text's perplexity, the channel form's
passage) runs as one row with it instead, one pass and no cache to copy (closed_qa's probes 4%, the
canary 10% faster, the same outcomes).  So a score does not depend on the batch it lands in or on the
order of the requests (tested to 1e-4 for any batch size and order).

Generation is greedy: prompts are left-padded (positions follow the attention mask), decoding uses
the KV cache, a row leaves the batch once it has hit EOS or a stop string (``model.generate`` ran every
row until the last one stopped: reasoning's answers 1.6x, the other generation abilities 1.2-1.3x
slower on two CPU cores, with the same outputs), the next prompts join the rows still decoding once a
quarter of the batch is free (``_streamed``: batch after batch, each batch's few long answers decoded
alone, one pass over every weight per token; reasoning 15-20% faster, the same outputs), and each output
is cut at its first stop string.  A
model whose generation config asks for more than argmax (a repetition penalty, say) decodes through
``model.generate``.  ``add_special_tokens=False`` is for prompts already rendered by a chat template.

Shared prefixes: when the prompts of one call share a leading run of tokens (few-shot demonstrations,
instructions: 73 of nli's ~108 tokens, 117 of reasoning's ~145), that run is encoded once, at batch size
one, and its key/value cache is lent to every batch; each example then encodes only its own tokens,
with positions that continue the prefix.  Scores and outputs equal the unshared computation's up to
float rounding (tested: log-likelihoods to 1e-4, identical greedy outputs on the probe sets).

Grouped-query attention (SmolLM2: 9 query heads on 3 key/value heads): on a CPU the evaluator's passes run
``_grouped_sdpa``, which lets SDPA read each shared key/value head in place where transformers, given a mask,
copies it once per query head; the same outputs, and the model's attention setting is restored after each pass.

Length: a model reads at most ``context`` positions (``models.context_length``: its config's position table or
context; its tokenizer's for a model whose config names none).  A request longer than that is cut from the left,
as lm-evaluation-harness does: a context keeps its last tokens before its continuation, a prompt its last tokens
before the new ones.  ``truncated`` says which requests are cut (the gate counts them in its reports); both models
of a comparison read the same cut requests.

Batch size: a token budget per forward pass (padding included) and a row cap.  The defaults suit the
device (``default_token_budget``, ``default_max_batch``): on a CPU 4,096 tokens and 64 rows; on CUDA the
budget is what half the GPU's free memory holds for the model's activations and keys and values
(``cuda_token_budget``) and the cap 512 rows.  On CUDA an out-of-memory error halves the budget and
retries the batch, so an automatic size backs off to what fits.  Log-likelihood batches are cut where
padding would cost more than another forward pass (``_least_padded``: sentiment's 12-24-token prompts
padded 47% more tokens than they hold when each batch was filled up); generation batches are filled up,
since each of them pays for every decoding step.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from editguard.models import context_length, input_device
from editguard.progress import reporter
from editguard.stack import cache_from_layers, cache_layers

EVALUATOR_VERSION = 11  # part of the output-cache key: bump when scores could change (3: shared prefixes, 4: batch cuts,
# 5: a context with one continuation scored in one pass, 6: the vocabulary head over many rows' positions at once,
# 7: grouped key/value heads read in place by attention, 8: a prefix per cluster of prompts, 9: generation's prompt
# pass in chunks of like width, 10: later prompts join the rows still decoding, 11: requests cut to the model's context)
CPU_TOKEN_BUDGET = 4096  # tokens per forward pass on a CPU: larger batches only add padding cost
CUDA_TOKEN_BUDGET = 65536  # for a model whose config does not say its sizes (cuda_token_budget); halved on out-of-memory
CUDA_TOKEN_BUDGET_RANGE = (1024, 262144)  # what cuda_token_budget may give
CUDA_MEMORY_SHARE = 0.5  # of the GPU's free memory (weights loaded) that one pass and a generation stream may plan for
DEFAULT_MAX_BATCH = 64  # rows per pass on a CPU
# Rows per pass on CUDA: a GPU's decoding step is bound by reading the weights and launching kernels rather than by
# its rows, so a stream of more rows takes fewer steps; the token budget, sized by memory, bounds the rest.
CUDA_MAX_BATCH = 512
# A generation batch may plan for this many times the token budget: its rows leave as they finish, so the widths
# it reserves (prompt + every new token) are seldom all there (reasoning 1.27x, summarization 1.16x faster at 2).
GENERATION_BUDGET_FACTOR = 2
# Joined decoding (``_streamed``): the next prompts join the rows still decoding once this share of the room is free.
REFILL_SHARE = 4
PASS_COST = 1 / 32  # one forward pass costs about this share of the token budget in padded tokens (batch cuts)
HEAD_POSITIONS = 512  # positions per call of the vocabulary head when scoring (a 49k vocabulary: 100 MB of logits)
MIN_SHARED_PREFIX = 16  # tokens: a shorter common prefix saves less than its own forward pass costs
MIN_CLUSTER_ROWS = 8  # prompts behind a prefix of their own (prefix_clusters): fewer fill too little of a batch

Item = TypeVar("Item")
Layers = tuple[tuple[Any, Any], ...]  # a key/value cache per layer: (keys, values), each (rows, kv heads, length, head dim)


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


@dataclass(frozen=True)
class _Prefix:
    """The tokens every prompt of a call starts with, and their keys and values per layer, batch size one."""

    tokens: tuple[int, ...] = ()
    layers: tuple[tuple[Any, Any], ...] = ()  # per layer: (keys, values), each (1, heads, len(tokens), head_dim)

    def __len__(self) -> int:
        return len(self.tokens)

    def cache(self, rows: int) -> Any:
        """A new key/value cache holding the prefix for ``rows`` rows (views: the stored tensors stay as they are)."""
        expanded = tuple((keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1)) for keys, values in self.layers)
        return cache_from_layers(expanded)


NO_PREFIX = _Prefix()


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

    def record(self, max_new_tokens: int, stop: tuple[str, ...], evaluator: Evaluator) -> list[tuple[_Prompt, list[int]]]:
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

    def step(self, evaluator: Evaluator) -> None:
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


def shared_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix common to all rows, leaving every row at least one token of its own."""
    if not rows:
        return 0
    first, shortest = rows[0], min(len(row) for row in rows)
    length = shortest - 1
    for row in rows[1:]:
        length = next((position for position in range(length) if row[position] != first[position]), length)
    return max(length, 0)


def prefix_clusters(rows: Sequence[Sequence[int]]) -> list[list[int]]:
    """The indices of ``rows`` in clusters, each sharing a longer prefix than all rows share; one cluster if none pays.

    Few-shot prompts of several templates share little across templates and much within one: ner asks once per
    entity type, and its demonstrations differ by the type's label from the first line on, so its 640 prompts
    share 21 tokens and each type's 160 share 45 to 48.  Rows split by the token that follows their common prefix
    when every part keeps at least ``MIN_CLUSTER_ROWS`` rows (each cluster fills its own batches) and extends the
    common prefix by at least ``MIN_SHARED_PREFIX`` tokens (each cluster encodes its own prefix); each part then
    splits again by the same rule.  Clusters come in the order of that token, rows in their given order, so the
    clusters do not depend on the order of the rows."""
    everything = list(range(len(rows)))
    if len(rows) < 2 * MIN_CLUSTER_ROWS:
        return [everything]
    shared = shared_prefix_length(rows)
    parts: dict[int, list[int]] = {}
    for index, row in enumerate(rows):
        parts.setdefault(row[shared], []).append(index)
    if len(parts) < 2 or min(map(len, parts.values())) < MIN_CLUSTER_ROWS:
        return [everything]
    if any(shared_prefix_length([rows[index] for index in part]) < shared + MIN_SHARED_PREFIX for part in parts.values()):
        return [everything]
    clusters = []
    for _, part in sorted(parts.items()):
        clusters += [[part[index] for index in cluster] for cluster in prefix_clusters([rows[index] for index in part])]
    return clusters


def default_token_budget(model: Any) -> int:
    """Tokens per forward pass: ``CPU_TOKEN_BUDGET`` on a CPU; on CUDA what the GPU's free memory holds for this
    model (``cuda_token_budget``)."""
    device = input_device(model)
    if device.type != "cuda":
        return CPU_TOKEN_BUDGET
    import torch

    free, _ = torch.cuda.mem_get_info(device)
    return cuda_token_budget(free, model.config, max(2, getattr(model, "dtype", torch.float32).itemsize))  # activations: 16 bits or more


def default_max_batch(model: Any) -> int:
    return CUDA_MAX_BATCH if input_device(model).type == "cuda" else DEFAULT_MAX_BATCH


def cuda_token_budget(free_bytes: int, config: Any, dtype_bytes: int) -> int:
    """Tokens per forward pass that fit in ``CUDA_MEMORY_SHARE`` of ``free_bytes``, clamped to ``CUDA_TOKEN_BUDGET_RANGE``.

    A token of a pass holds its activations at their widest (four of the MLP's intermediate vectors and four hidden
    states alive at once), and, while generating, its keys and values in every layer for ``GENERATION_BUDGET_FACTOR``
    times the budget; the vocabulary head's logits and log-probabilities (``HEAD_POSITIONS`` rows of float32) come
    off first.  A config that does not give the sizes gets ``CUDA_TOKEN_BUDGET``.  An out-of-memory error still
    halves whatever this gives."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    sizes = [getattr(config, name, None) for name in ("hidden_size", "num_hidden_layers", "num_attention_heads")]
    hidden, layers, heads = (value if isinstance(value, int) and value > 0 else 0 for value in sizes)
    if not (hidden and layers and heads):
        return CUDA_TOKEN_BUDGET
    intermediate = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * hidden
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    vocab = getattr(config, "vocab_size", None) or 0
    per_token = dtype_bytes * (4 * intermediate + 4 * hidden) + GENERATION_BUDGET_FACTOR * 2 * layers * kv_heads * head_dim * dtype_bytes
    usable = free_bytes * CUDA_MEMORY_SHARE - 2 * HEAD_POSITIONS * vocab * 4
    low, high = CUDA_TOKEN_BUDGET_RANGE
    return int(min(high, max(low, usable // per_token)))


class Evaluator:
    """Scores requests on one model; holds no state besides the model, tokenizer and batch policy."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        token_budget: int | None = None,
        max_batch: int | None = None,
        progress: bool = False,
        share_prefix: bool = True,
        own_decoding: bool = True,
        context: int | None = None,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self._context = context
        self.token_budget = token_budget or default_token_budget(model)
        self.max_batch = max_batch or default_max_batch(model)
        self.progress = progress
        self.share_prefix = share_prefix
        self.own_decoding = own_decoding  # False: every generation through model.generate (the reference)

    # ------------------------------------------------------------------ length

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

    # ------------------------------------------------------------------ log-likelihood

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        """Sum of log-probabilities of each continuation given its context, in request order."""
        return [total for total, _ in self.loglikelihood_with_lengths(requests)]

    def loglikelihood_with_lengths(self, requests: Sequence[LoglikelihoodRequest]) -> list[tuple[float, int]]:
        """(sum of log-probabilities, number of continuation tokens) per request, in request order."""
        contexts = self._contexts(requests)
        plan = itertools.chain.from_iterable(
            self._loglikelihood_plan(cluster, prefix) for cluster, prefix in self._clustered(contexts, lambda context: context.tokens)
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

    def _clustered(self, items: list[Item], tokens: Callable[[Item], tuple[int, ...]]) -> Iterator[tuple[list[Item], _Prefix]]:
        """The items in their prefix clusters (``prefix_clusters``), each with its shared prefix, encoded when reached."""
        rows = [tokens(item) for item in items]
        clusters = prefix_clusters(rows) if self.share_prefix else [list(range(len(items)))]
        for cluster in clusters:
            yield [items[index] for index in cluster], self._prefix([rows[index] for index in cluster])

    def _prefix(self, rows: Sequence[tuple[int, ...]]) -> _Prefix:
        """The prefix all ``rows`` share, encoded once; ``NO_PREFIX`` when too short to pay or switched off."""
        length = shared_prefix_length(rows) if self.share_prefix else 0
        if length < MIN_SHARED_PREFIX:
            return NO_PREFIX
        import torch

        tokens = rows[0][:length]
        _, cache = self._forward(torch.tensor([tokens]), None, use_cache=True)
        return _Prefix(tokens, cache_layers(cache))

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
        positions = self._after(shared, len(batch), input_ids.shape[1]) if shared else {}
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
        positions = self._after(shared, len(batch), input_ids.shape[1]) if shared else {}
        past = prefix.cache(len(batch)) if shared else None
        states, _ = self._forward(input_ids, None, past=past, **positions)  # (batch, seq - shared, width)
        answers = [c.continuations[0] for c in batch]  # (request index, tokens): the one continuation of each
        starts = [len(c.tokens) - 1 - shared for c in batch]  # the context's last position predicts the first token
        totals = self._read_head([(states[row, start : start + len(tokens)], tokens) for row, (start, (_, tokens)) in enumerate(zip(starts, answers))])
        return [(index, total, len(tokens)) for (index, tokens), total in zip(answers, totals)]

    @staticmethod
    def _after(shared: int, rows: int, width: int) -> dict[str, Any]:
        """Position ids and cache positions of ``width`` new tokens that follow ``shared`` cached ones."""
        import torch

        steps = shared + torch.arange(width)
        return {"position_ids": steps[None, :].expand(rows, -1), "cache_position": steps}

    def _cache_chunks(self, rows: list[Item], width: int) -> Iterator[list[Item]]:
        """Continuation rows per pass over a copied cache, so that rows x context width stays in the budget."""
        per_pass = max(1, min(self.max_batch, self.token_budget // max(width, 1)))
        for start in range(0, len(rows), per_pass):
            yield rows[start : start + per_pass]

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

        The vocabulary head runs once over many reads' positions (up to ``HEAD_POSITIONS``): called per row,
        it read its whole weight (28 M parameters, 113 MB in float32 for SmolLM2) for a dozen positions, and
        dialogue's 640 answers spent 33 of 77 s there.  Each position's log-probabilities are the same
        whichever rows share its call, up to float rounding."""
        import torch

        totals: list[float] = []
        for group in _head_groups(reads):
            logits = self._logits(torch.cat([states for states, _ in group])).float()  # (positions, vocab)
            targets = torch.tensor([token for _, tokens in group for token in tokens], device=logits.device)
            picked = torch.log_softmax(logits, dim=-1).gather(1, targets[:, None])[:, 0]  # (positions,)
            totals.extend(float(part.sum()) for part in torch.split(picked, [len(tokens) for _, tokens in group]))
        return totals

    def _forward(self, input_ids: Any, attention: Any, *, use_cache: bool = False, past: Any = None, **positions: Any) -> tuple[Any, Any]:
        """Hidden states (or logits, when the head must run whole) and the key/value cache."""
        import torch

        device = input_device(self.model)  # a model split by accelerate included
        extra = {key: value.to(device) for key, value in positions.items()}
        module = self.model.base_model if self._split_head else self.model
        with torch.inference_mode(), self._grouped_attention():
            output = module(
                input_ids=input_ids.to(device),
                attention_mask=None if attention is None else attention.to(device),
                past_key_values=past,
                use_cache=use_cache or past is not None,
                **extra,
            )
        states = output.last_hidden_state if self._split_head else output.logits
        return states, output.past_key_values

    @contextlib.contextmanager
    def _grouped_attention(self) -> Iterator[None]:
        """Within the block, the model's attention is ``_grouped_sdpa`` (when ``_shares_kv_heads``), then as it was."""
        if not self._shares_kv_heads:
            yield
            return
        config = self.model.config
        previous, config._attn_implementation = config._attn_implementation, GROUPED_SDPA
        try:
            yield
        finally:
            config._attn_implementation = previous

    @functools.cached_property
    def _shares_kv_heads(self) -> bool:
        """Whether the evaluator's forward passes run ``_grouped_sdpa`` instead of transformers' ``sdpa``: on a
        CPU, for a grouped-query model (fewer key/value heads than query heads) on transformers' ``sdpa`` attention,
        with a transformers (4.53 or later) and torch (2.5 or later) that have what it needs.  On CUDA, SDPA with a
        mask and ``enable_gqa`` falls back to its math kernel, so transformers' own path stays."""
        import torch

        config = self.model.config
        heads, kv_heads = getattr(config, "num_attention_heads", None), getattr(config, "num_key_value_heads", None)
        return (
            input_device(self.model).type == "cpu"
            and getattr(config, "_attn_implementation", None) == "sdpa"
            and bool(getattr(self.model, "_supports_attention_backend", False))
            and isinstance(heads, int) and isinstance(kv_heads, int) and kv_heads < heads
            and tuple(int(part) for part in torch.__version__.split(".")[:2]) >= (2, 5)
            and _register_grouped_sdpa()
        )  # fmt: skip

    def _logits(self, states: Any) -> Any:
        import torch

        if not self._split_head:
            return states  # already logits
        with torch.inference_mode():
            return self.model.get_output_embeddings()(states)

    @property
    def _split_head(self) -> bool:
        """Run the body once and the vocabulary head only at read positions, unless the model post-processes logits."""
        config = self.model.config
        return (
            self.model.get_output_embeddings() is not None
            and self.model.base_model is not self.model
            and getattr(config, "final_logit_softcapping", None) is None
            and getattr(config, "logit_scale", None) is None
        )

    # ------------------------------------------------------------------ generation

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
                    self._streamed(cluster, max_new_tokens, stop, prefix) for cluster, prefix in self._clustered(members, _prompt_tokens)
                )
                for finished in self._progress(streams, len(members), "generation", len):
                    for item, tokens in finished:
                        outputs[item.index] = _cut(self.tokenizer.decode(tokens, skip_special_tokens=True), stop)
                continue
            plan = self._generation_plan(members, max_new_tokens, stop)
            for run, batch in self._progress(plan, len(members), "generation", lambda step: len(step[1])):
                texts = self._with_backoff(run, batch)
                for item, text in zip(batch, texts):
                    outputs[item.index] = _cut(text, stop)
        return outputs

    def _generation_plan(
        self, members: list[_Prompt], max_new_tokens: int, stop: tuple[str, ...]
    ) -> Iterator[tuple[Callable[..., list[str]], list[_Prompt]]]:
        """(run, batch) for every batch through ``model.generate``: each prefix cluster's prompts batched behind its own
        shared prefix."""
        for cluster, prefix in self._clustered(members, _prompt_tokens):
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
            extra["past_key_values"] = prefix.cache(len(batch))
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

    def _prompt_rows(self, batch: list[_Prompt], prefix: _Prefix) -> tuple[Any, Any]:
        """Input ids and attention mask of a batch: the shared prefix, then each prompt's own tokens left-padded after
        it (pads sit between the two, masked, and positions follow the attention mask)."""
        import torch

        shared = len(prefix)
        width = shared + max(len(item.tokens) - shared for item in batch)
        input_ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)  # (batch, seq)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        input_ids[:, :shared] = torch.tensor(prefix.tokens, dtype=torch.long)
        attention[:, :shared] = 1
        for row, item in enumerate(batch):
            input_ids[row, width - len(item.tokens) + shared :] = torch.tensor(item.tokens[shared:])
            attention[row, width - len(item.tokens) + shared :] = 1
        device = input_device(self.model)  # a model split by accelerate included
        return input_ids.to(device), attention.to(device)

    def _streamed(self, prompts: list[_Prompt], max_new_tokens: int, stop: tuple[str, ...], prefix: _Prefix) -> Iterator[list[tuple[_Prompt, list[int]]]]:
        """Greedy decoding of a cluster's prompts as one stream of rows; yields the rows that finish, with their tokens.

        A row is finished at an end-of-sequence token, at its first stop string, or at ``max_new_tokens``.  Rows
        are admitted longest first, as many as the token budget and the row cap allow (``_free_rows``); finished rows
        leave, and once a quarter of the room is free (``REFILL_SHARE``) the next prompts are encoded and join the
        rows still decoding.  Batch after batch, each batch's last long answers decoded a few rows at a time
        (reasoning: 285 steps for 160 prompts, 132 of them on seven rows or fewer, each step reading every weight
        once); joined, the long answers of several batches share their steps.  Each row's tokens are what
        ``generate`` makes (the same forward pass, positions and argmax; a row's keys, values and logits do not
        depend on the rows beside it or on the masked columns between its prefix and its own tokens, as the
        batch-size tests check).  The host reads the new tokens once per step, for the stop check.  On CUDA an
        out-of-memory error (in a prompt pass or a decoding step) halves the token budget and the row cap and
        starts every row that has not finished again."""
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

        Chunks of like width (``_least_padded``): a batch padded to its longest prompt spent 17-18% of ner's and
        open_qa's prompt passes on pads.  Each chunk's rows are laid out as ``_prompt_rows`` lays out a batch of
        them alone (the prefix, then each row's own tokens left-padded); a row's keys, values and next token depend
        on its own tokens and positions, not on how much padding its chunk had."""
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

    @functools.cached_property
    def _plain_greedy(self) -> bool:
        """Whether ``_streamed`` makes what ``generate`` would: a decoder-only model whose generation config asks for
        nothing beyond greedy argmax (no repetition penalty, banned or forced tokens, minimum length, beams)."""
        config = getattr(self.model, "generation_config", None)
        if config is None or getattr(self.model.config, "is_encoder_decoder", False):
            return False
        return all(getattr(config, name, None) in neutral for name, neutral in _GREEDY_NEUTRAL.items())

    # ------------------------------------------------------------------ batching

    def _batches(
        self, items: list[Item], width: Callable[[Item], int], tiebreak: Callable[[Item], int], budget: int | None = None
    ) -> Iterator[list[Item]]:
        """Pack items, longest first, so that rows x longest width stays under ``budget`` (the token budget).

        Longest first, so the first batch shows the peak memory; ties broken by request index.
        """
        budget = budget or self.token_budget
        ordered = sorted(items, key=lambda item: (-width(item), tiebreak(item)))
        batch: list[Item] = []
        for item in ordered:
            widest = width(batch[0]) if batch else width(item)
            if batch and (widest * (len(batch) + 1) > budget or len(batch) >= self.max_batch):
                yield batch
                batch = []
            batch.append(item)
        if batch:
            yield batch

    def _least_padded(self, items: list[Item], width: Callable[[Item], int], tiebreak: Callable[[Item], int]) -> Iterator[list[Item]]:
        """Batches of items, longest first, cut where padding costs more than another forward pass.

        Among all ways to cut the longest-first order into batches under the token budget and the row cap, the
        one with the fewest padded tokens plus ``PASS_COST`` of the budget per forward pass (dynamic programming,
        rows x longest width per batch).  One pass per context, so this suits log-likelihood; generation keeps
        ``_batches``, since each of its batches pays for every decoding step."""
        ordered = sorted(items, key=lambda item: (-width(item), tiebreak(item)))
        widths = [width(item) for item in ordered]
        per_pass = self.token_budget * PASS_COST
        cost = [0.0] + [float("inf")] * len(ordered)  # cost[i]: the cheapest cut of the first i items
        start_of = [0] * (len(ordered) + 1)
        for end in range(1, len(ordered) + 1):
            for start in range(end - 1, max(end - 1 - self.max_batch, -1), -1):
                rows, widest = end - start, widths[start]
                if rows > 1 and rows * widest > self.token_budget:
                    break  # longer batches from here are wider still
                candidate = cost[start] + rows * widest + per_pass
                if candidate < cost[end]:
                    cost[end], start_of[end] = candidate, start
        cuts, end = [], len(ordered)
        while end > 0:
            cuts.append((start_of[end], end))
            end = start_of[end]
        for start, end in reversed(cuts):
            yield ordered[start:end]

    def _with_backoff(self, run: Callable[[list[Item]], list[Any]], batch: list[Item]) -> list[Any]:
        """Run a batch; on a CUDA out-of-memory error halve the token budget and run it in halves."""
        import torch

        try:
            return run(batch)
        except torch.OutOfMemoryError:
            if len(batch) == 1:
                raise
            torch.cuda.empty_cache()
            self.token_budget = max(1, self.token_budget // 2)
            self.max_batch = max(1, len(batch) // 2)
            middle = len(batch) // 2
            return self._with_backoff(run, batch[:middle]) + self._with_backoff(run, batch[middle:])

    def _progress(self, batches: Iterator[Item], total: int, what: str, size: Callable[[Item], int]) -> Iterator[Item]:
        """Yield the batches, with the run's progress bar when enabled (``editguard.progress``: on a terminal,
        for passes longer than a few seconds)."""
        if not self.progress:
            yield from batches
            return
        with reporter().bar(total, what) as advance:
            for batch in batches:
                yield batch
                advance(size(batch))

    def _right_padded(self, rows: list[tuple[int, ...]]) -> tuple[Any, Any]:
        import torch

        width = max(len(tokens) for tokens in rows)
        input_ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)  # (rows, seq)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for row, tokens in enumerate(rows):
            input_ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            attention[row, : len(tokens)] = 1
        return input_ids, attention

    @property
    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else 0


GROUPED_SDPA = "editguard_grouped_sdpa"  # the model's attention implementation while the evaluator runs it


@functools.cache
def _register_grouped_sdpa() -> bool:
    """Register ``_grouped_sdpa`` (with transformers' SDPA mask) under ``GROUPED_SDPA``; False where transformers
    has no attention interfaces to register with (before 4.53)."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    except ImportError:
        return False
    AttentionInterface.register(GROUPED_SDPA, _grouped_sdpa)
    AttentionMaskInterface.register(GROUPED_SDPA, sdpa_mask)
    return True


def _grouped_sdpa(
    module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0, scaling: float | None = None,
    is_causal: bool | None = None, **_: Any,
) -> tuple[Any, None]:
    """transformers' SDPA attention, except that each query head (batch, heads, q, dim) reads its group's key and
    value head (batch, kv heads, k, dim) in place.

    Given a mask (every decoding step, every answer scored on its context's cache), transformers copies each
    key/value head once per query head (``repeat_kv``: SmolLM2's 9 query heads read 3) before calling SDPA, a copy of
    three times the whole cache per layer per step; SDPA's ``enable_gqa`` reads the shared heads themselves, with
    the same outputs.  reasoning's 160 prompts (96 new tokens at most) decode 15% faster on two cores, ner's 3%."""
    import torch

    if attention_mask is not None and attention_mask.ndim == 4:
        attention_mask = attention_mask[:, :, :, : key.shape[-2]]
    if is_causal is None:  # transformers' rule: the fused causal kernel when there is no mask to apply
        is_causal = query.shape[2] > 1 and attention_mask is None and getattr(module, "is_causal", True)
    output = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling, is_causal=is_causal,
        enable_gqa=query.shape[1] != key.shape[1],
    )  # fmt: skip
    return output.transpose(1, 2).contiguous(), None


def _joined_width(context: _Context) -> int:
    """Tokens of a context and its single continuation run as one row (the last token is only predicted)."""
    return len(context.tokens) + len(context.continuations[0][1]) - 1


def _head_groups(reads: list[tuple[Any, tuple[int, ...]]]) -> Iterator[list[tuple[Any, tuple[int, ...]]]]:
    """Consecutive reads, cut so that a group holds at most ``HEAD_POSITIONS`` positions (a longer read alone)."""
    group: list[tuple[Any, tuple[int, ...]]] = []
    positions = 0
    for read in reads:
        if group and positions + len(read[1]) > HEAD_POSITIONS:
            yield group
            group, positions = [], 0
        group.append(read)
        positions += len(read[1])
    if group:
        yield group


def _first(context: _Context) -> int:
    return context.first


def _requests_in(batch: list[_Context]) -> int:
    return sum(len(c.continuations) for c in batch)


def _stacked(parts: list[Layers], shared: int) -> Layers:
    """The parts' caches in one, rows in order, per layer: a part narrower than the widest gets zero columns after its
    first ``shared`` positions (masked pads).  Each part is written once into the joined tensor, not widened first."""
    width = max(part[0][0].shape[2] for part in parts)
    layers = []
    for layer in zip(*parts):  # one layer of every part
        joined = []
        for which in (0, 1):  # keys, values: (rows, heads, length, head_dim)
            states = [pair[which] for pair in layer]
            out = states[0].new_empty(sum(part.shape[0] for part in states), states[0].shape[1], width, states[0].shape[3])
            start = 0
            for part in states:
                block, columns = out[start : start + part.shape[0]], width - part.shape[2]
                block[:, :, :shared] = part[:, :, :shared]
                block[:, :, shared : shared + columns] = 0  # never attended to, but 0 x NaN would still be NaN
                block[:, :, shared + columns :] = part[:, :, shared:]
                start += part.shape[0]
            joined.append(out)
        layers.append((joined[0], joined[1]))
    return tuple(layers)


def _select_rows(cache: Any, rows: Any, shared: int = 0, columns: int = 0) -> Any:
    """A new key/value cache holding the given batch rows of ``cache`` (the original is left as it was), without
    the ``columns`` positions after the first ``shared`` (``_without_columns``)."""
    device_rows: dict[Any, Any] = {}
    layers = []
    for keys, values in cache_layers(cache):
        index = device_rows.setdefault(keys.device, rows.to(keys.device))
        layers.append(tuple(_without_columns(states.index_select(0, index), shared, columns) for states in (keys, values)))
    return cache_from_layers(layers)


def _without_columns(states: Any, shared: int, columns: int) -> Any:
    """Keys or values (rows, heads, length, head_dim) without the ``columns`` positions after the first ``shared``."""
    if not columns:
        return states
    import torch

    return torch.cat([states[:, :, :shared], states[:, :, shared + columns :]], dim=2)


def _widened_mask(attention: Any, shared: int, columns: int) -> Any:
    """An attention mask (rows, length) with ``columns`` masked positions inserted after the first ``shared``."""
    if not columns:
        return attention
    import torch

    return torch.cat([attention[:, :shared], attention.new_zeros((attention.shape[0], columns)), attention[:, shared:]], dim=1)


# Generation-config fields and the values that leave greedy decoding plain argmax (anything else: generate()).
_GREEDY_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "num_beams": (None, 1), "penalty_alpha": (None,), "dola_layers": (None,), "guidance_scale": (None, 1.0),
    "repetition_penalty": (None, 1.0), "encoder_repetition_penalty": (None, 1.0), "no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,), "sequence_bias": (None,), "min_length": (None, 0), "min_new_tokens": (None, 0),
    "suppress_tokens": (None,), "begin_suppress_tokens": (None,), "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,), "forced_decoder_ids": (None,), "exponential_decay_length_penalty": (None,),
    "watermarking_config": (None,),
}  # fmt: skip


def _worth_compacting(rows: int, kept: int, steps_left: int) -> bool:
    """Drop finished rows when the row-steps saved (finished rows x steps left) reach the rows copied (kept)."""
    return kept < rows and (rows - kept) * steps_left >= kept


def _has_stop(tokenizer: Any, tokens: list[int], stop: tuple[str, ...]) -> bool:
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    return _cut(text, stop) != text  # the rule that cuts the output decides where it ends


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
