"""The deployment commands end to end through Typer: certs -> consortium start -> node start (x2,
detached) -> both nodes online -> consortium stop leaves no process behind."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from federation.deployment.control import ControlClient
from federation.deployment.nodes import ConsortiumState
from federation.deployment.processes import flower_processes_under, tree_of
from flows.cli.consortium_cmd import register
from pipelines.errors import InputError

pytestmark = pytest.mark.slow


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """fedadmet (deployment commands only)."""

    register(app)
    return app


def _invoke(app: typer.Typer, args: list[str]):
    result = CliRunner().invoke(app, args, catch_exceptions=True)
    if isinstance(result.exception, InputError):
        raise result.exception
    if result.exit_code == 2 and "error:" in result.output:  # the CLI's one error path: an 'error:' line, exit 2
        raise InputError(result.output.strip())
    assert result.exit_code == 0, f"{args}: {result.output}\n{result.exception!r}"
    return result


def test_certs_rejects_bad_partner_ids(tmp_path: Path):
    with pytest.raises(InputError, match="invalid partner id"):
        _invoke(_cli(), ["certs", "--out", str(tmp_path / "c"), "--partner-ids", "ok_1,bad id"])
    assert not (tmp_path / "c" / "credentials.json").exists()


def test_cli_start_nodes_and_stop(tmp_path: Path):
    app = _cli()
    certs, run_dir = tmp_path / "certs", tmp_path / "consortium"
    _invoke(app, ["certs", "--out", str(certs), "--partners", "2"])
    manifest = json.loads((certs / "credentials.json").read_text())
    assert [p["partner"] for p in manifest["partners"]] == ["partner_00", "partner_01"]
    # A second `certs` into the same folder must not silently replace registered keys.
    with pytest.raises(InputError, match="already holds"):
        _invoke(app, ["certs", "--out", str(certs), "--partners", "2"])

    state = None
    try:
        _invoke(app, ["consortium", "start", "--certs", str(certs), "--run-dir", str(run_dir), "--port", "0"])
        state = ConsortiumState.read(run_dir)
        assert sorted(state.node_ids) == ["partner_00", "partner_01"]
        with pytest.raises(InputError, match="already running"):
            _invoke(app, ["consortium", "start", "--certs", str(certs), "--run-dir", str(run_dir), "--port", "0"])
        for partner in ("partner_00", "partner_01"):
            data = tmp_path / partner / "data.csv"
            data.parent.mkdir()
            data.write_text("smiles,test,value\nCCO,x,1\n")
            _invoke(app, ["node", "start", "--data", str(data.parent), "--superlink", state.superlink_address,
                          "--partner", partner, "--key", str(certs / "partners" / partner / "node.key"),
                          "--ca", str(certs / "ca.crt"), "--run-dir", str(run_dir), "--detach"])
        client = ControlClient(Path(state.flwr_home))
        wanted = {str(i) for i in state.node_ids.values()}
        deadline = time.monotonic() + 90
        online: set[str] = set()
        while time.monotonic() < deadline and online != wanted:
            online = {n["node-id"] for n in client.list_nodes() if n["status"] == "online"}
            time.sleep(1.0)
        assert online == wanted
        with pytest.raises(InputError, match="HOST:PORT"):
            _invoke(app, ["node", "start", "--data", str(tmp_path), "--superlink", "https://x",
                          "--partner", "partner_00", "--key", str(certs / "ca.crt"), "--ca", str(certs / "ca.crt")])
    finally:
        _invoke(app, ["consortium", "stop", "--run-dir", str(run_dir)])
    time.sleep(0.5)
    assert state is not None and not tree_of(state.superlink_pid)
    assert flower_processes_under(run_dir) == []
