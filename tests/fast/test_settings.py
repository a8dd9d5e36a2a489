from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from editguard.settings import (
    DEFAULT_TOLERANCE,
    SettingsError,
    build_settings,
    parse_device,
    parse_limit,
    parse_tolerance,
)


def test_tolerance_parses_a_global_and_a_per_ability_value() -> None:
    assert parse_tolerance("0.1") == (None, 0.1)
    assert parse_tolerance("sentiment=0.2") == ("sentiment", 0.2)


@pytest.mark.parametrize("text", ["abc", "-0.1", "1.5", "nan", "=0.1", "sentiment=x"])
def test_malformed_tolerances_are_rejected_with_a_sentence(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"\w"):
        parse_tolerance(text)


@given(st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_every_fraction_round_trips(value: float) -> None:
    assert parse_tolerance(repr(value)) == (None, value)


def test_a_tolerance_of_one_gates_nothing_and_is_refused() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="allows any drop"):
        parse_tolerance("1")


@pytest.mark.parametrize("text", ["auto", "cpu", "cuda", "cuda:3"])
def test_devices(text: str) -> None:
    assert parse_device(text) == text


@pytest.mark.parametrize("text", ["gpu", "cuda:x", "cpu:1"])
def test_bad_devices(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_device(text)


def test_limit_must_be_positive() -> None:
    assert parse_limit("5") == 5
    with pytest.raises(argparse.ArgumentTypeError):
        parse_limit("0")


def test_command_line_wins_over_pyproject_over_ini(tmp_path: Path) -> None:
    settings = build_settings(
        {"limit": 7, "tolerance": [(None, 0.2)]},
        {"limit": 3, "model": "tiny-gpt2", "tolerance": {"default": 0.3, "sentiment": 0.4}},
        {"model": "ignored", "device": "cpu"},
        rootdir=tmp_path,
    )
    assert settings.limit == 7
    assert settings.model == "tiny-gpt2"
    assert settings.device == "cpu"
    assert settings.tolerance == 0.2  # the command line replaced the configured tolerances
    assert settings.tolerance_for("sentiment") == 0.2


def test_pyproject_tolerance_table_and_relative_paths(tmp_path: Path) -> None:
    settings = build_settings({}, {"tolerance": {"default": 0.1, "sentiment": 0.3}, "baselines": "gate"}, {}, rootdir=tmp_path)
    assert settings.tolerance_for("closed_qa") == 0.1
    assert settings.tolerance_for("sentiment") == 0.3
    assert settings.baselines == tmp_path / "gate"


def test_defaults(tmp_path: Path) -> None:
    settings = build_settings({}, {}, {}, rootdir=tmp_path)
    assert (settings.model, settings.edits, settings.method) == ("smollm2", None, "ROME")  # no edits given: the demo set
    assert settings.tolerance == DEFAULT_TOLERANCE
    assert settings.baselines == tmp_path / "baselines"


def test_bad_pyproject_value_names_its_origin(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"\[tool.editguard\] tolerance in pyproject.toml: 'lots' is not a number"):
        build_settings({}, {"tolerance": "lots"}, {}, rootdir=tmp_path)


def test_unknown_pyproject_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="unknown key 'tolerence'"):
        build_settings({}, {"tolerence": 0.1}, {}, rootdir=tmp_path)


def test_conflicting_options_name_both(tmp_path: Path) -> None:
    edited = tmp_path / "delta.safetensors"
    with pytest.raises(SettingsError, match="--editguard-edits and --editguard-edited"):
        build_settings({"edits": "demo", "edited": edited}, {}, {}, rootdir=tmp_path)


def test_shipped_edit_sets_match_the_requests_module() -> None:
    from editguard.editing.requests import SHIPPED_EDITS
    from editguard.settings import SHIPPED_EDITS as NAMES

    assert set(NAMES) == set(SHIPPED_EDITS)


@pytest.mark.parametrize("text, expected", [("auto", None), ("8", 8), ("1", 1)])
def test_batch_size(text: str, expected: int | None) -> None:
    from editguard.settings import parse_batch_size

    assert parse_batch_size(text) == expected


@pytest.mark.parametrize("text", ["0", "-3", "eight", "1.5"])
def test_bad_batch_size(text: str) -> None:
    from editguard.settings import parse_batch_size

    with pytest.raises(argparse.ArgumentTypeError, match="batch size|at least 1"):
        parse_batch_size(text)


