"""Federated trees benchmark (issue 10 §5): Flower's FedXgbBagging vs private LightGBM vs pooled xgboost.

On one non-IID partition of the embedded catalog (the project's partition path, ``--partners``
partners; ``--endpoints`` / ``--max-rows`` cut it to what fits), per endpoint and per partner, on the
partner's **valid** and **test** rows, the primary metric (Spearman / AUROC, ``federation.scoring``) of:
  private  LightGBM trained on the partner's own train rows only (``admet.config.ModelConfig``'s
           LightGBM settings, early stopping on the partner's own valid rows: its best solo tree model);
  fed      ``federation.trees.federated_trees``: xgboost grown by the partners that measure the endpoint
           through Flower (FedXgbBagging, ``--engine`` transport), rounds chosen on their valid rows;
  pooled   xgboost with the same tree settings (no class weights, as the federated trees) on all
           those partners' train rows together (one tree per round at step ``eta``, as one federated
           round takes), early stopping on their pooled valid rows.
Valid scores are optimistic for all three (each chose its number of trees there); test is the verdict.
Bytes per round are measured from Flower's serialized messages (``federation.metered_grid``), both
directions, not computed from the model size.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/federation_trees.py [--partners 20]
        [--endpoints A B ...] [--max-rows N] [--rounds 30] [--patience 5] [--engine inprocess]
        [--work /tmp/fedadmet_trees_bench] [--out bench/results/federation_trees.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pipelines  # noqa: E402

pipelines.configure()  # a benchmark is an entry point: the CLI's runtime defaults

from federation import partners as partners_mod  # noqa: E402
from federation import scoring  # noqa: E402
from federation.config import FederatedConfig  # noqa: E402
from federation.run import load_all_partners, warm_feature_cache  # noqa: E402
from federation.trees import TreeSettings, endpoint_rows, federated_trees, finite, xgb_params  # noqa: E402

log = logging.getLogger("bench.federation_trees")

DEFAULT_ENDPOINTS = ("Lipophilicity_AstraZeneca", "solubility", "HLM_CLint", "PPBR_AZ", "Caco2_Wang",
                     "BBB_Martins", "AMES", "hERG")
MODELS = ("private", "fed", "pooled")


def class_weights(y: np.ndarray, task_type: str) -> np.ndarray | None:
    """The project's LightGBM class weighting (``ModelConfig.class_weighting``): positives ``neg / pos``."""
    if task_type != "classification":
        return None
    pos, neg = float((y == 1).sum()), float((y == 0).sum())
    return np.where(y == 1, neg / pos, 1.0) if pos and neg else None


