"""Flow-run names and tags that say what a run did: flow, input library or partner set, model, date.

``flow_run_name`` callables (Prefect calls them when the run is created; they read the run's
parameters from ``prefect.runtime.flow_run``) and :func:`tag_run`, which adds tags such as
``library:moses_10k`` to the running flow run through the Prefect client. Both work the same
for a run started from Python, the CLI, or a deployment in the dashboard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M")


def label(path: str | Path | None, default: str = "default") -> str:
    """A short name for a file or folder parameter: ``.../moses_10k.smi.gz`` -> ``moses_10k``."""
    if path in (None, ""):
        return default
    name = Path(str(path)).name
    for packed in (".gz", ".bz2", ".xz", ".zip"):
        name = name.removesuffix(packed)
    return Path(name).stem if Path(name).suffix else name


def partner_set(partners_dir: str | Path | None, n_partners: int | None = None) -> str:
    """``runs/demo/partners`` -> ``demo/partners``; no folder -> ``embedded-N`` (partitioned by the flow)."""
    if partners_dir in (None, ""):
        return f"embedded-{n_partners}" if n_partners else "embedded"
    p = Path(str(partners_dir))
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


def _parameters() -> dict:
    from prefect.runtime import flow_run

    return dict(flow_run.parameters or {})


def namer(describe: Callable[[dict], str]) -> Callable[[], str]:
    """A ``flow_run_name`` callable: ``describe(parameters)`` plus the UTC date and time."""

    def name() -> str:
        try:
            what = describe(_parameters())
        except (KeyError, TypeError, ValueError) as exc:  # a name must never fail a run
            log.debug("flow-run name fell back: %s", exc)
            what = "run"
        return f"{what} {_stamp()}"

    return name


def tag_run(tags: Iterable[str]) -> list[str]:
    """Add ``tags`` to the current flow run (kept: tags it already has). No-op outside a flow run."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return []
    merged = list(dict.fromkeys([*(ctx.flow_run.tags or []), *(t for t in tags if t)]))
    with get_client(sync_client=True) as client:
        client.update_flow_run(ctx.flow_run.id, tags=merged)
    ctx.flow_run.tags = merged
    return merged


def standard_tags(flow: str, **what: object) -> list[str]:
    """``flow:NAME``, ``KEY:VALUE`` for each given value (None skipped), ``date:YYYY-MM-DD``."""
    return [f"flow:{flow}", *(f"{k}:{v}" for k, v in what.items() if v not in (None, "")), f"date:{today()}"]
