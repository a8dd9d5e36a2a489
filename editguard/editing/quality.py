"""Edit quality as EasyEdit defines it, measured by editguard on any edit given as a weight delta.

For one request and the edited model (the base plus the delta):

- reliability: the share of ``target_new``'s tokens that are the model's argmax after ``prompt``,
  teacher-forced on the true preceding target tokens (EasyEdit's ``rewrite_acc``);
- generalisation: the same after ``rephrase`` (``rephrase_acc``);
- locality: the share of ``locality_answer``'s token positions, after ``locality_prompt``, where the
  edited model's argmax equals the base model's: agreement with the base, not correctness (EasyEdit
  compares its pre- and post-edit argmax tokens the same way);
- portability: token accuracy of ``portability_answer`` after ``portability_prompt``.

A value is ``None`` where the request lacks the field; a mean is over the requests that have it.
Tokenisation follows EasyEdit's ``test_prediction_acc``: ``prompt + " " + answer`` is tokenised as one
text and the answer is what follows the prompt's own tokens.  Where that joint tokenisation does not
begin with the prompt's tokens (a merge across the boundary), the answer is tokenised on its own,
with its leading space, and appended, so the prompt is always exactly the prompt.

Because the edit is a delta, the same measurement serves every method and every edited model made
elsewhere (a checkpoint or a delta file, through ``external.load_edited``).  ``check_changed`` refuses a
delta that changes nothing: EasyEdit has returned unmodified weights before, and a gate run on the
unedited model would pass for the wrong reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import fmean
from typing import Any

from editguard.editing.delta import WeightDelta, applied
from editguard.editing.requests import EditRequest

MAX_BATCH = 16  # sequences per forward pass

# The measured kinds: (name, prompt field, answer field, compared with the base model's argmax?)
KINDS = (
    ("reliability", "prompt", "target_new", False),
    ("generalisation", "rephrase", "target_new", False),
    ("locality", "locality_prompt", "locality_answer", True),
    ("portability", "portability_prompt", "portability_answer", False),
)


class UnchangedWeights(ValueError):
    """An edit that left every weight as it was; the message says where it came from."""


def weights_changed(delta: WeightDelta) -> bool:
    return any(bool(tensor.any()) for tensor in delta.tensors.values())


EDIT_REMEDY = "check the method's hyper-parameters (layers, steps, learning rate) and the edit requests"


def check_changed(delta: WeightDelta, source: str = "the edit", remedy: str = EDIT_REMEDY) -> None:
    if not weights_changed(delta):
        raise UnchangedWeights(f"{source} changed no weight (an empty or all-zero delta): the edited model is the base model; {remedy}")


@dataclass(frozen=True)
class RequestQuality:
    reliability: float
    generalisation: float | None = None
    locality: float | None = None
    portability: float | None = None


@dataclass(frozen=True)
class EditQuality:
    per_request: tuple[RequestQuality, ...]

    @property
    def reliability(self) -> float | None:
        return self._mean("reliability")

    @property
    def generalisation(self) -> float | None:
        return self._mean("generalisation")

    @property
    def locality(self) -> float | None:
        return self._mean("locality")

    @property
    def portability(self) -> float | None:
        return self._mean("portability")

    def _mean(self, kind: str) -> float | None:
        values = [getattr(request, kind) for request in self.per_request if getattr(request, kind) is not None]
        return fmean(values) if values else None

    def as_dict(self) -> dict[str, Any]:
        means = {kind: self._mean(kind) for kind, *_ in KINDS}
        return {**means, "per_request": [asdict(request) for request in self.per_request]}


def edit_quality(model: Any, tokenizer: Any, requests: Sequence[EditRequest], delta: WeightDelta) -> EditQuality:
    """Reliability, generalisation, locality and portability of ``delta`` over the base ``model``."""
    check_changed(delta)
    pairs = {(kind, index): (getattr(request, prompt), getattr(request, answer))
             for index, request in enumerate(requests) for kind, prompt, answer, _ in KINDS
             if getattr(request, prompt) and getattr(request, answer)}  # fmt: skip
    compared = [key for key in pairs if _against_base(key[0])]
    base = dict(zip(compared, argmax_tokens(model, tokenizer, [pairs[key] for key in compared])))
    with applied(model, delta):
        edited = dict(zip(pairs, argmax_tokens(model, tokenizer, list(pairs.values()))))
    values: dict[tuple[str, int], float] = {}
    for key, (answer, predicted) in edited.items():
        reference = base[key][1] if key in base else answer
        values[key] = fmean(float(got == wanted) for got, wanted in zip(predicted, reference))
    return EditQuality(tuple(_request_quality(values, index) for index in range(len(requests))))


def _against_base(kind: str) -> bool:
    return next(against for name, _, _, against in KINDS if name == kind)


def _request_quality(values: dict[tuple[str, int], float], index: int) -> RequestQuality:
    return RequestQuality(**{kind: values.get((kind, index)) for kind, *_ in KINDS})  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- teacher-forced argmax


def answer_ids(tokenizer: Any, prompt: str, answer: str) -> tuple[list[int], list[int]]:
    """(prompt tokens, answer tokens), the answer following the prompt after one space."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    joint = tokenizer(f"{prompt} {answer}")["input_ids"]
    if joint[: len(prompt_ids)] == prompt_ids and len(joint) > len(prompt_ids):
        return prompt_ids, joint[len(prompt_ids) :]
    return prompt_ids, tokenizer(f" {answer}", add_special_tokens=False)["input_ids"]


def argmax_tokens(model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """For each (prompt, answer): the answer's tokens and the model's argmax at each of their positions."""
    encoded = [answer_ids(tokenizer, prompt, answer) for prompt, answer in pairs]
    results = []
    for start in range(0, len(encoded), MAX_BATCH):
        results += _argmax_batch(model, tokenizer.pad_token_id, encoded[start : start + MAX_BATCH])
    return results


def _argmax_batch(model: Any, pad: int, encoded: list[tuple[list[int], list[int]]]) -> list[tuple[list[int], list[int]]]:
    import torch

    rows = [prompt + answer for prompt, answer in encoded]
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for index, row in enumerate(rows):  # right padding: positions stay 0..n-1 for every row
        ids[index, : len(row)] = torch.tensor(row)
        mask[index, : len(row)] = 1
    with torch.no_grad():
        logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits  # (batch, seq, vocab)
    predicted = logits.argmax(dim=-1).cpu()  # (batch, seq): the token predicted for position + 1
    results = []
    for index, (prompt, answer) in enumerate(encoded):
        first = len(prompt) - 1  # the last prompt token predicts the first answer token
        results.append((answer, predicted[index, first : first + len(answer)].tolist()))
    return results
