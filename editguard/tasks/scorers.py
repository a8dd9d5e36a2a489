"""Scorers: pure functions that turn one model output and its gold answer into a number.

This module owns answer normalisation (SQuAD-style text, GSM8K numbers), the text metrics (exact match,
token F1, ROUGE), entity-level NER counting on IOB2 tags, parsing of free-text answers (entity lists,
labels, final numbers) and ranking.  It also reproduces, on purpose and flaws included, the scorers of
the reference study (the ``study_*`` functions), so its numbers can be recomputed side by side with ours.

Everything here is deterministic and model-free; ``rouge_score`` and ``seqeval`` are imported lazily
because most tasks never need them.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")

# A number as models write it: optional sign and/or dollar sign (either order), digits either in
# thousands groups ("1,234") or plain, optional decimals.  The look-behind stops a match starting in
# the middle of a number ("12" inside "3.12") and keeps "10-3" from reading as 10 and -3.
_NUMBER = re.compile(r"(?<![\d.])(?:-\$?|\$-?)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_ANSWER_IS = re.compile(r"answer is", re.IGNORECASE)

_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
_rouge_scorer: Any = None  # built on first use: constructing it loads the stemmer

_BULLET = re.compile(r"^(?:[-*•]|\d+[.)](?!\d))\s*")
_QUOTES = "\"'`“”‘’«»"
_NO_ENTITY = frozenset({"none", "n/a", "no entities", "nothing"})


# --- SQuAD-style text answers -------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, collapse whitespace (SQuAD's order)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised gold; 0.0 otherwise or without golds."""
    predicted = normalize_answer(prediction)
    return float(any(predicted == normalize_answer(gold) for gold in golds))


