"""Benchmark: editguard's evaluator against lm-evaluation-harness on the same examples, in one run.

    make bench                       # sets up .venv-bench (lm-eval 0.4.13) and runs this script
    .venv-bench/bin/python benchmarks/evaluator_vs_lm_eval.py --repeats 3

For each ability (default: all eight; closed_qa, dialogue, nli and sentiment scored by log-likelihood,
ner, open_qa, reasoning and summarization by greedy generation) the examples of the embedded default's
probe set are written out once, one row per prompt, rendered exactly as editguard prompts them, and
scored on SmolLM2-135M-Instruct (fp32; ``--device cpu`` with ``--threads`` threads, or ``--device cuda``):

- by editguard's ``Evaluator`` (its default batching), in a fresh process;
- by lm-evaluation-harness (``hf`` backend, a local task YAML over the same JSONL), in a fresh process
  per batch size (1, 8, 32), the best of which is compared.

Agreement is per row: the chosen answer (length-normalised per token where the task is, dialogue: both
tools' raw log-likelihoods divided by the same token counts) or the stripped generated text.

Runs of the two tools are interleaved and repeated; medians are reported, and each repeat's process speed-up
beside them.  "Model time" is the
scoring call alone; "process" is the whole subprocess (interpreter start, imports, model load,
scoring): what a CI job pays.  The FLOP floor is 2 x (non-embedding parameters x tokens that must be
processed + head parameters x positions whose prediction is read), divided by a measured fp32 matmul
rate on the device: tokens are each distinct prefix of the contexts once (shared demonstrations once per
template), the continuation tokens after the first and the generated tokens; reads are one per continuation or
generated token (``floor_work``).  Attention's own arithmetic is left out, so the floor is a floor.  Peak memory is the process's resident set on a
CPU and the peak of allocated GPU memory on CUDA.  Nothing here runs in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ABILITIES = ("closed_qa", "dialogue", "ner", "nli", "open_qa", "reasoning", "sentiment", "summarization")
LM_EVAL_BATCH_SIZES = (1, 8, 32)


# ----------------------------------------------------------------------------- preparing the examples


def prepare(abilities: list[str], limit: int | None, data: dict[str, str], out: Path, cache_dir: Path, device: str) -> dict[str, Any]:
    """Write each ability's rendered examples as JSONL plus an lm-eval task YAML; return the facts needed later."""
    from editguard.models import load_model
    from editguard.stages.examples import sample
    from editguard.stages.scoring import render_prompt
    from editguard.tasks import get_task
    from editguard.tasks.sources import load_records, parse_data_source

    loaded = load_model("smollm2", device="cpu", cache_dir=cache_dir)
    facts: dict[str, Any] = {"model_folder": str(loaded.model.config._name_or_path), "device": device, "abilities": {}}
    out.mkdir(parents=True, exist_ok=True)
    for ability in abilities:
        task = get_task(ability, "default")
        examples = sample(task.examples(load_records(ability, parse_data_source(data.get(ability, "probe")))), limit)
        chat = task.chat and bool(getattr(loaded.tokenizer, "chat_template", None))
        if task.kind == "choice":
            rows = [_choice_row(e, loaded.tokenizer, chat) for e in examples]
        else:
            rows = [{"id": f"{e.id}/{number}", "prompt": render_prompt(prompt, loaded.tokenizer, chat)} for e in examples for number, prompt in enumerate(e.prompts)]
        channel = is_channel(rows)
        data_file = out / f"{ability}.jsonl"
        data_file.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        (out / f"editguard_{ability}.yaml").write_text(_task_yaml(ability, task, data_file, channel), encoding="utf-8")
        facts["abilities"][ability] = {
            "kind": task.kind, "n": len(rows), "max_new_tokens": task.max_new_tokens, "stop": list(task.stop),
            "add_special_tokens": not chat, "data": str(data_file), "length_normalized": task.length_normalized,
        }  # fmt: skip
    return facts


def _choice_row(example: Any, tokenizer: Any, chat: bool) -> dict[str, Any]:
    """One choice example: its (context, continuation) pairs (``Example.pairs``) and the spellings lm-eval reads."""
    from editguard.stages.scoring import render_prompt

    pairs = [(render_prompt(context, tokenizer, chat), continuation) for context, continuation in example.pairs]
    return {
        "id": f"{example.id}/0", "pairs": pairs, "gold": example.gold or 0,
        "lengths": [len(tokenizer(continuation, add_special_tokens=False)["input_ids"]) for _, continuation in pairs],
        "prompt": pairs[0][0], "choices": [continuation for _, continuation in pairs],  # one context, several answers
        "contexts": [context for context, _ in pairs], "continuation": pairs[0][1],  # the channel form
    }  # fmt: skip


