"""The edit-count curve as a PNG: one panel per ability, the edited score against the number of edits per series,
with the baseline and the tolerance (matplotlib, imported only when a curve is drawn)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from editguard.reports.lines import _better
from editguard.reports.rows import Row


TITLE_CHARS_PER_INCH = 12  # characters of a 10-point title per inch of figure, so that a long title wraps, not cut

_ROUND_COUNTS = frozenset({1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000})


def draw_curves(path: Path, rows: Sequence[Row], title: str) -> None:
    """One panel per ability: edited score against edit count per series, with the baseline and the tolerance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gated = sorted((row for row in rows if row.curve), key=lambda r: r.ability)
    columns = min(4, len(gated))
    lines = -(-len(gated) // columns)
    figure, axes = plt.subplots(lines, columns, figsize=(4 * columns, 3 * lines), squeeze=False)
    for axis in axes.flat[len(gated):]:
        axis.set_visible(False)
    for axis, row in zip(axes.flat, gated):
        for name, points in (row.curve or {}).items():
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
        if row.baseline is not None:
            axis.axhline(row.baseline, color="grey", linewidth=1, label="baseline")
            worse = "-" if _better(row.metric) > 0 else "+"
            limit = row.baseline - _better(row.metric) * (row.tolerance or 0)
            axis.axhline(limit, color="red", linestyle="--", linewidth=1, label=f"baseline {worse} tolerance")
        axis.set_title(f"{row.ability} ({row.metric})")
        axis.set_xlabel("number of edits")
        axis.set_xscale("log")
        counts = sorted({point[0] for points in (row.curve or {}).values() for point in points})
        shown = counts if len(counts) <= 8 else [c for c in counts if c in _ROUND_COUNTS or c == counts[-1]]
        axis.set_xticks(shown, [str(count) for count in shown])  # the counts themselves, not 2 x 10^0
        axis.minorticks_off()
    axes.flat[0].legend(fontsize=7)
    figure.suptitle(textwrap.fill(title, width=int(TITLE_CHARS_PER_INCH * figure.get_figwidth())), fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
