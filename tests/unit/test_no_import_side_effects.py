"""Importing the project's packages changes nothing global; ``pipelines.configure()`` does.

Each check runs in a fresh interpreter: the third-party libraries are imported first (their own
import-time effects are theirs), then the state is recorded, the project's packages are imported
and the state is compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = r"""
import json, logging, os, sys
import flwr, prefect, rdkit, torch  # third-party import-time effects are not the project's
from rdkit import rdBase

def state():
    return {"env": dict(os.environ), "rdkit": rdBase.LogStatus(),
            "levels": {name: logging.getLogger(name).level for name in ("", "flwr", "rdkit", "prefect")},
            "root_handlers": len(logging.getLogger().handlers)}

before = state()
import pipelines, admet, federation, clinical_sim, flows, flows.cli  # noqa: F401
after_import = state()
if sys.argv[1] == "configure":
    pipelines.configure()
print(json.dumps({"before": before, "after_import": after_import, "after": state()}))
"""


def _run(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in __import__("pipelines").RUNTIME_DEFAULTS}
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_changes_nothing_and_configure_applies_the_defaults():
    from pipelines import RUNTIME_DEFAULTS

    plain = _run("import")
    before, after = plain["before"], plain["after"]
    added = {k: v for k, v in after["env"].items() if before["env"].get(k) != v}
    assert added == {}, f"importing the packages changed os.environ: {added}"
    assert after["levels"] == before["levels"]
    assert after["root_handlers"] == before["root_handlers"]
    assert after["rdkit"] == before["rdkit"]
    assert "rdApp.warning:enabled" in before["rdkit"]

    configured = _run("configure")
    assert configured["after_import"]["env"] == configured["before"]["env"]
    env = configured["after"]["env"]
    assert {k: env.get(k) for k in RUNTIME_DEFAULTS} == dict(RUNTIME_DEFAULTS)
    assert "rdApp.warning:disabled" in configured["after"]["rdkit"]


def test_configure_keeps_a_users_own_setting():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    proc = subprocess.run([sys.executable, "-c", "import os, pipelines; pipelines.configure(); "
                           "print(os.environ['OMP_WAIT_POLICY'])"], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ACTIVE"


def test_child_process_environment_has_the_defaults_without_configure():
    from pipelines import RUNTIME_DEFAULTS, runtime_environment

    env = runtime_environment({"PATH": "/bin", "DO_NOT_TRACK": "0"})
    assert env["PATH"] == "/bin" and env["DO_NOT_TRACK"] == "0"
    assert all(env[k] == v for k, v in RUNTIME_DEFAULTS.items() if k != "DO_NOT_TRACK")
    assert json.dumps(env)  # plain strings only


def test_the_command_line_applies_the_defaults_before_a_command_runs():
    script = ("import os; from typer.testing import CliRunner; from flows.cli import app; "
              "assert 'OMP_WAIT_POLICY' not in os.environ; "
              "r = CliRunner().invoke(app, ['data', '--help']); assert r.exit_code == 0, r.output; "
              "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('FLWR_DISABLE_UPDATE_CHECK'))")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "FLWR_DISABLE_UPDATE_CHECK")}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["PASSIVE", "1"]


def test_processes_the_project_starts_get_the_defaults_without_configure(tmp_path):
    """Flower's SuperLink/SuperNode/ClientApp processes and the Prefect server are started with the
    runtime defaults in their environment even when the parent never called configure()."""
    script = ("import json, os, sys; from pathlib import Path; "
              "from federation.deployment.processes import flower_env; from flows.prefect_server import server_env; "
              "assert 'OMP_WAIT_POLICY' not in os.environ; "
              "print(json.dumps([flower_env(Path(sys.argv[1])), server_env()]))")
    from pipelines import RUNTIME_DEFAULTS

    env = {k: v for k, v in os.environ.items() if k not in RUNTIME_DEFAULTS}
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "flwr")], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    flower, prefect = json.loads(proc.stdout.strip().splitlines()[-1])
    for child in (flower, prefect):
        assert child["OMP_WAIT_POLICY"] == "PASSIVE" and child["RAY_USAGE_STATS_ENABLED"] == "0"
    assert flower["FLWR_DISABLE_UPDATE_CHECK"] == "1" and prefect["DO_NOT_TRACK"] == "1"
