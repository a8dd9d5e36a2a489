"""A model's identity: everything that decides its outputs, as digests that name what changed.

Three parts, each digested apart so a changed one can be named:

* the weights (``models.weights_fingerprint``: every tensor's name, dtype, shape and bytes);
* the tokenizer: its vocabulary, BPE merges, special tokens, how it encodes a fixed set of probe texts (its
  normaliser, pre-tokeniser and post-processor at work: whether it adds a BOS, how it treats Unicode forms and
  spaces) and its chat template;
* the configuration fields that change computation (``COMPUTE_FIELDS``: sizes, norms' epsilon, rotary settings,
  activation, softcaps, special token ids, the greedy-decoding fields of the generation config).

Each part is read through the object's behaviour, not its files or its ``to_dict()``, so the same model loaded by
transformers 4.57 and 5.x has the same identity (5.x moved ``rope_theta`` into ``rope_parameters`` and writes other
keys into ``config.json``).  A leaf apart from ``fingerprint``: no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from editguard.fingerprint import combine, fingerprint

IDENTITY_FORMAT = 1

# Texts whose token ids show how a tokenizer treats words, spaces, digits, punctuation, case, Unicode normal forms
# (a precomposed and a decomposed "é"), non-Latin scripts and its own special tokens' text.
PROBE_TEXTS = (
    "The Eiffel Tower is located in the city of Paris.",
    " leading space, double  space and\ttab\nnewline",
    "Numbers 0 1 12 123 1234 3.14159 -7 1,000,000",
    "UPPER lower MiXeD CamelCase snake_case kebab-case",
    "caf\u00e9 cafe\u0301 na\u00efve \u00c5ngstr\u00f6m \ufb01ne",
    "\u4e2d\u6587 \u65e5\u672c\u8a9e \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0440\u0443\u0441\u0441\u043a\u0438\u0439 \U0001f600",
    "Review: a gripping, beautifully acted film.\nSentiment: positive",
)
CHAT_PROBE = ({"role": "user", "content": "What is the capital of France?"},)

# Configuration attributes that change what a model computes (several families name one thing differently).
COMPUTE_FIELDS = (
    "model_type", "vocab_size", "hidden_size", "n_embd", "d_model", "num_hidden_layers", "n_layer",
    "num_attention_heads", "n_head", "num_key_value_heads", "multi_query", "head_dim", "intermediate_size", "n_inner",
    "ffn_dim", "hidden_act", "activation_function", "layer_norm_eps", "layer_norm_epsilon", "rms_norm_eps",
    "partial_rotary_factor", "rotary_pct", "rotary_dim", "rotary_emb_base", "max_position_embeddings",
    "n_positions", "sliding_window", "use_sliding_window", "attention_bias", "mlp_bias", "bias", "tie_word_embeddings",
    "scale_attn_weights", "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "attn_logit_softcapping",
    "final_logit_softcapping", "query_pre_attn_scalar", "use_parallel_residual", "parallel_attn",
    "new_decoder_architecture", "alibi", "apply_residual_connection_post_layernorm", "do_layer_norm_before",
    "attention_multiplier", "embedding_multiplier", "logits_scaling", "residual_multiplier", "clip_qkv",
    "layer_types", "bos_token_id", "eos_token_id", "pad_token_id",
)  # fmt: skip
# The generation config's fields that change greedy decoding, each with the values that leave it plain (4.x writes
# the neutral value, 5.x leaves None); a special token id it leaves unset falls back to the model config's.
GENERATION_FIELDS: dict[str, tuple[Any, ...]] = {
    "num_beams": (1,), "do_sample": (False,), "repetition_penalty": (1.0,), "encoder_repetition_penalty": (1.0,),
    "no_repeat_ngram_size": (0,), "min_length": (0,), "min_new_tokens": (0,), "bad_words_ids": (), "suppress_tokens": (),
    "begin_suppress_tokens": (), "forced_bos_token_id": (), "forced_eos_token_id": (), "sequence_bias": (),
    "penalty_alpha": (), "guidance_scale": (1.0,), "dola_layers": (),
}  # fmt: skip
GENERATION_IDS = ("eos_token_id", "bos_token_id", "pad_token_id")
_ROPE_DEFAULTS = {"rope_type": "default", "type": "default"}


@dataclass(frozen=True)
class ModelIdentity:
    """Digests of what decides a model's outputs: ``weights``, each part of the ``tokenizer``, the ``config``."""

    weights: str
    tokenizer: Mapping[str, str] = field(default_factory=dict)
    config: str = ""

    @property
    def key(self) -> str:
        """One digest of the whole identity: what the output cache, the edit cache and MEMIT's statistics are keyed by."""
        parts = [f"{name}={digest}" for name, digest in sorted(self.tokenizer.items())]
        return combine(f"identity-{IDENTITY_FORMAT}", self.weights, *parts, self.config)

    def recorded(self) -> dict[str, Any]:
        """The tokenizer and config digests as a baseline stores them (the weights have their own field)."""
        return {"tokenizer": dict(sorted(self.tokenizer.items())), "config": self.config}

    def changes(self, recorded: Mapping[str, Any]) -> list[str]:
        """What differs from a baseline's ``recorded()`` identity, in words (empty: the same model)."""
        said = []
        theirs = recorded.get("tokenizer") or {}
        parts = list(TOKENIZER_PART_WORDS) + sorted((set(theirs) | set(self.tokenizer)) - set(TOKENIZER_PART_WORDS))
        changed = [part for part in parts if theirs.get(part) != self.tokenizer.get(part)]
        if changed:
            said.append(f"the tokenizer's {', '.join(TOKENIZER_PART_WORDS.get(part, part) for part in changed)}")
        if recorded.get("config") != self.config:
            said.append("the configuration fields that change computation")
        return said


