"""Split-conformal regression intervals with a per-molecule difficulty, and calibrated probabilities.

Both are fitted on a calibration fold the models never trained on.

:class:`ConformalRegressor` gives ``mu +/- q * sigma(x)``. The nonconformity score is
``|y - mu| / sigma(x)`` and ``q`` its ``ceil((n + 1) * coverage)``-th smallest value on the
calibration fold. Candidates for the difficulty ``sigma(x)``:

* ``absolute``: ``sigma = 1`` (every molecule gets the same width);
* ``spread``: ``sigma = s(x) + eps``, ``s`` the spread of the model's component predictions
  (ensemble members, and the network and LightGBM parts of a ``blend`` member);
* ``error_model``: ``sigma = exp(w . f(x))``, a ridge-regularised linear model of ``log |y - mu|`` on
  ``log(s + eps)``, ``1 - `` nearest-neighbour Tanimoto similarity to the training set,
  ``1 -`` the mean similarity of the 5 nearest neighbours, and the prediction itself (``mu - m`` and
  ``|mu - m|``, ``m`` the median calibration prediction: errors often grow towards the ends of an
  endpoint's range); the features the fold has.

The candidate with the smallest mean interval width is kept (an adaptive one also when it is at
most ``WIDTH_TOLERANCE`` = 2% wider than ``absolute``); widths are measured *cross-fitted*
(5 folds of the calibration fold: the error model is fitted on four and scores the fifth), and the
kept model's ``q`` is the conformal quantile of those cross-fitted scores. For ``absolute`` and
``spread`` nothing is fitted, so their coverage guarantee is the exact split-conformal one; for
``error_model`` the three-to-four weights are learnt on the same fold, so the guarantee is the
approximate cross-conformal one (measured in ``bench/admet_uncertainty.py``). ``normalized`` is
the name older bundles used for ``spread``; they still load and predict as before.

:class:`ProbabilityCalibrator`: Platt scaling (a logistic regression on the raw logit). It is
strictly increasing, so the ranking (AUROC) is unchanged and distinct scores stay distinct; a
fitted slope <= 0 (no usable signal) or fewer than ``PLATT_MIN`` labels falls back to the identity. Older bundles' ``isotonic``
calibrators still load; ``fedadmet admet recalibrate`` replaces them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field

import numpy as np

log = logging.getLogger(__name__)

#: Fewer calibration labels than this: probabilities left uncalibrated. Measured on the shipped blend x1
#: model (bench/results/admet_uncertainty_ship_recal.json): Platt fitted on 19-36 labels made the test ECE
#: worse on 6 of 9 endpoints (e.g. CYP2C19 0.044 -> 0.164); on 44+ labels better on 16 of 17 (0.001 worse on one).
PLATT_MIN = 40
ERROR_MODEL_MIN = 40
CROSS_FOLDS = 5
KNN = 5
FEATURES = ("log_spread", "nn_distance", "knn_distance", "prediction", "prediction_dev")
#: An adaptive ``sigma`` is kept over ``absolute`` when its cross-fitted mean width is at most this much wider.
WIDTH_TOLERANCE = 0.02


def conformal_quantile(scores: np.ndarray, coverage: float) -> float:
    """The split-conformal quantile: ``ceil((n+1) * coverage)``-th smallest score (inf if n too small)."""
    scores = np.sort(np.asarray(scores, float)[np.isfinite(scores)])
    n = len(scores)
    k = math.ceil((n + 1) * coverage)
    if n == 0 or k > n:
        return math.inf
    return float(scores[k - 1])


def _as_array(v, n: int) -> np.ndarray:
    return np.full(n, np.nan) if v is None else np.asarray(v, float).reshape(-1)


@dataclass(slots=True)
class ConformalRegressor:
    """Interval ``mu +/- q * sigma(x)``; ``sigma`` by ``method`` (see the module docstring)."""

    method: str = "absolute"
    q: float = math.inf
    eps: float = 0.0
    coverage: float = 0.9
    n_calibration: int = 0
    features: list[str] = field(default_factory=list)
    """Error-model inputs, a subset of ``FEATURES`` in that order."""
    weights: list[float] = field(default_factory=list)
    """Error model: intercept, then one weight per feature (on standardised features)."""
    center: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)
    log_sigma_range: list[float] = field(default_factory=list)
    """Error model: ``log sigma`` clipped to the range it took on the calibration fold."""
    selection: dict = field(default_factory=dict)
    """Cross-fitted mean width and Spearman(sigma, |error|) per candidate on the calibration fold."""
    mu_center: float = 0.0
    """Median calibration prediction: ``prediction`` = mu - mu_center, ``prediction_dev`` = its absolute value."""

    # -- difficulty ---------------------------------------------------------------------
    def _feature_matrix(self, std, nn_sim, knn_sim, mu) -> np.ndarray:
        return _features(self.features, std, nn_sim, knn_sim, self.eps, mu, self.mu_center)

    def sigma(self, std, nn_sim=None, knn_sim=None, mu=None) -> np.ndarray:
        std = np.asarray(std, float).reshape(-1)
        if self.method == "absolute":
            return np.ones(std.shape)
        if self.method in ("spread", "normalized"):
            return std + self.eps
        F = self._feature_matrix(std, _as_array(nn_sim, len(std)), _as_array(knn_sim, len(std)),
                                 _as_array(mu, len(std)))
        F = np.where(np.isfinite(F), F, np.asarray(self.center)[None, :])  # missing signal -> typical value
        z = (F - np.asarray(self.center)) / np.asarray(self.scale)
        w = np.asarray(self.weights)
        log_sigma = np.clip(w[0] + z @ w[1:], *self.log_sigma_range)
        return np.exp(log_sigma)

    def half_width(self, std, nn_sim=None, knn_sim=None, mu=None) -> np.ndarray:
        return self.q * self.sigma(std, nn_sim, knn_sim, mu)

    def interval(self, mu, std, nn_sim=None, knn_sim=None) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper); NaN where the calibration fold was too small for this coverage."""
        h = self.half_width(std, nn_sim, knn_sim, mu)
        h = np.where(np.isfinite(h), h, np.nan)
        return np.asarray(mu) - h, np.asarray(mu) + h

    @property
    def calibrated(self) -> bool:
        return math.isfinite(self.q)

    # -- fitting ------------------------------------------------------------------------
    @classmethod
    def fit(cls, y, mu, std=None, coverage: float = 0.9, method: str = "auto",
            nn_sim=None, knn_sim=None, seed: int = 0) -> "ConformalRegressor":
        """Fit on calibration labels ``y`` with predictions ``mu``, spreads ``std`` and (optional)
        nearest-neighbour / k-NN similarities; ``method`` ``auto`` picks the narrowest candidate."""
        y, mu = np.asarray(y, float).reshape(-1), np.asarray(mu, float).reshape(-1)
        n0 = len(y)
        std = np.zeros(n0) if std is None else np.asarray(std, float).reshape(-1)
        nn, knn = _as_array(nn_sim, n0), _as_array(knn_sim, n0)
        ok = np.isfinite(y) & np.isfinite(mu) & np.isfinite(std)
        y, mu, std, nn, knn = y[ok], mu[ok], std[ok], nn[ok], knn[ok]
        n = len(y)
        resid = np.abs(y - mu)
        eps = max(1e-6, 0.1 * float(np.median(std))) if n else 1e-6
        candidates = {"absolute": None}
        if n and np.any(std > 0):
            candidates["spread"] = None
        feats = [f for f, v in zip(FEATURES, (std, nn, knn, mu, mu))
                 if n and np.isfinite(v).all() and np.ptp(v) > 0 and (f != "log_spread" or np.any(v > 0))]
        if feats and n >= ERROR_MODEL_MIN:
            candidates["error_model"] = feats
        if method in ("absolute", "spread", "error_model"):
            if method not in candidates:
                method = "absolute"
            candidates = {method: candidates[method]}
        elif method == "normalized":  # the older name
            candidates = {"spread": None} if "spread" in candidates else {"absolute": None}
        elif method != "auto":
            raise ValueError(f"unknown conformal method {method!r}")
        folds = np.random.default_rng(seed).permutation(n) % CROSS_FOLDS
        selection, fitted = {}, {}
        for name, fnames in candidates.items():
            base = cls(name, math.inf, eps, coverage, n)
            if name == "error_model":
                scores, sig = np.empty(n), np.empty(n)
                for k in range(CROSS_FOLDS):
                    held = folds == k
                    part = base._fit_error_model(fnames, resid[~held], std[~held], nn[~held], knn[~held],
                                                 mu[~held])
                    sig[held] = part.sigma(std[held], nn[held], knn[held], mu[held])
                    scores[held] = resid[held] / sig[held]
                model = base._fit_error_model(fnames, resid, std, nn, knn, mu)
            else:
                model = base
                sig = model.sigma(std)
                scores = resid / sig
            model.q = conformal_quantile(scores, coverage)
            width = float(np.mean(2 * model.q * sig)) if model.calibrated else math.inf
            selection[name] = {"mean_width": width, "spearman_sigma_error": _spearman(sig, resid)}
            fitted[name] = model
        chosen = min(fitted, key=lambda k: (selection[k]["mean_width"], list(fitted).index(k)))
        adaptive = [k for k in fitted if k != "absolute" and math.isfinite(selection[k]["mean_width"])]
        if chosen == "absolute" and adaptive:  # a width that follows difficulty is worth a sliver of width
            best = min(adaptive, key=lambda k: selection[k]["mean_width"])
            if selection[best]["mean_width"] <= (1 + WIDTH_TOLERANCE) * selection["absolute"]["mean_width"]:
                chosen = best
        out = fitted[chosen]
        out.selection = selection
        log.debug("conformal: %s -> %s", selection, chosen)
        return out

    def _fit_error_model(self, fnames, resid, std, nn, knn, mu) -> "ConformalRegressor":
        mu_center = float(np.median(mu)) if len(mu) else 0.0
        F = _features(fnames, std, nn, knn, self.eps, mu, mu_center)
        center, scale = F.mean(0), F.std(0)
        scale = np.where(scale > 0, scale, 1.0)
        Z = (F - center) / scale
        delta = 0.05 * float(np.median(resid)) + 1e-9
        target = np.log(resid + delta)
        A = np.column_stack([np.ones(len(Z)), Z])
        ridge = 1e-3 * len(Z) * np.eye(A.shape[1])
        ridge[0, 0] = 0.0
        w = np.linalg.solve(A.T @ A + ridge, A.T @ target)
        fitted = A @ w
        return ConformalRegressor("error_model", math.inf, self.eps, self.coverage, self.n_calibration,
                                  list(fnames), [float(v) for v in w], [float(v) for v in center],
                                  [float(v) for v in scale], [float(fitted.min()), float(fitted.max())],
                                  mu_center=mu_center)

    # -- persistence --------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["q"] = self.q if math.isfinite(self.q) else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ConformalRegressor":
        q = d.get("q")
        return cls(d["method"], math.inf if q is None else float(q), float(d["eps"]),
                   float(d["coverage"]), int(d["n_calibration"]), list(d.get("features", [])),
                   list(d.get("weights", [])), list(d.get("center", [])), list(d.get("scale", [])),
                   list(d.get("log_sigma_range", [])), dict(d.get("selection", {})), float(d.get("mu_center", 0.0)))


