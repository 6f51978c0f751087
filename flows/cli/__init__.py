"""The ``fedadmet`` command line: one Typer app, one sub-module per area.

Logging and the runtime defaults (``pipelines.configure``) are set here, once, when a command
runs (not on import); library code only uses ``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import logging

import typer

import pipelines
from flows.cli.errors import CommandGroup, quiet_input_error_tracebacks

app = typer.Typer(
    name="fedadmet",
    cls=CommandGroup,  # the one place an InputError becomes `error: ...` and exit code 2
    help="Federated ADMET/T models: data pipeline, models, federation, flows, clinical simulation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    # before any command imports Prefect, Flower or Ray (the command modules import them lazily)
    pipelines.configure()
    quiet_input_error_tracebacks()
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("httpx", "httpcore", "urllib3", "asyncio", "numexpr", "matplotlib", "PIL", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # the project's log lines also go to the Prefect flow-run logs (Prefect's extra-loggers setting)
    from flows.logs import send_project_logs_to_prefect

    send_project_logs_to_prefect(logging.DEBUG if verbose else logging.INFO)
    # Flower logs through its own console handler; propagating to the root handler too would
    # print every Flower line twice (and its DEBUG lines once).
    logging.getLogger("flwr").propagate = verbose


def _register() -> None:
    # every command group, always: a module that fails to import is an error, not a missing group
    from flows.cli import admet_cmd, consortium_cmd, dashboard_cmd, data_cmd, federation_cmd, flow_cmd, trial_cmd

    app.add_typer(data_cmd.app, name="data")
    for module in (admet_cmd, federation_cmd, consortium_cmd, trial_cmd, flow_cmd, dashboard_cmd):
        module.register(app)


_register()


def main() -> None:
    """Console-script entry. User errors (``InputError``) print one ``error:`` line and exit 2,
    never a traceback: :class:`flows.cli.errors.CommandGroup` handles them for every command."""
    app()
