"""The shared-prefix rule of the evaluator (which leading tokens every prompt of a call shares), without a model."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from editguard.evaluator import shared_prefix_length

token_rows = st.lists(st.lists(st.integers(0, 5), min_size=1, max_size=12), min_size=1, max_size=6)


@given(token_rows)
def test_the_prefix_is_common_to_all_rows_and_leaves_each_row_a_token(rows: list[list[int]]) -> None:
    length = shared_prefix_length(rows)
    assert 0 <= length < min(len(row) for row in rows)
    assert all(row[:length] == rows[0][:length] for row in rows)


@given(token_rows)
def test_the_prefix_is_the_longest_such(rows: list[list[int]]) -> None:
    length = shared_prefix_length(rows)
    longer = length + 1
    if longer < min(len(row) for row in rows):
        assert any(row[:longer] != rows[0][:longer] for row in rows)


def test_examples() -> None:
    assert shared_prefix_length([]) == 0
    assert shared_prefix_length([[1, 2, 3]]) == 2  # one row: all but its last token
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 9, 9]]) == 3
    assert shared_prefix_length([[1, 2], [1, 2, 3]]) == 1  # the shorter row keeps one token of its own
    assert shared_prefix_length([[7, 2], [1, 2]]) == 0
