"""Talk to the SuperLink's Control API through Flower's own CLI (``flwr``).

The operator's ``flwr`` gets a private ``FLWR_HOME`` whose ``config.toml`` holds one SuperLink
connection named ``consortium`` (address + the CA certificate to verify it). Through it we:
register partner public keys (``flwr supernode register``), list nodes, submit a run
(``flwr run``), follow its logs (``flwr log --stream``), read its status (``flwr ls``) and stop it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from federation.deployment.processes import flower_env, flower_executable

log = logging.getLogger(__name__)

CONNECTION = "consortium"
TERMINAL_PREFIX = "finished"


class ControlError(RuntimeError):
    """A ``flwr`` command against the SuperLink failed; the message carries its output."""


class SuperLinkGone(ControlError):
    """The SuperLink process ended while a run was being followed."""


def write_connection(flwr_home: Path, address: str, ca_cert: Path) -> Path:
    """Write ``FLWR_HOME/config.toml`` with the ``consortium`` connection as default."""
    flwr_home.mkdir(parents=True, exist_ok=True)
    config = {
        "superlink": {
            "default": CONNECTION,
            CONNECTION: {"address": address, "root-certificates": str(Path(ca_cert).resolve())},
        }
    }
    path = flwr_home / "config.toml"
    path.write_text(tomli_w.dumps(config))
    return path


@dataclass(frozen=True, slots=True)
class ControlClient:
    """Runs ``flwr`` sub-commands against the consortium SuperLink."""

    flwr_home: Path
    timeout: float = 120.0

    def _run(self, *args: str, check: bool = True, cwd: Path | None = None) -> str:
        cmd = [flower_executable("flwr"), *args]
        log.debug("flwr %s", " ".join(args))
        proc = subprocess.run(  # noqa: S603
            cmd, env=flower_env(self.flwr_home), cwd=cwd, capture_output=True, text=True,
            timeout=self.timeout, check=False,
        )
        if check and proc.returncode != 0:
            raise ControlError(
                f"`flwr {' '.join(args)}` failed (exit {proc.returncode}):\n"
                f"{proc.stdout.strip()}\n{proc.stderr.strip()}".strip()
            )
        return proc.stdout

    @staticmethod
    def _json(text: str) -> dict:
        """The JSON object a ``--format json`` command printed (pretty-printed, possibly after
        other output). ``flwr`` exits 0 even on failure, so callers check ``success``."""
        start = text.find("{")
        if start < 0:
            raise ControlError(f"no JSON in flwr output:\n{text}")
        data = json.loads(text[start:])
        if data.get("success") is False:
            raise ControlError(str(data.get("error-message", data)))
        return data

    def register_node(self, public_key: Path, name: str) -> int:
        """Register a partner's public key; returns the SuperNode id the SuperLink assigned."""
        out = self._run("supernode", "register", str(public_key), CONNECTION,
                        "--name", name, "--format", "json")
        data = self._json(out)
        if not data.get("success"):
            raise ControlError(f"registering {name} failed: {data}")
        return int(data["node-id"])

    def list_nodes(self) -> list[dict]:
        data = self._json(self._run("supernode", "list", CONNECTION, "--format", "json"))
        return list(data.get("nodes", []))

    def submit(self, app_dir: Path, run_config: dict[str, object]) -> int:
        """``flwr run`` the app folder with run-config overrides; returns the run id."""
        overrides = " ".join(f"{k}={_toml_value(v)}" for k, v in run_config.items())
        args = ["run", str(app_dir), CONNECTION, "--format", "json"]
        if overrides:
            args += ["--run-config", overrides]
        data = self._json(self._run(*args, cwd=app_dir))
        if not data.get("success"):
            raise ControlError(f"run submission failed: {data}")
        return int(data["run-id"])

    def status(self, run_id: int) -> str:
        data = self._json(self._run("ls", CONNECTION, "--run-id", str(run_id), "--format", "json"))
        runs = data.get("runs", [])
        if not runs:
            raise ControlError(f"run {run_id} not found at the SuperLink")
        return str(runs[0]["status"])

    def list_runs(self, limit: int = 20) -> list[dict]:
        data = self._json(self._run("ls", CONNECTION, "--limit", str(limit), "--format", "json"))
        return list(data.get("runs", []))

    def stop_run(self, run_id: int) -> None:
        self._run("stop", str(run_id), CONNECTION, check=False)

    def wait(self, run_id: int, timeout: float, on_line: Callable[[str], None] | None = None,
             poll: float = 5.0, alive: Callable[[], bool] | None = None) -> str:
        """Follow the run until it finishes; return its status (``finished:completed``,
        ``finished:failed``, ``finished:stopped``).

        With ``on_line``, the run's log is streamed (``flwr log --stream``, which ends when the run
        ends) and the status is only asked now and then; every ``flwr`` call costs a Python start,
        which matters on a small machine. ``alive`` (optional) is asked before every status query;
        when it returns False the wait ends with :class:`SuperLinkGone`."""
        streamer = _LogStreamer(self, run_id, on_line) if on_line else None
        deadline = time.monotonic() + timeout
        try:
            while True:
                if alive is not None and not alive():
                    raise SuperLinkGone(f"the SuperLink stopped while run {run_id} was running")
                status = self.status(run_id)
                if status.startswith(TERMINAL_PREFIX):
                    return status
                left = deadline - time.monotonic()
                if left <= 0:
                    self.stop_run(run_id)
                    raise TimeoutError(f"run {run_id} did not finish within {timeout:.0f}s "
                                       f"(last status {status}); stopped it")
                if streamer is not None and streamer.running():
                    streamer.wait(min(30.0, left))
                else:
                    time.sleep(min(poll, left))
        finally:
            if streamer is not None:
                streamer.close()


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string


class _LogStreamer:
    """Background ``flwr log <run> --stream``; hands every line to a callback."""

    def __init__(self, client: ControlClient, run_id: int, on_line: Callable[[str], None]):
        self._proc = subprocess.Popen(  # noqa: S603
            [flower_executable("flwr"), "log", str(run_id), CONNECTION, "--stream"],
            env=flower_env(client.flwr_home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )
        self._thread = threading.Thread(target=self._pump, args=(on_line,), daemon=True)
        self._thread.start()

    def _pump(self, on_line: Callable[[str], None]) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            on_line(line.rstrip("\n"))

    def running(self) -> bool:
        return self._proc.poll() is None

    def wait(self, timeout: float) -> None:
        """Block until the stream ends (the run finished) or ``timeout`` s pass."""
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._thread.join(timeout=5)
