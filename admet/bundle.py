"""The model bundle: one folder holding everything needed to predict, and its checks on load.

Layout::

    bundle.json          format, tasks, model config, featurizer spec + config, data hash,
                         library versions, conformal quantiles, probability calibrators,
                         metrics summary, and a sha256 per file (written last)
    feature_scaler.npz   the training-data feature scaler
    ensemble/member_NN/  the k ensemble members (family-specific files)
    domain.npz           applicability-domain reference fingerprints, similarity threshold,
                         descriptor box (``admet.domain``)
    split.npz            the fold of every training-table molecule (``SplitManifest``; bundles
                         written before it existed have none)
    approved.npz         approved-drug prediction distributions per endpoint
    metrics.json         held-out metrics
    model_card.md        the human-readable card
    config.json          the resolved ModelConfig

``load_bundle`` raises :class:`InputError` for a wrong path, a missing/corrupt/truncated file
(checksum), a featurizer config other than this installation's, or a library major-version
mismatch.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from admet.approved import ApprovedReference
from admet.checksums import folder_checksums, sha256_file
from admet.config import ModelConfig
from admet.conformal import ConformalRegressor, ProbabilityCalibrator
from admet.domain import ApplicabilityDomain, DomainInputs
from admet.ensemble import Ensemble
from admet.features import FeatureScaler, FeatureSet, comparable_config, current_featurizer_config
from admet.tasks import TaskSpec
from admet.transforms import inverse, inverse_std
from admet.versions import check_versions, library_versions
from pipelines.errors import InputError

log = logging.getLogger(__name__)

BUNDLE_FORMAT = 1
SUFFIXES = ("", "_std", "_lower", "_upper", "_in_domain", "_pct_approved")
#: Molecule-level applicability-domain columns (``admet.domain``): status, nearest-neighbour
#: similarity to the training set, and the ``;``-joined reasons a molecule is outside.
DOMAIN_COLUMNS = ("ad_status", "ad_similarity", "ad_flags")
DOMAIN_TEXT_COLUMNS = ("ad_status", "ad_flags")
FEATURIZATION_FAILED = "featurization_failed"


def output_columns(task_names: Sequence[str]) -> list[str]:
    """The domain columns, then the per-endpoint prediction columns, in their stable order."""
    return list(DOMAIN_COLUMNS) + [f"{name}{suffix}" for name in task_names for suffix in SUFFIXES]


class SplitManifest:
    """Which fold (``train`` / ``valid`` / ``test``) each training-table molecule (by key) was in.

    Stored as ``split.npz`` so ``fedadmet admet recalibrate`` finds the calibration rows exactly,
    even when the data pipeline has changed since training (molecules whose key is not in the
    manifest are left out of recalibration).
    """

    FOLDS = ("train", "valid", "test")

    def __init__(self, keys: Sequence[str], split: Sequence[str]) -> None:
        if len(keys) != len(split):
            raise ValueError(f"{len(keys)} keys for {len(split)} split labels")
        self.keys = [str(k) for k in keys]
        self.split = np.asarray([str(v) for v in split], dtype=object)

    def fold_of(self, keys: Sequence[str]) -> np.ndarray:
        """The stored fold per key; ``""`` for a key not in the manifest."""
        lookup = dict(zip(self.keys, self.split))
        return np.array([lookup.get(str(k), "") for k in keys], dtype=object)

    def save(self, path: Path) -> None:
        codes = np.array([self.FOLDS.index(v) for v in self.split], dtype=np.uint8)
        np.savez_compressed(path, keys=np.array(self.keys, dtype=str), fold=codes)

    @classmethod
    def load(cls, path: Path) -> "SplitManifest":
        with np.load(path) as z:
            return cls([str(k) for k in z["keys"]], [cls.FOLDS[int(c)] for c in z["fold"]])


class ModelBundle:
    """A trained ADMET model with its scalers, uncertainty calibration and applicability domain."""

    def __init__(self, tasks: Sequence[TaskSpec], config: ModelConfig, features: FeatureSet,
                 ensemble: Ensemble, conformal: dict[str, ConformalRegressor],
                 calibrators: dict[str, ProbabilityCalibrator], domain: ApplicabilityDomain | None,
                 approved: ApprovedReference | None, metrics: dict | None = None,
                 data_hash: str = "", featurizer_config: dict | None = None,
                 versions: dict | None = None, info: dict | None = None,
                 split_manifest: SplitManifest | None = None) -> None:
        self.tasks = list(tasks)
        self.config = config
        self.features = features
        self.ensemble = ensemble
        self.conformal = conformal
        self.calibrators = calibrators
        self.domain = domain
        self.approved = approved
        self.metrics = metrics or {}
        self.data_hash = data_hash
        self.featurizer_config = featurizer_config or {}
        self.versions = versions or library_versions(config.model)
        self.info = info or {}
        self.split_manifest = split_manifest

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def featurizer_spec(self) -> str:
        return self.features.spec

    # -- prediction ------------------------------------------------------------------------
    def predict_features(self, X_raw: np.ndarray, smiles: Sequence[str],
                         valid: np.ndarray | None = None,
                         domain_bits: Sequence[list[int] | None] | DomainInputs | None = None) -> pd.DataFrame:
        """Per-endpoint prediction columns for raw (unscaled) feature rows aligned with ``smiles``.

        Values are in each task's ``unit``: a task trained on ``log10`` labels is transformed back (mean ->
        median on the unit's scale, bounds exactly, std by the delta method; ``admet.transforms``).

        ``ad_status`` is ``inside`` / ``outside`` / ``unknown`` (no domain data in the bundle), with the
        reasons in ``ad_flags`` (``admet.domain``); every ``E_in_domain`` is ``ad_status == inside``
        (NA when unknown). Rows with ``valid == False`` get NaN / NA in every column. ``domain_bits``
        (``admet.domain.domain_inputs`` of the rows, or only their Morgan on-bits
        per row, ``admet.domain.morgan_on_bits``) saves recomputing the domain fingerprints.
        """
        n = len(smiles)
        valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
        if len(X_raw) != n or len(valid) != n:
            raise ValueError(f"{len(X_raw)} feature rows, {len(valid)} flags for {n} SMILES")
        T = len(self.tasks)
        mean, std, lower, upper = (np.full((n, T), np.nan) for _ in range(4))
        status, flags = np.full(n, None, dtype=object), np.full(n, None, dtype=object)
        sim = np.full(n, np.nan)
        rows = np.flatnonzero(valid)
        if len(rows):
            if domain_bits is None:
                sub = None
            elif isinstance(domain_bits, DomainInputs):
                sub = domain_bits.take(rows)
            else:
                sub = [domain_bits[i] for i in rows]
            pred = self.predict_model_space(np.asarray(X_raw)[rows], [smiles[i] for i in rows], sub)
            mean[rows], std[rows], lower[rows], upper[rows] = pred.mean, pred.std, pred.lower, pred.upper
            status[rows], flags[rows], sim[rows] = pred.domain.status, pred.domain.flags, pred.domain.similarity
        cols: dict[str, object] = {"ad_status": pd.Series(status, dtype=object),
                                   "ad_similarity": sim, "ad_flags": pd.Series(flags, dtype=object)}
        in_domain = pd.array([None if s not in ("inside", "outside") else s == "inside" for s in status],
                             dtype="boolean")
        for j, task in enumerate(self.tasks):
            mu, sd, lo, hi = mean[:, j], std[:, j], lower[:, j], upper[:, j]
            pct = self.approved.percentile(task.name, mu) if self.approved else np.full(n, np.nan)
            if task.transform != "none":  # model scale -> the task's unit (admet.transforms)
                mu, sd, lo, hi = (inverse(mu, task.transform), inverse_std(mu, sd, task.transform),
                                  inverse(lo, task.transform), inverse(hi, task.transform))
            cols[task.name] = mu
            cols[f"{task.name}_std"] = sd
            cols[f"{task.name}_lower"] = lo
            cols[f"{task.name}_upper"] = hi
            cols[f"{task.name}_in_domain"] = in_domain.copy()
            cols[f"{task.name}_pct_approved"] = pct
        return pd.DataFrame(cols, columns=output_columns(self.task_names))

    def predict_model_space(self, X_raw: np.ndarray, smiles: Sequence[str],
                            domain_bits: Sequence[list[int] | None] | None = None):
        """:class:`admet.difficulty.CalibratedPrediction` for valid raw feature rows (model scale:
        log10 for log-trained tasks; calibrated probabilities; intervals; domain)."""
        from admet.difficulty import calibrated_predict

        X = self.features.transform_matrix(np.asarray(X_raw))
        return calibrated_predict(self.ensemble, self.tasks, self.conformal, self.calibrators, self.domain,
                                  X, list(smiles), domain_bits)

    def _threshold(self) -> float:
        return self.domain.threshold if self.domain is not None else 0.0

    def predict_inputs(self, smiles: Sequence[str], inputs) -> pd.DataFrame:
        """:meth:`predict_features` of standardized SMILES from their
        :class:`admet.prediction_inputs.PredictionInputs` (features, valid mask and domain inputs of one
        parse): the step every prediction entry point ends in."""
        return self.predict_features(inputs.X, smiles, inputs.valid, domain_bits=inputs.domain)

    def predict_smiles(self, smiles: Sequence[object]) -> pd.DataFrame:
        """One row per input, in order: ``input, smiles, status, reason`` + the endpoint columns.

        Standardized with the project's pipeline, then featurized once per molecule
        (``admet.prediction_inputs``; ``features.n_jobs`` worker processes for a long list)."""
        from admet.prediction_inputs import prediction_inputs
        from pipelines.standardize import standardize_many

        inputs = list(smiles)
        std = standardize_many(inputs, with_inchikey=False)
        ok = [i for i, s in enumerate(std) if s.ok]
        ok_smiles = [std[i].smiles for i in ok]
        prepared = prediction_inputs(ok_smiles, self.featurizer_spec, n_jobs=self.features.n_jobs)
        preds_ok = self.predict_inputs(ok_smiles, prepared)
        valid = prepared.valid
        head = pd.DataFrame({
            "input": pd.Series(inputs, dtype=object),
            "smiles": pd.Series([s.smiles if s.ok else None for s in std], dtype=object),
            "status": "rejected",
            "reason": pd.Series([str(s.reason.value) if s.reason else "" for s in std], dtype=object),
        })
        ok_arr = np.asarray(ok, dtype=int)
        head.loc[ok_arr[valid], "status"] = "ok"
        head.loc[ok_arr[~valid], "reason"] = FEATURIZATION_FAILED
        preds_ok.index = ok_arr
        preds = preds_ok.reindex(pd.RangeIndex(len(inputs)))
        return pd.concat([head, preds], axis=1)

    # -- persistence ---------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        from admet.model_card import render_model_card

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stale = folder / "bundle.json"
        if stale.exists():
            stale.unlink()  # an interrupted save must not leave a bundle.json that vouches for old files
        self.features.scaler.save(folder / "feature_scaler.npz")
        self.ensemble.save(folder / "ensemble")
        if self.domain is not None:
            self.domain.save(folder / "domain.npz")
        if self.approved is not None:
            self.approved.save(folder / "approved.npz")
        else:  # a bundle rewritten into its folder without the context must not load an old one
            (folder / "approved.npz").unlink(missing_ok=True)
        if self.split_manifest is not None:
            self.split_manifest.save(folder / "split.npz")
        (folder / "metrics.json").write_text(json.dumps(self.metrics, indent=2, default=json_default))
        (folder / "config.json").write_text(json.dumps(self.config.to_json_dict(), indent=2))
        (folder / "model_card.md").write_text(render_model_card(self))
        meta = self._metadata()
        meta["files"] = folder_checksums(folder)
        (folder / "bundle.json").write_text(json.dumps(meta, indent=1, default=json_default))
        log.info("saved model bundle to %s", folder)
        return folder

    def _metadata(self) -> dict:
        return {
            "format": BUNDLE_FORMAT,
            "tasks": [t.to_dict() for t in self.tasks],
            "model": self.config.model,
            "n_members": len(self.ensemble.members),
            "config": self.config.to_json_dict(),
            "featurizer": {"spec": self.features.spec, "clip": self.features.clip,
                           "config": self.featurizer_config},
            "data_hash": self.data_hash,
            "versions": self.versions,
            "conformal": {k: v.to_dict() for k, v in self.conformal.items()},
            "calibrators": {k: v.to_dict() for k, v in self.calibrators.items()},
            "domain": None if self.domain is None else {
                "threshold": self.domain.threshold, "percentile": self.domain.percentile,
                "n_reference": int(len(self.domain.reference)),
                "descriptor_box": self.domain.box_low is not None,
                "calibration_inside": self.domain.calibration_inside},
            "info": self.info,
        }


def json_default(obj):
    """``json.dumps(default=...)`` for bundle files: numpy scalars and arrays as Python values."""
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    raise TypeError(f"not JSON serializable: {type(obj)}")


def load_bundle(folder: str | Path, check_featurizer: bool = True) -> ModelBundle:
    """Load a bundle folder, verifying integrity, featurizer config and library versions."""
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"model bundle not found: {folder}")
    if not folder.is_dir():
        raise InputError(f"model bundle must be a folder, got a file: {folder}")
    meta_path = folder / "bundle.json"
    if not meta_path.is_file():
        raise InputError(f"{folder} is not a model bundle (no bundle.json; incomplete or interrupted save?)")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"model bundle {folder}: bundle.json is corrupt ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        raise InputError(f"model bundle {folder}: unsupported bundle format {meta.get('format') if isinstance(meta, dict) else '?'}")
    for rel, digest in meta.get("files", {}).items():
        path = folder / rel
        if not path.is_file():
            raise InputError(f"model bundle {folder}: file {rel} is missing")
        if sha256_file(path) != digest:
            raise InputError(f"model bundle {folder}: file {rel} is corrupt or truncated (checksum mismatch)")
    problems = check_versions(meta.get("versions", {}), meta.get("model", "mtnn"))
    if problems:
        raise InputError(f"model bundle {folder} was saved with other library versions: {'; '.join(problems)}")
    feat = meta["featurizer"]
    if check_featurizer:
        current = current_featurizer_config(feat["spec"])
        if _canon(comparable_config(current)) != _canon(comparable_config(feat["config"])):
            raise InputError(
                f"model bundle {folder} was trained with another featurizer configuration than this "
                f"installation's for spec {feat['spec']!r}: bundle {json.dumps(feat['config'], sort_keys=True)} "
                f"vs here {json.dumps(current, sort_keys=True)}")
    try:
        tasks = [TaskSpec.from_dict(t) for t in meta["tasks"]]
        config = ModelConfig.build(**meta["config"])
        features = FeatureSet(spec=feat["spec"], clip=feat["clip"])
        features.scaler = FeatureScaler.load(folder / "feature_scaler.npz")
        features.featurizer_config = feat["config"]
        ensemble = Ensemble.load(folder / "ensemble", tasks, int(meta["n_members"]))
        domain = ApplicabilityDomain.load(folder / "domain.npz") if (folder / "domain.npz").exists() else None
        approved = ApprovedReference.load(folder / "approved.npz") if (folder / "approved.npz").exists() else None
        manifest = SplitManifest.load(folder / "split.npz") if (folder / "split.npz").exists() else None
        metrics = json.loads((folder / "metrics.json").read_text())
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here means the folder is unusable
        raise InputError(f"model bundle {folder} cannot be loaded: {type(exc).__name__}: {exc}") from None
    return ModelBundle(
        tasks=tasks, config=config, features=features, ensemble=ensemble,
        conformal={k: ConformalRegressor.from_dict(v) for k, v in meta.get("conformal", {}).items()},
        calibrators={k: ProbabilityCalibrator.from_dict(v) for k, v in meta.get("calibrators", {}).items()},
        domain=domain, approved=approved, metrics=metrics, data_hash=meta.get("data_hash", ""),
        featurizer_config=feat["config"], versions=meta.get("versions"), info=meta.get("info", {}),
        split_manifest=manifest)


def _canon(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