def _f1_of_tokens(predicted: list[str], gold: list[str]) -> float:
    if not predicted or not gold:
        # SQuAD's convention: two empty answers agree fully, one empty answer not at all.
        return float(predicted == gold)
    overlap = sum((Counter(predicted) & Counter(gold)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted), overlap / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token-overlap F1 of the normalised tokens, best over the golds (0.0 without golds)."""
    predicted = normalize_answer(prediction).split()
    return max((_f1_of_tokens(predicted, normalize_answer(gold).split()) for gold in golds), default=0.0)


# --- numbers (GSM8K) -----------------------------------------------------------------------------


def normalize_number(text: str) -> str:
    """Canonical text of a number: "$1,234.50" -> "1234.5", "12.00" -> "12", "-3" -> "-3".

    Decimal, not float, so long numbers and decimals survive exactly.  Raises ValueError on text that
    is not a plain decimal number once spaces, '$', ',' and trailing periods are removed.
    """
    cleaned = re.sub(r"[\s$,]", "", text).rstrip(".")
    if not _PLAIN_NUMBER.fullmatch(cleaned):
        raise ValueError(f"{text!r} is not a number.")
    value = Decimal(cleaned)  # exact: the regex above admits only what Decimal reads without loss
    if value == 0:
        return "0"  # "-0", "0.00" and "0" are the same answer
    # Trailing zeros are trimmed on the text: Decimal.normalize() would round to the context's 28
    # digits and may switch to exponent form ("1E+2").
    digits = format(value, "f")
    return digits.rstrip("0").rstrip(".") if "." in digits else digits


def gsm8k_gold_number(answer: str) -> str:
    """The normalised number after the last '####' of a GSM8K reference answer."""
    if "####" not in answer:
        raise ValueError(f"The GSM8K answer has no '####' before its final number: {answer[-80:]!r}.")
    return normalize_number(answer.rsplit("####", 1)[1].strip())


def _numbers(text: str) -> list[str]:
    return _NUMBER.findall(text)


def final_number(output: str) -> str | None:
    """The final answer of a generated solution, normalised; None when the text has no number.

    Preference order: the first number after the last '####', then the first number after the last
    'answer is' (any case), then the last number anywhere.  A marker with no number after it falls
    through to the next rule rather than giving None, since the number may still be in the text.
    """
    if "####" in output:
        after = _numbers(output.rsplit("####", 1)[1])
        if after:
            return normalize_number(after[0])
    markers = list(_ANSWER_IS.finditer(output))
    if markers:
        after = _numbers(output[markers[-1].end() :])
        if after:
            return normalize_number(after[0])
    everywhere = _numbers(output)
    return normalize_number(everywhere[-1]) if everywhere else None


# --- ROUGE (summarisation) -----------------------------------------------------------------------


def _scorer() -> Any:
    global _rouge_scorer
    if _rouge_scorer is None:
        from rouge_score import rouge_scorer

        _rouge_scorer = rouge_scorer.RougeScorer(list(_ROUGE_TYPES), use_stemmer=True)
    return _rouge_scorer


def rouge_f_scores(prediction: str, reference: str) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F-measures (Porter stemming, rouge_score's tokenizer)."""
    scores = _scorer().score(reference, prediction)  # rouge_score takes (target, prediction)
    return {name: float(scores[name].fmeasure) for name in _ROUGE_TYPES}


def rouge_mean(prediction: str, reference: str) -> float:
    """Mean of the three ROUGE F values, the reference study's summarisation score.

    A one-word text has no bigrams, so even an identical one-word prediction scores 2/3.
    """
    values = rouge_f_scores(prediction, reference).values()
    return sum(values) / len(values)


# --- NER: IOB2 tags and entity-level F1 ----------------------------------------------------------


def entity_counts(gold_tags: Sequence[str], predicted_tags: Sequence[str]) -> tuple[int, int, int]:
    """(true positives, predicted entities, gold entities) of one sentence, exact span and type.

    Spans come from seqeval's get_entities, so an I- tag with no B- before it starts an entity, as in
    seqeval's default (non-strict) mode.
    """
    if len(gold_tags) != len(predicted_tags):
        raise ValueError(
            f"The gold and predicted tag sequences differ in length ({len(gold_tags)} vs {len(predicted_tags)})."
        )
    from seqeval.metrics.sequence_labeling import get_entities

    gold = set(get_entities(list(gold_tags)))
    predicted = set(get_entities(list(predicted_tags)))
    return len(gold & predicted), len(predicted), len(gold)


def entity_f1(counts: Iterable[Sequence[int]]) -> float:
    """Micro F1 from per-sentence (tp, predicted, gold) counts; 1.0 when there are no entities at all."""
    from editguard.statistics.metrics import micro_f1

    return micro_f1([[float(value) for value in count] for count in counts])


def _find_run(tokens: Sequence[str], free: Sequence[bool], mention: str) -> tuple[int, int] | None:
    """First run [start, end) of free tokens whose ' '-join equals the mention."""
    for start in range(len(tokens)):
        joined = ""
        for end in range(start, len(tokens)):
            if not free[end]:
                break
            joined = tokens[end] if end == start else f"{joined} {tokens[end]}"
            if joined == mention:
                return start, end + 1
            if len(joined) > len(mention):
                break  # the join only grows, so no longer run can match
    return None


def tags_from_entities(tokens: Sequence[str], entities: Sequence[tuple[str, str]]) -> list[str]:
    """IOB2 tags over tokens for (surface text, TYPE) mentions; unmatched mentions are ignored.

    Longer mentions go first (more words, then more characters; ties keep their order) so that
    "New York City" wins over "York".  Each mention tags its first occurrence whose tokens are all
    still free, case-sensitively if there is one, else case-insensitively.
    """
    tags = ["O"] * len(tokens)
    free = [True] * len(tokens)
    folded_tokens = [token.casefold() for token in tokens]
    mentions = [(" ".join(text.split()), kind) for text, kind in entities]
    mentions.sort(key=lambda item: (len(item[0].split()), len(item[0])), reverse=True)  # stable
    for mention, kind in mentions:
        if not mention:
            continue
        run = _find_run(tokens, free, mention) or _find_run(folded_tokens, free, mention.casefold())
        if run is not None:
            start, end = run
            tags[start:end] = [f"B-{kind}"] + [f"I-{kind}"] * (end - start - 1)
            free[start:end] = [False] * (end - start)
    return tags


def _clean_item(item: str) -> str:
    item = _BULLET.sub("", item.strip())
    previous = None
    while item != previous:  # quotes and periods can nest either way: '"Paris".' or '"U.S."'
        previous = item
        item = item.strip().rstrip(".").strip(_QUOTES)
    return item


def parse_entity_list(text: str) -> list[str]:
    """Entity strings from a free-text list answer, in order, without bullets, quotes or duplicates.

    Splits on newlines, commas and semicolons, so "Washington, D.C." becomes two items; placeholder
    answers ("None", "N/A", "no entities", "nothing") are dropped.  Duplicates are exact-text ones.
    """
    found: list[str] = []
    for raw in re.split(r"[\n,;]", text):
        item = _clean_item(raw)
        if item and item.casefold() not in _NO_ENTITY and item not in found:
            found.append(item)
    return found


# --- ranking and labels --------------------------------------------------------------------------


def reciprocal_rank(scores: Sequence[float], gold: int) -> float:
    """1/rank of option `gold` by descending score; an equal score ranks ahead only at a lower index."""
    if not 0 <= gold < len(scores):
        raise ValueError(f"The gold index {gold} is outside the {len(scores)} scored options.")
    target = scores[gold]
    ahead = sum(1 for i, score in enumerate(scores) if score > target or (score == target and i < gold))
    return 1.0 / (1 + ahead)


def parse_label(output: str, labels: Mapping[str, int]) -> int | None:
    """The label whose (lower-case) key is the output's first word, ignoring case and punctuation.

    Leading punctuation is skipped first, so "- Yes." and "**Positive**" parse; None when the first
    word is not a key.
    """
    words = output.lstrip(string.punctuation + string.whitespace).split()
    if not words:
        return None
    return labels.get(words[0].strip(string.punctuation).lower())


# --- the reference study's scorers, reproduced with their flaws ------------------------------------


def study_number_in_output(output: str, gold_number: str) -> float:
    """The study's reasoning scorer: 1.0 if the gold number's text occurs anywhere in the output.

    Flaws kept on purpose: "4" is found in "14" or "2024", any intermediate step that mentions the
    gold counts as correct, "1,234" in the output misses gold "1234", and an empty gold always hits.
    """
    return float(gold_number in output)


def study_entity_recall(output: str, gold_entities: Sequence[str]) -> float | None:
    """The study's NER "F1": the fraction of gold entity strings found as substrings of the output.

    Flaws kept on purpose: it is recall only (listing every word of the input scores 1.0), substring
    matching counts "Paris" inside "Parisian", and the entity types are ignored.  None without golds.
    """
    if not gold_entities:
        return None
    return sum(1 for entity in gold_entities if entity in output) / len(gold_entities)


def study_letter_in_output(output: str, gold_letter: str) -> float:
    """The study's MuTual scorer: 1.0 if the gold letter (A-D) occurs anywhere in the output.

    Flaws kept on purpose: the check is a case-sensitive substring test, so any capital "A" (the
    article), "B" or "C" in the text counts, and an output listing "A, B, C, D" always scores 1.0.
    """
    return float(gold_letter in output)


def study_span_match(text: str, golds: Sequence[str]) -> bool:
    """The study's open-domain QA matcher: a normalised gold occurs inside the normalised text.

    Flaws kept on purpose: the study passed prompt, passage and output together as `text`, so a gold
    quoted in the passage matches whatever the model says; substring matching finds "art" in "start";
    and a gold that normalises to empty (e.g. "The") matches everything.
    """
    haystack = normalize_answer(text)
    return any(normalize_answer(gold) in haystack for gold in golds)
