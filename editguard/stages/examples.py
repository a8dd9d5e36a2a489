"""The examples stage: which task stands for an ability, its data, the run's sample, and their fingerprints.

Data is loaded once per process and ability; the sample (``--editguard-limit``) is fixed and seeded,
stratified by label, so every run and every xdist worker gates the same examples.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from editguard.errors import GateProblem
from editguard.settings import Settings
from editguard.tasks import Example, Task, get_task

SAMPLE_SEED = "editguard-sample-v1"


def sample(examples: Sequence[Example], limit: int | None) -> list[Example]:
    """A fixed, seeded sample of ``limit`` examples, stratified by label, in the data's order.

    Each stratum keeps its share of the sample (largest remainders break ties in stratum order); within
    a stratum, examples are taken in the order of a hash of their id, so the sample does not depend on
    the order of the file, the run or the worker.
    """
    if limit is None or limit >= len(examples):
        return list(examples)
    strata: dict[str, list[Example]] = {}
    for example in examples:
        strata.setdefault(example.stratum, []).append(example)
    quotas = {key: limit * len(members) / len(examples) for key, members in sorted(strata.items())}
    counts = {key: int(quota) for key, quota in quotas.items()}
    by_remainder = sorted(quotas, key=lambda key: (-(quotas[key] - counts[key]), key))
    for key in by_remainder[: limit - sum(counts.values())]:
        counts[key] += 1
    chosen = {e.id for key, members in strata.items() for e in sorted(members, key=sample_order)[: counts[key]]}
    return [e for e in examples if e.id in chosen]


def sample_order(example: Example) -> str:
    """A seeded order of examples that depends only on their ids (sampling, early stopping, the noise floor)."""
    return hashlib.sha256(f"{SAMPLE_SEED}|{example.id}".encode()).hexdigest()


def _check_distinct_ids(ability: str, source: str, examples: Sequence[Example]) -> None:
    """Outcomes are kept by example id: records that share one would overwrite each other's (10 records, n=3)."""
    seen: dict[str, int] = {}
    for example in examples:
        seen[example.id] = seen.get(example.id, 0) + 1
    shared = sorted((key for key, count in seen.items() if count > 1), key=lambda key: (len(key), key))
    if shared:
        named = ", ".join(f"{key!r} ({seen[key]} records)" for key in shared[:5]) + (f" and {len(shared) - 5} more" if len(shared) > 5 else "")
        raise GateProblem(
            f"cannot load the {ability} data ({source}): records share the id {named}; each record needs its own "
            "id (its 'id' or 'idx' field), or leave the field out to number the records by position"
        )


class Examples:
    """Tasks, data and samples of one run (``protocol``, ``data`` and ``limit`` of the settings)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._loaded: dict[tuple[str, str], list[Example]] = {}

    def task(self, ability: str) -> Task:
        return get_task(ability, self.settings.protocol)

    def source(self, ability: str) -> str:
        """The data source of an ability as the user gave it (``probe`` unless ``--editguard-data`` says)."""
        return self.settings.data.get(ability, "probe")

    def all(self, task: Task) -> list[Example]:
        """Every example of the ability's data source, loaded once per process."""
        key = task.key
        if key not in self._loaded:
            self._loaded[key] = self._load(task)
        return self._loaded[key]

    def _load(self, task: Task) -> list[Example]:
        from editguard.tasks.sources import load_records, parse_data_source

        source = self.source(task.name)
        try:
            examples = task.examples(load_records(task.name, parse_data_source(source)))
        except (ValueError, OSError, ImportError) as error:  # schema, missing file, no `datasets`
            raise GateProblem(f"cannot load the {task.name} data ({source}): {error}") from None
        _check_distinct_ids(task.name, source, examples)
        return examples

    def sample(self, task: Task) -> list[Example]:
        """The run's examples of the ability: all, or the fixed sample of ``--editguard-limit``."""
        return sample(self.all(task), self.settings.limit)

    def fingerprint(self, task: Task) -> str:
        """Version, protocol, prompt and the full data (not the sample: a smaller sample reuses the baseline)."""
        return task.fingerprint(self.all(task))
