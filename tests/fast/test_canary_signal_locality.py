"""The canary's record and row, the no-signal test, and the locality strategy: no model is loaded."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from editguard import statistics as stats
from editguard.editing.requests import EditRequest, load_requests
from editguard.locality import Template, Vocabulary, shipped_vocabulary, unrelated_prompts
from editguard.statistics.metrics import get_metric
from editguard.reports.lines import canary_lines
from editguard.reports.rows import Row, no_signal_row
from editguard.reports.run import with_holm
from editguard.settings import Settings
from editguard.tasks import all_names, canary_names, get_ability, get_task, task_names
from editguard.statistics.verdict import Outcome, Policy, signal


def test_the_canary_is_registered_apart_from_the_eight_abilities() -> None:
    assert canary_names() == ["canary"]
    assert "canary" not in task_names() and len(task_names()) == 8
    assert all_names() == sorted([*task_names(), "canary"])
    assert get_ability("canary").role == "canary"


def test_a_canary_example_is_its_first_word_then_the_rest() -> None:
    task = get_task("canary")
    example = task.to_example(0, {"idx": 7, "text": "The kettle clicked off."})
    assert (example.id, example.prompt, example.target) == ("7", "The", " kettle clicked off.")


def test_log_perplexity_is_lower_is_better_and_gated_by_the_bootstrap_of_its_mean() -> None:
    metric = get_metric("log_perplexity")
    assert not metric.higher_is_better and metric.kind.value == "real" and metric.analysis.value == "aggregate_bootstrap"
    assert not metric.sequential  # unbounded outcomes: no early stopping


def test_the_canary_tolerance_is_its_own_whatever_the_overall_one() -> None:
    settings = Settings(tolerance=0.2)
    assert settings.tolerance_for("canary") == 0.05 and settings.tolerance_for("nli") == 0.2
    assert Settings(tolerances={"canary": 0.1}).tolerance_for("canary") == 0.1


def test_the_canary_row_shows_the_perplexity_ratio_and_the_relative_change() -> None:
    row = Row(
        "canary", "canary sentences", "fail", baseline=4.3, edited=4.3 + math.log(2.0), tolerance=0.05, n=300,
        metric="log_perplexity", lower=math.log(1.5), upper=math.log(2.5), role="canary",
        relative_change={"model.layers.4.mlp.down_proj.weight": 1.78},
    )  # fmt: skip
    point, low, high = row.ratio  # type: ignore[misc]
    assert (round(point, 6), round(low, 6), round(high, 6)) == (2.0, 1.5, 2.5)
    lines = canary_lines(row)
    assert lines[0] == "canary: perplexity ratio edited/base 2.000 [1.500, 2.500] on 300 sentences, FAIL beyond 1.051  FAIL"
    assert lines[1].endswith("model.layers.4.mlp.down_proj.weight 1.7800")
    assert row.as_dict()["perplexity_ratio"] == pytest.approx(2.0)


def test_holm_leaves_the_canary_out_of_the_abilities_family() -> None:
    rows = [
        Row("nli", "RTE", "inconclusive", baseline=0.6, edited=0.55, tolerance=0.05, p_value=0.02, metric="accuracy"),
        Row("canary", "canary sentences", "pass", baseline=4.3, edited=4.3, tolerance=0.05, p_value=0.5, metric="log_perplexity", role="canary"),
    ]  # fmt: skip
    adjusted, _ = with_holm(rows, 0.05)
    by_name = {row.ability: row for row in adjusted}
    assert by_name["nli"].adjusted_p_value == pytest.approx(0.02)  # a family of one ability: not doubled by the canary
    assert by_name["canary"].adjusted_p_value == 0.5


# --- no signal ---------------------------------------------------------------------------------------------


def _binary(successes: int, n: int) -> dict[str, float]:
    return {f"{i:03d}": 1.0 if i < successes else 0.0 for i in range(n)}


@pytest.mark.parametrize(
    ("successes", "n", "present"),
    [(80, 160, False), (88, 160, False), (96, 160, False), (104, 160, True), (0, 160, False), (160, 160, True)],
)
def test_a_binary_baseline_has_signal_only_clearly_above_chance_and_tolerance(successes: int, n: int, present: bool) -> None:
    """0.600 on 160 is clearly above chance 0.5, but not clearly above 0.55: a drop of 0.05 would reach chance."""
    found = signal("nli", _binary(successes, n), 0.5, Policy(0.05), metric="accuracy")
    assert found.present is present


def test_the_binomial_p_value_is_the_exact_upper_tail() -> None:
    # P(X >= 3 | n=4, p=0.5) = 5/16
    assert stats.above_level_p_value(get_metric("accuracy"), [1.0, 1.0, 1.0, 0.0], 0.5) == pytest.approx(5 / 16)
    assert stats.above_level_p_value(get_metric("exact_match"), [0.0] * 50, 0.0) == 1.0


def test_a_zero_chance_ability_scoring_nothing_has_no_signal_and_one_scoring_well_has() -> None:
    assert not signal("reasoning", _binary(0, 160), 0.0, Policy(0.05), metric="accuracy").present
    assert signal("reasoning", _binary(40, 160), 0.0, Policy(0.05), metric="accuracy").present
    assert not signal("summarization", {str(i): 0.0 for i in range(120)}, 0.0, Policy(0.05), metric="rouge").present
    assert signal("summarization", {str(i): 0.3 * (i % 2) for i in range(120)}, 0.0, Policy(0.05), metric="rouge").present
    counts = {str(i): [0.0, 1.0, 1.0] for i in range(100)}  # nothing found: F1 0
    assert not signal("ner", counts, 0.0, Policy(0.05), metric="entity_f1").present
    found = {str(i): [1.0, 1.0, 1.0] if i % 2 else [0.0, 1.0, 1.0] for i in range(100)}  # F1 0.5
    assert signal("ner", found, 0.0, Policy(0.05), metric="entity_f1").present


def test_a_baseline_too_close_to_chance_for_a_drop_of_the_tolerance_has_no_signal() -> None:
    """The study's GSM8K on the embedded default: 0.020 on 200 (chance 0, tolerance 0.05) could never FAIL."""
    found = signal("reasoning", _binary(4, 200), 0.0, Policy(0.05), metric="accuracy")
    assert not found.present
    assert "is not clearly more than the tolerance 0.05 above chance 0.000" in found.message("GSM8K")
    assert signal("reasoning", _binary(40, 200), 0.0, Policy(0.05), metric="accuracy").present  # 0.200: room for 0.05


