"""The run's report: ``report.json`` (stable keys scripts rely on), ``report.md`` and PNG plots.

``report.json``::

    {"strategy": ..., "rounds": R, "bytes_per_round": B,
     "partners": [{"partner": ID, "metric": NAME, "local": x, "federated": y, "pooled": z,
                   "n_train": n, "n_test": m, "endpoints": {EP: {...}}, "delta": {...}}],
     "summary": {...}, "rejections": [...], "failed_partners": [...], "privacy": {...}, ...}

``metric`` names the partner's primary metric (mean over its endpoints of Spearman for
regression and AUROC for classification; higher is better).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from federation import scoring

log = logging.getLogger(__name__)

PRIMARY = "mean_primary(spearman|auroc)"


def _nan_to_none(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def build_report(outcome: dict, local: dict[str, dict] | None = None, pooled: dict[str, dict] | None = None,
                 timing: dict | None = None) -> dict:
    """Combine the server outcome (``federation_result.json``) with the reference models' scores."""
    local, pooled = local or {}, pooled or {}
    partners = []
    for name in sorted(set(outcome["partners"]) | set(local)):
        fed = outcome["partners"].get(name, {})
        fed_eps = {k[len("test."):]: v for k, v in fed.items() if k.startswith("test.")}
        endpoints = {}
        for ep in sorted(set(fed_eps) | set(local.get(name, {}).get("endpoints", {}))):
            loc = local.get(name, {}).get("endpoints", {}).get(ep, float("nan"))
            fe = fed_eps.get(ep, float("nan"))
            po = pooled.get(name, {}).get("endpoints", {}).get(ep, float("nan"))
            endpoints[ep] = {"metric": _metric_of(ep, outcome), "local": loc, "federated": fe, "pooled": po,
                             "n_test": int(fed.get(f"ntest.{ep}", 0)), "delta": scoring.deltas(loc, fe)}
        loc_m = local.get(name, {}).get("metric", float("nan"))
        fed_m = fed.get("metric", float("nan"))
        pool_m = pooled.get(name, {}).get("metric", float("nan"))
        partners.append({
            "partner": name, "metric": PRIMARY, "local": loc_m, "federated": fed_m, "pooled": pool_m,
            "n_train": int(fed.get("n-train", outcome.get("n_train", {}).get(name, 0))),
            "n_test": int(fed.get("n-test", 0)), "endpoints": endpoints,
            "delta": scoring.deltas(loc_m, fed_m), "gap_closed": scoring.gap_closed(loc_m, fed_m, pool_m),
            "participated": name in outcome["partners"],
        })
    rounds = outcome.get("round_log", [])
    bytes_per_round = float(np.mean([r["bytes"] for r in rounds])) if rounds else 0.0
    report = {
        "strategy": outcome["strategy"], "heads": outcome.get("heads"), "rounds": outcome["rounds"],
        "bytes_per_round": bytes_per_round,
        "bytes_measured_as": BYTES_MEASURED_AS,
        "model_bytes": outcome.get("model_bytes"),
        "partners": partners,
        "summary": summarize(partners),
        "rejections": outcome.get("rejections", []),
        "failed_partners": sorted({p for r in rounds for p in r.get("failed", [])} | set(outcome.get("stats_failed", []))),
        "round_log": rounds,
        "privacy": {"secure_aggregation": bool(outcome.get("secagg")),
                    "differential_privacy": outcome.get("dp"),
                    "heads_private": outcome.get("heads") == "private",
                    "scaling": outcome.get("scaling_mode", "moments"),
                    "secagg_two_partner_override": bool(outcome.get("secagg_two_partner_override")),
                    "what_leaves_a_node": "docs/PRIVACY.md"},
        "quorum": outcome.get("quorum"),
        "missing_by_round": {str(r["round"]): r.get("failed", []) for r in rounds if r.get("failed")},
        "timing": {**(timing or {}), "federated_train_seconds": outcome.get("train_seconds"),
                   "round_seconds": outcome.get("round_seconds")},
        "resumed_from": outcome.get("resumed_from", 0),
    }
    return _nan_to_none(report)


BYTES_MEASURED_AS = ("serialized size (Flower protobuf) of every message of the round's train and evaluate "
                     "phases, server to partners and back; transport framing not counted")


def _metric_of(endpoint: str, outcome: dict) -> str:
    for t in outcome.get("tasks", []):
        if t["name"] == endpoint:
            return "auroc" if t["task_type"] == "classification" else "spearman"
    return "unknown"


def summarize(partners: list[dict]) -> dict:
    """Counts and medians over partners that have all three numbers."""
    rows = [p for p in partners if all(isinstance(p[k], float) and not math.isnan(p[k])
                                       for k in ("local", "federated"))]
    improved = sum(1 for p in rows if p["federated"] > p["local"])
    rel = [p["delta"]["relative"] for p in rows if not math.isnan(p["delta"]["relative"])]
    gaps = [p["gap_closed"] for p in rows if isinstance(p["gap_closed"], float) and not math.isnan(p["gap_closed"])]
    return {"n_partners": len(partners), "n_scored": len(rows), "n_improved": improved,
            "median_relative_improvement": float(np.median(rel)) if rel else float("nan"),
            "median_absolute_improvement": float(np.median([p["delta"]["absolute"] for p in rows])) if rows else float("nan"),
            "median_gap_closed": float(np.median(gaps)) if gaps else float("nan"),
            "mean_local": float(np.mean([p["local"] for p in rows])) if rows else float("nan"),
            "mean_federated": float(np.mean([p["federated"] for p in rows])) if rows else float("nan"),
            "mean_pooled": float(np.nanmean([p["pooled"] if isinstance(p["pooled"], float) else np.nan for p in rows])) if rows else float("nan")}


