"""The scoring stage: per-example results of the base model, or of the base plus a weight delta.

Results come from memory, then from the on-disk output cache (``outputs.py``), keyed by the model's identity, the
task and the backend's identity, and only what neither holds is scored, by the run's backend (``backends``: in
process, with the delta applied in place and reverted exactly afterwards, or an engine).  How an ability is scored
depends on its kind: the log-likelihood of answer choices (``score_choices``), greedy generation and the task's
scorer (``score_generations``), or a text's perplexity (``score_perplexity``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

from editguard.stages.examples import Examples, sample_order
from editguard.fingerprint import combine
from editguard.statistics.metrics import ExampleResult, Score
from editguard.backends.outputs import OutputCache
from editguard.progress import reporter
from editguard.settings import Settings
from editguard.tasks import Example, Task


class Scoring:
    """Scores of one base model and the deltas applied to it; ``base`` loads the model on first use."""

    def __init__(
        self,
        settings: Settings,
        examples: Examples,
        base: Callable[[], Any],
        *,
        progress: bool = True,
        scorer: Callable[[Task, Sequence[Example], Any], dict[str, ExampleResult]] | None = None,
        identity_edits: Callable[[], Sequence[tuple[str, str]]] = tuple,
    ):
        self.settings = settings
        self.examples = examples
        self._base = base
        self.progress = progress
        self._scorer = scorer or score_examples  # how examples are scored with an evaluator (a test may pass its own)
        self.identity_edits = identity_edits  # (prompt, new target) of a few edits: where a served edit shows
        self._results: dict[tuple[str, str], dict[str, ExampleResult]] = {}  # (ability, model) -> results
        self._from_cache: dict[tuple[str, str], set[str]] = {}
        self.cached_counts: dict[tuple[str, bool], int] = {}  # (ability, edited) -> results the cache served
        self._told: set[tuple[str, str]] = set()  # (ability, model) whose results the progress log has mentioned

    @property
    def base(self) -> Any:
        return self._base()

    def score(self, task: Task, examples: Sequence[Example], delta: Any = None) -> Score:
        """The score of the base (``delta=None``) or of base + ``delta`` on ``examples``."""
        return Score.from_results(task.name, task.metric, self.results(task, examples, delta))

    def results(self, task: Task, examples: Sequence[Example], delta: Any = None) -> dict[str, ExampleResult]:
        """Per-example results, from memory, then the output cache, scoring only what neither holds."""
        material = self.material(task, delta)
        known = self._known(task, material)
        key = (task.name, material["model"])
        served = self._from_cache[key] & {example.id for example in examples}
        counted = (task.name, delta is not None)
        self.cached_counts[counted] = max(self.cached_counts.get(counted, 0), len(served))
        missing = [example for example in examples if example.id not in known]
        if missing:
            started = time.perf_counter()
            scored = self._score_now(task, missing, delta)
            known.update(scored)
            self.outputs.store(material, scored)
            cached = f" (and {len(served)} read from the output cache)" if served else ""
            reporter().done(f"scored {task.name} on the {_model(delta)}: {len(missing)} examples{cached}", started)
        elif served and key not in self._told:
            reporter().line(f"scored {task.name} on the {_model(delta)}: {len(served)} examples read from the output cache")
        self._told.add(key)
        return {example.id: known[example.id] for example in examples}

    def _known(self, task: Task, material: dict[str, Any]) -> dict[str, ExampleResult]:
        key = (task.name, material["model"])
        if key not in self._results:
            self._results[key] = self.outputs.load(material)
            self._from_cache[key] = set(self._results[key])
        return self._results[key]

    def _score_now(self, task: Task, examples: list[Example], delta: Any) -> dict[str, ExampleResult]:
        """Score ``examples`` with the run's backend of base + ``delta``; a backend that cannot score is could not check."""
        from editguard.backends import BackendError
        from editguard.errors import GateProblem

        try:
            return self._scorer(task, examples, self.backends.backend(delta))
        except BackendError as error:
            raise GateProblem(self.backends.explain(error)) from None

    @cached_property
    def backends(self) -> Any:
        """The run's backends (``backends.protocol.Backends``) of the kind ``--editguard-backend`` names."""
        from editguard.backends import backend_kind

        return backend_kind(self.settings.backend).open(self.settings, self._base, self.identity_edits, self.progress)

    def close(self) -> None:
        """Stop what the run's backends started (backend vllm's servers)."""
        if "backends" in self.__dict__:
            self.backends.close()

    def truncated_count(self, task: Task, examples: Sequence[Example], delta: Any = None) -> int:
        """How many of ``examples`` already scored had a request cut to the model's context (``Evaluator.truncated``)."""
        return sum(result.truncated for result in self.known(task, examples, delta).values())

    def unparsed_rate(self, task: Task, examples: Sequence[Example], delta: Any = None) -> float:
        """Share of ``examples`` already scored whose output could not be parsed."""
        results = self.known(task, examples, delta)
        return sum(not result.parsed for result in results.values()) / len(results) if results else 0.0

    def known(self, task: Task, examples: Sequence[Example], delta: Any = None) -> dict[str, ExampleResult]:
        """The results of ``examples`` already scored in this run (early stopping may have used fewer); scores nothing."""
        results = self._results.get((task.name, self.material(task, delta)["model"]), {})
        return {example.id: results[example.id] for example in examples if example.id in results}

    def noise_floor(self, task: Task, examples: Sequence[Example]) -> int:
        """Examples whose base outcome changes when re-scored with batch size 1 in a shuffled order (should be 0)."""
        reference = self.results(task, examples)
        shuffled = sorted(examples, key=sample_order)
        again = score_examples(task, shuffled, self.backends.backend(None, max_batch=1))
        return sum(again[e.id].outcome != reference[e.id].outcome for e in examples)

    @cached_property
    def outputs(self) -> OutputCache:
        return OutputCache(self.settings.cache_dir, read=not self.settings.rescore)

    def material(self, task: Task, delta: Any = None) -> dict[str, Any]:
        """What decides a model's results on an ability: the output cache's key material."""
        base = self.base.key  # weights, tokenizer and computation config
        return {
            "ability": task.name,
            "protocol": task.protocol,
            "task": self.examples.fingerprint(task),
            "model": base if delta is None else combine(base, delta.fingerprint),
            "evaluator": self.evaluator_settings,
        }

    @cached_property
    def evaluator_settings(self) -> dict[str, Any]:
        """What decides the results beside the model and the task: the backend's identity."""
        return self.backends.identity()


