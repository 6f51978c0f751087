"""What a federated run shows in the dashboard: per-partner, per-round and rejected-update tables.

Plain functions over the run's ``report.json`` dict (``federation.report.build_report``), so the
same tables are built with or without Prefect; :func:`publish` turns them into artifacts.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from flows import artifacts, plots

log = logging.getLogger(__name__)

#: Per-partner metric columns: the partner's best solo model (the default recipe on its own rows), the
#: federated network, the federated model the partner keeps (the per-endpoint blend when one was
#: computed, else the network) and the pooled reference. Older reports name the best solo ``local``.
SERIES = ("best_solo", "federated_nn", "federated", "pooled")
#: How the server names a node it has no partner id for: ``node-<id>`` (older runs) or
#: ``unidentified partner (node id <id>)``.
_NODE_NAME = re.compile(r"^(?:node-(\d+)|unidentified partner \(node id (\d+)\))$")


def _num(value) -> float:
    return float("nan") if value is None else float(value)


def node_id_of(name: str) -> int | None:
    """The Flower node id in a server-made placeholder name, ``None`` for a partner id."""
    match = _NODE_NAME.match(str(name))
    return int(match.group(1) or match.group(2)) if match else None


def partner_names(report: dict, partner_of_node: dict | None = None):
    """``name -> partner id``: a placeholder for a node becomes the partner id the run's node map
    (``partner_of_node`` of ``federation_result.json``, or the report's own) gives it; a node
    that never told its id gets ``unidentified partner (node id N)``; partner ids stay."""
    mapping = {str(k): str(v) for k, v in (partner_of_node or report.get("partner_of_node") or {}).items()}

    def name(value: str) -> str:
        node = node_id_of(value)
        if node is None:
            return str(value)
        return mapping.get(str(node), f"unidentified partner (node id {node})")

    return name


def partner_frame(report: dict, expected: list[str] | None = None,
                  partner_of_node: dict | None = None) -> pd.DataFrame:
    """One row per partner, named by partner id: best solo / federated NN / federated / pooled metric, train / test
    counts, and whether it took part in every round. Partners in ``expected`` (the partition's
    folders) without scores get a row with ``status`` ``failed`` (the server got an error reply
    from them) or ``missing`` (it never heard from them). A node that failed before telling its
    partner id has no row (it cannot be matched to a partner; :func:`unidentified_nodes`)."""
    name = partner_names(report, partner_of_node)
    failed = {name(f) for f in report.get("failed_partners") or []}
    rows = []
    for p in report["partners"]:
        status = "ok"
        if not p.get("participated", True):
            status = "missing"
        elif name(p["partner"]) in failed:
            status = "missed a round"
        values = {**p, "best_solo": p.get("best_solo", p.get("local"))}
        rows.append({"partner": name(p["partner"]), **{s: _num(values.get(s)) for s in SERIES},
                     "n_train": int(p.get("n_train") or 0), "n_test": int(p.get("n_test") or 0),
                     "status": status})
    seen = {r["partner"] for r in rows}
    for partner in sorted(set(expected or []) - seen):
        rows.append({"partner": partner, **{s: float("nan") for s in SERIES}, "n_train": 0, "n_test": 0,
                     "status": "failed" if partner in failed else "missing"})
    return pd.DataFrame(rows, columns=["partner", *SERIES, "n_train", "n_test", "status"])


def unidentified_nodes(report: dict, partner_of_node: dict | None = None) -> list[str]:
    """Failed nodes the server could not name (they failed before sending their partner id)."""
    name = partner_names(report, partner_of_node)
    return sorted({name(f) for f in report.get("failed_partners") or [] if node_id_of(name(f)) is not None})


def round_frame(report: dict) -> pd.DataFrame:
    """One row per round: mean local training loss, replies, accepted / rejected / failed updates,
    bytes moved. With DP on: the noise multiplier and clipping norm, and ``epsilon`` / ``delta``
    columns, filled from the round records' own ``epsilon`` / ``delta`` (the privacy accountant's
    cumulative guarantee after that round); a round record without them shows them empty (NaN),
    never an estimate made here. Without DP the privacy columns appear only if a round record
    carries ``epsilon`` or ``delta``."""
    dp = (report.get("privacy") or {}).get("differential_privacy")
    records = report.get("round_log") or []
    accounted = any(r.get("epsilon") is not None or r.get("delta") is not None for r in records)
    rows = []
    for r in records:
        row = {"round": int(r["round"]), "train_loss": _num(r.get("train_loss")),
               "replies": int(r.get("n_replies") or 0), "accepted": len(r.get("accepted") or []),
               "rejected": len(r.get("rejected") or []), "failed": len(r.get("failed") or []),
               "bytes": int(r.get("bytes") or 0)}
        if dp:
            row["dp_noise_multiplier"] = _num(dp.get("noise_multiplier"))
            row["dp_clipping_norm"] = _num(dp.get("clipping_norm"))
        if dp or accounted:
            row["epsilon"] = _num(r.get("epsilon"))
            row["delta"] = _num(r.get("delta"))
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt(value) -> str:
    shown = artifacts.significant(float(value))
    return "n/a" if shown is None else f"{shown:g}"


def round_log_lines(rounds: pd.DataFrame) -> list[str]:
    """One line per round for the run's log (what the dashboard's Logs tab shows)."""
    lines = []
    for r in rounds.to_dict(orient="records"):
        line = (f"round {r['round']}: mean train loss {_fmt(r['train_loss'])}, "
                f"{r['replies']} replies, {r['accepted']} accepted, {r['rejected']} rejected, {r['failed']} failed")
        if "epsilon" in r:
            line += f"; epsilon {_fmt(r['epsilon'])} at delta {_fmt(r['delta'])}"
        lines.append(line)
    return lines


def rejection_frame(report: dict, partner_of_node: dict | None = None) -> pd.DataFrame:
    """Every update the server refused: round, partner (by id), reason."""
    name = partner_names(report, partner_of_node)
    rows = [{"round": int(r["round"]), "partner": name(r["partner"]), "reason": r["reason"]}
            for r in report.get("rejections") or []]
    return pd.DataFrame(rows, columns=["round", "partner", "reason"])


def summary_markdown(partners: pd.DataFrame, rounds: pd.DataFrame, rejected: pd.DataFrame, out_dir: Path,
                     unidentified: list[str] | None = None) -> str:
    scored = partners[~partners["status"].isin(["missing", "failed"])]
    means = {c: float(np.nanmean(scored[c])) for c in SERIES
             if c in scored and scored[c].notna().any()}
    missing = partners.loc[partners["status"] == "missing", "partner"].tolist()
    lines = ["# Federated training", "",
             f"- partners: **{len(scored)}** answered" + (f", **{len(missing)} missing**: {', '.join(missing)}"
                                                          if missing else ", none missing"),
             "- mean primary metric (Spearman / AUROC): "
             + (", ".join(f"{c} {artifacts.significant(v)}" for c, v in means.items()) or "n/a"),
             f"- rounds: {len(rounds)}; updates rejected: {len(rejected)}",
             *([f"- nodes that failed before naming their partner: {', '.join(unidentified)}"]
               if unidentified else []),
             *([_privacy_line(rounds)] if "epsilon" in rounds and rounds["epsilon"].notna().any() else []),
             f"- run folder: `{Path(out_dir).resolve()}`", "", artifacts.frame_to_markdown(partners)]
    if len(rejected):
        lines += ["", "## Rejected updates", "", artifacts.frame_to_markdown(rejected)]
    return "\n".join(lines)


def _privacy_line(rounds: pd.DataFrame) -> str:
    last = rounds[rounds["epsilon"].notna()].iloc[-1]
    return (f"- differential privacy after round {int(last['round'])}: epsilon {_fmt(last['epsilon'])} "
            f"at delta {_fmt(last['delta'])} (the accountant's value in the run's report)")


def round_curve(rounds: pd.DataFrame, path: Path) -> Path | None:
    if rounds.empty or not rounds["train_loss"].notna().any():
        return None
    return plots.round_curve(rounds, path)


def publish(report: dict, out_dir: Path, expected: list[str] | None = None,
            partner_of_node: dict | None = None) -> dict[str, Path]:
    """Write the tables (CSV) and plots into ``out_dir``, log one line per round, and publish them
    as Prefect artifacts."""
    out_dir = Path(out_dir)
    partners, rounds = partner_frame(report, expected, partner_of_node), round_frame(report)
    rejected = rejection_frame(report, partner_of_node)
    unidentified = unidentified_nodes(report, partner_of_node)
    for line in round_log_lines(rounds):
        log.info("%s", line)
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
    artifacts.publish_markdown("federation-summary",
                               summary_markdown(partners, rounds, rejected, out_dir, unidentified),
                               "Federated training summary")
    artifacts.publish_table("federation-partners", partners,
                            f"Per partner: best solo / federated NN / federated (blend) / pooled metric, counts; "
                            f"{n_missing} missing")
    artifacts.publish_table("federation-rounds", rounds, "Per round: training loss, accepted / rejected updates"
                            + ("; epsilon / delta of the DP accountant" if "epsilon" in rounds else ""))
    artifacts.publish_table("federation-rejected-updates", rejected,
                            f"{len(rejected)} rejected updates with the server's reason")
    if "partner_plot" in files:
        artifacts.publish_image("federation-partners-plot", files["partner_plot"], "Per-partner metric bars")
    if curve is not None:
        artifacts.publish_image("federation-rounds-plot", curve, "Mean local training loss per round")
    log.info("federation report: %d partners (%d missing), %d rounds, %d rejected updates",
             len(partners), n_missing, len(rounds), len(rejected))
    return files
