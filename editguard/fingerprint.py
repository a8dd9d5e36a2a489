"""Content fingerprints: short, stable hex digests of data, prompts and weights.

A leaf module: imports nothing from the project and nothing heavier than hashlib and json.
Tensors are hashed through their raw bytes by the caller (see ``models.weights_fingerprint``),
so this module stays free of torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

DIGEST_CHARS = 16


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def fingerprint(value: Any) -> str:
    """Digest of any JSON-able value."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()[:DIGEST_CHARS]


def fingerprint_chunks(chunks: Iterable[bytes | memoryview | str]) -> str:
    """Digest of a sequence of byte or text chunks, each length-prefixed so boundaries count."""
    digest = hashlib.sha256()
    for chunk in chunks:
        data = chunk.encode("utf-8") if isinstance(chunk, str) else chunk
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()[:DIGEST_CHARS]


def combine(*parts: str) -> str:
    """Digest of several digests (order matters)."""
    return fingerprint_chunks(parts)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that decide a result (recorded in baselines and cache keys)."""
    import platform
    from contextlib import suppress
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in ("editguard", "torch", "transformers", "easyeditor"):
        with suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions
