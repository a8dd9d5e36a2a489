"""The scoring stage: per-example results of the base model, or of the base plus a weight delta.

Results come from memory, then from the on-disk output cache (``outputs.py``), and only what neither
holds is scored, by the evaluator (``evaluator.py``), with the delta applied in place and reverted
exactly afterwards.  How an ability is scored depends on its kind: the log-likelihood of answer choices
(``score_choices``) or greedy generation and the task's scorer (``score_generations``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

from editguard.stages.examples import Examples, sample_order
from editguard.fingerprint import combine, library_versions
from editguard.metrics import ExampleResult, Score
from editguard.outputs import OutputCache
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
        self._checked: set[tuple[str, str]] = set()  # (url, served name) that showed they serve the right model
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
        from editguard.editing.delta import applied

        if self.settings.backend in ("engine", "vllm"):
            return self._through_engine(task, examples, delta)
        with applied(self.base.model, delta) if delta is not None else contextlib.nullcontext():
            return self._scorer(task, examples, self.evaluator())

    def _through_engine(self, task: Task, examples: list[Example], delta: Any) -> dict[str, ExampleResult]:
        """Scored by the engine (``editguard.engine``): the served base, or the served edited model, once it has shown
        it serves the model it stands for (``_check_served``).  An engine that cannot be reached or answers nonsense
        is a GateProblem (could not check), never a score."""
        from editguard.engine import EngineBackend, EngineError
        from editguard.errors import GateProblem

        try:
            backend = EngineBackend(self.endpoint(delta), self.base.tokenizer)
            self._check_served(backend, delta)
            return self._scorer(task, examples, backend)
        except EngineError as error:
            from editguard.engine_server import ServerError

            died = self.engine.died() if self.settings.backend == "vllm" and not isinstance(error, ServerError) else None
            raise GateProblem(died or str(error)) from None

    def endpoint(self, delta: Any = None) -> Any:
        """Where the requests of the base (``delta=None``) or of base + ``delta`` go: the server editguard started
        (backend vllm), or the running engine's served base (as given, or the first model it lists) or edited model."""
        from editguard.engine import Endpoint

        if self.settings.backend == "vllm":
            return self.engine.endpoint(delta)
        settings = self.settings
        assert settings.endpoint is not None  # settings refuse backend "engine" without one
        if delta is not None:
            return Endpoint(settings.edited_endpoint or settings.endpoint, str(settings.served_edited))
        if settings.served_base is not None:
            return Endpoint(settings.endpoint, settings.served_base)
        return Endpoint(settings.endpoint, self._first_served)

    @cached_property
    def engine(self) -> Any:
        """The vLLM server(s) this run starts (backend vllm); ``close`` stops them."""
        from editguard.engine_server import ManagedEngine

        workdir = self.settings.cache_dir / "engine"
        return ManagedEngine(self.settings.engine_python, lambda: self.base, workdir, extra_args=ManagedEngine.parse_args(self.settings.engine_args))

    def close(self) -> None:
        """Stop what this stage started (the vLLM servers of backend vllm)."""
        if "engine" in self.__dict__:
            self.engine.close()

    def _check_served(self, backend: Any, delta: Any) -> None:
        """The served model must be the one it stands for: its log-likelihoods of a few fixed sentences (and of the
        edit's own targets, where an edit would show) equal the in-process model's, to ``SERVED_TOLERANCE`` nats per
        token.  Checked once per served name; a GateProblem naming the endpoint and the served name otherwise."""
        from editguard.editing.delta import applied
        from editguard.errors import GateProblem
        from editguard.evaluator import Evaluator

        endpoint = backend.endpoint
        if (endpoint.url, endpoint.model) in self._checked:
            return
        requests = identity_requests(self.identity_edits())
        served = backend.loglikelihood_with_lengths(requests)
        with applied(self.base.model, delta) if delta is not None else contextlib.nullcontext():
            local = Evaluator(self.base.model, self.base.tokenizer).loglikelihood_with_lengths(requests)
        gap = max(abs(a / n - b / n) for (a, n), (b, _) in zip(served, local))
        if gap > SERVED_TOLERANCE:
            what = "the base model" if delta is None else "the edited model"
            if self.settings.backend == "vllm":  # editguard chose what to serve: its engine or its export is at fault
                fix = f"look for the cause in the server's log under {self.settings.cache_dir / 'engine'}"
            else:
                fix = f"serve that model, or name it with {'--editguard-served-base' if delta is None else '--editguard-served-edited'}"
            raise GateProblem(
                f"the engine at {endpoint.url} serves {endpoint.model!r}, which is not {what} editguard gates: on {len(requests)} "
                f"check sentences its log-probabilities differ from {self.settings.model!r}{'' if delta is None else ' with the edit'} "
                f"by up to {gap:.2f} nats per token (at most {SERVED_TOLERANCE} is rounding); {fix}"
            )
        self._checked.add((endpoint.url, endpoint.model))

    @cached_property
    def _first_served(self) -> str:
        from editguard.engine import Endpoint, EngineError
        from editguard.errors import GateProblem

        try:
            served = Endpoint(str(self.settings.endpoint), "").served_models()
        except EngineError as error:
            raise GateProblem(str(error)) from None
        if not served:
            raise GateProblem(f"the engine at {self.settings.endpoint} serves no model; start it with the base model")
        return served[0]

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
        again = score_examples(task, shuffled, self.evaluator(max_batch=1))
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
        from editguard.evaluator import EVALUATOR_VERSION

        versions = library_versions()
        if self.settings.backend == "engine":  # the engine's own numerics: its results are kept apart from in-process ones
            from editguard.engine import ENGINE_VERSION

            settings = self.settings
            served = {"base": settings.served_base, "edited": settings.served_edited, "url": settings.endpoint, "edited_url": settings.edited_endpoint}
            return {"backend": "engine", "version": ENGINE_VERSION, "served": served, "transformers": versions.get("transformers")}
        if self.settings.backend == "vllm":  # the model is the in-process one (its fingerprint keys the results)
            from editguard.engine import ENGINE_VERSION

            engine = {"python": str(self.settings.engine_python), "args": self.settings.engine_args, "dtype": str(self.base.model.dtype)}
            return {"backend": "vllm", "version": ENGINE_VERSION, "engine": engine, "transformers": versions.get("transformers")}
        return {"version": EVALUATOR_VERSION, **numerics(self.base)}

    def evaluator(self, max_batch: int | None = None) -> Any:
        from editguard.evaluator import Evaluator

        batch = max_batch or self.settings.batch_size  # None: the device's default (default_max_batch)
        progress = self.progress and max_batch is None
        return Evaluator(self.base.model, self.base.tokenizer, max_batch=batch, progress=progress)


