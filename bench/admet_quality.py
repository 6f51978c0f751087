"""Quality on the Biogen ADME fixed splits: fedadmet's models vs the peers, side by side in one run.

    .venv/bin/python bench/admet_quality.py            # full (Chemprop predictions from the cache)
    .venv/bin/python bench/admet_quality.py --quick    # subsampled smoke run, < 1 min, no Chemprop

Peers (bench/admet_common.py): MapLight-style LightGBM on Morgan counts + RDKit 2D (its own
featurization, trained here) and Chemprop v2.3.1 (``chemprop train`` defaults, 50 epochs, in
/work/peers/chemprop; its predictions are cached under bench/results/peer_cache/ keyed by the data
hash, filled by bench/peers/run_chemprop.py or by this script when missing).

fedadmet configurations, all through the admet package's public API (``admet.features.FeatureSet``
with the default ``morgan_count+rdkit2d`` spec, ``admet.config.ModelConfig``, ``admet.ensemble.Ensemble``):
  lgbm      LightGBM family, one endpoint
  mtnn-st   multitask-net family trained on one endpoint (k-member ensemble)
  mtnn-mt   one network over all six endpoints (k-member ensemble)
  blend     mean of mtnn-mt and lgbm predictions
Multitask protocol: the model evaluated on endpoint E never sees any label of a molecule in E's
test file (those molecules are removed from every task's training rows), so the other endpoints'
labels give no side information about E's test molecules.
Writes bench/results/admet_quality.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import admet_common as ac  # noqa: E402

log = logging.getLogger("bench.admet_quality")
FEDADMET_CONFIGS = ("lgbm", "mtnn-st", "mtnn-mt", "blend")
HEADLINE = "blend"


def _settings(quick: bool, k: int | None) -> dict:
    if quick:
        return dict(k=k or 2, epochs=25, patience=5, hidden=(512,), dropout=0.3, lgbm_trees=150,
                    lgbm_lr=0.1)
    return dict(k=k or 5, epochs=150, patience=15, hidden=(1024, 512), dropout=0.2, lgbm_trees=1000,
                lgbm_lr=0.03)


def _model_config(family: str, s: dict, seed: int):
    from admet.config import ModelConfig

    return ModelConfig.build(
        model=family, hidden=s["hidden"], dropout=s["dropout"], epochs=s["epochs"],
        patience=s["patience"], ensemble=1 if family == "lgbm" else s["k"], seed=seed,
        lgbm_n_estimators=s["lgbm_trees"], lgbm_learning_rate=s["lgbm_lr"], lgbm_colsample=0.5,
        lgbm_subsample=0.8, lgbm_num_leaves=31)


class FeatureTable:
    """fedadmet features (raw) for every benchmark SMILES, computed once; scaled per training set."""

    def __init__(self, smiles: list[str], spec: str) -> None:
        from admet.features import FeatureSet

        self.spec = spec
        self._fs = FeatureSet(spec=spec, cache_dir=ac.FEATURE_CACHE / "fedadmet_featcache")
        t0 = time.perf_counter()
        X, valid = self._fs.featurize(smiles)
        log.info("fedadmet featurized %d molecules in %.1fs", len(smiles), time.perf_counter() - t0)
        self.index = {s: i for i, s in enumerate(smiles)}
        self.X, self.valid = X, valid

    def rows(self, smiles) -> np.ndarray:
        return np.array([self.index[s] for s in smiles])

    def scaled(self, train_smiles, other_smiles):
        """Scaler fitted on the training rows only; returns (X_train, X_other)."""
        from admet.features import FeatureSet

        fs = FeatureSet(spec=self.spec)
        tr, ot = self.rows(train_smiles), self.rows(other_smiles)
        fs.fit_matrix(self.X[tr], self.valid[tr])
        return fs.transform_matrix(self.X[tr]), fs.transform_matrix(self.X[ot])


def _fit_predict(family: str, X, Y, tasks, Xt, s: dict, seed: int) -> np.ndarray:
    from admet.ensemble import Ensemble

    cfg = _model_config(family, s, seed)
    ens = Ensemble.fit(X, Y, np.zeros(Y.shape, np.int8), tasks, cfg)
    mean, _ = ens.predict(Xt)
    return mean


def run_fedadmet(all_splits: dict, eval_eps: list[str], feats: FeatureTable, s: dict, seed: int,
                 configs: list[str]) -> dict:
    """Fit each configuration per evaluated endpoint; multitask models use all endpoints' training files."""
    from admet.tasks import TaskSpec

    splits = all_splits
    eps = list(all_splits)
    wide: dict[str, dict[str, float]] = {}
    for e in eps:
        for smi, y in zip(splits[e].train["smiles"], splits[e].train["activity"]):
            wide.setdefault(smi, {})[e] = float(y)
    preds: dict[str, dict[str, np.ndarray]] = {c: {} for c in configs}
    timing: dict[str, float] = {c: 0.0 for c in configs}
    for e in eval_eps:
        sp = splits[e]
        test_smi = sp.test["smiles"].tolist()
        y_st = sp.train["activity"].to_numpy(float)[:, None]
        if "lgbm" in configs or "blend" in configs:
            t0 = time.perf_counter()
            X, Xt = feats.scaled(sp.train["smiles"], test_smi)
            preds.setdefault("lgbm", {})[e] = _fit_predict("lgbm", X, y_st, [TaskSpec(e)], Xt, s, seed)[:, 0]
            timing["lgbm"] = timing.get("lgbm", 0.0) + time.perf_counter() - t0
        if "mtnn-st" in configs:
            t0 = time.perf_counter()
            X, Xt = feats.scaled(sp.train["smiles"], test_smi)
            preds["mtnn-st"][e] = _fit_predict("mtnn", X, y_st, [TaskSpec(e)], Xt, s, seed)[:, 0]
            timing["mtnn-st"] += time.perf_counter() - t0
        if "mtnn-mt" in configs or "blend" in configs:
            t0 = time.perf_counter()
            held_out = set(test_smi)
            mt_smi = [m for m in wide if m not in held_out]
            Y = np.array([[wide[m].get(t, np.nan) for t in eps] for m in mt_smi])
            X, Xt = feats.scaled(mt_smi, test_smi)
            P = _fit_predict("mtnn", X, Y, [TaskSpec(t) for t in eps], Xt, s, seed)
            preds.setdefault("mtnn-mt", {})[e] = P[:, eps.index(e)]
            timing["mtnn-mt"] = timing.get("mtnn-mt", 0.0) + time.perf_counter() - t0
            log.info("%s: multitask training on %d molecules (%d labels of %s)", e, len(mt_smi),
                     int(np.isfinite(Y[:, eps.index(e)]).sum()), e)
        if "blend" in configs:
            preds["blend"][e] = 0.5 * (preds["mtnn-mt"][e] + preds["lgbm"][e])
        log.info("%s done: %s", e, {c: round(float(ac.regression_metrics(sp.test["activity"], p[e])["pearson"]), 3)
                                    for c, p in preds.items() if e in p})
    return {"preds": {c: preds[c] for c in configs}, "seconds": {c: timing.get(c, 0.0) for c in configs}}


