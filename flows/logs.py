"""The project's log lines in Prefect's flow-run logs, through Prefect's own setting.

``PREFECT_LOGGING_EXTRA_LOGGERS`` names loggers that Prefect gives its API log handler when it
configures logging (on ``import prefect``); their records then appear in the flow run's logs in
the dashboard, as Prefect's ``get_run_logger`` lines do. Nothing here runs on import: the CLI
entry calls :func:`send_project_logs_to_prefect` once, library users call it themselves.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager

log = logging.getLogger(__name__)

PROJECT_LOGGERS = ("pipelines", "admet", "federation", "clinical_sim", "flows")
EXTRA_LOGGERS_ENV = "PREFECT_LOGGING_EXTRA_LOGGERS"


def _merged(current: str | list[str] | None) -> list[str]:
    if isinstance(current, str):
        current = [n.strip() for n in current.split(",") if n.strip()]
    names = list(current or [])
    return names + [n for n in PROJECT_LOGGERS if n not in names]


def send_project_logs_to_prefect(level: int = logging.INFO) -> list[str]:
    """Route the project loggers to Prefect's API log handler (INFO and above by default).

    Before Prefect is imported this only sets the environment (Prefect reads it when it sets up
    logging); if Prefect is already imported, Prefect's logging setup is rerun with the merged
    setting. A user's own ``PREFECT_LOGGING_EXTRA_LOGGERS`` entries are kept. Records outside a
    flow run stay in the terminal only (``PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW=ignore`` unless
    the user set it). Returns the extra-logger names in effect.
    """
    names = _merged(os.environ.get(EXTRA_LOGGERS_ENV))
    os.environ[EXTRA_LOGGERS_ENV] = ",".join(names)
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    for name in PROJECT_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level > level:
            logger.setLevel(level)
    if "prefect" in sys.modules:
        # Prefect read its settings on import: apply the merged list through its settings context
        # and configure again (non-incremental, so the extra loggers get the API handler).
        from prefect.logging.configuration import setup_logging
        from prefect.settings import (
            PREFECT_LOGGING_EXTRA_LOGGERS,
            PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW,
            temporary_settings,
        )

        names = _merged(PREFECT_LOGGING_EXTRA_LOGGERS.value())
        with temporary_settings({PREFECT_LOGGING_EXTRA_LOGGERS: ",".join(names),
                                 PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW:
                                     os.environ["PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"]}):
            setup_logging(incremental=False)
    return names


def project_loggers_at(level: int = logging.INFO) -> None:
    """Let the project loggers pass ``level`` records where nothing set their level.

    A deployment's flow run is a fresh process started by Prefect's runner: it inherits
    ``PREFECT_LOGGING_EXTRA_LOGGERS`` (so the loggers get the API handler) but not the levels the
    ``fedadmet`` entry point set, and an unset level falls back to the root logger's WARNING:
    the run's INFO lines were lost. Served flows call this first; levels set by a user stay."""
    for name in PROJECT_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)


class _StampRun(logging.Filter):
    """Gives records logged in a thread without a Prefect run context (e.g. Flower's ServerApp
    thread in ``run_simulation``) the flow / task run ids they belong to; other records pass as
    they are."""

    def __init__(self, flow_run_id, task_run_id) -> None:
        super().__init__()
        self.flow_run_id, self.task_run_id = flow_run_id, task_run_id

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "flow_run_id", None) is None:
            from prefect.context import FlowRunContext, TaskRunContext

            if FlowRunContext.get() is None and TaskRunContext.get() is None:
                record.flow_run_id = self.flow_run_id
                record.task_run_id = self.task_run_id
        return True


def _api_handlers() -> list[logging.Handler]:
    from prefect.logging.handlers import APILogHandler

    found: list[logging.Handler] = []
    for name in PROJECT_LOGGERS:
        found += [h for h in logging.getLogger(name).handlers if isinstance(h, APILogHandler) and h not in found]
    return found


@contextmanager
def thread_logs_to_run():
    """While inside, project log records from threads that have no Prefect run context are sent
    to the current flow run (and task run) instead of being dropped.

    Prefect's API log handler finds the run from the calling thread's context; threads started by
    a library (Flower's simulation starts the ServerApp in its own thread) have none, so their
    lines, e.g. ``round 2: aggregated 3 update(s) ...``, never reached the flow run. Records that
    carry ids or come from a thread with a context are left alone. Lines logged in other processes
    (Ray workers running the ClientApps) still do not reach the run. Outside a run: no-op."""
    from prefect.context import FlowRunContext, TaskRunContext

    task_ctx, flow_ctx = TaskRunContext.get(), FlowRunContext.get()
    if task_ctx is not None:
        stamp = _StampRun(task_ctx.task_run.flow_run_id, task_ctx.task_run.id)
    elif flow_ctx is not None and flow_ctx.flow_run is not None:
        stamp = _StampRun(flow_ctx.flow_run.id, None)
    else:
        yield
        return
    handlers = _api_handlers()
    for handler in handlers:
        handler.addFilter(stamp)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(stamp)