SERVED_TOLERANCE = 0.1  # nats per token: float32 engines agree to ~1e-4, bfloat16 ones to a few hundredths
_IDENTITY_SENTENCES = (
    ("The quick brown fox", " jumps over the lazy dog."),
    ("Water boils at", " one hundred degrees Celsius at sea level."),
    ("In 1969, two astronauts", " walked on the surface of the Moon for the first time."),
    ("She opened the window", " and let the cool morning air into the quiet room."),
)


def identity_requests(edits: Sequence[tuple[str, str]]) -> list[Any]:
    """Fixed sentences, then each edit's prompt with its new target: where a different or wrongly edited model shows."""
    from editguard.evaluator import LoglikelihoodRequest

    pairs = list(_IDENTITY_SENTENCES) + [(prompt, " " + target.strip()) for prompt, target in edits]
    return [LoglikelihoodRequest(context, continuation) for context, continuation in pairs]


def _model(delta: Any) -> str:
    return "base model" if delta is None else "edited model"


# ----------------------------------------------------------------------------- scoring by kind


def numerics(base: Any) -> dict[str, Any]:
    """What decides an in-process model's numbers beside its weights: dtype, device kind, torch and transformers."""
    versions = library_versions()
    return {
        "dtype": str(base.model.dtype),
        "device": str(base.device).partition(":")[0],
        "torch": versions.get("torch"),
        "transformers": versions.get("transformers"),
    }


def score_examples(task: Task, examples: Sequence[Example], evaluator: Any) -> dict[str, ExampleResult]:
    """Score ``examples`` of ``task`` with ``evaluator``, by the task's kind."""
    return SCORERS[task.kind](task, examples, evaluator)


def score_choices(task: Task, examples: Sequence[Example], evaluator: Any) -> dict[str, ExampleResult]:
    """Pick the choice with the highest log-likelihood (per token when length-normalised): of its continuation
    after the context, or in the channel form of the one text after its context (``Example.pairs``)."""
    from editguard.evaluator import LoglikelihoodRequest
    from editguard.scorers import reciprocal_rank

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
