"""Do ADMET features help the trial-outcome model? Ablation on HINT/TOP phases I and III, 5 seeds.

    .venv/bin/python bench/trial_admet_ablation.py [--admet-model DIR] [--seeds 5] [--ensemble 5]

For each phase (phase I: train+valid -> test; phase III: valid -> test, as ``bench/trials.py``) and
each seed, the trial model (``clinical_sim.outcome_model``, the CLI's default configuration with
``ModelConfig(seed=s)``) is trained twice on the same training trials: with the ADMET block (every
endpoint the bundle predicts, aggregated mean/min/max over a trial's drugs, plus the derived PK) and
without it. The choice between the two is made on the training trials only: the variant with the
higher mean out-of-fold PR-AUC over the seeds (the model's own 5-fold cross-validation inside
``fit``; the text model's C is picked the same way). The test set is scored for both variants and
reported, but it never decides anything.

ADMET bundle: ``--admet-model DIR``; else the shipped base model when it is installed and intact
(``admet.shipped``); else a small bundle trained once with the admet API (``bench/trials.py``'s
``ensure_admet``: LightGBM x1, 150 trees, every catalog endpoint, <= 400 measurements each). The
JSON says which was used.

The HINT/TOP data are non-commercial: read from ``--data-dir`` at run time; the output holds
aggregate metrics only (no per-trial rows).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pipelines  # noqa: E402

pipelines.configure()  # a benchmark is an entry point: the CLI's runtime defaults

from clinical_sim.admet_link import load_admet  # noqa: E402
from clinical_sim.features import FeatureConfig  # noqa: E402
from clinical_sim.outcome_model import ModelConfig, TrialOutcomeModel  # noqa: E402

log = logging.getLogger("bench.trial_admet_ablation")


def _trials_bench():
    """bench/trials.py loaded by path (its data split, reader, metrics, targets and small bundle)."""
    spec = importlib.util.spec_from_file_location("bench_trials", Path(__file__).with_name("trials.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_trials"] = module
    spec.loader.exec_module(module)
    return module


class CachedPredictor:
    """The bundle's ``predict_smiles``, each SMILES predicted once for all seeds and variants."""

    def __init__(self, bundle) -> None:
        self.bundle = bundle
        self.rows: dict[str, pd.Series] = {}

    def predict_smiles(self, smiles: list[str]) -> pd.DataFrame:
        todo = [s for s in dict.fromkeys(smiles) if s not in self.rows]
        if todo:
            fresh = self.bundle.predict_smiles(todo)
            for s, (_, row) in zip(todo, fresh.iterrows(), strict=True):
                self.rows[s] = row
        return pd.DataFrame([self.rows[s] for s in smiles]).reset_index(drop=True)


def resolve_bundle(given: Path | None, cache: Path, bench) -> tuple[Path, str]:
    if given is not None:
        return given, "given"
    from admet.shipped import check_shipped, shipped_model_dir
    from pipelines.errors import InputError

    try:
        check_shipped(shipped_model_dir())
        return shipped_model_dir(), "shipped"
    except InputError as exc:
        log.warning("no usable shipped base model (%s); using the small bench bundle", exc)
    return bench.ensure_admet(None, cache), "small bench bundle (lgbm x1, 150 trees, <= 400 per endpoint)"


def _summary(values: list[float]) -> dict:
    arr = np.asarray(values, float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "per_seed": [round(float(v), 4) for v in arr]}


