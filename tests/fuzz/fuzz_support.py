"""What the fuzz tier's properties share: the Hypothesis settings, the error rule, odd values, and the count.

Every property writes what Hypothesis draws to a real file and runs it through the real reader.  The call
either returns a value that satisfies the schema (each test asserts its own invariants), or raises one of
editguard's own errors whose message is one line, names the file or option, and says how to fix it
(``assert_one_sentence``); any other exception, a traceback, fails the property.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from editguard.baselines import BaselineError
from editguard.editing.delta import DeltaError
from editguard.editing.quality import UnchangedWeights
from editguard.editing.requests import EditRequestError
from editguard.errors import GateProblem
from editguard.settings import SettingsError
from editguard.tasks.schema import DataSchemaError

# The errors a reader may refuse an input with (every one a ValueError but GateProblem, which the gate shows as is).
OWN_ERRORS: tuple[type[Exception], ...] = (
    DataSchemaError, EditRequestError, BaselineError, DeltaError, UnchangedWeights, SettingsError, GateProblem,
)  # fmt: skip

# Words a remedy starts with: "give it the text", "re-record it with ...", "save the edits file as UTF-8", ...
REMEDY = re.compile(
    r"\b(give|write|check|fix|use|add|remove|re-record|record|save|rename|point|put|quote|shorten|choose|make|create|"
    r"convert|leave|edit|drop|name|untie|load|delete|pass|set|run|must|needs|should|allowed|known|did you mean|was it made|true or false)\b"
    r"|e\.g\.",
    re.IGNORECASE,
)

# Runs are deterministic (derandomize) and leave nothing behind (no example database); the example counts are
# sized so that the whole tier runs in well under a minute on one core.
FUZZ = settings(
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# How many inputs each property was given (reported at the end of the run by tests/fuzz/conftest.py).
GENERATED: Counter[str] = Counter()


def count(name: str) -> None:
    GENERATED[name] += 1


def fresh_folder(parent: Path) -> Path:
    """A new empty folder for one example (examples of one test share its tmp_path)."""
    return Path(tempfile.mkdtemp(dir=parent))


def assert_one_sentence(error: BaseException, *names: str) -> str:
    """``error`` is one of editguard's own, one line, naming one of ``names`` (the file or option), with a remedy."""
    assert isinstance(error, OWN_ERRORS), f"{type(error).__name__} escaped: {error!r}"
    return assert_sentence(str(error), *names)


def assert_argparse_sentence(error: BaseException) -> str:
    """An option parser's refusal: argparse's own error type, one line with a remedy (argparse adds the option's name)."""
    assert isinstance(error, argparse.ArgumentTypeError), f"{type(error).__name__} escaped: {error!r}"
    message = str(error)
    assert message and "\n" not in message and "\r" not in message, message
    assert "Traceback" not in message, message
    assert REMEDY.search(message), f"no remedy: {message!r}"
    return message


def assert_sentence(message: str, *names: str) -> str:
    assert message, "an empty message"
    assert "\n" not in message and "\r" not in message, f"not one line: {message!r}"
    assert "Traceback" not in message, message
    assert any(name in message for name in names), f"names none of {names}: {message!r}"
    assert REMEDY.search(message), f"no remedy: {message!r}"
    return message


# --- odd values, drawn where a field's value goes ---------------------------------------------------------------

HUGE = 200_000  # characters: larger than the csv module's field limit (131,072)

odd_text = st.one_of(
    st.sampled_from(["", " ", "\t\n", "\x00", "a\x00b", "\u00a0", "\ufeff", "\u2028", "Cafe\u0301", "Caf\u00e9", "x" * HUGE]),
    st.text(max_size=12),
)
odd_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 2, 9, 10**30, 0.5, 1.0, -0.0, float("nan"), float("inf"), float("-inf")]),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
)
odd_value = st.recursive(
    st.one_of(odd_scalar, odd_text),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)

# Whole documents that are not what a reader expects: broken syntax, other encodings, NUL bytes, numbers with more
# digits than Python converts, nesting deeper than the JSON decoder recurses.
ODD_DOCUMENTS = st.sampled_from(
    [
        b"\n\n",
        b"\xef\xbb\xbf",
        b"\xff\xfe{\x00}\x00",
        b"\x00" * 16,
        b"[",
        b"{",
        b"[1, 2",
        b"null",
        b"42",
        b'"text"',
        b"[]",
        b"{}",
        b"NaN",
        b"[" + b"1" * 5000 + b"]",
        b"1" * 5000,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b"\x80\x81\x82 not utf-8",
        b"caf\xe9",
        b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94.",  # the start of a pickle
        b"",  # last: Hypothesis draws the first of a list most often
    ]
)
odd_bytes = st.one_of(ODD_DOCUMENTS, ODD_DOCUMENTS, st.binary(min_size=2, max_size=64))


# Texts that are well formed but odd: line and paragraph separators, NEL, control and format characters, quotes,
# commas, non-Latin scripts; never blank, never a lone surrogate.
SPECIAL_CHARACTERS = "\u2028\u2029\x85\x1c\x1d\x1e\x0b\x0c\u00a0\u200b\ufeff\"',;\\{}[]#\u00e9e\u0301\u4e2d\U0001f600"
fine_text = st.text(
    st.one_of(st.characters(codec="utf-8", exclude_categories=("Cs",)), st.sampled_from(SPECIAL_CHARACTERS)), min_size=1, max_size=16
).filter(str.strip)


def byte_damage(data: bytes, draw: Any) -> bytes:
    """``data`` with one kind of damage drawn: cut short, a byte that is no UTF-8, a NUL, or a leading BOM."""
    kind = draw(st.sampled_from(["cut", "bad-byte", "nul", "bom"]))
    if kind == "bom":
        return b"\xef\xbb\xbf" + data
    at = draw(st.integers(1, max(1, len(data) - 1)))  # not at either end: a cut there leaves nothing or everything
    if kind == "cut":
        return data[:at]
    return data[:at] + (b"\xff" if kind == "bad-byte" else b"\x00") + data[at:]


def text_of(value: Any) -> str:
    """``value`` as a CSV / TSV cell: text as it is, anything else as JSON (lists are written so)."""
    import json

    return value if isinstance(value, str) else json.dumps(value)


def record_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a record a mutation can hit: keys of objects and items of lists, nested."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return []
    return [path for key, item in items for path in [(*prefix, key), *record_paths(item, (*prefix, key))]]
