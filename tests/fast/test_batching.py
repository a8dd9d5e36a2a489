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
