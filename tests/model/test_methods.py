"""Edit methods and modes: ROME, MEMIT, FT and KN edit the embedded default on a CPU; modes compose them.

The SmolLM2 tests make one real edit per method with the default hyper-parameters (about a minute in
all, ROME being the slowest at ~40 s; MEMIT's statistics are computed once per cache).  Mode semantics
are checked on the tiny model with MEMIT, which samples its context templates and so also checks that
every run starts from the same seed.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import re
from pathlib import Path
from typing import Any

import pytest

from editguard.editing import memit_stats
from editguard.editing.methods import METHODS, EditError, resolve_hparams
from editguard.editing.modes import compute_edit
from editguard.editing.modes import (
    batch_deltas,
    check_counts,
    edit_deltas,
    sequential_deltas,
    single_deltas,
)
from editguard.editing.quality import UnchangedWeights, edit_quality
from editguard.editing.requests import load_requests
from editguard.models import TINY, load_model, weights_fingerprint

# Parameters each method may change on SmolLM2 (30 layers) with the defaults.
DOWN_PROJ = "model.layers.{}.mlp.down_proj.weight"
EXPECTED_PARAMETERS = {
    "FT": {DOWN_PROJ.format(19)},
    "KN": {DOWN_PROJ.format(layer) for layer in range(30)},
    "MEMIT": {DOWN_PROJ.format(layer) for layer in range(4, 9)},
    "ROME": {DOWN_PROJ.format(4)},
}
RELIABLE = {"FT", "MEMIT", "ROME"}  # KN does not reliably rewrite this fact (see the method report)


# ROME's edit of this request is the demo's first: tests/model/test_easyedit.py makes it (the gate's own run, cached
# for the other tests) and checks the same restoration; edit quality against EasyEdit's: test_edit_quality.py.
@pytest.mark.parametrize("name", sorted(set(METHODS) - {"ROME", "MEND"}))  # MEND trains for minutes here: tests/model/test_mend.py
def test_each_method_edits_the_embedded_default_on_cpu(name: str, smollm2: Any, cache_dir: Path) -> None:
    request = load_requests("demo")[0]  # ... the Eiffel Tower ... -> Rome
    hparams = resolve_hparams(name, smollm2.model.config, None, "cpu")
    flags = {parameter_name: p.requires_grad for parameter_name, p in smollm2.model.named_parameters()}
    outcome = compute_edit(
        smollm2.model, smollm2.tokenizer, [request], hparams, cache_dir=cache_dir, model_fingerprint=smollm2.fingerprint
    )
    changed = set(outcome.delta.changed_parameters)
    assert changed and changed <= EXPECTED_PARAMETERS[name]
    if name == "MEMIT":
        assert changed == EXPECTED_PARAMETERS[name]  # the update is spread over all five layers
    assert weights_fingerprint(smollm2.model) == smollm2.fingerprint  # restored bit for bit
    assert {parameter_name: p.requires_grad for parameter_name, p in smollm2.model.named_parameters()} == flags
    assert outcome.metrics[0]["editguard"]["weights_changed"] is True
    quality = edit_quality(smollm2.model, smollm2.tokenizer, [request], outcome.delta)
    assert quality.reliability == outcome.metrics[0]["post"]["rewrite_acc"][0]  # agrees with EasyEdit's own measure
    if name in RELIABLE:
        assert quality.reliability == 1.0


# ----------------------------------------------------------------------------- modes (tiny model)


@pytest.fixture(scope="module")
def memit_tiny(tiny: Any) -> dict[str, Any]:
    return resolve_hparams("MEMIT", tiny.model.config, None, "cpu") | {"v_num_grad_steps": 5}


def _edit(tiny: Any, requests: Any, hparams: dict[str, Any], cache_dir: Path, **options: Any) -> Any:
    return compute_edit(tiny.model, tiny.tokenizer, requests, hparams, cache_dir=cache_dir, **options)


def test_single_deltas_are_independent_edits_of_the_base(tiny: Any, memit_tiny: dict[str, Any], cache_dir: Path) -> None:
    requests = load_requests("demo")[:2]
    singles = single_deltas(tiny.model, tiny.tokenizer, requests, memit_tiny, cache_dir=cache_dir)
    alone = [_edit(tiny, [request], memit_tiny, cache_dir) for request in requests]
    assert [outcome.delta.fingerprint for outcome in singles] == [outcome.delta.fingerprint for outcome in alone]
    assert singles[0].delta.fingerprint != singles[1].delta.fingerprint
    assert weights_fingerprint(tiny.model) == tiny.fingerprint


def test_sequential_deltas_accumulate_and_snapshot_each_count(tiny: Any, memit_tiny: dict[str, Any], cache_dir: Path) -> None:
    requests = load_requests("demo")
    curve = sequential_deltas(tiny.model, tiny.tokenizer, requests, memit_tiny, counts=[3, 1, 2], cache_dir=cache_dir)
    assert list(curve) == [1, 2, 3]
    assert [len(curve[count].metrics) for count in curve] == [1, 2, 3]
    assert curve[1].delta.fingerprint == _edit(tiny, requests[:1], memit_tiny, cache_dir).delta.fingerprint
    assert curve[3].delta.fingerprint == _edit(tiny, requests, memit_tiny, cache_dir).delta.fingerprint
    assert len({outcome.delta.fingerprint for outcome in curve.values()}) == 3  # each edit adds to the last
    assert curve[1].seconds <= curve[2].seconds <= curve[3].seconds  # cumulative
    assert weights_fingerprint(tiny.model) == tiny.fingerprint


def test_the_gated_sequential_edit_keeps_each_earlier_count_for_curves_and_edit_limits(tiny: Any, cache_dir: Path, tmp_path: Path) -> None:
    """Editing the three demo requests also stores the edits of the first one and the first two: a curve or an edit
    limit afterwards reads them from the edit cache instead of editing again."""
    import dataclasses

    from editguard.settings import Settings
    from editguard.stages.edits import Edits

    path = tmp_path / "memit.yaml"
    path.write_text("alg_name: MEMIT\nv_num_grad_steps: 5\n")
    edits = tmp_path / "cache" / "edits"
    settings = Settings(model="tiny-gpt2", device="cpu", cache_dir=tmp_path / "cache", method="MEMIT", hparams=path)
    full = Edits(settings, lambda: tiny).primary
    assert full.info.reused is False and len(list(edits.glob("*/edit.json"))) == 3
    for limit in (1, 2):
        earlier = Edits(dataclasses.replace(settings, edit_limit=limit), lambda: tiny).primary
        assert earlier.info.reused is True and len(earlier.requests) == limit
    curve = Edits(dataclasses.replace(settings, edit_counts=(1, 2, 3)), lambda: tiny).curve_deltas
    assert len(list(edits.glob("*/edit.json"))) == 3  # nothing edited again
    assert curve[3].fingerprint == full.delta.fingerprint
    assert curve[1].fingerprint == _edit(tiny, load_requests("demo")[:1], resolve_hparams("MEMIT", tiny.model.config, path, "cpu"), cache_dir).delta.fingerprint


def test_batch_deltas_edit_the_first_k_requests_in_one_call(tiny: Any, memit_tiny: dict[str, Any], cache_dir: Path) -> None:
    requests = load_requests("demo")
    curve = batch_deltas(tiny.model, tiny.tokenizer, requests, memit_tiny, counts=[1, 3], cache_dir=cache_dir)
    assert curve[3].delta.fingerprint == _edit(tiny, requests, memit_tiny, cache_dir, mode="batch").delta.fingerprint
    assert curve[1].delta.fingerprint == _edit(tiny, requests[:1], memit_tiny, cache_dir, mode="batch").delta.fingerprint
    sequential = _edit(tiny, requests, memit_tiny, cache_dir)
    assert curve[3].delta.fingerprint != sequential.delta.fingerprint
    assert len(curve[3].metrics) == 3
    rome = resolve_hparams("ROME", tiny.model.config, None, "cpu")
    with pytest.raises(EditError, match="ROME edits one fact per call"):
        edit_deltas("batch", tiny.model, tiny.tokenizer, requests, rome)
    assert weights_fingerprint(tiny.model) == tiny.fingerprint


def test_batch_sequential_edits_each_batch_on_top_of_the_last(tiny: Any, memit_tiny: dict[str, Any], cache_dir: Path) -> None:
    requests = load_requests("demo")
    curve = edit_deltas("batch-sequential:2", tiny.model, tiny.tokenizer, requests, memit_tiny, [2, 3], cache_dir=cache_dir)
    first_batch = _edit(tiny, requests[:2], memit_tiny, cache_dir, mode="batch")
    assert curve[2].delta.fingerprint == first_batch.delta.fingerprint  # the first step is a batch of two on the base
    whole = _edit(tiny, requests, memit_tiny, cache_dir, mode="batch-sequential:2")
    assert curve[3].delta.fingerprint == whole.delta.fingerprint  # one pass gives each step
    assert whole.delta.fingerprint not in {_edit(tiny, requests, memit_tiny, cache_dir, mode=m).delta.fingerprint for m in ("batch", "sequential")}
    assert len(curve[3].metrics) == 3
    with pytest.raises(EditError, match="edit count 1 does not end a batch of batch-sequential:2; choose counts among 2, 3"):
        edit_deltas("batch-sequential:2", tiny.model, tiny.tokenizer, requests, memit_tiny, [1, 3], cache_dir=cache_dir)
    assert weights_fingerprint(tiny.model) == tiny.fingerprint


def test_edit_counts_and_modes_are_checked() -> None:
    assert check_counts([5, 1, 1, 2], 5) == (1, 2, 5)
    assert check_counts(None, 4) == (4,)
    for bad in ([0], [6], [True], [1.5]):
        with pytest.raises(EditError, match="between 1 and the 5 requests"):
            check_counts(bad, 5)  # type: ignore[arg-type]
    with pytest.raises(EditError, match="unknown edit mode 'parallel'"):
        edit_deltas("parallel", None, None, load_requests("demo"), {})


def test_a_yaml_file_moves_memit_to_another_layer(tiny: Any, cache_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "memit.yaml"
    path.write_text("alg_name: MEMIT\nlayers: [1]\nv_num_grad_steps: 5\nmom2_update_weight: 1.5e+4\n")
    hparams = resolve_hparams("MEMIT", tiny.model.config, path, "cpu")
    outcome = _edit(tiny, load_requests("demo")[:1], hparams, cache_dir)
    assert outcome.delta.changed_parameters == ("transformer.h.1.mlp.c_proj.weight",)


# ----------------------------------------------------------------------------- unchanged weights and the untouched guard


def test_a_failure_inside_easyeditor_names_the_method_and_request(tiny: Any) -> None:
    hparams = resolve_hparams("ROME", tiny.model.config, None, "cpu") | {"v_loss_layer": 9}  # the model has 2 layers
    with pytest.raises(EditError, match="ROME failed inside easyeditor on 'Tourists who visit the Eiffel Tower find that it is located in the city of'") as raised:
        compute_edit(tiny.model, tiny.tokenizer, load_requests("demo")[:1], hparams)
    assert weights_fingerprint(tiny.model) == tiny.fingerprint
    # the innermost easyeditor frame and the exception, in the one sentence; the cause stays chained for -v
    assert re.search(r" at easyeditor/[\w/]+\.py:\d+ \(in \w+\): \w+Error: ", str(raised.value)), str(raised.value)
    assert "run with -v for the full traceback" in str(raised.value)
    assert isinstance(raised.value.__cause__, LookupError)  # easyeditor looks for a layer the model does not have


def test_a_failed_edit_shows_its_traceback_only_under_verbose(pytester: pytest.Pytester, cache_dir: Path) -> None:
    (pytester.path / "bad.yaml").write_text("alg_name: ROME\nv_loss_layer: 9\n")
    args = ("--pyargs", "editguard.gate", "-p", "no:cacheprovider", "--editguard-model", "tiny-gpt2", "--editguard-device", "cpu",
            "--editguard-hparams", "bad.yaml", "--editguard-abilities", "sentiment", "--editguard-limit", "4")  # fmt: skip
    quiet = pytester.runpytest_subprocess(*args)
    quiet.stdout.fnmatch_lines(["*the ROME edit failed: ROME failed inside easyeditor on * at easyeditor/*.py:* LookupError: *"])
    assert "Traceback (most recent call last)" not in quiet.stdout.str()
    verbose = pytester.runpytest_subprocess(*args, "-v")
    assert "Traceback (most recent call last)" in verbose.stdout.str()
    assert "LookupError" in verbose.stdout.str()


def test_an_edit_that_changes_nothing_is_refused(tiny: Any) -> None:
    hparams = resolve_hparams("FT", tiny.model.config, None, "cpu") | {"num_steps": 0}
    with pytest.raises(UnchangedWeights, match="changed no weight"):
        compute_edit(tiny.model, tiny.tokenizer, load_requests("demo")[:1], hparams)
    assert weights_fingerprint(tiny.model) == tiny.fingerprint


def test_easyedit_reverting_kn_would_be_caught(tiny: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """BaseEditor.edit undoes KN's edit; without editguard's wrapper the delta is empty, and refused."""
    hparams = resolve_hparams("KN", tiny.model.config, None, "cpu")
    requests = load_requests("demo")[:1]
    assert compute_edit(tiny.model, tiny.tokenizer, requests, hparams).delta.changed_parameters
    monkeypatch.setitem(METHODS, "KN", dataclasses.replace(METHODS["KN"], wrap_apply=lambda apply: apply))
    with pytest.raises(UnchangedWeights):
        compute_edit(tiny.model, tiny.tokenizer, requests, hparams)
    assert weights_fingerprint(tiny.model) == tiny.fingerprint


def test_a_change_outside_the_restored_parameters_is_reported(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_model(TINY, device="cpu", cache_dir=cache_dir)  # this test leaves it altered
    monkeypatch.setitem(METHODS, "FT", dataclasses.replace(METHODS["FT"], touched=lambda model, hparams: []))
    hparams = resolve_hparams("FT", model.model.config, None, "cpu")
    with pytest.raises(EditError, match="changed parameter 'transformer.h.0.mlp.c_proj.*reload it"):
        compute_edit(model.model, model.tokenizer, load_requests("demo")[:1], hparams)


# ----------------------------------------------------------------------------- MEMIT statistics


def _ensure_stats_worker(cache_dir: str, results: Any) -> None:
    from editguard.editing.methods import resolve_hparams
    from editguard.editing.memit_stats import ensure_stats
    from editguard.models import TINY, load_model

    tiny = load_model(TINY, device="cpu", cache_dir=Path(cache_dir))
    hparams = resolve_hparams("MEMIT", tiny.model.config, None, "cpu")
    files = ensure_stats(tiny.model, tiny.tokenizer, hparams, Path(cache_dir), tiny.fingerprint)
    results.put((files.computed, [str(file) for file in files.files]))


def test_two_processes_asking_for_the_same_statistics_compute_them_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_ensure_stats_worker, args=(str(tmp_path), results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
    outcomes = sorted(results.get(timeout=5) for _ in workers)
    assert [computed for computed, _ in outcomes] == [False, True]
    assert outcomes[0][1] == outcomes[1][1] and all(Path(file).is_file() for file in outcomes[0][1])


def test_easyeditor_reads_the_statistics_without_its_dataset(tiny: Any, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import torch

    hparams = resolve_hparams("MEMIT", tiny.model.config, None, "cpu")
    files = memit_stats.ensure_stats(tiny.model, tiny.tokenizer, hparams, cache_dir, tiny.fingerprint)
    layer_stats = sys.modules["easyeditor.models.rome.layer_stats"]

    def no_download(*args: object, **kwargs: object) -> None:
        pytest.fail("easyeditor tried to load its statistics dataset")

    monkeypatch.setattr(layer_stats, "load_dataset", no_download)
    module = memit_stats.rewritten_modules(hparams)[0]
    stat = layer_stats.layer_stats(
        tiny.model, tiny.tokenizer, module, str(files.stats_dir), hparams["mom2_dataset"], to_collect=["mom2"],
        sample_size=hparams["mom2_n_samples"], precision=hparams["mom2_dtype"],
        hparams=type("HParams", (), {"device": "cpu"}),
    )  # fmt: skip
    passages = memit_stats.generated_passages(tiny.model, tiny.tokenizer, hparams["mom2_n_samples"])
    total, count = memit_stats.second_moments(tiny.model, tiny.tokenizer, passages, [module])[module]
    assert stat.mom2.count == count == sum(len(passage) for passage in passages)
    assert torch.allclose(stat.mom2.moment().double(), total / count, rtol=1e-5, atol=1e-7)
    assert weights_fingerprint(tiny.model) == tiny.fingerprint
