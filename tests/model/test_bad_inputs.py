"""Bad input, tried as a new user would, through the real ``editguard`` command (tiny-gpt2, one ability, 8 examples).

For each input of the sweep: the exit status is 4 ("could not check", not 1, "regressed"), exactly one line
tells the problem in one sentence naming the option or file (and record and field), nothing looks like a
traceback, the output stays short whatever the size of the input, and no baseline file changes by a byte.
One baseline folder is recorded once and shared; most inputs are refused at start-up in a few seconds.
Run with ``-s`` to print the table of inputs, statuses and sentences.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from editguard import atomic
from editguard.editing.delta import WeightDelta

BIN = Path(sys.executable).parent
LAYER = "transformer.h.0.mlp.c_fc.weight"  # a parameter of tiny-gpt2, (64, 256)
PROJECT = """\
[tool.editguard]
model = "tiny-gpt2"
device = "cpu"
limit = 8
abilities = "sentiment"
tolerance = 0.5
edited = "{inputs}/good.safetensors"
no_signal = "gate"  # the random tiny model is at chance everywhere; these cases are about inputs
"""
COULD_NOT_CHECK = 4


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]  # "{inputs}" and "{case}" are replaced by the inputs folder and the case's own folder
    says: tuple[str, ...]  # what the one sentence holds: the option or file named, the field, the fix
    pyproject: str | None = None  # the case runs in its own folder with this pyproject.toml
    baseline: Callable[[dict[str, Any]], str] | None = None  # the recorded sentiment.json, made bad, in the case's folder
    command: str = "editguard"


def _changed(**values: Any) -> Callable[[dict[str, Any]], str]:
    return lambda record: json.dumps({**record, **values})


def _outcome(value: Any) -> Callable[[dict[str, Any]], str]:
    return lambda record: json.dumps({**record, "outcomes": {**record["outcomes"], next(iter(record["outcomes"])): value}})


def _without(name: str) -> Callable[[dict[str, Any]], str]:
    return lambda record: json.dumps({key: value for key, value in record.items() if key != name})


BASELINE = ("--editguard-baselines", "{case}/baselines")
CASES = [
    # options, pyproject and ini values: refused as they are parsed
    Case("tolerance not a number", ("--editguard-tolerance", "lots"), ("argument --editguard-tolerance: 'lots' is not a number",)),
    Case("tolerance of 1", ("--editguard-tolerance", "1"), ("--editguard-tolerance", "a tolerance of 1 allows any drop")),
    Case("tolerance for a misspelt ability", ("--editguard-tolerance", "sentimnet=0.1"), ("--editguard-tolerance: unknown ability 'sentimnet'; did you mean 'sentiment'?",)),
    Case("pyproject tolerance table with a misspelt ability", (), ("[tool.editguard] tolerance in pyproject.toml: unknown ability 'sentimnet'; did you mean 'sentiment'?",),
         pyproject='[tool.editguard]\nmodel = "tiny-gpt2"\ntolerance = {default = 0.05, sentimnet = 0.1}\n'),
    Case("ini tolerance for a misspelt ability", (), ("ini option editguard_tolerance: unknown ability 'sentimnet'",),
         pyproject='[tool.pytest.ini_options]\neditguard_model = "tiny-gpt2"\neditguard_tolerance = ["sentimnet=0.1"]\n'),
    Case("limit 0", ("--editguard-limit", "0"), ("argument --editguard-limit: '0' must be at least 1 example",)),
    Case("misspelt ability", ("--editguard-abilities", "sentimnet"), ("--editguard-abilities: unknown ability 'sentimnet'; did you mean 'sentiment'?",)),
    Case("data for a misspelt ability", ("--editguard-data", "sentimnet=probe"), ("--editguard-data: unknown ability 'sentimnet'",)),
    Case("device gpu", ("--editguard-device", "gpu"), ("argument --editguard-device: 'gpu' is not a device",)),
    Case("device cuda:9", ("--editguard-device", "cuda:9"), ("--editguard-device cuda:9: ", "use")),
    Case("unknown method", ("--editguard-method", "GRACE"), ("argument --editguard-method: 'GRACE' is not a method",)),
    Case("misspelt mode", ("--editguard-mode", "sequentail"), ("argument --editguard-mode: 'sequentail' is not a mode; did you mean 'sequential'?",)),
    Case("alpha 0.7", ("--editguard-alpha", "0.7"), ("argument --editguard-alpha: '0.7' is not an error rate",)),
    Case("batch size 0", ("--editguard-batch-size", "0"), ("argument --editguard-batch-size: '0' must be at least 1",)),
    Case("edit counts from 0", ("--editguard-edit-counts", "0,5"), ("argument --editguard-edit-counts:", "edit counts are whole numbers from 1")),
    Case("misspelt protocol", ("--editguard-protocol", "studdy"), ("argument --editguard-protocol: 'studdy' is not a protocol",)),
    Case("missing hparams file", ("--editguard-hparams", "missing.yaml"), ("argument --editguard-hparams: file 'missing.yaml' does not exist",)),
    Case("edits and edited both given", ("--editguard-edits", "demo", "--editguard-edited", "{inputs}/good.safetensors"), ("--editguard-edits and --editguard-edited both name the edited model",)),
    Case("pyproject unknown key", (), ("[tool.editguard] in pyproject.toml has an unknown key 'limt'",), pyproject="[tool.editguard]\nlimt = 8\n"),
    Case("pyproject not TOML", (), ("pyproject.toml: Expected ']' at the end of a table declaration (at line 1, column 16)",), pyproject="[tool.editguard\nlimit = 8\n"),
    Case("pyproject limit 0", (), ("[tool.editguard] limit in pyproject.toml: '0' must be at least 1 example",), pyproject="[tool.editguard]\nlimit = 0\n"),
    Case("ini settings and a delta outside the project (plain pytest)", ("--pyargs", "editguard.gate", "-p", "no:cacheprovider", "--editguard-edited", "{inputs}/good.safetensors"),
         ("--editguard-edited ", "pytest read no configuration file instead of the project's ", "write --editguard-edited="),
         pyproject='[tool.pytest.ini_options]\neditguard_model = "tiny-gpt2"\neditguard_tolerance = ["0.2"]\n', command="pytest"),
    # the baselines folder
    Case("baselines folder is a file", ("--editguard-baselines", "pyproject.toml"), ("--editguard-baselines: ", "pyproject.toml is a file, not a folder")),
    Case("baselines model folder is a file", ("--editguard-baselines", "{inputs}/file-for-model-folder"), ("file-for-model-folder/tiny-gpt2 is a file, not a folder",)),
    # the model
    Case("model folder with only config.json", ("--editguard-model", "{inputs}/only-config"), ("model folder '", "only-config' has no weights", "save_pretrained")),
    Case("model folder with config and tokenizer, no weights", ("--editguard-model", "{inputs}/no-weights"), ("no-weights' has no weights",)),
    Case("model folder with weights, no tokenizer", ("--editguard-model", "{inputs}/no-tokenizer"), ("no-tokenizer' has no tokenizer",)),
    Case("model weights a pickle renamed to .safetensors", ("--editguard-model", "{inputs}/pickled-weights"), ("pickled-weights/model.safetensors' is not a safetensors file",)),
    Case("model config not JSON", ("--editguard-model", "{inputs}/bad-config"), ("bad-config/config.json' is not valid JSON",)),
    Case("model folder missing", ("--editguard-model", "{inputs}/nowhere/"), ("model folder '", "nowhere' does not exist", "--editguard-model")),
    Case("empty .gguf", ("--editguard-model", "{inputs}/empty.gguf"), ("GGUF file '", "empty.gguf' is empty", "--editguard-model")),
    Case(".gguf that is not GGUF", ("--editguard-model", "{inputs}/text.gguf"), ("text.gguf' is not a GGUF file",)),
    # the edited model
    Case("delta with a NaN", ("--editguard-edited", "{inputs}/nan.safetensors"), ("edited model ", "nan.safetensors: tensor 'transformer.h.0.mlp.c_fc.weight' holds 1 NaN or inf value")),
    Case("delta with inf", ("--editguard-edited", "{inputs}/inf.safetensors"), ("inf.safetensors: tensor 'transformer.h.0.mlp.c_fc.weight' holds 3 NaN or inf values",)),
    Case("all-zero delta", ("--editguard-edited", "{inputs}/zero.safetensors"), ("zero.safetensors changed no weight", "--editguard-edited")),
    Case("delta a pickle renamed to .safetensors", ("--editguard-edited", "{inputs}/pickle.safetensors"), ("pickle.safetensors' is not a safetensors file",)),
    Case("empty delta file", ("--editguard-edited", "{inputs}/empty.safetensors"), ("empty.safetensors' is empty",)),
    Case("delta for another model", ("--editguard-edited", "{inputs}/foreign.safetensors"), ("foreign.safetensors: delta tensor 'model.layers.0.mlp.down_proj.weight' is not a parameter of the model",)),
    Case("delta of the wrong shape", ("--editguard-edited", "{inputs}/shape.safetensors"), ("shape.safetensors: delta tensor 'transformer.h.0.mlp.c_fc.weight' has shape (2, 2)",)),
    Case("delta with another suffix", ("--editguard-edited", "{inputs}/delta.pt"), ("delta.pt' is neither a checkpoint folder nor a .safetensors delta file",)),
    Case("edited model missing", ("--editguard-edited", "{inputs}/missing.safetensors"), ("missing.safetensors' does not exist; check --editguard-edited",)),
    Case("edited checkpoint with a NaN weight", ("--editguard-edited", "{inputs}/nan-checkpoint"), ("nan-checkpoint: tensor 'transformer.h.1.attn.c_proj.weight' holds 1 NaN or inf value",)),
    Case("edited checkpoint without safetensors", ("--editguard-edited", "{inputs}/only-config"), ("only-config' has no .safetensors weights",)),
    # edit requests
    Case("edits file one pretty-printed object", ("--editguard-edits", "{inputs}/pretty.json"), ("pretty.json: the file is one JSON object spread over several lines",)),
    Case("edit prompt of 10 MB", ("--editguard-edits", "{inputs}/huge.jsonl"), ("huge.jsonl, line 2: fields 'prompt' and 'target_new' together are more than 1,024 tokens long (11,", "characters), more than the model's context of 1,024 tokens")),
    Case("edit locality prompt past the context", ("--editguard-edits", "{inputs}/long-locality.jsonl"), ("long-locality.jsonl, line 1: fields 'locality_prompt' and 'locality_answer' together are 1,50", "context of 1,024 tokens")),
    Case("edits line not JSON", ("--editguard-edits", "{inputs}/broken.jsonl"), ("broken.jsonl, line 2: not valid JSON",)),
    Case("edit missing a field", ("--editguard-edits", "{inputs}/no-target.jsonl"), ("no-target.jsonl, line 1: field 'target_new' is missing",)),
    Case("edit subject of 1 MB not in the prompt", ("--editguard-edits", "{inputs}/huge-subject.jsonl"), ("huge-subject.jsonl, line 1: field 'subject' (", "(1,048,576 characters)) does not occur in 'prompt'")),
    Case("edits in no known layout", ("--editguard-edits", "{inputs}/layout.jsonl"), ("layout.jsonl: the first record's keys (answer, question) match no known edit-request layout",)),
    Case("empty edits file", ("--editguard-edits", "{inputs}/empty.jsonl"), ("empty.jsonl' holds no requests",)),
    Case("edits file not UTF-8", ("--editguard-edits", "{inputs}/latin1.jsonl"), ("latin1.jsonl: not UTF-8 text",)),
    Case("edits list holding a number", ("--editguard-edits", "{inputs}/list.json"), ("list.json, record [1]: expected a JSON object holding one edit request, got int",)),
    Case("CounterFact prompt without {}", ("--editguard-edits", "{inputs}/counterfact.json"), ("counterfact.json, record [0] (case_id 0): field 'requested_rewrite.prompt'", "has no '{}'")),
    # baseline files: refused at start-up, naming file and field
    Case("baseline score NaN", BASELINE, ("sentiment.json: field 'score' is nan, not a finite number",), baseline=_changed(score=float("nan"))),
    Case("baseline outcome a string", BASELINE, ("sentiment.json: field 'outcomes', example ", ": 'yes' is not a number"), baseline=_outcome("yes")),
    Case("baseline outcome a list for accuracy", BASELINE, ("sentiment.json: field 'outcomes', example ", ": [1, 0, 1] is not a number"), baseline=_outcome([1, 0, 1])),
    Case("baseline outcome 0.5 for accuracy", BASELINE, (": 0.5 is not 0 or 1",), baseline=_outcome(0.5)),
    Case("baseline outcomes a string", BASELINE, ("sentiment.json: field 'outcomes' is '1,0,1', not a JSON object",), baseline=_changed(outcomes="1,0,1")),
    Case("baseline n disagrees", BASELINE, ("sentiment.json: field 'n' is 9 but 'outcomes' holds 8",), baseline=_changed(n=9)),
    Case("baseline missing a field", BASELINE, ("sentiment.json: field 'model_fingerprint' is missing",), baseline=_without("model_fingerprint")),
    Case("baseline not JSON", BASELINE, ("sentiment.json is not valid JSON",), baseline=lambda record: json.dumps(record)[:-40]),
    Case("baseline of a future format", BASELINE, ("sentiment.json: format 2 is not supported",), baseline=_changed(format=2)),
    # found by the test that needs it: "could not check" that ability
    Case("no baseline", ("--editguard-baselines", "{case}/empty"), ("could not check: no baseline for sentiment at ", "--editguard-update-baselines")),
    Case("stale baseline", BASELINE, ("could not check: baseline ", "sentiment.json is stale: the task's data or prompt changed"), baseline=_changed(task_fingerprint="0" * 16)),
    Case("limit above the recorded sample", ("--editguard-limit", "12"), ("could not check: baseline ", "was recorded with a smaller --editguard-limit")),
    Case("data file missing", ("--editguard-data", "sentiment=file:{inputs}/missing.jsonl"), ("could not check: cannot load the sentiment data (file:", "missing.jsonl")),
    Case("data file missing a field", ("--editguard-data", "sentiment=file:{inputs}/sst2-bad.jsonl"), ("could not check: cannot load the sentiment data", "record 2, field 'sentence'")),
]  # fmt: skip


# ----------------------------------------------------------------------------- the inputs, made once


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, tiny: Any) -> Path:
    """A project with one recorded baseline, and every bad input beside it (``inputs/``)."""
    root = tmp_path_factory.mktemp("sweep")
    inputs = root / "inputs"
    inputs.mkdir()
    _deltas(inputs, tiny)
    _model_folders(inputs, tiny)
    _edits_files(inputs)
    _data_files(inputs)
    project = root / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(PROJECT.format(inputs=inputs))
    recorded = _editguard(project, "--editguard-update-baselines")
    assert recorded.returncode == 0, recorded.stdout
    return root


def _deltas(inputs: Path, tiny: Any) -> None:
    weight = dict(tiny.model.named_parameters())[LAYER].detach()
    good = torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)) * 0.01
    WeightDelta({LAYER: good}).save(inputs / "good.safetensors")
    WeightDelta({LAYER: _with(good, [float("nan")])}).save(inputs / "nan.safetensors")
    WeightDelta({LAYER: _with(good, [float("inf"), float("-inf"), float("inf")])}).save(inputs / "inf.safetensors")
    WeightDelta({LAYER: torch.zeros_like(weight)}).save(inputs / "zero.safetensors")
    WeightDelta({"model.layers.0.mlp.down_proj.weight": torch.ones(2, 2)}).save(inputs / "foreign.safetensors")
    WeightDelta({LAYER: torch.ones(2, 2)}).save(inputs / "shape.safetensors")
    (inputs / "pickle.safetensors").write_bytes(pickle.dumps({LAYER: good.tolist()[:2]}))
    (inputs / "empty.safetensors").write_bytes(b"")
    shutil.copy(inputs / "good.safetensors", inputs / "delta.pt")
    state = {name: tensor.clone() for name, tensor in tiny.model.state_dict().items()}
    state["transformer.h.1.attn.c_proj.weight"][3, 5] = float("nan")
    _save_checkpoint(tiny, inputs / "nan-checkpoint", state)


def _with(tensor: torch.Tensor, values: list[float]) -> torch.Tensor:
    changed = tensor.clone()
    changed.view(-1)[: len(values)] = torch.tensor(values)
    return changed


def _save_checkpoint(tiny: Any, folder: Path, state: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    folder.mkdir()
    tiny.model.config.to_json_file(str(folder / "config.json"))
    tiny.tokenizer.save_pretrained(str(folder))
    save_file({name: tensor.contiguous() for name, tensor in state.items() if name != "lm_head.weight"}, str(folder / "model.safetensors"))


def _model_folders(inputs: Path, tiny: Any) -> None:
    for name in ("only-config", "no-weights", "no-tokenizer", "pickled-weights", "bad-config"):
        (inputs / name).mkdir()
        tiny.model.config.to_json_file(str(inputs / name / "config.json"))
    for name in ("no-weights", "pickled-weights", "bad-config"):
        tiny.tokenizer.save_pretrained(str(inputs / name))
    shutil.copy(inputs / "good.safetensors", inputs / "no-tokenizer" / "model.safetensors")
    for name in ("pickled-weights", "bad-config"):
        (inputs / name / "model.safetensors").write_bytes(pickle.dumps({"weight": [1.0, 2.0]}))
    (inputs / "bad-config" / "config.json").write_text('{"model_type": "gpt2",')
    (inputs / "empty.gguf").write_bytes(b"")
    (inputs / "text.gguf").write_text("not a model\n")
    (inputs / "file-for-model-folder").mkdir()
    (inputs / "file-for-model-folder" / "tiny-gpt2").write_text("a file where the model's baselines folder goes\n")


EIFFEL = {"prompt": "The Eiffel Tower is located in the city of", "subject": "The Eiffel Tower", "target_new": "Rome"}


def _edits_files(inputs: Path) -> None:
    (inputs / "pretty.json").write_text(json.dumps(EIFFEL, indent=2) + "\n")
    huge = {**EIFFEL, "prompt": "The Eiffel Tower " + "is very tall and " * 655_360 + "is in"}
    (inputs / "huge.jsonl").write_text(json.dumps(EIFFEL) + "\n" + json.dumps(huge) + "\n")
    long_locality = {**EIFFEL, "locality_prompt": "word " * 1500, "locality_answer": "Paris"}
    (inputs / "long-locality.jsonl").write_text(json.dumps(long_locality) + "\n")
    (inputs / "broken.jsonl").write_text(json.dumps(EIFFEL) + '\n{"prompt": "The Louvre is in",\n')
    (inputs / "no-target.jsonl").write_text(json.dumps({key: value for key, value in EIFFEL.items() if key != "target_new"}) + "\n")
    (inputs / "huge-subject.jsonl").write_text(json.dumps({**EIFFEL, "subject": "S" * 1_048_576}) + "\n")
    (inputs / "layout.jsonl").write_text(json.dumps({"question": "Where is the Eiffel Tower?", "answer": "Rome"}) + "\n")
    (inputs / "empty.jsonl").write_text("\n\n")
    (inputs / "latin1.jsonl").write_bytes((json.dumps({**EIFFEL, "target_new": "Zürich"}, ensure_ascii=False) + "\n").encode("latin-1"))
    (inputs / "list.json").write_text(json.dumps([EIFFEL, 7]))
    counterfact = {"case_id": 0, "requested_rewrite": {"prompt": "The mother tongue of Danielle Darrieux is", "subject": "Danielle Darrieux",
                                                       "target_new": {"str": "English"}, "target_true": {"str": "French"}}}  # fmt: skip
    (inputs / "counterfact.json").write_text(json.dumps([counterfact]))


def _data_files(inputs: Path) -> None:
    (inputs / "sst2-bad.jsonl").write_text('{"idx": 0, "sentence": "a joy", "label": 1}\n{"idx": 1, "label": 0}\n')


# ----------------------------------------------------------------------------- running the command


def _editguard(cwd: Path, *args: str, command: str = "editguard") -> subprocess.CompletedProcess[str]:
    # as a user's shell has it: not on CI (pytest prints whole failure lines there), not inside an xdist worker
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "BUILD_NUMBER", "PYTEST_ADDOPTS") and not key.startswith("PYTEST_XDIST")}
    env["COLUMNS"] = "120"
    return subprocess.run(
        [str(BIN / command), *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300
    )


def _baseline_files(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(root.rglob("*.json")) if "baselines" in path.parts}


def _told(output: str) -> list[str]:
    """The lines that tell a problem: pytest's usage error, argparse's error line, a could-not-check failure."""
    lines = output.splitlines()
    return [
        line for line in lines
        if (line.startswith("ERROR: ") and not line.startswith("ERROR: usage:")) or " error: argument " in line or line.startswith("could not check: ")
    ]  # fmt: skip


TRACEBACK = re.compile(r'Traceback \(most recent call last\)|^\s*File "[^"]+", line \d+|^E\s{2}|^INTERNALERROR|^\S+\.py:\d+: \w+Error', re.M)


def _prepare(case: Case, sweep: Path) -> tuple[Path, Path, tuple[str, ...]]:
    """The case's folder, the folder to run in, and its arguments with the placeholders filled."""
    folder = sweep / "cases" / re.sub(r"\W+", "-", case.name)
    folder.mkdir(parents=True)
    cwd = sweep / "project"
    if case.pyproject is not None:
        (folder / "pyproject.toml").write_text(case.pyproject)
        cwd = folder
    if case.baseline is not None:
        recorded = sweep / "project" / "baselines" / "tiny-gpt2" / "sentiment.json"
        target = folder / "baselines" / "tiny-gpt2" / "sentiment.json"
        target.parent.mkdir(parents=True)
        target.write_text(case.baseline(json.loads(recorded.read_text())))
    args = tuple(arg.replace("{inputs}", str(sweep / "inputs")).replace("{case}", str(folder)) for arg in case.args)
    return folder, cwd, args