def test_the_methods_and_modes_accepted_are_the_editing_registrys() -> None:
    from editguard.editing import registry
    from editguard.editing.methods import METHODS
    from editguard.editing.modes import MODES
    from editguard.settings import parse_method, parse_mode

    assert {parse_method(name.lower()) for name in registry.METHODS} == set(registry.METHODS) == set(METHODS)
    sized = {name: f"{name}:2" if MODES[name].sized else name for name in MODES}
    assert {parse_mode(given) for given in sized.values()} == set(sized.values())
    assert set(registry.MODES) == set(MODES)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("batch-sequential", "edit mode 'batch-sequential' needs the requests per batch as a whole number of at least 1: batch-sequential:N, e.g. batch-sequential:5"),
        ("batch-sequential:0", "edit mode 'batch-sequential:0' needs the requests per batch"),
        ("batch-sequential:x", "edit mode 'batch-sequential:x' needs the requests per batch"),
        ("batch:5", "edit mode batch takes no batch size; give it as batch"),
    ],
)
def test_a_sized_mode_needs_its_batch_size_and_only_it_takes_one(text: str, says: str) -> None:
    from editguard.settings import parse_mode

    with pytest.raises(argparse.ArgumentTypeError) as caught:
        parse_mode(text)
    assert str(caught.value).startswith(says)


def test_batch_sequential_steps_end_each_batch() -> None:
    from editguard.editing.modes import EditError, check_steps, mode_of

    mode = mode_of(" batch-sequential:05".strip())
    assert (mode.name, mode.size, mode.cumulative) == ("batch-sequential:5", 5, True)
    assert mode.steps(12) == (5, 10, 12) and mode.steps(3) == (3,)
    assert mode_of("sequential").steps(3) == (1, 2, 3)
    check_steps(mode, (5, 12), 12)
    with pytest.raises(EditError, match="edit count 6 does not end a batch of batch-sequential:5; choose counts among 5, 10, 12"):
        check_steps(mode, (5, 6), 12)


@pytest.mark.parametrize(
    ("kind", "text", "says"),
    [
        ("method", "RMOE", "'RMOE' is not a method; did you mean 'ROME'?"),
        ("method", "GRACE", "'GRACE' is not a method; use one of ROME, MEMIT, FT, KN, MEND"),
        ("mode", "sequental", "'sequental' is not a mode; did you mean 'sequential'?"),
    ],
)
def test_an_unknown_method_or_mode_suggests_the_closest(kind: str, text: str, says: str) -> None:
    from editguard import settings

    parse = {"method": settings.parse_method, "mode": settings.parse_mode}[kind]
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        parse(text)
    assert str(caught.value) == says


def test_a_method_registered_in_editing_is_accepted_and_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from editguard.editing import methods
    from editguard.settings import parse_method

    monkeypatch.setitem(methods.METHODS, "GRACE", dataclasses.replace(methods.METHODS["ROME"], name="GRACE"))
    assert parse_method("grace") == "GRACE"


def test_an_implementation_table_must_cover_the_registry() -> None:
    from editguard.editing import registry

    with pytest.raises(RuntimeError, match=r"not implemented \['batch'\], not registered \['batched'\]"):
        registry.check_covers("MODES", ["single", "sequential", "batched", "batch-sequential"], registry.MODES)


def test_settings_and_the_task_registry_import_no_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, editguard.settings, editguard.tasks.registry, editguard.tasks.sources as sources; "
        "sources.load_records('ner', sources.parse_data_source('probe')); "
        "heavy = sorted({'torch', 'transformers', 'easyeditor', 'datasets'} & set(sys.modules)); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_flag_a_configuration_file_switched_on_is_switched_off_from_the_command_line(tmp_path: Path) -> None:
    assert build_settings({}, {"early_stop": True}, {}, rootdir=tmp_path).early_stop is True
    assert build_settings({"early_stop": False}, {"early_stop": True}, {}, rootdir=tmp_path).early_stop is False


