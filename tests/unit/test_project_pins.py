"""environment.yml, pyproject.toml and requirements/lock.txt must pin the same versions; test-only
tools live in the ``test`` extra, not in the runtime dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*==\s*([^\s;#]+)")


def _name(raw: str) -> str:
    return re.sub(r"[-_.]+", "-", raw).lower()


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = _PIN.match(line)
        if match:
            pins[_name(match.group(1))] = match.group(3)
    return pins


TEST_TOOLS = ("pytest", "hypothesis", "pytest-timeout", "ruff")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pyproject_deps() -> list[str]:
    """Runtime dependencies and every optional extra (all pinned, all in the lock file)."""
    project = _project()
    return [*project["dependencies"], *(d for extra in project.get("optional-dependencies", {}).values()
                                         for d in extra)]


def test_test_tools_are_an_extra_not_runtime_dependencies():
    project = _project()
    runtime = _pins(project["dependencies"])
    extra = _pins(project["optional-dependencies"]["test"])
    assert not set(TEST_TOOLS) & set(runtime), f"test tools among runtime dependencies: {set(TEST_TOOLS) & set(runtime)}"
    assert set(TEST_TOOLS) <= set(extra)


def _environment_pip_lines() -> list[str]:
    lines, inside = [], False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("- pip:"):
            inside = True
            continue
        if inside and stripped.startswith("- "):
            lines.append(stripped[2:])
        elif inside and stripped and not stripped.startswith("#"):
            inside = False
    return lines


def test_every_direct_dependency_is_pinned_exactly():
    unpinned = [d for d in _pyproject_deps() if not _PIN.match(d)]
    assert not unpinned, f"pyproject.toml dependencies without ==: {unpinned}"


def test_environment_yml_pins_equal_pyproject_pins():
    project = _pins(_pyproject_deps())
    environment = _pins(_environment_pip_lines())
    assert project, "no pins parsed from pyproject.toml"
    assert environment == project, (
        f"only in pyproject: {sorted(set(project.items()) - set(environment.items()))}; "
        f"only in environment.yml: {sorted(set(environment.items()) - set(project.items()))}"
    )


def test_environment_yml_python_matches_requires_python():
    text = (ROOT / "environment.yml").read_text()
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    match = re.search(r"-\s*python\s*=\s*([0-9.]+)", text)
    assert match, "environment.yml does not pin python"
    assert match.group(1) == "3.11" and ">=3.11" in requires


def test_lock_file_agrees_with_direct_pins():
    lock = _pins((ROOT / "requirements" / "lock.txt").read_text().splitlines())
    project = _pins(_pyproject_deps())
    missing = sorted(set(project) - set(lock))
    differing = {n: (v, lock[n]) for n, v in project.items() if n in lock and lock[n] != v}
    assert not missing, f"direct dependencies absent from requirements/lock.txt: {missing}"
    assert not differing, f"pyproject pin != lock pin: {differing}"
