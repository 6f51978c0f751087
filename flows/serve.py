"""Scheduled work as Prefect deployments (``fedadmet serve``): a watched folder of compound
libraries screened on a schedule, and one more federated round on a schedule.

Both are plain functions wrapped in flows, served with Prefect's ``serve`` (the served process
polls the Prefect server for scheduled runs and executes them itself; no work pool needed).
A watched-folder deployment whose parameters carry ``dask_address`` runs each screening's
featurize / predict chunks on that Dask cluster (``DaskTaskRunner(address=...)``), as
``fedadmet screen --dask-address`` does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from prefect import flow

from flows import run_names
from pipelines.errors import InputError

log = logging.getLogger(__name__)

#: Library files a watched folder may hold (``.gz`` of each too).
LIBRARY_SUFFIXES = (".csv", ".tsv", ".smi", ".sdf", ".parquet")
#: Written last into a library's output folder: its presence means "already screened".
DONE_MARKER = "summary.json"


def pending_libraries(watch_dir: Path, out_root: Path) -> list[Path]:
    """Library files in ``watch_dir`` without a finished screening under ``out_root/<name>/``."""
    watch_dir, out_root = Path(watch_dir), Path(out_root)
    found = []
    for path in sorted(watch_dir.iterdir()):
        name = path.name.removesuffix(".gz")
        if path.is_file() and not name.startswith(".") and name.endswith(LIBRARY_SUFFIXES):
            if not (out_root / name / DONE_MARKER).exists():
                found.append(path)
    return found


@flow(name="screen-watched-folder", description="Screen every new library file in a watched folder "
      "(one screening run per file; files already screened are skipped).")
def screen_watched_folder(watch_dir: str, bundle_dir: str, out_dir: str, profile: str | None = None,
                          chunk_size: int = 1000, top_n: int = 25, dask_address: str | None = None,
                          use_cache: bool = True) -> dict:
    """``dask_address`` (``tcp://HOST:PORT``): each screening subflow runs its chunks on that
    existing Dask scheduler's workers; ``None``: Prefect's default thread pool, in this process."""
    from flows.logs import project_loggers_at
    from flows.screening import screening_flow

    project_loggers_at(logging.INFO)
    todo = pending_libraries(Path(watch_dir), Path(out_dir))
    log.info("watched folder %s: %d new librar%s", watch_dir, len(todo), "y" if len(todo) == 1 else "ies")
    screen = screening_flow
    if dask_address:
        from flows.runners import RunnerSpec, make_task_runner

        log.info("screening chunks run on the Dask cluster at %s", dask_address)
        screen = screening_flow.with_options(task_runner=make_task_runner(RunnerSpec(kind="dask",
                                                                                     address=dask_address)))
    done = {}
    for library in todo:
        out = Path(out_dir) / library.name.removesuffix(".gz")
        done[library.name] = screen(library=str(library), bundle_dir=bundle_dir, out_dir=str(out),
                                    profile=profile, chunk_size=chunk_size, top_n=top_n, use_cache=use_cache)
    return {"screened": sorted(done), "n_new": len(done), "dask_address": dask_address}


def rounds_done(out_dir: Path) -> int:
    """Federated rounds already checkpointed in a run folder (0 for a fresh one)."""
    from federation.checkpoint import Checkpointer

    latest = Checkpointer(Path(out_dir) / "checkpoints").latest()
    return latest.round if latest else 0


def _round_name(p: dict) -> str:
    return f"federated round on {run_names.partner_set(p.get('partners_dir'))}"


@flow(name="federated-round", description="One more federated round on a partition, resumed from the "
      "run folder's last checkpoint.", flow_run_name=run_names.namer(_round_name))
def federated_round(partners_dir: str, out_dir: str, local_epochs: int = 1, heads: str = "auto",
                    strategy: str = "fedavg", engine: str = "inprocess", num_cpus: int = 2) -> dict:
    from federation.config import FederatedConfig
    from federation.partners import partner_folders
    from federation.run import run_federated
    from flows.federated_flow import publish_federation_report
    from flows.logs import project_loggers_at, thread_logs_to_run

    project_loggers_at(logging.INFO)
    done = rounds_done(Path(out_dir))
    n_partners = len(partner_folders(Path(partners_dir)))  # the registered partners: every partition folder
    cfg = FederatedConfig(out_dir=Path(out_dir), partners_dir=Path(partners_dir), n_partners=n_partners,
                          rounds=done + 1,
                          resume=done > 0, local_epochs=local_epochs, heads=heads, strategy=strategy,
                          baselines=False, engine=engine, num_cpus=num_cpus)
    log.info("federated round %d on %s", done + 1, partners_dir)
    run_names.tag_run(run_names.standard_tags("federated-round", partners=run_names.partner_set(partners_dir),
                                              strategy=strategy, heads=heads, rounds=done + 1))
    with thread_logs_to_run():  # the Flower server thread's per-round lines (engine ray) reach this run
        result = run_federated(cfg)
    publish_federation_report(result, Path(out_dir), Path(partners_dir))
    return {"round": rounds_done(Path(out_dir))}


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """What ``fedadmet serve`` schedules (each part optional, at least one)."""

    watch_dir: Path | None = None
    bundle_dir: Path | None = None
    screen_out: Path | None = None
    screen_every: timedelta = timedelta(minutes=5)
    partners_dir: Path | None = None
    federated_out: Path | None = None
    round_every: timedelta = timedelta(hours=24)
    engine: str = "inprocess"
    dask_address: str | None = None
    """Existing Dask scheduler for the watched folder's screening chunks (a deployment parameter)."""

    def __post_init__(self) -> None:
        if self.watch_dir is None and self.partners_dir is None:
            raise InputError("nothing to serve: give --watch and/or --partners-dir")
        if self.dask_address is not None and self.watch_dir is None:
            raise InputError("--dask-address runs the watched folder's screening on a cluster: add --watch")
        if self.watch_dir is not None and (self.bundle_dir is None or self.screen_out is None):
            raise InputError("--watch needs --model and --screen-out")
        if self.partners_dir is not None and self.federated_out is None:
            raise InputError("--partners-dir needs --federated-out")
        for every, option in ((self.screen_every, "--screen-every"), (self.round_every, "--round-every")):
            if every.total_seconds() < 1:
                raise InputError(f"{option} must be >= 1 second")


def deployments(settings: ServeSettings) -> list:
    """The Prefect deployments (``RunnerDeployment``) for ``settings``, each with its interval."""
    out = []
    if settings.watch_dir is not None:
        parameters = {"watch_dir": str(settings.watch_dir), "bundle_dir": str(settings.bundle_dir),
                      "out_dir": str(settings.screen_out)}
        where = ""
        if settings.dask_address:
            parameters["dask_address"] = settings.dask_address
            where = f" on the Dask cluster at {settings.dask_address}"
        out.append(screen_watched_folder.to_deployment(
            name="watched-folder", interval=settings.screen_every,
            description=f"Screen new libraries in {settings.watch_dir}{where}",
            parameters=parameters,
            tags=["scheduled", "screening", *(["dask"] if settings.dask_address else [])]))
    if settings.partners_dir is not None:
        out.append(federated_round.to_deployment(
            name="scheduled-round", interval=settings.round_every,
            description=f"One more federated round on {settings.partners_dir}",
            parameters={"partners_dir": str(settings.partners_dir), "out_dir": str(settings.federated_out),
                        "engine": settings.engine},
            tags=["scheduled", "federated"]))
    return out


def serve_scheduled(settings: ServeSettings, limit: int | None = None) -> None:
    """Register the deployments with the Prefect server and run their scheduled flow runs here
    until the process is stopped (SIGTERM / Ctrl-C)."""
    from prefect import serve

    serve(*deployments(settings), limit=limit, print_starting_message=True)
