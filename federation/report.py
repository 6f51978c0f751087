"""The run's report: ``report.json`` (stable keys scripts rely on), ``report.md`` and PNG plots.

``report.json``::

    {"strategy": ..., "rounds": R, "bytes_per_round": B,
     "partners": [{"partner": ID, "metric": NAME, "local": x, "best_solo": x, "federated": y,
                   "federated_nn": y_nn, "federated_blend": y_blend, "pooled": z,
                   "n_train": n, "n_test": m, "endpoints": {EP: {...}}, "delta": {...}, "gap_closed": g}],
     "summary": {...}, "references": {...}, "rejections": [...], "failed_partners": [...], "privacy": {...}, ...}

``metric`` names the partner's primary metric (mean over its endpoints of Spearman for
regression and AUROC for classification; higher is better). ``local`` = ``best_solo``: the
partner's best solo model (``federation.baselines``). ``federated_nn``: global trunk + the partner's
heads; ``federated_blend``: the federated net with the partner's private trees (``federation.blend``;
``blend_rule``: their mean on every endpoint, the default, or per endpoint the net, the trees or their
mean, chosen on its valid rows); ``federated`` is the blend where it was
computed, else the net (``summary`` counts and deltas use ``federated``; ``summary["nn"]`` repeats
them for the net alone). Per endpoint ``blend_choice`` names the option the blend took.
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
                 timing: dict | None = None, blend: dict[str, dict] | None = None,
                 references: dict | None = None) -> dict:
    """Combine the server outcome (``federation_result.json``) with the reference models' scores.

    ``local``: best solo per partner; ``blend``: ``federation.blend.federated_blend``'s per-partner
    result; ``references``: how the references were trained (``federation.baselines.recipe``).
    """
    local, pooled, blend = local or {}, pooled or {}, blend or {}
    nan = float("nan")
    partners = []
    for name in sorted(set(outcome["partners"]) | set(local)):
        fed = outcome["partners"].get(name, {})
        fed_eps = {k[len("test."):]: v for k, v in fed.items() if k.startswith("test.")}
        bl = blend.get(name, {})
        endpoints = {}
        for ep in sorted(set(fed_eps) | set(local.get(name, {}).get("endpoints", {}))):
            loc = local.get(name, {}).get("endpoints", {}).get(ep, nan)
            nn = fed_eps.get(ep, nan)
            fb = bl.get("endpoints", {}).get(ep, nan) if bl else nan
            fe = fb if bl else nn
            po = pooled.get(name, {}).get("endpoints", {}).get(ep, nan)
            endpoints[ep] = {"metric": _metric_of(ep, outcome), "local": loc, "best_solo": loc, "federated": fe,
                             "federated_nn": nn, "federated_blend": fb, "blend_choice": bl.get("choice", {}).get(ep),
                             "pooled": po, "n_test": int(fed.get(f"ntest.{ep}", 0)), "delta": scoring.deltas(loc, fe)}
        loc_m = local.get(name, {}).get("metric", nan)
        nn_m = fed.get("metric", nan)
        blend_m = bl.get("metric", nan) if bl else nan
        fed_m = blend_m if bl else nn_m
        pool_m = pooled.get(name, {}).get("metric", nan)
        partners.append({
            "partner": name, "metric": PRIMARY, "local": loc_m, "best_solo": loc_m, "federated": fed_m,
            "federated_nn": nn_m, "federated_blend": blend_m, "pooled": pool_m,
            "n_train": int(fed.get("n-train", outcome.get("n_train", {}).get(name, 0))),
            "n_test": int(fed.get("n-test", 0)), "endpoints": endpoints,
            "delta": scoring.deltas(loc_m, fed_m), "gap_closed": scoring.gap_closed(loc_m, fed_m, pool_m),
            "delta_nn": scoring.deltas(loc_m, nn_m), "gap_closed_nn": scoring.gap_closed(loc_m, nn_m, pool_m),
            "participated": name in outcome["partners"],
        })
    rounds = outcome.get("round_log", [])
    bytes_per_round = float(np.mean([r["bytes"] for r in rounds])) if rounds else 0.0
    report = {
        "strategy": outcome["strategy"], "heads": outcome.get("heads"), "heads_note": outcome.get("heads_note", ""),
        "rounds": outcome["rounds"],
        "bytes_per_round": bytes_per_round,
        "bytes_measured_as": BYTES_MEASURED_AS,
        "model_bytes": outcome.get("model_bytes"),
        "partners": partners,
        "summary": {**summarize(partners), "nn": summarize(partners, key="federated_nn")},
        "per_endpoint": per_endpoint(partners),
        "references": references or {},
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
        "selected_round": outcome.get("selected_round"),
    }
    return _nan_to_none(report)


BYTES_MEASURED_AS = ("serialized size (Flower protobuf) of every message of the round's train and evaluate "
                     "phases, server to partners and back; transport framing not counted")


def _metric_of(endpoint: str, outcome: dict) -> str:
    for t in outcome.get("tasks", []):
        if t["name"] == endpoint:
            return "auroc" if t["task_type"] == "classification" else "spearman"
    return "unknown"


def _num(value) -> bool:
    return isinstance(value, float) and not math.isnan(value)


#: A partner counts as improved only when its federated metric is above best solo by more than this: two
#: models that rank a test fold identically can differ in the last bits of the mean over endpoints
#: (seen: 0.8482142857142857 vs 0.8482142857142856), which is a tie, not a win.
TIE_TOLERANCE = 1e-9


def summarize(partners: list[dict], key: str = "federated") -> dict:
    """Counts and medians over partners that have both the best-solo and the ``key`` number; a partner whose
    ``key`` is within ``TIE_TOLERANCE`` of its best solo is a tie (not improved)."""
    rows = [p for p in partners if _num(p.get("local")) and _num(p.get(key))]
    improved = sum(1 for p in rows if p[key] - p["local"] > TIE_TOLERANCE)
    d = [scoring.deltas(p["local"], p[key]) for p in rows]
    rel = [x["relative"] for x in d if not math.isnan(x["relative"])]
    gaps = [g for g in (scoring.gap_closed(p["local"], p[key], p["pooled"]) for p in rows if _num(p.get("pooled")))
            if not math.isnan(g)]
    return {"n_partners": len(partners), "n_scored": len(rows), "n_improved": improved,
            "median_relative_improvement": float(np.median(rel)) if rel else float("nan"),
            "median_absolute_improvement": float(np.median([x["absolute"] for x in d])) if d else float("nan"),
            "median_gap_closed": float(np.median(gaps)) if gaps else float("nan"),
            "mean_local": float(np.mean([p["local"] for p in rows])) if rows else float("nan"),
            "mean_federated": float(np.mean([p[key] for p in rows])) if rows else float("nan"),
            "mean_pooled": float(np.nanmean([p["pooled"] if _num(p.get("pooled")) else np.nan for p in rows]))
            if rows and any(_num(p.get("pooled")) for p in rows) else float("nan")}


def beats_target(summary: dict, n_partners: int, share: float = 0.9) -> dict:
    """Issue 10 §5's count target ("beats best solo for >= 18 of 20"): met when ``n_improved`` reaches
    ``ceil(share * n_partners)`` of *all* partners; a partner that cannot be scored (too few test rows,
    no reference) counts as missed, not as left out. ``summary``: :func:`summarize`'s output."""
    need = math.ceil(round(share * n_partners, 9))
    return {"met": summary["n_improved"] >= need, "n_improved": summary["n_improved"], "needed": need,
            "n_partners": n_partners, "n_scored": summary["n_scored"],
            "n_unscorable_counted_missed": n_partners - summary["n_scored"]}


