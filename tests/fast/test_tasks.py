"""The eight abilities: registry, probe sets, both protocols' prompts, scoring of outputs, sampling."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from editguard.stages.examples import sample
from editguard.settings import PROTOCOLS as SETTINGS_PROTOCOLS
from editguard.tasks import PROTOCOLS, Example, get_task, task_names
from editguard.tasks.sources import DataSource, DataSchemaError, load_records

ABILITIES = ["closed_qa", "dialogue", "ner", "nli", "open_qa", "reasoning", "sentiment", "summarization"]
# The study's prompt table (templates verbatim, new tokens, scoring), kept with the study-layout test data.
STUDY_PROMPTS = Path(__file__).resolve().parents[1] / "data" / "study-layout" / "prompts.md"


def _records(ability: str) -> list[dict]:
    return load_records(ability, DataSource("probe"))


def test_the_eight_abilities_with_both_protocols() -> None:
    assert task_names() == ABILITIES
    assert PROTOCOLS == SETTINGS_PROTOCOLS
    for name in ABILITIES:
        for protocol in PROTOCOLS:
            task = get_task(name, protocol)
            assert task.version >= 1 and task.kind in ("choice", "generate")


def test_unknown_ability_suggests_the_closest() -> None:
    with pytest.raises(KeyError, match="did you mean 'sentiment'"):
        get_task("sentimnet")


@pytest.mark.parametrize("ability", ABILITIES)
def test_probe_sets_are_large_enough_and_well_formed(ability: str) -> None:
    records = _records(ability)
    assert len(records) >= 100
    for protocol in PROTOCOLS:
        examples = get_task(ability, protocol).examples(records)
        assert len({e.id for e in examples}) == len(examples)  # ids are unique


@pytest.mark.parametrize("ability", ["closed_qa", "dialogue", "nli", "sentiment"])
def test_choice_probe_sets_are_balanced(ability: str) -> None:
    examples = get_task(ability).examples(_records(ability))
    counts = [sum(e.gold == index for e in examples) for index in range(len(examples[0].pairs))]
    assert max(counts) - min(counts) <= 1


class _WordCounter:
    """A stand-in evaluator (this test is about pairing, not models): log-likelihood = how often the
    continuation's first word appears in the context, so the context that names the passage's fact wins."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def loglikelihood_with_lengths(self, requests: list) -> list[tuple[float, int]]:
        self.seen += [(r.context, r.continuation) for r in requests]
        return [(float(r.context.count(r.continuation.split()[0])), 1) for r in requests]

    def truncated(self, requests: list) -> list[bool]:
        return [False] * len(requests)


def test_closed_qa_scores_the_passage_after_each_answer_the_channel_form() -> None:
    """Two contexts (answer no, answer yes) and one continuation (the passage): each pair scored once, in order."""
    from editguard.stages.scoring import score_examples

    task = get_task("closed_qa")
    record = {"question": "is Oahu an island", "title": "", "answer": True, "passage": "yes, Oahu is an island."}
    example = task.examples([record])[0]
    assert [context for context, _ in example.pairs] == [
        'The answer to the question "is Oahu an island?" is no, as this text explains:\n',
        'The answer to the question "is Oahu an island?" is yes, as this text explains:\n',
    ]
    assert {continuation for _, continuation in example.pairs} == {"yes, Oahu is an island."}
    assert example.answer.endswith("is yes, as this text explains:\n")  # what a report shows as expected
    evaluator = _WordCounter()
    assert score_examples(task, [example], evaluator)[example.id].outcome == 1.0
    assert evaluator.seen == example.pairs


def _study_table() -> dict[str, tuple[str, int]]:
    """The study's protocol table: ability -> (prompt template verbatim, new tokens)."""
    table = {}
    for line in STUDY_PROMPTS.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].startswith("`"):
            template = re.match(r"`([^`]*)`", cells[1]).group(1)  # type: ignore[union-attr]
            table[cells[0]] = (template, int(cells[2]))
    return table


STUDY_NAMES = {
    "reasoning": "reasoning", "NLI": "nli", "open-domain QA": "open_qa", "closed-domain QA": "closed_qa",
    "dialogue": "dialogue", "summarization": "summarization", "NER": "ner", "sentiment": "sentiment",
}  # fmt: skip


def test_study_templates_equal_the_studys_exactly() -> None:
    table = _study_table()
    assert set(table) == set(STUDY_NAMES)
    for study_name, ability in STUDY_NAMES.items():
        template, new_tokens = table[study_name]
        expected = template.replace("\\n", "\n")
        expected = expected.replace("{output[0]}", "{passage}")
        expected = expected.replace("{Person/Location/Organization/Miscellaneous}", "{entity_type}")
        assert get_task(ability, "study").template == expected, ability
        assert get_task(ability, "study").max_new_tokens == new_tokens, ability


