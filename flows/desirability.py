"""Desirability scoring: per-endpoint acceptable ranges and weights from a TOML profile.

A profile names, for each predicted endpoint, an acceptable range ``[low, high]`` (either side
may be open), a ``soft`` margin over which desirability falls linearly from 1 to 0 outside the
range, and a ``weight``. The compound score is the weighted mean (or weighted geometric mean)
of the endpoint desirabilities, in ``[0, 1]``.

With a prediction's standard deviation the *expected* desirability under a normal predictive
distribution is available too (:func:`expected_desirability`); the autonomous-lab loop uses it.
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy.stats import norm

from pipelines.errors import InputError

log = logging.getLogger(__name__)

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
DEFAULT_PROFILE = PROFILES_DIR / "default.toml"


class EndpointRule(BaseModel):
    """Acceptable range and weight of one endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float | None = None
    """Lowest fully acceptable value (None: no lower bound)."""
    high: float | None = None
    """Highest fully acceptable value (None: no upper bound)."""
    soft: float = Field(default=1.0, gt=0)
    """Distance outside the range over which desirability falls from 1 to 0."""
    weight: float = Field(default=1.0, ge=0)
    """Weight of this endpoint in the compound score."""

    @model_validator(mode="after")
    def _range_is_sensible(self) -> "EndpointRule":
        if self.low is None and self.high is None:
            raise ValueError("give at least one of low / high")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high})")
        return self

    def desirability(self, values: np.ndarray) -> np.ndarray:
        """Piecewise-linear desirability in [0, 1]; NaN where the value is NaN."""
        v = np.asarray(values, dtype=float)
        below = np.zeros_like(v) if self.low is None else np.clip(self.low - v, 0, None)
        above = np.zeros_like(v) if self.high is None else np.clip(v - self.high, 0, None)
        d = 1.0 - (below + above) / self.soft
        d = np.clip(d, 0.0, 1.0)
        d[np.isnan(v)] = np.nan
        return d


