"""The deployment commands end to end through Typer: certs -> consortium start -> node start (x2,
detached) -> both nodes online -> consortium stop leaves no process behind."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from federation.deployment.certs import generate_partner_key
from federation.deployment.control import ControlClient
from federation.deployment.nodes import ConsortiumState
from federation.deployment.processes import flower_processes_under, free_port, tree_of
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


RAW_PARTNER = Path(__file__).resolve().parents[1] / "fixtures" / "k_melloddy_raw_partner.csv"


def test_cli_start_nodes_and_stop(tmp_path: Path, monkeypatch):
    """Relative paths throughout (the commands run from tmp_path), a node's own local port, ``--detach``
    failing loudly for a key the SuperLink does not know, ``consortium status``."""
    monkeypatch.chdir(tmp_path)
    app = _cli()
    certs, run_dir = Path("certs"), Path("consortium")
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
        assert state.operator_address.startswith("127.0.0.1:") and state.operator_address != state.superlink_address
        local_port = free_port()
        for partner in ("partner_00", "partner_01"):
            data = Path(partner) / "data.csv"
            data.parent.mkdir()
            data.write_text(RAW_PARTNER.read_text())
            extra = ["--port", str(local_port)] if partner == "partner_00" else []
            result = _invoke(app, ["node", "start", "--data", str(data.parent), "--superlink", state.superlink_address,
                                   "--partner", partner, "--key", str(certs / "partners" / partner / "node.key"),
                                   "--ca", str(certs / "ca.crt"), "--run-dir", str(run_dir), "--detach", *extra])
            assert "5 training rows" in result.output
        node_cmd = next(p.cmdline() for p in flower_processes_under(tmp_path / run_dir)
                        if "federation.deployment.app_guard" in p.cmdline() and "partner_00" in p.cmdline())
        assert node_cmd[node_cmd.index("--port") + 1] == str(local_port)
        assert (tmp_path / run_dir / "nodes" / "partner_00" / "work" / "prepared" / "rejected.csv").is_file()
        client = ControlClient(Path(state.flwr_home))
        wanted = {str(i) for i in state.node_ids.values()}
        deadline = time.monotonic() + 90
        online: set[str] = set()
        while time.monotonic() < deadline and online != wanted:
            online = {n["node-id"] for n in client.list_nodes() if n["status"] == "online"}
            time.sleep(1.0)
        assert online == wanted
        status = CliRunner().invoke(app, ["consortium", "status", "--run-dir", str(run_dir)], terminal_width=200)
        assert status.exit_code == 0, status.output
        assert "running" in status.output and status.output.count("online") >= 2
        # a key the operator never registered: the SuperNode dies on start, --detach says so (exit 1)
        rogue = generate_partner_key("rogue_00", Path("rogue"))
        (Path("rogue") / "data.csv").write_text(RAW_PARTNER.read_text())
        died = CliRunner().invoke(app, ["node", "start", "--data", "rogue", "--superlink", state.superlink_address,
                                        "--partner", "rogue_00", "--key", str(rogue.private_key),
                                        "--ca", str(certs / "ca.crt"), "--run-dir", str(run_dir), "--detach",
                                        "--startup-timeout", "60"])
        assert died.exit_code == 1 and "died on start" in died.output, died.output
        nothing = Path("empty.csv")
        nothing.write_text(RAW_PARTNER.read_text().splitlines()[0] + "\nX,,CCO,,T,PPBR,,,,,1,furlongs/fortnight\n")
        with pytest.raises(InputError, match="not going online"):
            _invoke(app, ["node", "start", "--data", str(nothing), "--superlink", state.superlink_address,
                          "--partner", "partner_01", "--key", str(certs / "partners" / "partner_01" / "node.key"),
                          "--ca", str(certs / "ca.crt"), "--run-dir", str(run_dir)])
        with pytest.raises(InputError, match="HOST:PORT"):
            _invoke(app, ["node", "start", "--data", str(tmp_path), "--superlink", "https://x",
                          "--partner", "partner_00", "--key", str(certs / "ca.crt"), "--ca", str(certs / "ca.crt")])
    finally:
        _invoke(app, ["consortium", "stop", "--run-dir", str(run_dir)])
    time.sleep(0.5)
    assert state is not None and not tree_of(state.superlink_pid)
    assert flower_processes_under(tmp_path / run_dir) == []
