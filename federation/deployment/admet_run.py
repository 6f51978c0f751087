"""Run the consortium's ADMET Flower app (``federation.server_app`` / ``client_app``) on a running
Deployment-Engine consortium and write the same report as a simulated run.

The operator's machine writes the resolved :class:`~federation.config.FederatedConfig` to
``out_dir/config.json`` (for the record) and submits the project's one Flower app with the whole
config as run-config overrides (``FederatedConfig.to_run_config``: the same schema every engine
reads); the ServerApp (run by the SuperLink) writes ``federation_result.json``; this module turns it into
``report.json`` / ``report.md`` / plots with :mod:`federation.report`, adding a ``deployment``
section (run id, status, SuperLink, registered partners, partners that dropped out).

In a real deployment nobody holds every partner's rows, so the *pooled* reference cannot be
trained, and *local-only* would need each partner to train alone on its node: both stay ``null``
in a deployment report (the simulation report has them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from federation.config import FederatedConfig
from federation.deployment.consortium import RunOutcome, run_federation
from federation.deployment.nodes import ConsortiumState
from federation.stages import RESULT_FILE

log = logging.getLogger(__name__)



def project_app_dir() -> Path:
    """The consortium's one app manifest: a pyproject.toml whose components are
    ``federation.server_app:app`` / ``federation.client_app:app`` from the installed package (SecAgg+
    is the run config's ``secagg`` switch), so the FAB carries configuration only and every site
    runs its own pinned install."""
    return Path(__file__).resolve().parent / "flower_app"


@dataclass(frozen=True, slots=True)
class DeploymentReport:
    outcome: RunOutcome
    report: dict
    paths: dict[str, Path]


def missing_partners(result: dict, registered: list[str]) -> list[str]:
    """Partners that were registered but never answered, or that failed or were absent in a round.

    Rounds aggregated under SecAgg+ list no partner names (the server sees only the aggregate):
    there, only explicit failures count."""
    answered_stats = set(result.get("partner_of_node", {}).values())
    failed = {p for r in result.get("round_log", []) for p in r.get("failed", []) if p in set(registered) | answered_stats}
    named_rounds = [set(r.get("accepted", [])) | set(r.get("rejected", [])) for r in result.get("round_log", [])
                    if not any(str(a).startswith("<") for a in r.get("accepted", []))]
    dropped = {p for p in answered_stats if any(p not in seen for seen in named_rounds)}
    never = {p for p in registered if p not in answered_stats}
    return sorted(failed | dropped | never)


def run_admet_on_consortium(run_dir: Path, cfg: FederatedConfig, app_dir: Path | None = None,
                            timeout: float = 3 * 3600,
                            on_line: Callable[[str], None] | None = None) -> DeploymentReport:
    """Submit the ADMET app with ``cfg`` to the consortium in ``run_dir`` and write the report."""
    from federation import report as report_mod

    state = ConsortiumState.read(run_dir)
    out = Path(cfg.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cfg.write(out / "config.json")
    (out / RESULT_FILE).unlink(missing_ok=True)
    run_config = {**cfg.to_run_config(), "out-dir": str(out)}
    outcome = run_federation(run_dir, app_dir or project_app_dir(), run_config,
                             out_dir=out, timeout=timeout, on_line=on_line, out_key=None)
    result_path = out / RESULT_FILE
    if not result_path.exists():
        raise RuntimeError(f"run {outcome.run_id} ended {outcome.status} without {RESULT_FILE}; "
                           f"see `flwr log {outcome.run_id}` or {Path(state.flwr_home)}")
    result = json.loads(result_path.read_text())
    registered = sorted(state.node_ids)
    rep = report_mod.build_report(result, None, None, {"federated_wall_seconds": result.get("server_seconds")})
    rep["deployment"] = {
        "engine": "flower-deployment", "run_id": outcome.run_id, "status": outcome.status,
        "superlink": state.superlink_address, "tls": True, "node_authentication": bool(state.node_ids),
        "registered_partners": registered,
        "missing_partners": missing_partners(result, registered),
        "references": "local-only and pooled need the partners' rows in one place; not run in deployment",
    }
    paths = report_mod.write_report(rep, out)
    log.info("deployment report written to %s", out)
    return DeploymentReport(outcome=outcome, report=rep, paths=paths)
