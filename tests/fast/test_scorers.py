from __future__ import annotations

import string
import warnings

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from editguard.tasks.scorers import (
    entity_counts,
    entity_f1,
    exact_match,
    final_number,
    gsm8k_gold_number,
    normalize_answer,
    normalize_number,
    parse_entity_list,
    parse_label,
    reciprocal_rank,
    rouge_f_scores,
    rouge_mean,
    study_entity_recall,
    study_letter_in_output,
    study_number_in_output,
    study_span_match,
    tags_from_entities,
    token_f1,
)

modest = settings(max_examples=200, deadline=None)

# --- normalisation, exact match, token F1 ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The  Cat, sat!", "cat sat"),
        ("An apple a day", "apple day"),
        ("theatre and anchor", "theatre and anchor"),  # articles only as whole words
        ("", ""),
        ("  ...  ", ""),
        ("U.S.A.", "usa"),
        ("Hello\n\tWorld", "hello world"),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_exact_match_hand_cases() -> None:
    assert exact_match("The Eiffel Tower.", ["eiffel tower"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel Tower", "the eiffel"]) == 1.0
    assert exact_match("Eiffel Tower", ["Louvre"]) == 0.0
    assert exact_match("anything", []) == 0.0
    assert exact_match("", [""]) == 1.0
    assert exact_match("", ["x"]) == 0.0


def test_token_f1_hand_cases() -> None:
    assert token_f1("the cat sat", ["cat sat"]) == 1.0
    # pred {cat, sat, down}, gold {cat, sat}: P = 2/3, R = 1, F = 0.8
    assert token_f1("cat sat down", ["cat sat"]) == pytest.approx(0.8)
    assert token_f1("cat cat", ["cat"]) == pytest.approx(2 / 3)  # repeated tokens count once each side
    assert token_f1("dog", ["cat sat", "dog house"]) == pytest.approx(2 / 3)  # best gold wins
    assert token_f1("", [""]) == 1.0
    assert token_f1("the", ["a"]) == 1.0  # both normalise to empty
    assert token_f1("", ["cat"]) == 0.0
    assert token_f1("cat", [""]) == 0.0
    assert token_f1("cat", []) == 0.0
    assert token_f1("dog", ["cat"]) == 0.0


safe_phrases = st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=30).filter(
    lambda s: normalize_answer(s) != ""
)


@modest
@given(safe_phrases, st.sampled_from(["!", ".", "?", '"', ""]))
def test_exact_match_ignores_case_punctuation_and_articles(phrase: str, mark: str) -> None:
    assert exact_match("The " + phrase.upper() + "!", [phrase]) == 1.0
    assert exact_match(mark + " an " + phrase.lower() + mark, [phrase.swapcase()]) == 1.0


@modest
@given(st.text(max_size=40), st.lists(st.text(max_size=40), max_size=3))
def test_token_f1_is_a_fraction(prediction: str, golds: list[str]) -> None:
    assert 0.0 <= token_f1(prediction, golds) <= 1.0


@modest
@given(st.text(min_size=1, max_size=40).filter(lambda s: any(ch.isalnum() for ch in s)))
def test_token_f1_of_identical_texts_is_one(text: str) -> None:
    assert token_f1(text, [text]) == 1.0


# --- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", "12"),
        ("12.0", "12"),
        ("12.00", "12"),
        ("-3", "-3"),
        ("0.50", "0.5"),
        ("$1,234.50", "1234.5"),
        (" 1 000 ", "1000"),
        ("100", "100"),  # no exponent form from Decimal.normalize()
        ("7.", "7"),
        ("-0.0", "0"),
        ("+5", "5"),
        ("123456789012345678901234567890.10", "123456789012345678901234567890.1"),  # no float rounding
    ],
)
def test_normalize_number(text: str, expected: str) -> None:
    assert normalize_number(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1e5", "NaN", "Infinity", "1.2.3", "--3"])
def test_normalize_number_rejects_non_numbers(text: str) -> None:
    with pytest.raises(ValueError, match="is not a number"):
        normalize_number(text)


numberish = st.from_regex(r"-?\$?[0-9]{1,12}(\.[0-9]{0,6})?", fullmatch=True) | st.decimals(
    allow_nan=False, allow_infinity=False, places=4
).map(lambda d: format(d, "f"))


@modest
@given(numberish)
def test_normalize_number_is_idempotent(text: str) -> None:
    once = normalize_number(text)
    assert normalize_number(once) == once


def test_gsm8k_gold_number() -> None:
    assert gsm8k_gold_number("She has 3 + 4 = <<3+4=7>>7 apples.\n#### 7") == "7"
    assert gsm8k_gold_number("#### 1,234") == "1234"
    assert gsm8k_gold_number("x #### 5\n#### -2.50") == "-2.5"  # the last marker
    with pytest.raises(ValueError, match="no '####'"):
        gsm8k_gold_number("The answer is 7.")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("3 + 4 = 7\n#### 1,234", "1234"),
        ("So 5 apples.\n#### 7 apples, not 9", "7"),  # first number after the marker
        ("The answer is 7.", "7"),
        ("First 3, then 4. The ANSWER IS $12.00 in total, from 10", "12"),
        ("the answer is 5. Wait, the answer is -8.", "-8"),  # the last 'answer is'
        ("He pays $1,234.50 and then 3 more, so 1,237.50", "1237.5"),
        ("It costs -$5 overall", "-5"),
        ("10-3 = 7", "7"),
        ("10-3", "3"),  # a hyphen after a digit is a minus, not a sign
        ("version 3.12", "3.12"),
        ("no number here", None),
        ("", None),
        ("#### none\nso it was 42", "42"),  # a marker with no number falls through
        ("answer is unknown; I guess 6", "6"),
    ],
)
def test_final_number(output: str, expected: str | None) -> None:
    assert final_number(output) == expected


