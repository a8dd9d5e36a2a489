"""Second-moment statistics for MEMIT (and ROME with ``mom2_adjustment``), computed from local text.

MEMIT spreads each update so that it changes the layer's output as little as possible on "typical"
keys: it needs ``C = E[k kᵀ]`` of the inputs ``k`` of every rewritten MLP projection.  easyeditor's
``layer_stats`` estimates ``C`` from a Wikipedia download and caches it as an ``.npz`` file under
``stats_dir``.  Nothing can be downloaded here, so editguard writes that file itself, in easyeditor's
format and at the path ``layer_stats`` looks for (``stats_file``); easyeditor then loads it and never
touches its dataset loader.

Corpora, named by the hyper-parameter ``mom2_dataset``:

- ``editguard-generated`` (the default): passages the model writes itself, sampled with a fixed seed
  from fixed openings.  They share nothing with the gate's probe sets, so the edit is not regularised
  towards exactly the activations the gate measures afterwards.
- ``editguard-probes``: the prose of editguard's own probe sets (passages, sentences, dialogues).
  Offered for comparison only: it leaks the gate's evaluation data into the edit's regulariser.

``mom2_n_samples`` counts passages, as in easyeditor.  A generated passage is its opening plus at most
``GENERATED_TOKENS`` tokens, so the default 128 passages give about 5,000 tokens: more than the
key width of the models here (1,536 for SmolLM2, so ``C`` has full rank), tiny next to easyeditor's
100,000 Wikipedia passages, and about 30 s of CPU time for SmolLM2, once per model.

Files live under ``<cache>/memit_stats/<key>/``, the key covering the weights' fingerprint, the
corpus and its size; a file lock per key makes concurrent xdist workers wait for the one computing
(``atomic.compute_once``), and each file lands atomically.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from editguard.atomic import atomic_open, cache_write, compute_once
from editguard.fingerprint import fingerprint
from editguard.models import input_device, padding_side

STATS_FORMAT = 1  # part of the key: bump when the statistics could change
GENERATED = "editguard-generated"
PROBES = "editguard-probes"
GENERATED_TOKENS = 40  # new tokens per generated passage
MAX_TOKENS = 128  # longest passage fed to the model, in tokens
MIN_PROBE_CHARS = 40  # probe-set strings shorter than this are labels, not prose
BATCH = 16  # passages per forward pass
SEED = 0
# Neutral openings for the generated corpus: varied, no task format, no fact the demo edits touch.
OPENINGS = (
    "The", "In", "When", "A", "It was", "My", "Many people", "One of the", "There are", "After the",
    "This", "We", "According to", "During the", "If you", "Scientists", "Last year", "Our", "Most",
    "Once upon a time", "The new", "For example,", "However,", "I think", "Today", "Some",
)  # fmt: skip


class StatsError(RuntimeError):
    """The statistics cannot be made; the message names the hyper-parameter to change."""


@dataclass(frozen=True)
class StatsFiles:
    stats_dir: Path  # what easyeditor's ``stats_dir`` must be set to
    files: tuple[Path, ...]  # one per rewritten module, where easyeditor reads it
    computed: bool  # True when this call computed them, False when they were already there


def rewritten_modules(hparams: dict[str, Any]) -> list[str]:
    return [hparams["rewrite_module_tmp"].format(layer) for layer in hparams["layers"]]


def stats_file(stats_dir: Path, model: Any, hparams: dict[str, Any], module: str) -> Path:
    """Where easyeditor's ``layer_stats`` reads the statistics of ``module`` (its own naming)."""
    model_name = model.config._name_or_path.replace("/", "_")
    name = f"{module}_{hparams['mom2_dtype']}_mom2_{hparams['mom2_n_samples']}.npz"
    return Path(stats_dir) / model_name / f"{hparams['mom2_dataset']}_stats" / name


