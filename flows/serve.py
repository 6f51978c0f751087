"""Scheduled work as Prefect deployments (``fedadmet serve``): a watched folder of compound
libraries screened on a schedule, and one more federated round on a schedule.

Both are plain functions wrapped in flows, served with Prefect's ``serve`` (the served process
polls the Prefect server for scheduled runs and executes them itself; no work pool needed).
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
                          chunk_size: int = 1000, top_n: int = 25) -> dict:
    from flows.screening import screening_flow

    todo = pending_libraries(Path(watch_dir), Path(out_dir))
    log.info("watched folder %s: %d new librar%s", watch_dir, len(todo), "y" if len(todo) == 1 else "ies")
    done = {}
    for library in todo:
        out = Path(out_dir) / library.name.removesuffix(".gz")
        done[library.name] = screening_flow(library=str(library), bundle_dir=bundle_dir, out_dir=str(out),
                                            profile=profile, chunk_size=chunk_size, top_n=top_n)
    return {"screened": sorted(done), "n_new": len(done)}


def rounds_done(out_dir: Path) -> int:
    """Federated rounds already checkpointed in a run folder (0 for a fresh one)."""
    from federation.checkpoint import Checkpointer

    latest = Checkpointer(Path(out_dir) / "checkpoints").latest()
    return latest.round if latest else 0


def _round_name(p: dict) -> str:
    return f"federated round on {run_names.partner_set(p.get('partners_dir'))}"


@flow(name="federated-round", description="One more federated round on a partition, resumed from the "
      "run folder's last checkpoint.", flow_run_name=run_names.namer(_round_name))
def federated_round(partners_dir: str, out_dir: str, local_epochs: int = 1, heads: str = "private",
                    strategy: str = "fedavg", engine: str = "inprocess", num_cpus: int = 2) -> dict:
    from federation.config import FederatedConfig
    from federation.run import run_federated

    done = rounds_done(Path(out_dir))
    cfg = FederatedConfig(out_dir=Path(out_dir), partners_dir=Path(partners_dir), rounds=done + 1,
                          resume=done > 0, local_epochs=local_epochs, heads=heads, strategy=strategy,
                          baselines=False, engine=engine, num_cpus=num_cpus)
    log.info("federated round %d on %s", done + 1, partners_dir)
    run_federated(cfg)
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

    def __post_init__(self) -> None:
        if self.watch_dir is None and self.partners_dir is None:
            raise InputError("nothing to serve: give --watch (with --model) and/or --partners-dir")
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
        out.append(screen_watched_folder.to_deployment(
            name="watched-folder", interval=settings.screen_every,
            description=f"Screen new libraries in {settings.watch_dir}",
            parameters={"watch_dir": str(settings.watch_dir), "bundle_dir": str(settings.bundle_dir),
                        "out_dir": str(settings.screen_out)},
            tags=["scheduled", "screening"]))
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