def _features(fnames, std, nn, knn, eps, mu=None, mu_center=0.0) -> np.ndarray:
    cols = {"log_spread": lambda: np.log(np.maximum(std, 0) + eps),
            "nn_distance": lambda: 1.0 - nn, "knn_distance": lambda: 1.0 - knn,
            "prediction": lambda: mu - mu_center, "prediction_dev": lambda: np.abs(mu - mu_center)}
    return np.column_stack([cols[f]() for f in fnames]) if fnames else np.zeros((len(std), 0))


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-15, 1 - 1e-15)  # distinct scores stay distinct
    return np.log(p / (1 - p))


def expected_calibration_error(y, p, bins: int = 10) -> float:
    """ECE: label-weighted mean |observed rate - mean probability| over ``bins`` equal-width bins."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    ok = np.isfinite(y) & np.isfinite(p)
    y, p = y[ok], p[ok]
    if len(y) == 0:
        return math.nan
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(y[m].mean() - p[m].mean())
    return float(total / len(y))


@dataclass(slots=True)
class ProbabilityCalibrator:
    """Maps raw P(class 1) to calibrated probabilities (``identity`` or ``platt``; ``isotonic``
    only in bundles written before Platt became the only fitted method)."""

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
        if method not in ("auto", "platt", "identity"):
            raise ValueError(f"unknown calibration method {method!r} (platt keeps the ranking; isotonic is "
                             "no longer fitted because it merges distinct scores)")
        if method == "identity" or n < PLATT_MIN or len(np.unique(y)) < 2:
            return cls("identity", n_calibration=n)
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e4).fit(_logit(p).reshape(-1, 1), y)
        a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        if not a > 0:  # a flat or inverted fit would destroy the ranking
            log.warning("Platt slope %.3g <= 0 on %d calibration labels: probabilities left uncalibrated", a, n)
            return cls("identity", n_calibration=n)
        return cls("platt", a=a, b=b, n_calibration=n)

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