def run_peers(splits: dict, quick: bool, run_chemprop: bool, seed: int) -> dict:
    out: dict[str, dict] = {"lgbm_peer": {}, "chemprop": {}}
    chemprop_source: dict[str, str] = {}
    seconds = {"lgbm_peer": 0.0}
    for e, sp in splits.items():
        t0 = time.perf_counter()
        out["lgbm_peer"][e] = ac.lgbm_peer_predict(sp, seed=seed, n_estimators=150 if quick else 1000,
                                                   learning_rate=0.1 if quick else 0.03)
        seconds["lgbm_peer"] += time.perf_counter() - t0
        cached = ac.chemprop_cached(sp)
        if cached is None and run_chemprop and ac.chemprop_bin().exists():
            log.info("%s: running Chemprop (%d epochs); this takes a while on 2 cores", e, ac.CHEMPROP_EPOCHS)
            cached = ac.chemprop_run(sp)
            chemprop_source[e] = "run now"
        elif cached is not None:
            chemprop_source[e] = f"cache ({cached['train_seconds']:.0f}s train when run)"
        if cached is not None:
            out["chemprop"][e] = np.asarray(cached["pred"], float)
        else:
            chemprop_source[e] = "missing"
    return {"preds": out, "chemprop_source": chemprop_source, "seconds": seconds}


IN_RUN_PEERS = ("lgbm_peer", "chemprop")


