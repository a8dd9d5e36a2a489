"""The plugin's options: the ``--editguard-*`` group (each also an ini option and a ``[tool.editguard]`` key), built
into one frozen ``Settings`` in pytest's config, with the checks that refuse a configuration before anything runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from editguard.plugin.state import LOCALITY, PROBLEMS_KEY, SETTINGS_KEY
from editguard.settings import OPTIONS, Settings, SettingsError, build_settings, origin


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("editguard", "editguard: gate edited models on their general abilities")
    for option in OPTIONS:
        if option.flag:
            group.addoption(option.cli, action="store_true", default=None, dest=f"editguard_{option.name}", help=option.help)
            group.addoption(option.negative_cli, action="store_false", default=None, dest=f"editguard_{option.name}", help=f"the opposite of {option.cli}")
        else:
            group.addoption(
                option.cli,
                action="append" if option.repeat else "store",
                type=option.parse,
                default=None,
                dest=f"editguard_{option.name}",
                metavar=option.metavar,
                help=option.help,
            )
        if option.repeat:
            parser.addini(option.ini, help=option.help, type="linelist", default=None)
        else:
            parser.addini(option.ini, help=option.help, type="string", default=None)


def _pyproject_table(rootpath: Path) -> dict[str, Any]:
    import tomllib

    path = rootpath / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise pytest.UsageError(f"{path} is not valid TOML: {error}") from None
    section = document.get("tool", {}).get("editguard", {})
    return section if isinstance(section, dict) else {}


def configure(config: pytest.Config) -> None:
    """The run's settings, from the command line, ``[tool.editguard]`` and the ini file (the command line wins)."""
    _check_configuration_file(config)
    cli = {option.name: config.getoption(f"editguard_{option.name}") for option in OPTIONS}
    ini = {option.name: config.getini(option.ini) for option in OPTIONS}
    try:
        # Without a configuration file pytest guesses its rootdir from path-like arguments (option values
        # included), which would move the default baselines folder between runs: use the working directory.
        root = config.rootpath if config.inipath is not None else config.invocation_params.dir
        pyproject = _pyproject_table(root)
        settings = build_settings(cli, pyproject, ini, rootdir=root)
    except SettingsError as error:
        raise pytest.UsageError(str(error)) from None
    _check_ability_names(settings, lambda name: origin(name, cli, pyproject, ini))
    config.stash[SETTINGS_KEY] = settings
    config.stash[PROBLEMS_KEY] = {}


def _check_configuration_file(config: pytest.Config) -> None:
    """pytest guesses its configuration file from path-like arguments, option values included: refuse a guess
    that the path given to an editguard option moved away from the project's own configuration."""
    given = None if config.option.inifilename else _path_option_given_apart(config.invocation_params.args)
    if given is None:
        return
    expected = _configuration_file_of(config.invocation_params.dir)
    if expected is False or expected == config.inipath:
        return
    flag, value = given
    found = config.inipath or "no configuration file"
    wanted = f"the project's {expected}" if expected else "none (the working directory has no configuration file)"
    raise pytest.UsageError(
        f"{flag} {value}: pytest read {found} instead of {wanted}, because it guesses its configuration file from "
        f"path arguments; write {flag}={value}, or pass -c with the project's configuration file, or run the editguard command"
    )


def _path_option_given_apart(args: tuple[str, ...]) -> tuple[str, str] | None:
    """The first editguard option given as ``--flag VALUE`` (not ``--flag=VALUE``) whose value is an existing path."""
    takes_value = {option.cli for option in OPTIONS if not option.flag}
    for flag, value in zip(args, args[1:]):
        if flag in takes_value and not value.startswith("-") and Path(value.split("::")[0]).exists():
            return flag, value
    return None


def _configuration_file_of(folder: Path) -> Path | None | bool:
    """The configuration file pytest finds from ``folder`` alone (None: none), or False when it cannot be told."""
    from _pytest.config.findpaths import locate_config  # pytest's own search, so the answer matches pytest's

    try:
        return locate_config(folder, [folder])[1]
    except Exception:  # a pytest whose private search differs: do not guess
        return False


def _check_ability_names(settings: Settings, origin_of: Callable[[str], str]) -> None:
    """Every ability named by an option (abilities, data, per-ability tolerances) exists; "did you mean" when not."""
    from editguard.tasks import get_task

    named = [(origin_of("abilities"), name) for name in settings.abilities or () if name != LOCALITY]
    named += [(origin_of("data"), name) for name in settings.data]
    named += [(origin_of("tolerance"), name) for name in settings.tolerances]
    for option, name in named:
        try:
            get_task(name, settings.protocol)
        except KeyError as error:
            raise pytest.UsageError(f"{option}: {error}") from None
