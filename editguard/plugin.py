"""The pytest plugin: options, fixtures and reporting hooks only; every fixture calls into the library.

Heavy imports (torch, transformers, easyeditor) happen inside fixtures, never at import, so
``pytest --help`` and the xdist controller stay fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from editguard.errors import COULD_NOT_CHECK as COULD_NOT_CHECK_STATUS
from editguard.verdict import Outcome

NO_SIGNAL = Outcome.NO_SIGNAL.value
LOCALITY = "locality"  # test_locality's name in --editguard-abilities
from editguard.report import (
    COULD_NOT_CHECK,
    PROPERTY,
    Row,
    canary_lines,
    draw_curves,
    first_failing_counts,
    junit_properties,
    stack_lines,
    table,
    truncated_lines,
    unwritable_lines,
    with_holm,
    write_json,
)
from editguard.settings import OPTIONS, Settings, SettingsError, build_settings, origin
from editguard.stack import output_versions

SETTINGS_KEY = pytest.StashKey[Settings]()
PROGRESS_KEY = pytest.StashKey[Any]()  # the editguard.progress.Reporter this run replaced, put back at the end
SESSION_KEY = pytest.StashKey[Any]()  # the run's editguard.session.Session, made once per process
PROBLEMS_KEY = pytest.StashKey[dict[str, str]]()  # a could-not-check message -> the test that reported it first
PROBLEM = "editguard-could-not-check"  # the user property that marks a test the gate could not check


# ----------------------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("editguard", "editguard: gate edited models on their general abilities")
    for option in OPTIONS:
        if option.flag:
            group.addoption(option.cli, action="store_true", default=None, dest=f"editguard_{option.name}", help=option.help)
            group.addoption(option.negative_cli, action="store_false", default=None, dest=f"editguard_{option.name}", help=f"the opposite of {option.cli}")
        else:
            group.addoption(
                option.cli,
                action="append" if option.repeat else "store",
                type=option.parse,
                default=None,
                dest=f"editguard_{option.name}",
                metavar=option.metavar,
                help=option.help,
            )
        if option.repeat:
            parser.addini(option.ini, help=option.help, type="linelist", default=None)
        else:
            parser.addini(option.ini, help=option.help, type="string", default=None)


def _pyproject_table(rootpath: Path) -> dict[str, Any]:
    import tomllib

    path = rootpath / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise pytest.UsageError(f"{path} is not valid TOML: {error}") from None
    section = document.get("tool", {}).get("editguard", {})
    return section if isinstance(section, dict) else {}


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "editguard: a test that gates an edited model on a general ability")
    _check_configuration_file(config)
    cli = {option.name: config.getoption(f"editguard_{option.name}") for option in OPTIONS}
    ini = {option.name: config.getini(option.ini) for option in OPTIONS}
    try:
        # Without a configuration file pytest guesses its rootdir from path-like arguments (option values
        # included), which would move the default baselines folder between runs: use the working directory.
        root = config.rootpath if config.inipath is not None else config.invocation_params.dir
        pyproject = _pyproject_table(root)
        settings = build_settings(cli, pyproject, ini, rootdir=root)
    except SettingsError as error:
        raise pytest.UsageError(str(error)) from None
    _check_ability_names(settings, lambda name: origin(name, cli, pyproject, ini))
    config.stash[SETTINGS_KEY] = settings
    config.stash[PROBLEMS_KEY] = {}
    config.pluginmanager.register(_Results(config), "editguard-results")


def _check_configuration_file(config: pytest.Config) -> None:
    """pytest guesses its configuration file from path-like arguments, option values included: refuse a guess
    that the path given to an editguard option moved away from the project's own configuration."""
    given = None if config.option.inifilename else _path_option_given_apart(config.invocation_params.args)
    if given is None:
        return
    expected = _configuration_file_of(config.invocation_params.dir)
    if expected is False or expected == config.inipath:
        return
    flag, value = given
    found = config.inipath or "no configuration file"
    wanted = f"the project's {expected}" if expected else "none (the working directory has no configuration file)"
    raise pytest.UsageError(
        f"{flag} {value}: pytest read {found} instead of {wanted}, because it guesses its configuration file from "
        f"path arguments; write {flag}={value}, or pass -c with the project's configuration file, or run the editguard command"
    )