def summarize(splits, fed, peers, quick: bool) -> dict:
    """Metrics per endpoint and a verdict per configuration against the peers **measured in this run**.

    Chemprop predictions come from this run or from the peer cache (the same split, recorded per endpoint
    in ``chemprop_source``). Where neither exists the endpoint's verdict is against the LightGBM peer alone
    (``verdict_peers`` says so); the Pearson r measured earlier (``admet_common.REFERENCE_PEARSON``) is shown
    beside it as ``chemprop_r_measured_earlier`` and never enters a verdict.
    """
    rows = {}
    for e, sp in splits.items():
        y = sp.test["activity"].to_numpy(float)
        r = {}
        for name, p in list(peers["preds"].items()) + list(fed["preds"].items()):
            if e in p:
                r[name] = ac.regression_metrics(y, p[e])
        measured = [(r[p]["pearson"], p) for p in IN_RUN_PEERS if p in r]
        best_r, best = max(measured)
        rows[e] = {"metrics": r, "best_peer_pearson": best_r, "best_peer": best,
                   "verdict_peers": [p for _, p in measured],
                   "chemprop_r_measured_earlier": None if "chemprop" in r else ac.REFERENCE_PEARSON["chemprop"][e],
                   "n_train": len(sp.train), "n_test": len(sp.test)}
    verdicts = {}
    for c in fed["preds"]:
        deltas = {e: rows[e]["metrics"][c]["pearson"] - rows[e]["best_peer_pearson"] for e in rows}
        wins = sum(d >= 0 for d in deltas.values())
        verdicts[c] = {"deltas": deltas, "wins": wins, "worst_delta": min(deltas.values()),
                       "meets_target": wins >= min(4, len(deltas)) and min(deltas.values()) >= -0.02,
                       "against": "peers measured in this run (or Chemprop's cached predictions on the same split)"}
    return {"endpoints": rows, "verdicts": verdicts}