def test_the_edit_limit_and_the_no_signal_policy(tmp_path: Path) -> None:
    settings = build_settings({"edit_limit": 3, "no_signal": "fail"}, {}, {}, rootdir=tmp_path)
    assert (settings.edit_limit, settings.no_signal) == (3, "fail")
    with pytest.raises(SettingsError, match="edit_limit.*'0' must be at least 1 edit request"):
        build_settings({}, {"edit_limit": 0}, {}, rootdir=tmp_path)
    with pytest.raises(SettingsError, match="no_signal"):
        build_settings({}, {"no_signal": "ignore"}, {}, rootdir=tmp_path)


def test_the_engine_backend_needs_its_endpoint_and_the_edited_models_name(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="--editguard-backend engine needs --editguard-endpoint URL"):
        build_settings({}, {"backend": "engine"}, {}, rootdir=tmp_path)
    with pytest.raises(SettingsError, match="needs --editguard-served-edited NAME.*--lora-modules NAME=DIR/lora"):
        build_settings({}, {"backend": "engine", "endpoint": "http://127.0.0.1:8000"}, {}, rootdir=tmp_path)
    with pytest.raises(SettingsError, match="'localhost:8000' is not an http\\(s\\) URL"):
        build_settings({}, {"backend": "engine", "endpoint": "localhost:8000"}, {}, rootdir=tmp_path)
    settings = build_settings({}, {"backend": "engine", "endpoint": "http://127.0.0.1:8000/", "served_edited": "edited"}, {}, rootdir=tmp_path)
    assert (settings.backend, settings.endpoint, settings.served_base, settings.served_edited) == ("engine", "http://127.0.0.1:8000", None, "edited")


def test_the_vllm_backend_starts_its_own_server_or_uses_a_running_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else find_spec(name, *a))
    settings = build_settings({}, {"backend": "vllm"}, {}, rootdir=tmp_path)
    assert (settings.backend, settings.engine_python, settings.engine_args) == ("vllm", tmp_path / ".venv-engine" / "bin" / "python", "")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else find_spec(name, *a))
    assert build_settings({}, {"backend": "vllm"}, {}, rootdir=tmp_path).engine_python == Path(sys.executable)  # one environment
    monkeypatch.undo()
    settings = build_settings({}, {"backend": "vllm", "engine-python": "envs/vllm/bin/python", "engine-args": "--tensor-parallel-size 8"}, {}, rootdir=tmp_path)
    assert (settings.engine_python, settings.engine_args) == (tmp_path / "envs/vllm/bin/python", "--tensor-parallel-size 8")
    running = build_settings({}, {"backend": "vllm", "endpoint": "http://127.0.0.1:8000", "served_edited": "edited"}, {}, rootdir=tmp_path)
    assert (running.backend, running.endpoint) == ("engine", "http://127.0.0.1:8000")  # a running vLLM is an engine like any other
    with pytest.raises(SettingsError, match="--editguard-engine-python and --editguard-engine-args are for the vLLM server that --editguard-backend vllm starts"):
        build_settings({}, {"engine-python": "envs/vllm/bin/python"}, {}, rootdir=tmp_path)


# Found by the fuzz tier (tests/fuzz/test_fuzz_settings.py)


@pytest.mark.parametrize("name", ["edits", "hparams", "device_map"])
def test_a_path_too_long_for_the_system_is_refused_not_raised(name: str) -> None:
    from editguard.settings import OPTIONS_BY_NAME

    with pytest.raises(argparse.ArgumentTypeError, match="x" * 300):
        OPTIONS_BY_NAME[name].parse("x" * 300)


def test_a_count_that_is_no_whole_number_says_what_to_give() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"^'0.05' is not a whole number of examples; give one such as 10$"):
        parse_limit("0.05")


# Unclear inputs made clear: --editguard-edits naming a folder or a device


def test_edits_naming_a_folder_or_a_device_says_what_it_is(tmp_path: Path) -> None:
    import os

    from editguard.settings import parse_edits

    (tmp_path / "null.jsonl").symlink_to(os.devnull)
    for path, what in [(tmp_path, "a folder"), (Path(os.devnull), "a device"), (tmp_path / "null.jsonl", f"a link to {os.devnull} (a device)")]:
        with pytest.raises(argparse.ArgumentTypeError) as caught:
            parse_edits(str(path))
        assert str(caught.value).startswith(f"edits file {str(path)!r} is {what}, not an edits file; give an edit-requests file")
    with pytest.raises(argparse.ArgumentTypeError, match="does not exist; give an edit-requests file"):
        parse_edits(str(tmp_path / "absent.jsonl"))
