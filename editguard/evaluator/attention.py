"""Grouped-query attention read in place (SmolLM2: 9 query heads on 3 key/value heads).

On a CPU the evaluator's passes run ``_grouped_sdpa``, which lets SDPA read each shared key/value head in place
where transformers, given a mask, copies it once per query head; the same outputs.  ``_uses_grouped_sdpa`` says
whether a model's passes take it, and ``_grouped_attention`` switches the model's attention implementation to it
for one pass and back to what it was."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from editguard import evaluator as package  # names the tests patch on the package (input_device)

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
    the same outputs (timings: docs/performance.md, "Evaluator design notes")."""
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


def _uses_grouped_sdpa(model: Any) -> bool:
    """Whether the evaluator's forward passes on ``model`` run ``_grouped_sdpa`` instead of transformers' ``sdpa``: on
    a CPU, for a grouped-query model (fewer key/value heads than query heads) on transformers' ``sdpa`` attention,
    with a transformers (4.53 or later) and torch (2.5 or later) that have what it needs.  On CUDA, SDPA with a
    mask and ``enable_gqa`` falls back to its math kernel, so transformers' own path stays."""
    import torch

    config = model.config
    heads, kv_heads = getattr(config, "num_attention_heads", None), getattr(config, "num_key_value_heads", None)
    return (
        package.input_device(model).type == "cpu"
        and getattr(config, "_attn_implementation", None) == "sdpa"
        and bool(getattr(model, "_supports_attention_backend", False))
        and isinstance(heads, int) and isinstance(kv_heads, int) and kv_heads < heads
        and tuple(int(part) for part in torch.__version__.split(".")[:2]) >= (2, 5)
        and _register_grouped_sdpa()
    )  # fmt: skip


@contextlib.contextmanager
def _grouped_attention(model: Any, grouped: bool) -> Iterator[None]:
    """Within the block, ``model``'s attention is ``_grouped_sdpa`` (when ``grouped``), then as it was."""
    if not grouped:
        yield
        return
    config = model.config
    previous, config._attn_implementation = config._attn_implementation, GROUPED_SDPA
    try:
        yield
    finally:
        config._attn_implementation = previous
