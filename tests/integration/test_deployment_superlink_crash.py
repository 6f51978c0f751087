"""A SuperLink that dies under a running ``fedadmet consortium run``: one ``error:`` line, exit 2.

Real processes on 127.0.0.1: a SuperLink (TLS, node authentication) with two registered partners and
no node online, so the submitted ADMET run waits for its partners; the SuperLink is then killed
(SIGKILL, as a crash would). The operator's command must end with exit code 2 and one line naming
the SuperLink and how to resume, not flwr's output or a Python traceback.
"""

from __future__ import annotations

import threading
import time

import pytest
from _deployment_harness import make_consortium
from typer.testing import CliRunner

from flows.cli import app

pytestmark = pytest.mark.slow


def test_superlink_crash_mid_run_is_one_error_line(tmp_path):
    cons = make_consortium(tmp_path / "consortium", ["partner_00", "partner_01"])
    killed = threading.Event()

    def crash_once_submitted() -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if any(str(r.get("status", "")).startswith(("starting", "running", "pending"))
                   for r in cons.control.list_runs()):
                cons.superlink.kill_hard()
                killed.set()
                return
            time.sleep(1.0)

    crasher = threading.Thread(target=crash_once_submitted, daemon=True)
    try:
        crasher.start()
        result = CliRunner().invoke(app, ["consortium", "run", "--run-dir", str(cons.run_dir), "--out",
                                          str(tmp_path / "out"), "--rounds", "1", "--hidden", "8",
                                          "--timeout", "240"])
        crasher.join(timeout=10)
    finally:
        leftovers = cons.close()
    assert killed.is_set(), "the run never showed up at the SuperLink"
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    assert "SuperLink" in lines[0] and "stopped during run" in lines[0] and "--resume" in lines[0]
    assert "Traceback" not in result.output
    assert not leftovers, f"processes left running: {leftovers}"
