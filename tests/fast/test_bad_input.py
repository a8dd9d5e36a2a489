"""Bad input is refused with one sentence naming the option or file (and record and field), without a model.

The same inputs, and more, go through the real ``editguard`` command in ``tests/model/test_bad_inputs.py``.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from editguard.baselines import Baseline, BaselineError, BaselineStore
from editguard.cli import joined_values
from editguard.editing.requests import EditRequest, EditRequestError, context_problem, load_requests
from editguard.errors import GateProblem, remembered, shown
from editguard.models import DeviceError, ModelSourceError, check_gguf_file, check_model_folder, model_name, resolve_device
from editguard.reports.lines import table
from editguard.reports.rows import COULD_NOT_CHECK, problem_row

# ----------------------------------------------------------------------------- baseline files


def _recorded(tmp_path: Path, kind: str = "accuracy", **changes: Any) -> Path:
    outcomes: dict[str, Any] = {"0": 1.0, "1": 0.0} if kind != "entity_f1" else {"0": [1.0, 2.0, 2.0], "1": [0.0, 1.0, 1.0]}
    baseline = Baseline(
        ability="sentiment", metric=kind, score=0.5, n=2, outcomes=outcomes,
        task_version=1, task_fingerprint="t", model="m", model_fingerprint="w",
    )  # fmt: skip
    path = BaselineStore(tmp_path).write(baseline)
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_text(json.dumps(record))
    return path


@pytest.mark.parametrize(
    ("metric", "changes", "says"),
    [
        ("accuracy", {"score": float("nan")}, "field 'score' is nan, not a finite number"),
        ("accuracy", {"score": float("inf")}, "field 'score' is inf, not a finite number"),
        ("accuracy", {"score": "0.5"}, "field 'score' is '0.5', not a number"),
        ("accuracy", {"outcomes": {"0": "yes", "1": 0.0}}, "field 'outcomes', example '0': 'yes' is not a number"),
        ("accuracy", {"outcomes": {"0": float("nan"), "1": 0.0}}, "example '0': nan is not a number"),
        ("accuracy", {"outcomes": {"0": 0.5, "1": 0.0}}, "example '0': 0.5 is not 0 or 1"),
        ("accuracy", {"outcomes": {"0": [1, 1, 1], "1": 0.0}}, "example '0': [1, 1, 1] is not a number"),
        ("accuracy", {"outcomes": "1,0"}, "field 'outcomes' is '1,0', not a JSON object"),
        ("accuracy", {"n": 3}, "field 'n' is 3 but 'outcomes' holds 2"),
        ("accuracy", {"metric": "acuracy"}, "field 'metric': unknown metric 'acuracy'; did you mean 'accuracy'?"),
        ("entity_f1", {"outcomes": {"0": 1.0, "1": [0.0, 1.0, 1.0]}}, "example '0': 1.0 is not a list of counts"),
        ("entity_f1", {"outcomes": {"0": [1.0, -2.0, 2.0], "1": [0.0, 1.0, 1.0]}}, "is not a list of counts"),
        ("entity_f1", {"outcomes": {"0": [1.0, 2.0], "1": [0.0, 1.0, 1.0]}}, "field 'outcomes' mixes lists of [2, 3] counts"),
    ],
)
def test_a_baseline_value_a_verdict_would_use_is_refused_naming_file_and_field(
    tmp_path: Path, metric: str, changes: dict[str, Any], says: str
) -> None:
    path = _recorded(tmp_path, metric, **changes)
    with pytest.raises(BaselineError) as raised:
        BaselineStore(tmp_path).read("m", "sentiment")
    assert str(raised.value).startswith(f"baseline {path}: ")
    assert says in str(raised.value) and str(raised.value).endswith("re-record it with --editguard-update-baselines")


def test_a_well_formed_baseline_of_each_outcome_kind_is_accepted(tmp_path: Path) -> None:
    for metric in ("accuracy", "rouge", "entity_f1"):
        _recorded(tmp_path / metric, metric)
        assert BaselineStore(tmp_path / metric).read("m", "sentiment") is not None


def test_a_huge_baseline_value_is_not_echoed_whole(tmp_path: Path) -> None:
    _recorded(tmp_path, outcomes={"0": "x" * 1_000_000, "1": 0.0})
    with pytest.raises(BaselineError) as raised:
        BaselineStore(tmp_path).read("m", "sentiment")
    assert len(str(raised.value)) < 600 and "(1,000,000 characters)" in str(raised.value)


# ----------------------------------------------------------------------------- edit requests


def test_one_pretty_printed_json_object_is_told_its_shape(tmp_path: Path) -> None:
    path = tmp_path / "edits.json"
    path.write_text(json.dumps({"prompt": "The Eiffel Tower is in", "subject": "The Eiffel Tower", "target_new": "Rome"}, indent=2))
    with pytest.raises(EditRequestError, match=r"one JSON object spread over several lines, not one edit request per line"):
        load_requests(path)


def test_a_broken_line_is_still_told_by_its_line(tmp_path: Path) -> None:
    path = tmp_path / "edits.jsonl"
    path.write_text('{"prompt": "A is", "subject": "A", "target_new": "B"}\n{"prompt": \n')
    with pytest.raises(EditRequestError, match=r"edits.jsonl, line 2: not valid JSON"):
        load_requests(path)


def test_a_huge_field_is_not_echoed_whole(tmp_path: Path) -> None:
    path = tmp_path / "edits.jsonl"
    path.write_text(json.dumps({"prompt": "The tower is in", "subject": "S" * 2_000_000, "target_new": "Rome"}) + "\n")
    with pytest.raises(EditRequestError) as raised:
        load_requests(path)
    assert len(str(raised.value)) < 600 and "(2,000,000 characters)" in str(raised.value)


class _CharacterTokenizer:
    """One token per character, so lengths are easy to state."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, text: str, verbose: bool = True) -> dict[str, list[int]]:
        self.calls.append(len(text))
        return {"input_ids": [ord(ch) for ch in text]}


