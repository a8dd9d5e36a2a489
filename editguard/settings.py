"""Settings: every editguard option, parsed and validated once into one frozen object.

Each option can be given on the command line (``--editguard-*``), in ``[tool.editguard]`` of the
project's pyproject.toml, or as an ini option (``editguard_*``); the command line wins, then
pyproject.toml, then the ini file.  Parsers raise ``argparse.ArgumentTypeError`` with a sentence a
person can act on, so pytest reports a usage error naming the option.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from editguard.backends.table import BACKENDS, backend_kind
from editguard.editing import registry as editing
from editguard.atomic import default_cache_dir
from editguard.errors import not_a_file

DEFAULT_TOLERANCE = 0.05
CANARY_TOLERANCES = {"canary": 0.05}  # a rise of log-perplexity: a perplexity ratio of exp(0.05) = 1.051 (tasks/canary.py)
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")  # auto: bfloat16 on a CUDA device that has it, else float32
DEVICE_MAPS = ("auto", "balanced")  # accelerate's; or a JSON file of module -> device
PROTOCOLS = ("default", "study")  # kept equal to editguard.tasks.PROTOCOLS (checked by a test)


# ----------------------------------------------------------------------------- value parsers


def parse_fraction(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a fraction such as 0.05") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise argparse.ArgumentTypeError(f"{text!r} is outside [0, 1]; scores are fractions, so give e.g. 0.05")
    return value


def parse_tolerance(text: str) -> tuple[str | None, float]:
    """``0.05`` (every ability) or ``ability=0.05`` (one ability)."""
    ability, sep, value = str(text).rpartition("=")
    if sep and not ability.strip():
        raise argparse.ArgumentTypeError(f"{text!r} names no ability; write ABILITY=FRACTION, e.g. sentiment=0.1")
    if ability.strip() in CANARY_TOLERANCES:  # a rise of log-perplexity: any positive number
        return ability.strip(), _positive_number(value.strip(), text)
    fraction = parse_fraction(value.strip())
    if fraction >= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: a tolerance of 1 allows any drop and gates nothing; give a fraction below 1")
    return (ability.strip() or None), fraction


def _positive_number(value: str, text: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {value!r} is not a number; give the largest rise of log-perplexity, e.g. canary=0.1") from None
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: a canary's tolerance is a rise of log-perplexity above 0, e.g. canary=0.1")
    return number


def _at_least_one(text: str, unit: str, least: str) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of {unit}; give one such as 10") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least {least}")
    return value


def parse_edit_limit(text: str) -> int:
    return _at_least_one(text, "edit requests", "1 edit request")


def parse_limit(text: str) -> int:
    return _at_least_one(text, "examples", "1 example per ability")


def parse_batch_size(text: str) -> int | None:
    if str(text).strip().lower() == "auto":
        return None
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a batch size; give a whole number such as 8, or auto") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1 (or auto)")
    return value


def parse_alpha(text: str) -> float:
    value = parse_fraction(text)
    if not 0.0 < value < 0.5:
        raise argparse.ArgumentTypeError(f"{text!r} is not an error rate in (0, 0.5); give e.g. 0.05")
    return value


def _choice(name: str, allowed: tuple[str, ...] | Mapping[str, Any]) -> Any:
    """A parser of one of ``allowed``: a tuple, or a table read when a value is parsed (an owner's registry)."""

    def parse(text: str) -> str:
        if str(text).strip() not in allowed:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {name}; use one of {', '.join(allowed)}")
        return str(text).strip()

    return parse


def parse_rect(text: str) -> float:
    """A keep fraction in (0, 1]; ``on`` means the paper's 0.4."""
    if str(text).strip().lower() in {"on", "true", "yes"}:
        return 0.4
    value = parse_fraction(text)
    if value == 0.0:
        raise argparse.ArgumentTypeError("0 keeps nothing of the edit; give a fraction in (0, 1], e.g. 0.4")
    return value


def parse_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(sorted({int(part) for part in str(text).split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of edit counts, e.g. 1,2,5,10,20") from None
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: edit counts are whole numbers from 1, e.g. 1,2,5,10,20")
    return counts


def _or(names: list[str]) -> str:
    return ", ".join(names[:-1]) + f" or {names[-1]}"


def parse_method(text: str) -> str:
    """A method of editguard.editing.registry.METHODS, in any case."""
    name = str(text).strip().upper()
    if name not in editing.METHODS:
        raise argparse.ArgumentTypeError(editing.unknown("method", name, editing.METHODS))
    return name


def parse_editor(text: str) -> str:
    """``module:function``: a user's own editor (imported at start-up, where a failure is one sentence)."""
    module, _, function = str(text).strip().partition(":")
    if not module or not function or not all(part.isidentifier() for part in module.split(".") + [function]):
        raise argparse.ArgumentTypeError(f"{text!r} is not module:function; name your editor as e.g. my_editors:alphaedit")
    return f"{module}:{function}"


def parse_mode(text: str) -> str:
    """A mode of editguard.editing.registry.MODES."""
    name = str(text).strip()
    if name.partition(":")[0] not in editing.MODES:
        raise argparse.ArgumentTypeError(editing.unknown("mode", name, editing.MODES))
    try:
        return editing.mode_of(name).name
    except editing.EditError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


METHOD_HELP = "the editing method that applies the edits: " + _or(list(editing.METHODS)) + " (default ROME)"
BACKEND_HELP = "where scores come from: " + _or([f"{kind.name} ({kind.description})" for kind in BACKENDS.values()])
MODE_HELP = _or([f"{mode.name}{':N' if mode.sized else ''} ({mode.summary})" for mode in editing.MODES.values()])


def parse_device(text: str) -> str:
    text = str(text).strip()
    base, _, index = text.partition(":")
    if base not in DEVICES or (index and (base != "cuda" or not index.isdigit())):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use auto, cpu, cuda or cuda:N")
    return text


def parse_device_map(text: str) -> str:
    """``auto`` or ``balanced`` (accelerate spreads the model over the worker's GPUs), or a JSON file of module -> device."""
    text = str(text).strip()
    if text in DEVICE_MAPS or _is_file(text):
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a device map; use auto, balanced, or a JSON file mapping module names to devices "
        '(e.g. {"model.layers.0": 0, "model.layers.1": "cpu"})'
    )


def _is_file(text: str) -> bool:
    """Whether ``text`` names a file; a name the system cannot look up (too long) names none."""
    try:
        return Path(text).is_file()
    except OSError:
        return False


def parse_existing_file(text: str) -> Path:
    path = Path(text)
    if not _is_file(text):
        raise argparse.ArgumentTypeError(f"file {text!r} does not exist; check the path")
    return path


SHIPPED_EDITS = ("demo", "zsre-20", "counterfact-damage")  # kept equal to editguard.editing.requests.SHIPPED_EDITS (checked by a test)


def parse_edits(text: str) -> str:
    if text in SHIPPED_EDITS or _is_file(text):
        return text
    what = not_a_file(Path(text))
    raise argparse.ArgumentTypeError(
        f"edits file {text!r} {f'is {what}, not an edits file' if what else 'does not exist'}; give an edit-requests file "
        f"(editguard JSONL, ZsRE or CounterFact JSON) or a shipped set: {', '.join(SHIPPED_EDITS)}"
    )


def parse_protocol(text: str) -> str:
    if text not in PROTOCOLS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a protocol; use one of {', '.join(PROTOCOLS)}")
    return text


def parse_endpoint(text: str) -> str:
    if not text.startswith(("http://", "https://")) or len(text.split("://", 1)[1].strip("/")) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL; give the engine's root, e.g. http://127.0.0.1:8000")
    return text.rstrip("/")


def parse_data(text: str) -> tuple[str, str]:
    """``ABILITY=SOURCE``: probe, hf:NAME[/CONFIG][:SPLIT], file:PATH or study:PATH."""
    ability, sep, source = str(text).partition("=")
    if not sep or not ability.strip() or not source.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not ABILITY=SOURCE, e.g. sentiment=file:sst2.tsv")
    from editguard.tasks.sources import SOURCE_KINDS  # the data source kinds, from their owner

    kind = source.strip().partition(":")[0]
    if kind not in SOURCE_KINDS:
        prefixed = [k + ":" for k, record in SOURCE_KINDS.items() if ":" in record.syntax]
        bare = [repr(k) for k, record in SOURCE_KINDS.items() if ":" not in record.syntax]
        raise argparse.ArgumentTypeError(f"{text!r}: the source must start with one of {', '.join(prefixed)} or be {' or '.join(bare)}")
    return ability.strip(), source.strip()


def parse_output(text: str) -> tuple[str, str]:
    """``FORMAT=FILE``: a report format of ``reports.writers.WRITERS`` and the file it is written to."""
    from editguard.reports.writers import WRITERS  # the report formats, from their owner

    name, sep, path = str(text).partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not FORMAT=FILE, e.g. html=report.html")
    if name.strip() not in WRITERS:
        raise argparse.ArgumentTypeError(editing.unknown("report format", name.strip(), WRITERS))
    return name.strip(), path.strip()


def parse_abilities(text: str) -> tuple[str, ...]:
    names = tuple(sorted({name.strip() for name in str(text).split(",") if name.strip()}))
    if not names:
        raise argparse.ArgumentTypeError("give at least one ability, comma-separated")
    return names


def parse_bool(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


# ----------------------------------------------------------------------------- the settings object


@dataclass(frozen=True)
class Settings:
    model: str = "smollm2"
    edits: str | None = None  # an edit-requests file or a shipped set ("demo", ...); None: none given (the demo set is used)
    edited: Path | None = None  # an edited checkpoint folder or a delta .safetensors file
    method: str = "ROME"
    editor: str | None = None  # a user's own editor, module:function (instead of method)
    hparams: Path | None = None
    baselines: Path = Path("baselines")
    tolerance: float = DEFAULT_TOLERANCE
    tolerances: Mapping[str, float] = field(default_factory=dict)  # per ability
    limit: int | None = None
    device: str = "auto"
    dtype: str = "auto"  # the precision the model is loaded and edited in (DTYPES)
    device_map: str | None = None  # accelerate: auto, balanced or a JSON file (None: the whole model on `device`)
    update_baselines: bool = False
    cache_dir: Path = field(default_factory=default_cache_dir)
    report: Path | None = None
    markdown: Path | None = None  # the Markdown summary (also appended to $GITHUB_STEP_SUMMARY when that is set)
    html: Path | None = None  # the self-contained HTML report
    outputs: dict[str, Path] = field(default_factory=dict)  # more report formats by name (reports.writers), and their files
    export_edited: Path | None = None  # write the edited model here for a serving engine: checkpoint/ and lora/
    backend: str = "hf"  # hf: in process; engine: an OpenAI-compatible endpoint; vllm: that, or a vLLM server editguard starts
    endpoint: str | None = None  # the engine's URL (http://host:port) for backend "engine" (or "vllm" with a running server)
    edited_endpoint: str | None = None  # the edited model's server when it is not --editguard-endpoint's
    engine_python: Path = Path(".venv-engine/bin/python")  # backend "vllm" without an endpoint: the Python of vLLM's environment
    engine_args: str = ""  # more arguments for the `vllm serve` editguard starts (e.g. "--tensor-parallel-size 8")
    served_base: str | None = None  # the served model name of the base (default: the first model the engine lists)
    served_edited: str | None = None  # the served model (or LoRA adapter) name of the edited model
    abilities: tuple[str, ...] | None = None  # None: every registered ability
    protocol: str = "default"
    data: Mapping[str, str] = field(default_factory=dict)  # ability -> data source (default: probe)
    batch_size: int | None = None  # rows per forward pass; None: the device's default
    rescore: bool = False  # ignore cached model outputs (and refresh them)
    alpha: float = 0.05  # error rate of a wrong verdict, over all gated abilities
    fail_rule: str = "margin"
    inconclusive: str = "fail"
    no_signal: str = "skip"  # an ability whose baseline is not clearly above chance: skip (default), fail, or gate anyway
    locality_examples: int = 40  # prompts test_locality draws
    early_stop: bool = False
    chunk: int = 40
    noise_floor: bool = False
    mode: str = "sequential"
    rect: float | None = None  # RECT: keep this fraction of each changed tensor's entries
    edit_counts: tuple[int, ...] | None = None
    edit_limit: int | None = None  # apply only the first N requests of the edits file
    curve: Path = Path("editguard-curve.png")
    min_reliability: float = 0.9

    def tolerance_for(self, ability: str) -> float:
        """The ability's own tolerance (ABILITY=FRACTION), else the overall one; a canary's is in its own unit (a rise
        of log-perplexity) and defaults to CANARY_TOLERANCE, whatever the overall tolerance."""
        if ability in self.tolerances:
            return self.tolerances[ability]
        return CANARY_TOLERANCES.get(ability, self.tolerance)


@dataclass(frozen=True)
class Option:
    """One option: its settings field, parser, help, and how it is spelled on the command line."""

    name: str  # settings field, pyproject key, and suffix of --editguard-<name with dashes>
    help: str
    parse: Any = str
    flag: bool = False
    repeat: bool = False
    metavar: str | None = None

    @property
    def cli(self) -> str:
        return "--editguard-" + self.name.replace("_", "-")

    @property
    def negative_cli(self) -> str:
        """A flag's opposite, to switch off what a configuration file switched on (--editguard-no-early-stop)."""
        return "--editguard-no-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "editguard_" + self.name


OPTIONS: tuple[Option, ...] = (
    Option("model", "base model: 'smollm2' (embedded default), 'tiny-gpt2', a local folder, a model id (offline: HF_HUB_OFFLINE=1) or a .gguf file", metavar="SOURCE"),
    Option("edits", "edit requests applied to the base: an editguard JSONL, ZsRE or CounterFact JSON file (detected), or a shipped set: 'demo' (3 edits), 'zsre-20', 'counterfact-damage' (60 edits that damage)", parse_edits, metavar="FILE"),
    Option("edited", "an edited model made elsewhere: a checkpoint folder or a .safetensors file of weight deltas (instead of --editguard-edits)", Path, metavar="PATH"),
    Option("method", METHOD_HELP, parse_method, metavar="NAME"),
    Option("editor", "your own editor, run in process like a method: module:function, a callable (model, tokenizer, requests) returning the edited weights, a WeightDelta or the model edited in place (instead of --editguard-method)", parse_editor, metavar="MODULE:FUNCTION"),
    Option("mode", MODE_HELP, parse_mode, metavar="MODE"),
    Option("rect", "RECT: keep only this fraction (0.4 in the paper; 'on' means 0.4) of each changed tensor's entries, by relative change, before gating", parse_rect, metavar="FRACTION"),
    Option("edit_limit", "apply only the first N requests of the edits file (default: all of them)", parse_edit_limit, metavar="N"),
    Option("edit_counts", "also gate after each of these numbers of edits (sequential or batch), e.g. 1,2,5,10,20, and draw the curve", parse_counts, metavar="N,N,..."),
    Option("curve", "PNG file for the edit-count curve (default editguard-curve.png)", Path, metavar="FILE"),
    Option("min_reliability", "edit quality: smallest mean reliability (the edit took) that passes; a request at 0 always fails (default 0.9)", parse_fraction, metavar="FRACTION"),
    Option("hparams", "EasyEdit-style YAML file overriding the method's default hyper-parameters (which are derived from the model's structure)", parse_existing_file, metavar="FILE"),
    Option("baselines", "folder of baseline files (default: baselines/ under the rootdir)", Path, metavar="DIR"),
    Option("tolerance", "largest allowed drop: FRACTION for every ability, or ABILITY=FRACTION; repeatable (default 0.05)", parse_tolerance, repeat=True, metavar="[ABILITY=]FRACTION"),
    Option("limit", "examples per ability (a fixed, seeded sample; default: all)", parse_limit, metavar="N"),
    Option("device", "auto (one GPU per xdist worker when there are GPUs, else CPU), cpu, cuda or cuda:N", parse_device, metavar="DEVICE"),
    Option("dtype", "precision the model is loaded, edited and scored in: auto (bfloat16 on a CUDA device that supports it, else float32), float32, bfloat16 or float16", _choice("dtype", DTYPES), metavar="DTYPE"),
    Option("device_map", "spread a model too large for one device over the worker's GPUs with accelerate: auto, balanced, or a JSON file of module -> device (a GPU index, 'cuda:N' or 'cpu' to offload; not 'disk', where no edit can be applied)", parse_device_map, metavar="auto|balanced|FILE"),
    Option("update_baselines", "score the base model and (re)write the baseline files instead of gating", parse_bool, flag=True),
    Option("cache_dir", "folder for converted models, computed edits, MEMIT statistics and model outputs (default: $EDITGUARD_CACHE_DIR, else $XDG_CACHE_HOME/editguard, else ~/.cache/editguard)", Path, metavar="DIR"),
    Option("report", "write the per-ability results as JSON to this file", Path, metavar="FILE"),
    Option("markdown", "write a Markdown summary (verdict, table, edit quality, remedies) to this file; it is also appended to $GITHUB_STEP_SUMMARY when that is set", Path, metavar="FILE"),
    Option("html", "write a self-contained HTML report (table, interval plot, examples that got worse, edit quality, curve) to this file", Path, metavar="FILE"),
    Option("output", "write a report format of reports/writers.py to a file: FORMAT=FILE (report, markdown, html, curve, or one a writer adds); repeatable", parse_output, repeat=True, metavar="FORMAT=FILE"),
    Option("export_edited", "write the edited model for a serving engine: DIR/checkpoint (base + edit, safetensors) and, when the edit is low-rank (ROME, MEMIT), DIR/lora (a PEFT LoRA adapter for the base)", Path, metavar="DIR"),
    Option("backend", BACKEND_HELP, _choice("backend", BACKENDS), metavar="NAME"),
    Option("endpoint", "URL of the engine for --editguard-backend engine (or vllm, to use a running server), e.g. http://127.0.0.1:8000", parse_endpoint, metavar="URL"),
    Option("edited_endpoint", "URL of the server of the edited model, when it is not the one at --editguard-endpoint (e.g. the exported checkpoint served apart)", parse_endpoint, metavar="URL"),
    Option("engine_python", "the Python of the environment with vLLM, for --editguard-backend vllm (default: this Python when vLLM is installed beside editguard, else .venv-engine/bin/python, which make engine-env builds)", Path, metavar="PATH"),
    Option("engine_args", "more arguments for the vllm serve that --editguard-backend vllm starts, as one string, e.g. '--tensor-parallel-size 8'", metavar="ARGS"),
    Option("served_base", "the engine's served model name for the base model (default: the first model it lists)", metavar="NAME"),
    Option("served_edited", "the engine's served model name for the edited model: a second model, or the LoRA adapter written by --editguard-export-edited", metavar="NAME"),
    Option("abilities", "comma-separated abilities to gate, and 'canary' and 'locality' for those checks (default: all of them)", parse_abilities, metavar="NAMES"),
    Option("protocol", "default (correct scoring) or study (the reference study's prompts and scorers, flaws included)", parse_protocol, metavar="NAME"),
    Option("batch_size", "most examples per forward pass, or auto (default: on a CPU 64 within 4,096 tokens; on CUDA 512 within what half the GPU's free memory holds, backing off on out-of-memory); scores do not depend on it", parse_batch_size, metavar="N|auto"),
    Option("rescore", "score again instead of reading cached model outputs (the cache is refreshed)", parse_bool, flag=True),
    Option("alpha", "chance of a wrong verdict over all gated abilities: a false FAIL (Holm) or a false PASS of the gate (default 0.05)", parse_alpha, metavar="RATE"),
    Option("fail_rule", "margin: FAIL when the whole interval lies below -tolerance (default); significant: FAIL when the drop is significant and larger than the tolerance", _choice("fail rule", ("margin", "significant")), metavar="RULE"),
    Option("inconclusive", "how an ability that the examples cannot settle counts: fail (default, safe) or warn (passes with a warning)", _choice("policy", ("fail", "warn")), metavar="POLICY"),
    Option("no_signal", "how an ability whose base model is not clearly above chance counts: skip (default: neither passes nor fails), fail, or gate (judge it anyway)", _choice("policy", ("skip", "fail", "gate")), metavar="POLICY"),
    Option("locality_examples", "prompts unrelated to the edits that test_locality checks (default 40)", parse_limit, metavar="N"),
    Option("early_stop", "score the edited model in chunks and stop each ability once its verdict is settled (anytime-valid confidence sequence)", parse_bool, flag=True),
    Option("chunk", "examples per chunk for --editguard-early-stop (default 40)", parse_limit, metavar="N"),
    Option("noise_floor", "also re-score the base model under another batch size and order, and report any difference (the evaluator's own jitter; it should be 0)", parse_bool, flag=True),
    Option("data", "data for one ability: ABILITY=probe|hf:NAME[/CONFIG][:SPLIT][#FIELD=COLUMN,...]|hf:PATH[:SPLIT]|file:PATH|study:PATH; repeatable (default: the embedded probe sets)", parse_data, repeat=True, metavar="ABILITY=SOURCE"),
)
OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}


class SettingsError(ValueError):
    """A configured value is invalid; the message names where it came from."""


_PATHS = ("baselines", "edited", "report", "hparams", "cache_dir", "edits", "curve", "markdown", "html", "export_edited", "engine_python")


def build_settings(
    cli: Mapping[str, Any], pyproject: Mapping[str, Any], ini: Mapping[str, Any], *, rootdir: Path
) -> Settings:
    """Merge the three sources (command line first), parse, and check cross-option conflicts.

    Relative paths are relative to the working directory on the command line and to the rootdir
    in configuration files.
    """
    unknown = sorted(set(pyproject) - set(OPTIONS_BY_NAME) - {name.replace("_", "-") for name in OPTIONS_BY_NAME})
    if unknown:
        raise SettingsError(f"[tool.editguard] in pyproject.toml has an unknown key {unknown[0]!r}; known: {', '.join(OPTIONS_BY_NAME)}")
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw, origin = _first_given(option, cli, pyproject, ini)
        if raw is None:
            continue
        value = _parsed(option, raw, origin, base=Path.cwd() if origin in (option.cli, option.negative_cli) else rootdir)
        values[option.name] = _anchored(option.name, value, Path.cwd() if origin == option.cli else rootdir)
    values.setdefault("baselines", rootdir / "baselines")
    problem = backend_kind(values.get("backend", "hf")).settled(values, rootdir)  # the options the backend needs
    if problem:
        raise SettingsError(problem)
    _prefer_command_line(values, cli, ("edits", "edited"))
    return _assemble(values)


def _prefer_command_line(values: dict[str, Any], cli: Mapping[str, Any], rivals: tuple[str, str]) -> None:
    """Of two options that exclude each other, one given on the command line overrides the other from a file."""
    given = [name for name in rivals if cli.get(name) not in (None, [], False)]
    if len(given) == 1:
        for name in rivals:
            if name != given[0]:
                values.pop(name, None)


def _first_given(option: Option, cli: Mapping[str, Any], pyproject: Mapping[str, Any], ini: Mapping[str, Any]) -> tuple[Any, str]:
    given = cli.get(option.name)
    if given is False and option.flag:  # --editguard-no-FLAG: switched off on the command line
        return False, option.negative_cli
    if given not in (None, [], False):
        return cli[option.name], option.cli
    for key in (option.name, option.name.replace("_", "-")):
        if key in pyproject:
            return pyproject[key], f"[tool.editguard] {key} in pyproject.toml"
    if ini.get(option.name) not in (None, "", []):
        return ini[option.name], f"ini option {option.ini}"
    return None, ""


def origin(name: str, cli: Mapping[str, Any], pyproject: Mapping[str, Any], ini: Mapping[str, Any]) -> str:
    """Where the option ``name`` was given, as messages name it: its flag, its pyproject key or its ini name."""
    return _first_given(OPTIONS_BY_NAME[name], cli, pyproject, ini)[1] or OPTIONS_BY_NAME[name].cli


def _parsed(option: Option, raw: Any, origin: str, *, base: Path) -> Any:
    """Command-line values arrive parsed by argparse; others are parsed here, naming their origin."""
    if origin in (option.cli, option.negative_cli):
        return raw
    items = raw if option.repeat and isinstance(raw, list) else [raw]
    if option.name == "tolerance" and isinstance(raw, Mapping):
        items = [f"{key}={value}" if key != "default" else str(value) for key, value in raw.items()]
    if option.name == "output" and isinstance(raw, Mapping):  # [tool.editguard.output]: paths under the rootdir
        items = [f"{key}={base / str(value)}" for key, value in raw.items()]
    if option.name == "data" and isinstance(raw, Mapping):
        items = [f"{key}={_anchored_source(str(value), base)}" for key, value in raw.items()]
    if option.name in _PATHS:
        items = [item if str(item) in SHIPPED_EDITS else str(base / str(item)) for item in items]
    if option.name == "device_map":  # a JSON file in a configuration file is relative to the rootdir
        items = [item if str(item) in DEVICE_MAPS else str(base / str(item)) for item in items]
    try:
        parsed = [option.parse(item if isinstance(item, bool) and option.flag else str(item)) for item in items]
    except argparse.ArgumentTypeError as error:
        raise SettingsError(f"{origin}: {error}") from None
    return parsed if option.repeat else parsed[0]


def _anchored_source(source: str, base: Path) -> str:
    """file:/study: paths in a configuration file are relative to the rootdir."""
    kind, sep, path = source.partition(":")
    if kind in ("file", "study") and sep and not Path(path).is_absolute():
        return f"{kind}:{base / path}"
    return source


def _anchored(name: str, value: Any, base: Path) -> Any:
    if name not in _PATHS or str(value) in SHIPPED_EDITS:
        return value
    path = Path(value)
    resolved = path if path.is_absolute() else base / path
    return str(resolved) if name == "edits" else resolved


def _assemble(values: dict[str, Any]) -> Settings:
    values["data"] = dict(values.pop("data", []))
    values["outputs"] = {name: Path(path) for name, path in values.pop("output", [])}
    tolerances = values.pop("tolerance", [])
    overall = [value for ability, value in tolerances if ability is None]
    per_ability = {ability: value for ability, value in tolerances if ability is not None}
    if "edited" in values and "edits" in values:
        raise SettingsError("--editguard-edits and --editguard-edited both name the edited model; give only one")
    if "editor" in values and ("method" in values or "edited" in values):
        other = "--editguard-method" if "method" in values else "--editguard-edited"
        raise SettingsError(f"--editguard-editor and {other} both say how the edited model is made; give only one")
    if "edited" in values and "hparams" in values:
        raise SettingsError(
            "--editguard-hparams configures an edit method, but --editguard-edited gives an already-edited model; drop one"
        )
    return Settings(**values, tolerance=overall[-1] if overall else DEFAULT_TOLERANCE, tolerances=per_ability)
