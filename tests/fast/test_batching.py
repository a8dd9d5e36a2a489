"""How the evaluator cuts log-likelihood work into batches (``Evaluator._least_padded``) and the vocabulary head's
reads into groups (``_head_groups``), without a model."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from editguard import evaluator as evaluator_module
from editguard.evaluator import PASS_COST, Evaluator


def _evaluator(budget: int, rows: int) -> Evaluator:
    return Evaluator(None, None, token_budget=budget, max_batch=rows)


def _cost(batches: list[list[int]], budget: int) -> float:
    return sum(len(batch) * max(batch) + budget * PASS_COST for batch in batches)


widths = st.lists(st.integers(1, 300), min_size=0, max_size=80)


@given(widths, st.integers(16, 4096), st.integers(1, 64))
def test_batches_keep_every_item_once_longest_first_and_within_the_limits(items: list[int], budget: int, rows: int) -> None:
    evaluator = _evaluator(budget, rows)
    batches = list(evaluator._least_padded(list(range(len(items))), lambda i: items[i], lambda i: i))
    flat = [index for batch in batches for index in batch]
    assert flat == sorted(range(len(items)), key=lambda i: (-items[i], i))
    for batch in batches:
        assert 1 <= len(batch) <= rows
        assert len(batch) == 1 or len(batch) * items[batch[0]] <= budget


@given(widths, st.integers(16, 4096), st.integers(1, 64))
def test_the_cut_pads_no_more_than_filling_each_batch_up(items: list[int], budget: int, rows: int) -> None:
    evaluator = _evaluator(budget, rows)
    least = [[items[i] for i in batch] for batch in evaluator._least_padded(list(range(len(items))), lambda i: items[i], lambda i: i)]
    filled = [[items[i] for i in batch] for batch in evaluator._batches(list(range(len(items))), lambda i: items[i], lambda i: i)]
    assert _cost(least, budget) <= _cost(filled, budget) + 1e-9


def test_a_long_tail_of_short_items_gets_its_own_batch() -> None:
    items = [100] * 4 + [10] * 30  # filling up would pad 30 short rows to 100 tokens
    batches = list(_evaluator(4096, 64)._least_padded(items, lambda width: width, lambda width: 0))
    assert [len(batch) for batch in batches] == [4, 30]


@given(st.lists(st.integers(1, 40), max_size=60), st.integers(1, 64))
def test_head_groups_keep_every_read_once_in_order_and_within_the_positions(lengths: list[int], limit: int) -> None:
    """The vocabulary head's groups (``_head_groups``): consecutive reads, at most ``limit`` positions, except a
    read longer than the limit, which goes alone."""
    reads = [(index, (0,) * length) for index, length in enumerate(lengths)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluator_module, "HEAD_POSITIONS", limit)
        groups = list(evaluator_module._head_groups(reads))
    assert [read for group in groups for read in group] == reads
    for group in groups:
        assert group
        assert len(group) == 1 or sum(len(tokens) for _, tokens in group) <= limit


def test_on_cuda_the_token_budget_is_what_half_the_free_memory_holds() -> None:
    """``cuda_token_budget`` for real transformers configs: a 7B Llama in float16 gets what half of 10 GiB holds
    once the head's logits are set aside (each token's activations and, for twice the budget, its keys and values);
    twice the memory a little over twice the tokens; an H200 with the 135M default the range's top; no memory its floor."""
    from transformers import GPT2Config, LlamaConfig, PretrainedConfig

    from editguard.evaluator import CUDA_TOKEN_BUDGET, CUDA_TOKEN_BUDGET_RANGE, cuda_token_budget

    gib = 2**30
    llama_7b = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, vocab_size=32000)
    activations, keys_values = 2 * (4 * 11008 + 4 * 4096), 2 * 2 * 32 * 8 * 128 * 2  # bytes a token: 120,832 and 262,144
    budget = cuda_token_budget(10 * gib, llama_7b, 2)
    assert budget == (5 * gib - 2 * 512 * 32000 * 4) // (activations + keys_values) == 13676
    assert 2 * budget < cuda_token_budget(20 * gib, llama_7b, 2) < 2.05 * budget  # the logits' share is fixed
    smollm2 = LlamaConfig(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, vocab_size=49152)
    assert cuda_token_budget(130 * gib, smollm2, 4) == CUDA_TOKEN_BUDGET_RANGE[1]
    assert cuda_token_budget(0, llama_7b, 2) == CUDA_TOKEN_BUDGET_RANGE[0]  # then out-of-memory errors halve it
    # GPT-2 names its sizes n_embd, n_layer, n_head and leaves n_inner unset (4 x n_embd); no grouped key/value heads
    gpt2 = (8 * gib * 0.5 - 2 * 512 * 50257 * 4) // (4 * (4 * 3072 + 4 * 768) + 2 * 2 * 12 * 12 * 64 * 4)
    assert cuda_token_budget(8 * gib, GPT2Config(), 4) == gpt2
    assert cuda_token_budget(8 * gib, PretrainedConfig(), 4) == CUDA_TOKEN_BUDGET  # sizes unknown: the fixed start
