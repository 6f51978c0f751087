"""Uncertainty and applicability domain of a model bundle, measured on its own held-out test fold.

    # an existing bundle (e.g. the shipped one, after fedadmet admet recalibrate):
    .venv/bin/python bench/admet_uncertainty.py --bundle /work/ship/blend1 --name ship
    # train a bundle first with fedadmet admet train's code path (train_bundle), then measure it:
    .venv/bin/python bench/admet_uncertainty.py --train --endpoints biogen6+tdc --bundle runs/unc_bundle --name subset

The test rows are the bundle's own ``test`` fold, found again exactly like ``fedadmet admet
recalibrate`` finds its calibration rows (``admet.recalibrate.training_rows``: the bundle's split
manifest, or the split made again). For the embedded catalog that fold is the table's split column:
TDC's scaffold-split test sets and Biogen's fixed test set. Everything is on the model's scale
(log10 for log-trained tasks), exact labels only.

Per regression endpoint: calibration labels used, the interval method chosen on the calibration
fold, test coverage of the 90% interval (target 88-92%), mean width, Spearman(width, |error|), and
side by side a constant-width split-conformal interval fitted on the same calibration rows (its
coverage and mean width; its Spearman is undefined). MAE and coverage inside vs outside the domain.
Per classification endpoint: AUROC and ECE of the raw and the calibrated probabilities, distinct
scores raw / calibrated / what isotonic regression on the same calibration rows would leave, and
AUROC / Brier inside vs outside the domain. Writes ``bench/results/admet_uncertainty_<name>.json``.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import admet_common as ac  # noqa: E402

log = logging.getLogger("bench.admet_uncertainty")
BIOGEN = ["HLM_CLint", "RLM_CLint", "MDR1_ER", "solubility", "hPPB", "rPPB"]
TDC_SUBSET = ["Caco2_Wang", "Lipophilicity_AstraZeneca", "PPBR_AZ", "VDss_Lombardo", "Half_Life_Obach",
              "Clearance_Microsome_AZ", "hERG", "BBB_Martins", "DILI", "CYP2C9_Substrate_CarbonMangels"]
PRESETS = {"biogen6": BIOGEN, "biogen6+tdc": BIOGEN + TDC_SUBSET}


def _f(v, digits=3) -> str:
    return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def train(endpoints: list[str], out: Path, model: str, ensemble: int, n_jobs: int | None) -> Path:
    from admet.config import ModelConfig
    from admet.fit import prepare_task_data, train_bundle
    from pipelines.catalog import load_embedded

    cfg = ModelConfig.cli_default(model=model, ensemble=ensemble)
    long_df = load_embedded(endpoints)
    td = prepare_task_data(long_df, endpoints=endpoints)
    log.info("training %s x%d on %d molecules x %d endpoints", cfg.model, cfg.ensemble, len(td), len(td.tasks))
    bundle = train_bundle(td, cfg, n_jobs=n_jobs, cache_dir=ac.FEATURE_CACHE / "fedadmet_featcache")
    bundle.save(out)
    import json

    (out / "train_run.json").write_text(json.dumps({"command": "bench/admet_uncertainty.py --train",
                                                    "data": "embedded catalog", "endpoints": endpoints,
                                                    "split": "scaffold", "ignore_split_column": False,
                                                    "config": cfg.to_json_dict()}, indent=2))
    return out


def measure(bundle_dir: Path, data: Path | None, manifest: Path | None, n_jobs: int | None) -> dict:
    from sklearn.isotonic import IsotonicRegression

    from admet.bundle import load_bundle
    from admet.conformal import ConformalRegressor
    from admet.recalibrate import training_rows
    from admet.uncertainty_metrics import summarize, uncertainty_metrics

    bundle = load_bundle(bundle_dir)
    rows = training_rows(bundle_dir, bundle, data, manifest, n_jobs, ac.FEATURE_CACHE / "fedadmet_featcache")
    td, split = rows.td, rows.split
    smiles = np.asarray(td.smiles, dtype=object)
    test, cal = split == "test", split == "valid"
    pred = bundle.predict_model_space(rows.X_raw[test], list(smiles[test]))
    pc = bundle.predict_model_space(rows.X_raw[cal], list(smiles[cal]))
    per = uncertainty_metrics(td.Y[test], td.censor[test], bundle.tasks, pred, bundle.config.coverage)
    for j, t in enumerate(bundle.tasks):
        d = per[t.name]
        yc = td.Y[cal, j]
        if t.is_classification:
            ok = np.isfinite(yc)
            d["n_calibration"] = int(ok.sum())
            d["calibration_method"] = bundle.calibrators[t.name].method if t.name in bundle.calibrators else None
            if ok.sum() >= 2 and len(np.unique(yc[ok])) == 2:
                iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(pc.raw[ok, j], yc[ok])
                ok_t = np.isfinite(td.Y[test, j])
                d["n_distinct_isotonic"] = int(len(np.unique(iso.predict(pred.raw[ok_t, j]))))
            continue
        conf = bundle.conformal.get(t.name)
        d["n_calibration"] = conf.n_calibration if conf else 0
        d["method"] = conf.method if conf else None
        exact = np.isfinite(yc) & (td.censor[cal, j] == 0)
        const = ConformalRegressor.fit(yc[exact], pc.raw[exact, j], None, bundle.config.coverage, method="absolute")
        yt = td.Y[test, j]
        okt = np.isfinite(yt) & (td.censor[test, j] == 0) & np.isfinite(pred.mean[:, j])
        if const.calibrated and okt.any():
            d["constant_coverage"] = float(np.mean(np.abs(yt[okt] - pred.mean[okt, j]) <= const.q))
            d["constant_mean_width"] = 2 * const.q
    return {"bundle": str(bundle_dir), "rows": {"source": rows.source, "split": rows.how, "exact": rows.exact,
                                                "folds": {k: int((split == k).sum()) for k in ("train", "valid", "test")}},
            "model": bundle.config.model, "ensemble": bundle.config.ensemble, "per_endpoint": per,
            "summary": summarize(per), "domain": {
                "threshold": None if bundle.domain is None else bundle.domain.threshold,
                "calibration_inside": None if bundle.domain is None else bundle.domain.calibration_inside,
                "test_inside": float(np.mean(pred.domain.status == "inside")) if len(pred.domain.status) else None}}


def tables(result: dict) -> str:
    per = result["per_endpoint"]
    reg = [[k, v["n_calibration"], v.get("method"), v["n"], _f(v.get("test_coverage")), _f(v.get("constant_coverage")),
            _f(v.get("mean_width")), _f(v.get("constant_mean_width")), _f(v.get("spearman_width_error")),
            f"{v['n_inside']}/{v['n_outside']}", _f(v.get("mae_inside")), _f(v.get("mae_outside"))]
           for k, v in per.items() if "test_coverage" in v]
    cls = [[k, v["n_calibration"], v.get("calibration_method"), v["n"], _f(v["auroc_raw"]), _f(v["auroc_calibrated"]),
            _f(v["ece_raw"]), _f(v["ece_calibrated"]),
            f"{v['n_distinct_raw']}/{v['n_distinct_calibrated']}/{v.get('n_distinct_isotonic', '')}",
            f"{v['n_inside']}/{v['n_outside']}", _f(v.get("auroc_inside")), _f(v.get("auroc_outside")),
            _f(v.get("brier_inside")), _f(v.get("brier_outside"))]
           for k, v in per.items() if "auroc_raw" in v]
    out = []
    if reg:
        out.append(ac.markdown_table(
            ["endpoint", "cal. labels", "method", "test n", "coverage@90", "constant-width cov.", "mean width",
             "constant width", "Spearman(width,|err|)", "n in/out", "MAE in", "MAE out"], reg))
    if cls:
        out.append(ac.markdown_table(
            ["endpoint", "cal. labels", "calibration", "test n", "AUROC raw", "AUROC cal.", "ECE raw", "ECE cal.",
             "distinct raw/cal./isotonic", "n in/out", "AUROC in", "AUROC out", "Brier in", "Brier out"], cls))
    s = result["summary"]
    out.append(f"coverage in 88-92%: {s['coverage_in_target']}/{s['regression_endpoints']} regression endpoints; "
               f"Spearman(width, |error|) > 0.2: {s['spearman_width_error_above_0.2']}/{s['spearman_width_error_n']} "
               f"(median {_f(s['spearman_width_error_median'])}); MAE outside > inside: "
               f"{s['mae_outside_above_inside']}/{s['mae_inside_outside_n']}; ECE improved: {s['ece_improved']}/{s['ece_n']}; "
               f"ranking changed: {s['ranking_changed'] or 'none'}; scores merged: {s['scores_merged'] or 'none'}")
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True, help="bundle to measure (written first with --train)")
    parser.add_argument("--train", action="store_true", help="train the bundle first (train_bundle, CLI default config)")
    parser.add_argument("--endpoints", default="biogen6+tdc", help=f"with --train: {sorted(PRESETS)} or a comma list")
    parser.add_argument("--model", default="blend")
    parser.add_argument("--ensemble", type=int, default=1)
    parser.add_argument("--data", type=Path, default=None, help="the bundle's training table (default: train_run.json)")
    parser.add_argument("--split-manifest", type=Path, default=None)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--name", default=None, help="results file suffix (default: the bundle folder name)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    t0 = time.perf_counter()
    trained = None
    if args.train:
        endpoints = PRESETS.get(args.endpoints) or [e.strip() for e in args.endpoints.split(",") if e.strip()]
        train(endpoints, args.bundle, args.model, args.ensemble, args.n_jobs)
        trained = {"endpoints": endpoints, "seconds": round(time.perf_counter() - t0, 1)}
    result = measure(args.bundle, args.data, args.split_manifest, args.n_jobs)
    table = tables(result)
    print(table)
    payload = {"benchmark": "admet_uncertainty", **result, "trained": trained,
               "seconds": round(time.perf_counter() - t0, 1), "machine": ac.machine_info(), "markdown": table}
    print(f"\nwrote {ac.write_json(f'admet_uncertainty_{args.name or args.bundle.name}.json', payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
