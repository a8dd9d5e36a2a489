"""Safe writes (``editguard.atomic``): a write that fails half way leaves the old content and no temporary,
files follow the umask, stray temporaries of dead writers are removed, and compute_once computes once.

Model-free and torch-free; the writers that need torch (deltas, MEMIT statistics, the edit cache) are
tested in ``test_atomic_torch_writers.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from editguard import atomic, models
from editguard.atomic import atomic_folder, atomic_open, atomic_path, compute_once, remove_stale_temporaries
from editguard.baselines import Baseline, BaselineError, BaselineStore
from editguard.statistics.metrics import ExampleResult
from editguard.backends.outputs import OutputCache

OLD = "old content\n"


class Interrupted(Exception):
    """Raised inside a writer after part of its output was written."""


def _raise_inside() -> None:
    raise Interrupted("half way")


def _interrupt() -> None:
    raise KeyboardInterrupt


# ----------------------------------------------------------------------------- the writers, each failing half way


def _with_open(target: Path, midway: Callable[[], None]) -> None:
    with atomic_open(target) as stream:
        stream.write("new ")
        stream.flush()
        midway()
        stream.write("content\n")


def _with_path(target: Path, midway: Callable[[], None]) -> None:
    with atomic_path(target) as staging:
        staging.write_text("new ")
        midway()
        staging.write_text("new content\n")


def _with_folder(target: Path, midway: Callable[[], None]) -> None:
    with atomic_folder(target) as staging:
        (staging / "a.txt").write_text("new")
        midway()
        (staging / "b.txt").write_text("new")


def _text(target: Path, midway: Callable[[], None]) -> None:
    midway()  # these write in one call: only the failures injected in os below apply
    atomic.write_text(target, "new content\n")


def _bytes(target: Path, midway: Callable[[], None]) -> None:
    midway()
    atomic.write_bytes(target, b"new content\n")


def _json(target: Path, midway: Callable[[], None]) -> None:
    midway()
    atomic.write_json(target, {"new": "content"})


STREAMING = {"atomic_open": _with_open, "atomic_path": _with_path, "atomic_folder": _with_folder}
ONE_CALL = {"write_bytes": _bytes, "write_json": _json, "write_text": _text}
WRITERS = {**STREAMING, **ONE_CALL}


def _failing(*args: object, **kwargs: object) -> None:
    raise OSError("disk full")


def _fail_in_os(monkeypatch: pytest.MonkeyPatch, name: str) -> Callable[[], None]:
    monkeypatch.setattr(atomic.os, name, _failing)
    return lambda: None


FAILURES: dict[str, Callable[[pytest.MonkeyPatch], Callable[[], None]]] = {
    "exception inside": lambda monkeypatch: _raise_inside,
    "fsync fails": lambda monkeypatch: _fail_in_os(monkeypatch, "fsync"),
    "keyboard interrupt inside": lambda monkeypatch: _interrupt,
    "os.replace fails": lambda monkeypatch: _fail_in_os(monkeypatch, "replace"),
}
INSIDE = {"exception inside", "keyboard interrupt inside"}
CASES = sorted((writer, failure) for writer in WRITERS for failure in FAILURES if writer in STREAMING or failure not in INSIDE)


def _write_old(target: Path, writer: str) -> None:
    if writer == "atomic_folder":
        target.mkdir()
        (target / "old.txt").write_text(OLD)
    else:
        target.write_text(OLD)


def _snapshot(target: Path) -> dict[str, str]:
    """Every file under the target's folder, by relative path: what a reader could see."""
    return {str(path.relative_to(target.parent)): path.read_text() for path in sorted(target.parent.rglob("*")) if path.is_file()}


@pytest.mark.parametrize(("writer", "failure"), CASES)
def test_a_write_failing_half_way_leaves_the_old_content_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str, failure: str
) -> None:
    target = tmp_path / "target"
    _write_old(target, writer)
    before = _snapshot(target)
    midway = FAILURES[failure](monkeypatch)
    with pytest.raises((Interrupted, KeyboardInterrupt, OSError)):
        WRITERS[writer](target, midway)
    monkeypatch.undo()
    assert _snapshot(target) == before
    assert sorted(os.listdir(tmp_path)) == ["target"]