@pytest.mark.parametrize("case", sorted(CASES, key=lambda case: case.name), ids=lambda case: case.name)
def test_bad_input_is_one_sentence_and_could_not_check(sweep: Path, case: Case) -> None:
    folder, cwd, args = _prepare(case, sweep)
    before = _baseline_files(sweep)
    result = _editguard(cwd, *args, command=case.command)
    output = result.stdout
    told = _told(output)
    print(f"\nSWEEP | {case.name} | {result.returncode} | {told[0] if told else ''}")
    assert result.returncode == COULD_NOT_CHECK, output
    assert len(told) == 1, output  # said once
    assert all(fragment in told[0] for fragment in case.says), (case.says, told[0])
    assert not TRACEBACK.search(output), output
    assert len(output) < 8_000, output[:8_000]  # a 10 MB input is never echoed whole
    assert _baseline_files(sweep) == before


def test_the_sweep_covers_forty_inputs_and_every_kind_the_issue_names() -> None:
    names = {case.name for case in CASES}
    assert len(names) == len(CASES) >= 40
    issue = {"delta with a NaN", "tolerance for a misspelt ability", "pyproject tolerance table with a misspelt ability",
             "ini settings and a delta outside the project (plain pytest)", "all-zero delta", "baseline score NaN",
             "device cuda:9", "model folder with only config.json", "model folder with config and tokenizer, no weights",
             "edits file one pretty-printed object", "edit prompt of 10 MB", "empty .gguf", "model weights a pickle renamed to .safetensors",
             "baseline outcome a string", "baselines folder is a file", "no baseline", "stale baseline"}  # fmt: skip
    assert issue <= names


