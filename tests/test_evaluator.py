from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from editguard.evaluator import Evaluator, LoglikelihoodRequest

WORDS = ["the", "film", "was", "great", "awful", "a", "river", "flows", "north", "yes", "no", "Paris"]
texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=30).map(" ".join)
requests = st.lists(st.tuples(texts, st.sampled_from([" positive", " negative", " Yes", " No", " it is"])), min_size=1, max_size=12)


def _reference(model: Any, tokenizer: Any, request: LoglikelihoodRequest) -> float:
    """One request alone, full logits, no padding: what the batched path must reproduce."""
    import torch

    context = tokenizer(request.context)["input_ids"]
    continuation = tokenizer(request.continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([context + continuation])
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0]
    log_probs = torch.log_softmax(logits[len(context) - 1 : -1], dim=-1)
    return float(log_probs.gather(1, torch.tensor(continuation)[:, None]).sum())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests, st.sampled_from([1, 64, 256, 4096]), st.randoms(use_true_random=False))
def test_scores_do_not_depend_on_batching_or_order(tiny: Any, pairs: list, budget: int, rng: Any) -> None:
    batch = [LoglikelihoodRequest(context, continuation) for context, continuation in pairs]
    evaluator = Evaluator(tiny.model, tiny.tokenizer, token_budget=budget)
    scores = evaluator.loglikelihood(batch)
    order = list(range(len(batch)))
    rng.shuffle(order)
    shuffled = Evaluator(tiny.model, tiny.tokenizer, token_budget=4096).loglikelihood([batch[i] for i in order])
    for position, index in enumerate(order):
        assert abs(shuffled[position] - scores[index]) < 1e-4
    for request, score in zip(batch, scores):
        assert abs(score - _reference(tiny.model, tiny.tokenizer, request)) < 1e-4


def test_embedded_default_prefers_the_right_sentiment(smollm2: Any) -> None:
    evaluator = Evaluator(smollm2.model, smollm2.tokenizer)
    prompt = "Review: a moving, funny and beautifully acted film.\nSentiment:"
    positive, negative = evaluator.loglikelihood(
        [LoglikelihoodRequest(prompt, " positive"), LoglikelihoodRequest(prompt, " negative")]
    )
    assert positive > negative


def test_generation_does_not_depend_on_batching_or_order(tiny: Any) -> None:
    from editguard.evaluator import GenerationRequest

    prompts = ["the film was", "a river flows north and", "Paris", "yes no yes no the the film great awful"]
    requests = [GenerationRequest(p, 6, ("\n",)) for p in prompts] + [GenerationRequest("the film", 3)]
    together = Evaluator(tiny.model, tiny.tokenizer).generate(requests)
    alone = [Evaluator(tiny.model, tiny.tokenizer, token_budget=1).generate([r])[0] for r in requests]
    reversed_order = Evaluator(tiny.model, tiny.tokenizer).generate(requests[::-1])[::-1]
    assert together == alone == reversed_order
    assert all("\n" not in text for text in together[:4])


def test_generation_stops_at_stop_strings(smollm2: Any) -> None:
    from editguard.evaluator import GenerationRequest

    prompt = "Question: What is the capital of France?\nAnswer: Paris\n\nQuestion: What is the capital of Italy?\nAnswer:"
    (answer,) = Evaluator(smollm2.model, smollm2.tokenizer).generate([GenerationRequest(prompt, 12, ("\n",))])
    assert answer.strip() == "Rome"
