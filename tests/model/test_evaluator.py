from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from editguard.evaluator import Evaluator, GenerationRequest, LoglikelihoodRequest

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


# ----------------------------------------------------------------------------- exactness across batch sizes and orders

BATCH_SIZES = (1, 8, 32)
CHOICES = [" positive", " negative", " it is not", " a river flows north", " no"]
examples = st.lists(st.tuples(texts, st.lists(st.sampled_from(CHOICES), min_size=2, max_size=4, unique=True)), min_size=1, max_size=10)


def _choice_requests(items: list) -> list[LoglikelihoodRequest]:
    return [LoglikelihoodRequest(context, choice) for context, choices in items for choice in choices]


def _predictions(items: list, scores: list[float]) -> list[int]:
    flat = iter(scores)
    picked = []
    for _, choices in items:
        values = [next(flat) for _ in choices]
        picked.append(max(range(len(values)), key=lambda i: (values[i], -i)))
    return picked


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(examples, st.randoms(use_true_random=False))
def test_choices_agree_for_batch_sizes_1_8_32_and_any_order(tiny: Any, items: list, rng: Any) -> None:
    """Shared-context scoring: same log-likelihoods (1e-4) and the same chosen answers, whatever the batching."""
    requests = _choice_requests(items)
    runs = {size: Evaluator(tiny.model, tiny.tokenizer, max_batch=size).loglikelihood(requests) for size in BATCH_SIZES}
    order = list(range(len(requests)))
    rng.shuffle(order)
    shuffled = Evaluator(tiny.model, tiny.tokenizer, max_batch=8).loglikelihood([requests[i] for i in order])
    unshuffled = [0.0] * len(requests)
    for position, index in enumerate(order):
        unshuffled[index] = shuffled[position]
    reference = [_reference(tiny.model, tiny.tokenizer, request) for request in requests]
    for scores in [*runs.values(), unshuffled]:
        assert max(abs(a - b) for a, b in zip(scores, reference)) < 1e-4
        assert _predictions(items, scores) == _predictions(items, reference)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(texts, min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_generations_agree_for_batch_sizes_1_8_32_and_any_order(tiny: Any, prompts: list[str], rng: Any) -> None:
    from editguard.evaluator import GenerationRequest

    requests = [GenerationRequest(prompt, 5, ("\n", ".")) for prompt in prompts]
    runs = [Evaluator(tiny.model, tiny.tokenizer, max_batch=size).generate(requests) for size in BATCH_SIZES]
    order = list(range(len(requests)))
    rng.shuffle(order)
    shuffled = Evaluator(tiny.model, tiny.tokenizer, max_batch=8).generate([requests[i] for i in order])
    unshuffled = [""] * len(requests)
    for position, index in enumerate(order):
        unshuffled[index] = shuffled[position]
    assert runs[0] == runs[1] == runs[2] == unshuffled


@pytest.mark.parametrize("ability", ["closed_qa", "dialogue", "open_qa"])  # the channel form; multi-token choices; generation
def test_embedded_default_is_exact_across_batch_sizes_and_orders(smollm2: Any, ability: str) -> None:
    """One ability of each kind on the real model: identical outcomes, log-likelihoods within 1e-4."""
    import random

    from editguard.stages.examples import sample
    from editguard.stages.scoring import score_examples
    from editguard.tasks import get_task
    from editguard.tasks.sources import load_records, parse_data_source

    task = get_task(ability, "default")
    chosen = sample(task.examples(load_records(ability, parse_data_source("probe"))), 8)
    runs = [score_examples(task, chosen, Evaluator(smollm2.model, smollm2.tokenizer, max_batch=size)) for size in BATCH_SIZES]
    shuffled = list(chosen)
    random.Random(0).shuffle(shuffled)
    runs.append(score_examples(task, shuffled, Evaluator(smollm2.model, smollm2.tokenizer, max_batch=8)))
    outcomes = [{key: result.outcome for key, result in run.items()} for run in runs]
    assert outcomes[0] == outcomes[1] == outcomes[2] == outcomes[3]
    if task.kind == "choice":
        requests = [LoglikelihoodRequest(context, continuation) for e in chosen for context, continuation in e.pairs]
        by_size = [Evaluator(smollm2.model, smollm2.tokenizer, max_batch=size).loglikelihood(requests) for size in BATCH_SIZES]
        assert max(abs(a - b) for other in by_size[1:] for a, b in zip(by_size[0], other)) < 1e-4


# ----------------------------------------------------------------------------- shared prefixes

DEMONSTRATIONS = (
    "Answer with one word.\nthe film was great -> yes\na river flows north -> no\nParis the film awful -> no\n"
)  # a few-shot block every request starts with: far more than MIN_SHARED_PREFIX tokens


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(examples, st.sampled_from(BATCH_SIZES), st.randoms(use_true_random=False))
def test_a_shared_prefix_encoded_once_gives_the_same_scores(tiny: Any, items: list, size: int, rng: Any) -> None:
    """Few-shot contexts: the demonstrations' cache lent to every batch scores as if each request ran alone."""
    from editguard.evaluator import MIN_SHARED_PREFIX, shared_prefix_length

    items = [(DEMONSTRATIONS + context, choices) for context, choices in items]
    requests = _choice_requests(items)
    rows = [tuple(tiny.tokenizer(request.context)["input_ids"]) for request in requests]
    assert shared_prefix_length(rows) >= MIN_SHARED_PREFIX  # the shared path is the one under test
    order = list(range(len(requests)))
    rng.shuffle(order)
    shuffled = Evaluator(tiny.model, tiny.tokenizer, max_batch=size).loglikelihood([requests[i] for i in order])
    reference = [_reference(tiny.model, tiny.tokenizer, request) for request in requests]
    for position, index in enumerate(order):
        assert abs(shuffled[position] - reference[index]) < 1e-4


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(texts, texts), min_size=1, max_size=8), examples, st.sampled_from(BATCH_SIZES), st.booleans())
def test_one_continuation_contexts_in_one_pass_score_as_if_alone(
    tiny: Any, texts_after: list, items: list, size: int, few_shot: bool
) -> None:
    """A context with a single continuation (a text's perplexity, the channel form) runs context and continuation
    as one row; mixed in one call with multi-choice contexts, behind a shared prefix or not, each scores as alone."""
    opening = DEMONSTRATIONS if few_shot else ""
    alone = [LoglikelihoodRequest(opening + context, " " + text) for context, text in texts_after]
    requests = alone + _choice_requests([(opening + context, choices) for context, choices in items])
    scores = Evaluator(tiny.model, tiny.tokenizer, max_batch=size).loglikelihood(requests)
    for request, score in zip(requests, scores):
        assert abs(score - _reference(tiny.model, tiny.tokenizer, request)) < 1e-4


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(texts, min_size=1, max_size=10), st.sampled_from(BATCH_SIZES))
def test_a_shared_prefix_encoded_once_gives_the_same_generations(tiny: Any, prompts: list[str], size: int) -> None:
    from editguard.evaluator import GenerationRequest

    requests = [GenerationRequest(DEMONSTRATIONS + prompt, 5, ("\n", ".")) for prompt in prompts]
    shared = Evaluator(tiny.model, tiny.tokenizer, max_batch=size).generate(requests)
    alone = [Evaluator(tiny.model, tiny.tokenizer, share_prefix=False).generate([request])[0] for request in requests]
    assert shared == alone


