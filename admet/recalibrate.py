"""Re-derive the calibration of an existing bundle: conformal intervals, probability calibration, domain.

``fedadmet admet recalibrate BUNDLE`` runs ``recalibrate_bundle``: the bundle's training table is
read again (``--data``, else what ``train_run.json`` recorded: the embedded catalog or a file),
prepared with this installation's pipeline, featurized, and each molecule is given the fold it had
at training time:

* a bundle with ``split.npz`` (``admet.bundle.SplitManifest``, written by ``train_bundle`` since
  split version 2) is looked up by molecule key; molecules whose key is not in it (the data
  pipeline has changed since) are left out of every fold;
* an older bundle: ``--split-manifest FILE`` (the same format) if given, else the split is made
  again by ``admet.fit.resolve_split`` with the bundle's seed and split settings. That is exact only
  when the prepared data equal the training data, so it is refused unless the data hash matches
  the bundle's ``data_hash`` and the fold sizes match ``info.split_counts``.

Then ``admet.fit.calibrate`` (the code ``train_bundle`` runs) fits on the ``valid`` molecules with
the ``train`` molecules as the domain reference; the test-fold metrics are recomputed, the
approved-drug context is predicted again (calibrated probabilities move), the manifest is stored,
and the bundle is written in place or to ``out``. Folds are not changed, except with ``borrow_test``
(``borrow_test_molecules``: test molecules, never trained on, join the calibration fold of endpoints
that have too few calibration labels; the test metrics then cover the rest of the test fold).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from admet.bundle import ModelBundle, SplitManifest, load_bundle
from admet.tasks import TaskData
from pipelines.errors import InputError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TrainingRows:
    """A bundle's training table prepared again, with each molecule's training-time fold."""

    td: TaskData
    X_raw: np.ndarray
    split: np.ndarray
    """``train`` / ``valid`` / ``test``, or ``""`` for a molecule the bundle's split does not know."""
    exact: bool
    how: str
    source: str


def _long_table(bundle_dir: Path, bundle: ModelBundle, data: Path | None):
    from pipelines.catalog import load_embedded
    from pipelines.readers import read_long_table

    if data is not None:
        return read_long_table(data), str(data)
    run = bundle_dir / "train_run.json"
    recorded = json.loads(run.read_text()).get("data") if run.is_file() else None
    if recorded in (None, "embedded catalog"):
        return load_embedded(bundle.task_names), "embedded catalog"
    path = Path(recorded)
    if not path.is_file():
        raise InputError(f"the bundle was trained on {recorded}, which is not there any more; pass --data")
    return read_long_table(path), str(path)


def load_manifest(path: Path) -> tuple[SplitManifest, str | None]:
    """A ``SplitManifest`` file (``split.npz``) and the data hash stored with it, if any."""
    if not path.is_file():
        raise InputError(f"--split-manifest {path}: file not found")
    try:
        manifest = SplitManifest.load(path)
        with np.load(path) as z:
            digest = str(z["data_hash"]) if "data_hash" in z else None
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not a manifest
        raise InputError(f"--split-manifest {path}: not a split manifest ({type(exc).__name__}: {exc})") from None
    return manifest, digest


