"""What changes between two supported stacks: per-example outcomes and edit deltas, recorded on each, then compared.

Run ``record`` once in each environment (for example .venv, the newest stack, and .venv-floor, the oldest), each
with its own empty cache so nothing is shared between them, then ``compare``::

    .venv/bin/python benchmarks/stack_outputs.py record /tmp/stacks/newest
    .venv-floor/bin/python benchmarks/stack_outputs.py record /tmp/stacks/oldest
    .venv/bin/python benchmarks/stack_outputs.py compare /tmp/stacks/oldest /tmp/stacks/newest

``record`` scores the embedded default on the full probe sets of the eight abilities and the canary (default
protocol) and computes the demo edits' deltas: ROME, MEMIT, FT and KN on the tiny GPT-2 (all three requests) and
on the embedded default (the first request).  ``compare`` prints how many outcomes differ per ability (and by how
much where they are numbers) and each delta's largest absolute difference, relative to the delta's own size.
On demand, not in CI: about 15 minutes a stack on two cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ABILITIES = ("canary", "closed_qa", "dialogue", "ner", "nli", "open_qa", "reasoning", "sentiment", "summarization")
METHODS = ("FT", "KN", "MEMIT", "ROME")


def record(out: Path) -> None:
    from editguard.editing.methods import resolve_hparams
    from editguard.editing.modes import compute_edit
    from editguard.editing.requests import load_requests
    from editguard.evaluator import Evaluator
    from editguard.identity import model_identity
    from editguard.models import EMBEDDED_DEFAULT, TINY, load_model
    from editguard.stack import output_versions
    from editguard.stages.scoring import score_examples
    from editguard.tasks import get_task
    from editguard.tasks.sources import load_records, parse_data_source

    cache = out / "cache"
    (out / "deltas").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    default = load_model(EMBEDDED_DEFAULT, device="cpu", cache_dir=cache)
    tiny = load_model(TINY, device="cpu", cache_dir=cache)
    outcomes: dict[str, dict[str, Any]] = {}
    for ability in ABILITIES:
        task = get_task(ability, "default")
        examples = task.examples(load_records(ability, parse_data_source("probe")))
        results = score_examples(task, examples, Evaluator(default.model, default.tokenizer))
        outcomes[ability] = {key: result.outcome for key, result in sorted(results.items())}
        print(f"scored {ability}: {len(results)} examples ({time.perf_counter() - started:.0f} s)", flush=True)
    seconds: dict[str, float] = {}
    for label, loaded, requests in (("tiny", tiny, load_requests("demo")), ("default", default, load_requests("demo")[:1])):
        for method in METHODS:
            hparams = resolve_hparams(method, loaded.model.config, None, "cpu")
            began = time.perf_counter()
            outcome = compute_edit(loaded.model, loaded.tokenizer, list(requests), hparams, cache_dir=cache, model_fingerprint=loaded.fingerprint)
            seconds[f"{label}-{method}"] = round(time.perf_counter() - began, 1)
            outcome.delta.save(out / "deltas" / f"{label}-{method}.safetensors")
            print(f"edited {label} with {method} in {seconds[f'{label}-{method}']} s", flush=True)
    identity = {label: model_identity(m.model, m.tokenizer, m.fingerprint).key for label, m in (("tiny", tiny), ("default", default))}
    document = {"stack": output_versions(), "identity": identity, "outcomes": outcomes, "edit_seconds": seconds}
    (out / "outputs.json").write_text(json.dumps(document, indent=1))
    print(f"recorded in {out} ({time.perf_counter() - started:.0f} s)")


def compare(first: Path, second: Path) -> None:
    from editguard.editing.delta import WeightDelta

    a, b = (json.loads((folder / "outputs.json").read_text()) for folder in (first, second))
    print(f"{first}: {a['stack']}\n{second}: {b['stack']}")
    print(f"identity: tiny {'same' if a['identity']['tiny'] == b['identity']['tiny'] else 'DIFFERS'}, "
          f"default {'same' if a['identity']['default'] == b['identity']['default'] else 'DIFFERS'}")  # fmt: skip
    total = differing = 0
    for ability in ABILITIES:
        left, right = a["outcomes"][ability], b["outcomes"][ability]
        changed = [key for key in left if left[key] != right.get(key)]
        numeric = [abs(float(left[key]) - float(right[key])) for key in changed if _number(left[key]) and _number(right[key])]
        largest = f", largest difference {max(numeric):.3g}" if numeric else ""
        print(f"{ability:14} {len(changed):4} of {len(left):4} outcomes differ{largest}")
        total, differing = total + len(left), differing + len(changed)
    print(f"{'all':14} {differing:4} of {total:4} outcomes differ")
    for path in sorted((first / "deltas").glob("*.safetensors")):
        left_delta, right_delta = WeightDelta.load(path), WeightDelta.load(second / "deltas" / path.name)
        if sorted(left_delta.tensors) != sorted(right_delta.tensors):
            print(f"{path.stem:14} changed different tensors: {sorted(left_delta.tensors)} / {sorted(right_delta.tensors)}")
            continue
        largest = max(float((left_delta.tensors[n] - right_delta.tensors[n]).abs().max()) for n in left_delta.tensors)
        size = max(float(left_delta.tensors[n].abs().max()) for n in left_delta.tensors)
        print(f"{path.stem:14} largest difference {largest:.3g} (the delta's largest entry {size:.3g}; "
              f"seconds {a['edit_seconds'][path.stem]} / {b['edit_seconds'][path.stem]})")  # fmt: skip


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("record").add_argument("out", type=Path)
    both = commands.add_parser("compare")
    both.add_argument("first", type=Path)
    both.add_argument("second", type=Path)
    args = parser.parse_args(argv)
    if args.command == "record":
        record(args.out)
    else:
        compare(args.first, args.second)
    return 0


if __name__ == "__main__":
    sys.exit(main())
