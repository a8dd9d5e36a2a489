"""The locality property's answers are kept in the cache folder: a re-run of the same models and prompts runs no
model, gives the same answers and ranks, and --editguard-rescore computes them again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROMPTS = ["The capital of France is", "Dogs mostly eat", "The Amazon river flows through"]


def _probe(cache: Path, delta_file: Path, **settings: Any) -> tuple[Any, list[int]]:
    from editguard.locality import model_probe
    from editguard.session import Session
    from editguard.settings import Settings

    session = Session(Settings(model="tiny-gpt2", device="cpu", cache_dir=cache, edited=delta_file, **settings))
    calls: list[int] = []
    model = session.base.model
    model.register_forward_hook(lambda *_: calls.append(1))
    settings = session.settings
    return model_probe(session.base, session.edits.primary.delta, cache_dir=settings.cache_dir, rescore=settings.rescore), calls


def test_a_rerun_reads_the_locality_answers_instead_of_running_the_models(tmp_path: Path, tiny: Any) -> None:
    from editguard.editing.delta import WeightDelta

    parameters = dict(tiny.model.named_parameters())
    name = next(name for name in parameters if name.endswith("mlp.c_proj.weight"))
    WeightDelta({name: 0.5 * parameters[name].detach().clone()}).save(tmp_path / "delta.safetensors")
    cache = tmp_path / "cache"

    def answers(probe: Any) -> list[tuple[list[int], list[int]]]:
        found = []
        for prompt in PROMPTS:
            tokens = probe.answer(prompt, False)
            found.append((tokens, probe.ranks(prompt, tokens, True)))
        return found

    first, calls = _probe(cache, tmp_path / "delta.safetensors")
    computed = answers(first)
    assert calls  # computed: the models ran
    first.save()
    assert len(list((cache / "outputs").glob("locality.*.json"))) == 2  # the base's answers, the edited model's ranks

    again, calls = _probe(cache, tmp_path / "delta.safetensors")
    assert answers(again) == computed and not calls  # read, not computed
    rescored, calls = _probe(cache, tmp_path / "delta.safetensors", rescore=True)
    assert answers(rescored) == computed and calls  # --editguard-rescore runs the models again, with the same answers

    WeightDelta({name: -0.5 * parameters[name].detach().clone()}).save(tmp_path / "other.safetensors")
    other, calls = _probe(cache, tmp_path / "other.safetensors")
    other.answer(PROMPTS[0], False)
    assert not calls  # the base is the same model
    other.ranks(PROMPTS[0], computed[0][0], True)
    assert calls  # another edit is another model: its ranks are not the first edit's