TOKENIZER_PART_WORDS = {  # in the order a change is told
    "vocabulary": "vocabulary",
    "merges": "merges",
    "special_tokens": "special tokens",
    "chat_template": "chat template",
    "encoding": "encoding of the probe texts (normaliser, pre-tokeniser, added BOS/EOS)",
    "context_length": "context length (model_max_length, where the config names none)",
}


def model_identity(model: Any, tokenizer: Any, weights: str) -> ModelIdentity:
    """The identity of a loaded model whose weights digest to ``weights``.  A config that names no context (Bloom's
    and other ALiBi models') leaves the limit prompts are cut to to the tokenizer's ``model_max_length``: then that
    limit is a part of the tokenizer's identity (a config that names one keeps it in ``config``)."""
    parts = tokenizer_parts(tokenizer)
    if configured_context(model.config) is None:
        parts["context_length"] = fingerprint(context_length(model.config, tokenizer))
    return ModelIdentity(weights, parts, config_fingerprint(model))


CONTEXT_FIELDS = ("max_position_embeddings", "n_positions", "n_ctx", "seq_length", "max_sequence_length")
NO_LIMIT = 1_000_000_000  # tokenizers without a limit say int(1e30); anything this large is none


def configured_context(config: Any) -> int | None:
    """The positions the model's config names (its position table or context), or None when it names none."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in CONTEXT_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def context_length(config: Any, tokenizer: Any) -> int:
    """The most positions the model reads: its config's position table or context (GPT-2 ``n_positions``: 1024;
    Bloom's and other ALiBi models' configs name none, their tokenizer's ``model_max_length`` does), else no limit."""
    configured = configured_context(config)
    if configured is not None:
        return configured
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < NO_LIMIT else NO_LIMIT


def tokenizer_parts(tokenizer: Any) -> dict[str, str]:
    """Digest of each part of a tokenizer that decides the token ids a model sees."""
    return {
        "vocabulary": fingerprint(sorted(tokenizer.get_vocab().items())),
        "merges": fingerprint(_merges(tokenizer)),
        "special_tokens": fingerprint(_special_tokens(tokenizer)),
        "encoding": fingerprint([_encoded(tokenizer, text) for text in PROBE_TEXTS]),
        "chat_template": fingerprint(_chat(tokenizer)),
    }


def _merges(tokenizer: Any) -> list[list[str]]:
    """A byte-pair tokenizer's merges as pairs (the tokenizers library writes "a b" or ["a", "b"] by version)."""
    import json

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        ranks = getattr(tokenizer, "bpe_ranks", None)  # a slow GPT-2 tokenizer
        return [list(pair) for pair, _ in sorted(ranks.items(), key=lambda item: item[1])] if ranks else []
    merges = json.loads(backend.to_str()).get("model", {}).get("merges") or []
    return [merge.split(" ", 1) if isinstance(merge, str) else list(merge) for merge in merges]


def _special_tokens(tokenizer: Any) -> dict[str, Any]:
    names = ("bos_token", "eos_token", "unk_token", "pad_token")
    tokens = {name: str(getattr(tokenizer, name, None)) for name in names}
    return tokens | {"ids": sorted(int(i) for i in tokenizer.all_special_ids)}


def _encoded(tokenizer: Any, text: str) -> list[list[int]]:
    """The probe's ids with and without the tokenizer's special tokens."""
    return [list(tokenizer(text, add_special_tokens=special)["input_ids"]) for special in (True, False)]


def _chat(tokenizer: Any) -> Any:
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return None
    try:
        return tokenizer.apply_chat_template(list(CHAT_PROBE), tokenize=False, add_generation_prompt=True)
    except Exception:  # a template this probe cannot render (it wants other roles): its text is the identity then
        return str(template)


def config_fingerprint(model: Any) -> str:
    """Digest of the configuration fields that change computation, and of the generation config's greedy fields."""
    config = model.config
    fields = {name: _plain(getattr(config, name)) for name in COMPUTE_FIELDS if getattr(config, name, None) is not None}
    architectures = getattr(config, "architectures", None) or [type(model).__name__]
    fields |= {"architecture": architectures[0], "rope": _rope(config)}
    generation = getattr(model, "generation_config", None)
    if generation is not None:
        fields["generation"] = _generation(generation, config)
    return fingerprint(fields)


def _generation(generation: Any, config: Any) -> dict[str, Any]:
    """The generation config's fields that are not neutral, and the special token ids decoding uses."""
    fields = {}
    for name, neutral in GENERATION_FIELDS.items():
        value = getattr(generation, name, None)
        if value is not None and value not in neutral:
            fields[name] = _plain(value)
    for name in GENERATION_IDS:
        value = getattr(generation, name, None)
        value = getattr(config, name, None) if value is None else value
        if value is not None:
            fields[name] = _plain(value)
    return fields


def _rope(config: Any) -> dict[str, Any]:
    """Rotary settings wherever this transformers keeps them (4.x: ``rope_theta`` and ``rope_scaling``; 5.x:
    ``rope_parameters``), without the entries that only say "default"."""
    merged: dict[str, Any] = {}
    for name in ("rope_scaling", "rope_parameters"):
        value = getattr(config, name, None)
        if isinstance(value, Mapping):
            merged |= {key: _plain(item) for key, item in value.items()}
    theta = getattr(config, "rope_theta", None)
    if theta is not None:
        merged.setdefault("rope_theta", _plain(theta))
    return {key: value for key, value in merged.items() if _ROPE_DEFAULTS.get(key) != value}


def _plain(value: Any) -> Any:
    """A JSON-able form of a config value (floats kept exact, tuples as lists)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, float):
        return repr(value)
    return value if isinstance(value, (int, str, bool)) or value is None else str(value)
