"""Imports go one way: pipelines -> admet -> {federation, clinical_sim} -> flows (DESIGN.md).

Walks the AST of every module (imports inside functions included, relative imports resolved) and
fails on an upward import (e.g. pipelines importing admet) or a sideways one (federation <->
clinical_sim). Nothing outside flows imports flows.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = {"pipelines": 0, "admet": 1, "federation": 2, "clinical_sim": 2, "flows": 3}


def _modules() -> list[Path]:
    return sorted(p for package in LAYER for p in (ROOT / package).rglob("*.py"))


def _module_name(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported_packages(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, top-level project package) for every import of a project package in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path, root)
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_package else here[:-1]
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                if node.module:
                    names = [".".join([*base, node.module])]
                else:  # "from .. import x": the imported names are modules under base
                    names = [".".join([*base, alias.name]) for alias in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in LAYER:
                found.append((node.lineno, top))
    return found


def violations(path: Path, root: Path = ROOT) -> list[str]:
    own = path.relative_to(root).parts[0]
    bad = []
    for line, target in imported_packages(path, root):
        if target == own:
            continue
        if LAYER[target] >= LAYER[own]:
            kind = "sideways" if LAYER[target] == LAYER[own] else "upward"
            bad.append(f"{path.relative_to(root)}:{line}: {kind} import of {target} from {own}")
    return bad


def test_the_walker_sees_the_project():
    modules = _modules()
    assert any(p.parts[-2:] == ("pipelines", "readers.py") for p in modules)
    assert "pipelines" in {t for _, t in imported_packages(ROOT / "flows" / "cli" / "__init__.py")}


def test_the_rule_catches_upward_sideways_and_relative_imports(tmp_path):
    fake = tmp_path / "pipelines"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "bad.py").write_text("def f():\n    from admet import model\n")
    side = tmp_path / "federation"
    side.mkdir()
    (side / "x.py").write_text("import clinical_sim.trials\nfrom .y import z\nfrom .. import flows\n")
    assert violations(fake / "bad.py", tmp_path) == ["pipelines/bad.py:2: upward import of admet from pipelines"]
    assert violations(side / "x.py", tmp_path) == [
        "federation/x.py:1: sideways import of clinical_sim from federation",
        "federation/x.py:3: upward import of flows from federation",
    ]


def test_imports_go_one_way():
    modules = _modules()
    assert len(modules) > 100  # the walk found the project, not an empty folder
    found = [v for path in modules for v in violations(path)]
    assert found == [], f"{len(found)} import(s) against the direction:\n" + "\n".join(found)
