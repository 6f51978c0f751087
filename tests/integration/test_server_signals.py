"""``fedadmet server`` stops the ``prefect server`` it started when it gets SIGTERM or SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from flows.prefect_server import free_port, port_in_use

ROOT = Path(__file__).resolve().parents[2]


def _wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no Prefect server answered on port {port}")


def _children(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (from /proc; the server is started in its own session)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(entry.name))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_server_command_stops_its_prefect_server_on_a_signal(signum, tmp_path):
    port = free_port()
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect_home"))
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([str(Path(sys.executable).with_name("fedadmet")), "server", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server_pids: list[int] = []
    try:
        _wait_healthy(port, proc)
        server_pids = _children(proc.pid)
        assert server_pids, "the prefect server child was not found"
        proc.send_signal(signum)
        output, _ = proc.communicate(timeout=60)
        assert not port_in_use("127.0.0.1", port), "the prefect server outlived the command"
        assert proc.returncode == 0, output[-3000:]
        assert f"{signal.Signals(signum).name}: stopping the Prefect server" in output
        assert not [p for p in server_pids if Path(f"/proc/{p}").exists()
                    and "zombie" not in Path(f"/proc/{p}/status").read_text().lower()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for pid in server_pids:  # only if the command failed to stop them
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