# --- ROUGE ---------------------------------------------------------------------------------------


def test_rouge_hand_cases() -> None:
    assert rouge_f_scores("the cat sat", "the cat sat") == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    assert rouge_mean("", "the cat") == 0.0
    assert rouge_mean("dogs", "dog") == pytest.approx(2 / 3)  # stemmed match, but one word has no bigram
    # pred "the cat" vs ref "the cat sat": R1 = 2*(1*2/3)/(5/3) = 0.8, R2 = 2*(1*1/2)/(3/2) = 2/3, RL = 0.8
    scores = rouge_f_scores("the cat", "the cat sat")
    assert scores["rouge1"] == pytest.approx(0.8)
    assert scores["rouge2"] == pytest.approx(2 / 3)
    assert scores["rougeL"] == pytest.approx(0.8)
    assert rouge_mean("the cat", "the cat sat") == pytest.approx((0.8 + 2 / 3 + 0.8) / 3)


@modest
@given(st.text(max_size=60), st.text(max_size=60))
def test_rouge_mean_is_a_fraction(prediction: str, reference: str) -> None:
    assert 0.0 <= rouge_mean(prediction, reference) <= 1.0


ascii_words = st.lists(st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=8), min_size=2)
separators = st.sampled_from([" ", ", ", ". ", "\n", " - ", "! "])


@modest
@given(ascii_words, separators)
def test_rouge_mean_of_identical_texts_is_one(words: list[str], separator: str) -> None:
    # Two words at least: a single word has no bigram, so ROUGE-2 (and the mean) cannot be 1.
    text = separator.join(words)
    assert rouge_mean(text, text) == pytest.approx(1.0)


# --- NER -----------------------------------------------------------------------------------------


def test_entity_counts_hand_cases() -> None:
    gold = ["B-PER", "I-PER", "O", "B-LOC"]
    assert entity_counts(gold, ["B-PER", "O", "O", "B-LOC"]) == (1, 2, 2)  # PER span too short
    assert entity_counts(gold, gold) == (2, 2, 2)
    assert entity_counts(gold, ["B-ORG", "I-ORG", "O", "B-LOC"]) == (1, 2, 2)  # right span, wrong type
    assert entity_counts([], []) == (0, 0, 0)
    assert entity_counts(["O", "O"], ["B-MISC", "O"]) == (0, 1, 0)


def test_entity_counts_adjacent_entities_and_orphan_i_tags() -> None:
    # Adjacent entities of different types are separate, even when the second starts with I-.
    assert entity_counts(["B-PER", "B-LOC", "I-LOC"], ["B-PER", "I-LOC", "I-LOC"]) == (2, 2, 2)
    # seqeval starts an entity at an I- tag with no B- before it.
    assert entity_counts(["I-ORG", "I-ORG", "O"], ["B-ORG", "I-ORG", "O"]) == (1, 1, 1)
    # Two B- tags of one type in a row are two entities.
    assert entity_counts(["B-LOC", "B-LOC"], ["B-LOC", "I-LOC"]) == (0, 1, 2)


def test_entity_counts_rejects_different_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        entity_counts(["O"], ["O", "O"])


