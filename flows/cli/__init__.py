"""The ``fedadmet`` command line: one Typer app, one sub-module per area.

Logging is configured here, once; library code only uses ``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import logging
import sys

import typer

import pipelines  # noqa: F401  (offline/quiet runtime defaults before anything else loads)
from pipelines.errors import InputError

app = typer.Typer(
    name="fedadmet",
    help="Federated ADMET/T models: data pipeline, models, federation, flows, clinical simulation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("httpx", "httpcore", "urllib3", "asyncio", "numexpr", "matplotlib", "PIL", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Flower logs through its own console handler; propagating to the root handler too would
    # print every Flower line twice (and its DEBUG lines once).
    logging.getLogger("flwr").propagate = verbose


def _register() -> None:
    from flows.cli import data_cmd

    app.add_typer(data_cmd.app, name="data")
    for module_name in ("admet_cmd", "federation_cmd", "consortium_cmd", "trial_cmd", "flow_cmd"):
        try:
            module = __import__(f"flows.cli.{module_name}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"flows.cli.{module_name}":
                raise
            continue
        module.register(app)


_register()


def main() -> None:
    """Console-script entry: user errors print one clear line and exit 2, never a traceback."""
    try:
        app()
    except InputError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
