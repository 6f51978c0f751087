"""Trial-outcome benchmark on the HINT/TOP data (phase I and phase III), with an ADMET ablation.

    .venv/bin/python bench/trials.py [--admet-model DIR] [--seeds 5] [--data-dir ../shared/data/hint_trials]

Phase I: train on train+valid, test on test. Phase III: train on valid, test on test (the larger
phase II/III training files are not available here). For each phase the same model is trained twice,
side by side: with the ADMET-derived features and without them (the ablation). Reports PR-AUC,
ROC-AUC and F1 (threshold 0.5 on the calibrated probability), a plain-LightGBM reference (default
parameters on the same feature matrix, one seed, no text model), and writes bench/results/trials.json.

The HINT/TOP benchmark is licensed for non-commercial use: it is read from its shared folder at run time
and never copied into the project. Without --admet-model a small ADMET bundle (LightGBM, 1 member,
150 trees, all embedded endpoints, at most 400 measurements each) is trained once with the project's
admet API and cached under --admet-cache.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pipelines  # noqa: E402

pipelines.configure()  # a benchmark is an entry point: the CLI's runtime defaults (offline, quiet, passive OpenMP)

from clinical_sim.admet_link import load_admet  # noqa: E402
from clinical_sim.features import FeatureConfig  # noqa: E402
from clinical_sim.outcome_model import ModelConfig, TrialOutcomeModel  # noqa: E402
from clinical_sim.trial_table import read_trials  # noqa: E402

log = logging.getLogger("bench.trials")
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "hint_trials"
SPLITS = {"I": (["phase_I_train", "phase_I_valid"], "phase_I_test"), "III": (["phase_III_valid"], "phase_III_test")}
ADMET_PER_ENDPOINT = 400
TARGETS = {"I": {"pr_auc": 0.70, "roc_auc": 0.66}, "III": {"pr_auc": 0.85}}
REFERENCE = {"HINT (published) F1": {"I": 0.665, "III": 0.847},
             "plain LightGBM (measured by the issue) PR-AUC": {"I": 0.675, "III": 0.835},
             "plain LightGBM (measured by the issue) ROC-AUC": {"I": 0.625}}


def _read(data_dir: Path, name: str) -> pd.DataFrame:
    path = data_dir / f"{name}.csv.gz"
    if not path.exists():
        path = data_dir / f"{name}.csv"
    table = read_trials(path, require_label=True)
    if len(table.problems):
        log.warning("%s: %d unusable rows (%s)", name, len(table.problems),
                    table.problems["problem"].value_counts().to_dict())
    return table.usable.reset_index(drop=True)


def metrics(y: np.ndarray, p: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
    return {"pr_auc": float(average_precision_score(y, p)), "roc_auc": float(roc_auc_score(y, p)),
            "f1": float(f1_score(y, p >= 0.5))}


def ensure_admet(bundle_dir: Path | None, cache: Path) -> Path:
    """The given ADMET bundle, or a small one trained once with the admet API and cached."""
    if bundle_dir is not None:
        return bundle_dir
    if (cache / "bundle.json").exists():
        return cache
    from admet.config import ModelConfig as AdmetConfig
    from admet.fit import prepare_task_data, train_bundle
    from pipelines.catalog import load_embedded

    long = load_embedded()
    # at most ADMET_PER_ENDPOINT measurements per endpoint keeps featurisation affordable on 2 shared cores
    long = long.sample(frac=1.0, random_state=0).groupby("endpoint").head(ADMET_PER_ENDPOINT)
    log.info("training a small ADMET bundle (lgbm x1, 150 trees, %d measurements over %d endpoints) into %s",
             len(long), long["endpoint"].nunique(), cache)
    td = prepare_task_data(long)
    bundle = train_bundle(td, AdmetConfig(model="lgbm", ensemble=1, lgbm_n_estimators=150), n_jobs=1,
                          with_context=False)
    bundle.save(cache)
    return cache


def plain_lightgbm(model: TrialOutcomeModel, train: pd.DataFrame, test: pd.DataFrame) -> dict:
    """Reference: default LightGBM, one seed, on the same feature matrix (no text model, no calibration)."""
    import lightgbm as lgb
    X = model.featurizer.transform(train)
    Xt = model.featurizer.transform(test)
    clf = lgb.LGBMClassifier(random_state=0, n_jobs=1, verbose=-1).fit(X, train["label"].astype(int))
    return metrics(test["label"].to_numpy().astype(int), clf.predict_proba(Xt)[:, 1])


def run_phase(phase: str, data_dir: Path, admet, seeds: int,
              variants: tuple[str, ...] = ("with_admet", "without_admet")) -> dict:
    train_names, test_name = SPLITS[phase]
    train = pd.concat([_read(data_dir, n) for n in train_names], ignore_index=True)
    test = _read(data_dir, test_name)
    y_test = test["label"].to_numpy().astype(int)
    row = {"phase": phase, "n_train": len(train), "n_test": len(test), "test_base_rate": float(y_test.mean())}
    for variant, use_admet in (("with_admet", True), ("without_admet", False)):
        if (use_admet and admet is None) or variant not in variants:
            continue
        t0 = time.perf_counter()
        cfg = ModelConfig(n_seeds=seeds, features=FeatureConfig(use_admet=use_admet))
        model = TrialOutcomeModel(cfg, admet=admet if use_admet else None)
        model.fit(train, train["label"].to_numpy())
        p = model.predict_proba(test)
        row[variant] = {**metrics(y_test, p), "seconds": round(time.perf_counter() - t0, 1),
                        "n_features": len(model.featurizer.feature_names), "oof": model.metrics}
        if not use_admet:
            row["plain_lightgbm_same_features"] = plain_lightgbm(model, train, test)
        log.info("phase %s %s: %s", phase, variant, {k: round(v, 3) for k, v in row[variant].items()
                                                     if isinstance(v, float)})
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--admet-model", type=Path, default=None)
    ap.add_argument("--admet-cache", type=Path, default=Path("/tmp/fedadmet_bench_admet_bundle"))
    ap.add_argument("--no-admet", action="store_true", help="Skip the ADMET variant (no bundle needed).")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--variants", nargs="+", default=["with_admet", "without_admet"],
                    choices=["with_admet", "without_admet"])
    ap.add_argument("--phases", nargs="+", default=["I", "III"], choices=list(SPLITS))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "trials.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("lightgbm", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not args.data_dir.exists():
        print(f"HINT/TOP data not found at {args.data_dir}", file=sys.stderr)
        return 2
    admet, admet_dir = None, None
    if not args.no_admet:
        admet_dir = ensure_admet(args.admet_model, args.admet_cache)
        admet = load_admet(admet_dir)
    t0 = time.perf_counter()
    rows = [run_phase(ph, args.data_dir, admet, args.seeds, tuple(args.variants)) for ph in args.phases]

    header = f"{'phase':<6}{'variant':<32}{'PR-AUC':>8}{'ROC-AUC':>9}{'F1':>7}  target"
    lines = [header, "-" * len(header)]
    for r in rows:
        tgt = TARGETS[r["phase"]]
        tgt_txt = ", ".join(f"{k} >= {v}" for k, v in tgt.items())
        for variant in ("with_admet", "without_admet", "plain_lightgbm_same_features"):
            if variant in r:
                m = r[variant]
                ok = all(m[k] >= v for k, v in tgt.items())
                mark = ("met" if ok else "missed") if variant != "plain_lightgbm_same_features" else ""
                lines.append(f"{r['phase']:<6}{variant:<32}{m['pr_auc']:>8.3f}{m['roc_auc']:>9.3f}{m['f1']:>7.3f}"
                             f"  {tgt_txt} {mark}")
    table = "\n".join(lines)
    print(table)
    doc = {"benchmark": "HINT/TOP trial outcome (phase I: train+valid -> test; phase III: valid -> test)",
           "command": "python bench/trials.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "admet_model": str(admet_dir) if admet_dir else None, "seeds": args.seeds, "results": rows,
           "targets": TARGETS, "reference": REFERENCE, "seconds": round(time.perf_counter() - t0, 1),
           "machine": {"python": platform.python_version(), "cpu_count": __import__("os").cpu_count(),
                       "note": "2 shared cores, other jobs running: timings are noisy"},
           "table": table}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