def _seqeval_f1(gold: list[list[str]], predicted: list[list[str]]) -> float:
    from seqeval.metrics import f1_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns when precision or recall is 0/0
        return float(f1_score(gold, predicted))


def _ours(gold: list[list[str]], predicted: list[list[str]]) -> float:
    return entity_f1(entity_counts(g, p) for g, p in zip(gold, predicted, strict=True))


HAND_TAGGINGS = [
    ([["B-PER", "I-PER", "O"], ["B-LOC"]], [["B-PER", "I-PER", "O"], ["O"]]),
    ([["B-PER", "B-LOC", "I-LOC", "O"]], [["B-PER", "I-LOC", "O", "B-MISC"]]),
    ([["I-ORG", "I-ORG"], ["O", "B-ORG"]], [["B-ORG", "I-ORG"], ["B-ORG", "O"]]),
    ([["O", "O"]], [["B-PER", "O"]]),
    ([["B-LOC"]], [["O"]]),
]


@pytest.mark.parametrize(("gold", "predicted"), HAND_TAGGINGS)
def test_entity_f1_agrees_with_seqeval_on_hand_cases(gold: list[list[str]], predicted: list[list[str]]) -> None:
    assert _ours(gold, predicted) == pytest.approx(_seqeval_f1(gold, predicted), abs=1e-9)


def test_entity_f1_hand_values() -> None:
    assert entity_f1([(1, 2, 2), (1, 1, 2)]) == pytest.approx(4 / 7)
    assert entity_f1([]) == 1.0
    assert entity_f1([(0, 0, 0), (0, 0, 0)]) == 1.0  # seqeval says 0.0 here; see entity_f1's docstring
    assert entity_f1([(0, 3, 0)]) == 0.0
    assert entity_f1([(0, 0, 3)]) == 0.0


tag = st.sampled_from(["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC"])
tagged_pair = st.lists(st.tuples(tag, tag), max_size=10).map(
    lambda pairs: ([g for g, _ in pairs], [p for _, p in pairs])
)
taggings = st.lists(tagged_pair, min_size=1, max_size=5)


@modest
@given(taggings)
def test_entity_f1_agrees_with_seqeval_on_random_taggings(sentences: list[tuple[list[str], list[str]]]) -> None:
    gold = [g for g, _ in sentences]
    predicted = [p for _, p in sentences]
    counts = [entity_counts(g, p) for g, p in sentences]
    assume(sum(c[1] + c[2] for c in counts) > 0)  # with no entities at all seqeval gives 0, we give 1
    assert _ours(gold, predicted) == pytest.approx(_seqeval_f1(gold, predicted), abs=1e-9)


@modest
@given(st.lists(st.lists(tag, max_size=10), max_size=5))
def test_entity_f1_of_a_perfect_tagging_is_one(sentences: list[list[str]]) -> None:
    assert entity_f1(entity_counts(s, s) for s in sentences) == 1.0


def test_tags_from_entities_basic_and_multiword() -> None:
    tokens = "I flew from New York to Paris".split()
    tags = tags_from_entities(tokens, [("Paris", "LOC"), ("New  York", "LOC")])
    assert tags == ["O", "O", "O", "B-LOC", "I-LOC", "O", "B-LOC"]


def test_tags_from_entities_longer_mentions_first_and_no_retagging() -> None:
    tokens = "New York City is big".split()
    tags = tags_from_entities(tokens, [("York", "PER"), ("New York City", "LOC")])
    assert tags == ["B-LOC", "I-LOC", "I-LOC", "O", "O"]  # "York" finds no free occurrence


def test_tags_from_entities_first_free_occurrence_and_case() -> None:
    tokens = "Paris and paris and Paris".split()
    assert tags_from_entities(tokens, [("Paris", "LOC")]) == ["B-LOC", "O", "O", "O", "O"]
    twice = tags_from_entities(tokens, [("Paris", "LOC"), ("Paris", "LOC")])
    assert twice == ["B-LOC", "O", "O", "O", "B-LOC"]  # case-sensitive occurrences come first
    assert tags_from_entities(tokens, [("PARIS", "LOC")]) == ["B-LOC", "O", "O", "O", "O"]


def test_tags_from_entities_ignores_unmatched_and_empty_mentions() -> None:
    tokens = ["Ada", "Lovelace", "wrote"]
    assert tags_from_entities(tokens, [("Babbage", "PER"), ("", "PER"), ("Ada Love", "PER")]) == ["O"] * 3
    assert tags_from_entities([], [("Ada", "PER")]) == []
    assert tags_from_entities(tokens, [("Ada Lovelace", "PER")]) == ["B-PER", "I-PER", "O"]