def _two_templates(prompts: list[str]) -> list[str]:
    """Each prompt under two few-shot templates that part after their first line, as ner's entity types do."""
    blocks = [f"Answer with one word.\nKind: {kind}\n" + DEMONSTRATIONS.replace("->", f"({kind}) ->") for kind in ("people", "places")]
    return [block + prompt for block in blocks for prompt in prompts]


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(texts, min_size=8, max_size=12), st.sampled_from(BATCH_SIZES), st.sampled_from([" yes", " no it is not"]))
def test_prefix_clusters_score_and_generate_as_if_alone(tiny: Any, prompts: list[str], size: int, answer: str) -> None:
    """Prompts of two templates: each template's demonstrations encoded once for its own prompts, with the scores
    and the outputs of every prompt run alone."""
    from editguard.evaluator import GenerationRequest, prefix_clusters

    full = _two_templates(prompts)
    assert len(prefix_clusters([tiny.tokenizer(prompt)["input_ids"] for prompt in full])) == 2  # the clustered path is under test
    scored = Evaluator(tiny.model, tiny.tokenizer, max_batch=size).loglikelihood([LoglikelihoodRequest(p, answer) for p in full])
    for prompt, score in zip(full, scored):
        assert abs(score - _reference(tiny.model, tiny.tokenizer, LoglikelihoodRequest(prompt, answer))) < 1e-4
    requests = [GenerationRequest(prompt, 5, ("\n", ".")) for prompt in full]
    clustered = Evaluator(tiny.model, tiny.tokenizer, max_batch=size).generate(requests)
    assert clustered == Evaluator(tiny.model, tiny.tokenizer, share_prefix=False).generate(requests)