def _path_option_given_apart(args: tuple[str, ...]) -> tuple[str, str] | None:
    """The first editguard option given as ``--flag VALUE`` (not ``--flag=VALUE``) whose value is an existing path."""
    takes_value = {option.cli for option in OPTIONS if not option.flag}
    for flag, value in zip(args, args[1:]):
        if flag in takes_value and not value.startswith("-") and Path(value.split("::")[0]).exists():
            return flag, value
    return None


def _configuration_file_of(folder: Path) -> Path | None | bool:
    """The configuration file pytest finds from ``folder`` alone (None: none), or False when it cannot be told."""
    from _pytest.config.findpaths import locate_config  # pytest's own search, so the answer matches pytest's

    try:
        return locate_config(folder, [folder])[1]
    except Exception:  # a pytest whose private search differs: do not guess
        return False


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # optional: pytest-xdist may be absent or disabled
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: one worker per visible GPU when there are GPUs, else xdist's own choice."""
    # xdist asks before pytest_configure, so read the command line directly
    if (config.getoption("editguard_device") or "auto") not in ("auto", "cuda"):
        return None
    import torch

    return torch.cuda.device_count() or None if torch.cuda.is_available() else None


# ----------------------------------------------------------------------------- fixtures


def _worker() -> tuple[int, int]:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0
    return index, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def _session(config: pytest.Config) -> Any:
    """The run's ``editguard.session.Session``, made once per process (the start-up checks and the fixtures share it)."""
    if SESSION_KEY not in config.stash:
        from editguard.session import Session

        index, count = _worker()
        verbose = config.get_verbosity() > 0 or config.option.tbstyle == "long"  # tracebacks only when asked for
        config.stash[SESSION_KEY] = Session(config.stash[SETTINGS_KEY], worker_index=index, worker_count=count, verbose=verbose)
    return config.stash[SESSION_KEY]


@pytest.fixture(scope="session")
def editguard(pytestconfig: pytest.Config) -> Any:
    """The run's ``editguard.session.Session``: the model pair, scores, baselines and verdicts."""
    return _session(pytestconfig)


@contextlib.contextmanager
def _checking(request: pytest.FixtureRequest) -> Iterator[None]:
    """A ``GateProblem`` raised in the block makes the test "could not check" (``_could_not_check``)."""
    from editguard.errors import GateProblem
    from editguard.session import told

    __tracebackhide__ = True
    try:
        yield
    except GateProblem as problem:
        _could_not_check(request, told(_session(request.config), problem))


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
        if row.verdict == NO_SIGNAL and row.passed is None:  # neither passes nor fails (--editguard-no-signal skip)
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
        if row.verdict == "skipped":
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Recording baselines scores the base model only: the edit-quality and locality checks have nothing to check
    then.  --editguard-abilities narrows the gate: the canary and the locality property run when named there
    (or when the option is not given); a test left without a parameter is not collected, rather than skipped."""
    settings = config.stash[SETTINGS_KEY]
    unused = []
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if settings.update_baselines and names & {"editguard_quality_check", "editguard_locality"}:
            unused.append(item)
        elif "editguard_locality" in names and settings.abilities is not None and LOCALITY not in settings.abilities:
            unused.append(item)
        elif any(name in names and not isinstance(params.get(name), str) for name in GATED_PARAMETERS):  # an empty set
            unused.append(item)
    if unused:
        config.hook.pytest_deselected(items=unused)
        items[:] = [item for item in items if item not in unused]


# ----------------------------------------------------------------------------- start-up checks


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under xdist the controller collects nothing: when the gate was asked for, it checks the inputs (no model)."""
    config = session.config
    if config.pluginmanager.hasplugin("dsession") and _gate_requested(config):
        _start(config, [], load=False)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """When a collected test uses the gate, the start-up checks run once, before the first test (``preflight``)."""
    config = session.config
    gated = [item for item in session.items if "editguard" in getattr(item, "fixturenames", ())]
    if gated and not config.option.collectonly:
        _show_progress(config)
        _start(config, _gated_abilities(gated), load=True)