def training_rows(bundle_dir: str | Path, bundle: ModelBundle | None = None, data: Path | None = None,
                  manifest_path: Path | None = None, n_jobs: int | None = None,
                  cache_dir=None) -> TrainingRows:
    """The bundle's training table with the fold each molecule had at training time (module doc)."""
    from admet.features import FeatureSet
    from admet.fit import data_hash, featurize_task_data, prepare_task_data, resolve_split

    bundle_dir = Path(bundle_dir)
    bundle = bundle or load_bundle(bundle_dir)
    long_df, source = _long_table(bundle_dir, bundle, data)
    present = set(long_df["endpoint"].astype(str))
    missing = [t for t in bundle.task_names if t not in present]
    if missing:
        raise InputError(f"{source} has no rows for the bundle's endpoint(s) {missing}")
    td = prepare_task_data(long_df, task_types={t.name: t.task_type for t in bundle.tasks},
                           endpoints=bundle.task_names)
    td = td.select_tasks(bundle.task_names)
    features = FeatureSet(spec=bundle.features.spec, clip=bundle.features.clip, n_jobs=n_jobs, cache_dir=cache_dir)
    td, X_raw = featurize_task_data(td, features)
    same_data = data_hash(td) == bundle.data_hash
    manifest, how = bundle.split_manifest, "the bundle's split manifest"
    if manifest is None and manifest_path is not None:
        manifest, digest = load_manifest(manifest_path)
        if digest is not None and digest != bundle.data_hash:
            raise InputError(f"--split-manifest {manifest_path} was made for other training data "
                             f"(data hash {digest[:12]} vs the bundle's {bundle.data_hash[:12]})")
        how = f"split manifest {manifest_path}"
    if manifest is not None:
        split = manifest.fold_of(td.inchikeys)
        unknown = int((split == "").sum())
        exact = same_data and unknown == 0
        if unknown:
            log.warning("%d molecules are not in the split manifest (the data pipeline changed since "
                        "training?); they are left out", unknown)
        how += f" ({unknown} molecules not in it)" if unknown else ""
        return TrainingRows(td, X_raw, split.astype(str), exact, how, source)
    if not same_data:
        raise InputError(
            f"{source} prepared with this installation does not give the bundle's training data (data hash "
            "differs: data or pipeline changed since training), and the bundle has no split manifest, so its "
            "calibration rows cannot be found exactly; pass --split-manifest FILE made with the training-time code")
    run = bundle_dir / "train_run.json"
    settings = json.loads(run.read_text()) if run.is_file() else {}
    min_labels = 0
    if bundle.info.get("split_version", 1) >= 2:
        from admet.fit import CALIBRATION_MIN_LABELS

        min_labels = CALIBRATION_MIN_LABELS
    split, how = resolve_split(td, settings.get("split", "scaffold"), bundle.config.seed,
                               ignore_table_split=bool(settings.get("ignore_split_column", False)),
                               min_calibration_labels=min_labels)
    counts = {k: int((split == k).sum()) for k in ("train", "valid", "test")}
    stored = bundle.info.get("split_counts")
    if stored and {k: int(stored.get(k, 0)) for k in counts} != counts:
        raise InputError(f"the split made again has fold sizes {counts}, the bundle recorded {stored}: "
                         "not the training split; pass --split-manifest FILE")
    return TrainingRows(td, X_raw, np.asarray(split, dtype=str), True, "re-derived: " + how, source)


def borrow_test_molecules(td: TaskData, split: np.ndarray, max_share: float, min_labels: int,
                          seed: int) -> tuple[np.ndarray, dict[str, int]]:
    """Move scaffold groups of *test* molecules into ``valid`` for endpoints with fewer than
    ``min_labels`` calibration labels, at most ``max_share`` of each endpoint's test labels (rarest
    endpoints first). Returns the new split and the molecules moved per endpoint."""
    from pipelines.split import scaffold_split

    split = np.asarray(split, dtype=object).copy()
    labelled = ~np.isnan(td.Y)
    moved: dict[str, int] = {}
    for j in np.argsort(labelled.sum(0), kind="stable"):
        have = int((labelled[:, j] & (split == "valid")).sum())
        pool = np.flatnonzero(labelled[:, j] & (split == "test"))
        if have >= min_labels or len(pool) < 2:
            continue
        share = min(max_share, (min_labels - have) / len(pool))
        sub = scaffold_split([td.smiles[i] for i in pool], fractions=(1 - share, share, 0.0), seed=seed,
                             keys=[td.inchikeys[i] for i in pool])
        take = pool[np.asarray(sub) == "valid"]
        split[take] = "valid"
        if len(take):
            moved[td.tasks[j].name] = int(len(take))
    return split.astype(str), moved


