"""Split-conformal regression intervals and calibrated class probabilities.

Both are fitted on a calibration fold the models never trained on.

* :class:`ConformalRegressor`: nonconformity either ``|y - mu| / (std + eps)`` (normalized by
  the ensemble spread) or ``|y - mu|`` (absolute); both are valid split-conformal scores and
  the one giving the narrower mean interval on the calibration fold is kept. The quantile is
  the ``ceil((n + 1) * coverage)``-th smallest score, which guarantees coverage >= the
  requested level for exchangeable data.
* :class:`ProbabilityCalibrator`: Platt scaling (logistic on the logit) for small calibration
  folds, isotonic regression from ``ISOTONIC_MIN`` labels on; identity when the fold has
  too few labels or a single class.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field

import numpy as np

log = logging.getLogger(__name__)

ISOTONIC_MIN = 500
PLATT_MIN = 20


def conformal_quantile(scores: np.ndarray, coverage: float) -> float:
    """The split-conformal quantile: ``ceil((n+1) * coverage)``-th smallest score (inf if n too small)."""
    scores = np.sort(np.asarray(scores, float)[np.isfinite(scores)])
    n = len(scores)
    k = math.ceil((n + 1) * coverage)
    if n == 0 or k > n:
        return math.inf
    return float(scores[k - 1])


@dataclass(slots=True)
class ConformalRegressor:
    """Interval ``mu +/- q * (std + eps)`` (normalized) or ``mu +/- q`` (absolute)."""

    method: str = "absolute"
    q: float = math.inf
    eps: float = 0.0
    coverage: float = 0.9
    n_calibration: int = 0

    @classmethod
    def fit(cls, y: np.ndarray, mu: np.ndarray, std: np.ndarray | None, coverage: float = 0.9,
            method: str = "auto") -> "ConformalRegressor":
        y, mu = np.asarray(y, float), np.asarray(mu, float)
        std = np.zeros_like(mu) if std is None else np.asarray(std, float)
        ok = np.isfinite(y) & np.isfinite(mu) & np.isfinite(std)
        y, mu, std = y[ok], mu[ok], std[ok]
        n = len(y)
        resid = np.abs(y - mu)
        absolute = cls("absolute", conformal_quantile(resid, coverage), 0.0, coverage, n)
        if method == "absolute" or n == 0 or not np.any(std > 0):
            return absolute
        eps = max(1e-6, 0.1 * float(np.median(std)))
        q_norm = conformal_quantile(resid / (std + eps), coverage)
        normalized = cls("normalized", q_norm, eps, coverage, n)
        if method == "normalized":
            return normalized
        width_norm = float(np.mean(q_norm * (std + eps))) if math.isfinite(q_norm) else math.inf
        chosen = normalized if width_norm < absolute.q else absolute
        log.debug("conformal: absolute q=%.3f, normalized mean half-width=%.3f -> %s",
                  absolute.q, width_norm, chosen.method)
        return chosen

    def half_width(self, std: np.ndarray) -> np.ndarray:
        std = np.asarray(std, float)
        if self.method == "normalized":
            return self.q * (std + self.eps)
        return np.full(std.shape, self.q)

    def interval(self, mu: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper); NaN where the calibration fold was too small for this coverage."""
        h = self.half_width(std)
        h = np.where(np.isfinite(h), h, np.nan)
        return np.asarray(mu) - h, np.asarray(mu) + h

    @property
    def calibrated(self) -> bool:
        return math.isfinite(self.q)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["q"] = self.q if math.isfinite(self.q) else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ConformalRegressor":
        q = d.get("q")
        return cls(d["method"], math.inf if q is None else float(q), float(d["eps"]),
                   float(d["coverage"]), int(d["n_calibration"]))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


@dataclass(slots=True)
class ProbabilityCalibrator:
    """Maps raw P(class 1) to calibrated probabilities (``identity``, ``platt`` or ``isotonic``)."""

    method: str = "identity"
    a: float = 1.0
    b: float = 0.0
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    n_calibration: int = 0

    @classmethod
    def fit(cls, y: np.ndarray, p: np.ndarray, method: str = "auto") -> "ProbabilityCalibrator":
        y, p = np.asarray(y, float), np.asarray(p, float)
        ok = np.isfinite(y) & np.isfinite(p)
        y, p = y[ok], p[ok]
        n = len(y)
        if n < PLATT_MIN or len(np.unique(y)) < 2:
            return cls("identity", n_calibration=n)
        if method == "isotonic" or (method == "auto" and n >= ISOTONIC_MIN):
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
            return cls("isotonic", x=[float(v) for v in iso.X_thresholds_],
                       y=[float(v) for v in iso.y_thresholds_], n_calibration=n)
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e4).fit(_logit(p).reshape(-1, 1), y)
        return cls("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]), n_calibration=n)

    def transform(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, float)
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-(self.a * _logit(p) + self.b)))
        if self.method == "isotonic":
            out = np.interp(p, self.x, self.y)
            return np.where(np.isfinite(p), out, np.nan)
        return p

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ProbabilityCalibrator":
        return cls(**d)
