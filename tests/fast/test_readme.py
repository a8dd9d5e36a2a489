"""The README's examples are what the code prints: the table and the failure message, rebuilt from their numbers.

Each example is parsed back into the values it shows, rendered again by the code that prints it
(``report.table``, ``verdict.failure_message``), and compared line for line, so a change of format
that is not carried into the README fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from editguard.report import Row, table
from editguard.verdict import Outcome, Policy, Verdict, failure_message

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks() -> list[list[str]]:
    """The README's fenced code blocks, as lists of lines."""
    return [block.strip("\n").splitlines() for block in re.findall(r"^```[a-z]*\n(.*?)^```", README.read_text(), re.S | re.M)]


def _table_lines() -> list[str]:
    block = next(b for b in _blocks() if any(line.startswith("ability ") and "verdict" in line for line in b))
    start = next(i for i, line in enumerate(block) if line.startswith("ability "))
    end = next((i for i in range(start + 2, len(block)) if not re.match(r"^[a-z_]+ ", block[i]) or block[i].startswith("edit quality")), len(block))
    return block[start:end]


def _number(cell: str) -> float | None:
    return None if cell == "-" else float(cell.rstrip("%")) / (100 if cell.endswith("%") else 1)


def _row(line: str) -> Row:
    cells = re.split(r"\s{2,}", line.strip())
    ability, metric, chance, baseline, edited, _, interval, tolerance, n, flips, p, unparsed, verdict = cells
    low, high = (None, None) if interval == "-" else (float(x) for x in interval.strip("[]").split(", "))
    used, _, available = n.partition("/")
    worse, _, better = flips.partition("/")
    return Row(
        ability, "", verdict.replace(" (warn)", "").lower(), baseline=_number(baseline), edited=_number(edited), tolerance=_number(tolerance),
        n=int(used), available=int(available) if available else None, metric=metric, chance=_number(chance),
        lower=low, upper=high, negative_flips=int(worse) if worse != "-" else None, positive_flips=int(better) if better else None,
        adjusted_p_value=_number(p), unparsed=_number(unparsed), passed=True if "(warn)" in verdict else None,
    )  # fmt: skip


def test_the_readme_table_is_what_the_report_prints() -> None:
    lines = _table_lines()
    rows = [_row(line) for line in lines[2:]]
    assert len(rows) >= 8
    assert table(rows) == lines


_FAILURE = re.compile(
    r"(?P<ability>\w+) \((?P<dataset>[^)]+)\) regressed after the edit: edited (?P<observed>[\d.]+) vs baseline (?P<baseline>[\d.]+) "
    r"on the same (?P<n>\d+) examples \((?P<file>[^)]+)\): difference (?P<difference>[-+][\d.]+), interval \[(?P<lower>[-+][\d.]+), "
    r"(?P<upper>[-+][\d.]+)\], (?P<worse>\d+) examples got worse, (?P<better>\d+) better; .*tolerance of -(?P<tolerance>[\d.]+) "
    r"\(p=(?P<p>[^)]+)\)"
)


def test_the_readme_failure_is_what_the_verdict_says() -> None:
    block = next(b for b in _blocks() if any("regressed after the edit" in line for line in b))
    shown = " ".join(line for line in block if not line.startswith("_"))
    match = _FAILURE.search(shown)
    assert match, shown
    values = match.groupdict()
    verdict = Verdict(
        values["ability"], float(values["baseline"]), float(values["observed"]), float(values["tolerance"]), int(values["n"]),
        Outcome.FAIL, float(values["lower"]), float(values["upper"]), int(values["worse"]), int(values["better"]),
        float(values["p"]), policy=Policy(float(values["tolerance"])),
    )  # fmt: skip
    printed = failure_message(verdict, dataset=values["dataset"], baseline_file=values["file"])
    # the same words; the same numbers up to the last shown digit (the README's are rounded before re-use)
    assert _NUMBER.sub("#", shown) == _NUMBER.sub("#", printed)
    for a, b in zip(_NUMBER.findall(shown), _NUMBER.findall(printed), strict=True):
        assert abs(float(a) - float(b)) <= 1.5e-3 * max(1.0, abs(float(a))), (a, b)


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