@pytest.mark.parametrize("ability", ["nli", "ner"])  # two demonstrations each: log-likelihood; generation
def test_embedded_default_few_shot_outcomes_equal_the_unshared_ones(smollm2: Any, ability: str) -> None:
    """The probe sets' demonstrations encoded once: the same outcomes (and outputs) as encoding them per example."""
    from editguard.stages.examples import sample
    from editguard.stages.scoring import score_examples
    from editguard.tasks import get_task
    from editguard.tasks.sources import load_records, parse_data_source

    task = get_task(ability, "default")
    chosen = sample(task.examples(load_records(ability, parse_data_source("probe"))), 10)
    shared, unshared = (
        score_examples(task, chosen, Evaluator(smollm2.model, smollm2.tokenizer, share_prefix=share)) for share in (True, False)
    )
    assert {key: (r.outcome, r.parsed) for key, r in shared.items()} == {key: (r.outcome, r.parsed) for key, r in unshared.items()}


# ----------------------------------------------------------------------------- greedy decoding without generate()

stops = st.lists(st.sampled_from(["\n", ".", " the", "yes", "ch", "zz"]), max_size=2).map(tuple)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(texts, st.integers(1, 12), stops), min_size=1, max_size=10), st.sampled_from(BATCH_SIZES), st.booleans())
def test_own_decoding_makes_what_generate_makes(tiny: Any, items: list, size: int, few_shot: bool) -> None:
    """Rows that stop early leave the batch; every output equals model.generate's, shared prefix or not."""
    from editguard.evaluator import GenerationRequest

    requests = [GenerationRequest((DEMONSTRATIONS if few_shot else "") + prompt, limit, stop) for prompt, limit, stop in items]
    own = Evaluator(tiny.model, tiny.tokenizer, max_batch=size).generate(requests)
    reference = Evaluator(tiny.model, tiny.tokenizer, max_batch=size, own_decoding=False).generate(requests)
    assert own == reference


few_words = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(few_words, min_size=2, max_size=8), st.lists(few_words, min_size=2, max_size=8), st.booleans())
def test_prompts_encoded_in_chunks_of_like_width_decode_as_one_batch(tiny: Any, short: list, long: list, few_shot: bool) -> None:
    """Short and long prompts in one generation batch: encoded in chunks of like width, their caches merged, every
    output equals model.generate's."""
    from editguard.evaluator import GenerationRequest

    opening = DEMONSTRATIONS if few_shot else ""
    prompts = [opening + text for text in short] + [opening + " ".join([text] * 24) for text in long]
    requests = [GenerationRequest(prompt, 6, (".",)) for prompt in prompts]
    chunked = Evaluator(tiny.model, tiny.tokenizer, token_budget=1024, max_batch=32)  # one batch, cut where padding costs
    chunks: list[int] = []  # per batch: how many chunks its prompts were encoded in
    original = chunked._least_padded

    def counting(*args: Any) -> Any:
        cut = list(original(*args))
        chunks.append(len(cut))
        return iter(cut)

    chunked._least_padded = counting  # type: ignore[method-assign]
    assert chunked.generate(requests) == Evaluator(tiny.model, tiny.tokenizer, own_decoding=False).generate(requests)
    assert max(chunks) > 1  # the merged path is the one under test


