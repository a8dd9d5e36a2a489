"""Shared prefixes: the leading tokens that every prompt of a call (or of a cluster of them) shares.

When the prompts of one call share a leading run of tokens (few-shot demonstrations, instructions: 73 of nli's
~108 tokens, 117 of reasoning's ~145), that run is encoded once, at batch size one, and its key/value cache is
lent to every batch (``_Prefix.cache``); each example then encodes only its own tokens, with positions that
continue the prefix.  Prompts of several templates get a prefix per cluster (``prefix_clusters``).  Scores and
outputs equal the unshared computation's up to float rounding."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from editguard.stack import cache_from_layers, cache_layers

MIN_SHARED_PREFIX = 16  # tokens: a shorter common prefix saves less than its own forward pass costs
MIN_CLUSTER_ROWS = 8  # prompts behind a prefix of their own (prefix_clusters): fewer fill too little of a batch

Item = TypeVar("Item")


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


def _clustered(
    items: list[Item], tokens: Callable[[Item], tuple[int, ...]], forward: Callable[..., tuple[Any, Any]], share: bool
) -> Iterator[tuple[list[Item], _Prefix]]:
    """The items in their prefix clusters (``prefix_clusters``), each with its shared prefix, encoded when reached by
    ``forward`` (the evaluator's ``_forward``); one cluster and no prefix unless ``share``."""
    rows = [tokens(item) for item in items]
    clusters = prefix_clusters(rows) if share else [list(range(len(items)))]
    for cluster in clusters:
        yield [items[index] for index in cluster], _encoded_prefix([rows[index] for index in cluster], forward, share)


def _encoded_prefix(rows: Sequence[tuple[int, ...]], forward: Callable[..., tuple[Any, Any]], share: bool) -> _Prefix:
    """The prefix all ``rows`` share, encoded once; ``NO_PREFIX`` when too short to pay or switched off."""
    length = shared_prefix_length(rows) if share else 0
    if length < MIN_SHARED_PREFIX:
        return NO_PREFIX
    import torch

    tokens = rows[0][:length]
    _, cache = forward(torch.tensor([tokens]), None, use_cache=True)
    return _Prefix(tokens, cache_layers(cache))