@pytest.mark.parametrize(("writer", "failure"), CASES)
def test_a_first_write_failing_half_way_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str, failure: str
) -> None:
    midway = FAILURES[failure](monkeypatch)
    with pytest.raises((Interrupted, KeyboardInterrupt, OSError)):
        WRITERS[writer](tmp_path / "target", midway)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_write_replaces_the_old_content_and_leaves_no_temporary(tmp_path: Path, writer: str) -> None:
    target = tmp_path / "target"
    _write_old(target, writer)
    WRITERS[writer](target, lambda: None)
    assert sorted(os.listdir(tmp_path)) == ["target"]
    if writer == "atomic_folder":
        assert sorted(os.listdir(target)) == ["a.txt", "b.txt"]
    elif writer == "write_json":
        assert target.read_text() == '{\n  "new": "content"\n}\n'
    else:
        assert target.read_text() == "new content\n"


def test_a_folder_whose_rename_fails_after_the_old_one_moved_aside_gets_the_old_one_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "target"
    _write_old(target, "atomic_folder")
    replace, renames_onto_target = os.replace, []

    def fail_the_first_rename_onto_target(source: Any, destination: Any) -> None:
        if Path(destination) == target and not renames_onto_target:  # staging -> target; then aside -> target
            renames_onto_target.append(source)
            raise OSError("disk full")
        replace(source, destination)

    monkeypatch.setattr(atomic.os, "replace", fail_the_first_rename_onto_target)
    with pytest.raises(OSError):
        _with_folder(target, lambda: None)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["target"] and os.listdir(target) == ["old.txt"]


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.parametrize("mask", [0o002, 0o022, 0o077])
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_files_and_folders_follow_the_umask(tmp_path: Path, writer: str, mask: int) -> None:
    target = tmp_path / "target"
    with _umask(mask):
        WRITERS[writer](target, lambda: None)
    expected = (0o777 if writer == "atomic_folder" else 0o666) & ~mask
    assert target.stat().st_mode & 0o777 == expected


def test_a_path_replaced_by_its_writer_still_follows_the_umask(tmp_path: Path) -> None:
    with _umask(0o022), atomic_path(tmp_path / "target") as staging:
        own = tmp_path / "writers-own-temporary"
        own.write_text("new")
        own.chmod(0o600)  # as mkstemp makes it; safetensors writes this way
        os.replace(own, staging)
    assert (tmp_path / "target").stat().st_mode & 0o777 == 0o644


def test_a_durable_write_fsyncs_the_file_and_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[Path] = []
    monkeypatch.setattr(atomic, "_fsync", synced.append)
    atomic.write_text(tmp_path / "durable", "x")
    assert [path.parent for path in synced] == [tmp_path, tmp_path.parent]  # the temporary, then the folder
    synced.clear()
    atomic.write_text(tmp_path / "cheap", "x", durable=False)
    assert synced == []


