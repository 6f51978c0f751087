"""Start, probe and stop a local Prefect server (the dashboard) on the loopback interface.

Flows use Prefect's ephemeral API by default; with a server running they report to it when
``PREFECT_API_URL`` points at ``http://127.0.0.1:<port>/api``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipelines import runtime_environment
from pipelines.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _prefect_executable() -> list[str]:
    exe = Path(sys.executable).with_name("prefect")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("prefect")
    if found:
        return [found]
    return [sys.executable, "-m", "prefect"]


@dataclass
class PrefectServer:
    """A ``prefect server start`` child process."""

    host: str
    port: int
    process: subprocess.Popen
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until ``/api/health`` answers; InputError with the log tail if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise InputError(f"prefect server exited with code {self.process.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        log.info("prefect server ready at %s", self.ui_url)
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise InputError(f"prefect server did not answer on {self.api_url} within {timeout:.0f}s: {self.log_tail()}")

    def log_tail(self, n: int = 2000) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-n:]
        return ""

    def stop(self, timeout: float = 20.0) -> None:
        """Terminate the server's process group (uvicorn workers included)."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)


def server_env(prefect_home: Path | None = None) -> dict[str, str]:
    """Environment for a server child: telemetry off; its own PREFECT_HOME when given."""
    env = runtime_environment()
    env.pop("PREFECT_API_URL", None)
    env.update({"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                "PREFECT_UI_ENABLED": "true"})
    if prefect_home is not None:
        prefect_home.mkdir(parents=True, exist_ok=True)
        env["PREFECT_HOME"] = str(prefect_home)
    return env


def start_server(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, prefect_home: Path | None = None,
                 log_path: Path | None = None) -> PrefectServer:
    """Launch ``prefect server start`` in its own process group (call ``wait_ready`` next)."""
    if port_in_use(host, port):
        raise InputError(f"port {port} on {host} is already in use (is a Prefect server already running?)")
    env = server_env(prefect_home)
    # the UI asks this URL for the API; Prefect's default is port 4200 whatever --port says
    env.setdefault("PREFECT_UI_API_URL", f"http://{host}:{port}/api")
    cmd = [*_prefect_executable(), "server", "start", "--host", host, "--port", str(port)]
    log.info("starting %s", " ".join(cmd))
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return PrefectServer(host=host, port=port, process=process, log_path=log_path, env=env)


class Stopped(Exception):
    """Raised in the main thread by :func:`stop_on_signals` when SIGTERM or SIGINT arrives."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals(*signums: int) -> Iterator[None]:
    """Turn SIGTERM / SIGINT into :class:`Stopped` while the block runs (so ``finally`` clauses
    stop child servers); the previous handlers come back afterwards. Main thread only."""
    signums = signums or (signal.SIGTERM, signal.SIGINT)

    def _raise(signum, _frame):
        raise Stopped(signum)

    previous = {s: signal.signal(s, _raise) for s in signums}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
