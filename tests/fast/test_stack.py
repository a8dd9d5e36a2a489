"""The supported stack: the range in one place, agreeing with pyproject.toml, and a version outside it told in one
sentence before anything is imported."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from editguard.stack import SUPPORTED, Requirement, UnsupportedStack, check_stack, output_versions, version_tuple

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("5.23.0", (5, 23, 0)), ("2.13.0+cpu", (2, 13, 0)), ("4.57.1", (4, 57, 1)), ("5.0.0rc2", (5, 0, 0)), ("2.4", (2, 4))],
)
def test_versions_read_as_numbers(text: str, parsed: tuple[int, ...]) -> None:
    assert version_tuple(text) == parsed


def test_the_range_admits_both_ends_and_refuses_outside() -> None:
    transformers = next(r for r in SUPPORTED if r.package == "transformers")
    assert transformers.admits((4, 57, 1)) and transformers.admits((5, 23, 0))
    assert not transformers.admits((4, 55, 4)) and not transformers.admits((6, 0, 0))


def test_pyproject_declares_the_same_range() -> None:
    """pyproject.toml's requirements and stack.SUPPORTED say the same floors and ceilings."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"]) + [d for extra in project["optional-dependencies"].values() for d in extra]
    for requirement in SUPPORTED:
        line = next(d for d in declared if re.match(rf"{requirement.package}\b", d))
        assert requirement.describe().replace(" ", "") == line[len(requirement.package) :].strip(), line


def test_an_installed_version_outside_the_range_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("editguard.stack.installed_version", lambda package: "4.55.4" if package == "transformers" else None)
    with pytest.raises(UnsupportedStack) as raised:
        check_stack()
    assert str(raised.value) == (
        "transformers 4.55.4 is installed, but editguard supports transformers >= 4.57, < 6; install a supported "
        "release (pip install 'transformers>=4.57,<6')"
    )
    check_stack([Requirement("transformers", (4, 0))])  # an admitted one says nothing


def test_the_gate_refuses_an_unsupported_stack_before_loading_anything(tmp_path: Path) -> None:
    """The editguard command, with transformers' installed version read as 4.55.4: exit 4 and the sentence."""
    probe = (
        "import sys, importlib.metadata as m\n"
        "real = m.version\n"
        "m.version = lambda name: '4.55.4' if name == 'transformers' else real(name)\n"
        "from editguard import cli\n"
        "status = cli.main(['-q'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "sys.exit(status)\n"
    )
    (tmp_path / "pyproject.toml").write_text('[tool.editguard]\nmodel = "tiny-gpt2"\n')
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "transformers 4.55.4 is installed, but editguard supports transformers >= 4.57, < 6" in done.stdout + done.stderr


def test_the_versions_that_decide_outputs_are_torch_and_transformers() -> None:
    assert set(output_versions()) == {"torch", "transformers"}