def test_finished_rows_leave_the_batch(tiny: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch whose rows stop at different steps runs its later steps on the rows still decoding."""
    from editguard.evaluator import GenerationRequest

    evaluator = Evaluator(tiny.model, tiny.tokenizer)
    rows: list[int] = []
    forward = evaluator._forward
    monkeypatch.setattr(evaluator, "_forward", lambda input_ids, *a, **k: rows.append(input_ids.shape[0]) or forward(input_ids, *a, **k))
    # The tiny model repeats "cht" after "the film was": a stop string of "cht" ends that row at its first token.
    requests = [GenerationRequest("the film was", 30, ("cht",))] * 6 + [GenerationRequest("a river flows north and", 30, ("cht",))]
    outputs = evaluator.generate(requests)
    assert outputs == Evaluator(tiny.model, tiny.tokenizer, own_decoding=False).generate(requests)
    assert rows[0] == 7 and rows[-1] == 1 and len(rows) == 30  # the first step decodes all 7 rows, the rest the long one


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(WORDS), st.booleans()), min_size=4, max_size=12), st.sampled_from([2, 4]), st.booleans())
def test_later_prompts_join_the_rows_still_decoding(tiny: Any, items: list, size: int, few_shot: bool) -> None:
    """More prompts than one batch holds, some finishing at their first token and some running to the limit: the
    next prompts are encoded as rows finish and decode beside the rows still running (their caches joined, the
    masked columns that all rows share dropped later), and every output equals ``model.generate``'s."""
    from unittest import mock

    from editguard.evaluator import GenerationRequest, _Rows

    # The tiny model says "cht" right after "the <word> was" and echoes the last word after the demonstrations:
    # those rows finish at their first token, "a river <word>" and "<word> river" run to the limit.
    opening, quick, slow, stop = (DEMONSTRATIONS, "{} yes", "{} river", " yes") if few_shot else ("", "the {} was", "a river {}", "cht")
    prompts = [quick.format("film"), slow.format("film")] * size + [(quick if fast else slow).format(word) for word, fast in items]
    requests = [GenerationRequest(opening + prompt, 12, (stop,)) for prompt in prompts]
    joins, trims, admitted = [], [], set()
    stacked, select = _Rows.stacked, _Rows.select

    def counting_join(parts: list, shared: int) -> Any:
        if admitted & {prompt.index for prompt in parts[0].prompts}:  # rows of an earlier admission, still decoding
            joins.append([len(part.prompts) for part in parts])
        admitted.update(prompt.index for part in parts for prompt in part.prompts)
        return stacked(parts, shared)

    def counting_select(rows: Any, slots: list[int], shared: int) -> Any:
        kept = select(rows, slots, shared)
        trims.append(rows.attention.shape[1] - kept.attention.shape[1])
        return kept

    evaluator = Evaluator(tiny.model, tiny.tokenizer, max_batch=size)
    with mock.patch.object(_Rows, "stacked", counting_join), mock.patch.object(_Rows, "select", counting_select):
        outputs = evaluator.generate(requests)
    assert outputs == Evaluator(tiny.model, tiny.tokenizer, max_batch=size, own_decoding=False).generate(requests)
    assert joins  # the path under test: rows joined to rows still decoding


def test_a_row_joined_late_drops_its_masked_columns_once_the_older_rows_finish(tiny: Any) -> None:
    """After the demonstrations the tiny model says " river Fal Fal ..." after "film river" and " yes yes ..."
    after "film yes".  With the stop string " Fal", two rows a batch and 12 tokens a row: "film river" finishes
    at its second token, so the second "film yes" joins the first one step behind it (one masked column); when
    the first finishes, the third joins ten steps behind the second, and that column is dropped (every row has
    it); when the second finishes, the third's ten masked columns are dropped.  Every output equals
    ``model.generate``'s."""
    from unittest import mock

    from editguard.evaluator import GenerationRequest, _Rows

    requests = [GenerationRequest(DEMONSTRATIONS + prompt, 12, (" Fal",)) for prompt in ["film river", "film yes", "film yes", "film yes"]]
    widths: list[tuple[int, int]] = []  # (columns before, after) of every selection of rows
    select = _Rows.select

    def recording(rows: Any, slots: list[int], shared: int) -> Any:
        kept = select(rows, slots, shared)
        widths.append((rows.attention.shape[1], kept.attention.shape[1]))
        return kept

    with mock.patch.object(_Rows, "select", recording):
        outputs = Evaluator(tiny.model, tiny.tokenizer, max_batch=2).generate(requests)
    assert outputs == Evaluator(tiny.model, tiny.tokenizer, own_decoding=False).generate(requests)
    assert outputs[0] == " river" and all(output.startswith(" yes yes") for output in outputs[1:])
    assert [before - after for before, after in widths] == [0, 1, 10]  # columns dropped at each selection


@pytest.mark.parametrize("in_prompt_pass", [True, False], ids=["prompt-pass", "decoding-step"])
def test_out_of_memory_while_generating_halves_the_batch_and_finishes_every_row(tiny: Any, in_prompt_pass: bool) -> None:
    """An out-of-memory error (CUDA's, raised here on a CPU) in a prompt pass or a decoding step: the token budget
    and the row cap are halved, every row that had not finished starts again, and every output is still
    ``model.generate``'s."""
    import torch

    from editguard.evaluator import GenerationRequest

    requests = [GenerationRequest(text, 8, (".",)) for text in ["the film was", "a river flows north and", "Paris is", "yes no"] * 3]
    evaluator = Evaluator(tiny.model, tiny.tokenizer, max_batch=8)
    forward, raised = evaluator._forward, []

    def failing_once(input_ids: Any, *args: Any, **kwargs: Any) -> Any:
        if not raised and input_ids.shape[0] > 2 and (input_ids.shape[1] > 1) == in_prompt_pass:
            raised.append(input_ids.shape[0])
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(input_ids, *args, **kwargs)

    evaluator._forward = failing_once  # type: ignore[method-assign]
    outputs = evaluator.generate(requests)
    assert raised and evaluator.max_batch == 4 and evaluator.token_budget == Evaluator(tiny.model, tiny.tokenizer).token_budget // 2
    assert outputs == Evaluator(tiny.model, tiny.tokenizer, own_decoding=False).generate(requests)


def test_a_generation_config_beyond_greedy_argmax_is_left_to_generate(tiny: Any) -> None:
    """A repetition penalty in the model's generation config is honoured: decoding falls back to generate()."""
    import copy

    from editguard.evaluator import GenerationRequest

    model = copy.deepcopy(tiny.model)
    model.generation_config.repetition_penalty = 5.0
    requests = [GenerationRequest("the film was", 12), GenerationRequest("Paris", 12)]
    penalised = Evaluator(model, tiny.tokenizer).generate(requests)
    assert not Evaluator(model, tiny.tokenizer)._plain_greedy
    assert penalised == Evaluator(model, tiny.tokenizer, own_decoding=False).generate(requests)
    assert penalised != Evaluator(tiny.model, tiny.tokenizer).generate(requests)  # the penalty changed the answers


@pytest.mark.parametrize("ability", ["ner", "reasoning", "summarization"])  # few-shot, long answers, chat template
def test_embedded_default_generations_equal_generate_on_the_probe_sets(smollm2: Any, ability: str) -> None:
    """The real model, each generation ability's prompts (few-shot, chat template, stop strings): the same texts."""
    from editguard.evaluator import GenerationRequest
    from editguard.stages.examples import sample
    from editguard.stages.scoring import render_prompt
    from editguard.tasks import get_task
    from editguard.tasks.sources import load_records, parse_data_source

    task = get_task(ability, "default")
    chosen = sample(task.examples(load_records(ability, parse_data_source("probe"))), 4)
    chat = task.chat and bool(getattr(smollm2.tokenizer, "chat_template", None))
    requests = [
        GenerationRequest(render_prompt(prompt, smollm2.tokenizer, chat), task.max_new_tokens, task.stop, add_special_tokens=not chat)
        for example in chosen
        for prompt in example.prompts
    ]  # fmt: skip
    own = Evaluator(smollm2.model, smollm2.tokenizer).generate(requests)
    assert own == Evaluator(smollm2.model, smollm2.tokenizer, own_decoding=False).generate(requests)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests, st.lists(st.tuples(texts, texts), max_size=4), st.sampled_from([1, 3, 512]))
