"""What a federated run shows in the dashboard: per-partner, per-round and rejected-update tables.

Plain functions over the run's ``report.json`` dict (``federation.report.build_report``), so the
same tables are built with or without Prefect; :func:`publish` turns them into artifacts.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from flows import artifacts, plots

log = logging.getLogger(__name__)

SERIES = ("local", "federated", "pooled")


def _num(value) -> float:
    return float("nan") if value is None else float(value)


def partner_frame(report: dict, expected: list[str] | None = None) -> pd.DataFrame:
    """One row per partner: local / federated / pooled metric, train / test counts, and whether it
    took part in every round. Partners in ``expected`` that the server never heard from get a row
    with ``status`` ``missing``."""
    failed = set(report.get("failed_partners") or [])
    rows = []
    for p in report["partners"]:
        status = "ok"
        if not p.get("participated", True):
            status = "missing"
        elif p["partner"] in failed:
            status = "missed a round"
        rows.append({"partner": p["partner"], **{s: _num(p.get(s)) for s in SERIES},
                     "n_train": int(p.get("n_train") or 0), "n_test": int(p.get("n_test") or 0),
                     "status": status})
    seen = {r["partner"] for r in rows}
    for name in sorted(set(expected or []) - seen):
        rows.append({"partner": name, **{s: float("nan") for s in SERIES}, "n_train": 0, "n_test": 0,
                     "status": "missing"})
    return pd.DataFrame(rows, columns=["partner", *SERIES, "n_train", "n_test", "status"])


def _epsilon(entry: dict, report: dict):
    if entry.get("epsilon") is not None:
        return entry["epsilon"]
    dp = (report.get("privacy") or {}).get("differential_privacy") or {}
    return dp.get("epsilon")


def round_frame(report: dict) -> pd.DataFrame:
    """One row per round: mean local training loss, replies, accepted / rejected / failed updates,
    bytes moved; DP noise multiplier and epsilon when the run used DP (epsilon only if the report
    carries one: the federation layer does not compute it today)."""
    dp = (report.get("privacy") or {}).get("differential_privacy")
    rows = []
    for r in report.get("round_log") or []:
        row = {"round": int(r["round"]), "train_loss": _num(r.get("train_loss")),
               "replies": int(r.get("n_replies") or 0), "accepted": len(r.get("accepted") or []),
               "rejected": len(r.get("rejected") or []), "failed": len(r.get("failed") or []),
               "bytes": int(r.get("bytes") or 0)}
        if dp:
            row["dp_noise_multiplier"] = _num(dp.get("noise_multiplier"))
            row["dp_clipping_norm"] = _num(dp.get("clipping_norm"))
            row["epsilon"] = _num(_epsilon(r, report))
        rows.append(row)
    return pd.DataFrame(rows)


def rejection_frame(report: dict) -> pd.DataFrame:
    """Every update the server refused: round, partner, reason."""
    rows = [{"round": int(r["round"]), "partner": r["partner"], "reason": r["reason"]}
            for r in report.get("rejections") or []]
    return pd.DataFrame(rows, columns=["round", "partner", "reason"])


def summary_markdown(partners: pd.DataFrame, rounds: pd.DataFrame, rejected: pd.DataFrame, out_dir: Path) -> str:
    scored = partners[partners["status"] != "missing"]
    means = {c: float(np.nanmean(scored[c])) for c in SERIES
             if c in scored and scored[c].notna().any()}
    missing = partners.loc[partners["status"] == "missing", "partner"].tolist()
    lines = ["# Federated training", "",
             f"- partners: **{len(scored)}** answered" + (f", **{len(missing)} missing**: {', '.join(missing)}"
                                                          if missing else ", none missing"),
             "- mean primary metric (Spearman / AUROC): "
             + (", ".join(f"{c} {artifacts.significant(v)}" for c, v in means.items()) or "n/a"),
             f"- rounds: {len(rounds)}; updates rejected: {len(rejected)}",
             f"- run folder: `{Path(out_dir).resolve()}`", "", artifacts.frame_to_markdown(partners)]
    if len(rejected):
        lines += ["", "## Rejected updates", "", artifacts.frame_to_markdown(rejected)]
    return "\n".join(lines)


def round_curve(rounds: pd.DataFrame, path: Path) -> Path | None:
    if rounds.empty or not rounds["train_loss"].notna().any():
        return None
    return plots.round_curve(rounds, path)


def publish(report: dict, out_dir: Path, expected: list[str] | None = None) -> dict[str, Path]:
    """Write the tables (CSV) and plots into ``out_dir`` and publish them as Prefect artifacts."""
    out_dir = Path(out_dir)
    partners, rounds, rejected = partner_frame(report, expected), round_frame(report), rejection_frame(report)
    files = {"partner_table": out_dir / "partners_table.csv", "round_table": out_dir / "rounds_table.csv",
             "rejections": out_dir / "rejected_updates.csv"}
    out_dir.mkdir(parents=True, exist_ok=True)
    partners.to_csv(files["partner_table"], index=False)
    rounds.to_csv(files["round_table"], index=False)
    rejected.to_csv(files["rejections"], index=False)
    shown = partners.set_index("partner")
    cols = [c for c in SERIES if c in shown and shown[c].notna().any()]
    if cols:
        files["partner_plot"] = plots.partner_metrics(shown[cols], out_dir / "plots" / "partners.png",
                                                      metric_label="mean primary metric (Spearman / AUROC)")
    curve = round_curve(rounds, out_dir / "plots" / "rounds.png")
    if curve is not None:
        files["round_plot"] = curve
    n_missing = int((partners["status"] == "missing").sum())
    artifacts.publish_markdown("federation-summary", summary_markdown(partners, rounds, rejected, out_dir),
                               "Federated training summary")
    artifacts.publish_table("federation-partners", partners,
                            f"Per partner: local-only / federated / pooled metric, counts; {n_missing} missing")
    artifacts.publish_table("federation-rounds", rounds, "Per round: training loss, accepted / rejected updates")
    artifacts.publish_table("federation-rejected-updates", rejected,
                            f"{len(rejected)} rejected updates with the server's reason")
    if "partner_plot" in files:
        artifacts.publish_image("federation-partners-plot", files["partner_plot"], "Per-partner metric bars")
    if curve is not None:
        artifacts.publish_image("federation-rounds-plot", curve, "Mean local training loss per round")
    log.info("federation report: %d partners (%d missing), %d rounds, %d rejected updates",
             len(partners), n_missing, len(rounds), len(rejected))
    return files
