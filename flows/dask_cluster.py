"""Start and stop a real Dask distributed cluster on this machine: one ``dask scheduler`` and N
``dask worker`` processes (one process, one thread each), as an operator would on several hosts.

Used by the cluster test and benchmark; at scale the scheduler and workers run on other machines
and ``fedadmet screen --dask-address tcp://HOST:PORT`` attaches to them.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipelines import runtime_environment

log = logging.getLogger(__name__)


def _dask_executable() -> list[str]:
    exe = Path(sys.executable).with_name("dask")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dask"]


@dataclass
class LocalDaskCluster:
    """A scheduler process and its worker processes (started by :func:`start_cluster`)."""

    address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)
    log_dir: Path | None = None

    @property
    def pids(self) -> list[int]:
        return [self.scheduler.pid, *(w.pid for w in self.workers)]

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the workers, then the scheduler (by PID); SIGKILL what is left after ``timeout``."""
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)

    def __enter__(self) -> LocalDaskCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_cluster(port: int, n_workers: int = 2, log_dir: Path | None = None, host: str = "127.0.0.1",
                  timeout: float = 180.0, memory_limit: str = "0") -> LocalDaskCluster:
    """``dask scheduler --port PORT`` + ``n_workers`` x ``dask worker ADDRESS --nworkers 1 --nthreads 1``;
    returns once every worker has registered with the scheduler."""
    from distributed import Client

    address = f"tcp://{host}:{port}"
    env = runtime_environment()
    env.setdefault("OMP_NUM_THREADS", "1")  # one thread per worker process, as --nthreads 1 says

    def _out(name: str):
        return open(log_dir / f"{name}.log", "wb") if log_dir else subprocess.DEVNULL  # noqa: SIM115

    if log_dir:
        log_dir.mkdir(parents=True, exist_ok=True)
    dask = _dask_executable()
    scheduler = subprocess.Popen([*dask, "scheduler", "--host", host, "--port", str(port), "--no-dashboard"],
                                 env=env, stdout=_out("scheduler"), stderr=subprocess.STDOUT)
    cluster = LocalDaskCluster(address=address, scheduler=scheduler, log_dir=log_dir)
    try:
        for i in range(n_workers):
            cluster.workers.append(subprocess.Popen(
                [*dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                 "--name", f"worker-{i}", "--memory-limit", memory_limit, "--host", host],
                env=env, stdout=_out(f"worker-{i}"), stderr=subprocess.STDOUT))
        deadline = time.monotonic() + timeout
        while True:
            if scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler exited with code {scheduler.returncode}")
            try:
                with Client(address, timeout=5) as client:
                    client.wait_for_workers(n_workers, timeout=max(deadline - time.monotonic(), 1))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    except BaseException:
        cluster.stop()
        raise
    log.info("dask cluster at %s: %d workers (pids %s)", address, n_workers, cluster.pids)
    return cluster


def worker_task_records(address: str) -> dict[str, list[str]]:
    """Per worker (by its name): the keys of the tasks it executed (its own transition log,
    ``executing -> memory``), read on each worker with ``Client.run``."""
    from distributed import Client

    def executed(dask_worker) -> tuple[str, list[str]]:
        keys = [str(entry[0]) for entry in dask_worker.state.log
                if len(entry) > 2 and entry[1] == "executing" and entry[2] == "memory"]
        return str(dask_worker.name), keys

    with Client(address, timeout=10) as client:
        return dict(client.run(executed).values())


def worker_peak_rss(address: str) -> dict[str, int]:
    """Per worker (by name): peak resident set size in bytes (``VmHWM`` of the worker process)."""
    from distributed import Client

    def peak(dask_worker) -> tuple[str, int]:
        for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return str(dask_worker.name), int(line.split()[1]) * 1024
        return str(dask_worker.name), -1

    with Client(address, timeout=10) as client:
        return dict(client.run(peak).values())
