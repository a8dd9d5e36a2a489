"""Batch sizes and batch cuts: a token budget per forward pass (padding included) and a row cap.

The defaults suit the device (``default_token_budget``, ``default_max_batch``): on a CPU 4,096 tokens and 64 rows;
on CUDA the budget is what half the GPU's free memory holds for the model's activations and keys and values
(``cuda_token_budget``) and the cap 512 rows.  On CUDA an out-of-memory error halves the budget and retries the
batch (``BatchPolicy._with_backoff``), so an automatic size backs off to what fits.  Log-likelihood batches are cut
where padding would cost more than another forward pass (``_least_padded``); generation batches are filled up
(``_batches``), since each of them pays for every decoding step."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from editguard import evaluator as package  # names the tests patch on the package (input_device, HEAD_POSITIONS)
from editguard.progress import reporter

CPU_TOKEN_BUDGET = 4096  # tokens per forward pass on a CPU: larger batches only add padding cost
CUDA_TOKEN_BUDGET = 65536  # for a model whose config does not say its sizes (cuda_token_budget); halved on out-of-memory
CUDA_TOKEN_BUDGET_RANGE = (1024, 262144)  # what cuda_token_budget may give
CUDA_MEMORY_SHARE = 0.5  # of the GPU's free memory (weights loaded) that one pass and a generation stream may plan for
DEFAULT_MAX_BATCH = 64  # rows per pass on a CPU
# Rows per pass on CUDA: a GPU's decoding step is bound by reading the weights and launching kernels rather than by
# its rows, so a stream of more rows takes fewer steps; the token budget, sized by memory, bounds the rest.
CUDA_MAX_BATCH = 512
# A generation batch may plan for this many times the token budget: its rows leave as they finish, so the widths
# it reserves (prompt + every new token) are seldom all there (docs/performance.md, "Evaluator design notes").
GENERATION_BUDGET_FACTOR = 2
PASS_COST = 1 / 32  # one forward pass costs about this share of the token budget in padded tokens (batch cuts)

Item = TypeVar("Item")


def default_token_budget(model: Any) -> int:
    """Tokens per forward pass: ``CPU_TOKEN_BUDGET`` on a CPU; on CUDA what the GPU's free memory holds for this
    model (``cuda_token_budget``)."""
    device = package.input_device(model)
    if device.type != "cuda":
        return CPU_TOKEN_BUDGET
    import torch

    free, _ = torch.cuda.mem_get_info(device)
    return cuda_token_budget(free, model.config, max(2, getattr(model, "dtype", torch.float32).itemsize))  # activations: 16 bits or more


def default_max_batch(model: Any) -> int:
    return CUDA_MAX_BATCH if package.input_device(model).type == "cuda" else DEFAULT_MAX_BATCH


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
    usable = free_bytes * CUDA_MEMORY_SHARE - 2 * package.HEAD_POSITIONS * vocab * 4
    low, high = CUDA_TOKEN_BUDGET_RANGE
    return int(min(high, max(low, usable // per_token)))


class BatchPolicy:
    """An evaluator's batch policy: ``token_budget`` tokens per forward pass (padding included), at most
    ``max_batch`` rows, both halved by an out-of-memory error; ``progress`` shows a progress bar."""

    token_budget: int
    max_batch: int
    progress: bool

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

    def _cache_chunks(self, rows: list[Item], width: int) -> Iterator[list[Item]]:
        """Continuation rows per pass over a copied cache, so that rows x context width stays in the budget."""
        per_pass = max(1, min(self.max_batch, self.token_budget // max(width, 1)))
        for start in range(0, len(rows), per_pass):
            yield rows[start : start + per_pass]

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