def stats_key(model_fingerprint: str, hparams: dict[str, Any]) -> str:
    corpus = hparams["mom2_dataset"]
    material = {"format": STATS_FORMAT, "model": model_fingerprint, "corpus": corpus, "passages": hparams["mom2_n_samples"]}
    if corpus == GENERATED:
        material |= {"openings": list(OPENINGS), "tokens": GENERATED_TOKENS, "seed": SEED}
    else:
        material |= {"probes": _probe_fingerprint()}
    return fingerprint({**material, "max_tokens": MAX_TOKENS})


def ensure_stats(model: Any, tokenizer: Any, hparams: dict[str, Any], cache_dir: Path, model_fingerprint: str) -> StatsFiles:
    """The statistics for every rewritten module, computed once per key (under a file lock)."""
    if hparams["mom2_dataset"] not in CORPORA:
        raise StatsError(f"mom2_dataset {hparams['mom2_dataset']!r} is not a local corpus; choose {' or '.join(CORPORA)}")
    stats_dir = cache_dir / "memit_stats" / stats_key(model_fingerprint, hparams)
    modules = rewritten_modules(hparams)
    files = dict(zip(modules, (stats_file(stats_dir, model, hparams, module) for module in modules)))
    elsewhere: list[StatsFiles] = []  # where they went when the cache could not hold them

    def missing() -> list[str]:
        return [module for module, file in files.items() if not file.is_file()]

    def compute() -> None:
        todo = missing()
        passages = CORPORA[hparams["mom2_dataset"]](model, tokenizer, int(hparams["mom2_n_samples"]))
        moments = second_moments(model, tokenizer, passages, todo)
        if cache_write(cache_dir, lambda: _write_all(files, moments, todo, hparams)) is None:
            elsewhere.append(_temporary_stats(model, hparams, {module: moments[module] for module in modules if module in moments}))

    done = compute_once(stats_dir, lambda: not missing(), compute, lambda: None)
    if elsewhere:
        return elsewhere[0]
    return StatsFiles(stats_dir, tuple(files.values()), computed=done.computed)


def _write_all(files: dict[str, Path], moments: dict[str, Any], modules: list[str], hparams: dict[str, Any]) -> bool:
    for module in modules:
        _write_npz(files[module], moments[module], hparams)
    return True


def _temporary_stats(model: Any, hparams: dict[str, Any], moments: dict[str, Any]) -> StatsFiles:
    """The statistics in a temporary folder of this process, for a cache folder that cannot be written."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="editguard-memit-stats-"))
    files = {module: stats_file(folder, model, hparams, module) for module in moments}
    for module, moment in moments.items():
        _write_npz(files[module], moment, hparams)
    return StatsFiles(folder, tuple(files.values()), computed=True)


# ----------------------------------------------------------------------------- corpora (token id lists)


def generated_passages(model: Any, tokenizer: Any, count: int) -> list[list[int]]:
    """``count`` passages sampled from the model (top-k 50, seeded), openings taken in turn."""
    import torch

    openings = [OPENINGS[index % len(OPENINGS)] for index in range(count)]
    passages: list[list[int]] = []
    with torch.random.fork_rng(devices=[]), torch.no_grad(), padding_side(tokenizer, "left"):
        torch.manual_seed(SEED)
        for start in range(0, count, BATCH):
            passages += _sample(model, tokenizer, openings[start : start + BATCH])
    return passages


def _sample(model: Any, tokenizer: Any, openings: list[str]) -> list[list[int]]:
    encoded = tokenizer(openings, return_tensors="pt", padding=True).to(input_device(model))
    output = model.generate(
        **encoded, do_sample=True, top_k=50, top_p=1.0, temperature=1.0, max_new_tokens=GENERATED_TOKENS,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    width = encoded["input_ids"].shape[1]
    passages = []
    for row, mask in zip(output.tolist(), encoded["attention_mask"].tolist()):
        opening = [token for token, keep in zip(row[:width], mask) if keep]
        passages.append(opening + _until_eos(row[width:], tokenizer.eos_token_id))
    return passages


def _until_eos(tokens: list[int], eos: int | None) -> list[int]:
    return tokens[: tokens.index(eos)] if eos in tokens else tokens


def probe_passages(model: Any, tokenizer: Any, count: int) -> list[list[int]]:
    """The first ``count`` prose strings of editguard's probe sets, tokenised."""
    texts = _probe_texts()
    if len(texts) < count:
        raise StatsError(f"the probe sets hold {len(texts)} passages, fewer than mom2_n_samples={count}; lower it")
    return [tokenizer(text)["input_ids"][:MAX_TOKENS] for text in texts[:count]]