class DesirabilityProfile(BaseModel):
    """A named set of endpoint rules and how to combine them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "profile"
    description: str = ""
    combine: Literal["mean", "geometric"] = "mean"
    endpoints: dict[str, EndpointRule]

    @model_validator(mode="after")
    def _has_weight(self) -> "DesirabilityProfile":
        if not self.endpoints:
            raise ValueError("the profile lists no endpoints")
        if sum(rule.weight for rule in self.endpoints.values()) <= 0:
            raise ValueError("all endpoint weights are zero")
        return self

    def restricted_to(self, available: list[str]) -> "DesirabilityProfile":
        """The same profile over the endpoints a model predicts; InputError when none overlap."""
        kept = {name: rule for name, rule in self.endpoints.items() if name in available and rule.weight > 0}
        missing = sorted(set(self.endpoints) - set(available))
        if missing:
            log.warning("profile %s: model does not predict %s; skipped", self.name, missing)
        if not kept:
            raise InputError(
                f"desirability profile {self.name!r} scores {sorted(self.endpoints)} but the model "
                f"predicts {sorted(available)}: no endpoint in common"
            )
        return self.model_copy(update={"endpoints": kept})


def load_profile(path: str | Path | None = None) -> DesirabilityProfile:
    """Read and validate a TOML profile (the shipped default when ``path`` is None)."""
    path = Path(path) if path is not None else DEFAULT_PROFILE
    if not path.is_file():
        raise InputError(f"desirability profile not found: {path}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"desirability profile {path} is not valid TOML: {exc}") from exc
    try:
        return DesirabilityProfile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InputError(f"desirability profile {path} is invalid: {problems}") from exc


def _combine(d: pd.DataFrame, weights: np.ndarray, how: str) -> np.ndarray:
    """Weighted combination over the available (non-NaN) endpoints of each row."""
    values = d.to_numpy(dtype=float)
    present = ~np.isnan(values)
    w = np.where(present, weights[None, :], 0.0)
    wsum = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if how == "geometric":
            logs = np.log(np.clip(np.nan_to_num(values, nan=1.0), 1e-6, 1.0))
            score = np.exp((w * logs).sum(axis=1) / wsum)
        else:
            score = (w * np.nan_to_num(values, nan=0.0)).sum(axis=1) / wsum
    score[wsum == 0] = np.nan
    return score


def score_predictions(predictions: pd.DataFrame, profile: DesirabilityProfile) -> pd.DataFrame:
    """Per-endpoint desirabilities ``d_<E>`` and the combined ``score`` for each predicted row.

    ``predictions`` holds one column per endpoint (the admet bundle's ``E`` columns). Rows keep
    their order and index; a row with no scorable endpoint gets a NaN score.
    """
    profile = profile.restricted_to([c for c in predictions.columns])
    d = pd.DataFrame(index=predictions.index)
    for name, rule in profile.endpoints.items():
        d[f"d_{name}"] = rule.desirability(predictions[name].to_numpy(dtype=float))
    weights = np.array([rule.weight for rule in profile.endpoints.values()])
    d["score"] = _combine(d, weights, profile.combine)
    return d


def predictive_sigma(predictions: pd.DataFrame, name: str, coverage: float = 0.9) -> np.ndarray:
    """Per-row standard deviation of endpoint ``name``'s predictive distribution.

    The larger of the ensemble spread ``<E>_std`` and the scale the conformal interval implies,
    ``(<E>_upper - <E>_lower) / (2 z)`` with ``z`` the normal quantile of ``coverage`` (1.645 at 90%).
    The interval is calibrated on held-out labels and normalised per molecule, so it also carries
    the error a one-member model's spread (always 0) cannot show; where it is missing (classification,
    no calibration) the spread alone is used, 0 where that is missing too.
    """
    n = len(predictions)
    std = predictions[f"{name}_std"].to_numpy(float) if f"{name}_std" in predictions else np.zeros(n)
    std = np.nan_to_num(std, nan=0.0)
    if f"{name}_lower" in predictions and f"{name}_upper" in predictions:
        width = predictions[f"{name}_upper"].to_numpy(float) - predictions[f"{name}_lower"].to_numpy(float)
        z = float(norm.ppf(0.5 + coverage / 2))
        from_interval = np.where(np.isfinite(width) & (width > 0), width / (2 * z), 0.0)
        std = np.maximum(std, from_interval)
    return std


def expected_score(predictions: pd.DataFrame, profile: DesirabilityProfile, coverage: float = 0.9) -> np.ndarray:
    """Combined *expected* desirability over each endpoint's predictive distribution, a normal with
    the prediction as mean and :func:`predictive_sigma` as standard deviation.

    Equals the plain score for exact predictions and is lower the closer an uncertain prediction
    sits to the edge of its range: the tie-breaker among compounds whose score is saturated at 1.
    ``coverage`` is the level of the ``_lower`` / ``_upper`` interval (the bundle's ``coverage``).
    """
    profile = profile.restricted_to(list(predictions.columns))
    d = pd.DataFrame(index=predictions.index)
    for name, rule in profile.endpoints.items():
        std = predictive_sigma(predictions, name, coverage)
        mean = predictions[name].to_numpy(float)
        value = expected_desirability(rule, mean, std)
        value[np.isnan(mean)] = np.nan
        d[name] = value
    return _combine(d, np.array([r.weight for r in profile.endpoints.values()]), profile.combine)


def expected_desirability(rule: EndpointRule, mean: np.ndarray, std: np.ndarray, n_points: int = 256) -> np.ndarray:
    """E[d(Y)] for Y ~ N(mean, std), by equal-probability quantile quadrature (desirability is
    only piecewise smooth, so Gauss-Hermite converges slowly); equals d(mean) where std is 0."""
    mean = np.asarray(mean, dtype=float)
    std = np.clip(np.nan_to_num(np.asarray(std, dtype=float), nan=0.0), 0.0, None)
    nodes = norm.ppf((np.arange(n_points) + 0.5) / n_points)
    samples = mean[:, None] + std[:, None] * nodes[None, :]
    d = rule.desirability(samples.ravel()).reshape(samples.shape)
    return d.mean(axis=1)
