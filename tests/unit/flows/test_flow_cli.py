"""The orchestration commands: ``fedadmet screen`` end to end, and clear one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[3]


def test_screen_command_writes_ranked_table_and_report(prefect_harness, tiny_library, tiny_bundle, tmp_path):
    from flows.cli import app

    out = tmp_path / "screen"
    result = CliRunner().invoke(app, ["screen", str(tiny_library), "--model", str(tiny_bundle), "--out", str(out),
                                      "--chunk-size", "6", "--top", "3", "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "14 molecules: 12 ranked, 2 rejected" in result.output
    ranked = pd.read_csv(out / "ranked.csv")
    assert len(ranked) == 12 and (out / "report.md").exists() and (out / "config.json").exists()


def test_missing_library_is_one_red_line_and_exit_code_2(tiny_bundle, tmp_path):
    proc = subprocess.run([str(Path(sys.executable).with_name("fedadmet")), "screen", str(tmp_path / "none.csv"),
                           "--model", str(tiny_bundle), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert f"LIBRARY {tmp_path / 'none.csv'}: no such file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_server_refuses_a_busy_port(tmp_path):
    import socket

    from flows.prefect_server import start_server
    from pipelines.errors import InputError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        try:
            start_server(port=port, prefect_home=tmp_path)
        except InputError as exc:
            assert "already in use" in str(exc)
        else:  # pragma: no cover - the assertion below reports it
            raise AssertionError("a busy port was accepted")
