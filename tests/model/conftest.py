"""Fixtures of the model tier: the tiny deterministic GPT-2 and the embedded SmolLM2, loaded once a session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

# pytester's in-process runs restore sys.modules afterwards, dropping whatever the inner run imported
# first; re-importing torch's C extension later crashes the interpreter.  Import the heavy stack here,
# when the model tier is collected, so every inner run finds it already loaded.  (matplotlib too: the reports
# draw with it, and a pyplot imported again fails with "Single argument to subplot must be a three-digit integer".)
import matplotlib.pyplot  # noqa: F401
import torch  # noqa: F401
import transformers  # noqa: F401

from editguard.editing.easyedit_compat import import_easyeditor
from editguard.models import EMBEDDED_DEFAULT, TINY, load_model

import_easyeditor()


@pytest.fixture(scope="session")
def tiny(cache_dir: Path) -> Any:
    """The tiny deterministic GPT-2 (built in about a second)."""
    return load_model(TINY, device="cpu", cache_dir=cache_dir)


@pytest.fixture(scope="session")
def smollm2(cache_dir: Path) -> Any:
    """The embedded default, SmolLM2-135M-Instruct (converted once into the cache)."""
    return load_model(EMBEDDED_DEFAULT, device="cpu", cache_dir=cache_dir)
