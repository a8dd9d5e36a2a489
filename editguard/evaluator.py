"""The evaluator: batched log-likelihood scoring of continuations on a causal LM.

The model interface is list in, list out::

    loglikelihood([LoglikelihoodRequest(context, continuation), ...]) -> [float, ...]
    generate([GenerationRequest(prompt, max_new_tokens, stop), ...]) -> [str, ...]

``context`` and ``continuation`` are tokenised separately and concatenated, so whitespace belongs
to the continuation (``" positive"``); no special tokens are added beyond what the tokenizer adds
to the context itself.  Requests are sorted by length and packed into batches under a token budget,
right-padded with an attention mask, and only the continuation positions are read, so a request's
score does not depend on the batch it lands in or on the order of the requests.

Generation is greedy: prompts are left-padded (positions follow the attention mask), decoding stops
for the whole batch once every sequence has hit EOS or a stop string, and each output is cut at its
first stop string.  ``add_special_tokens=False`` is for prompts already rendered by a chat template.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_TOKEN_BUDGET = 4096  # tokens per forward pass (padding included) on a CPU


@dataclass(frozen=True)
class LoglikelihoodRequest:
    context: str
    continuation: str


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    max_new_tokens: int
    stop: tuple[str, ...] = ()
    add_special_tokens: bool = True


@dataclass(frozen=True)
class _Encoded:
    index: int
    tokens: tuple[int, ...]  # context + continuation
    continuation_length: int


class Evaluator:
    """Scores requests on one model; holds no state besides the model, tokenizer and batch policy."""

    def __init__(self, model: Any, tokenizer: Any, *, token_budget: int = DEFAULT_TOKEN_BUDGET, max_batch: int = 64):
        self.model = model
        self.tokenizer = tokenizer
        self.token_budget = token_budget
        self.max_batch = max_batch

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        """Sum of log-probabilities of each continuation given its context, in request order."""
        return [total for total, _ in self.loglikelihood_with_lengths(requests)]

    def loglikelihood_with_lengths(self, requests: Sequence[LoglikelihoodRequest]) -> list[tuple[float, int]]:
        """(sum of log-probabilities, number of continuation tokens) per request, in request order."""
        encoded = [self._encode(index, request) for index, request in enumerate(requests)]
        scores = [(0.0, 0)] * len(encoded)
        for batch in self._batches(encoded):
            for item, score in zip(batch, self._score_batch(batch)):
                scores[item.index] = (score, item.continuation_length)
        return scores

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        """Greedy continuation of each prompt, in request order, cut at the first stop string."""
        outputs = [""] * len(requests)
        groups: dict[tuple[int, tuple[str, ...]], list[_Encoded]] = {}
        for index, request in enumerate(requests):
            tokens = self.tokenizer(request.prompt, add_special_tokens=request.add_special_tokens)["input_ids"]
            groups.setdefault((request.max_new_tokens, request.stop), []).append(_Encoded(index, tuple(tokens), 0))
        for (max_new_tokens, stop), members in sorted(groups.items()):
            for batch in self._batches(members, extra_tokens=max_new_tokens):
                for item, text in zip(batch, self._generate_batch(batch, max_new_tokens, stop)):
                    outputs[item.index] = _cut(text, stop)
        return outputs

    def _generate_batch(self, batch: list[_Encoded], max_new_tokens: int, stop: tuple[str, ...]) -> list[str]:
        import torch

        width = max(len(item.tokens) for item in batch)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)  # (batch, seq), left-padded
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, item in enumerate(batch):
            input_ids[row, width - len(item.tokens) :] = torch.tensor(item.tokens)
            attention[row, width - len(item.tokens) :] = 1
        device = self.model.device
        extra = {"stop_strings": list(stop), "tokenizer": self.tokenizer} if stop else {}
        with torch.inference_mode():
            generated = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=pad,
                **extra,
            )
        return self.tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True)

    def _encode(self, index: int, request: LoglikelihoodRequest) -> _Encoded:
        context = self.tokenizer(request.context, add_special_tokens=True)["input_ids"]
        continuation = self.tokenizer(request.continuation, add_special_tokens=False)["input_ids"]
        if not continuation:
            raise ValueError(f"continuation {request.continuation!r} encodes to no tokens")
        return _Encoded(index, tuple(context) + tuple(continuation), len(continuation))

    def _batches(self, encoded: list[_Encoded], extra_tokens: int = 0) -> Iterator[list[_Encoded]]:
        """Pack length-sorted items under the token budget (``extra_tokens`` per row for generation).

        Longest first, so the first batch shows the peak memory; ties broken by request index.
        """
        ordered = sorted(encoded, key=lambda item: (-len(item.tokens), item.index))
        batch: list[_Encoded] = []
        for item in ordered:
            width = (len(batch[0].tokens) if batch else len(item.tokens)) + extra_tokens
            if batch and (width * (len(batch) + 1) > self.token_budget or len(batch) >= self.max_batch):
                yield batch
                batch = []
            batch.append(item)
        if batch:
            yield batch

    def _score_batch(self, batch: list[_Encoded]) -> list[float]:
        import torch

        width = len(batch[0].tokens)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)  # (batch, seq)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, item in enumerate(batch):
            input_ids[row, : len(item.tokens)] = torch.tensor(item.tokens)
            attention[row, : len(item.tokens)] = 1
        hidden = self._hidden_states(input_ids, attention)  # (batch, seq, width)
        scores = []
        for row, item in enumerate(batch):
            end = len(item.tokens)
            start = end - item.continuation_length
            # the state at position t predicts token t + 1; vocabulary logits only where they are read
            row_logits = self._logits(hidden[row, start - 1 : end - 1]).float()  # (continuation, vocab)
            targets = input_ids[row, start:end].to(row_logits.device)
            log_probs = torch.log_softmax(row_logits, dim=-1).gather(1, targets[:, None])
            scores.append(float(log_probs.sum()))
        return scores

    def _hidden_states(self, input_ids: Any, attention: Any) -> Any:
        import torch

        device = self.model.device
        with torch.inference_mode():
            if self._split_head:
                body = self.model.base_model
                return body(input_ids=input_ids.to(device), attention_mask=attention.to(device))[0]
            return self.model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits

    def _logits(self, states: Any) -> Any:
        import torch

        if not self._split_head:
            return states  # already logits
        with torch.inference_mode():
            return self.model.get_output_embeddings()(states)

    @property
    def _split_head(self) -> bool:
        """Run the body once and the vocabulary head only at read positions, unless the model post-processes logits."""
        config = self.model.config
        return (
            self.model.get_output_embeddings() is not None
            and self.model.base_model is not self.model
            and getattr(config, "final_logit_softcapping", None) is None
            and getattr(config, "logit_scale", None) is None
        )


def _cut(text: str, stop: tuple[str, ...]) -> str:
    """Text up to the first stop string (generation may run past it inside a batch)."""
    positions = [text.find(marker) for marker in stop if marker and marker in text]
    return text[: min(positions)] if positions else text
