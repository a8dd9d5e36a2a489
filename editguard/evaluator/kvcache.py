"""Key/value cache surgery: rows selected, masked columns dropped or inserted, parts joined into one cache.

A cache here is a transformers cache object or, as ``Layers``, its per-layer (keys, values) pairs, each of shape
(rows, kv heads, length, head dim).  Masked columns always sit right after the first ``shared`` positions (the
shared prefix), between it and each row's own tokens; an attention mask (rows, length) marks them with 0."""

from __future__ import annotations

from typing import Any

from editguard.stack import cache_from_layers, cache_layers

Layers = tuple[tuple[Any, Any], ...]  # a key/value cache per layer: (keys, values), each (rows, kv heads, length, head dim)


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