def _start(config: pytest.Config, abilities: list[str], *, load: bool) -> None:
    """A start-up problem stops the run with one sentence and the could-not-check status (4).  An xdist worker
    cannot stop the run cleanly, so there every test reports it instead (``Session.ready``)."""
    from editguard.errors import GateProblem
    from editguard.session import told

    session = _session(config)
    try:
        session.start(abilities, load=load)
    except GateProblem as problem:
        if not hasattr(config, "workerinput"):
            results = config.pluginmanager.get_plugin("editguard-results")
            assert isinstance(results, _Results)
            results.write_summaries(COULD_NOT_CHECK_STATUS)  # the run stops here: the reports say why
            raise pytest.UsageError(told(session, problem)) from None


def _gate_requested(config: pytest.Config) -> bool:
    return any(arg == "editguard.gate" or arg.replace("\\", "/").split("::")[0].endswith("editguard/gate.py") for arg in config.args)


def _gated_abilities(items: list[pytest.Item]) -> list[str]:
    params = [getattr(getattr(item, "callspec", None), "params", {}) for item in items]
    return sorted({str(param[name]) for param in params for name in GATED_PARAMETERS if name in param})


GATED_PARAMETERS = ("editguard_ability", "editguard_canary")  # test_ability's and test_canary's parameters


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """test_ability runs once per general ability, test_canary once per canary, both narrowed by
    --editguard-abilities (a canary not named there is not run)."""
    from editguard.tasks import canary_names, task_names

    settings = metafunc.config.stash[SETTINGS_KEY]
    for parameter, names in (("editguard_ability", task_names()), ("editguard_canary", canary_names())):
        if parameter in metafunc.fixturenames:
            chosen = [name for name in names if settings.abilities is None or name in settings.abilities]
            metafunc.parametrize(parameter, chosen)


def _check_ability_names(settings: Settings, origin_of: Callable[[str], str]) -> None:
    """Every ability named by an option (abilities, data, per-ability tolerances) exists; "did you mean" when not."""
    from editguard.tasks import get_task

    named = [(origin_of("abilities"), name) for name in settings.abilities or () if name != LOCALITY]
    named += [(origin_of("data"), name) for name in settings.data]
    named += [(origin_of("tolerance"), name) for name in settings.tolerances]
    for option, name in named:
        try:
            get_task(name, settings.protocol)
        except KeyError as error:
            raise pytest.UsageError(f"{option}: {error}") from None


# ----------------------------------------------------------------------------- progress


def _show_progress(config: pytest.Config) -> None:
    """Progress as the gate runs (``editguard.progress``): a line per phase when the output is not a terminal,
    bars on a terminal, nothing under -q.  Output capture is paused for each write, so a line reaches a CI log
    while the test runs."""
    from editguard import progress

    if config.get_verbosity() < 0 or PROGRESS_KEY in config.stash:
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    bars = worker is None and sys.__stderr__ is not None and sys.__stderr__.isatty()
    stream = _Uncaptured(capture, sys.__stderr__) if bars else None
    config.stash[PROGRESS_KEY] = progress.use(progress.Reporter(_line_writer(config, capture, worker), stream))


def _line_writer(config: pytest.Config, capture: Any, worker: str | None) -> Callable[[str], object] | None:
    """Lines go to pytest's terminal when it is not a terminal (a log).  pytest does not show an xdist worker's
    output, so a worker writes its lines to stderr, tagged with its name."""
    if worker is not None:
        stderr = _Uncaptured(capture, sys.__stderr__)
        return lambda line: stderr.write(f"[{worker}] {line}\n")
    terminal = config.pluginmanager.getplugin("terminalreporter")
    if terminal is None or terminal.isatty():
        return None
    return lambda line: _uncaptured(capture, lambda: (terminal.write_line(line), terminal.flush()))


