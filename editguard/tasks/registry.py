"""The ability registry: every module of ``editguard.tasks`` that declares an ``ABILITY`` record, by name.

Abilities are found, not listed: the first lookup imports each module of the package (in sorted order,
so every process, xdist workers included, finds the same) except the package's own machinery, and
registers the module's ``ABILITY``.  A new ability is one new module beside ``sentiment.py`` plus its
probe data (``data/<ability>.jsonl``) and tests.  Helper modules that are no ability start with ``_``.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import sys

from editguard.tasks.base import PROTOCOLS, Ability, Task, UnknownTaskError

# The package's machinery: no ability lives here.
_MACHINERY = frozenset({"base", "common", "readers", "registry", "schema", "scorers", "sources"})
_PACKAGE = __name__.rpartition(".")[0]

_ABILITIES: dict[str, Ability] = {}
_discovered = False


def register(ability: Ability) -> None:
    """Add an ability; its name must be new (registering the very same record again does nothing)."""
    if not isinstance(ability, Ability):
        raise TypeError(f"register() takes an Ability record, not {type(ability).__name__}")
    known = _ABILITIES.get(ability.name)
    if known is not None and known is not ability:
        raise ValueError(f"ability {ability.name!r} is registered twice; rename one of them")
    _ABILITIES[ability.name] = ability


def unregister(name: str) -> None:
    """Remove an ability (tests that register one of their own put the registry back with this)."""
    _ABILITIES.pop(name, None)


def discover() -> None:
    """Import the package's ability modules not imported yet and register their ABILITY records."""
    global _discovered
    for module_name in _ability_modules():
        module = importlib.import_module(f"{_PACKAGE}.{module_name}")
        ability = getattr(module, "ABILITY", None)
        if ability is None:
            raise TypeError(
                f"{module.__file__} has no ABILITY record; an ability module declares one (see sentiment.py), "
                "and a helper module's name starts with '_'"
            )
        register(ability)
    _discovered = True


def _ability_modules() -> list[str]:
    path = sys.modules[_PACKAGE].__path__
    names = {info.name for info in pkgutil.iter_modules(path) if not info.ispkg}
    return sorted(name for name in names if name not in _MACHINERY and not name.startswith("_"))


def _abilities() -> dict[str, Ability]:
    if not _discovered:
        discover()
    return _ABILITIES


def get_ability(name: str) -> Ability:
    abilities = _abilities()
    if name not in abilities:
        names = all_names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known abilities: {', '.join(names)}"
        raise UnknownTaskError(f"unknown ability {name!r}{hint}")
    return abilities[name]


def get_task(name: str, protocol: str = "default") -> Task:
    if protocol not in PROTOCOLS:
        raise UnknownTaskError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return get_ability(name).task(protocol)


def task_names() -> list[str]:
    """Registered general abilities (one ``test_ability`` each), sorted (xdist workers must collect the same order)."""
    return sorted(name for name, ability in _abilities().items() if ability.role == "ability")


def canary_names() -> list[str]:
    """Registered canaries (``test_canary``): checks of the model as a whole, gated apart from the abilities."""
    return sorted(name for name, ability in _abilities().items() if ability.role == "canary")


def all_names() -> list[str]:
    """Every registered record, abilities and canaries, sorted."""
    return sorted(_abilities())