def test_parse_entity_list() -> None:
    text = '1. "Barack Obama"\n2) Hawaii.\n- Paris; London\n* Berlin,  •  Rome\n\nParis\nN/A'
    assert parse_entity_list(text) == ["Barack Obama", "Hawaii", "Paris", "London", "Berlin", "Rome"]
    assert parse_entity_list("None.") == []
    assert parse_entity_list("") == []
    assert parse_entity_list("No entities") == []
    assert parse_entity_list("Nothing, 3.14") == ["3.14"]  # a decimal is not a numbered bullet
    assert parse_entity_list("'Apple'.") == ["Apple"]


# --- ranking and labels --------------------------------------------------------------------------


def test_reciprocal_rank_hand_cases() -> None:
    assert reciprocal_rank([0.1, 0.9, 0.5], 1) == 1.0
    assert reciprocal_rank([0.1, 0.9, 0.5], 2) == 0.5
    assert reciprocal_rank([0.1, 0.9, 0.5], 0) == pytest.approx(1 / 3)
    assert reciprocal_rank([0.5, 0.5, 0.5], 0) == 1.0  # ties: lower index first
    assert reciprocal_rank([0.5, 0.5, 0.5], 2) == pytest.approx(1 / 3)
    assert reciprocal_rank([-2.0], 0) == 1.0
    with pytest.raises(ValueError, match="outside"):
        reciprocal_rank([0.1, 0.2], 2)
    with pytest.raises(ValueError, match="outside"):
        reciprocal_rank([0.1, 0.2], -1)


scores_and_gold = st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=8).flatmap(
    lambda scores: st.tuples(st.just(scores), st.integers(0, len(scores) - 1))
)


@modest
@given(scores_and_gold)
def test_reciprocal_rank_is_in_unit_interval_and_one_for_a_strict_maximum(case: tuple[list[float], int]) -> None:
    scores, gold = case
    assert 0.0 < reciprocal_rank(scores, gold) <= 1.0
    boosted = list(scores)
    boosted[gold] = max(scores) + 1.0
    assert reciprocal_rank(boosted, gold) == 1.0


LABELS = {"yes": 1, "no": 0, "positive": 1, "negative": 0}


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("Yes", 1),
        ("  no, because it rains", 0),
        ("Positive.", 1),
        ("**Negative**", 0),
        ("- yes", 1),
        ('"No"', 0),
        ("", None),
        ("...", None),
        ("Maybe yes", None),  # only the first word counts
        ("yes/no", None),
        ("Answer: yes", None),
    ],
)
def test_parse_label(output: str, expected: int | None) -> None:
    assert parse_label(output, LABELS) == expected


# --- the study's scorers, flaws included ----------------------------------------------------------


def test_study_number_in_output_reproduces_substring_matching() -> None:
    assert study_number_in_output("so the answer is 7", "7") == 1.0
    assert study_number_in_output("the answer is 17", "7") == 1.0  # flaw: "7" inside "17"
    assert study_number_in_output("it is 1,234", "1234") == 0.0  # flaw: commas break it
    assert study_number_in_output("no idea", "7") == 0.0


def test_study_entity_recall_reproduces_substring_recall() -> None:
    assert study_entity_recall("Obama visited Paris", ["Obama", "Paris"]) == 1.0
    assert study_entity_recall("Obama", ["Obama", "Paris"]) == 0.5
    assert study_entity_recall("the Parisian cafe", ["Paris"]) == 1.0  # flaw: substring, no types
    assert study_entity_recall("anything", []) is None


def test_study_letter_in_output_reproduces_its_flaws() -> None:
    assert study_letter_in_output("The answer is (B).", "B") == 1.0
    assert study_letter_in_output("A man walks in.", "A") == 1.0  # flaw: the article counts
    assert study_letter_in_output("the answer is c", "C") == 0.0  # case-sensitive
    assert study_letter_in_output("", "A") == 0.0


def test_study_span_match_reproduces_its_flaws() -> None:
    assert study_span_match("Q: capital? Passage: Paris is ... A: London", ["Paris"])  # passage leaks
    assert study_span_match("we start now", ["art"])  # flaw: substring of a word
    assert study_span_match("anything", ["The"])  # flaw: gold normalises to empty
    assert not study_span_match("London", ["Paris", "Lyon"])
    assert not study_span_match("London", [])