def pytest_unconfigure(config: pytest.Config) -> None:
    if SESSION_KEY in config.stash:  # the servers of --editguard-backend vllm stop here, also after a failure or Ctrl-C
        config.stash[SESSION_KEY].close()
    if PROGRESS_KEY in config.stash:
        from editguard import progress

        progress.use(config.stash[PROGRESS_KEY])


def _uncaptured(capture: Any, write: Callable[[], Any]) -> None:
    streams = sys.stdout, sys.stderr  # resuming capture resets them: keep a redirection in force (EasyEdit's prints)
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        write()
    sys.stdout, sys.stderr = streams


class _Uncaptured:
    """A file for tqdm (and a worker's lines) that writes to ``file`` with pytest's output capture paused."""

    def __init__(self, capture: Any, file: Any):
        self.capture, self.file = capture, file
        self.encoding = getattr(file, "encoding", "utf-8")

    def write(self, text: str) -> int:
        _uncaptured(self.capture, lambda: (self.file.write(text), self.file.flush()))
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return bool(self.file.isatty())


# ----------------------------------------------------------------------------- reporting


_EDIT_SOURCES: dict[bool | None, str] = {
    True: "reused from the edit cache (not recomputed)",
    False: "computed in this run and cached",
}


def backend_lines(rows: list[Row]) -> list[str]:
    """Where the scores came from, said when it is not in process, and a warning when baselines and edited
    models were scored by different backends: outcomes the two disagree on would count as the edit's."""
    from editguard.backends.table import RECORDED_WORDS

    scored = [row for row in rows if all(row.backends)]
    mixed = sorted((row for row in scored if row.backends[0] != row.backends[1]), key=lambda row: row.ability)
    lines = []
    if any(row.backends[1] != "hf" for row in scored):
        lines.append("scored: through the engine (--editguard-backend)")
    if mixed:
        baseline, edited = mixed[0].backends
        lines.append(
            f"warning: the baselines of {', '.join(row.ability for row in mixed)} were scored {RECORDED_WORDS[baseline]} and the edited model "
            f"{RECORDED_WORDS[edited]}, so an example the two backends score differently counts as a change the edit made; "
            "record the baselines with the same --editguard-backend (--editguard-update-baselines) to compare like with like"
        )
    return lines


def _dtype(rows: list[Row]) -> str:
    """The precision the rows were scored in ("" when none says; several joined, which only a mixed report shows)."""
    return ", ".join(sorted({row.dtype for row in rows if row.dtype}))


def _could_not_check_report(report: pytest.TestReport) -> bool:
    return report.failed and any(name == PROBLEM for name, _ in report.user_properties)


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    """``-v`` says COULD NOT CHECK, not FAILED, for a test the gate could not check (it still counts as failed)."""
    if report.when in ("setup", "call") and _could_not_check_report(report):
        return ("failed", "F", "COULD NOT CHECK") if report.when == "call" else ("error", "E", "COULD NOT CHECK")
    return None


