"""Precision and placement without a model: the dtype and device-map options, baselines recorded per dtype,
and how xdist workers share the GPUs."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from editguard.baselines import Baseline, BaselineStore, staleness
from editguard.errors import GateProblem
from editguard.models import gpu_group, resolve_dtype
from editguard.settings import OPTIONS_BY_NAME, Settings, SettingsError, build_settings, parse_device_map
from editguard.stages.baselines import Baselines
from editguard.stages.examples import Examples

ROOT = Path(__file__).resolve().parents[2]


def test_the_dtype_comes_from_the_command_line_or_pyproject(tmp_path: Path) -> None:
    assert build_settings({}, {}, {}, rootdir=tmp_path).dtype == "auto"
    assert build_settings({}, {"dtype": "bfloat16"}, {}, rootdir=tmp_path).dtype == "bfloat16"
    assert build_settings({"dtype": "float16"}, {"dtype": "bfloat16"}, {}, rootdir=tmp_path).dtype == "float16"
    with pytest.raises(SettingsError, match=r"\[tool.editguard\] dtype.*'half' is not a dtype; use one of auto, float32, bfloat16, float16"):
        build_settings({}, {"dtype": "half"}, {}, rootdir=tmp_path)
    assert "--editguard-dtype" == OPTIONS_BY_NAME["dtype"].cli


def test_auto_is_float32_on_a_cpu() -> None:
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"


def test_a_device_map_is_auto_balanced_or_a_file(tmp_path: Path) -> None:
    assert parse_device_map("auto") == "auto" and parse_device_map("balanced") == "balanced"
    path = tmp_path / "map.json"
    path.write_text('{"transformer.h.0": "cpu"}')
    assert parse_device_map(str(path)) == str(path)
    with pytest.raises(argparse.ArgumentTypeError, match="is not a device map; use auto, balanced, or a JSON file"):
        parse_device_map("sequential")


def test_a_device_map_file_names_what_is_wrong(tmp_path: Path) -> None:
    from editguard.models import DeviceMapError, read_device_map

    path = tmp_path / "map.json"
    path.write_text('{"model.layers.0": 0, "model.layers.1": "cuda:1", "lm_head": "cpu"}')
    assert read_device_map(path) == {"model.layers.0": 0, "model.layers.1": "cuda:1", "lm_head": "cpu"}
    path.write_text('{"model.layers.1": "disk"}')
    with pytest.raises(DeviceMapError, match="'model.layers.1' is offloaded to disk, where no edit can be applied in place; offload it to 'cpu'"):
        read_device_map(path)
    path.write_text('{"model.layers.1": "gpu7"}')
    with pytest.raises(DeviceMapError, match="'gpu7' is not a device"):
        read_device_map(path)


@pytest.mark.parametrize(
    ("workers", "gpus", "groups"),
    [
        (1, 4, [(0, 1, 2, 3)]),
        (2, 4, [(0, 1), (2, 3)]),
        (4, 4, [(0,), (1,), (2,), (3,)]),
        (2, 5, [(0, 1, 2), (3, 4)]),
        (3, 8, [(0, 1, 2), (3, 4, 5), (6, 7)]),
        (3, 2, [(0,), (1,), (0,)]),  # more workers than GPUs: one each, shared round robin
        (2, 0, [(), ()]),
    ],
)
def test_each_xdist_worker_gets_its_own_group_of_gpus(workers: int, gpus: int, groups: list[tuple[int, ...]]) -> None:
    assert [gpu_group(index, workers, gpus) for index in range(workers)] == groups
    if workers <= gpus:
        owned = [gpu for group in groups for gpu in group]
        assert sorted(owned) == list(range(gpus))  # disjoint, and every GPU is used


def _baseline(**changes: object) -> Baseline:
    values: dict = dict(
        ability="sentiment", metric="accuracy", score=0.5, n=2, outcomes={"1": 1.0, "0": 0.0},
        task_version=1, task_fingerprint="t", model="m", model_fingerprint="w",
    )  # fmt: skip
    return Baseline(**values | changes)


def test_a_baseline_in_another_dtype_is_stale_naming_both() -> None:
    current = dict(task_version=1, task_fingerprint="t", model_fingerprint="w")
    assert staleness(_baseline(), **current) is None  # float32 both
    why = staleness(_baseline(), **current | {"model_fingerprint": "w-bf16", "dtype": "bfloat16"})
    assert why == "it was recorded with the model in float32, and this run loads it in bfloat16"


def test_baselines_from_before_dtypes_read_as_float32_and_stay_as_they_were() -> None:
    folder = ROOT / "baselines"
    files = sorted(folder.glob("*/*.json"))
    assert files
    before = {path: path.read_bytes() for path in files}
    for path in files:
        assert "dtype" not in json.loads(before[path])
        baseline = BaselineStore(folder).read(path.parent.name, path.stem.partition(".")[0], path.stem.partition(".")[2] or "default")
        assert baseline is not None and baseline.dtype == "float32"
    assert {path: path.read_bytes() for path in files} == before


@dataclass(frozen=True)
class _Base:
    name: str = "fake-model"
    fingerprint: str = "w0"
    dtype: str = "float32"
    identity: object = None


class _Scoring:
    def score(self, task: object, examples: list) -> object:
        from editguard.statistics.metrics import ExampleResult, Score

        return Score.from_results("sentiment", "accuracy", {e.id: ExampleResult(1.0) for e in examples})


def test_a_float32_baseline_against_a_bfloat16_run_fails_as_stale_with_both_ways_out(tmp_path: Path) -> None:
    settings = Settings(baselines=tmp_path, limit=8, abilities=("sentiment",))
    examples = Examples(settings)
    recorded, path = Baselines(settings, examples, _Scoring(), _Base).record("sentiment")  # type: ignore[arg-type]
    assert recorded.dtype == "float32" and "dtype" not in json.loads(path.read_text())  # float32 files look as before
    in_bf16 = Baselines(settings, examples, _Scoring(), lambda: _Base(fingerprint="w1", dtype="bfloat16"))  # type: ignore[arg-type]
    with pytest.raises(GateProblem) as raised:
        in_bf16.checked("sentiment")
    assert str(raised.value) == (
        f"baseline {path} is stale: it was recorded with the model in float32, and this run loads it in bfloat16; "
        "re-record it with --editguard-update-baselines, or run with --editguard-dtype float32"
    )


class _EditsNotToCompute:
    @property
    def variants(self) -> list:
        raise AssertionError("the edit was computed before the baseline was checked")


def test_a_stale_baseline_is_told_before_any_edit_is_computed(tmp_path: Path) -> None:
    """On a CPU a bfloat16 edit is slow: a baseline of another dtype fails at once, not after the edit."""
    from editguard.stages.verdicts import Verdicts

    settings = Settings(baselines=tmp_path, limit=8, abilities=("sentiment",))
    examples = Examples(settings)
    Baselines(settings, examples, _Scoring(), _Base).record("sentiment")  # type: ignore[arg-type]
    in_bf16 = Baselines(settings, examples, _Scoring(), lambda: _Base(fingerprint="w1", dtype="bfloat16"))  # type: ignore[arg-type]
    verdicts = Verdicts(settings, examples, _Scoring(), in_bf16, _EditsNotToCompute())  # type: ignore[arg-type]
    with pytest.raises(GateProblem, match="recorded with the model in float32, and this run loads it in bfloat16"):
        verdicts.worst(verdicts.inputs("sentiment"))


def test_a_device_map_file_in_pyproject_is_relative_to_the_rootdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "split.json").write_text('{"model": "cpu"}')
    monkeypatch.chdir(ROOT)  # elsewhere than the rootdir
    assert build_settings({}, {"device_map": "split.json"}, {}, rootdir=tmp_path).device_map == str(tmp_path / "split.json")
    assert build_settings({}, {"device_map": "balanced"}, {}, rootdir=tmp_path).device_map == "balanced"
