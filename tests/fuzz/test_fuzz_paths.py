"""Paths that name no file: missing, a folder, a device, a link to one of those or to nothing, for every reader.

Each reader says what stands there (or that nothing does) in one sentence naming the path, never "no baseline"
for a baseline file that is a link to /dev/null, never a traceback.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fuzz_support import FUZZ, assert_one_sentence, count, fresh_folder
from hypothesis import given, settings
from hypothesis import strategies as st

from editguard.baselines import BaselineStore
from editguard.editing.external import check_edited_path, read_delta_file
from editguard.editing.requests import located_requests
from editguard.errors import GateProblem
from editguard.preflight import check_folder
from editguard.settings import Settings, parse_edits
from editguard.stages.examples import Examples
from editguard.tasks import all_names

KINDS = ("missing", "folder", "link-to-null", "link-to-folder", "dangling-link", "null", "file")


def _odd_path(folder: Path, kind: str, name: str) -> Path:
    """A path named ``name`` in ``folder`` where no file is, as ``kind`` says (/dev/null itself for "null")."""
    if kind == "null":
        return Path(os.devnull)
    path = folder / name
    if kind == "folder":
        path.mkdir()
    elif kind == "link-to-null":
        path.symlink_to(os.devnull)
    elif kind == "link-to-folder":
        (folder / "elsewhere").mkdir()
        path.symlink_to(folder / "elsewhere")
    elif kind == "dangling-link":
        path.symlink_to(folder / "nowhere")
    elif kind == "file":
        path.write_text("a file\n", encoding="utf-8")
    return path


@settings(FUZZ, max_examples=60)
@given(kind=st.sampled_from(KINDS[:-1]), suffix=st.sampled_from([".jsonl", ".json"]))
def test_an_edits_path_that_is_no_file_is_told_what_it_is(tmp_path: Path, kind: str, suffix: str) -> None:
    count("paths")
    path = _odd_path(fresh_folder(tmp_path), kind, f"edits{suffix}")
    try:
        located_requests(path)
    except Exception as error:  # noqa: BLE001
        message = assert_one_sentence(error, str(path))
        assert f"{path}' does not exist" in message if kind == "missing" else f"{path}' is a " in message, message
    else:
        raise AssertionError(f"{kind}: read as an edits file")
    try:
        parse_edits(str(path))
    except argparse.ArgumentTypeError as error:
        assert f"{path}' does not exist" in str(error) if kind == "missing" else f"{path}' is a " in str(error), str(error)
    else:
        raise AssertionError(f"{kind}: accepted by --editguard-edits")


@settings(FUZZ, max_examples=40)
@given(kind=st.sampled_from(KINDS[:-2]))
def test_a_baseline_path_that_is_no_file_is_told_what_it_is(tmp_path: Path, kind: str) -> None:
    count("paths")
    store = BaselineStore(fresh_folder(tmp_path))
    path = store.path("m", "sentiment")
    path.parent.mkdir(parents=True)
    _odd_path(path.parent, kind, path.name)
    try:
        baseline = store.read("m", "sentiment")
    except Exception as error:  # noqa: BLE001
        message = assert_one_sentence(error, str(path))
        assert "--editguard-update-baselines" in message and kind != "missing"
    else:
        assert baseline is None and kind == "missing", kind  # only a missing file is "no baseline"


@settings(FUZZ, max_examples=120)
@given(kind=st.sampled_from(KINDS[:-1]), ability=st.sampled_from(all_names()), how=st.sampled_from(["file", "study"]))
def test_a_data_path_that_is_no_file_is_one_sentence(tmp_path: Path, kind: str, ability: str, how: str) -> None:
    count("paths")
    path = _odd_path(fresh_folder(tmp_path), kind, "data.jsonl")
    stage = Examples(Settings(data={ability: f"{how}:{path}"}))
    try:
        stage.all(stage.task(ability))
    except Exception as error:  # noqa: BLE001
        assert isinstance(error, GateProblem), f"{type(error).__name__} escaped: {error!r}"
        assert_one_sentence(error, str(path))
    else:
        raise AssertionError(f"{kind}: read as {ability} data")


@settings(FUZZ, max_examples=60)
@given(kind=st.sampled_from(KINDS[:-1]), suffix=st.sampled_from([".safetensors", ""]))
def test_an_edited_model_path_that_is_no_file_is_one_sentence(tmp_path: Path, kind: str, suffix: str) -> None:
    count("paths")
    path = _odd_path(fresh_folder(tmp_path), kind, f"delta{suffix}")
    try:
        check_edited_path(path)
        read_delta_file(path)
    except Exception as error:  # noqa: BLE001
        assert_one_sentence(error, str(path))
    else:
        raise AssertionError(f"{kind}: read as an edited model")


@settings(FUZZ, max_examples=30)
@given(kind=st.sampled_from(KINDS[:-2] + ("file",)), model=st.booleans())
def test_a_baselines_folder_that_is_no_folder_is_one_sentence(tmp_path: Path, kind: str, model: bool) -> None:
    """The start-up check of --editguard-baselines (and of a model's folder in it): a folder, or nothing there yet."""
    count("paths")
    parent = fresh_folder(tmp_path) / ("baselines" if model else "")
    parent.mkdir(exist_ok=True)
    path = _odd_path(parent, kind, "m" if model else "baselines")
    try:
        check_folder(path)
    except Exception as error:  # noqa: BLE001
        assert_one_sentence(error, str(path))
        assert kind not in ("missing", "folder", "link-to-folder"), kind
    else:
        assert kind in ("missing", "folder", "link-to-folder"), kind
