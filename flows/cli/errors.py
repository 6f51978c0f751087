"""The one error path of the ``fedadmet`` command line.

An :class:`~pipelines.errors.InputError` raised anywhere under a command (in the command itself,
in library code, or inside a Prefect flow or task run) ends the command with one ``error:`` line
on stderr and exit code 2, never a traceback. :class:`CommandGroup` is the group class of the
root Typer app and of every sub-app (``admet``, ``data``, ...), so this holds for the console script
and for ``typer.testing.CliRunner`` on any of them alike.

Prefect logs a failed task or flow run with the exception's traceback; for an ``InputError`` that
traceback says nothing a user can act on, so :class:`InputErrorTracebackFilter` keeps those log
lines (one line each, message intact, also in the Prefect UI) and drops only the traceback.
"""

from __future__ import annotations

import logging

import click
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from pipelines.errors import InputError

#: Loggers Prefect's engines report failed task and flow runs on.
PREFECT_RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")

_err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def report_input_error(exc: InputError) -> None:
    """Print the one ``error:`` line (the message flattened to one line)."""
    message = " ".join(str(exc).split())
    _err_console.print(f"[bold red]error:[/] {escape(message)}")


class CommandGroup(TyperGroup):
    """Command group: turns an ``InputError`` from any of its commands into exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            report_input_error(exc)
            raise typer.Exit(2) from None


class InputErrorTracebackFilter(logging.Filter):
    """Keep a log record whose exception is an ``InputError``, without its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], InputError):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_input_error_tracebacks() -> None:
    """Install the filter on Prefect's run loggers (idempotent; Prefect's logging setup, which
    runs later on import, keeps a logger's filters)."""
    for name in PREFECT_RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, InputErrorTracebackFilter) for f in logger.filters):
            logger.addFilter(InputErrorTracebackFilter())
