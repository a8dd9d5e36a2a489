"""The docs agree with the code and with themselves: docs/options.md is what the option declarations generate, and
every relative link in README.md and docs/*.md reaches an existing file and heading."""

from __future__ import annotations

import re
from pathlib import Path

from editguard.plugin import reference as options_reference
from editguard.settings import OPTIONS

ROOT = Path(__file__).resolve().parents[2]
OPTIONS_PAGE = ROOT / "docs" / "options.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _between_markers(text: str) -> str:
    start = text.index(options_reference.START) + len(options_reference.START)
    return text[start : text.index(options_reference.END)].strip("\n")


def test_the_options_page_is_generated_from_the_declarations() -> None:
    text = OPTIONS_PAGE.read_text(encoding="utf-8")
    assert _between_markers(text) == options_reference.table(), (
        "docs/options.md's table differs from editguard.settings.OPTIONS: "
        "run python -m editguard.plugin.reference > docs/options.md"
    )
    assert text == options_reference.markdown() + "\n", "docs/options.md differs from python -m editguard.plugin.reference"


def test_the_options_table_has_one_row_per_option() -> None:
    rows = [line for line in options_reference.table().splitlines()[2:]]
    assert len(rows) == len(OPTIONS)
    for row, option in zip(rows, OPTIONS, strict=True):
        assert row.startswith(f"| `{option.cli}") and f"`{option.ini}`" in row
        assert row.count(" | ") == 3, row  # a pipe in a help string or metavar is escaped, never a new cell


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (but - and _), spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {_anchor(match) for match in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def _links(page: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans hold no links
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_every_relative_link_resolves() -> None:
    broken = []
    for page in PAGES:
        for link in _links(page):
            if re.match(r"^[a-z]+:", link):  # http:, https:, mailto:
                continue
            path, _, fragment = link.partition("#")
            target = (page.parent / path).resolve() if path else page
            if not target.exists():
                broken.append(f"{page.relative_to(ROOT)}: {link} (no such file)")
            elif fragment and target.suffix == ".md" and fragment not in _anchors(target):
                broken.append(f"{page.relative_to(ROOT)}: {link} (no such heading)")
    assert not broken, "\n".join(broken)