def test_study_prompts_are_filled_byte_for_byte() -> None:
    record = _records("sentiment")[0]
    example = get_task("sentiment", "study").examples([record])[0]
    assert example.prompt == (
        "For each snippet of text,label the sentiment of the text as positive or negative.The answer should be "
        f"exact 'positive' or 'negative'. text: {record['sentence']} answer:"
    )
    ner = get_task("ner", "study").examples([_records("ner")[0]])[0]
    assert [re.search("identify (\\w+) Entity", p).group(1) for p in ner.prompts] == [
        "Person", "Organization", "Location", "Miscellaneous",
    ]  # fmt: skip


def test_default_reasoning_prompt_holds_no_gold_rationale() -> None:
    record = _records("reasoning")[0]
    rationale = record["answer"].split("####")[0].strip()
    example = get_task("reasoning").examples([record])[0]
    assert rationale not in example.prompt
    assert rationale in get_task("reasoning", "study").examples([record])[0].prompt


def _score(ability: str, protocol: str, record: dict, outputs: list[str]) -> object:
    task = get_task(ability, protocol)
    example = task.examples([record])[0]
    return task.score_outputs([example], [outputs])[0]


def test_generation_scorers_on_hand_checked_outputs() -> None:
    qa = {"question": "who wrote hamlet", "answer": ["William Shakespeare", "Shakespeare"], "passage": "..."}
    assert _score("open_qa", "default", qa, [" Shakespeare."]).outcome == 1.0
    assert _score("open_qa", "default", qa, ["It was written by Shakespeare"]).outcome == 0.0  # answer only
    gsm = {"question": "2 + 3?", "answer": "2 + 3 = 5\n#### 5"}
    assert _score("reasoning", "default", gsm, [" 2 + 3 = 5\n#### 5"]).outcome == 1.0
    unparsed = _score("reasoning", "default", gsm, [" I do not know"])
    assert (unparsed.outcome, unparsed.parsed) == (0.0, False)
    assert _score("reasoning", "study", gsm, [" 5 apples"]).outcome == 1.0
    ner = {"id": "1", "tokens": ["Maria", "visited", "Paris", "."], "ner_tags": [1, 0, 5, 0]}
    assert _score("ner", "default", ner, [" Maria", " none", " Paris", " none"]).outcome == [2.0, 2.0, 2.0]
    assert _score("ner", "default", ner, [" Paris", " none", " none", " none"]).outcome == [0.0, 1.0, 2.0]
    assert _score("ner", "study", ner, ["Maria", "", "Paris and more", ""]).outcome == [1, 1, 0, 0, 1, 1, 0, 0]
    chat = {"id": "d", "dialogue": "A: hi\nB: hello", "summary": "A and B greet each other."}
    assert _score("summarization", "default", chat, ["A and B greet each other."]).outcome == pytest.approx(1.0)
    label = {"idx": 0, "sentence": "great", "label": 1}
    assert _score("sentiment", "study", label, [" positive"]).outcome == 1.0
    assert _score("sentiment", "study", label, [" The"]).parsed is False


def test_study_open_qa_matcher_keeps_its_sticky_flag() -> None:
    """The study's flaw 3, reproduced only under the study protocol: after one hit, all count as right."""
    task = get_task("open_qa", "study")
    records = [
        {"question": "q1", "answer": ["Paris"], "passage": "Paris is a city."},
        {"question": "q2", "answer": ["Rome"], "passage": "nothing here"},
    ]
    examples = task.examples(records)
    assert [s.outcome for s in task.score_outputs(examples, [["x"], ["y"]])] == [1.0, 1.0]
    assert [s.outcome for s in task.score_outputs(examples[::-1], [["y"], ["x"]])] == [0.0, 1.0]


examples_strategy = st.lists(
    st.tuples(st.integers(0, 10_000), st.sampled_from(["0", "1", "2"])), min_size=1, max_size=60, unique_by=lambda t: t[0]
).map(lambda pairs: [Example(str(i), ("p",), stratum=s) for i, s in pairs])


