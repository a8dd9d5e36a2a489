"""Option values (``settings.py``): every option's parser, and ``build_settings`` from all three places.

A parser returns a value or raises argparse's ``ArgumentTypeError`` with one line (argparse names the option);
``build_settings`` gives ``Settings`` whose fields keep their types and ranges, or one ``SettingsError`` sentence
naming where the value came from (the flag, the pyproject key or the ini option).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from fuzz_support import FUZZ, assert_argparse_sentence, assert_one_sentence, count, fresh_folder
from hypothesis import given, settings
from hypothesis import strategies as st

from editguard.editing import registry as editing
from editguard.settings import DTYPES, OPTIONS, OPTIONS_BY_NAME, PROTOCOLS, Settings, build_settings

# Values people write, right and nearly right, beside anything at all.
PLAUSIBLE = st.sampled_from(
    [
        "0", "1", "-1", "0.05", "1.0", "0.5", "1e-3", "nan", "inf", "-0", "5", "1,2,5", "1,,2", ",", "0,1", "auto", "on",
        "true", "False", "yes", "", " ", "cpu", "cuda", "cuda:0", "cuda:x", "gpu", "rome", "ROME", "memit", "single",
        "batch", "default", "study", "hf", "engine", "vllm", "margin", "significant", "fail", "warn", "skip", "gate",
        "float32", "bfloat16", "int8", "balanced", "http://127.0.0.1:8000", "https://", "ftp://x", "sentiment=0.1",
        "canary=0.2", "canary=-1", "canary=x", "=0.1", "sentiment=file:x.tsv", "sentiment=hf:glue/sst2:validation",
        "ner=study:x", "x=y", "sentiment,ner", "demo", "zsre-20", "/dev/null", "/", ".", "a\x00b", "x" * 300,
        "1" * 5000, "1" + "0" * 400,
    ]
)  # fmt: skip
option_text = st.one_of(PLAUSIBLE, st.text(max_size=20))
toml_value = st.one_of(
    PLAUSIBLE, st.text(max_size=10), st.integers(-3, 10**6), st.floats(allow_nan=True), st.booleans(),
    st.lists(PLAUSIBLE, max_size=3), st.dictionaries(st.sampled_from(["sentiment", "canary", "default", "ner", "x"]), st.one_of(PLAUSIBLE, st.floats()), max_size=2),
)  # fmt: skip


@settings(FUZZ, max_examples=600)
@given(name=st.sampled_from([option.name for option in OPTIONS]), text=option_text)
def test_an_option_value_is_parsed_or_refused_in_one_line(name: str, text: str) -> None:
    count("option-parsers")
    option = OPTIONS_BY_NAME[name]
    try:
        option.parse(text)
    except Exception as error:  # noqa: BLE001 -- the property: argparse's error, or none
        assert_argparse_sentence(error)


def _check_settings(built: Settings) -> None:
    """Every field keeps its type and range."""
    assert 0 <= built.tolerance < 1
    assert all(isinstance(key, str) and isinstance(value, float) and math.isfinite(value) and value > 0 or value == 0 for key, value in built.tolerances.items())
    for name in ("limit", "batch_size", "edit_limit"):
        value = getattr(built, name)
        assert value is None or (isinstance(value, int) and value >= 1), (name, value)
    assert isinstance(built.locality_examples, int) and built.locality_examples >= 1 and isinstance(built.chunk, int) and built.chunk >= 1
    assert built.method in editing.METHODS and built.mode.partition(":")[0] in editing.MODES and built.protocol in PROTOCOLS and built.dtype in DTYPES
    assert built.backend in ("hf", "engine", "vllm") and built.fail_rule in ("margin", "significant")
    assert built.inconclusive in ("fail", "warn") and built.no_signal in ("skip", "fail", "gate")
    assert 0 < built.alpha < 0.5 and 0 <= built.min_reliability <= 1 and (built.rect is None or 0 < built.rect <= 1)
    assert built.edit_counts is None or (list(built.edit_counts) == sorted(set(built.edit_counts)) and built.edit_counts[0] >= 1)
    for name in ("update_baselines", "rescore", "early_stop", "noise_floor"):
        assert isinstance(getattr(built, name), bool), name
    for name in ("baselines", "cache_dir", "curve", "engine_python"):
        assert isinstance(getattr(built, name), Path), name
    for name in ("edited", "hparams", "report", "markdown", "html", "export_edited"):
        assert getattr(built, name) is None or isinstance(getattr(built, name), Path), name
    assert (built.edits is None or isinstance(built.edits, str)) and isinstance(built.data, dict)  # None: none given
    assert all(isinstance(key, str) and isinstance(value, str) for key, value in built.data.items())
    assert built.abilities is None or (isinstance(built.abilities, tuple) and built.abilities)
    for name in ("endpoint", "edited_endpoint"):
        value = getattr(built, name)
        assert value is None or value.startswith(("http://", "https://")), (name, value)
    if built.backend == "engine":
        assert built.endpoint is not None and (built.served_edited is not None or built.update_baselines)


@settings(FUZZ, max_examples=500)
@given(
    pyproject=st.dictionaries(st.sampled_from([*OPTIONS_BY_NAME, "edit-limit", "colour"]), toml_value, max_size=3),
    ini=st.dictionaries(st.sampled_from(list(OPTIONS_BY_NAME)), option_text, max_size=2),
)
def test_configuration_files_give_settings_or_one_sentence(tmp_path: Path, pyproject: dict[str, Any], ini: dict[str, Any]) -> None:
    count("settings-files")
    names = [f"[tool.editguard] {key} in pyproject.toml" for key in pyproject] + [f"ini option editguard_{key}" for key in ini]
    names += [option.cli for option in OPTIONS] + ["[tool.editguard] in pyproject.toml"]
    try:
        built = build_settings({}, pyproject, ini, rootdir=fresh_folder(tmp_path))
    except Exception as error:  # noqa: BLE001 -- the property: editguard's own error, or none
        assert_one_sentence(error, *names)
        return
    _check_settings(built)


@settings(FUZZ, max_examples=400)
@given(cli=st.dictionaries(st.sampled_from([option.name for option in OPTIONS]), option_text, max_size=4))
def test_command_line_values_give_settings_or_one_sentence(tmp_path: Path, cli: dict[str, str]) -> None:
    """What argparse hands over: each value through its option's parser (a repeatable option as a list)."""
    count("settings-cli")
    parsed: dict[str, Any] = {}
    for name, text in cli.items():
        option = OPTIONS_BY_NAME[name]
        try:
            value = option.parse(text)
        except argparse.ArgumentTypeError:
            continue  # argparse stops at the first such value, naming the option
        parsed[name] = [value] if option.repeat else value
    try:
        built = build_settings(parsed, {}, {}, rootdir=fresh_folder(tmp_path))
    except Exception as error:  # noqa: BLE001 -- the property: editguard's own error, or none
        assert_one_sentence(error, *[option.cli for option in OPTIONS])
        return
    _check_settings(built)
