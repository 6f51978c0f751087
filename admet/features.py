"""Model inputs: a featurizer spec from ``pipelines.featurize`` plus a scaler fitted on training data.

The scaler is robust (median / IQR, NaN imputed by the median, clipped) when fitted on local
training data; for federation it is built from summed moments (sum, sum of squares, count per
feature) so that no partner's raw features leave the partner.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from admet.config import DEFAULT_FEATURIZER
from pipelines.errors import InputError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class FeatureScaler:
    """Per-feature ``(x - center) / scale``, NaN -> center, clipped to ``+/- clip``.

    ``impute=False`` keeps NaN as NaN (only :meth:`identity` uses it: a bundle whose model parts each
    scale their own inputs passes the raw features through unchanged, NaN included)."""

    center: np.ndarray
    scale: np.ndarray
    clip: float = 6.0
    impute: bool = True

    @classmethod
    def identity(cls, n_features: int) -> "FeatureScaler":
        """The exact identity on raw features (no centring, scaling, clipping or imputation)."""
        return cls(center=np.zeros(n_features, np.float32), scale=np.ones(n_features, np.float32),
                   clip=float("inf"), impute=False)

    @classmethod
    def fit(cls, X: np.ndarray, clip: float = 6.0) -> "FeatureScaler":
        """Robust fit: median and interquartile range (std, then 1, where the IQR is 0)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) == 0:
            raise InputError("cannot fit a feature scaler on an empty feature matrix")
        with np.errstate(all="ignore"):
            q25, med, q75 = np.nanpercentile(X, [25, 50, 75], axis=0)
            std = np.nanstd(X, axis=0)
        med = np.nan_to_num(med, nan=0.0)
        iqr = np.nan_to_num(q75 - q25, nan=0.0)
        std = np.nan_to_num(std, nan=0.0)
        scale = np.where(iqr > 1e-12, iqr, np.where(std > 1e-12, std, 1.0))
        return cls(center=med.astype(np.float32), scale=scale.astype(np.float32), clip=float(clip))

    @classmethod
    def from_moments(cls, total: np.ndarray, total_sq: np.ndarray, count: np.ndarray,
                     clip: float = 6.0) -> "FeatureScaler":
        """Mean / standard deviation from per-feature sums, sums of squares and counts."""
        total, total_sq = np.asarray(total, np.float64), np.asarray(total_sq, np.float64)
        n = np.maximum(np.asarray(count, np.float64), 1.0)
        mean = total / n
        std = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))
        scale = np.where(std > 1e-12, std, 1.0)
        return cls(center=mean.astype(np.float32), scale=scale.astype(np.float32), clip=float(clip))

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != len(self.center):
            raise InputError(f"feature matrix has {X.shape[-1]} columns, the scaler expects "
                             f"{len(self.center)}: featurizer mismatch")
        out = np.where(np.isfinite(X), X, self.center) if self.impute else X
        out = (out - self.center) / self.scale
        np.clip(out, -self.clip, self.clip, out=out)
        return out.astype(np.float32, copy=False)

    def save(self, path: Path) -> None:
        extra = {} if self.impute else {"impute": np.bool_(False)}  # files of imputing scalers are unchanged
        np.savez(path, center=self.center, scale=self.scale, clip=np.float64(self.clip), **extra)

    @classmethod
    def load(cls, path: Path) -> "FeatureScaler":
        with np.load(path) as z:
            impute = bool(z["impute"]) if "impute" in z.files else True
            return cls(center=z["center"], scale=z["scale"], clip=float(z["clip"]), impute=impute)


def feature_moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-feature (sum, sum of squares, count of finite values): what a partner shares."""
    X = np.asarray(X, dtype=np.float64)
    ok = np.isfinite(X)
    X0 = np.where(ok, X, 0.0)
    return X0.sum(0), (X0**2).sum(0), ok.sum(0).astype(np.float64)


def current_featurizer_config(spec: str) -> dict:
    """The featurizer configuration this installation would use for ``spec``."""
    from pipelines.featurize import get_featurizer, parse_spec

    return {name: get_featurizer(name).config() for name in parse_spec(spec)}


def comparable_config(config: dict) -> dict:
    """A featurizer config without library versions (those are checked by major version)."""
    if not isinstance(config, dict):
        return config
    return {k: comparable_config(v) for k, v in config.items() if k != "versions"}


class FeatureSet:
    """A featurizer spec + its fitted scaler: SMILES in, scaled float32 matrix out."""

    def __init__(self, spec: str = DEFAULT_FEATURIZER, clip: float = 6.0,
                 n_jobs: int | None = None, cache_dir: str | Path | None = None) -> None:
        self.spec = spec
        self.clip = clip
        self.n_jobs = n_jobs
        self.cache_dir = cache_dir
        self.scaler: FeatureScaler | None = None
        self.featurizer_config: dict | None = None

    def featurize(self, smiles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw features (n, d) float32 and the valid mask; invalid rows are NaN."""
        from pipelines.featurize import featurize_smiles

        fm = featurize_smiles(list(smiles), spec=self.spec, n_jobs=self.n_jobs,
                              cache_dir=self.cache_dir)
        if self.featurizer_config is None:
            self.featurizer_config = dict(fm.config)
        return np.asarray(fm.X, dtype=np.float32), np.asarray(fm.valid, dtype=bool)

    def fit_matrix(self, X_raw: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        rows = np.ones(len(X_raw), bool) if valid is None else np.asarray(valid, bool)
        if not rows.any():
            raise InputError("no valid molecules to fit the feature scaler on")
        self.scaler = FeatureScaler.fit(X_raw[rows], clip=self.clip)
        return self.transform_matrix(X_raw)

    def transform_matrix(self, X_raw: np.ndarray) -> np.ndarray:
        if self.scaler is None:
            raise RuntimeError("FeatureSet is not fitted")
        return self.scaler.transform(X_raw)

    def fit(self, smiles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Featurize training SMILES, fit the scaler on the valid rows; returns (X, valid)."""
        X_raw, valid = self.featurize(smiles)
        return self.fit_matrix(X_raw, valid), valid

    def transform(self, smiles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        X_raw, valid = self.featurize(smiles)
        return self.transform_matrix(X_raw), valid

    @property
    def n_features(self) -> int:
        if self.scaler is None:
            raise RuntimeError("FeatureSet is not fitted")
        return len(self.scaler.center)

    def metadata(self) -> dict:
        return {"spec": self.spec, "clip": self.clip, "featurizer_config": self.featurizer_config}