def test_a_request_longer_than_the_context_is_refused_with_its_length_and_the_limit() -> None:
    request = EditRequest(prompt="x" * 30, subject="x", target_new="Rome")
    assert context_problem(request, _CharacterTokenizer(), 64) is None
    why = context_problem(request, _CharacterTokenizer(), 20)
    assert why == (
        "fields 'prompt' and 'target_new' together are 35 tokens long (35 characters), more than the model's context "
        "of 20 tokens; shorten them"
    )
    locality = EditRequest(prompt="p", subject="p", target_new="t", locality_prompt="y" * 50, locality_answer="z")
    assert "fields 'locality_prompt' and 'locality_answer'" in str(context_problem(locality, _CharacterTokenizer(), 20))


def test_a_huge_request_is_tokenised_only_as_far_as_needed() -> None:
    tokenizer = _CharacterTokenizer()
    why = context_problem(EditRequest(prompt="x" * 10_000_000, subject="x", target_new="Rome"), tokenizer, 1024)
    assert why is not None and "more than 1,024 tokens long (10,000,005 characters)" in why
    assert max(tokenizer.calls) == 16 * 1024


# ----------------------------------------------------------------------------- model sources and devices


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    return folder


def test_a_folder_with_only_a_config_has_no_weights(folder: Path) -> None:
    with pytest.raises(ModelSourceError, match=r"model folder '.*model' has no weights \(no \*.safetensors or pytorch_model\*.bin\)"):
        check_model_folder(folder)


def test_a_folder_with_config_and_tokenizer_but_no_weights_says_so(folder: Path) -> None:
    (folder / "tokenizer.json").write_text("{}")
    with pytest.raises(ModelSourceError, match=r"has no weights"):
        check_model_folder(folder)


