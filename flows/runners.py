"""Task runner choice for the fan-out flows: Prefect's default thread pool or a Dask cluster.

``make_task_runner("dask", workers=2)`` starts a local Dask cluster of that many single-thread
worker processes; ``address=`` attaches to an existing scheduler instead (scale-out).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from pipelines.errors import InputError

log = logging.getLogger(__name__)

RunnerKind = Literal["default", "dask"]


@dataclass(frozen=True, slots=True)
class RunnerSpec:
    """Which task runner a flow uses."""

    kind: RunnerKind = "default"
    """``default``: Prefect's ThreadPoolTaskRunner; ``dask``: prefect-dask's DaskTaskRunner."""
    workers: int = 2
    """Local Dask cluster size (worker processes, one thread each)."""
    address: str | None = None
    """Address of an existing Dask scheduler (``tcp://host:8786``); wins over ``workers``."""
    max_threads: int | None = None
    """Thread-pool size of the default runner (None: Prefect's default)."""

    def __post_init__(self) -> None:
        if self.kind not in ("default", "dask"):
            raise InputError(f"task runner {self.kind!r} is not one of 'default', 'dask'")
        if self.workers < 1:
            raise InputError("a Dask cluster needs at least 1 worker")


def make_task_runner(spec: RunnerSpec | str = "default", workers: int = 2, address: str | None = None):
    """A Prefect task runner instance for ``flow.with_options(task_runner=...)``."""
    if isinstance(spec, str):
        spec = RunnerSpec(kind=spec, workers=workers, address=address)  # type: ignore[arg-type]
    if spec.kind == "dask":
        from prefect_dask import DaskTaskRunner

        if spec.address:
            log.info("dask task runner on scheduler %s", spec.address)
            if not _api_url():
                log.warning("no PREFECT_API_URL: each Dask worker will start a temporary Prefect API of its own "
                            "and record the chunks' task runs there, not with this flow run; start a server "
                            "(`fedadmet server`) and export PREFECT_API_URL=http://HOST:4200/api where the workers "
                            "can reach it")
            return DaskTaskRunner(address=spec.address)
        log.info("dask task runner on a local cluster of %d workers", spec.workers)
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={"n_workers": spec.workers, "threads_per_worker": 1, "processes": True,
                            "dashboard_address": None, "host": "127.0.0.1"},
        )
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=spec.max_threads)


def _api_url() -> str | None:
    """The Prefect API URL in effect (None: the ephemeral API, which other processes cannot use)."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def retry_unless_input_error(task, task_run, state) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed task run unless it failed on an
    :class:`InputError` (an unusable input fails the same way every time)."""
    exc = state.result(raise_on_failure=False)
    return not isinstance(exc, InputError)
