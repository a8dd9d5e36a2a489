"""The plugin's fixtures: each a few lines that call into the run's session (``editguard.session``).  A problem that
stops a check is "could not check" for its test, said once (later tests point to the first)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest

from editguard.plugin.state import PROBLEM, PROBLEMS_KEY, SETTINGS_KEY, session_of
from editguard.reports.junit import junit_properties
from editguard.reports.rows import COULD_NOT_CHECK, PROPERTY, Row
from editguard.statistics.verdict import Outcome


@pytest.fixture
def editguard(pytestconfig: pytest.Config) -> Any:
    """The run's ``Session`` (model pair, scores, baselines, verdicts)."""
    return session_of(pytestconfig)


@contextlib.contextmanager
def _checking(request: pytest.FixtureRequest) -> Iterator[None]:
    """A ``GateProblem`` raised in the block makes the test "could not check" (``_could_not_check``)."""
    from editguard.errors import GateProblem
    from editguard.session import told

    __tracebackhide__ = True
    try:
        yield
    except GateProblem as problem:
        try:
            _could_not_check(request, told(session_of(request.config), problem))
        except pytest.fail.Exception as failed:  # the sentence once, not again as "During handling of ..."
            raise failed from None


def _could_not_check(request: pytest.FixtureRequest, message: str) -> NoReturn:
    """Fail the test as "could not check": the first test a problem stops says it, later ones point there."""
    __tracebackhide__ = True
    first = request.config.stash[PROBLEMS_KEY].setdefault(message, request.node.nodeid)
    request.node.user_properties.append((PROBLEM, message.splitlines()[0]))
    said = message if first == request.node.nodeid else f"the same problem as {first}, reported there"
    pytest.fail(f"could not check: {said}", pytrace=False)


@pytest.fixture
def base_model(editguard: Any, request: pytest.FixtureRequest) -> Any:
    """The base model (``LoadedModel``: ``.model``, ``.tokenizer``, ``.device``, ``.fingerprint``)."""
    with _checking(request):
        editguard.ready()
        return editguard.base


@pytest.fixture
def edited_model(editguard: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The edited model: the base with the edit applied in place for this test, reverted after it."""
    with _checking(request):
        editguard.ready()
        editguard.edits.primary  # noqa: B018 -- the edit, or the problem that stops it, before the test runs
    with editguard.edited() as model:
        yield model


@pytest.fixture
def editguard_locality(editguard: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A ``locality.LocalityProbe``: ``prompts()`` (a hypothesis strategy of prompts unrelated to the edits),
    ``answers(prompt)`` (base, edited) and ``assert_unchanged(prompt)``."""
    from editguard.locality import model_probe

    with _checking(request):
        editguard.ready()
        editguard.edits.primary  # noqa: B018 -- the edit, or the problem that stops it, before the test runs
        requests = editguard.edits.requests if editguard.settings.edited is None else ()
    settings = editguard.settings
    probe = model_probe(editguard.base, editguard.edits.primary.delta, cache_dir=settings.cache_dir, rescore=settings.rescore, requests=requests)
    yield probe
    probe.save()  # the answers computed now are read from the cache folder next time


@pytest.fixture
def score_ability(editguard: Any, request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``score_ability(ability, edited=True)`` -> ``Score`` (``.value``, ``.n``, per-example ``.outcomes``)."""

    def score(ability: str, edited: bool = True) -> Any:
        __tracebackhide__ = True
        with _checking(request):
            editguard.ready()
            return editguard.score(ability, edited=edited)

    return score


@pytest.fixture
def ability_baseline(editguard: Any, request: pytest.FixtureRequest) -> Callable[[str], Any]:
    """``ability_baseline(ability)`` -> the stored ``Baseline``; "could not check" when missing or stale."""

    def baseline(ability: str) -> Any:
        __tracebackhide__ = True
        with _checking(request):
            editguard.ready()
            return editguard.baseline(ability)

    return baseline


@pytest.fixture
def editguard_check(editguard: Any, request: pytest.FixtureRequest) -> Callable[[str], None]:
    """``editguard_check(ability)``: gate one ability, report it, and fail with the reason if it regressed."""
    from editguard.session import gate_row

    def check(ability: str) -> None:
        __tracebackhide__ = True
        row, failure = gate_row(editguard, ability)
        row = _recorded(request, dataclasses.replace(row, worker=os.environ.get("PYTEST_XDIST_WORKER", "")), failure)
        if row.verdict == COULD_NOT_CHECK:
            _could_not_check(request, failure or row.note)
        if row.verdict == Outcome.NO_SIGNAL.value and row.passed is None:  # neither passes nor fails (--editguard-no-signal skip)
            pytest.skip(failure or row.note)
        if failure and row.passed:  # inconclusive under --editguard-inconclusive warn
            warnings.warn(pytest.PytestWarning(failure), stacklevel=2)
        elif failure:
            pytest.fail(failure, pytrace=False)

    return check


@pytest.fixture
def editguard_quality_check(editguard: Any, request: pytest.FixtureRequest) -> Callable[[], None]:
    """``editguard_quality_check()``: did the edits take (EasyEdit's reliability)?  Fails the test when not."""
    from editguard.session import quality_row

    def check() -> None:
        __tracebackhide__ = True
        if editguard.settings.update_baselines:
            pytest.skip("recording baselines: the base model is scored, no edit is checked")
        row, failure = quality_row(editguard)
        row = _recorded(request, row, failure)
        if row.verdict == COULD_NOT_CHECK:
            _could_not_check(request, failure or row.note)
        if row.verdict == Outcome.SKIPPED.value:
            pytest.skip(row.note)
        if failure:
            pytest.fail(failure, pytrace=False)

    return check


def _recorded(request: pytest.FixtureRequest, row: Row, failure: str | None) -> Row:
    """The row with its failure message, in the test's report: whole for the controller's reports, and as flat
    properties (scores, interval, flips, verdict) that ``--junitxml`` writes into the test case; and the cache
    folders this process could not write, which the controller tells once."""
    from editguard.atomic import unwritable_caches

    row = dataclasses.replace(row, unwritable=unwritable_caches() or None)
    if failure and row.verdict != COULD_NOT_CHECK:
        row = dataclasses.replace(row, message=failure)
    request.node.user_properties.append((PROPERTY, row.as_dict()))
    request.node.user_properties.extend(junit_properties(row))
    return row
