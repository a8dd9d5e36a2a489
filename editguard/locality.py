"""Locality as a property: an edit must leave facts it did not touch alone, whatever the prompt.

A knowledge edit is meant to change a handful of facts.  ``unrelated_prompts`` is a hypothesis strategy of
prompts about other things: factual templates ("The capital of {} is") filled with entities the project
ships (``data/locality.json``: countries, cities, people, companies, animals, objects), leaving out every
entity that shares a word with an edited subject or target.  ``LocalityProbe.assert_unchanged`` asserts
that the base model's greedy answer to such a prompt (its first three tokens) stays the edited model's answer up to
near ties: each of its tokens stays among the edited model's five most likely next tokens, read with the base's
answer as context (exact greedy equality fails on harmless near ties: a benign edit turned ' "' into ' Chilean'
after "The currency used in Chile is called the").  On failure it shows the prompt and both greedy answers
side by side, with the rank each base token fell to.  Templates and entities are drawn shortest first, so hypothesis
shrinks a failure to the shortest prompt that still leaks.

The gate's ``test_locality`` runs it derandomised, on a fixed budget of examples (deterministic in CI).  The base's
answers and the edited model's ranks are kept in the cache folder between runs (``_Remembered``), so a re-run of
the same models and prompts computes nothing.  In your own tests, the ``editguard_locality`` fixture gives the probe::

    from hypothesis import given, settings

    def test_my_edit_keeps_geography(editguard_locality):
        @settings(derandomize=True, max_examples=30, database=None, deadline=None)
        @given(editguard_locality.prompts())
        def unchanged(prompt):
            editguard_locality.assert_unchanged(prompt)

        unchanged()

or pass your own strategy of prompts (``st.sampled_from([...])``) instead of ``prompts()``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

LOCALITY_FORMAT = 2  # of the kept answers (_Remembered); 2: stored by the output cache
ANSWER_TOKENS = 3  # greedy tokens of the base's answer checked: enough for a short answer, few enough to stay about the fact
TOP_K = 5  # each of them must stay among the edited model's TOP_K next tokens (a near tie may swap the first two)


@dataclass(frozen=True)
class Template:
    text: str  # one "{}" for the entity
    kind: str  # which entities fit it


@dataclass(frozen=True)
class Vocabulary:
    templates: tuple[Template, ...]
    entities: dict[str, tuple[str, ...]]


def shipped_vocabulary() -> Vocabulary:
    """The templates and entities the project ships (``editguard/data/locality.json``)."""
    document = json.loads((resources.files("editguard") / "data" / "locality.json").read_text(encoding="utf-8"))
    templates = tuple(Template(item["template"], item["kind"]) for item in document["templates"])
    return Vocabulary(templates, {kind: tuple(names) for kind, names in document["entities"].items()})


def _words(text: str) -> set[str]:
    return {word for word in re.findall(r"[a-z0-9]+", text.lower()) if len(word) > 2 and word not in _COMMON}


_COMMON = frozenset({"the", "and", "for", "with", "from", "city", "river", "united", "new"})


def unrelated_prompts(requests: Iterable[Any] = (), vocabulary: Vocabulary | None = None) -> Any:
    """A hypothesis strategy of prompts that name nothing an edit request names (subject, new or old target).

    An entity is left out when it shares a word (three letters or more) with an edited subject or target, so
    "Apple" is out when an edit rewrites "Apple Inc." and "Tokyo" when one moves something to Tokyo.
    """
    from hypothesis import strategies as st

    vocabulary = vocabulary or shipped_vocabulary()
    touched: set[str] = set()
    for request in requests:
        for value in (request.subject, request.target_new, request.ground_truth or ""):
            touched |= _words(value)
    allowed = {kind: sorted((e for e in names if not _words(e) & touched), key=lambda e: (len(e), e)) for kind, names in vocabulary.entities.items()}
    templates = sorted((t for t in vocabulary.templates if allowed.get(t.kind) and not _words(t.text) & touched), key=lambda t: (len(t.text), t.text))
    if not templates:
        raise ValueError("every locality template or entity is touched by the edits; give your own strategy of prompts")
    return st.sampled_from(templates).flatmap(lambda t: st.sampled_from(allowed[t.kind]).map(t.text.format))


@dataclass
class LocalityProbe:
    """Greedy answers of the base and the edited model to any prompt; the base's are remembered.

    ``answer(prompt, edited)`` gives the greedy continuation as token ids, ``ranks(prompt, tokens, edited)`` the
    rank of each of those tokens under a model when it reads them one after the other (0: its top choice), and
    ``decode(tokens)`` the text.
    """

    answer: Callable[[str, bool], list[int]]
    ranks: Callable[[str, list[int], bool], list[int]]
    decode: Callable[[list[int]], str]
    requests: Sequence[Any] = ()
    top_k: int = TOP_K
    _base: dict[str, list[int]] = field(default_factory=dict)
    save: Callable[[], None] = lambda: None  # keep what was computed for the next run (model_probe's cache)

    def prompts(self) -> Any:
        """Prompts unrelated to this run's edit requests (``unrelated_prompts``)."""
        return unrelated_prompts(self.requests)

    def answers(self, prompt: str) -> tuple[str, str]:
        """(base answer, edited answer) to ``prompt``, greedy, as text."""
        return self.decode(self._base_answer(prompt)), self.decode(self.answer(prompt, True))

    def _base_answer(self, prompt: str) -> list[int]:
        if prompt not in self._base:
            self._base[prompt] = self.answer(prompt, False)
        return self._base[prompt]

    def assert_unchanged(self, prompt: str) -> None:
        """The base's greedy answer stays among the edited model's top-k at every token; else an AssertionError that
        shows the prompt, both answers and the ranks."""
        __tracebackhide__ = True
        tokens = self._base_answer(prompt)
        ranks = self.ranks(prompt, tokens, True)
        if all(rank < self.top_k for rank in ranks):
            return
        base, edited = self.answers(prompt)
        raise AssertionError(
            "locality: the edit changed the answer to a prompt about something it did not edit\n"
            f"  prompt: {prompt!r}\n  base:   {base!r}\n  edited: {edited!r}\n"
            f"  (the base answer's tokens rank {ranks} among the edited model's next tokens; the property allows "
            f"below {self.top_k})\nan edit should leave unrelated facts alone: try fewer edits, another method or "
            "layer, or RECT (--editguard-rect)"
        )