#: The report's sentence for each ``FederatedConfig.blend_rule``.
BLEND_TEXT = {"equal": "the mean of the federated net and the partner's private trees on every endpoint (no choice)",
              "endpoint": "per endpoint the federated net, the partner's private trees or their mean, chosen on "
                          "its valid rows"}
PER_ENDPOINT_KEYS = ("best_solo", "federated_nn", "federated_blend", "pooled")


def per_endpoint(partners: list[dict]) -> dict[str, dict]:
    """Per endpoint: the mean over the partners that score it of each model's metric, and how often
    the blend took each option."""
    out: dict[str, dict] = {}
    for p in partners:
        for ep, e in p["endpoints"].items():
            row = out.setdefault(ep, {"metric": e["metric"], "n_partners": 0, "choices": {},
                                      **{k: [] for k in PER_ENDPOINT_KEYS}})
            row["n_partners"] += 1
            for k in PER_ENDPOINT_KEYS:
                if _num(e.get(k)):
                    row[k].append(e[k])
            if e.get("blend_choice"):
                row["choices"][e["blend_choice"]] = row["choices"].get(e["blend_choice"], 0) + 1
    for row in out.values():
        for k in PER_ENDPOINT_KEYS:
            row[k] = float(np.mean(row[k])) if row[k] else float("nan")
    return dict(sorted(out.items()))


