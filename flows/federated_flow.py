"""Federated training flow: partition (or ingest) partner data -> federated run -> per-partner report.

Wraps ``federation.run.run_federated``; the per-partner comparison (local-only / federated /
pooled) becomes a Prefect table artifact and a bar plot.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import run_names
from flows.runners import retry_unless_input_error
from pipelines.errors import InputError

log = logging.getLogger(__name__)

@task(name="partition-partners", retries=1, cache_policy=NO_CACHE, retry_condition_fn=retry_unless_input_error)
def partition_task(out_dir: Path, n_partners: int, alpha: float, seed: int,
                   endpoints: tuple[str, ...] | None = None, data: Path | None = None) -> pd.DataFrame:
    from flows.demo_data import prepare_partners

    return prepare_partners(out_dir, n_partners=n_partners, alpha=alpha, seed=seed, endpoints=endpoints,
                            data=data)


@task(name="federated-run", cache_policy=NO_CACHE)
def federated_task(config: dict):
    from federation.config import FederatedConfig
    from federation.run import run_federated
    from flows.logs import thread_logs_to_run

    # Flower's simulation runs the ServerApp in a thread of its own: without this its per-round
    # lines ("round 2: aggregated 3 update(s) ...") never reach the flow run's logs
    with thread_logs_to_run():
        return run_federated(FederatedConfig.from_dict(config))


@task(name="publish-federation-report", cache_policy=NO_CACHE)
def report_task(result, out_dir: Path, partners_dir: Path | None = None) -> dict[str, Path]:
    return publish_federation_report(result, out_dir, partners_dir)


def publish_federation_report(result, out_dir: Path, partners_dir: Path | None = None) -> dict[str, Path]:
    """Per-partner / per-round / rejected-update tables and plots (files + Prefect artifacts).

    Partners with a folder in ``partners_dir`` that never reported are listed as missing."""
    from flows import federation_report

    report = getattr(result, "report", None)
    if not isinstance(report, dict) or "partners" not in report:
        raise InputError("federated result carries no report with per-partner rows")
    expected = None
    if partners_dir is not None and Path(partners_dir).is_dir():
        from federation.partners import partner_folders

        expected = [f.name for f in partner_folders(Path(partners_dir))]
    node_map = None
    outcome = Path(out_dir) / "federation_result.json"  # federation.stages.RESULT_FILE: node id -> partner id
    if outcome.is_file():
        node_map = json.loads(outcome.read_text()).get("partner_of_node")
    return federation_report.publish(report, out_dir, expected=expected, partner_of_node=node_map)


def _describe(p: dict) -> str:
    partners = run_names.partner_set(p.get("partners_dir"), p.get("n_partners"))
    return f"federated {p.get('strategy', 'fedavg')} {partners} {p.get('featurizer', '')} x{p.get('rounds', '?')}r"


@flow(name="federated-training", description="Partition partner data (or use a partition folder), run a "
      "Flower federation, and report local-only vs federated vs pooled per partner.",
      flow_run_name=run_names.namer(_describe))
def federated_training_flow(out_dir: str, partners_dir: str | None = None, n_partners: int = 20,
                            rounds: int = 5, local_epochs: int = 2, heads: str = "auto",
                            strategy: str = "fedavg", hidden: tuple[int, ...] = (512,),
                            endpoints: tuple[str, ...] | None = None, alpha: float = 0.5, seed: int = 0,
                            baselines: bool = True, num_cpus: int = 2,
                            featurizer: str = "morgan_count+rdkit2d", solo_ensemble: int | None = None,
                            pooled_reference: bool = True) -> dict:
    from flows.logs import project_loggers_at

    project_loggers_at(logging.INFO)  # a served run is a fresh process: INFO lines would be dropped
    # the run's tag names the mode "auto" gives (a fallback for unscaled endpoints is in the report)
    from federation.config import HEADS_AUTO, default_heads

    head_tag = default_heads(strategy)[0] if heads == HEADS_AUTO else heads
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_names.tag_run(run_names.standard_tags(
        "federated-training", partners=run_names.partner_set(partners_dir, n_partners),
        strategy=strategy, heads=head_tag, model=featurizer, rounds=rounds))
    if partners_dir is None:
        partition_task(out / "partners", n_partners, alpha, seed, endpoints)
        partners_dir = str(out / "partners")
    else:  # an existing partition: its folders are the registered partners, whatever n_partners says
        from federation.partners import partner_folders

        n_partners = len(partner_folders(Path(partners_dir)))
    config = {"out_dir": str(out / "federated"), "partners_dir": partners_dir, "n_partners": n_partners,
              "rounds": rounds, "local_epochs": local_epochs, "heads": heads, "strategy": strategy,
              "hidden": list(hidden), "seed": seed, "baselines": baselines, "num_cpus": num_cpus,
              "featurizer": featurizer, "solo_ensemble": solo_ensemble, "pooled_reference": pooled_reference}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    result = federated_task(config)
    files = report_task(result, out / "federated", Path(partners_dir))
    return {"out_dir": str(out), "bundle_dir": str(global_bundle_dir(result, out / "federated")),
            **{k: str(v) for k, v in files.items()}}


def global_bundle_dir(result, fed_dir: Path) -> Path:
    found = getattr(result, "bundle_dir", None) or getattr(result, "global_bundle", None)
    return Path(found) if found else fed_dir / "global_bundle"