# ----------------------------------------------------------------------------- beside the sweep


def test_the_baselines_folder_is_named_before_the_model_loads(tiny: Any) -> None:
    """Baseline files are checked at start-up under ``model_name(source)``: the name the loader gives."""
    from editguard.models import EMBEDDED_DEFAULT, TINY, model_name

    assert model_name(TINY) == tiny.name
    assert model_name(EMBEDDED_DEFAULT) == "smollm2-135m-instruct"  # the loader's constant, checked without loading it


def test_the_editguard_command_reads_the_projects_ini_settings_whatever_paths_it_is_given(sweep: Path) -> None:
    """The same input the plain-pytest case refuses: the command joins the option's value, so pytest reads the
    project's configuration (here a tolerance of 0.2, shown in the table) and the gate runs."""
    folder = sweep / "cases" / "ini-through-the-command"
    folder.mkdir(parents=True)
    shutil.copytree(sweep / "project" / "baselines", folder / "baselines")
    (folder / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\neditguard_model = "tiny-gpt2"\neditguard_device = "cpu"\neditguard_limit = "8"\n'
        'editguard_abilities = "sentiment"\neditguard_tolerance = ["0.2"]\neditguard_no_signal = "gate"\n'
    )
    result = _editguard(folder, "--editguard-edited", str(sweep / "inputs" / "good.safetensors"))
    assert "configfile: pyproject.toml" in result.stdout
    assert re.search(r"^sentiment .* 0\.200 .*", result.stdout, re.M), result.stdout