def test_a_folder_with_weights_but_no_tokenizer_says_so(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(ModelSourceError, match=r"has no tokenizer \(none of tokenizer.json"):
        check_model_folder(folder)
    (folder / "tokenizer.json").write_text("{}")
    check_model_folder(folder)


def test_a_pickle_renamed_to_safetensors_is_named(folder: Path) -> None:
    (folder / "tokenizer.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(pickle.dumps({"weight": [1.0, 2.0]}))
    with pytest.raises(ModelSourceError, match=r"model weights '.*model.safetensors' is not a safetensors file"):
        check_model_folder(folder)


@pytest.mark.parametrize(("config", "says"), [("{", "is not valid JSON"), ("[]", "names no 'model_type'"), (None, "has no config.json")])
def test_a_bad_config_is_named(folder: Path, config: str | None, says: str) -> None:
    if config is None:
        (folder / "config.json").unlink()
    else:
        (folder / "config.json").write_text(config)
    with pytest.raises(ModelSourceError, match=says):
        check_model_folder(folder)


@pytest.mark.parametrize(("content", "says"), [(b"", "is empty"), (b"PK\x03\x04 a zip", r"is not a GGUF file \(it does not start with the bytes 'GGUF'\)"), (None, "does not exist")])
def test_a_gguf_file_that_is_not_one_is_named(tmp_path: Path, content: bytes | None, says: str) -> None:
    path = tmp_path / "model.gguf"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelSourceError, match=f"GGUF file '.*model.gguf' {says}; check --editguard-model"):
        check_gguf_file(path)


def test_a_model_source_is_named_as_its_loader_names_it() -> None:
    assert model_name("/models/my-ckpt/") == "my-ckpt" and model_name("./ckpt") == "ckpt"
    assert model_name("/models/SmolLM2-135M.Q4_1.gguf") == "SmolLM2-135M.Q4_1"
    assert model_name("org/name") == "name"


def test_a_cuda_device_the_machine_lacks_names_the_option() -> None:
    with pytest.raises(DeviceError, match=r"^--editguard-device cuda: this machine has no CUDA device \(.*\); use --editguard-device cpu"):
        resolve_device("cuda", gpu_count=0)
    with pytest.raises(DeviceError, match=r"^--editguard-device cuda:9: only 2 CUDA device\(s\) are visible \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:9", gpu_count=2)
    assert resolve_device("cuda:1", gpu_count=2) == "cuda:1"
    assert resolve_device("auto", gpu_count=0) == "cpu"


def test_a_base_model_with_a_nan_weight_is_refused_naming_the_weight() -> None:
    import torch

    from editguard.preflight import check_finite_weights

    layer = torch.nn.Linear(2, 2)
    check_finite_weights(SimpleNamespace(model=layer, source="./ckpt"))
    with torch.no_grad():
        layer.bias[1] = float("inf")
    with pytest.raises(GateProblem, match=r"^--editguard-model ./ckpt: weight 'bias' holds non-finite values \(NaN or inf\)"):
        check_finite_weights(SimpleNamespace(model=layer, source="./ckpt"))


# ----------------------------------------------------------------------------- problems found once, and how they show


def test_a_problem_is_found_once_and_raised_again() -> None:
    class Stage:
        calls = 0

        @remembered
        def model(self) -> str:
            Stage.calls += 1
            raise GateProblem("--editguard-model x: no such model")

    stage = Stage()
    for _ in range(3):
        with pytest.raises(GateProblem, match="no such model"):
            stage.model  # noqa: B018
    assert Stage.calls == 1


def test_shown_cuts_a_long_value_and_says_its_length() -> None:
    assert shown("short") == "'short'"
    assert shown("y" * 1000).endswith("... (1,000 characters)") and len(shown("y" * 1000)) < 240


def test_the_table_says_could_not_check_instead_of_a_verdict() -> None:
    row = problem_row("sentiment", "SST-2", "no baseline for sentiment at baselines/m/sentiment.json; record it", metric="accuracy")
    assert row.verdict == COULD_NOT_CHECK
    assert table([row])[-1].endswith("COULD NOT CHECK")


# ----------------------------------------------------------------------------- configuration


def test_the_command_joins_option_values_so_pytest_reads_the_project_configuration() -> None:
    args = ["--editguard-edited", "/elsewhere/delta.safetensors", "--editguard-update-baselines", "-k", "x", "--editguard-limit", "8"]
    assert joined_values(args) == ["--editguard-edited=/elsewhere/delta.safetensors", "--editguard-update-baselines", "-k", "x", "--editguard-limit=8"]
    assert joined_values(["--editguard-tolerance", "-0.1"]) == ["--editguard-tolerance=-0.1"]  # refused by its parser, not as "expected one argument"


def test_a_tolerance_for_an_unknown_ability_is_refused_with_a_suggestion(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--editguard-tolerance", "sentimnet=0.1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --editguard-tolerance: unknown ability 'sentimnet'; did you mean 'sentiment'?"])


def test_a_pyproject_tolerance_table_with_an_unknown_ability_is_refused_naming_the_table(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.editguard]\ntolerance = {default = 0.05, sentimnet = 0.1}\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: [[]tool.editguard[]] tolerance in pyproject.toml: unknown ability 'sentimnet'; did you mean 'sentiment'?"])


def test_settings_in_the_ini_file_are_not_lost_to_a_path_outside_the_project(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """pytest would take its configuration from the delta's folder: refused in one sentence, with the fixes."""
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\neditguard_tolerance = '0.2'\n")
    outside = tmp_path / "elsewhere" / "delta.safetensors"
    outside.parent.mkdir()
    outside.write_bytes(b"")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--editguard-edited", str(outside))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --editguard-edited {outside}: pytest read no configuration file instead of the project's {pytester.path}/pyproject.toml,"
         f" because it guesses its configuration file from path arguments; write --editguard-edited={outside}, *"]
    )  # fmt: skip
    joined = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest", f"--editguard-edited={outside}")
    assert joined.ret == pytest.ExitCode.NO_TESTS_COLLECTED  # read from the project: nothing to refuse


def test_the_command_answers_a_mistyped_option_before_importing_transformers(tmp_path: Path) -> None:
    """A typo is told in about half a second: transformers (and torch) are imported only when the gate needs them,
    and then without scikit-learn, which the command's own process never uses."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from editguard import cli\n"
        "status = cli.main(['--editguard-limit', '0'])\n"
        "assert status == 4 and 'transformers' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)\n"
        "from transformers.generation import candidate_generator\n"
        "assert 'sklearn' not in sys.modules\n"
    )
    (tmp_path / "pyproject.toml").write_text('[tool.editguard]\nmodel = "tiny-gpt2"\n')
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--editguard-limit: '0' must be at least 1 example" in done.stdout + done.stderr
