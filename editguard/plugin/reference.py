"""docs/options.md, generated from the option declarations (``editguard.settings.OPTIONS``).

``python -m editguard.plugin.reference > docs/options.md`` writes the page: a hand-written preamble (kept here, so
the redirection cannot lose it) and the options table between the markers ``<!-- options:start -->`` and
``<!-- options:end -->``.  ``tests/fast/test_docs.py`` fails when the page and the declarations differ, so an option
added, renamed or re-described without regenerating the page is caught in review.
"""

from __future__ import annotations

from editguard.settings import OPTIONS, Option

START = "<!-- options:start -->"
END = "<!-- options:end -->"

PREAMBLE = """\
# Options

Every editguard option: how it is spelled on the command line, in `[tool.editguard]` of `pyproject.toml` and as an ini option, and what it does.

## Where options are given

Every option can also live in your `pyproject.toml` (the command line wins):

```toml
[tool.editguard]
model = "./my-model"
edits = "edits/release-42.jsonl"
baselines = "baselines"
tolerance = { default = 0.05, closed_qa = 0.08 }
```

Each is also an ini option named `editguard_<key>`. The command line wins, then `pyproject.toml`, then the ini
file. `tolerance` also takes a table of per-ability tolerances (`default` for every ability), and
`--editguard-data`'s key is a `[tool.editguard.data]` table of `ABILITY = "SOURCE"`. Relative paths are relative
to the working directory on the command line and to the rootdir in configuration files. A flag switched on in a
configuration file is switched off on the command line by its `--editguard-no-` form (`--editguard-no-early-stop`).

## Malformed values

A malformed value is a usage error naming the option
(`argument --editguard-tolerance: 'lots' is not a number; give a fraction such as 0.05`), and options that
contradict each other are named together. An ability named anywhere (`--editguard-abilities`,
`--editguard-data`, a per-ability tolerance on the command line, in the `tolerance` table or the ini file)
must exist: `--editguard-tolerance sentimnet=0.1` is refused with "did you mean 'sentiment'?" rather than
leaving sentiment at the default tolerance. JUnit XML comes from pytest's own `--junitxml`.

## Joined values: `--editguard-X=VALUE`

pytest picks its configuration file from the folder of path-like arguments, option values included. The
`editguard` command passes `--editguard-X=VALUE` joined, so your project's configuration is read whatever
paths you give; plain `pytest` with `--editguard-edited /elsewhere/delta.safetensors` (apart) would read
another folder's configuration, or none, and is refused in one sentence naming the fix (write
`--editguard-edited=/elsewhere/delta.safetensors`, pass `-c`, or use the `editguard` command).

## All options

Generated from the option declarations in `editguard/settings.py` by
`python -m editguard.plugin.reference > docs/options.md`; `editguard --help` prints the same help strings.
"""


def _cell(text: str) -> str:
    """Table-safe Markdown: a pipe would end the cell, even inside a code span."""
    return text.replace("|", "\\|")


def _spelling(option: Option) -> str:
    if option.flag:
        return f"`{option.cli}` (off: `{option.negative_cli}`)"
    return f"`{option.cli} {option.metavar}`" if option.metavar else f"`{option.cli} VALUE`"


def table() -> str:
    """The options table, one row per declared option, in declaration order (the order of ``--help``)."""
    lines = ["| option | `[tool.editguard]` key | ini option | meaning |", "|---|---|---|---|"]
    for option in OPTIONS:
        lines.append(f"| {_cell(_spelling(option))} | `{option.name}` | `{option.ini}` | {_cell(option.help)} |")
    return "\n".join(lines)


def markdown() -> str:
    """The whole page: the preamble, then the generated table between the markers."""
    return f"{PREAMBLE}\n{START}\n{table()}\n{END}"


if __name__ == "__main__":
    print(markdown())