def test_the_head_over_many_rows_scores_each_as_alone(
    tiny: Any, monkeypatch: pytest.MonkeyPatch, pairs: list, texts_after: list, positions: int
) -> None:
    """The vocabulary head runs over several rows' read positions at once (``HEAD_POSITIONS`` per call); one
    position per call, a few, or the default, each request scores as it does alone."""
    monkeypatch.setattr("editguard.evaluator.HEAD_POSITIONS", positions)
    batch = [LoglikelihoodRequest(context, continuation) for context, continuation in pairs]
    batch += [LoglikelihoodRequest(context, " " + text) for context, text in texts_after]  # one pass, many positions
    scores = Evaluator(tiny.model, tiny.tokenizer).loglikelihood(batch)
    for request, score in zip(batch, scores):
        assert abs(score - _reference(tiny.model, tiny.tokenizer, request)) < 1e-4


@pytest.fixture(scope="module")
def tiny_grouped(tiny: Any) -> Any:
    """A seeded 4-layer Llama whose 4 query heads read 2 key/value heads (grouped-query attention, as SmolLM2's 9
    read 3), on the tiny GPT-2's tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(
        "llama", hidden_size=64, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
        vocab_size=len(tiny.tokenizer), attn_implementation="sdpa",
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return AutoModelForCausalLM.from_config(config).eval()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests, st.lists(st.tuples(texts, st.integers(1, 12), stops), min_size=1, max_size=8), st.sampled_from(BATCH_SIZES), st.booleans())
def test_grouped_query_attention_read_in_place_changes_no_score_or_output(
    tiny: Any, tiny_grouped: Any, pairs: list, items: list, size: int, few_shot: bool
) -> None:
    """On a grouped-query model the evaluator's passes read shared key/value heads in place (``_grouped_sdpa``):
    scores equal the plain forward pass's, outputs ``model.generate``'s (transformers' own attention, which copies
    the heads), and the model's attention implementation is left as it was."""
    from editguard.evaluator import GenerationRequest

    evaluator = Evaluator(tiny_grouped, tiny.tokenizer, max_batch=size)
    assert evaluator._shares_kv_heads and not Evaluator(tiny.model, tiny.tokenizer)._shares_kv_heads
    batch = [LoglikelihoodRequest(context, continuation) for context, continuation in pairs]
    for request, score in zip(batch, evaluator.loglikelihood(batch)):
        assert abs(score - _reference(tiny_grouped, tiny.tokenizer, request)) < 1e-4
    prompts = [GenerationRequest((DEMONSTRATIONS if few_shot else "") + prompt, limit, stop) for prompt, limit, stop in items]
    own = evaluator.generate(prompts)
    assert own == Evaluator(tiny_grouped, tiny.tokenizer, max_batch=size, own_decoding=False).generate(prompts)
    assert tiny_grouped.config._attn_implementation == "sdpa"


