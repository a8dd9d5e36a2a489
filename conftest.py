"""Shared test set-up for editguard's own suite.

Converted models and computed edits are cached under ``.cache/editguard`` in the checkout (ignored by
git) unless ``EDITGUARD_CACHE_DIR`` says otherwise, so the slow steps happen once per machine and the
pytester runs (in-process or subprocess) share them.
"""

from __future__ import annotations

import os
from pathlib import Path

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parent
os.environ.setdefault("EDITGUARD_CACHE_DIR", str(ROOT / ".cache" / "editguard"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests reaches the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
