"""The benchmark's own bookkeeping: which lm-eval task form a row set gets, and the work its FLOP floor counts.

The benchmark runs on demand, not in CI, so a wrong task form or floor would show only as a strange table
(sentiment once went to lm-eval as a channel-form task and agreed on 52% of its rows)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("evaluator_vs_lm_eval", ROOT / "benchmarks" / "evaluator_vs_lm_eval.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Words:
    """A tokenizer for counting: one token per word (the floor's arithmetic is what is under test)."""

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": [hash(word) % 1000 for word in text.split()]}


def _choice(prompt: str, answers: list[str], lengths: list[int]) -> dict[str, Any]:
    return {"pairs": [[prompt, a] for a in answers], "contexts": [prompt] * len(answers), "lengths": lengths}


def _channel(contexts: list[str], text: str, length: int) -> dict[str, Any]:
    return {"pairs": [[c, text] for c in contexts], "contexts": contexts, "lengths": [length] * len(contexts)}


def test_answer_choices_after_one_context_are_not_the_channel_form(bench: ModuleType) -> None:
    assert not bench.is_channel([_choice("Review: fine\nSentiment:", [" positive", " negative"], [1, 1])])
    assert bench.is_channel([_channel(["is yes:", "is no:"], " the passage", 2)])


def _spec(tmp_path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return {"data": str(data), "add_special_tokens": True}


def test_the_floor_counts_a_shared_context_once_and_reads_every_continuation_token(bench: ModuleType, tmp_path: Path) -> None:
    rows = [_choice("a b c", [" x", " y z"], [1, 2]), _choice("d e", [" x", " y z"], [1, 2])]
    tokens, reads = bench.floor_work(_spec(tmp_path, rows), Words(), generated=0)
    assert tokens == (3 + 2) + 2 * (0 + 1)  # each context once; continuation tokens after the first
    assert reads == 2 * (1 + 2)  # every continuation token is predicted at one position


def test_the_floor_counts_each_channel_context_and_the_text_after_each(bench: ModuleType, tmp_path: Path) -> None:
    rows = [_channel(["yes q one", "no q one"], " p p p", 3)]
    tokens, reads = bench.floor_work(_spec(tmp_path, rows), Words(), generated=0)
    assert tokens == 3 + 3 + 2 * 2
    assert reads == 2 * 3


def test_the_floor_counts_a_prefix_every_prompt_shares_once_and_generated_tokens(bench: ModuleType, tmp_path: Path) -> None:
    rows = [{"prompt": "s1 s2 s3 one"}, {"prompt": "s1 s2 s3 two words"}]
    tokens, reads = bench.floor_work(_spec(tmp_path, rows), Words(), generated=7)
    assert tokens == (4 + 5 - 3) + 7
    assert reads == 7


def test_the_floor_counts_each_templates_demonstrations_once(bench: ModuleType, tmp_path: Path) -> None:
    """ner's prompts part after their first line (one template per entity type): each distinct prefix counts once."""
    rows = [{"prompt": f"demo {kind} k1 k2 {tail}"} for kind in ("people", "places") for tail in ("one", "two three")]
    tokens, _ = bench.floor_work(_spec(tmp_path, rows), Words(), generated=0)
    assert tokens == 1 + 2 * (3 + 1 + 2)  # "demo"; per template "KIND k1 k2", then each prompt's own tokens
    assert bench.distinct_prefixes(sorted([(1, 2), (1, 2), (1, 3), (4,)])) == 2 + 1 + 1  # a repeated row adds nothing


def test_per_repeat_speedups_take_lm_evals_best_batch_size_of_each_repeat(bench: ModuleType) -> None:
    """The per-repeat column: each repeat's fastest lm-eval process over editguard's process of the same repeat."""
    runs = {
        "editguard": [{"process_time": 20.0}, {"process_time": 25.0}],
        "lm-eval bs=8": [{"process_time": 70.0}, {"process_time": 60.0}],
        "lm-eval bs=32": [{"process_time": 66.0}, {"process_time": 80.0}],
    }
    assert bench.repeat_speedups(runs) == pytest.approx([3.3, 2.4])