def is_channel(rows: list[dict[str, Any]]) -> bool:
    """Rows in the channel form (one context per answer, one text after them), not answer choices after one context."""
    return any(len(set(row.get("contexts", ()))) > 1 for row in rows)


def _task_yaml(ability: str, task: Any, data_file: Path, channel: bool = False) -> str:
    common = f"task: editguard_{ability}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data_file}\ntest_split: test\n"
    # One text after each choice's context: lm-eval's "multiple input" (doc_to_text gives the gold index).  lm-eval moves
    # a context's trailing whitespace (closed_qa's newline) into the continuation, so it scores that token too.
    if channel:
        return common + "output_type: multiple_choice\ndoc_to_text: gold\ndoc_to_choice: contexts\ndoc_to_target: continuation\ntarget_delimiter: ''\nmetric_list:\n  - metric: acc\n"
    common += "doc_to_text: prompt\n"
    if task.kind == "choice":  # choices carry their own leading space, as in editguard
        return common + "output_type: multiple_choice\ndoc_to_choice: choices\ndoc_to_target: gold\ntarget_delimiter: ''\nmetric_list:\n  - metric: acc\n"
    until = json.dumps(list(task.stop))
    return common + (
        "output_type: generate_until\ndoc_to_target: prompt\ntarget_delimiter: ''\n"
        f"generation_kwargs:\n  until: {until}\n  max_gen_toks: {task.max_new_tokens}\n  do_sample: false\n"
        "metric_list:\n  - metric: exact_match\n"
    )


# ----------------------------------------------------------------------------- the two workers (run in subprocesses)