def test_a_stray_temporary_of_a_killed_update_is_removed_and_baselines_follow_the_umask(sweep: Path) -> None:
    folder = sweep / "project" / "baselines" / "tiny-gpt2"
    umask = os.umask(0)
    os.umask(umask)
    assert (folder / "sentiment.json").stat().st_mode & 0o777 == 0o666 & ~umask
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], stdout=subprocess.PIPE, text=True, check=True)
    stray = folder / f".sentiment.json.{atomic._HOST}-{gone.stdout.strip()}-0badc0de.tmp"  # what a SIGKILL mid-write leaves
    stray.write_text('{"half": ')
    before = _baseline_files(sweep)
    result = _editguard(sweep / "project")
    assert result.returncode == 0, result.stdout
    assert not stray.exists() and sorted(path.name for path in folder.iterdir()) == ["sentiment.json"]
    assert _baseline_files(sweep) == before


def test_under_xdist_a_problem_found_by_the_workers_is_could_not_check(sweep: Path) -> None:
    """A worker cannot stop the run: each test says "could not check", the first with the sentence, and the
    run exits 4.  (A problem found without a model is refused by the controller, before the workers start.)"""
    result = _editguard(sweep / "project", "-n", "2", "--editguard-abilities", "closed_qa,sentiment", "--editguard-edited", str(sweep / "inputs" / "nan.safetensors"))
    assert result.returncode == COULD_NOT_CHECK, result.stdout
    assert not TRACEBACK.search(result.stdout), result.stdout
    assert result.stdout.count("tensor 'transformer.h.0.mlp.c_fc.weight' holds 1 NaN or inf value") <= 2  # once per worker at most
    controller = _editguard(sweep / "project", "-n", "2", "--editguard-edited", str(sweep / "inputs" / "delta.pt"))
    assert controller.returncode == COULD_NOT_CHECK and len(_told(controller.stdout)) == 1, controller.stdout