def _model(delta: Any) -> str:
    return "base model" if delta is None else "edited model"


# ----------------------------------------------------------------------------- scoring by kind


def score_examples(task: Task, examples: Sequence[Example], evaluator: Any) -> dict[str, ExampleResult]:
    """Score ``examples`` of ``task`` with ``evaluator``, by the task's kind."""
    return SCORERS[task.kind](task, examples, evaluator)


def score_choices(task: Task, examples: Sequence[Example], evaluator: Any) -> dict[str, ExampleResult]:
    """Pick the choice with the highest log-likelihood (per token when length-normalised): of its continuation
    after the context, or in the channel form of the one text after its context (``Example.pairs``)."""
    from editguard.evaluator import LoglikelihoodRequest
    from editguard.tasks.scorers import reciprocal_rank

    requests = [LoglikelihoodRequest(context, continuation) for e in examples for context, continuation in e.pairs]
    scored = iter(evaluator.loglikelihood_with_lengths(requests))
    cut = iter(evaluator.truncated(requests))
    results = {}
    for example in examples:
        pairs = [next(scored) for _ in example.pairs]
        truncated = any([next(cut) for _ in example.pairs])
        scores = [total / length if task.length_normalized else total for total, length in pairs]
        predicted = max(range(len(scores)), key=lambda index: (scores[index], -index))
        outcome = 1.0 if predicted == example.gold else 0.0
        rank = reciprocal_rank(scores, int(example.gold or 0))
        results[example.id] = ExampleResult(outcome, reciprocal_rank=rank, truncated=truncated)
    return results


def score_generations(task: Task, examples: Sequence[Example], evaluator: Any) -> dict[str, ExampleResult]:
    """Generate greedily for every prompt of every example, then let the task score the outputs."""
    from editguard.evaluator import GenerationRequest

    chat = task.chat and bool(getattr(evaluator.tokenizer, "chat_template", None))
    requests = [
        GenerationRequest(render_prompt(prompt, evaluator.tokenizer, chat), task.max_new_tokens, task.stop, not chat)
        for example in examples
        for prompt in example.prompts
    ]
    outputs = iter(evaluator.generate(requests))
    cut = iter(evaluator.truncated(requests))
    grouped = [[next(outputs) for _ in example.prompts] for example in examples]
    truncated = [any([next(cut) for _ in example.prompts]) for example in examples]
    scored = task.score_outputs(examples, grouped)
    return {
        example.id: ExampleResult(result.outcome, result.parsed, truncated=was_cut)
        for example, result, was_cut in zip(examples, scored, truncated)
    }


def score_perplexity(task: Task, examples: Sequence[Example], evaluator: Any) -> dict[str, ExampleResult]:
    """Each example's log-perplexity: the mean negative log-likelihood per token of its target after its prompt."""
    from editguard.evaluator import LoglikelihoodRequest

    requests = [LoglikelihoodRequest(example.prompt, str(example.target)) for example in examples]
    scored = evaluator.loglikelihood_with_lengths(requests)
    cut = evaluator.truncated(requests)
    return {
        example.id: ExampleResult(-total / length, truncated=was_cut) for example, (total, length), was_cut in zip(examples, scored, cut)
    }


SCORERS = {"choice": score_choices, "generate": score_generations, "perplexity": score_perplexity}


def render_prompt(prompt: str, tokenizer: Any, chat: bool) -> str:
    """The prompt as the model reads it: wrapped in its chat template when the task asks for one."""
    if not chat:
        return prompt
    messages = [{"role": "user", "content": prompt}]
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