def _read_rows(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def worker_editguard(facts: dict[str, Any], ability: str, threads: int, cache_dir: Path) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    from editguard.evaluator import Evaluator, GenerationRequest, LoglikelihoodRequest
    from editguard.models import load_model

    spec = facts["abilities"][ability]
    rows = _read_rows(spec["data"])
    loaded = load_model("smollm2", device=facts["device"], cache_dir=cache_dir)
    evaluator = Evaluator(loaded.model, loaded.tokenizer)
    _synchronize(facts["device"])
    start = time.perf_counter()
    if spec["kind"] == "choice":
        requests = [LoglikelihoodRequest(context, continuation) for row in rows for context, continuation in row["pairs"]]
        scores = evaluator.loglikelihood(requests)
        _synchronize(facts["device"])
        model_time = time.perf_counter() - start
        predictions = _choices(spec, rows, scores)
        generated = 0
    else:
        requests = [GenerationRequest(row["prompt"], spec["max_new_tokens"], tuple(spec["stop"]), spec["add_special_tokens"]) for row in rows]
        outputs = evaluator.generate(requests)
        _synchronize(facts["device"])
        model_time = time.perf_counter() - start
        predictions = {row["id"]: text.strip() for row, text in zip(rows, outputs)}
        generated = sum(len(loaded.tokenizer(text, add_special_tokens=False)["input_ids"]) + 1 for text in outputs)
    return {"model_time": model_time, "predictions": predictions, "generated_tokens": generated}


def worker_lm_eval(facts: dict[str, Any], ability: str, threads: int, batch_size: int, out: Path) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    spec = facts["abilities"][ability]
    model = HFLM(pretrained=facts["model_folder"], device=facts["device"], dtype="float32", batch_size=batch_size)
    timer = {"model_time": 0.0}
    for method in ("loglikelihood", "generate_until"):
        original = getattr(model, method)

        def timed(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                timer["model_time"] += time.perf_counter() - start

        setattr(model, method, timed)
    results = lm_eval.simple_evaluate(
        model=model, tasks=[f"editguard_{ability}"], task_manager=TaskManager(include_path=str(out)),
        num_fewshot=0, log_samples=True, bootstrap_iters=0,
    )  # fmt: skip
    predictions = {}
    for record in results["samples"][f"editguard_{ability}"]:
        if spec["kind"] == "choice":
            values = [float(pair[0]) for pair in record["filtered_resps"]]
            predictions.update(_choices(spec, [record["doc"]], values))
        else:
            predictions[record["doc"]["id"]] = str(record["filtered_resps"][0]).strip()
    return {"model_time": timer["model_time"], "predictions": predictions}


def _choices(spec: dict[str, Any], rows: list[dict[str, Any]], scores: list[float]) -> dict[str, int]:
    """Each row's chosen answer from its choices' log-likelihoods (per token where the task normalises)."""
    predictions, flat = {}, iter(scores)
    for row in rows:
        values = [next(flat) for _ in row["pairs"]]
        if spec["length_normalized"]:
            values = [value / length for value, length in zip(values, row["lengths"])]
        predictions[row["id"]] = max(range(len(values)), key=lambda i: (values[i], -i))
    return predictions


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


# ----------------------------------------------------------------------------- the parent: timing, memory, report


def run_worker(arguments: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run one worker process; its result plus whole-process wall time and peak RSS (MB)."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, __file__, *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - start
    if process.returncode:
        raise SystemExit(f"worker {' '.join(arguments[:3])} failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["process_time"] = wall  # peak_mb comes from the worker's own getrusage
    return result


def matmul_rate(threads: int, device: str) -> float:
    """Measured fp32 GFLOP/s of the matmul shapes a 576-wide model runs, on the device (best of 5)."""
    import torch

    torch.set_num_threads(threads)
    rows, repeats = (2048, 20) if device == "cpu" else (65536, 50)
    a, b = torch.randn(rows, 576, device=device), torch.randn(576, 1536, device=device)
    best = 0.0
    for _ in range(5):
        _synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        _synchronize(device)
        best = max(best, repeats * 2 * rows * 576 * 1536 / (time.perf_counter() - start) / 1e9)
    return best


def floor_work(spec: dict[str, Any], tokenizer: Any, generated: int) -> tuple[int, int]:
    """(tokens that must pass through the model's body, positions where its vocabulary head must be read).

    Tokens: each distinct prefix of the contexts once (an example's answer choices share their context, the
    channel form has one per answer; few-shot demonstrations, all prompts' or one template's, are one prefix), continuation
    tokens after the first, and the generated tokens.  Reads: one per continuation token (the position that
    predicts it) and one per generated token; the head's log-softmax needs every vocabulary entry there."""
    rows = _read_rows(spec["data"])
    texts = [context for row in rows for context in (dict.fromkeys(row["contexts"]) if "pairs" in row else [row["prompt"]])]
    prompts = sorted(tuple(tokenizer(text, add_special_tokens=spec.get("add_special_tokens", True))["input_ids"]) for text in texts)
    tokens = distinct_prefixes(prompts)
    reads = generated
    for row in rows:
        tokens += sum(length - 1 for length in row.get("lengths", ()))
        reads += sum(row.get("lengths", ()))
    return tokens + generated, reads


def distinct_prefixes(rows: list[tuple[int, ...]]) -> int:
    """How many distinct token prefixes the rows have (the nodes of their trie): a causal model must compute each
    position once per distinct prefix ending there, and no more.  ``rows`` sorted, so that each row shares its
    longest common prefix with a neighbour."""
    count, previous = 0, ()
    for row in rows:
        common = next((position for position, (a, b) in enumerate(zip(row, previous)) if a != b), min(len(row), len(previous)))
        count += len(row) - common
        previous = row
    return count


def parameter_counts(cache_dir: Path) -> tuple[int, int, Any]:
    """(non-embedding parameters, parameters of the vocabulary head, tokenizer); SmolLM2 ties the head to the
    input embedding, so the head is not among the non-embedding parameters."""
    from editguard.models import load_model

    loaded = load_model("smollm2", device="cpu", cache_dir=cache_dir)
    embedding = loaded.model.get_input_embeddings().weight.numel()
    head = loaded.model.get_output_embeddings().weight.numel()
    return sum(p.numel() for p in loaded.model.parameters()) - embedding, head, loaded.tokenizer


def agreement(a: dict[str, Any], b: dict[str, Any]) -> float:
    return sum(a[key] == b.get(key) for key in a) / len(a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--abilities", default=",".join(DEFAULT_ABILITIES))
    parser.add_argument("--limit", type=int, default=None, help="examples per ability (default: the whole probe set)")
    parser.add_argument("--data", action="append", default=[], help="ABILITY=SOURCE as in --editguard-data (default: probe sets)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (one GPU): where both tools score")
    parser.add_argument("--batch-sizes", default=",".join(map(str, LM_EVAL_BATCH_SIZES)), help="lm-eval batch sizes to try")
    parser.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("EDITGUARD_CACHE_DIR", ROOT / ".cache" / "editguard")))
    parser.add_argument("--json", type=Path, default=None, help="also write the raw measurements here")
    args = parser.parse_args()
    out = args.cache_dir / "bench"
    abilities = [a.strip() for a in args.abilities.split(",") if a.strip()]
    facts = prepare(abilities, args.limit, dict(item.split("=", 1) for item in args.data), out, args.cache_dir, args.device)
    (out / "facts.json").write_text(json.dumps(facts), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "EDITGUARD_CACHE_DIR": str(args.cache_dir)}  # fmt: skip
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {a: {"editguard": [], **{f"lm-eval bs={s}": [] for s in sizes}} for a in abilities}
    for repeat in range(args.repeats):
        for ability in abilities:  # interleaved: machine drift hits both tools alike
            common = [str(out / "facts.json"), ability, str(args.threads)]
            runs[ability]["editguard"].append(run_worker(["--worker", "editguard", *common], env))
            for size in sizes:
                runs[ability][f"lm-eval bs={size}"].append(run_worker(["--worker", "lm-eval", *common, str(size)], env))
            print(f"repeat {repeat + 1}/{args.repeats}: {ability} done", file=sys.stderr, flush=True)
    report(facts, runs, args)


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def repeat_speedups(by_tool: dict[str, list[dict[str, Any]]]) -> list[float]:
    """Per repeat, lm-eval's best process time of that repeat over editguard's: the spread behind the median (a
    ratio near a target can sit on either side of it from one repeat to the next)."""
    ours = by_tool["editguard"]
    theirs = [runs for tool, runs in by_tool.items() if tool != "editguard"]
    return [min(runs[repeat]["process_time"] for runs in theirs) / run["process_time"] for repeat, run in enumerate(ours)]


def report(facts: dict[str, Any], runs: dict[str, dict[str, list[dict[str, Any]]]], args: argparse.Namespace) -> None:
    import platform

    import torch

    rate = matmul_rate(args.threads, args.device)
    parameters, head, tokenizer = parameter_counts(args.cache_dir)
    where = f"CPU {platform.processor() or platform.machine()}, {args.threads} threads" if args.device == "cpu" else torch.cuda.get_device_name()
    print(f"\nSmolLM2-135M-Instruct fp32, {where}, torch {torch.__version__}, "
          f"matmul {rate:.0f} GFLOP/s, {parameters / 1e6:.1f} M non-embedding parameters, head {head / 1e6:.1f} M; medians of {args.repeats} runs\n")  # fmt: skip
    print("| ability | kind | n | tool | model time s | process s | examples/s (process) | peak MB | agreement |")
    print("|---|---|---|---|---|---|---|---|---|")
    summary = []
    for ability, by_tool in runs.items():
        spec = facts["abilities"][ability]
        ours = by_tool["editguard"]
        lm_tools = [tool for tool in by_tool if tool != "editguard"]
        best = min(lm_tools, key=lambda tool: _median(by_tool[tool], "process_time"))
        for tool in ["editguard", *lm_tools]:
            measured = by_tool[tool]
            marker = " (best)" if tool == best else ""
            print(f"| {ability} | {spec['kind']} | {spec['n']} | {tool}{marker} | {_median(measured, 'model_time'):.1f} | "
                  f"{_median(measured, 'process_time'):.1f} | {spec['n'] / _median(measured, 'process_time'):.2f} | "
                  f"{max(r['peak_mb'] for r in measured):.0f} | {agreement(ours[0]['predictions'], measured[0]['predictions']):.1%} |")  # fmt: skip
        tokens, reads = floor_work(spec, tokenizer, ours[0]["generated_tokens"])
        floor = 2 * (parameters * tokens + head * reads) / (rate * 1e9)
        summary.append((ability, best, by_tool, floor, tokens))
    print("\n| ability | process speed-up vs lm-eval best | per repeat | model-time speed-up | model time / FLOP floor | floor s (tokens) | peak memory ratio | agreement with lm-eval best |")
    print("|---|---|---|---|---|---|---|---|")
    for ability, best, by_tool, floor, tokens in summary:
        ours, theirs = by_tool["editguard"], by_tool[best]
        spread = ", ".join(f"{ratio:.2f}x" for ratio in repeat_speedups(by_tool))
        print(f"| {ability} | {_median(theirs, 'process_time') / _median(ours, 'process_time'):.2f}x | {spread} | "
              f"{_median(theirs, 'model_time') / _median(ours, 'model_time'):.2f}x | {_median(ours, 'model_time') / floor:.2f} | "
              f"{floor:.1f} ({tokens}) | {max(r['peak_mb'] for r in ours) / max(r['peak_mb'] for r in theirs):.2f} | "
              f"{agreement(ours[0]['predictions'], theirs[0]['predictions']):.1%} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"facts": facts, "runs": runs, "matmul_gflops": rate}, indent=1), encoding="utf-8")


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it is not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_gpu_mb() -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20


def worker_main(argv: list[str]) -> None:
    tool, facts_file, ability, threads = argv[:4]
    facts = json.loads(Path(facts_file).read_text(encoding="utf-8"))
    if tool == "editguard":
        result = worker_editguard(facts, ability, int(threads), Path(os.environ["EDITGUARD_CACHE_DIR"]))
    else:
        result = worker_lm_eval(facts, ability, int(threads), int(argv[4]), Path(facts_file).parent)
    result["peak_mb"] = _peak_rss_mb() if facts["device"] == "cpu" else _peak_gpu_mb()
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
    else:
        main()