def _fmt(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def markdown(report: dict) -> str:
    s = report["summary"]
    lines = [f"# Federated run: {report['strategy']}, {report['rounds']} rounds, heads {report['heads']}", "",
             f"- partners improved by federation: **{s['n_improved']} / {s['n_scored']}**",
             f"- median relative improvement over local-only: **{_fmt(s['median_relative_improvement'])}**",
             f"- median share of the local -> pooled gap closed: **{_fmt(s['median_gap_closed'])}**",
             f"- bytes per round (down + up, measured: {report['bytes_measured_as']}): "
             f"{report['bytes_per_round']:.0f} (the global arrays alone: {report['model_bytes']} B)",
             f"- privacy: {json.dumps(report['privacy'])}", "",
             f"Metric: {PRIMARY} on each partner's own scaffold-split test rows.", "",
             "| partner | n_train | n_test | local | federated | pooled | abs delta | rel delta | to perfect |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in report["partners"]:
        d = p["delta"]
        lines.append(f"| {p['partner']} | {p['n_train']} | {p['n_test']} | {_fmt(p['local'])} | {_fmt(p['federated'])} "
                     f"| {_fmt(p['pooled'])} | {_fmt(d['absolute'])} | {_fmt(d['relative'])} | {_fmt(d['improvement_to_perfect'])} |")
    if report["rejections"]:
        lines += ["", "## Rejected updates", ""]
        lines += [f"- round {r['round']}: **{r['partner']}**: {r['reason']}" for r in report["rejections"]]
    if report["failed_partners"]:
        lines += ["", f"Partners missing from at least one round: {', '.join(report['failed_partners'])}"]
        lines += [f"- round {r}: {', '.join(names)}" for r, names in report.get("missing_by_round", {}).items()]
    quorum = report.get("quorum")
    if quorum:
        lines += ["", f"Quorum: {quorum['needed']} of {quorum['registered']} registered partners; "
                  f"{quorum['answered_stats']} answered the statistics stage."]
    dp = report["privacy"].get("differential_privacy")
    if dp and dp.get("epsilon") is not None:
        lines += ["", "## Differential privacy", "",
                  f"Clipping norm {dp['clipping_norm']}, noise multiplier {dp['noise_multiplier']}; accounting: "
                  f"{dp.get('accounting')}. Epsilon is cumulative, at delta {dp.get('delta')}.", "",
                  "| round | epsilon | delta |", "|---|---|---|"]
        lines += [f"| {r['round']} | {_fmt(r.get('epsilon'))} | {r.get('delta')} |" for r in report["round_log"]]
        if dp.get("stopped_by_budget"):
            stop = dp["stopped_by_budget"]
            lines += ["", f"Stopped before round {stop['before_round']}: it could take epsilon above "
                      f"{stop['epsilon_max']} (spent: {_fmt(stop['epsilon'])})."]
    lines += ["", "## Per endpoint", "", "| partner | endpoint | metric | local | federated | pooled | to perfect |",
              "|---|---|---|---|---|---|---|"]
    for p in report["partners"]:
        for ep, e in p["endpoints"].items():
            lines.append(f"| {p['partner']} | {ep} | {e['metric']} | {_fmt(e['local'])} | {_fmt(e['federated'])} "
                         f"| {_fmt(e['pooled'])} | {_fmt(e['delta']['improvement_to_perfect'])} |")
    return "\n".join(lines) + "\n"


def plot(report: dict, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    parts = report["partners"]
    names = [p["partner"].replace("partner_", "p") for p in parts]
    x = np.arange(len(parts))
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(parts) + 2), 4))
    for i, (key, label) in enumerate((("local", "local-only"), ("federated", "federated"), ("pooled", "pooled"))):
        vals = [p[key] if p[key] is not None else np.nan for p in parts]
        ax.bar(x + (i - 1) * 0.27, vals, width=0.27, label=label)
    ax.set_xticks(x, names, rotation=60)
    ax.set_ylabel("mean Spearman / AUROC (test)")
    ax.set_title(f"{report['strategy']}, {report['rounds']} rounds, heads {report['heads']}")
    ax.legend()
    fig.tight_layout()
    paths.append(out_dir / "partners.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    rounds = report["round_log"]
    if rounds:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot([r["round"] for r in rounds], [r["train_loss"] if r["train_loss"] is not None else np.nan for r in rounds], marker="o")
        ax.set_xlabel("round")
        ax.set_ylabel("mean local training loss")
        fig.tight_layout()
        paths.append(out_dir / "rounds.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def write_report(report: dict, out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    (out_dir / "report.md").write_text(markdown(report))
    pngs = plot(report, out_dir)
    return {"json": out_dir / "report.json", "md": out_dir / "report.md", **{p.stem: p for p in pngs}}