def _fmt(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _selected_line(selected: dict | None) -> list[str]:
    if not selected:
        return []
    loss = selected.get("valid_loss")
    detail = f", federated valid loss {loss:.4f}" if isinstance(loss, (int, float)) else ""
    return [f"- the run's model: round {selected['round']} ({selected['rule']}{detail})"]


def markdown(report: dict) -> str:
    s = report["summary"]
    nn = s.get("nn", s)
    lines = [f"# Federated run: {report['strategy']}, {report['rounds']} rounds, heads {report['heads']}", "",
             f"- partners improved by federation over their best solo model: **{s['n_improved']} / {s['n_scored']}**"
             f" (federated net alone: {nn['n_improved']} / {nn['n_scored']})",
             f"- median relative improvement over best solo: **{_fmt(s['median_relative_improvement'])}**"
             f" (net alone: {_fmt(nn['median_relative_improvement'])})",
             f"- median share of the best-solo -> pooled gap closed: **{_fmt(s['median_gap_closed'])}**",
             f"- bytes per round (down + up, measured: {report['bytes_measured_as']}): "
             f"{report['bytes_per_round']:.0f} (the global arrays alone: {report['model_bytes']} B)",
             *_selected_line(report.get("selected_round")),
             *([f"- heads: {report['heads_note']}"] if report.get("heads_note") else []),
             f"- privacy: {json.dumps(report['privacy'])}", "",
             f"Metric: {PRIMARY} on each partner's own scaffold-split test rows. best solo: the partner's "
             "default-recipe model on its own rows (early stopping on its own valid rows); federated blend: "
             + (BLEND_TEXT["endpoint"] if report.get("blend_rule") == "endpoint" else BLEND_TEXT["equal"])
             + "; pooled: the default recipe on all partners' rows.", "",
             "| partner | n_train | n_test | best solo | federated NN | federated blend | pooled | rel delta | gap closed |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in report["partners"]:
        d = p["delta"]
        lines.append(f"| {p['partner']} | {p['n_train']} | {p['n_test']} | {_fmt(p['local'])} | {_fmt(p.get('federated_nn'))} "
                     f"| {_fmt(p.get('federated_blend'))} | {_fmt(p['pooled'])} | {_fmt(d['relative'])} "
                     f"| {_fmt(p.get('gap_closed'))} |")
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
    if report.get("per_endpoint"):
        lines += ["", "## Per endpoint (mean over the partners that score it)", "",
                  "| endpoint | metric | partners | best solo | federated NN | federated blend | pooled | blend choices |",
                  "|---|---|---|---|---|---|---|---|"]
        for ep, e in report["per_endpoint"].items():
            choices = ", ".join(f"{k} {v}" for k, v in sorted(e["choices"].items()))
            lines.append(f"| {ep} | {e['metric']} | {e['n_partners']} | {_fmt(e['best_solo'])} | {_fmt(e['federated_nn'])} "
                         f"| {_fmt(e['federated_blend'])} | {_fmt(e['pooled'])} | {choices} |")
    lines += ["", "## Per partner and endpoint", "",
              "| partner | endpoint | metric | best solo | federated NN | federated blend | blend choice | pooled |",
              "|---|---|---|---|---|---|---|---|"]
    for p in report["partners"]:
        for ep, e in p["endpoints"].items():
            lines.append(f"| {p['partner']} | {ep} | {e['metric']} | {_fmt(e['local'])} | {_fmt(e.get('federated_nn'))} "
                         f"| {_fmt(e.get('federated_blend'))} | {e.get('blend_choice') or '-'} | {_fmt(e['pooled'])} |")
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
    series = (("local", "best solo"), ("federated_nn", "federated NN"), ("federated_blend", "federated blend"),
              ("pooled", "pooled"))
    for i, (key, label) in enumerate(series):
        vals = [p.get(key) if p.get(key) is not None else np.nan for p in parts]
        ax.bar(x + (i - 1.5) * 0.2, vals, width=0.2, label=label)
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
