"""The software stack editguard runs on: the supported range, the versions that decide outputs, and every
place where transformers 4.57+ and 5.x differ in an API editguard uses.

Owns nothing else.  Modules that touch one of these APIs call the function here instead of asking for a
version themselves, so a new transformers release is met in one file.

* ``check_stack()``: an installed transformers, torch, datasets or numpy outside ``SUPPORTED`` is told in one
  sentence at start-up (the plugin turns it into exit 4), never found later as a traceback.
* ``output_versions()``: the versions whose change can change a model's outputs (transformers' model code and
  kernels' defaults, torch's kernels); they join the output cache key and the baselines' provenance.
* ``gpt2_tokenizer``: transformers 5 takes ``vocab=`` / ``merges=`` and silently ignores 4.x's ``vocab_file=``
  (an empty vocabulary, no error); 4.x takes only the latter.
* ``cache_from_layers`` / ``cache_layers``: a key/value cache from per-layer ``(keys, values)`` and back.
  5.x dropped ``DynamicCache.from_legacy_cache`` / ``to_legacy_cache``; both ends build a ``DynamicCache`` from
  ``ddp_cache_data`` and keep ``.layers`` with ``.keys`` / ``.values``.
* ``cache_argument`` / ``returned_cache``: transformers 5.25 renamed a model's ``past_key_values`` argument and
  output to ``cache`` (the old names still work until 5.40, with a FutureWarning on every run); before, only
  ``past_key_values`` exists.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Requirement:
    """A package's supported versions: at least ``floor``, below ``ceiling`` when there is one (a major release
    known to break), and the reason in words for the sentence that refuses it."""

    package: str
    floor: tuple[int, ...]
    ceiling: tuple[int, ...] | None = None

    def describe(self) -> str:
        floor = ".".join(map(str, self.floor))
        return f">= {floor}" + (f", < {'.'.join(map(str, self.ceiling))}" if self.ceiling else "")

    def admits(self, version: tuple[int, ...]) -> bool:
        return version >= self.floor and (self.ceiling is None or version < self.ceiling)


# Kept in step with pyproject.toml's dependencies (a fast test compares them).  transformers 4.57 is EasyEdit's
# own pin (its main branch) and the oldest release editguard is tested on; 7 is the next major, not yet released.
SUPPORTED: tuple[Requirement, ...] = (
    Requirement("transformers", (4, 57), (6,)),
    Requirement("torch", (2, 4)),
    Requirement("datasets", (4, 0), (6,)),
    Requirement("numpy", (1, 26)),
)
OUTPUT_PACKAGES = ("transformers", "torch")


class UnsupportedStack(RuntimeError):
    """An installed package's version is outside ``SUPPORTED``."""


def version_tuple(version: str) -> tuple[int, ...]:
    """``"5.23.0"`` -> ``(5, 23, 0)``; ``"2.13.0+cpu"`` -> ``(2, 13, 0)``; a pre-release counts as its release."""
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


def installed_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_stack(requirements: Iterable[Requirement] = SUPPORTED) -> None:
    """Raise ``UnsupportedStack`` naming the first installed package outside its supported range (one not
    installed is the business of whatever needs it: datasets is optional)."""
    for requirement in requirements:
        version = installed_version(requirement.package)
        if version is not None and not requirement.admits(version_tuple(version)):
            raise UnsupportedStack(
                f"{requirement.package} {version} is installed, but editguard supports {requirement.package} "
                f"{requirement.describe()}; install a supported release (pip install '{requirement.package}"
                f"{requirement.describe().replace(' ', '')}')"
            )


def output_versions() -> dict[str, str]:
    """The installed versions that can change a model's outputs, by package (``"-"`` when one is missing)."""
    return {package: installed_version(package) or "-" for package in OUTPUT_PACKAGES}


def describe_versions(versions: dict[str, str]) -> str:
    return ", ".join(f"{package} {version}" for package, version in sorted(versions.items()))


# ----------------------------------------------------------------------------- transformers API differences


def gpt2_tokenizer(vocab: Path, merges: Path) -> Any:
    """A GPT-2 byte-level BPE tokenizer from a vocabulary (JSON) and merges file, on either transformers."""
    from transformers import GPT2TokenizerFast  # type: ignore[attr-defined,unused-ignore]

    if "vocab" in inspect.signature(GPT2TokenizerFast.__init__).parameters:  # transformers 5
        return GPT2TokenizerFast(vocab=str(vocab), merges=str(merges))
    return GPT2TokenizerFast(vocab_file=str(vocab), merges_file=str(merges))


def cache_from_layers(layers: Iterable[tuple[Any, Any]]) -> Any:
    """A ``DynamicCache`` holding per-layer ``(keys, values)``, each (rows, kv heads, length, head dim)."""
    from transformers import DynamicCache

    return DynamicCache(ddp_cache_data=tuple(layers))


def cache_layers(cache: Any) -> tuple[tuple[Any, Any], ...]:
    """Per layer ``(keys, values)`` of whatever cache a model returned (a ``Cache``, or a tuple of pairs)."""
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return tuple((layer.keys, layer.values) for layer in layers)
    return tuple((keys, values) for keys, values in cache)


def cache_argument(model: Any) -> str:
    """The name ``model``'s forward and ``generate`` take a key/value cache by: ``cache`` from transformers 5.25,
    ``past_key_values`` before (and in a model whose own code still says so)."""
    model_class = type(model)
    if model_class not in _CACHE_ARGUMENTS:
        try:
            parameters = inspect.signature(model_class.forward).parameters
        except (AttributeError, TypeError, ValueError):
            parameters = {}  # type: ignore[assignment]
        _CACHE_ARGUMENTS[model_class] = "cache" if "cache" in parameters else "past_key_values"
    return _CACHE_ARGUMENTS[model_class]


_CACHE_ARGUMENTS: dict[type, str] = {}  # a model class -> cache_argument's answer (read off its signature once)


def returned_cache(output: Any) -> Any:
    """The key/value cache a forward pass returned (``cache`` from transformers 5.25, ``past_key_values`` before);
    None when it returned none."""
    for name in ("cache", "past_key_values"):
        if name in output.keys():
            return output[name]
    return None
