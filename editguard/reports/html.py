"""The HTML report: one self-contained page a reviewer reads at a glance (no script, no external resource).

The verdict first; the abilities table (each row's CSS class names its verdict, and ``failing`` marks a row
whose test failed); a forest plot of every ability's paired difference with its interval against the
tolerance; the edit quality; the edit-count curve when one was drawn; then per ability the failure message
and the examples that got worse (``Row.worsened``: prompt, expected answer, each model's score on it; the
evaluator keeps no model output, so the answers themselves are not shown).  Images are embedded as base64
PNGs, drawn with matplotlib (imported only when a report is written).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from editguard import atomic
from editguard.statistics.metrics import METRICS
from editguard.reports.lines import COLUMNS, cells, curve_lines, quality_lines, remedy, stack_lines, truncated_lines
from editguard.reports.rows import COULD_NOT_CHECK, Row
from editguard.reports.run import NOT_CHECKED, Run, failing, headline

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
h1 .verdict { padding: 0 .3em; border-radius: 4px; color: white; }
.run-pass h1 .verdict, .run-baselines-recorded h1 .verdict { background: #2e7d32; }
.run-regressed h1 .verdict { background: #c62828; }
.run-could-not-check h1 .verdict { background: #ef6c00; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; vertical-align: top; }
th { background: #f0f0f0; }
td:first-child, td:nth-child(2), .examples td, .examples th { text-align: left; }
tr.verdict-inconclusive td { background: #fff8e1; }
tr.failing td { background: #ffebee; }
tr.verdict-could-not-check td { background: #fff3e0; }
tr.verdict-fail td:last-child, tr.failing td:last-child, p.failing { color: #c62828; font-weight: bold; }
.examples td { max-width: 40em; white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 90%; }
.problems li { margin: .3em 0; }
.note { color: #555; font-size: 90%; }
img { max-width: 100%; border: 1px solid #ddd; }
"""
OUTPUTS_NOT_KEPT = (
    "The evaluator keeps no model output, so each example shows its prompt, the expected answer, and the score "
    "the base and the edited model got on it (for a 0/1 metric: right or wrong), not the answers themselves."
)


def html_report(run: Run, forest: bytes | None, curve: bytes | None) -> str:
    """The page, with ``forest`` and ``curve`` (PNG bytes, or None) embedded."""
    parts = [f"<h1>editguard: <span class='verdict'>{_e(run.verdict)}</span></h1>", f"<p class='headline'>{_e(headline(run))}</p>"]
    if run.problems:
        intro = "" if run.verdict == NOT_CHECKED else "<p>Could not check:</p>"
        parts.append(intro + "<ul class='problems'>" + "".join(f"<li>{_e(problem)}</li>" for problem in run.problems) + "</ul>")
    parts += _context(run)
    if run.judged():
        parts += ["<h2>Abilities</h2>", _table(run.abilities)]
        parts += _image("forest", forest, "Paired difference (edited - baseline) of every ability, with its interval and the tolerance")
    parts += _quality(run.quality)
    if curve is not None:
        parts += _image("curve", curve, "Edit-count curve: edited score against the number of edits")
        parts.append("<ul>" + "".join(f"<li>{_e(line)}</li>" for line in curve_lines(run.abilities)) + "</ul>")
    if run.judged():
        parts += ["<h2>Details</h2>", f"<p class='note'>{_e(OUTPUTS_NOT_KEPT)}</p>"] + [_details(row) for row in run.abilities]
    if run.statement:
        parts.append(f"<p class='note'>Statistics: {_e(run.statement)}.</p>")
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>editguard: {_e(run.verdict)}</title><style>{STYLE}</style></head>\n"
        f"<body class='run-{_slug(run.verdict)}'>\n{body}\n</body></html>\n"
    )


def write_html(path: Path, run: Run) -> Path:
    """Draw the forest plot, read the curve PNG, and write the page atomically."""
    curve = run.curve.read_bytes() if run.curve is not None and run.curve.is_file() else None
    return atomic.write_text(path, html_report(run, draw_forest(run.abilities), curve))


def _context(run: Run) -> list[str]:
    items = ([f"model <code>{_e(run.model)}</code>"] if run.model else []) + [f"edit: {_e(edit)}" for edit in run.edits]
    items += [_e(line) for line in stack_lines(run.rows) + truncated_lines(run.rows)]
    return ["<ul class='context'>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"] if items else []


def _table(rows: Sequence[Row]) -> str:
    head = "<tr>" + "".join(f"<th>{_e(column)}</th>" for column in COLUMNS) + "</tr>"
    body = [
        f"<tr class='{_row_class(row)}' data-ability='{_e(row.ability)}'>" + "".join(f"<td>{_e(cell)}</td>" for cell in cells(row)) + "</tr>"
        for row in rows
    ]
    return "<table id='abilities'>" + head + "".join(body) + "</table>"


def _row_class(row: Row) -> str:
    return f"row verdict-{_slug(row.verdict)}" + (" failing" if failing(row) else "")


def _image(name: str, png: bytes | None, caption: str) -> list[str]:
    if png is None:
        return []
    data = base64.b64encode(png).decode("ascii")
    return [f"<h2>{_e(caption.split(':')[0])}</h2>", f"<figure><img id='{name}' alt='{_e(caption)}' src='data:image/png;base64,{data}'><figcaption class='note'>{_e(caption)}</figcaption></figure>"]


def _quality(rows: Sequence[Row]) -> list[str]:
    parts = []
    for row in rows:
        lines = quality_lines(row) or [remedy(row)]
        parts += [
            "<h2>Edit quality</h2>",
            f"<p class='{_row_class(row)}'>{_e(row.verdict.upper())} (gate: mean reliability at least {row.tolerance or 0:.2f}, no request at 0)</p>",
            "<ul>" + "".join(f"<li>{_e(line)}</li>" for line in lines) + "</ul>",
        ]
        if row.message:
            parts.append(f"<p>{_e(remedy(row))}</p>")
    return parts


def _details(row: Row) -> str:
    parts = [f"<section id='ability-{_slug(row.ability)}'><h3>{_e(row.ability)} <small>({_e(row.dataset)}, {_e(row.metric)})</small>: {_e(row.verdict.upper())}</h3>"]
    if row.message or (row.verdict == COULD_NOT_CHECK and row.note):
        parts.append(f"<p>{_e(remedy(row))}</p>")
    if row.worsened is not None:
        parts.append(_worsened(row))
    return "".join(parts) + "</section>"


def _worsened(row: Row) -> str:
    worse = row.negative_flips if row.negative_flips is not None else len(row.worsened or [])
    if not row.worsened:
        return "<p>No example got worse.</p>"
    shown = len(row.worsened)
    said = f"{worse} examples got worse" + (f"; the {shown} with the largest drop" if shown < worse else "") + ":"
    head = "<tr><th>example</th><th>prompt</th><th>expected</th><th>base</th><th>edited</th></tr>"
    body = "".join(
        f"<tr><td>{_e(item['id'])}</td><td>{_e(item['prompt'])}</td><td>{_e(item['expected'])}</td>"
        f"<td>{item['base']:.3f}</td><td>{item['edited']:.3f}{'' if item.get('parsed', True) else ' (unparsed)'}</td></tr>"
        for item in row.worsened
    )
    return f"<p>{_e(said)}</p><table class='examples'>{head}{body}</table>"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _slug(text: str) -> str:
    return "-".join(text.lower().replace("(", " ").replace(")", " ").split())


# ----------------------------------------------------------------------------- the forest plot


def draw_forest(rows: Sequence[Row]) -> bytes | None:
    """PNG: per ability, the paired difference (a drop is negative) and its interval, against -tolerance."""
    shown = [row for row in rows if row.difference is not None and row.tolerance is not None]
    if not shown:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reach = 1.15 * max([abs(v) for row in shown for v in (row.lower, row.upper, row.difference, row.tolerance) if v is not None])
    figure, axis = plt.subplots(figsize=(8, 1.2 + 0.42 * len(shown)))
    for y, row in enumerate(reversed(shown)):
        _draw_row(axis, y, row, reach)
    axis.axvline(0, color="grey", linewidth=0.8)
    axis.set_yticks(range(len(shown)), [row.ability for row in reversed(shown)])
    axis.set_xlim(-reach, reach)
    axis.set_ylim(-0.7, len(shown) - 0.3)
    axis.set_xlabel("edited - baseline, paired (a drop is negative); red dashes: -tolerance")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


_COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "inconclusive": "#ef6c00"}


def _draw_row(axis: Any, y: int, row: Row, reach: float) -> None:
    metric = METRICS.get(row.metric)
    sign = 1 if metric is None or metric.higher_is_better else -1  # drawn in the better direction: left is worse
    point = (row.difference or 0.0) * sign
    lower, upper = (row.lower, row.upper) if sign > 0 else (None if row.upper is None else -row.upper, None if row.lower is None else -row.lower)
    low = -reach if lower is None else lower
    high = reach if upper is None else upper
    colour = _COLOURS.get(row.verdict, "#555555")
    tolerance = row.tolerance or 0.0
    axis.plot([low, high], [y, y], color=colour, linewidth=2.5, solid_capstyle="butt")
    axis.plot([point], [y], marker="o", color=colour, markersize=7)
    axis.plot([-tolerance, -tolerance], [y - 0.38, y + 0.38], color="red", linestyle="--", linewidth=1.2)