def test_a_regression_beside_a_problem_exits_1(sweep: Path) -> None:
    """1 ("regressed") wins over 4 ("could not check"): sentiment has no baseline, closed_qa regressed."""
    folder = sweep / "cases" / "regressed-and-unchecked"
    args = ("--editguard-baselines", str(folder / "baselines"), "--editguard-abilities", "closed_qa,sentiment")
    assert _editguard(sweep / "project", *args, "--editguard-update-baselines", "--editguard-abilities", "closed_qa").returncode == 0
    _damaging_delta(sweep / "inputs" / "damage.safetensors")
    result = _editguard(sweep / "project", *args, "--editguard-edited", str(sweep / "inputs" / "damage.safetensors"), "--editguard-tolerance", "0.01", "--editguard-inconclusive", "fail")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert re.search(r"^sentiment .*COULD NOT CHECK$", result.stdout, re.M), result.stdout
    assert re.search(r"^closed_qa .*(FAIL|INCONCLUSIVE)$", result.stdout, re.M), result.stdout


def _damaging_delta(path: Path) -> None:
    """Every weight of the tiny model's first block sent far away: its answers change."""
    torch.manual_seed(0)
    WeightDelta({LAYER: torch.randn(64, 256) * 50}).save(path)


def test_a_misspelt_ability_in_the_fixtures_is_one_sentence(sweep: Path) -> None:
    """``score_ability`` and ``ability_baseline`` in a user's own tests: "could not check" with "did you mean", said
    once (the second test points at the first), no traceback, no second copy under "During handling of ..."."""
    folder = sweep / "cases" / "fixtures-misspelt"
    folder.mkdir(parents=True)
    shutil.copy(sweep / "project" / "pyproject.toml", folder / "pyproject.toml")
    (folder / "test_mine.py").write_text(
        "def test_score(score_ability):\n    assert score_ability('sentimnet').value > 0\n\n"
        "def test_baseline(ability_baseline):\n    assert ability_baseline('sentimnet').score > 0\n"
    )
    result = _editguard(folder, "-p", "no:cacheprovider", "test_mine.py", command="pytest")
    assert result.returncode == COULD_NOT_CHECK, result.stdout
    assert not TRACEBACK.search(result.stdout) and "During handling" not in result.stdout, result.stdout
    sentence = "unknown ability 'sentimnet'; did you mean 'sentiment'?"
    assert result.stdout.count(sentence) == 1 and "the same problem as test_mine.py::test_score" in result.stdout, result.stdout