def _probe_texts() -> list[str]:
    folder = resources.files("editguard.tasks") / "data"
    texts = []
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if entry.name.endswith(".jsonl"):
            for line in entry.read_text(encoding="utf-8").splitlines():
                texts += [value for value in json.loads(line).values() if isinstance(value, str) and len(value) >= MIN_PROBE_CHARS]
    return texts


def _probe_fingerprint() -> str:
    return fingerprint(_probe_texts())


CORPORA: dict[str, Callable[[Any, Any, int], list[list[int]]]] = {GENERATED: generated_passages, PROBES: probe_passages}


# ----------------------------------------------------------------------------- statistics


class _Stop(Exception):
    """Raised by the hook of the deepest module: nothing after it is needed."""


def second_moments(model: Any, tokenizer: Any, passages: Sequence[list[int]], modules: list[str]) -> dict[str, tuple[Any, int]]:
    """``(Σ k kᵀ in float64, token count)`` of each module's input over every token of ``passages``."""
    import torch

    named = dict(model.named_modules())
    unknown = [module for module in modules if module not in named]
    if unknown:
        raise StatsError(f"the model has no module {unknown[0]!r}; fix rewrite_module_tmp or layers")
    sums: dict[str, Any] = {module: None for module in modules}
    current: dict[str, Any] = {}  # the attention mask of the batch in flight
    deepest = max(modules, key=list(named).index)

    def collect(module: str) -> Callable[..., None]:
        def hook(_: Any, inputs: tuple[Any, ...]) -> None:
            keys = inputs[0][current["mask"]].to(torch.float64)  # (tokens, width)
            product = keys.T @ keys  # (width, width)
            sums[module] = product if sums[module] is None else sums[module] + product
            if module == deepest:
                raise _Stop

        return hook

    handles = [named[module].register_forward_pre_hook(collect(module)) for module in modules]
    count = 0
    try:
        with torch.no_grad():
            for start in range(0, len(passages), BATCH):
                ids, mask = _right_padded(passages[start : start + BATCH], tokenizer.pad_token_id, input_device(model))
                current["mask"] = mask.bool()
                count += int(mask.sum())
                try:
                    model(input_ids=ids, attention_mask=mask)
                except _Stop:
                    pass
    finally:
        for handle in handles:
            handle.remove()
    return {module: (total.cpu(), count) for module, total in sums.items()}


def _right_padded(passages: Sequence[list[int]], pad: int, device: Any) -> tuple[Any, Any]:
    import torch

    width = max(len(passage) for passage in passages)
    ids = torch.full((len(passages), width), pad, dtype=torch.long)
    mask = torch.zeros((len(passages), width), dtype=torch.long)
    for row, passage in enumerate(passages):
        ids[row, : len(passage)] = torch.tensor(passage, dtype=torch.long)
        mask[row, : len(passage)] = 1
    return ids.to(device), mask.to(device)


def _write_npz(file: Path, moment: tuple[Any, int], hparams: dict[str, Any]) -> None:
    """easyeditor's cache layout: a ``CombinedStat(mom2=SecondMoment())`` state plus ``sample_size``."""
    import numpy as np
    import torch

    total, count = moment
    state = {
        "mom2.constructor": np.array("easyeditor.util.runningstats.SecondMoment()"),
        "mom2.count": np.array(count),
        "mom2.mom2": total.to(getattr(torch, hparams["mom2_dtype"])).numpy(),
        "sample_size": np.array(hparams["mom2_n_samples"]),
    }
    with atomic_open(file, "wb") as stream:
        np.savez(stream, **state)
