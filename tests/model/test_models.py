from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from editguard.models import (
    TINY,
    ModelSourceError,
    cpu_threads_per_worker,
    load_model,
    resolve_device,
    weights_fingerprint,
)


def test_auto_device_gives_each_worker_its_own_gpu() -> None:
    assert resolve_device("auto", worker_index=0, gpu_count=0) == "cpu"
    assert [resolve_device("auto", worker_index=i, gpu_count=2) for i in range(4)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert resolve_device("cpu", worker_index=3, gpu_count=2) == "cpu"


def test_workers_share_the_cpu() -> None:
    assert cpu_threads_per_worker(1, cpu_count=8) == 8
    assert cpu_threads_per_worker(4, cpu_count=8) == 2
    assert cpu_threads_per_worker(16, cpu_count=8) == 1


def test_tiny_model_is_deterministic(tiny: Any, cache_dir: Path) -> None:
    again = load_model(TINY, device="cpu", cache_dir=cache_dir)
    assert again.fingerprint == tiny.fingerprint == weights_fingerprint(tiny.model)


def test_fingerprint_sees_one_changed_weight(tiny: Any, cache_dir: Path) -> None:
    import torch

    other = load_model(TINY, device="cpu", cache_dir=cache_dir)
    with torch.no_grad():
        other.model.transformer.h[1].mlp.c_fc.weight[0, 0] += 1e-3
    assert weights_fingerprint(other.model) != tiny.fingerprint


def test_embedded_default_is_the_real_smollm2(smollm2: Any) -> None:
    config = smollm2.model.config
    assert (config.model_type, config.num_hidden_layers, config.hidden_size) == ("llama", 30, 576)
    assert sum(p.numel() for p in smollm2.model.parameters()) == 134_515_008
    assert smollm2.tokenizer.eos_token == "<|im_end|>"
    assert smollm2.tokenizer("Paris")["input_ids"][0] != smollm2.tokenizer.bos_token_id  # GGUF says no BOS


def test_local_checkpoint_folder_loads(tiny: Any, tmp_path: Path, cache_dir: Path) -> None:
    tiny.model.save_pretrained(tmp_path / "ckpt")
    tiny.tokenizer.save_pretrained(tmp_path / "ckpt")
    loaded = load_model(str(tmp_path / "ckpt"), device="cpu", cache_dir=cache_dir)
    assert loaded.name == "ckpt"
    assert loaded.fingerprint == tiny.fingerprint


def test_unknown_source_is_one_sentence(tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(ModelSourceError, match="does not exist"):
        load_model(str(tmp_path / "missing"), device="cpu", cache_dir=cache_dir)
    with pytest.raises(ModelSourceError, match="neither a local checkpoint folder nor a model id"):
        load_model("no-such-model-id", device="cpu", cache_dir=cache_dir)
