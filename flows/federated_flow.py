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

from flows import artifacts, plots
from flows.runners import retry_unless_input_error
from pipelines.errors import InputError

log = logging.getLogger(__name__)

SERIES = ("local", "federated", "pooled")


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

    return run_federated(FederatedConfig.from_dict(config))


def partner_table(result) -> pd.DataFrame:
    """Per-partner primary metric for local-only / federated / pooled (rows: partners)."""
    table = getattr(result, "partner_table", None)
    if callable(table):
        table = table()
    if isinstance(table, pd.DataFrame):
        frame = table.copy()
        if "partner" in frame.columns:
            frame = frame.set_index("partner")
        return frame
    raise InputError("federated result carries no per-partner table")


@task(name="publish-federation-report", cache_policy=NO_CACHE)
def report_task(result, out_dir: Path) -> dict[str, Path]:
    return publish_federation_report(result, out_dir)


def publish_federation_report(result, out_dir: Path) -> dict[str, Path]:
    table = partner_table(result)
    cols = [c for c in SERIES if c in table.columns]
    png = plots.partner_metrics(table[cols], out_dir / "plots" / "partners.png",
                                metric_label="mean primary metric (Spearman / AUROC)")
    shown = table.reset_index()
    means = {c: float(table[c].mean()) for c in cols}
    md = ["# Federated training", "",
          f"- partners: **{len(table)}**; mean primary metric: "
          + ", ".join(f"{c} {v:.3f}" for c, v in means.items()),
          f"- run folder: `{out_dir}`", "", artifacts.frame_to_markdown(shown)]
    artifacts.publish_markdown("federation-summary", "\n".join(md), "Federated training summary")
    artifacts.publish_table("federation-partners", shown, "Per-partner metric: local-only / federated / pooled")
    artifacts.publish_image("federation-partners-plot", png, "Per-partner metric bars")
    files = {"partner_plot": png, "partner_table": out_dir / "partners_table.csv"}
    shown.to_csv(files["partner_table"], index=False)
    return files


@flow(name="federated-training", description="Partition partner data (or use a partition folder), run a "
      "Flower federation, and report local-only vs federated vs pooled per partner.")
def federated_training_flow(out_dir: str, partners_dir: str | None = None, n_partners: int = 20,
                            rounds: int = 5, local_epochs: int = 2, heads: str = "shared",
                            strategy: str = "fedavg", hidden: tuple[int, ...] = (512,),
                            endpoints: tuple[str, ...] | None = None, alpha: float = 0.5, seed: int = 0,
                            baselines: bool = True, num_cpus: int = 2,
                            featurizer: str = "morgan_count+rdkit2d") -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if partners_dir is None:
        partition_task(out / "partners", n_partners, alpha, seed, endpoints)
        partners_dir = str(out / "partners")
    config = {"out_dir": str(out / "federated"), "partners_dir": partners_dir, "n_partners": n_partners,
              "rounds": rounds, "local_epochs": local_epochs, "heads": heads, "strategy": strategy,
              "hidden": list(hidden), "seed": seed, "baselines": baselines, "num_cpus": num_cpus,
              "featurizer": featurizer}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    result = federated_task(config)
    files = report_task(result, out / "federated")
    return {"out_dir": str(out), "bundle_dir": str(global_bundle_dir(result, out / "federated")),
            **{k: str(v) for k, v in files.items()}}


def global_bundle_dir(result, fed_dir: Path) -> Path:
    found = getattr(result, "bundle_dir", None) or getattr(result, "global_bundle", None)
    return Path(found) if found else fed_dir / "global_bundle"
