"""Worker processes for the CPU-bound molecule steps (standardization, scaffolds, featurization,
prediction): how many, and the one pool factory every step uses."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from concurrent.futures import ProcessPoolExecutor

from pipelines._runtime import mute_rdkit_log


def default_n_jobs() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def resolve_n_jobs(n_jobs: int | None) -> int:
    """None/0: all usable cores; negative: all but ``-n_jobs - 1``; inside a daemonic process
    (a pool or Dask worker): 1."""
    if mp.current_process().daemon:
        return 1  # daemonic processes cannot start children
    if n_jobs is None or n_jobs == 0:
        return default_n_jobs()
    if n_jobs < 0:
        return max(1, default_n_jobs() + 1 + n_jobs)
    return n_jobs


def process_pool(n_jobs: int, preload: str) -> ProcessPoolExecutor:
    """A pool started with ``fork`` when this process has one thread (cheapest), else ``forkserver``
    with ``preload`` imported once in the server (forking a threaded process is unsafe)."""
    methods = mp.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        context = mp.get_context("fork")
    elif "forkserver" in methods:
        context = mp.get_context("forkserver")
        context.set_forkserver_preload([preload])
    else:  # pragma: no cover - Windows / macOS default
        context = mp.get_context("spawn")
    return ProcessPoolExecutor(max_workers=n_jobs, mp_context=context, initializer=mute_rdkit_log)
