"""TDC ADMET Benchmark Group: fedadmet models and a LightGBM peer, TDC's protocol, one run.

    .venv/bin/python bench/tdc_group.py                                  # all 22 sets, seeds 1..5
    .venv/bin/python bench/tdc_group.py --sets caco2_wang,herg --seeds 1
    .venv/bin/python bench/tdc_group.py --models peer,lgbm:1,mtnn:1,blend:1 --seeds 1   # candidates

Protocol (``bench/tdc_protocol.py``): for each seed, TDC's scaffold split of ``train_val`` into
train/valid (0.875/0.125); every model is fitted and scored on the official ``test`` rows with the
leaderboard metric; mean +- std over seeds. VDss, half-life and clearances are trained on log10
of the label and predictions are returned to the raw unit (Spearman is unchanged by that; MAE
sets are trained and scored in their raw units).

Models (``--models``, comma separated):
  peer       LightGBM (2,000 trees max, learning rate 0.05, 31 leaves, subsample 0.8, colsample 0.5)
             on the raw features, early stopping (100 rounds) on the valid fold
  lgbm:K     fedadmet's ``lgbm`` family, K members (``admet.members``; ModelConfig defaults);
             trained on the train fold only (the valid fold is never seen by fedadmet's models)
  mtnn:K     fedadmet's multitask-net family, K members (its own early stopping inside train)
  blend:K    fedadmet's ``blend``: the mean over K members of (mtnn_i + lgbm_i)/2. A blend member
             is an mtnn and an lgbm member fitted with the same seed on the same rows, so the blend
             is computed from the cached mtnn and lgbm members, bit for bit what ``BlendMember``
             would predict (before the bundle's probability calibration, which is monotone and
             does not change AUROC/AUPRC rankings)
Both sides use the same features (``--featurizer``, default ``morgan_count+rdkit2d``: Morgan counts
r=2 2048 + RDKit 2D descriptors), computed once per molecule through the pipelines cache.
Each (set, seed, member) result is cached under ``.fedadmet-cache/bench/tdc/``: a rerun resumes.
Valid-fold scores are stored too (``bench/default_choice.py`` ranks candidates on them, never on
test). Leaderboard top-1 values (``bench/tdc_leaderboard.py``) are printed beside, not compared.
Writes ``bench/results/tdc_group.json`` (``--out``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import admet_common as ac  # noqa: E402
import tdc_protocol as tp  # noqa: E402

log = logging.getLogger("bench.tdc_group")
CACHE = ac.FEATURE_CACHE / "tdc"
FEATURE_CACHE = ac.FEATURE_CACHE / "fedadmet_featcache"
PEER_PARAMS = dict(n_estimators=2000, learning_rate=0.05, num_leaves=31, subsample=0.8, subsample_freq=1,
                   colsample_bytree=0.5, early_stopping_rounds=100)
MEMBER_FAMILIES = ("mtnn", "lgbm")


#: ``@name`` feature aliases for ``--models`` (MapLight's set: ECFP counts + Avalon counts + ErG + RDKit 2D;
#: ``fast``: Morgan counts + the 112 cheaper RDKit descriptors, about 3x cheaper to featurize)
FEATURE_ALIASES = {"maplight": "morgan_count+avalon_count+erg+rdkit2d", "fast": "morgan_count+rdkit2d_fast"}


@dataclass(frozen=True)
class ModelSpec:
    """``family[:K][@features]`` from ``--models``."""

    family: str
    k: int = 1
    features: str | None = None  # None: the run's --featurizer

    @property
    def label(self) -> str:
        base = "peer" if self.family == "peer" else f"{self.family}:{self.k}"
        return base + (f"@{self.features}" if self.features else "")


def parse_models(text: str) -> list[ModelSpec]:
    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        head, _, feats = item.partition("@")
        name, _, k = head.partition(":")
        if feats and feats not in FEATURE_ALIASES:
            raise ValueError(f"unknown feature alias @{feats}; known: {sorted(FEATURE_ALIASES)}")
        if name == "peer":
            out.append(ModelSpec("peer", 1, feats or None))
        elif name in ("mtnn", "lgbm", "blend"):
            out.append(ModelSpec(name, int(k or 5), feats or None))
        else:
            raise ValueError(f"unknown model {item!r}; use peer, lgbm:K, mtnn:K, blend:K (optionally "
                             f"@{', @'.join(FEATURE_ALIASES)})")
    return out


def _short_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


class SetData:
    """One TDC set: raw features once, TDC's split per seed, targets in training units."""

    def __init__(self, s: tp.TDCSet, data_dir: Path | None, spec: str, loader=None) -> None:
        from admet.features import FeatureSet

        self.set = s
        self.spec = spec
        tv, te = (loader or tp.load_set)(s, data_dir)
        self.smiles_tv, self.smiles_te = tv["smiles"].tolist(), te["smiles"].tolist()
        self.y_tv, self.y_te = tv["label"].to_numpy(float), te["label"].to_numpy(float)
        fs = FeatureSet(spec=spec, cache_dir=FEATURE_CACHE)
        t0 = time.perf_counter()
        X, valid = fs.featurize(self.smiles_tv + self.smiles_te)
        self.feature_seconds = time.perf_counter() - t0
        self.X_tv, self.X_te = X[: len(tv)], X[len(tv):]
        self.ok_tv, self.ok_te = valid[: len(tv)], valid[len(tv):]
        self.data_hash = _short_hash([s.key, len(tv), len(te), float(np.nansum(self.y_tv)),
                                      self.smiles_tv[:3], self.smiles_te[:3]])
        self._splits: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def split(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        if seed not in self._splits:
            tr, va = tp.tdc_scaffold_split(self.smiles_tv, seed)
            tr = tr[self.ok_tv[tr]]  # a molecule the featurizer rejects cannot be trained on
            self._splits[seed] = (tr, va)
        return self._splits[seed]

    def to_train_units(self, y: np.ndarray) -> np.ndarray:
        return np.log10(y) if self.set.log10 else y

    def from_train_units(self, p: np.ndarray) -> np.ndarray:
        return np.power(10.0, p) if self.set.log10 else p

    def fill(self, p: np.ndarray, ok: np.ndarray, fallback: float) -> np.ndarray:
        """Rows the featurizer rejected get the training mean/prevalence (scored, never dropped)."""
        p = np.asarray(p, float).copy()
        p[~ok | ~np.isfinite(p)] = fallback
        return p


def _cache_path(sd: SetData, tag: str, seed: int, member: int | None) -> Path:
    name = f"s{seed}" + (f"_m{member}" if member is not None else "") + ".json"
    return CACHE / sd.spec.replace("+", "_") / tag / f"{sd.set.key}-{sd.data_hash}" / name


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _save(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)


class NotCached(Exception):
    """``--cached-only`` and this (set, seed, member) has not been computed."""


def run_peer(sd: SetData, seed: int, cached_only: bool = False) -> dict:
    import lightgbm as lgb

    tag = "lgbm_peer-" + _short_hash(PEER_PARAMS)
    path = _cache_path(sd, tag, seed, None)
    if (hit := _load(path)) is not None:
        return hit
    if cached_only:
        raise NotCached(path)
    tr, va = sd.split(seed)
    y_tr, y_va = sd.to_train_units(sd.y_tv[tr]), sd.to_train_units(sd.y_tv[va])
    params = {k: v for k, v in PEER_PARAMS.items() if k != "early_stopping_rounds"}
    common = dict(random_state=seed, n_jobs=2, verbose=-1, **params)
    est = lgb.LGBMClassifier(**common) if sd.set.task == "classification" else lgb.LGBMRegressor(**common)
    t0 = time.perf_counter()
    est.fit(sd.X_tv[tr], y_tr, eval_set=[(sd.X_tv[va], y_va)],
            callbacks=[lgb.early_stopping(PEER_PARAMS["early_stopping_rounds"], verbose=False)])
    seconds = time.perf_counter() - t0

    def pred(X):
        return est.predict_proba(X)[:, 1] if sd.set.task == "classification" else sd.from_train_units(est.predict(X))

    doc = {"valid": pred(sd.X_tv[va]).tolist(), "test": pred(sd.X_te).tolist(), "seconds": seconds,
           "best_iteration": int(est.best_iteration_ or PEER_PARAMS["n_estimators"])}
    _save(path, doc)
    return doc


def _member_config(family: str, seed: int):
    from admet.config import ModelConfig

    return ModelConfig.build(model=family, ensemble=1, seed=seed)


def run_member(sd: SetData, family: str, seed: int, member: int, cached_only: bool = False) -> dict:
    """One fedadmet member (``admet.members.fit_member``) trained on the train fold only."""
    from admet.features import FeatureSet
    from admet.members import fit_member
    from admet.tasks import TaskSpec

    member_seed = seed * 100 + member
    cfg = _member_config(family, member_seed)
    tag = f"{family}-" + _short_hash(cfg.to_json_dict() | {"seed": None})
    path = _cache_path(sd, tag, seed, member)
    if (hit := _load(path)) is not None:
        return hit
    if cached_only:
        raise NotCached(path)
    tr, va = sd.split(seed)
    fs = FeatureSet(spec=sd.spec, clip=cfg.feature_clip)
    fs.fit_matrix(sd.X_tv[tr])
    task = TaskSpec(sd.set.key, sd.set.task)
    Y = sd.to_train_units(sd.y_tv[tr])[:, None]
    t0 = time.perf_counter()
    m = fit_member(family, fs.transform_matrix(sd.X_tv[tr]), Y, np.zeros(Y.shape, np.int8), [task], cfg,
                   member_seed)
    seconds = time.perf_counter() - t0
    fallback = float(np.mean(Y))

    def pred(X, ok):
        p = sd.fill(m.predict(fs.transform_matrix(X))[:, 0], ok, fallback)
        return p if sd.set.task == "classification" else sd.from_train_units(p)

    doc = {"valid": pred(sd.X_tv[va], sd.ok_tv[va]).tolist(), "test": pred(sd.X_te, sd.ok_te).tolist(),
           "seconds": seconds}
    _save(path, doc)
    return doc


def run_model(sd: SetData, name: str, k: int, seed: int, cached_only: bool = False) -> dict:
    """Valid and test predictions of one model (peer, or an ensemble of K cached members)."""
    if name == "peer":
        return run_peer(sd, seed, cached_only)
    fams = MEMBER_FAMILIES if name == "blend" else (name,)
    parts = {f: [run_member(sd, f, seed, i, cached_only) for i in range(k)] for f in fams}
    out: dict = {"seconds": sum(d["seconds"] for ds in parts.values() for d in ds)}
    for fold in ("valid", "test"):
        # members are averaged in training units (log10 where used), as Ensemble and BlendMember do
        unit = np.log10 if sd.set.log10 else np.asarray
        means = {f: np.mean([unit(np.asarray(d[fold], float)) for d in ds], axis=0) for f, ds in parts.items()}
        p = np.mean(list(means.values()), axis=0)
        out[fold] = (np.power(10.0, p) if sd.set.log10 else p).tolist()
    return out


def evaluate(sets: list[tp.TDCSet], models: list[ModelSpec], seeds: list[int], data_dir: Path | None,
             spec: str, cached_only: bool = False, on_set=None, loader=None) -> dict:
    """Per set and model: valid/test scores per seed; ``on_set(results)`` after each set (partial JSON)."""
    results: dict = {}
    for s in sets:
        t0 = time.perf_counter()
        data: dict[str, SetData] = {}
        for m in models:
            feats = FEATURE_ALIASES[m.features] if m.features else spec
            if feats not in data:
                data[feats] = SetData(s, data_dir, feats, loader)
        sd0 = data[spec] if spec in data else next(iter(data.values()))
        entry = {"tdc_name": s.tdc_name, "metric": s.metric, "task": s.task, "log10_training": s.log10,
                 "n_train_val": len(sd0.y_tv), "n_test": len(sd0.y_te),
                 "feature_seconds": {f: d.feature_seconds for f, d in data.items()},
                 "featurizer_rejected": {f: int((~d.ok_tv).sum() + (~d.ok_te).sum()) for f, d in data.items()},
                 "models": {}}
        for m in models:
            sd = data[FEATURE_ALIASES[m.features] if m.features else spec]
            per = {"valid": {}, "test": {}, "seconds": {}, "n_valid": {}}
            for seed in seeds:
                _, va = sd.split(seed)
                try:
                    pred = run_model(sd, m.family, m.k, seed, cached_only)
                except NotCached:
                    continue
                per["valid"][seed] = tp.score(s.metric, sd.y_tv[va], pred["valid"])
                per["test"][seed] = tp.score(s.metric, sd.y_te, pred["test"])
                per["seconds"][seed] = pred["seconds"]
                per["n_valid"][seed] = int(len(va))
                log.info("%s seed %d %s: valid %s %.3f, %.1fs", s.key, seed, m.label, s.metric, per["valid"][seed],
                         pred["seconds"])
            if not per["test"]:
                continue
            per["seeds_done"] = sorted(per["test"])
            per["test_mean"], per["test_std"] = tp.leaderboard_summary(list(per["test"].values()))
            per["valid_mean"] = float(np.mean(list(per["valid"].values())))
            entry["models"][m.label] = per
        entry["wall_seconds"] = time.perf_counter() - t0
        results[s.key] = entry
        if on_set is not None:
            on_set(results)
    return results


def render(results: dict, seeds: list[int], labels: list[str] | None = None) -> str:
    from tdc_leaderboard import LEADERBOARD_TOP1

    labels = labels or list(dict.fromkeys(m for e in results.values() for m in e["models"]))
    header = ["set", "metric"] + [f"{m} test" for m in labels] + ["leaderboard top-1 (published, June 2024 snapshot)"]
    rows = []
    for key, e in results.items():
        row = [e["tdc_name"], e["metric"] + (" (up)" if e["metric"] != "mae" else " (down)")]
        row += [f"{e['models'][m]['test_mean']:.3f} +/- {e['models'][m]['test_std']:.3f}"
                + (f" ({len(e['models'][m]['seeds_done'])} seeds)" if len(e['models'][m]['seeds_done']) != len(seeds) else "")
                if m in e["models"] else "not run" for m in labels]
        top = LEADERBOARD_TOP1.get(key)
        row.append(f"{top['value']:.3f} +/- {top['std']:.3f} ({top['method']})" if top else "not verified")
        rows.append(row)
    return (f"TDC ADMET group, official test sets, mean +/- std over seeds {seeds}\n\n"
            + ac.markdown_table(header, rows))


def verdict(results: dict, ours: str, peer: str = "peer") -> dict:
    """``ours`` vs the in-run peer on the seeds both finished: the issue's targets (>= peer on >= 18
    of 22 sets, never worse by more than the peer's std over seeds). Published leaderboard numbers
    are counted separately for context and play no part in ``meets_target``."""
    from tdc_leaderboard import LEADERBOARD_TOP1

    per_set, ahead_of_top1 = {}, []
    for key, e in results.items():
        if ours not in e["models"] or peer not in e["models"]:
            continue
        common = sorted(set(e["models"][ours]["test"]) & set(e["models"][peer]["test"]))
        if not common:
            continue
        a, _ = tp.leaderboard_summary([e["models"][ours]["test"][sd] for sd in common])
        b, b_std = tp.leaderboard_summary([e["models"][peer]["test"][sd] for sd in common])
        sign = 1.0 if e["metric"] != "mae" else -1.0
        delta = sign * (a - b)  # > 0: ours better
        per_set[key] = {"seeds": common, "ours": a, "peer": b, "peer_std": b_std, "delta_better_positive": delta,
                        "at_or_above_peer": delta >= 0, "within_peer_std": delta >= -b_std}
        top = LEADERBOARD_TOP1.get(key)
        if top and len(common) == 5 and sign * (a - top["value"]) >= 0:
            ahead_of_top1.append(key)
    n = len(per_set)
    wins = sum(v["at_or_above_peer"] for v in per_set.values())
    within = sum(v["within_peer_std"] for v in per_set.values())
    return {"ours": ours, "peer": peer, "sets_compared": n, "at_or_above_peer": wins, "within_peer_std": within,
            "meets_target": n == len(tp.TDC_SETS) and wins >= 18 and within == n, "per_set": per_set,
            "context_at_or_above_published_top1_5_seeds": ahead_of_top1}


def ranks_in_run(results: dict, labels: list[str]) -> dict:
    """Per set, each model's rank among ``labels`` by 5-seed test mean (1 = best, ties share the mean
    rank), over the sets where every model has all 5 seeds; reported, never used to choose anything."""
    import pandas as pd

    rows = {}
    for key, e in results.items():
        if not all(m in e["models"] and len(e["models"][m]["seeds_done"]) == 5 for m in labels):
            continue
        row = pd.Series({m: e["models"][m]["test_mean"] for m in labels})
        rows[key] = row.rank(ascending=e["metric"] == "mae", method="average")
    if not rows:
        return {"sets": 0, "mean_rank": {}, "per_set": {}}
    table = pd.DataFrame(rows).T
    return {"sets": len(table), "mean_rank": table.mean().round(3).to_dict(), "per_set": table.to_dict("index")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default=None, help="comma-separated sets (default: all 22)")
    p.add_argument("--seeds", default="1,2,3,4,5")
    p.add_argument("--models", default="peer,blend:2", help="peer, lgbm:K, mtnn:K, blend:K")
    p.add_argument("--featurizer", default="morgan_count+rdkit2d")
    p.add_argument("--data", type=Path, default=None,
                   help="folder with <set>/data.csv (default: datasets/tdc_admet if vendored, else ../shared)")
    p.add_argument("--out", default="tdc_group.json")
    p.add_argument("--cached-only", action="store_true",
                   help="report only what the cache holds (no training); missing seeds are listed as such")
    args = p.parse_args(argv)
    import pipelines

    pipelines.configure()  # OpenMP threads wait passively: spinning LightGBM/torch threads starve a busy 2-core box
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("admet").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*'eval_set' is deprecated.*")
    try:
        sets, models = tp.resolve_sets(args.sets), parse_models(args.models)
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    from tdc_leaderboard import LEADERBOARD_SOURCE, LEADERBOARD_TOP1

    def write(results: dict) -> Path:
        table = render(results, seeds, [m.label for m in models])
        payload = {"benchmark": "tdc_admet_group", "protocol": tp.__doc__, "seeds": seeds,
                   "models": [m.label for m in models], "featurizer": args.featurizer,
                   "feature_aliases": FEATURE_ALIASES, "peer_params": PEER_PARAMS,
                   "data_dir": str(args.data or tp.default_data_dir()), "complete": len(results) == len(sets),
                   "sets_requested": [s.key for s in sets], "results": results,
                   "leaderboard_top1_published": LEADERBOARD_TOP1, "leaderboard_source": LEADERBOARD_SOURCE,
                   "leaderboard_note": "published numbers for context only; never part of any pass/fail logic",
                   "verdicts": {m.label: verdict(results, m.label) for m in models if m.family != "peer"},
                   "ranks_in_run_test": ranks_in_run(results, [m.label for m in models]),
                   "total_seconds": time.perf_counter() - t0, "machine": ac.machine_info(), "markdown": table}
        return ac.write_json(args.out, payload)

    results = evaluate(sets, models, seeds, args.data, args.featurizer, args.cached_only, on_set=write)
    path = write(results)
    print(render(results, seeds, [m.label for m in models]))
    for m in models:
        if m.family != "peer":
            v = verdict(results, m.label)
            print(f"\n{m.label} vs peer (same seeds): at or above on {v['at_or_above_peer']}/{v['sets_compared']} sets, "
                  f"within the peer's std on {v['within_peer_std']}/{v['sets_compared']}; target "
                  f"{'met' if v['meets_target'] else 'not met'}. Context only: at or above the published top-1 on "
                  f"{len(v['context_at_or_above_published_top1_5_seeds'])} sets (5-seed means).")
    ranks = ranks_in_run(results, [m.label for m in models])
    print(f"\nMean rank among this run's models on test, {ranks['sets']} sets with 5 seeds each (reported, never "
          f"used to choose): " + ", ".join(f"{m} {r:.2f}" for m, r in ranks["mean_rank"].items()))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
