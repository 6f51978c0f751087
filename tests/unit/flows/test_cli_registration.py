"""Every command group is registered; a group whose module cannot be imported is an error, not a
silently missing command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

_BLOCK = r"""
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "flows.cli.trial_cmd":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block())
try:
    import flows.cli  # noqa: F401
except ImportError as exc:
    print("RAISED", "trial_cmd" in str(exc))
else:
    print("IMPORTED")
"""


def test_every_command_group_is_registered():
    from flows.cli import app

    names = {g.name for g in app.registered_groups} | {c.name for c in app.registered_commands}
    assert {"data", "admet", "trial", "consortium", "federate", "screen", "demo"} <= names


def test_a_command_module_that_fails_to_import_fails_the_cli():
    proc = subprocess.run([sys.executable, "-c", _BLOCK], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["RAISED", "True"]