@given(examples_strategy, st.integers(1, 80), st.randoms(use_true_random=False))
def test_sampling_is_seeded_stratified_and_order_free(examples: list[Example], limit: int, rng: object) -> None:
    chosen = sample(examples, limit)
    assert len(chosen) == min(limit, len(examples))
    shuffled = list(examples)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert {e.id for e in sample(shuffled, limit)} == {e.id for e in chosen}
    for stratum in {e.stratum for e in examples}:
        share = sum(e.stratum == stratum for e in examples) * len(chosen) / len(examples)
        assert abs(sum(e.stratum == stratum for e in chosen) - share) < 1 + 1e-9


def test_sample_is_not_the_first_n() -> None:
    examples = get_task("sentiment").examples(_records("sentiment"))
    chosen = sample(examples, 20)
    assert [e.id for e in chosen] != [e.id for e in examples[:20]]
    assert sum(e.gold for e in chosen) == 10  # stratified: the probe set is balanced


# --- new abilities are found, not listed -------------------------------------------------------------------

ECHO_MODULE = """
from editguard.tasks.base import Ability, Example, Scored, Task
from editguard.tasks.schema import STR


def to_example(index, record):
    return Example(str(index), ("Say " + record["word"] + ":",), target=record["word"])


def score(example, outputs):
    return Scored(float(outputs[0].strip() == example.target))


def normalise(record, position):
    if "text" in record:  # another source's name for the field
        record["word"] = record.pop("text")
    return record


ABILITY = Ability(
    name="echo",
    tasks=tuple(
        Task(name="echo", version=1, dataset="none", description="repeat a word", protocol=protocol, kind="generate",
             metric="accuracy", template="Say {word}:", to_example=to_example, chance=0.0, score=score, max_new_tokens=2)
        for protocol in ("default", "study")
    ),
    schema={"word": STR},
    normalise=normalise,
)
"""


@pytest.fixture
def extra_task_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder searched as part of the editguard.tasks package; what is registered from it is removed after."""
    import editguard.tasks
    from editguard.tasks import registry

    before = set(sys.modules)
    monkeypatch.setattr(editguard.tasks, "__path__", [*editguard.tasks.__path__, str(tmp_path)])
    yield tmp_path
    for name in set(task_names()) - set(ABILITIES):
        registry.unregister(name)
    for module in set(sys.modules) - before:
        if module.startswith("editguard.tasks."):
            del sys.modules[module]


def test_an_ability_module_dropped_into_the_package_is_found(extra_task_folder: Path) -> None:
    from editguard.tasks import registry

    (extra_task_folder / "echo.py").write_text(ECHO_MODULE, encoding="utf-8")
    registry.discover()
    assert task_names() == sorted(ABILITIES + ["echo"])
    task = get_task("echo", "study")
    records = load_records("echo", _jsonl(extra_task_folder / "words.jsonl", ['{"text": "hi"}', '{"word": "yo"}']))
    assert records == [{"word": "hi"}, {"word": "yo"}]  # the module's normaliser and schema were used
    examples = task.examples(records)
    assert [scored.outcome for scored in task.score_outputs(examples, [[" hi"], [" no"]])] == [1.0, 0.0]
    with pytest.raises(DataSchemaError, match="field 'word': is 5 .int.; write it as a string, per the echo schema"):
        load_records("echo", _jsonl(extra_task_folder / "bad.jsonl", ['{"word": 5}']))


def test_the_found_ability_is_gone_again() -> None:
    assert task_names() == ABILITIES  # the fixture put the registry back, whichever test ran first


def test_a_module_without_an_ability_record_is_named(extra_task_folder: Path) -> None:
    from editguard.tasks import registry

    (extra_task_folder / "helpers.py").write_text("X = 1\n", encoding="utf-8")
    with pytest.raises(TypeError, match=r"helpers.py has no ABILITY record.*starts with '_'"):
        registry.discover()


def test_an_ability_needs_one_task_per_protocol() -> None:
    from editguard.tasks import Ability

    default = get_task("sentiment")
    with pytest.raises(ValueError, match="one task per protocol"):
        Ability(name="sentiment", tasks=(default,), schema={"x": object()})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="holds a task named 'sentiment'"):
        Ability(name="mood", tasks=(default, get_task("sentiment", "study")), schema={"x": object()})  # type: ignore[dict-item]


def test_registering_another_ability_under_a_known_name_is_refused() -> None:
    import dataclasses

    from editguard.tasks import get_ability
    from editguard.tasks.registry import register

    register(get_ability("ner"))  # the very same record: nothing happens
    with pytest.raises(ValueError, match="'ner' is registered twice"):
        register(dataclasses.replace(get_ability("ner")))


def _jsonl(path: Path, lines: list[str]) -> DataSource:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return DataSource("file", path=str(path))
