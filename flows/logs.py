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