def test_on_cuda_the_default_batch_is_sized_by_the_free_memory(tiny: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The evaluator's defaults: on a CPU 4,096 tokens and 64 rows a pass; on CUDA (its device and free memory
    stood in for here: no GPU in CI) ``cuda_token_budget`` of the free memory for the model's config and dtype, and
    ``CUDA_MAX_BATCH`` rows.  An explicit budget or row cap wins on either."""
    import torch

    from editguard import evaluator as module

    cpu = Evaluator(tiny.model, tiny.tokenizer)
    assert (cpu.token_budget, cpu.max_batch) == (module.CPU_TOKEN_BUDGET, module.DEFAULT_MAX_BATCH)
    monkeypatch.setattr(module, "input_device", lambda model: torch.device("cuda", 0))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (3 * 2**30, 16 * 2**30))
    gpu = Evaluator(tiny.model, tiny.tokenizer)
    assert gpu.token_budget == module.cuda_token_budget(3 * 2**30, tiny.model.config, 4) > module.CPU_TOKEN_BUDGET
    assert gpu.max_batch == module.CUDA_MAX_BATCH
    assert (Evaluator(tiny.model, tiny.tokenizer, token_budget=2048, max_batch=8).token_budget, 8) == (2048, 8)


# ----------------------------------------------------------------------------- requests longer than the context


def _family_model(family: str, positions: int) -> Any:
    """A tiny model of ``family`` whose config names ``positions`` as its context (a learned table or rotary)."""
    import torch
    from transformers import AutoModelForCausalLM, GPTNeoConfig, LlamaConfig

    configs = {
        "gpt_neo": GPTNeoConfig(vocab_size=50257, hidden_size=32, num_layers=2, num_heads=2, attention_types=[[["global"], 2]],
                                max_position_embeddings=positions),
        "llama": LlamaConfig(vocab_size=50257, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                             max_position_embeddings=positions),
    }  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return AutoModelForCausalLM.from_config(configs[family]).eval()


@pytest.mark.parametrize("family", ["gpt_neo", "llama"])  # a learned position table that raised IndexError; rotary
def test_a_request_longer_than_the_context_is_cut_from_the_left_for_every_family(tiny: Any, family: str) -> None:
    model = _family_model(family, 32)
    evaluator = Evaluator(model, tiny.tokenizer)
    assert evaluator.context == 32
    long_context = " ".join(["the weather is fine today and"] * 12)  # about 72 tokens
    short = LoglikelihoodRequest("The capital of France is", " Paris")
    requests = [LoglikelihoodRequest(long_context, " tomorrow"), short]
    assert evaluator.truncated(requests) == [True, False]
    scores = evaluator.loglikelihood(requests)
    tokens = tiny.tokenizer(long_context)["input_ids"]
    kept = tiny.tokenizer.decode(tokens[len(tokens) - 32 :])  # 32 positions read: the context predicts the one-token continuation
    by_hand = Evaluator(model, tiny.tokenizer, context=10_000).loglikelihood([LoglikelihoodRequest(kept, " tomorrow"), short])
    assert scores == pytest.approx(by_hand, abs=1e-4)
    prompt = GenerationRequest(long_context, 6)
    assert evaluator.truncated([prompt]) == [True]
    (made,) = evaluator.generate([prompt])
    cut = tiny.tokenizer.decode(tokens[len(tokens) - 26 :])  # room for the 6 new tokens
    assert made == Evaluator(model, tiny.tokenizer, context=10_000).generate([GenerationRequest(cut, 6)])[0]


def test_a_continuation_longer_than_the_context_is_refused_in_one_sentence(tiny: Any) -> None:
    evaluator = Evaluator(tiny.model, tiny.tokenizer, context=8)
    with pytest.raises(ValueError, match=r"continuation .* is \d+ tokens, more than the model's context of 8"):
        evaluator.loglikelihood([LoglikelihoodRequest("A", " " + "word " * 20)])
