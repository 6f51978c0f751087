"""``fedadmet dashboard optuna RUN_DIR``: open optuna-dashboard on a run folder's study."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from flows.cli.errors import CommandGroup

console = Console()
dashboard_app = typer.Typer(cls=CommandGroup, help="Dashboards for a run's results.", no_args_is_help=True, add_completion=False,
                            pretty_exceptions_enable=False)


@dashboard_app.command("optuna")
def optuna_cmd(
    run_dir: Path = typer.Argument(..., help="Run folder (or its SQLite file) of `tune`, `lab`, `demo`, `trial optimize`."),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address (loopback by default)."),
    port: int = typer.Option(8080, "--port", help="Port."),
    study: str | None = typer.Option(None, "--study", help="Study name, when the folder holds several storages."),
) -> None:
    """Serve optuna-dashboard for the run's study storage until Ctrl-C."""
    from flows.study_storage import pick_storage

    storage = pick_storage(run_dir, study)
    console.print(f"studies {', '.join(storage.studies)} in {storage.path.resolve()}")
    console.print(f"Optuna dashboard: http://{host}:{port}/dashboard (Ctrl-C to stop)", highlight=False)
    from optuna_dashboard import run_server

    run_server(storage.url, host=host, port=port)


def register(app: typer.Typer) -> None:
    app.add_typer(dashboard_app, name="dashboard")
