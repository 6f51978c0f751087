"""Starting Ray for the Simulation Engine so that a slow start on a busy machine is retried.

Seen here on a loaded 2-core machine: the raylet waits a fixed time for its metrics agent to
report a port and aborts when the agent starts slowly; the simulation then hangs on a dead
backend. ``start_ray`` starts Ray the way Flower's Ray backend would (same ``PYTHONPATH``
runtime env, no dashboard), waits until the raylet is past that point, and retries otherwise.
Flower reuses an already initialised Ray.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)


class RayStartError(RuntimeError):
    pass


def _raylet_process():
    from ray._private import worker

    node = worker._global_node
    procs = node.all_processes.get("raylet") if node is not None else None
    return procs[0].process if procs else None


def _agent_ready() -> bool:
    import ray
    from ray._private import worker

    node = worker._global_node
    session = Path(node.get_session_dir_path())
    node_id = ray.get_runtime_context().get_node_id()
    return (session / f"metrics_agent_port_{node_id}").exists()


def start_ray(num_cpus: int, attempts: int = 5, wait_s: float = 90.0, settle_s: float = 3.0) -> None:
    """``ray.init`` with a health wait; raises ``RayStartError`` after ``attempts`` failures."""
    # No metrics export (nothing reads it, and the raylet would wait for the metrics agent), and a
    # longer raylet start-up wait: both for busy machines. A user's explicit setting wins.
    os.environ.setdefault("RAY_enable_metrics_collection", "0")
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")
    previous = os.environ.get("PYTHONPATH")
    pythonpath = os.pathsep.join(sys.path)
    if previous:
        pythonpath = f"{pythonpath}{os.pathsep}{previous}"
    # The raylet inherits this process's environment when ray.init starts it; afterwards the
    # variable is put back: left set, this process's sys.path (under pytest: test and bench folders,
    # where bench/flows.py shadows the flows package) leaked into every later subprocess.
    os.environ["PYTHONPATH"] = pythonpath
    try:
        _init_with_retries(num_cpus, attempts, wait_s, settle_s, pythonpath)
    finally:
        if previous is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous


def _init_with_retries(num_cpus: int, attempts: int, wait_s: float, settle_s: float, pythonpath: str) -> None:
    import ray

    for attempt in range(1, attempts + 1):
        if ray.is_initialized():
            ray.shutdown()
        try:
            ray.init(num_cpus=num_cpus, num_gpus=0, include_dashboard=False, log_to_driver=False,
                     object_store_memory=300 * 1024**2, runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
        except Exception as exc:  # noqa: BLE001 - Ray raises plain Exception on a start-up timeout
            log.warning("ray.init failed (attempt %d/%d): %s", attempt, attempts, exc)
            if ray.is_initialized():
                ray.shutdown()
            continue
        deadline = time.monotonic() + wait_s
        ok = False
        while time.monotonic() < deadline:
            proc = _raylet_process()
            if proc is not None and proc.poll() is not None:
                break
            if _agent_ready() or os.environ.get("RAY_enable_metrics_collection") == "0":
                time.sleep(settle_s)
                proc = _raylet_process()
                ok = proc is None or proc.poll() is None
                break
            time.sleep(0.5)
        if ok:
            log.info("Ray started (attempt %d, %d CPUs)", attempt, num_cpus)
            return
        log.warning("Ray did not come up cleanly (attempt %d/%d); restarting it", attempt, attempts)
        ray.shutdown()
    raise RayStartError(f"Ray failed to start {attempts} times (machine too busy?)")


def stop_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
