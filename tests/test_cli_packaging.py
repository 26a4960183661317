"""Packaging (issue 10 items 22-23): ranges for users, the verified set for CI, install as documented."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import elevtts
from elevtts.errors import missing_local_extra

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def test_dependencies_are_ranges_not_pins() -> None:
    project = PYPROJECT["project"]
    requirements = [
        *project["dependencies"],
        *(r for e in project["optional-dependencies"].values() for r in e),
    ]
    pinned = [r for r in requirements if "==" in r]
    assert pinned == []
    # rich below 14 is allowed: pipecat-ai[cli] needs rich<14
    assert any(r.startswith("rich>=13") for r in project["dependencies"])


def test_constraints_pin_every_dependency_and_ci_installs_with_them() -> None:
    constraints = {
        _name(line): line
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert all("==" in line for line in constraints.values())
    project = PYPROJECT["project"]
    for requirement in [
        *project["dependencies"],
        *(r for e in project["optional-dependencies"].values() for r in e),
    ]:
        if not requirement.startswith("elevtts["):
            assert _name(requirement) in constraints, requirement
    ci = (REPO / ".ci" / "run").read_text()
    installs = [line for line in ci.splitlines() if "pip install" in line]
    assert installs and all("-c constraints.txt" in line for line in installs)


def test_build_metadata() -> None:
    assert PYPROJECT["build-system"]["requires"] == ["setuptools>=77"]  # the SPDX license string
    project = PYPROJECT["project"]
    assert "version" not in project and project["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "elevtts.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", elevtts.__version__)
    assert "Typing :: Typed" in project["classifiers"]
    assert (REPO / "elevtts" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["elevtts"]


def test_install_instructions_name_this_repository() -> None:
    readme = (REPO / "README.md").read_text()
    assert "`pip install elevtts`" not in readme  # it is not published
    assert "pip install -e '.[local]'" in readme
    message = missing_local_extra(ModuleNotFoundError("no piper", name="piper"), what="elevtts serve").message
    assert "piper is missing" in message and "pip install -e '.[local]'" in message
    assert "elevtts[local]" not in message