def render(summary: dict, configs: list[str]) -> str:
    peers = list(IN_RUN_PEERS)
    header = ["endpoint"] + [f"{c} r" for c in peers + configs] + ["best in-run peer r (which)"] + \
        [f"{c} / best peer" for c in configs] + ["Chemprop r measured earlier (context, not in verdict)"]
    rows = []
    for e, d in summary["endpoints"].items():
        m = d["metrics"]
        row = [ac.BIOGEN_ENDPOINTS[e]]
        row += [m[c]["pearson"] if c in m else "not run" for c in peers + configs]
        row += [f"{d['best_peer_pearson']:.3f} ({d['best_peer']})"]
        row += [f"{m[c]['pearson'] / d['best_peer_pearson']:.3f}" for c in configs]
        earlier = d.get("chemprop_r_measured_earlier")
        row += [f"{earlier:.3f}" if earlier is not None else "-"]
        rows.append(row)
    mae_header = ["endpoint"] + [f"{c} MAE" for c in peers + configs]
    mae_rows = [[ac.BIOGEN_ENDPOINTS[e]] + [d["metrics"][c]["mae"] if c in d["metrics"] else "not run"
                                          for c in peers + configs]
                for e, d in summary["endpoints"].items()]
    verdict = ["| config | endpoints >= best in-run peer | worst delta r | target met |", "|---|---|---|---|"]
    for c, v in summary["verdicts"].items():
        verdict.append(f"| {c} | {v['wins']} / {len(v['deltas'])} | {v['worst_delta']:+.3f} | "
                       f"{'yes' if v['meets_target'] else 'no'} |")
    lgbm_only = [ac.BIOGEN_ENDPOINTS[e] for e, d in summary["endpoints"].items() if d["verdict_peers"] == ["lgbm_peer"]]
    note = ("Verdict against the peers measured in this run (Chemprop from this run or its cache on the same split)"
            + (f"; Chemprop not available for {', '.join(lgbm_only)}: LightGBM peer only there, the earlier "
               "Chemprop number is context" if lgbm_only else ""))
    return "\n\n".join(["Pearson r (test files)", ac.markdown_table(header, rows),
                        "MAE (log10 units)", ac.markdown_table(mae_header, mae_rows),
                        "Target: >= best peer on >= 4 of 6 endpoints, never more than 0.02 below. " + note,
                        "\n".join(verdict)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="subsampled data, small models, no Chemprop")
    parser.add_argument("--endpoints", default=",".join(ac.BIOGEN_ENDPOINTS))
    parser.add_argument("--configs", default=",".join(FEDADMET_CONFIGS))
    parser.add_argument("--ensemble", type=int, default=None, help="members per network ensemble")
    parser.add_argument("--hidden", default=None, help="trunk widths, e.g. 1024,512")
    parser.add_argument("--dropout", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--featurizer", default="morgan_count+rdkit2d",
                        help="feature spec for fedadmet's models (the peers keep their own features)")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="combine per-endpoint-group result files (their stored predictions) into one table")
    parser.add_argument("--no-run-chemprop", action="store_true", help="only use cached Chemprop predictions")
    parser.add_argument("--out", default=None, help="JSON path (default bench/results/admet_quality[_quick].json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    eps = [e for e in args.endpoints.split(",") if e]
    configs = [c for c in args.configs.split(",") if c]
    bad = [c for c in configs if c not in FEDADMET_CONFIGS] + [e for e in eps if e not in ac.BIOGEN_ENDPOINTS]
    if bad:
        parser.error(f"unknown config/endpoint {bad}; configs {FEDADMET_CONFIGS}, endpoints {list(ac.BIOGEN_ENDPOINTS)}")
    if args.quick and args.endpoints == ",".join(ac.BIOGEN_ENDPOINTS):
        eps = ["HLM", "Sol"]
    s = _settings(args.quick, args.ensemble)
    if args.hidden:
        s["hidden"] = tuple(int(v) for v in args.hidden.split(","))
    if args.dropout is not None:
        s["dropout"] = args.dropout
    if args.merge:
        return merge(args.merge, args.out)
    t_start = time.perf_counter()
    all_splits = {e: ac.load_biogen(e, quick=args.quick, seed=args.seed) for e in ac.BIOGEN_ENDPOINTS}
    # multitask training uses every endpoint's training file; evaluation only the chosen ones
    smiles = sorted({m for sp in all_splits.values() for part in (sp.train, sp.test) for m in part["smiles"]})
    feats = FeatureTable(smiles, spec=args.featurizer)
    splits = {e: all_splits[e] for e in eps}
    peers = run_peers(splits, args.quick, run_chemprop=not (args.quick or args.no_run_chemprop), seed=args.seed)
    fed = run_fedadmet(all_splits, eps, feats, s, args.seed, configs)
    summary = summarize(splits, fed, peers, args.quick)
    table = render(summary, configs)
    print(table)
    payload = {
        "benchmark": "admet_quality", "quick": args.quick, "seed": args.seed, "settings": s,
        "configs": configs, "headline_config": HEADLINE, "feature_spec": feats.spec,
        "multitask_protocol": "labels of the evaluated endpoint's test molecules removed from all tasks",
        "chemprop": {"version": "2.3.1", "epochs": ac.CHEMPROP_EPOCHS, "source": peers["chemprop_source"]},
        "lgbm_peer_cache": "predictions cached under bench/results/peer_cache, keyed by data hash + settings",
        "reference_pearson_measured_earlier": ac.REFERENCE_PEARSON,  # context only, never in a verdict
        "predictions": {c: {e: [float(v) for v in p] for e, p in d.items()}
                        for c, d in list(peers["preds"].items()) + list(fed["preds"].items())},
        "summary": summary, "seconds": {**peers["seconds"], **fed["seconds"],
                                        "total": time.perf_counter() - t_start},
        "machine": ac.machine_info(), "markdown": table,
    }
    name = Path(args.out).name if args.out else ("admet_quality_quick.json" if args.quick else "admet_quality.json")
    print(f"\nwrote {ac.write_json(name, payload)}")
    return 0


def merge(paths: list[str], out: str | None) -> int:
    """One table from several runs over disjoint endpoint groups (same settings), via stored predictions."""
    import json

    parts = [json.loads(Path(p).read_text()) for p in paths]
    if len({json.dumps(p["settings"], sort_keys=True) for p in parts}) > 1 or any(p["quick"] for p in parts):
        raise SystemExit("merge: the runs used different settings (or --quick); refusing to mix them")
    configs = parts[0]["configs"]
    preds: dict[str, dict[str, np.ndarray]] = {}
    chemprop_source: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for p in parts:
        for c, d in p["predictions"].items():
            preds.setdefault(c, {}).update({e: np.asarray(v, float) for e, v in d.items()})
        chemprop_source.update(p["chemprop"]["source"])
        for k, v in p["seconds"].items():
            seconds[k] = seconds.get(k, 0.0) + v
    eps = [e for e in ac.BIOGEN_ENDPOINTS if e in preds.get("lgbm_peer", {})]
    splits = {e: ac.load_biogen(e) for e in eps}
    for e, sp in splits.items():  # Chemprop runs that finished after a part was written
        cached = ac.chemprop_cached(sp)
        if e not in preds.get("chemprop", {}) and cached is not None:
            preds.setdefault("chemprop", {})[e] = np.asarray(cached["pred"], float)
            chemprop_source[e] = f"cache ({cached['train_seconds']:.0f}s train when run)"
    peers = {"preds": {c: preds.get(c, {}) for c in ("lgbm_peer", "chemprop")}}
    fed = {"preds": {c: preds[c] for c in configs}}
    summary = summarize(splits, fed, peers, False)
    table = render(summary, configs)
    print(table)
    payload = {**{k: parts[0][k] for k in ("benchmark", "quick", "seed", "settings", "configs", "headline_config",
                                           "feature_spec", "multitask_protocol", "reference_pearson_measured_earlier")},
               "merged_from": [str(p) for p in paths],
               "chemprop": {**parts[0]["chemprop"], "source": chemprop_source},
               "predictions": {c: {e: [float(v) for v in a] for e, a in d.items()} for c, d in preds.items()},
               "summary": summary, "seconds_summed_over_parts": seconds, "machine": ac.machine_info(),
               "markdown": table}
    print(f"\nwrote {ac.write_json(Path(out).name if out else 'admet_quality.json', payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
