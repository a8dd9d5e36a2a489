"""The documentation's examples are what the code prints: the table and the failure message, rebuilt from their numbers.

Each example is parsed back into the values it shows, rendered again by the code that prints it
(``report.table``, ``verdict.failure_message``), and compared line for line, so a change of format
that is not carried into the README and docs/ fails here.  The README must show a table (``make gate``'s);
every other table in docs/*.md is checked too; the failure message is found wherever it lives (docs/statistics.md).
"""

from __future__ import annotations

import re
from pathlib import Path

from editguard.reports.lines import table
from editguard.reports.rows import Row
from editguard.statistics.verdict import Outcome, Policy, Verdict, failure_message

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))


def _blocks(*pages: Path) -> list[list[str]]:
    """The pages' fenced code blocks, as lists of lines."""
    return [
        block.strip("\n").splitlines()
        for page in pages
        for block in re.findall(r"^```[a-z]*\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M)
    ]


def _is_table(block: list[str]) -> bool:
    return any(line.startswith("ability ") and "verdict" in line for line in block)


def _table_lines(block: list[str]) -> list[str]:
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


def _assert_printed(block: list[str], *, exact: bool = True) -> None:
    """The block's table is what ``report.table`` prints for its rows; ``exact=False`` allows a difference of one in
    the last shown digit (a difference of two rounded scores, as in a measured run's table)."""
    lines = _table_lines(block)
    rows = [_row(line) for line in lines[2:]]
    assert len(rows) >= 8
    printed = table(rows)
    if exact:
        assert printed == lines
        return
    assert [_NUMBER.sub("#", line) for line in printed] == [_NUMBER.sub("#", line) for line in lines]
    for shown, rendered in zip(lines, printed, strict=True):
        for a, b in zip(_NUMBER.findall(shown), _NUMBER.findall(rendered), strict=True):
            assert abs(float(a) - float(b)) <= 1.5e-3 * max(1.0, abs(float(a))), (shown, rendered)


def test_the_readme_table_is_what_the_report_prints() -> None:
    tables = [block for block in _blocks(README) if _is_table(block)]
    assert tables, "README.md shows no table of the gate's output"
    for block in tables:
        _assert_printed(block)


def test_the_tables_in_docs_are_what_the_report_prints() -> None:
    for block in (block for block in _blocks(*DOCS) if _is_table(block)):
        _assert_printed(block, exact=False)


_FAILURE = re.compile(
    r"(?P<ability>\w+) \((?P<dataset>[^)]+)\) regressed after the edit: edited (?P<observed>[\d.]+) vs baseline (?P<baseline>[\d.]+) "
    r"on the same (?P<n>\d+) examples \((?P<file>[^)]+)\): difference (?P<difference>[-+][\d.]+), interval \[(?P<lower>[-+][\d.]+), "
    r"(?P<upper>[-+][\d.]+)\], (?P<worse>\d+) examples got worse, (?P<better>\d+) better; .*tolerance of -(?P<tolerance>[\d.]+) "
    r"\(p=(?P<p>[^)]+)\)"
)


def test_the_documented_failure_is_what_the_verdict_says() -> None:
    failures = [b for b in _blocks(README, *DOCS) if any("regressed after the edit" in line for line in b)]
    assert failures, "neither README.md nor docs/*.md shows a failure message"
    for block in failures:
        _assert_failure(block)


def _assert_failure(block: list[str]) -> None:
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
    # the same words; the same numbers up to the last shown digit (the docs' are rounded before re-use)
    assert _NUMBER.sub("#", shown) == _NUMBER.sub("#", printed)
    for a, b in zip(_NUMBER.findall(shown), _NUMBER.findall(printed), strict=True):
        assert abs(float(a) - float(b)) <= 1.5e-3 * max(1.0, abs(float(a))), (a, b)


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