def test_the_no_signal_message_and_row_say_what_was_measured_and_what_would_help() -> None:
    found = signal("closed_qa", _binary(80, 160), 0.5, Policy(0.05), metric="accuracy")
    message = found.message("BoolQ")
    assert message.startswith("closed_qa (BoolQ): no signal: the base model's accuracy 0.500 on 160 examples")
    assert "exact binomial test" in message and "--editguard-data closed_qa=FILE" in message
    row = no_signal_row(get_task("closed_qa"), found, "skip")
    assert (row.verdict, row.passed, row.baseline) == (Outcome.NO_SIGNAL.value, None, 0.5)
    assert no_signal_row(get_task("closed_qa"), found, "fail").passed is False


# --- locality --------------------------------------------------------------------------------------------


def test_prompts_leave_out_every_entity_an_edit_names() -> None:
    requests = load_requests("counterfact-damage")
    touched = {word.lower() for r in requests for word in (r.subject + " " + r.target_new).split() if len(word) > 3}

    @settings(derandomize=True, max_examples=200, database=None)
    @given(unrelated_prompts(requests))
    def names_nothing_edited(prompt: str) -> None:
        words = {word.strip(".,'").lower() for word in prompt.split()}
        assert not words & touched - {"city", "river", "united"}, prompt

    names_nothing_edited()


def test_prompts_are_drawn_shortest_first_so_a_failure_shrinks_to_the_shortest() -> None:
    vocabulary = Vocabulary(
        (Template("A rather long template about {} here", "x"), Template("{} is", "x")), {"x": ("Longname", "Ab")}
    )
    seen: list[str] = []

    @settings(derandomize=True, max_examples=30, database=None)
    @given(unrelated_prompts((), vocabulary))
    def always_fails(prompt: str) -> None:
        seen.append(prompt)
        assert False

    with pytest.raises(AssertionError):
        always_fails()
    assert seen[-1] == "Ab is"  # hypothesis replays the minimal example last


def test_an_edit_touching_every_template_is_told() -> None:
    vocabulary = Vocabulary((Template("{} is", "x"),), {"x": ("Tokyo",)})
    with pytest.raises(ValueError, match="give your own strategy"):
        unrelated_prompts([EditRequest("Tokyo is in", "Tokyo", "Peru")], vocabulary)


@given(st.sampled_from(shipped_vocabulary().templates))
def test_every_shipped_template_has_one_slot_and_entities_of_its_kind(template: Template) -> None:
    assert template.text.count("{}") == 1
    assert len(shipped_vocabulary().entities[template.kind]) >= 20