def private_lgbm(data, endpoint: str, task_type: str, seed: int) -> dict[str, np.ndarray] | None:
    """LightGBM on the partner's own train rows, early stopping on its own valid rows."""
    import lightgbm as lgb

    from admet.config import ModelConfig

    X, y, _ = endpoint_rows(data, endpoint, "train")
    if len(y) < 5 or (task_type == "classification" and len(np.unique(y)) < 2):
        return None
    mc = ModelConfig()
    params = dict(n_estimators=mc.lgbm_n_estimators, learning_rate=mc.lgbm_learning_rate,
                  num_leaves=mc.lgbm_num_leaves, min_child_samples=min(mc.lgbm_min_child_samples, max(2, len(y) // 5)),
                  subsample=mc.lgbm_subsample, subsample_freq=1, colsample_bytree=mc.lgbm_colsample,
                  random_state=seed, deterministic=True, force_row_wise=True, n_jobs=1, verbose=-1)
    Xv, yv, _ = endpoint_rows(data, endpoint, "valid")
    est = lgb.LGBMClassifier(**params) if task_type == "classification" else lgb.LGBMRegressor(**params)
    fit = {}
    if len(yv) >= 3 and (task_type != "classification" or len(np.unique(yv)) == 2):
        fit = dict(eval_X=(Xv,), eval_y=(yv,), callbacks=[lgb.early_stopping(50, verbose=False)])
    est.fit(X, y, sample_weight=class_weights(y, task_type), **fit)
    out = {}
    for fold in ("valid", "test"):
        Xf = finite(data.X[data.rows(fold)])
        out[fold] = (est.predict_proba(Xf)[:, 1] if task_type == "classification" else est.predict(Xf)) \
            if len(Xf) else np.zeros(0)
    return out


def pooled_xgb(parts, endpoint: str, task_type: str, settings: TreeSettings) -> dict[str, dict[str, np.ndarray]]:
    """xgboost on every trainer's train rows together; early stopping on their pooled valid rows."""
    import xgboost as xgb

    holders = [d for d in parts if endpoint in d.task_names]
    trainers = [d for d in holders if len(endpoint_rows(d, endpoint, "train")[1]) >= settings.min_train_labels]
    if not trainers:
        return {}
    X = np.concatenate([endpoint_rows(d, endpoint, "train")[0] for d in trainers])
    y = np.concatenate([endpoint_rows(d, endpoint, "train")[1] for d in trainers])
    Xv = np.concatenate([endpoint_rows(d, endpoint, "valid")[0] for d in trainers])
    yv = np.concatenate([endpoint_rows(d, endpoint, "valid")[1] for d in trainers])
    params = xgb_params(settings.to_config(), task_type, settings.eta, settings.seed)
    dtrain = xgb.DMatrix(X, label=y, nthread=1)  # no class weights, as the federated trees
    kw = {}
    if len(yv):
        kw = dict(evals=[(xgb.DMatrix(Xv, label=yv, nthread=1), "valid")], early_stopping_rounds=settings.patience,
                  verbose_eval=False)
    bst = xgb.train(params, dtrain, num_boost_round=settings.rounds, **kw)
    best = getattr(bst, "best_iteration", settings.rounds - 1) + 1 if kw else settings.rounds
    out = {}
    for d in holders:
        out[d.partner] = {}
        for fold in ("valid", "test"):
            Xf = finite(d.X[d.rows(fold)])
            out[d.partner][fold] = (bst.predict(xgb.DMatrix(Xf, nthread=1), iteration_range=(0, best))
                                    if len(Xf) else np.zeros(0))
    return out


def score(pred: np.ndarray | None, d, endpoint: str, fold: str, task) -> float | None:
    if pred is None:
        return None
    j = d.task_names.index(endpoint)
    y = d.Y[d.rows(fold), j][:, None]
    s = scoring.endpoint_scores(np.asarray(pred, float)[:, None], y, [task])
    return s[endpoint]["value"] if endpoint in s else None


def _median(v):
    v = [x for x in v if x is not None and np.isfinite(x)]
    return float(np.median(v)) if v else None


def summarize(rows: list[dict], parts) -> dict:
    out = {}
    for fold in ("valid", "test"):
        both = [r for r in rows if r["fold"] == fold and r["fed"] is not None and r["private"] is not None]
        pool = [r for r in both if r["pooled"] is not None]
        per_partner = {}
        for d in parts:
            mine = [r for r in both if r["partner"] == d.partner]
            if mine:
                per_partner[d.partner] = {m: float(np.mean([r[m] for r in mine])) for m in ("private", "fed")}
        gaps = [(r["fed"] - r["private"]) / (r["pooled"] - r["private"]) for r in pool if r["pooled"] - r["private"] > 1e-9]
        out[fold] = {
            "n_partner_endpoints": len(both),
            "fed_beats_private": sum(r["fed"] > r["private"] for r in both),
            "median_fed_minus_private": _median([r["fed"] - r["private"] for r in both]),
            "median_pooled_minus_private": _median([r["pooled"] - r["private"] for r in pool]),
            "median_gap_closed_vs_pooled": _median(gaps),
            "n_partners_scored": len(per_partner),
            "partners_fed_mean_beats_private_mean": sum(v["fed"] > v["private"] for v in per_partner.values()),
            "median_partner_relative_gain": _median([(v["fed"] - v["private"]) / abs(v["private"])
                                                     for v in per_partner.values() if v["private"]]),
            "per_partner": per_partner,
        }
    per_endpoint = {}
    for ep in sorted({r["endpoint"] for r in rows}):
        test = [r for r in rows if r["endpoint"] == ep and r["fold"] == "test"]
        per_endpoint[ep] = {m: _median([r[m] for r in test]) for m in MODELS}
        per_endpoint[ep]["n_partners"] = len(test)
    out["per_endpoint_test_median"] = per_endpoint
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--partners", type=int, default=20)
    ap.add_argument("--endpoints", nargs="*", default=list(DEFAULT_ENDPOINTS))
    ap.add_argument("--max-rows", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=TreeSettings().rounds)
    ap.add_argument("--patience", type=int, default=TreeSettings().patience)
    ap.add_argument("--engine", default="inprocess", choices=("inprocess", "ray"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="/tmp/fedadmet_trees_bench")
    ap.add_argument("--out", default=str(REPO / "bench/results/federation_trees.json"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for name in ("flwr", "federation.inprocess"):
        logging.getLogger(name).setLevel(logging.ERROR)
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    work = Path(args.work)
    cfg = FederatedConfig(out_dir=work / "run", n_partners=args.partners, endpoints=tuple(args.endpoints) or None,
                          max_rows=args.max_rows, seed=args.seed, engine=args.engine, baselines=False,
                          cache_dir=work / "feature_cache", num_cpus=2)
    settings = TreeSettings(rounds=args.rounds, patience=args.patience, seed=args.seed)
    partners_dir = partners_mod.prepare_partners(cfg)
    warm_feature_cache(cfg, partners_dir)
    parts = load_all_partners(cfg, partners_dir)
    t_prep = time.perf_counter() - t0
    log.info("partition: %d partners, %d molecules", len(parts), sum(len(d.X) for d in parts))

    t = time.perf_counter()
    fed = federated_trees(cfg, partners_dir, settings,
                          progress=lambda stage, done, total: log.info("%s %d/%d", stage, done, total))
    t_fed = time.perf_counter() - t
    tasks = {t.name: t for d in parts for t in d.tasks}

    t = time.perf_counter()
    private = {(d.partner, ep): private_lgbm(d, ep, tasks[ep].task_type, args.seed) for d in parts for ep in d.task_names}
    t_private = time.perf_counter() - t
    t = time.perf_counter()
    pooled = {ep: pooled_xgb(parts, ep, tasks[ep].task_type, settings) for ep in sorted(tasks)}
    t_pooled = time.perf_counter() - t

    rows = []
    for d in parts:
        for ep in d.task_names:
            for fold in ("valid", "test"):
                j = d.task_names.index(ep)
                n = int((~np.isnan(d.Y[d.rows(fold), j])).sum())
                preds = {"private": (private[(d.partner, ep)] or {}).get(fold),
                         "fed": fed.predictions.get(d.partner, {}).get(ep, {}).get(fold),
                         "pooled": pooled.get(ep, {}).get(d.partner, {}).get(fold)}
                rows.append({"partner": d.partner, "endpoint": ep, "fold": fold, "n": n,
                             "n_train": int((~np.isnan(d.Y[d.rows("train"), j])).sum()),
                             **{m: score(p, d, ep, fold, tasks[ep]) for m, p in preds.items()}})
    summary = summarize(rows, parts)
    rounds_info = {ep: {k: info[k] for k in ("task_type", "partners", "rounds_run", "best_round", "n_trees",
                                              "bytes_down", "bytes_up")} for ep, info in fed.endpoints.items()}
    per_round_down = [b for info in fed.endpoints.values() for b in info["bytes_down"]]
    per_round_up = [b for info in fed.endpoints.values() for b in info["bytes_up"]]
    result = {
        "config": {**vars(args), "settings": dataclasses.asdict(settings),
                   "featurizer": cfg.featurizer, "alpha": cfg.alpha},
        "load_average_start": load0, "load_average_end": os.getloadavg()[0],
        "partition": {"partners": len(parts), "molecules": int(sum(len(d.X) for d in parts)),
                      "endpoints": sorted(tasks)},
        "seconds": {"prepare_featurize": t_prep, "federated_trees": t_fed, "private_lgbm_all": t_private,
                    "pooled_xgb_all": t_pooled, "total": time.perf_counter() - t0},
        "bytes": {"total_down": fed.bytes_down, "total_up": fed.bytes_up,
                  "median_round_down": _median(per_round_down), "median_round_up": _median(per_round_up),
                  "max_round_down": max(per_round_down, default=0), "max_round_up": max(per_round_up, default=0),
                  "measured": "protobuf size of every Flower message (flwr.common.serde.message_to_proto), "
                              "train + evaluate phases; totals also include the endpoint and predict queries"},
        "endpoints": rounds_info,
        "summary": summary,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=float))
    print(_table(summary, rounds_info, result))
    print(f"wrote {args.out}")
    return 0


def _table(summary: dict, rounds_info: dict, result: dict) -> str:
    f = lambda v: "   n/a" if v is None else f"{v:6.3f}"  # noqa: E731
    lines = [f"{'endpoint':<28}{'type':>6}{'k':>4}{'best/run':>10}{'trees':>7}{'KB/round dn':>13}{'up':>7}"
             f"{'private':>9}{'fed':>8}{'pooled':>8}   (test, median over partners)"]
    for ep, info in rounds_info.items():
        med = summary["per_endpoint_test_median"].get(ep, {})
        dn = np.median(info["bytes_down"]) / 1e3 if info["bytes_down"] else 0.0
        up = np.median(info["bytes_up"]) / 1e3 if info["bytes_up"] else 0.0
        lines.append(f"{ep:<28}{info['task_type'][:5]:>6}{len(info['partners']):>4}"
                     f"{str(info['best_round']) + '/' + str(info['rounds_run']):>10}{info['n_trees']:>7}"
                     f"{dn:>13.1f}{up:>7.1f}  {f(med.get('private'))}  {f(med.get('fed'))}  {f(med.get('pooled'))}")
    for fold in ("valid", "test"):
        s = summary[fold]
        lines.append(f"{fold}: fed > private on {s['fed_beats_private']}/{s['n_partner_endpoints']} partner-endpoints; "
                     f"median fed-private {f(s['median_fed_minus_private'])}, pooled-private "
                     f"{f(s['median_pooled_minus_private'])}, gap closed {f(s['median_gap_closed_vs_pooled'])}; "
                     f"partners (mean over endpoints) fed > private {s['partners_fed_mean_beats_private_mean']}/"
                     f"{s['n_partners_scored']}, median relative gain {f(s['median_partner_relative_gain'])}")
    sec = result["seconds"]
    lines.append(f"seconds: federated trees {sec['federated_trees']:.0f}, private LightGBM (all) "
                 f"{sec['private_lgbm_all']:.0f}, pooled xgb (all) {sec['pooled_xgb_all']:.0f}; bytes total "
                 f"down {result['bytes']['total_down'] / 1e6:.1f} MB, up {result['bytes']['total_up'] / 1e6:.1f} MB")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