def run_phase(phase: str, bench, data_dir: Path, predictor, seeds: int, ensemble: int) -> dict:
    train_names, test_name = bench.SPLITS[phase]
    train = pd.concat([bench._read(data_dir, n) for n in train_names], ignore_index=True)
    test = bench._read(data_dir, test_name)
    y_train, y_test = train["label"].to_numpy().astype(int), test["label"].to_numpy().astype(int)
    out: dict = {"phase": phase, "n_train": len(train), "n_test": len(test),
                 "train_base_rate": float(y_train.mean()), "test_base_rate": float(y_test.mean())}
    for variant, use_admet in (("with_admet", True), ("without_admet", False)):
        oof_pr, oof_roc, test_pr, test_roc, n_feat, secs = [], [], [], [], 0, []
        for seed in range(seeds):
            t0 = time.perf_counter()
            cfg = ModelConfig(n_seeds=ensemble, seed=seed, features=FeatureConfig(use_admet=use_admet, seed=seed))
            model = TrialOutcomeModel(cfg, admet=predictor if use_admet else None)
            model.fit(train, y_train)
            m = bench.metrics(y_test, model.predict_proba(test))
            oof_pr.append(model.metrics["oof_pr_auc"])
            oof_roc.append(model.metrics["oof_roc_auc"])
            test_pr.append(m["pr_auc"])
            test_roc.append(m["roc_auc"])
            n_feat = len(model.featurizer.feature_names)
            secs.append(time.perf_counter() - t0)
            log.info("phase %s %s seed %d: train-CV PR-AUC %.3f | test PR-AUC %.3f ROC-AUC %.3f (%.0f s)", phase,
                     variant, seed, oof_pr[-1], test_pr[-1], test_roc[-1], secs[-1])
        out[variant] = {"train_cv_pr_auc": _summary(oof_pr), "train_cv_roc_auc": _summary(oof_roc),
                        "test_pr_auc": _summary(test_pr), "test_roc_auc": _summary(test_roc),
                        "n_features": n_feat, "seconds_per_seed": round(float(np.mean(secs)), 1)}
    with_cv = out["with_admet"]["train_cv_pr_auc"]["mean"]
    without_cv = out["without_admet"]["train_cv_pr_auc"]["mean"]
    chosen = "with_admet" if with_cv > without_cv else "without_admet"
    diff = (np.asarray(out["with_admet"]["test_pr_auc"]["per_seed"])
            - np.asarray(out["without_admet"]["test_pr_auc"]["per_seed"]))
    out["chosen_on_train_cv"] = chosen
    out["test_pr_auc_with_minus_without"] = _summary(list(diff))
    out["test_roc_auc_with_minus_without"] = _summary(list(
        np.asarray(out["with_admet"]["test_roc_auc"]["per_seed"])
        - np.asarray(out["without_admet"]["test_roc_auc"]["per_seed"])))
    tgt = bench.TARGETS[phase]
    chosen_m = {"pr_auc": out[chosen]["test_pr_auc"]["mean"], "roc_auc": out[chosen]["test_roc_auc"]["mean"]}
    out["chosen_meets_targets"] = all(chosen_m[k] >= v for k, v in tgt.items())
    return out


def table(rows: list[dict]) -> str:
    head = (f"{'phase':<6}{'variant':<15}{'train-CV PR-AUC':>17}{'test PR-AUC':>16}{'test ROC-AUC':>16}"
            f"{'features':>10}  chosen on train CV")
    lines = [head, "-" * len(head)]
    for r in rows:
        for v in ("with_admet", "without_admet"):
            m = r[v]

            def fmt(x: dict) -> str:
                return f"{x['mean']:.3f} +/- {x['std']:.3f}"

            lines.append(f"{r['phase']:<6}{v:<15}{fmt(m['train_cv_pr_auc']):>17}{fmt(m['test_pr_auc']):>16}"
                         f"{fmt(m['test_roc_auc']):>16}{m['n_features']:>10}  "
                         f"{'<- chosen' if r['chosen_on_train_cv'] == v else ''}")
        d = r["test_pr_auc_with_minus_without"]
        lines.append(f"{'':<6}{'with - without':<15}{'':>17}{d['mean']:>+9.3f} +/- {d['std']:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    bench = _trials_bench()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=bench.DEFAULT_DATA)
    ap.add_argument("--admet-model", type=Path, default=None)
    ap.add_argument("--admet-cache", type=Path, default=Path("/tmp/fedadmet_bench_admet_bundle"))
    ap.add_argument("--seeds", type=int, default=5, help="Independent repetitions (model seeds).")
    ap.add_argument("--ensemble", type=int, default=5, help="LightGBM seeds inside each model (the CLI default).")
    ap.add_argument("--phases", nargs="+", default=["I", "III"], choices=list(bench.SPLITS))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "trial_admet_ablation.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("lightgbm", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not args.data_dir.exists():
        print(f"error: HINT/TOP data not found at {args.data_dir}", file=sys.stderr)
        return 2
    bundle_dir, kind = resolve_bundle(args.admet_model, args.admet_cache, bench)
    bundle = load_admet(bundle_dir)
    predictor = CachedPredictor(bundle)
    t0 = time.perf_counter()
    rows = [run_phase(ph, bench, args.data_dir, predictor, args.seeds, args.ensemble) for ph in args.phases]
    text = table(rows)
    print(text)
    doc = {"benchmark": "trial-outcome ADMET ablation (HINT/TOP; phase I: train+valid -> test, phase III: "
                        "valid -> test); the variant is chosen on training-set CV only",
           "command": "python bench/trial_admet_ablation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "admet_model": str(bundle_dir), "admet_model_kind": kind,
           "admet_endpoints": [t.name for t in bundle.tasks], "seeds": args.seeds, "ensemble": args.ensemble,
           "targets": bench.TARGETS, "results": rows, "seconds": round(time.perf_counter() - t0, 1),
           "machine": {"cpu_count": os.cpu_count(), "load_average_start": os.getloadavg()[0]}, "table": text}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