def recalibrate_bundle(bundle_dir: str | Path, out: str | Path | None = None, data: Path | None = None,
                       manifest_path: Path | None = None, n_jobs: int | None = None, cache_dir=None,
                       with_context: bool = True, borrow_test: float = 0.0) -> dict:
    """Refit conformal intervals, probability calibrators and the domain of a bundle; returns a report.

    ``borrow_test > 0``: endpoints with fewer than ``CALIBRATION_MIN_LABELS`` calibration labels take
    scaffold groups of their *test* molecules (at most this share of them) into the calibration fold
    (``borrow_test_molecules``); the test metrics are then recomputed on the test molecules left, and the
    stored split records the move. Training is untouched (test molecules were never trained on).
    """
    from admet.difficulty import calibrated_predict
    from admet.fit import approved_context, calibrate
    from admet.metrics import task_metrics
    from admet.uncertainty_metrics import summarize, uncertainty_metrics

    t0 = time.perf_counter()
    bundle_dir = Path(bundle_dir)
    bundle = load_bundle(bundle_dir)
    rows = training_rows(bundle_dir, bundle, data, manifest_path, n_jobs, cache_dir)
    td, split = rows.td, rows.split
    borrowed: dict[str, int] = {}
    if borrow_test > 0:
        from admet.fit import CALIBRATION_MIN_LABELS

        if not borrow_test < 1:
            raise InputError(f"--borrow-test must be in [0, 1), got {borrow_test}")
        split, borrowed = borrow_test_molecules(td, split, borrow_test, CALIBRATION_MIN_LABELS, bundle.config.seed)
    train, cal, test = split == "train", split == "valid", split == "test"
    if cal.sum() == 0:
        raise InputError("the bundle's split has no calibration (valid) molecules in this data")
    X = bundle.features.transform_matrix(rows.X_raw)
    smiles = np.asarray(td.smiles, dtype=object)
    calib = calibrate(bundle.ensemble, bundle.tasks, X[cal], td.Y[cal], td.censor[cal], list(smiles[cal]),
                      list(smiles[train]), bundle.config)
    bundle.conformal, bundle.calibrators, bundle.domain = calib.conformal, calib.calibrators, calib.domain
    metrics = dict(bundle.metrics)
    metrics["calibration"] = calib.report
    if test.any():
        pred = calibrated_predict(bundle.ensemble, bundle.tasks, calib.conformal, calib.calibrators, calib.domain,
                                  X[test], list(smiles[test]))
        metrics["test"] = task_metrics(td.Y[test], pred.mean, bundle.tasks, td.censor[test])
        unc = uncertainty_metrics(td.Y[test], td.censor[test], bundle.tasks, pred, bundle.config.coverage)
        metrics["coverage"] = {k: v for k, v in unc.items() if "test_coverage" in v}
        metrics["uncertainty"] = unc
        metrics["uncertainty_summary"] = summarize(unc)
    bundle.metrics = metrics
    if with_context and bundle.approved is not None:
        bundle.approved = approved_context(bundle.ensemble, bundle.features, bundle.calibrators, bundle.tasks)
    known = split != ""
    bundle.split_manifest = SplitManifest([k for k, m in zip(td.inchikeys, known) if m], split[known])
    report = {"source": rows.source, "split": rows.how, "exact": rows.exact,
              "borrowed_from_test": {"max_share": borrow_test, "molecules": int((np.asarray(rows.split) != split).sum()),
                                     "per_endpoint": borrowed},
              "folds": {k: int((split == k).sum()) for k in ("train", "valid", "test", "")},
              "calibration_label_counts": {k: v["n_calibration"] for k, v in calib.report.items()},
              "seconds": None}
    bundle.info = {**bundle.info, "calibration_label_counts": report["calibration_label_counts"],
                   "recalibrated": {k: v for k, v in report.items() if k != "seconds"}}
    target = Path(out) if out is not None else bundle_dir
    if out is not None and target.resolve() != bundle_dir.resolve():
        target.mkdir(parents=True, exist_ok=True)
        for extra in ("train_run.json",):
            if (bundle_dir / extra).is_file():
                shutil.copy2(bundle_dir / extra, target / extra)
    bundle.save(target)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["out"] = str(target)
    if "uncertainty_summary" in metrics:
        report["summary"] = metrics["uncertainty_summary"]
    return report


def write_manifest(path: Path, keys, split, data_hash: str) -> Path:
    """A ``--split-manifest`` file: ``SplitManifest`` + the data hash it belongs to."""
    manifest = SplitManifest(keys, split)
    manifest.save(path)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez_compressed(path, data_hash=np.array(data_hash), **arrays)
    return path
