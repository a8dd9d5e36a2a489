"""The shared-prefix rules of the evaluator (which leading tokens every prompt of a call shares, and which
clusters of prompts share more), without a model."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from editguard.evaluator import MIN_CLUSTER_ROWS, MIN_SHARED_PREFIX, prefix_clusters, shared_prefix_length

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


# ----------------------------------------------------------------------------- prefix clusters


@st.composite
def templated_rows(draw: st.DrawFn) -> list[list[int]]:
    """Prompts of a few templates: a common opening, each template's own block, then each prompt's own tokens."""
    opening = draw(st.lists(st.integers(0, 3), max_size=20))
    blocks = draw(st.lists(st.lists(st.integers(0, 3), max_size=40), min_size=1, max_size=5))
    rows = []
    for block in blocks:
        for _ in range(draw(st.integers(1, 2 * MIN_CLUSTER_ROWS))):
            rows.append(opening + block + draw(st.lists(st.integers(0, 3), min_size=1, max_size=6)))
    return draw(st.permutations(rows))


@given(templated_rows())
def test_clusters_split_the_rows_only_where_each_part_shares_much_more(rows: list[list[int]]) -> None:
    clusters = prefix_clusters(rows)
    assert sorted(index for cluster in clusters for index in cluster) == list(range(len(rows)))  # each row once
    if len(clusters) > 1:
        common = shared_prefix_length(rows)
        for cluster in clusters:
            assert len(cluster) >= MIN_CLUSTER_ROWS
            assert shared_prefix_length([rows[index] for index in cluster]) >= common + MIN_SHARED_PREFIX


@given(templated_rows(), st.randoms(use_true_random=False))
def test_clusters_do_not_depend_on_the_order_of_the_rows(rows: list[list[int]], rng: random.Random) -> None:
    order = list(range(len(rows)))
    rng.shuffle(order)
    shuffled = [rows[index] for index in order]
    as_rows = [sorted(tuple(rows[index]) for index in cluster) for cluster in prefix_clusters(rows)]
    as_shuffled = [sorted(tuple(shuffled[index]) for index in cluster) for cluster in prefix_clusters(shuffled)]
    assert as_rows == as_shuffled


def test_cluster_examples() -> None:
    opening, own = [9] * 20, [[1], [2, 2], [3]] * 4
    labels = [[5] + [5] * MIN_SHARED_PREFIX, [6] + [6] * MIN_SHARED_PREFIX]  # two templates, as ner's entity types
    rows = [opening + label + tail for label in labels for tail in own]
    assert prefix_clusters(rows) == [list(range(12)), list(range(12, 24))]
    assert prefix_clusters(rows[:12] + rows[12:12 + MIN_CLUSTER_ROWS - 1]) == [list(range(12 + MIN_CLUSTER_ROWS - 1))]  # a part too small
    short = [[5] * (MIN_SHARED_PREFIX - 2), [6] * (MIN_SHARED_PREFIX - 2)]  # templates that add too little to the prefix
    assert len(prefix_clusters([opening + label + tail for label in short for tail in own])) == 1
    assert prefix_clusters([]) == [[]] and prefix_clusters([[1, 2]]) == [[0]]