# ----------------------------------------------------------------------------- stray temporaries


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _temporary(folder: Path, target: str, *, pid: int, host: str = atomic._HOST, age_s: float = 0.0, is_dir: bool = False) -> Path:
    path = folder / f".{target}.{host}-{pid}-0123abcd.tmp"
    if is_dir:
        path.mkdir()
        (path / "inside").write_text("half")
    else:
        path.write_text("half")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_stale_temporaries_are_removed_and_live_ones_and_real_files_kept(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getpid()
    stale = [
        _temporary(tmp_path, "a.json", pid=dead),  # its writer is gone
        _temporary(tmp_path, "b", pid=dead, is_dir=True),  # a staging folder
        _temporary(tmp_path, "c.json", pid=alive, host="ffffff", age_s=2 * atomic.STALE_AFTER_S),  # old, another host
    ]
    kept = [
        _temporary(tmp_path, "d.json", pid=alive),  # a write in progress in this process
        _temporary(tmp_path, "e.json", pid=dead, host="ffffff"),  # fresh, another host: its writer may be alive
        *(tmp_path / name for name in ["a.json", ".hidden", "notes.tmp", ".notes.tmp", ".a.json.x1y2z3w4.tmp"]),
    ]
    for path in kept[2:]:
        path.write_text("mine")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(stale)
    assert sorted(tmp_path.iterdir()) == sorted(kept)


def test_a_killed_but_unreaped_writer_counts_as_gone(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        temporary = _temporary(tmp_path, "a.json", pid=process.pid)
        assert remove_stale_temporaries(tmp_path) == []
        process.kill()
        deadline = time.time() + 10
        while not remove_stale_temporaries(tmp_path) and time.time() < deadline:
            time.sleep(0.05)  # until the kernel has made it a zombie
        assert not temporary.exists()
    finally:
        process.kill()
        process.wait()


def test_a_missing_or_unreadable_folder_is_no_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert remove_stale_temporaries(tmp_path / "missing") == []
    assert remove_stale_temporaries(tmp_path / "file") == []


def test_writes_remove_stale_temporaries_in_their_folder(tmp_path: Path) -> None:
    stray = _temporary(tmp_path, "other.json", pid=_dead_pid())
    atomic.write_text(tmp_path / "a.json", "x")
    assert not stray.exists()


# ----------------------------------------------------------------------------- compute once


def test_compute_once_computes_once_under_concurrency(tmp_path: Path) -> None:
    target, calls = tmp_path / "entry.json", []

    def compute() -> str:
        calls.append(threading.get_ident())
        time.sleep(0.5)  # long enough for the other thread to arrive while this one holds the lock
        atomic.write_text(target, "computed")
        return "computed"

    results: list[atomic.Computed[str]] = []
    start = threading.Barrier(3)

    def ask() -> None:
        start.wait()
        results.append(compute_once(target, target.is_file, compute, target.read_text))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(calls) == 1
    assert sorted(result.computed for result in results) == [False, False, True]
    assert {result.value for result in results} == {"computed"}


def test_compute_once_does_not_recompute_when_done(tmp_path: Path) -> None:
    target = tmp_path / "entry"
    target.write_text("there")
    result = compute_once(target, target.is_file, lambda: pytest.fail("recomputed"), target.read_text)
    assert result == atomic.Computed("there", computed=False)
    assert not (tmp_path / "entry.lock").exists()  # a finished result needs no lock (read-only caches work)


def test_compute_once_after_a_failed_computation_computes_again(tmp_path: Path) -> None:
    target = tmp_path / "entry"
    with pytest.raises(Interrupted):
        compute_once(target, target.is_file, _raise_inside, target.read_text)
    result = compute_once(target, target.is_file, lambda: atomic.write_text(target, "x").read_text(), target.read_text)
    assert result == atomic.Computed("x", computed=True)


# ----------------------------------------------------------------------------- the callers


def _baseline(**changes: Any) -> Baseline:
    values: dict[str, Any] = dict(
        ability="sentiment", metric="accuracy", score=0.5, n=2, outcomes={"1": 1.0, "0": 0.0},
        task_version=1, task_fingerprint="t", model="m", model_fingerprint="w",
    )  # fmt: skip
    return Baseline(**{**values, **changes})


@pytest.mark.parametrize("failure", ["fsync fails", "os.replace fails"])
def test_a_baseline_write_failing_half_way_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    store = BaselineStore(tmp_path)
    path = store.write(_baseline())
    before = path.read_bytes()
    FAILURES[failure](monkeypatch)
    with pytest.raises(BaselineError, match=r"sentiment.json cannot be written \(.*\); the file there, if any, is unchanged"):
        store.write(_baseline(score=0.9))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == ["sentiment.json"]


def test_stored_baselines_are_rewritten_byte_for_byte(tmp_path: Path) -> None:
    stored = sorted(Path(__file__).resolve().parents[2].glob("baselines/*/*.json"))
    assert stored, "the repository's baselines/ folder is empty"
    for path in stored:
        model, name = path.parent.name, path.stem
        ability, _, protocol = name.partition(".")
        baseline = BaselineStore(path.parent.parent).read(model, ability, protocol or "default")
        assert baseline is not None
        assert BaselineStore(tmp_path).write(baseline).read_bytes() == path.read_bytes(), path


def _next_run_starts(baselines: Path) -> None:
    """The start-up checks of a run on model "m" (no model is loaded: they stop at the missing edits)."""
    from editguard.errors import GateProblem
    from editguard.preflight import check_inputs
    from editguard.settings import Settings

    settings = Settings(model="m", baselines=baselines, update_baselines=True)
    with contextlib.suppress(GateProblem):
        check_inputs(settings, None, [], read_edited=False)  # type: ignore[arg-type]


def test_stray_temporaries_go_at_start_up_and_on_write_never_on_read(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    path = store.write(_baseline())
    stray = _temporary(path.parent, "sentiment.json", pid=_dead_pid())
    assert store.read("m", "sentiment") == _baseline()
    assert stray.exists()  # reading a baseline deletes nothing
    store.write(_baseline(ability="nli"))
    assert not stray.exists()
    stray = _temporary(path.parent, "sentiment.json", pid=_dead_pid())
    _next_run_starts(tmp_path)
    assert not stray.exists()


def test_an_output_cache_write_failing_half_way_keeps_the_old_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, material = OutputCache(tmp_path), {"ability": "sentiment", "model": "m"}
    cache.store(material, {"0": ExampleResult(1.0)})
    path = cache.path(material)
    assert path is not None
    before = path.read_bytes()
    FAILURES["os.replace fails"](monkeypatch)
    cache.store(material, {"1": ExampleResult(0.0)})  # a cache is a convenience: the run goes on, and says so once
    monkeypatch.undo()
    assert str(tmp_path) in atomic.unwritable_caches()
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == sorted([path.name, path.name + ".lock"])
    cache.store(material, {"1": ExampleResult(0.0)})
    assert sorted(cache.load(material)) == ["0", "1"]


def test_an_output_cache_entry_holding_the_results_is_not_rewritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, material = OutputCache(tmp_path), {"ability": "sentiment", "model": "m"}
    cache.store(material, {"0": ExampleResult(1.0), "1": ExampleResult(0.0)})
    FAILURES["os.replace fails"](monkeypatch)
    cache.store(material, {"1": ExampleResult(0.0)})  # would raise if it wrote
    OutputCache(tmp_path, read=False).store(material, {"0": ExampleResult(1.0)})  # --editguard-rescore, same result


@pytest.mark.parametrize("failure", ["fsync fails", "os.replace fails"])
def test_a_report_write_failing_half_way_keeps_the_old_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    from editguard.reports.json import write_json
    from editguard.reports.run import Run

    path = tmp_path / "report.json"
    write_json(path, Run("PASS", 0, model="first"))
    before = path.read_text()
    assert json.loads(before)["model"] == "first" and json.loads(before)["abilities"] == []
    FAILURES[failure](monkeypatch)
    with pytest.raises(OSError):
        write_json(path, Run("PASS", 0, model="second"))
    monkeypatch.undo()
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["report.json"]


def test_a_gguf_is_converted_once_and_a_failed_conversion_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf, conversions = tmp_path / "model.gguf", []
    gguf.write_bytes(b"GGUF")

    def convert(source: Path, target: Path) -> None:
        conversions.append(source)
        with atomic_folder(target) as staging:
            (staging / "weights").write_text("half")
            if len(conversions) == 1:
                raise Interrupted("the conversion failed")
            (staging / "config.json").write_text("{}")

    monkeypatch.setattr(models, "_convert", convert)
    with pytest.raises(Interrupted):
        models._converted_gguf(gguf, tmp_path / "cache")
    assert [path.suffix for path in (tmp_path / "cache" / "models").iterdir()] == [".lock"]
    folder = models._converted_gguf(gguf, tmp_path / "cache")
    assert models._converted_gguf(gguf, tmp_path / "cache") == folder
    assert len(conversions) == 2 and sorted(os.listdir(folder)) == ["config.json", "weights"]


# ----------------------------------------------------------------------------- killed writers

KILLS = 20
WRITER_SCRIPT = """
import dataclasses, sys
from pathlib import Path
from editguard.baselines import BaselineStore

store = BaselineStore(Path(sys.argv[1]))
old = store.read("m", "sentiment")
new = dataclasses.replace(old, score=1 - old.score)
store.write(new)
print("ready", flush=True)
while True:
    store.write(old)
    store.write(new)
"""


def test_a_baseline_killed_at_random_points_of_its_update_is_old_or_new_and_no_stray_survives(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    old = _baseline(score=0.25, n=5000, outcomes={str(i): float(i % 2) for i in range(5000)})  # about 100 kB: writes take a while
    path = store.write(old)
    contents = {old.to_json(), dataclasses.replace(old, score=1 - old.score).to_json()}
    draw, strays = random.Random(0), 0
    for kill in range(KILLS):
        writer = subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        time.sleep(draw.uniform(0.0, 0.2))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        assert path.read_text() in contents and json.loads(path.read_text())
        strays += len(os.listdir(path.parent)) - 1
        if kill % 2:  # the next run starts (its start-up checks clean the model's folder once), or writes
            _next_run_starts(tmp_path)
        else:
            store.write(old)
        assert os.listdir(path.parent) == ["sentiment.json"], f"kill {kill}"
    print(f"{strays} stray temporaries left by {KILLS} kills, all removed")
