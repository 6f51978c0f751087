"""From a measurement table to a trained, calibrated model bundle.

Steps: validate + pivot the long table (``prepare_task_data``) -> featurize once -> split
(the table's ``split`` column wins, else scaffold / random) -> fit the feature scaler on the
training fold -> train the ensemble -> calibrate (conformal intervals, class probabilities,
applicability-domain threshold) on the calibration fold -> held-out metrics on the test fold ->
approved-drug context -> :class:`admet.bundle.ModelBundle`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from admet.approved import ApprovedReference, approved_features
from admet.bundle import ModelBundle, SplitManifest
from admet.config import ModelConfig
from admet.conformal import ConformalRegressor, ProbabilityCalibrator
from admet.domain import ApplicabilityDomain
from admet.ensemble import Ensemble
from admet.features import FeatureSet, current_featurizer_config
from admet.metrics import task_metrics
from admet.tasks import TaskData, task_data_from_long
from admet.versions import library_versions
from pipelines.errors import InputError

log = logging.getLogger(__name__)

SPLIT_METHODS = ("scaffold", "random")
#: 2: ``train_bundle`` tops up small calibration folds (``top_up_calibration``) and stores the split.
SPLIT_VERSION = 2


def prepare_task_data(long_df: pd.DataFrame, task_types: dict[str, str] | None = None,
                      endpoints: list[str] | None = None) -> TaskData:
    """Validate (standardize, reject with reasons) and pivot a long table into a TaskData.

    Catalog endpoints get the catalog's direction and value transform (``log10`` labels for VDss,
    half-life, clearances; a bundle trained on them predicts in the catalog's unit again).
    """
    from pipelines.catalog import endpoint_aliases, load_catalog
    from pipelines.validate import validate_long_table

    catalog = load_catalog()
    if endpoints:
        present = set(long_df["endpoint"].astype(str))
        aliases = endpoint_aliases(catalog)  # ``bbb`` selects BBB_Martins rows of the embedded table
        endpoints = [e if e in present else aliases.get(e, e) for e in endpoints]
        unknown = sorted(set(endpoints) - set(long_df["endpoint"].astype(str)))
        if unknown:
            raise InputError(f"endpoint(s) {unknown} not in the table; it has "
                             f"{sorted(long_df['endpoint'].astype(str).unique())}")
        long_df = long_df[long_df["endpoint"].isin(endpoints)]
    result = validate_long_table(long_df)
    if len(result.rejected):
        log.warning("%d of %d measurement rows rejected: %s", len(result.rejected), result.n_input,
                    result.reason_counts())
    if len(result.accepted) == 0:
        raise InputError("no usable measurement rows in the table (all rejected)")
    directions = dict(zip(catalog["endpoint"], catalog["better"].fillna("")))
    transforms = dict(zip(catalog["endpoint"], catalog["transform"]))
    types = dict(task_types or {})
    unknown_types = sorted(set(types) - set(result.accepted["endpoint"].astype(str)))
    if unknown_types:
        raise InputError(f"--task-types names endpoint(s) not in the data: {unknown_types}")
    return task_data_from_long(result.accepted, task_types=types, directions=directions, transforms=transforms)


def data_hash(td: TaskData) -> str:
    """sha256 over molecule keys, task names, labels and censoring (order-independent of rows)."""
    order = np.argsort(np.asarray(td.inchikeys, dtype=str), kind="stable")
    h = hashlib.sha256("|".join(td.task_names).encode())
    for i in order:
        h.update(td.inchikeys[i].encode())
        h.update(np.nan_to_num(td.Y[i], nan=-1e300).tobytes())
        h.update(td.censor[i].tobytes())
    return h.hexdigest()


def resolve_split(td: TaskData, method: str = "scaffold", seed: int = 0,
                  fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                  ignore_table_split: bool = False, min_calibration_labels: int = 0) -> tuple[np.ndarray, str]:
    """``train``/``valid``/``test`` per molecule and a description of how it was made.

    A ``split`` column in the input wins (unless ``ignore_table_split``). Without a ``valid``
    fold there, a scaffold-held-out 10% of the training molecules becomes the calibration fold.
    ``min_calibration_labels > 0`` then tops up every endpoint whose calibration (``valid``) fold
    has fewer labels (``top_up_calibration``).
    """
    split, how = _resolve_split(td, method, seed, fractions, ignore_table_split)
    if min_calibration_labels > 0:
        split, moved = top_up_calibration(td, split, min_calibration_labels, seed)
        if moved:
            how += (f"; calibration folds topped up to >= {min_calibration_labels} labels (at most "
                    f"{CALIBRATION_MAX_SHARE:.0%} of an endpoint's labels) with {moved} scaffold-held-out training molecules")
    return split, how


#: ``top_up_calibration`` never takes an endpoint's calibration fold above this share of its labels.
CALIBRATION_MAX_SHARE = 0.25
#: What ``train_bundle`` asks for (issue 11: conformal quantiles from >= 100 labels where the data allows).
CALIBRATION_MIN_LABELS = 100


def top_up_calibration(td: TaskData, split: np.ndarray, min_labels: int, seed: int) -> tuple[np.ndarray, int]:
    """Move scaffold groups of training molecules into ``valid`` until each endpoint has
    ``min(min_labels, CALIBRATION_MAX_SHARE * its labels)`` calibration labels (rarest endpoints first).

    Returns the new split and the number of molecules moved. Deterministic given ``seed``.
    """
    from pipelines.split import scaffold_split

    split = np.asarray(split, dtype=object).copy()
    labelled = ~np.isnan(td.Y)
    moved = 0
    for j in np.argsort(labelled.sum(0), kind="stable"):
        target = min(min_labels, int(CALIBRATION_MAX_SHARE * labelled[:, j].sum()))
        have = int((labelled[:, j] & (split == "valid")).sum())
        pool = np.flatnonzero(labelled[:, j] & (split == "train"))
        if have >= target or len(pool) < 2:
            continue
        share = min(1.0, (target - have) / len(pool))
        sub = scaffold_split([td.smiles[i] for i in pool], fractions=(1 - share, share, 0.0), seed=seed,
                             keys=[td.inchikeys[i] for i in pool])
        take = pool[np.asarray(sub) == "valid"]
        split[take] = "valid"
        moved += len(take)
    return split.astype(str), moved


def _resolve_split(td: TaskData, method: str, seed: int, fractions: tuple[float, float, float],
                   ignore_table_split: bool) -> tuple[np.ndarray, str]:
    given = np.asarray(td.split, dtype=object)
    if np.any(given != "") and not ignore_table_split:
        split = np.where(given == "", "train", given).astype(object)
        how = "from the table's split column"
        train = np.flatnonzero(split == "train")
        has_valid = (~np.isnan(td.Y[split == "valid"])).any(axis=0)
        if not has_valid.all() and len(train) >= 10:
            sub_td = td.subset(train)
            sub = stratified_split(sub_td, "scaffold", (0.9, 0.1, 0.0), seed)
            needs = ~has_valid[rarest_endpoint(sub_td)]
            split[train[(sub == "valid") & needs]] = "valid"
            missing = [t.name for t, h in zip(td.tasks, has_valid) if not h]
            how += f" (calibration fold for {missing}: scaffold-held-out 10% of their training molecules)"
        return split.astype(str), how
    if method not in SPLIT_METHODS:
        raise InputError(f"unknown split method {method!r}; choose from {SPLIT_METHODS}")
    split = stratified_split(td, method, fractions, seed)
    return split, f"{method} split {fractions} per endpoint, seed {seed}"


def rarest_endpoint(td: TaskData) -> np.ndarray:
    """Per molecule, the column of its labelled endpoint with the fewest labels overall."""
    labelled = ~np.isnan(td.Y)
    counts = labelled.sum(0)
    rank = np.where(labelled, counts[None, :], np.iinfo(np.int64).max)
    return rank.argmin(axis=1)


def stratified_split(td: TaskData, method: str, fractions: tuple[float, float, float],
                     seed: int) -> np.ndarray:
    """Split each endpoint's molecules separately so every endpoint gets every fold.

    A molecule belongs to the group of its rarest labelled endpoint (one group per molecule,
    so no molecule lands in two folds); each group is split by scaffold (or at random).
    """
    from pipelines.split import random_split, scaffold_split

    group = rarest_endpoint(td)
    split = np.empty(len(td), dtype=object)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        if method == "scaffold":
            sub = scaffold_split([td.smiles[i] for i in rows], fractions=fractions, seed=seed,
                                 keys=[td.inchikeys[i] for i in rows])
        else:
            sub = random_split([td.inchikeys[i] for i in rows], fractions=fractions, seed=seed)
        split[rows] = np.asarray(sub)
    return split.astype(str)


def featurize_task_data(td: TaskData, features: FeatureSet) -> tuple[TaskData, np.ndarray]:
    """Raw features for every molecule; molecules the featurizer cannot handle are dropped (logged)."""
    X_raw, valid = features.featurize(td.smiles)
    if not valid.all():
        log.warning("%d molecules could not be featurized and are left out", int((~valid).sum()))
    if not valid.any():
        raise InputError("no molecule could be featurized")
    return td.subset(valid), X_raw[valid]


@dataclass(slots=True)
class FoldResult:
    """An ensemble trained on one split, with calibration and held-out predictions."""

    ensemble: Ensemble
    features: FeatureSet
    conformal: dict[str, ConformalRegressor]
    calibrators: dict[str, ProbabilityCalibrator]
    metrics: dict
    domain: ApplicabilityDomain | None = None


@dataclass(slots=True)
class Calibration:
    """What ``calibrate`` fits on the calibration fold."""

    conformal: dict[str, ConformalRegressor]
    calibrators: dict[str, ProbabilityCalibrator]
    domain: ApplicabilityDomain
    report: dict
    """Per endpoint: calibration labels used, the chosen interval method and its selection table,
    AUROC / ECE before and after probability calibration (on the calibration fold)."""


def calibrate(ensemble: Ensemble, tasks, X_cal: np.ndarray, Y_cal: np.ndarray, censor_cal: np.ndarray,
              cal_smiles: list[str], train_smiles: list[str], cfg: ModelConfig) -> Calibration:
    """Domain, conformal intervals and probability calibrators from the calibration fold.

    ``X_cal`` is scaled. The one code path for ``train_bundle`` and ``fedadmet admet recalibrate``.
    """
    from admet.conformal import expected_calibration_error
    from admet.difficulty import predict_with_spread
    from admet.domain import morgan_on_bits

    domain = ApplicabilityDomain.fit(train_smiles, cal_smiles, cfg.ad_percentile, cfg.ad_max_reference, cfg.seed)
    mu, _, spread = predict_with_spread(ensemble, X_cal)
    nn, knn = domain.similarities_bits(morgan_on_bits(cal_smiles))
    conformal: dict[str, ConformalRegressor] = {}
    calibrators: dict[str, ProbabilityCalibrator] = {}
    report: dict = {}
    for j, t in enumerate(tasks):
        y = Y_cal[:, j]
        if t.is_classification:
            cal = ProbabilityCalibrator.fit(y, mu[:, j])
            calibrators[t.name] = cal
            ok = np.isfinite(y) & np.isfinite(mu[:, j])
            raw, new = mu[ok, j], cal.transform(mu[ok, j])
            report[t.name] = {"n_calibration": int(ok.sum()), "method": cal.method,
                              "auroc_raw": _auroc(y[ok], raw), "auroc_calibrated": _auroc(y[ok], new),
                              "ece_raw": expected_calibration_error(y[ok], raw),
                              "ece_calibrated": expected_calibration_error(y[ok], new)}
        else:
            exact = (censor_cal[:, j] == 0) & np.isfinite(y)
            conf = ConformalRegressor.fit(y[exact], mu[exact, j], spread[exact, j], cfg.coverage,
                                          nn_sim=nn[exact], knn_sim=knn[exact], seed=cfg.seed)
            conformal[t.name] = conf
            report[t.name] = {"n_calibration": conf.n_calibration, "method": conf.method,
                              "calibrated": conf.calibrated, "selection": conf.selection}
    few = sorted(k for k, v in report.items() if v["n_calibration"] < CALIBRATION_MIN_LABELS)
    if few:
        log.warning("fewer than %d calibration labels for %d endpoint(s): %s", CALIBRATION_MIN_LABELS, len(few), few)
    return Calibration(conformal, calibrators, domain, report)


def _auroc(y: np.ndarray, p: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None


def fit_fold(X_raw: np.ndarray, td: TaskData, split: np.ndarray, cfg: ModelConfig,
             features: FeatureSet, progress: Callable[[int, int], None] | None = None) -> FoldResult:
    """Scaler + ensemble on ``train``, calibration (``calibrate``) on ``valid``, metrics on ``test``."""
    train, cal, test = (split == "train"), (split == "valid"), (split == "test")
    if train.sum() < 5:
        raise InputError(f"too few training molecules ({int(train.sum())})")
    for j, t in enumerate(td.tasks):
        if np.isnan(td.Y[train, j]).all():
            raise InputError(f"endpoint {t.name!r} has no labels in the training fold")
    features.fit_matrix(X_raw[train])
    X = features.transform_matrix(X_raw)
    ensemble = Ensemble.fit(X[train], td.Y[train], td.censor[train], td.tasks, cfg, progress)
    smiles = np.asarray(td.smiles, dtype=object)
    calib = calibrate(ensemble, td.tasks, X[cal], td.Y[cal], td.censor[cal], list(smiles[cal]),
                      list(smiles[train]), cfg)
    metrics: dict = {"n_molecules": {"train": int(train.sum()), "valid": int(cal.sum()), "test": int(test.sum())},
                     "calibration": calib.report}
    if test.any():
        from admet.difficulty import calibrated_predict
        from admet.uncertainty_metrics import uncertainty_metrics

        pred = calibrated_predict(ensemble, td.tasks, calib.conformal, calib.calibrators, calib.domain,
                                  X[test], list(smiles[test]))
        metrics["test"] = task_metrics(td.Y[test], pred.mean, td.tasks, td.censor[test])
        unc = uncertainty_metrics(td.Y[test], td.censor[test], td.tasks, pred, cfg.coverage)
        metrics["coverage"] = {k: v for k, v in unc.items() if "test_coverage" in v}
        metrics["uncertainty"] = unc
    return FoldResult(ensemble, features, calib.conformal, calib.calibrators, metrics, calib.domain)


def approved_context(ensemble: Ensemble, features: FeatureSet, calibrators: dict, tasks) -> ApprovedReference:
    """Predict the approved drugs once; their per-endpoint distribution goes into the bundle."""
    mu, _ = ensemble.predict(features.transform_matrix(approved_features(features)))
    for j, t in enumerate(tasks):
        if t.is_classification and t.name in calibrators:
            mu[:, j] = calibrators[t.name].transform(mu[:, j])
    return ApprovedReference.from_predictions([t.name for t in tasks], mu)


def train_bundle(td: TaskData, cfg: ModelConfig, split_method: str = "scaffold",
                 progress: Callable[[int, int], None] | None = None, n_jobs: int | None = None,
                 cache_dir=None, with_context: bool = True, ignore_table_split: bool = False) -> ModelBundle:
    """Train and calibrate a complete :class:`ModelBundle` on ``td`` (see the module docstring)."""
    features = FeatureSet(spec=cfg.featurizer, clip=cfg.feature_clip, n_jobs=n_jobs, cache_dir=cache_dir)
    td, X_raw = featurize_task_data(td, features)
    split, how = resolve_split(td, split_method, cfg.seed, ignore_table_split=ignore_table_split,
                               min_calibration_labels=CALIBRATION_MIN_LABELS)
    log.info("split: %s -> %s", how, dict(zip(*np.unique(split, return_counts=True))))
    fold = fit_fold(X_raw, td, split, cfg, features, progress)
    train = split == "train"
    domain = fold.domain
    approved = approved_context(fold.ensemble, features, fold.calibrators, td.tasks) if with_context else None
    label_counts = {t.name: int((~np.isnan(td.Y[train, j])).sum()) for j, t in enumerate(td.tasks)}
    info = {"split_method": how, "split_counts": fold.metrics["n_molecules"],
            "train_label_counts": label_counts, "split_version": SPLIT_VERSION,
            "calibration_label_counts": {k: v["n_calibration"] for k, v in fold.metrics["calibration"].items()}}
    split_manifest = SplitManifest(list(td.inchikeys), split)
    return ModelBundle(
        tasks=td.tasks, config=cfg, features=features, ensemble=fold.ensemble,
        conformal=fold.conformal, calibrators=fold.calibrators, domain=domain, approved=approved,
        metrics=fold.metrics, data_hash=data_hash(td),
        featurizer_config=current_featurizer_config(cfg.featurizer),
        versions=library_versions(cfg.model), info=info, split_manifest=split_manifest)
