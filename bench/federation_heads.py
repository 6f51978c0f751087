"""Private or shared heads? Decided on valid rows, on a finished ``bench/federation.py --modes base`` run.

The best-solo references and the partners' kept private trees do not depend on the head mode, so this script
reuses them: it trains the federated net again on the same partition with the other head mode
(``fedadmet federate``'s own path, ``run_federated`` without references), then forms the default blend (the
equal blend of the federated net and the partner's kept trees, ``federation.blend``) with each mode's net
and the same trees.

The decision signal is each partner's **valid** metric (the mean primary metric over its endpoints that its
valid rows score): the equal rule chooses nothing on valid, so that mean is a clean estimate, and the two modes
are compared partner by partner on the same valid rows. The federated round kept is each mode's lowest
federated valid loss (the product's rule). Test scores (blend and net against the run's best solo, as
``bench/federation.py`` counts them, ties not counted as wins) are printed beside it and never used to decide.

    .venv/bin/python bench/federation_heads.py WORK/base [--out bench/results/federation_heads_F.json]

Prints a per-partner table and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pipelines  # noqa: E402

pipelines.configure()

import numpy as np  # noqa: E402

from federation import blend, scoring  # noqa: E402
from federation.config import FederatedConfig  # noqa: E402
from federation.report import summarize  # noqa: E402
from federation.run import load_all_partners, node_work_dir, run_federated  # noqa: E402

OTHER = {"private": "shared", "shared": "private"}


def _metric(pred: np.ndarray, Y: np.ndarray, tasks) -> float:
    return scoring.partner_metric(scoring.endpoint_scores(pred, Y, tasks))


def _scores(cfg: FederatedConfig, partners, trees) -> dict[str, dict]:
    """partner -> valid / test metric of the net alone and of the equal blend with the kept trees."""
    out = {}
    for d in partners:
        bundle = node_work_dir(cfg, d.partner) / "bundle"
        if d.partner not in trees or not bundle.is_dir():
            continue
        nn = blend.federated_nn_predictions(bundle, d)
        tr = trees[d.partner]
        row = {}
        for fold in ("valid", "test"):
            Y = d.Y[d.rows(fold)]
            row[f"{fold}_net"] = _metric(nn[fold], Y, d.tasks)
            row[f"{fold}_blend"] = _metric(blend.equal_blend(nn[fold], tr[fold]), Y, d.tasks)
        out[d.partner] = row
    return out


def _count(scores: dict[str, dict], solo: dict[str, float], key: str) -> int:
    """Partners whose ``key`` beats their best solo, counted as the run's report counts them (ties are not wins)."""
    return summarize([{"local": solo.get(p), key: r[key]} for p, r in scores.items()], key)["n_improved"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="a finished bench/federation.py base run folder (WORK/base)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "federation_heads.json"))
    args = ap.parse_args(argv)
    run = Path(args.run)
    first = FederatedConfig.from_dict(json.loads((run / "config.json").read_text()) | {"partners_dir": str(run / "partners")})
    other_mode = OTHER[first.heads]
    other_dir = run.parent / f"{run.name}_heads_{other_mode}"
    other = FederatedConfig.from_dict(first.to_dict() | {
        "heads": other_mode, "heads_auto": False, "heads_note": "", "out_dir": str(other_dir),
        "partners_dir": str(run / "partners"),
        "baselines": False, "pooled_reference": False})
    t0 = time.perf_counter()
    res = run_federated(other)
    seconds = time.perf_counter() - t0
    partners = load_all_partners(first, run / "partners")
    trees = {d.partner: blend.load_private_tree_predictions(node_work_dir(first, d.partner), d) for d in partners
             if (node_work_dir(first, d.partner) / blend.TREE_PREDICTIONS_FILE).exists()}
    first_report = json.loads((run / "report.json").read_text())
    solo = {p["partner"]: p["best_solo"] for p in first_report["partners"]}
    by_mode = {first.heads: _scores(first, partners, trees), other_mode: _scores(other, partners, trees)}
    summary = {}
    for mode, sc in by_mode.items():
        summary[mode] = {
            "valid_blend_mean": float(np.nanmean([r["valid_blend"] for r in sc.values()])),
            "valid_net_mean": float(np.nanmean([r["valid_net"] for r in sc.values()])),
            "test_blend_mean": float(np.nanmean([r["test_blend"] for r in sc.values()])),
            "test_net_mean": float(np.nanmean([r["test_net"] for r in sc.values()])),
            "test_blend_beats_best_solo": _count(sc, solo, "test_blend"),
            "test_net_beats_best_solo": _count(sc, solo, "test_net"),
            "n_partners": len(sc)}
    sh, pr = by_mode["shared"], by_mode["private"]
    common = [p for p in sh if p in pr and np.isfinite(sh[p]["valid_blend"]) and np.isfinite(pr[p]["valid_blend"])]
    summary["valid_blend_shared_better_partners"] = sum(sh[p]["valid_blend"] > pr[p]["valid_blend"] for p in common)
    summary["valid_compared_partners"] = len(common)
    print(f"{'partner':<12}{'solo':>7}  {'valid blend priv/shared':>24}  {'test blend priv/shared':>23}")
    for p in sorted(solo):
        if p in sh and p in pr:
            print(f"{p:<12}{solo[p]:7.3f}  {pr[p]['valid_blend']:11.3f} {sh[p]['valid_blend']:11.3f}"
                  f"  {pr[p]['test_blend']:11.3f} {sh[p]['test_blend']:11.3f}")
    for mode in ("private", "shared"):
        s = summary[mode]
        print(f"{mode:<8} valid: blend {s['valid_blend_mean']:.4f}, net {s['valid_net_mean']:.4f} | test: blend "
              f"{s['test_blend_mean']:.4f} ({s['test_blend_beats_best_solo']}/{s['n_partners']} beat best solo), net "
              f"{s['test_net_mean']:.4f} ({s['test_net_beats_best_solo']})")
    print(f"valid blend: shared above private for {summary['valid_blend_shared_better_partners']} of "
          f"{summary['valid_compared_partners']} partners")
    doc = {"run": str(run), "first_mode": first.heads, "other_mode": other_mode, "other_run_seconds": seconds,
           "selected_round": {first.heads: first_report.get("selected_round"),
                              other_mode: res.report.get("selected_round")},
           "summary": summary, "partners": {m: sc for m, sc in by_mode.items()}, "best_solo": solo}
    Path(args.out).write_text(json.dumps(doc, indent=1, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