class _Remembered:
    """What one model answered to locality prompts, kept between runs in ``<cache>/outputs/locality.<key>.json``.

    Keyed as the output cache keys scores: the model's fingerprint (the base's weights, plus the edit's delta), its
    numerics (dtype, device kind, torch and transformers versions) and what is kept (the answer's length).  ``save``
    merges this run's new entries through the output cache (under a lock, written atomically); a damaged file is a
    miss.
    """

    def __init__(self, root: Path | None, material: dict[str, Any], *, read: bool = True):
        from editguard.backends.outputs import OutputCache

        self.material = {"locality": LOCALITY_FORMAT, **material}
        self.cache = OutputCache(root, read=read, name="locality")
        self.entries: dict[str, Any] = self.cache.entries(self.material)
        self.new: dict[str, Any] = {}

    def get(self, prompt: str) -> Any:
        return self.entries.get(prompt)

    def put(self, prompt: str, value: Any) -> None:
        self.entries[prompt] = self.new[prompt] = value

    def save(self) -> None:
        self.cache.store_entries(self.material, self.new)
        self.new.clear()


def model_probe(
    base: Any, delta: Any, *, cache_dir: Path | None, rescore: bool = False, requests: Sequence[Any] = (), tokens: int = ANSWER_TOKENS,
) -> LocalityProbe:  # fmt: skip
    """A ``LocalityProbe`` over ``base`` (``models.LoadedModel``) and base + ``delta``, asked through the in-process
    backend (``backends.inprocess``: greedy tokens, token ranks).  The base's answers and the edited model's ranks come
    from ``cache_dir`` when these models answered the prompt before (``save`` keeps the new ones; ``rescore`` computes
    them again)."""
    from editguard.backends.inprocess import InProcessBackend, numerics
    from editguard.fingerprint import combine

    models = {False: InProcessBackend(base), True: InProcessBackend(base, delta)}
    stores: dict[bool, _Remembered] = {}

    def remembered(edited: bool) -> _Remembered:
        if edited not in stores:
            model = combine(base.key, delta.fingerprint) if edited else base.key
            material = {"model": model, "numerics": numerics(base), "tokens": tokens, "kept": "ranks" if edited else "answer"}
            stores[edited] = _Remembered(cache_dir, material, read=not rescore)
        return stores[edited]

    def answer(prompt: str, edited: bool) -> list[int]:
        if edited:  # asked only to show a failure
            return models[True].greedy_tokens(prompt, tokens)
        store = remembered(False)
        kept = store.get(prompt)
        if not (isinstance(kept, list) and all(isinstance(token, int) for token in kept)):
            kept = models[False].greedy_tokens(prompt, tokens)
            store.put(prompt, kept)
        return list(kept)

    def ranks(prompt: str, continuation: list[int], edited: bool) -> list[int]:
        if not edited or not continuation:
            return models[edited].token_ranks(prompt, continuation)
        store = remembered(True)
        kept = store.get(prompt)
        if isinstance(kept, dict) and kept.get("tokens") == list(continuation) and isinstance(kept.get("ranks"), list):
            return list(kept["ranks"])
        found = models[True].token_ranks(prompt, continuation)
        store.put(prompt, {"tokens": list(continuation), "ranks": found})
        return found

    def decode(ids: list[int]) -> str:
        return str(base.tokenizer.decode(ids))

    def save() -> None:
        for store in stores.values():
            store.save()

    return LocalityProbe(answer, ranks, decode, tuple(requests), save=save)
