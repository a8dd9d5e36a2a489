"""Edit quality as EasyEdit defines it, measured by editguard on weight deltas."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from editguard.editing.delta import WeightDelta
from editguard.editing.methods import resolve_hparams
from editguard.editing.modes import single_deltas
from editguard.editing.quality import (
    EditQuality,
    RequestQuality,
    UnchangedWeights,
    answer_ids,
    argmax_tokens,
    check_changed,
    edit_quality,
    weights_changed,
)
from editguard.editing.requests import EditRequest, load_requests
from editguard.models import weights_fingerprint

# Neighbours of the demo facts (same relation, another subject), for locality.
NEIGHBOURS = (
    ("The Colosseum is located in the city of", "Rome"),
    ("The native language of Gabriel García Márquez is", "Spanish"),
    ("The Nile River flows through the country of", "Egypt"),
)


def demo_with_neighbours() -> list[EditRequest]:
    return [
        dataclasses.replace(request, locality_prompt=prompt, locality_answer=answer)
        for request, (prompt, answer) in zip(load_requests("demo"), NEIGHBOURS)
    ]


def test_an_empty_or_all_zero_delta_is_refused(tiny: Any) -> None:
    name = "transformer.h.0.mlp.c_proj.weight"
    for delta in (WeightDelta({}), WeightDelta({name: torch.zeros(256, 64)})):
        assert not weights_changed(delta)
        with pytest.raises(UnchangedWeights, match="the edited model is the base model"):
            check_changed(delta)
        with pytest.raises(UnchangedWeights):
            edit_quality(tiny.model, tiny.tokenizer, load_requests("demo"), delta)
    check_changed(WeightDelta({name: torch.eye(256, 64)}))


def test_answer_tokens_follow_the_prompt_after_one_space(tiny: Any) -> None:
    prompt_ids, answer = answer_ids(tiny.tokenizer, "The Eiffel Tower is located in the city of", "Rome")
    assert prompt_ids == tiny.tokenizer("The Eiffel Tower is located in the city of")["input_ids"]
    assert tiny.tokenizer.decode(answer) == " Rome"


def test_argmax_tokens_do_not_depend_on_the_batch(tiny: Any) -> None:
    pairs = [("The Eiffel Tower is located in the city of", "Rome"), ("Hi", "a much longer answer than the prompt"), ("x", "y")]
    together = argmax_tokens(tiny.model, tiny.tokenizer, pairs)
    alone = [argmax_tokens(tiny.model, tiny.tokenizer, [pair])[0] for pair in pairs]
    assert together == alone
    ids = tiny.tokenizer("Hi a much longer answer", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = tiny.model(ids).logits.argmax(-1)[0, 0:-1].tolist()  # positions 0.. predict tokens 1..
    assert together[1][1][:4] == expected[:4]


def test_means_skip_requests_without_the_field() -> None:
    quality = EditQuality((RequestQuality(1.0, 0.5, None), RequestQuality(0.0, None, 1.0)))
    assert (quality.reliability, quality.generalisation, quality.locality, quality.portability) == (0.5, 0.5, 1.0, None)
    assert quality.as_dict()["per_request"][1] == {"reliability": 0.0, "generalisation": None, "locality": 1.0, "portability": None}


def test_quality_agrees_with_easyedit_on_the_demo_edits(smollm2: Any) -> None:
    """FT, one demo edit at a time: editguard's measures equal EasyEdit's post-edit metrics per request."""
    requests = demo_with_neighbours()
    hparams = resolve_hparams("FT", smollm2.model.config, None, "cpu")
    for request, outcome in zip(requests, single_deltas(smollm2.model, smollm2.tokenizer, requests, hparams)):
        quality = edit_quality(smollm2.model, smollm2.tokenizer, [request], outcome.delta)
        post = outcome.metrics[0]["post"]
        assert quality.reliability == post["rewrite_acc"][0] == 1.0
        assert quality.generalisation == post["rephrase_acc"][0]
        assert quality.locality == post["locality"]["neighborhood_acc"][0]
    assert weights_fingerprint(smollm2.model) == smollm2.fingerprint


def test_quality_of_sequential_demo_edits(smollm2: Any, cache_dir: Path) -> None:
    """The gate's own three sequential ROME demo edits (from the edit cache), measured with neighbours added."""
    from editguard.settings import Settings
    from editguard.stages.edits import Edits

    requests = demo_with_neighbours()
    delta = Edits(Settings(cache_dir=cache_dir, device="cpu"), lambda: smollm2).primary.delta
    quality = edit_quality(smollm2.model, smollm2.tokenizer, requests, delta)
    assert quality.reliability == 1.0
    assert len(quality.per_request) == 3 and all(request.portability is None for request in quality.per_request)
    assert quality.locality is not None and quality.generalisation is not None
    assert weights_fingerprint(smollm2.model) == smollm2.fingerprint