class _Results:
    """Collects the gate rows (from this process or, under xdist, from the workers' reports) and sets the exit
    status: 1 when anything failed for another reason (a regression), else 4 when something could not be checked."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.rows: list[Row] = []
        self.could_not_check = 0  # failed test reports marked "could not check"
        self.problems: list[str] = []  # their sentences (a fixture's problem has no row)
        self.written: list[tuple[str, Path]] = []  # (what, file) of the Markdown and HTML reports, once written
        self.unwritten: list[str] = []  # one sentence per report that could not be written
        self.summarised = False  # the Markdown and HTML reports were written (or tried): once a run

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.could_not_check += _could_not_check_report(report)
        if _could_not_check_report(report):
            self.problems += [str(value) for name, value in report.user_properties if name == PROBLEM]
        if report.when == "call":
            self.rows += [Row.from_dict(value) for name, value in report.user_properties if name == PROPERTY and isinstance(value, dict)]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.export_edited(session)
        if hasattr(self.config, "workerinput"):
            return
        holm_failed = self.finish_rows(session) if self.rows else False
        regressed = holm_failed or session.testsfailed > self.could_not_check
        if self.could_not_check and not regressed and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            session.exitstatus = pytest.ExitCode(COULD_NOT_CHECK_STATUS)
        self.write_summaries(int(session.exitstatus))
        if self.unwritten and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode(COULD_NOT_CHECK_STATUS)  # a report CI reads is missing: not a pass

    def export_edited(self, session: pytest.Session) -> None:
        """--editguard-export-edited: the edited model written once, by the process that holds it (the only one,
        or xdist's first worker), after the gate; a failure is one line and a non-zero exit, never a traceback."""
        from editguard.errors import brief

        settings = self.config.stash[SETTINGS_KEY]
        if settings.export_edited is None or settings.update_baselines or SESSION_KEY not in self.config.stash:
            return
        worker = getattr(self.config, "workerinput", {}).get("workerid")
        if worker not in (None, "gw0") or (worker is None and getattr(self.config.option, "numprocesses", None)):
            return  # under xdist the first worker exports; the controller holds no model
        try:
            self.config.stash[SESSION_KEY].export_edited(settings.export_edited)
        except Exception as error:  # a GateProblem found at start-up, a full disk, an unwritable folder
            message = f"--editguard-export-edited {settings.export_edited}: the edited model was not exported ({brief(error)})"
            self.config.get_terminal_writer().line(message, red=True)
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode(COULD_NOT_CHECK_STATUS)

    def write_summaries(self, status: int) -> None:
        """The Markdown summary (appended to $GITHUB_STEP_SUMMARY too) and the HTML report, once, on the controller,
        when the gate ran or could not start (a run of other tests writes none)."""
        from editguard import summary, webreport

        run = self.summary_run(status)
        if self.summarised or hasattr(self.config, "workerinput") or not (run.rows or run.problems):
            return
        self.summarised = True
        settings = self.config.stash[SETTINGS_KEY]
        for what, path, write in summary.markdown_writes(settings.markdown, run):
            self.write(what, path, write)
        if settings.html is not None:
            self.write("HTML report", settings.html, lambda: webreport.write_html(settings.html, run))

    def write(self, what: str, path: Path, write: Callable[[], object]) -> None:
        """Write one report; one sentence naming it, its path and the cause when it cannot be (the run goes on)."""
        from editguard.atomic import os_error_cause

        try:
            write()
        except OSError as error:
            self.unwritten.append(f"the {what} could not be written to {path} ({os_error_cause(error)}); the verdicts above stand")
        else:
            self.written.append((what, path))

    def summary_run(self, status: int) -> Any:
        """The run as the summaries tell it (``editguard.summary.Run``)."""
        from editguard.summary import Run, problems_of, run_verdict

        settings = self.config.stash[SETTINGS_KEY]
        startup = self.config.stash[SESSION_KEY].problem if SESSION_KEY in self.config.stash else None
        problems = problems_of(self.rows, self.problems + ([str(startup)] if startup is not None else []))
        statement = self.statement(settings) if any(row.p_value is not None for row in self.rows) else ""
        curve = settings.curve if any(row.curve for row in self.rows) else None
        return Run(run_verdict(status, self.rows), status, tuple(self.rows), problems, settings.model, statement, curve)

    def finish_rows(self, session: pytest.Session) -> bool:
        """Holm over the rows, the curve and the JSON report; whether Holm failed an ability its test let pass."""
        settings = self.config.stash[SETTINGS_KEY]
        self.rows, changed = with_holm(self.rows, settings.alpha, settings.fail_rule)
        if changed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # Holm failed an ability its own test let pass
        if any(row.curve for row in self.rows):
            edit = next((row.edit for row in self.rows if row.edit), "")
            self.write("edit-count curve", settings.curve, lambda: draw_curves(settings.curve, self.rows, f"{settings.model}: {edit}"))
        if settings.report is not None:
            context = {
                "model": settings.model,
                "update_baselines": bool(settings.update_baselines),
                "dtype": _dtype(self.rows),
                "stack": output_versions(),
                "statistics": self.statement(settings),
            }
            report = settings.report
            self.write("JSON report", report, lambda: write_json(report, self.rows, context))
        return changed

    def statement(self, settings: Settings) -> str:
        gated = sum(row.p_value is not None and row.role == "ability" for row in self.rows)  # Holm's family, not the canary
        return (
            f"paired comparison on the same examples; PASS when the {1 - settings.alpha:.0%} lower bound of edited - baseline "
            f"is above -tolerance, FAIL by the {settings.fail_rule} rule at Holm's level over {gated} abilities, so the chance "
            f"of any false FAIL, or of a false PASS of the whole gate, is at most {settings.alpha:g}; "
            f"inconclusive abilities {'fail' if settings.inconclusive == 'fail' else 'pass with a warning'}"
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.rows:
            for what, path in self.written:
                terminalreporter.write_line(f"editguard {what}: {path}")
            for sentence in self.unwritten:
                terminalreporter.write_line(f"editguard: {sentence}", red=True)
            return
        terminalreporter.section("editguard")
        for description, reused in sorted({(row.edit, row.edit_reused) for row in self.rows if row.edit}, key=str):
            how = _EDIT_SOURCES.get(reused, "loaded")
            terminalreporter.write_line(f"edit: {description}, {how}")
        scored = sum(row.n or 0 for row in self.rows)
        cached = sum(row.cached for row in self.rows)
        if cached:
            terminalreporter.write_line(
                f"model outputs: {cached} of {scored} example results read from the output cache (--editguard-rescore scores them again)"
            )
        if _dtype(self.rows):
            terminalreporter.write_line(f"model dtype: {_dtype(self.rows)} (--editguard-dtype)")
        for line in backend_lines(self.rows) + stack_lines(self.rows) + unwritable_lines(self.rows):
            terminalreporter.write_line(line)
        for line in table(self.rows) + truncated_lines(self.rows):
            terminalreporter.write_line(line)
        settings = self.config.stash[SETTINGS_KEY]
        for row in self.rows:
            if row.ability == "edit_quality" and row.quality:
                for label, values in row.quality.items():
                    shown = ", ".join(f"{k} {v:.2f}" for k, v in values.items() if isinstance(v, float))
                    terminalreporter.write_line(f"edit quality ({label}): {shown}  {row.verdict.upper()}")
        for row in sorted(self.rows, key=lambda r: r.ability):
            for line in canary_lines(row):
                terminalreporter.write_line(line)
        curves = [row for row in sorted(self.rows, key=lambda r: r.ability) if row.curve]
        for row in curves:
            past = "above baseline + tolerance" if row.role == "canary" else "below baseline - tolerance"  # lower is better
            firsts = "; ".join(
                f"{name}: FAIL at {failed or 'none'}, score {past} at {below or 'none'}"
                for name, (failed, below) in first_failing_counts(row).items()
            )
            terminalreporter.write_line(f"{row.ability}: first edit count -- {firsts}")
        if any(row.p_value is not None for row in self.rows):
            terminalreporter.write_line("statistics: " + self.statement(settings))
        for row in sorted(self.rows, key=lambda r: r.ability):
            if row.sequential:
                terminalreporter.write_line(f"{row.ability}: early stopping used {row.n} of {row.available} examples ({row.verdict})")
            if row.jitter is not None:
                terminalreporter.write_line(
                    f"{row.ability}: noise floor: {row.jitter} base outcomes changed when re-scored with batch size 1 in another order"
                    + ("" if row.jitter == 0 else "  <- the evaluator is not exact here; treat small differences with care")
                )
            if row.note and row.note.startswith("failed by Holm"):
                terminalreporter.write_line(f"{row.ability}: {row.note}")
        for row in self.rows:
            if row.verdict == "recorded":
                terminalreporter.write_line(f"{row.ability}: {row.note}")
        for what, path in self.written:
            terminalreporter.write_line(f"{what}: {path}")
        for sentence in self.unwritten:
            terminalreporter.write_line(f"editguard: {sentence}", red=True)
