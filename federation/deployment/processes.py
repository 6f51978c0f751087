"""Start and stop Flower's long-running processes (SuperLink, SuperNodes) and everything they spawn.

Flower detaches some of its children (the SuperExec that runs ServerApp/ClientApp subprocesses
is started in its own session), so killing one process group is not enough. :class:`ManagedProcess`
starts the command in a new session, and :meth:`ManagedProcess.stop` collects the whole process tree
with psutil first, then terminates it (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from pipelines import runtime_environment
from pipelines.errors import InputError

log = logging.getLogger(__name__)


def venv_bin() -> Path:
    """Folder of the running interpreter's console scripts (flower-superlink & co live there)."""
    return Path(sys.executable).parent


def flower_executable(name: str) -> str:
    """Absolute path of a Flower console script next to this interpreter, else the bare name."""
    candidate = venv_bin() / name
    return str(candidate) if candidate.exists() else name


def flower_env(flwr_home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for every Flower process we start: no update check, no telemetry,
    no runtime ``uv`` installs of app dependencies, a private ``FLWR_HOME``, and this
    interpreter's ``bin`` first on PATH (Flower spawns ``flower-superexec`` by name).
    The project's runtime defaults (``pipelines.runtime_environment``) are filled in where unset,
    so the processes are offline and quiet whether or not this process called ``configure()``."""
    env = runtime_environment()
    env.update({
        "FLWR_HOME": str(flwr_home),
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "FLWR_TELEMETRY_ENABLED": "0",
        "PYTHONUNBUFFERED": "1",
        "PATH": f"{venv_bin()}{os.pathsep}{env.get('PATH', '')}",
    })
    env.update(extra or {})
    flwr_home.mkdir(parents=True, exist_ok=True)
    return env


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.25, abort: Callable[[], str | None] | None = None) -> None:
    """Poll ``predicate`` until true; raise TimeoutError naming ``what`` after ``timeout`` s.

    ``abort`` may return a reason string to stop waiting early (e.g. the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if abort is not None and (reason := abort()):
            raise RuntimeError(f"gave up waiting for {what}: {reason}")
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def tree_of(pid: int) -> list[psutil.Process]:
    """The process and all its descendants (empty if it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def stop_tree(pid: int, grace: float = 5.0) -> int:
    """SIGTERM a process and its descendants, SIGKILL what is left after ``grace`` s.
    Returns the number of processes that were signalled."""
    procs = tree_of(pid)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=grace)
    # Children may have spawned grandchildren while shutting down: sweep once more.
    stragglers = {p.pid: p for p in alive}
    for proc in list(alive):
        with contextlib.suppress(psutil.Error):
            for child in proc.children(recursive=True):
                stragglers.setdefault(child.pid, child)
    for proc in stragglers.values():
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(list(stragglers.values()), timeout=grace)
    return len(procs)


@dataclass
class ManagedProcess:
    """A Flower process we started: its command, log file and process handle."""

    name: str
    """Human name (``superlink``, ``supernode partner_03``)."""
    command: list[str]
    log_path: Path
    env: dict[str, str] = field(repr=False, default_factory=dict)
    popen: subprocess.Popen | None = field(default=None, repr=False)
    _descendants: dict[int, psutil.Process] = field(default_factory=dict, repr=False)

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.popen.pid

    def start(self, cwd: Path | None = None) -> ManagedProcess:
        exe = self.command[0]
        if os.sep not in exe and not any(
            (Path(d) / exe).exists() for d in self.env.get("PATH", "").split(os.pathsep)
        ):
            raise InputError(f"{exe} not found on PATH: is flwr installed in this environment?")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_handle = self.log_path.open("ab")
        log.info("starting %s: %s (log: %s)", self.name, " ".join(self.command), self.log_path)
        self.popen = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
            self.command, env=self.env or None, cwd=cwd, stdout=log_handle,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log_handle.close()
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def exit_reason(self) -> str | None:
        """None while running, else a line naming the exit code and the log's last lines."""
        if self.popen is None or self.popen.poll() is None:
            return None
        return f"{self.name} exited with code {self.popen.returncode}; last log lines:\n{self.tail()}"

    def tail(self, lines: int = 15) -> str:
        if not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def remember_descendants(self) -> None:
        """Record the current process tree, so detached children are found even after the
        parent died (psutil can no longer walk from a dead parent)."""
        if self.popen is not None:
            for proc in tree_of(self.popen.pid)[1:]:
                self._descendants.setdefault(proc.pid, proc)

    def stop(self, grace: float = 5.0) -> None:
        """Stop the process and every descendant; safe to call twice."""
        if self.popen is None:
            return
        self.remember_descendants()
        if self.popen.poll() is None:
            stop_tree(self.popen.pid, grace=grace)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=grace)
        for proc in self._descendants.values():
            with contextlib.suppress(psutil.Error):
                if proc.is_running():
                    stop_tree(proc.pid, grace=grace)
        log.info("stopped %s", self.name)

    def kill_hard(self) -> None:
        """SIGKILL the process and its descendants at once (simulates a crashed site)."""
        if self.popen is None:
            return
        procs = tree_of(self.popen.pid)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(procs, timeout=5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)


FLOWER_PROGRAMS = ("flower-superlink", "flower-supernode", "flower-superexec", "flwr-serverapp",
                   "flwr-clientapp", "flwr")


#: fedadmet's wrappers around Flower's programs (``python -m <module> ...``).
FLOWER_WRAPPERS = ("federation.deployment.app_guard", "federation.deployment.locked_superlink",
                   "federation.deployment.warm_clientapp")


def _is_flower(cmdline: list[str]) -> bool:
    """A Flower program: its executable (or the script python runs) is one of Flower's, or one of
    fedadmet's wrappers of them."""
    if len(cmdline) >= 3 and cmdline[1] == "-m" and cmdline[2] in FLOWER_WRAPPERS:
        return True
    for part in cmdline[:2]:
        name = Path(part).name
        if any(name == prog or name.startswith(prog + "-") for prog in FLOWER_PROGRAMS):
            return True
    return False


def flower_processes_under(folder: Path) -> list[psutil.Process]:
    """Running Flower processes started from ``folder`` (the run folder): its path is on their
    command line or their FLWR_HOME lies under it. The caller and its ancestors are never listed.
    Used by ``consortium stop`` and by tests' leftover checks."""
    needle = str(Path(folder).resolve())
    me = psutil.Process()
    exclude = {me.pid, *(p.pid for p in me.parents())}
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "environ"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid in exclude:
                continue
            cmdline = proc.info.get("cmdline") or []
            if not _is_flower(cmdline):
                continue
            env = proc.info.get("environ") or {}
            if needle in " ".join(cmdline) or env.get("FLWR_HOME", "").startswith(needle):
                found.append(proc)
    return found
