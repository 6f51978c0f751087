"""Virtual patients (age, weight, sex, renal and hepatic function) and eligibility criteria as filters.

Renal function is creatinine clearance by Cockcroft-Gault from age, weight, sex and a log-normal serum
creatinine. Hepatic function is a multiplier on hepatic clearance (1 = normal), log-normal.
Sampling is vectorised over trials: shape (n_trials, n_patients); screening draws more candidates than
needed and enrols the first eligible ones of each trial.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pipelines.errors import InputError

log = logging.getLogger(__name__)


class PopulationSpec(BaseModel):
    """Distributions of the screened population."""

    model_config = ConfigDict(extra="forbid")
    age_mean: float = Field(55.0, gt=0, lt=120)
    age_sd: float = Field(14.0, ge=0)
    age_min: float = Field(18.0, ge=0)
    age_max: float = Field(90.0, le=120)
    weight_median_kg: float = Field(78.0, gt=0)
    weight_cv: float = Field(0.2, ge=0)
    female_fraction: float = Field(0.5, ge=0, le=1)
    female_weight_ratio: float = Field(0.85, gt=0)
    scr_median_mg_dl: float = Field(0.9, gt=0)
    scr_cv: float = Field(0.3, ge=0)
    hepatic_cv: float = Field(0.2, ge=0)


class Eligibility(BaseModel):
    """Inclusion thresholds: a patient is enrolled only if every one holds."""

    model_config = ConfigDict(extra="forbid")
    age_min: float = 18.0
    age_max: float = 80.0
    weight_min_kg: float = 40.0
    weight_max_kg: float = 150.0
    crcl_min_ml_min: float = 30.0
    hepatic_min: float = 0.5


@dataclass(slots=True)
class Patients:
    """Enrolled patients; every array has shape (n_trials, n_patients)."""

    age: np.ndarray
    weight: np.ndarray
    female: np.ndarray
    crcl: np.ndarray
    hepatic: np.ndarray
    screen_fail_rate: float
    """Share of screened candidates that failed eligibility."""


def _screen(spec: PopulationSpec, shape: tuple[int, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    age = np.clip(rng.normal(spec.age_mean, spec.age_sd, shape), spec.age_min, spec.age_max)
    female = rng.random(shape) < spec.female_fraction
    sigma_w = np.sqrt(np.log1p(spec.weight_cv ** 2))
    weight = spec.weight_median_kg * np.where(female, spec.female_weight_ratio, 1.0) * \
        np.exp(rng.normal(0.0, sigma_w, shape))
    sigma_s = np.sqrt(np.log1p(spec.scr_cv ** 2))
    scr = spec.scr_median_mg_dl * np.where(female, 0.8, 1.0) * np.exp(rng.normal(0.0, sigma_s, shape))
    crcl = (140.0 - age) * weight / (72.0 * scr) * np.where(female, 0.85, 1.0)
    sigma_h = np.sqrt(np.log1p(spec.hepatic_cv ** 2))
    hepatic = np.exp(rng.normal(-0.5 * sigma_h ** 2, sigma_h, shape))
    return {"age": age, "weight": weight, "female": female, "crcl": crcl, "hepatic": hepatic}


def eligible(c: dict[str, np.ndarray], rule: Eligibility) -> np.ndarray:
    """Boolean mask of candidates meeting every inclusion threshold."""
    return (
        (c["age"] >= rule.age_min) & (c["age"] <= rule.age_max)
        & (c["weight"] >= rule.weight_min_kg) & (c["weight"] <= rule.weight_max_kg)
        & (c["crcl"] >= rule.crcl_min_ml_min) & (c["hepatic"] >= rule.hepatic_min)
    )


def sample_patients(spec: PopulationSpec, rule: Eligibility, n_trials: int, n_patients: int,
                    rng: np.random.Generator, max_rounds: int = 6) -> Patients:
    """Screen candidates until every trial has ``n_patients`` eligible ones; enrol the first eligible."""
    if n_trials < 1 or n_patients < 1:
        raise InputError(f"need at least one trial and one patient (got {n_trials} x {n_patients})")
    factor = 1.5
    for _ in range(max_rounds):
        n_screen = int(np.ceil(n_patients * factor)) + 8
        cand = _screen(spec, (n_trials, n_screen), rng)
        ok = eligible(cand, rule)
        counts = ok.sum(axis=1)
        if counts.min() >= n_patients:
            order = np.argsort(~ok, axis=1, kind="stable")[:, :n_patients]
            picked = {k: np.take_along_axis(v, order, axis=1) for k, v in cand.items()}
            fail = 1.0 - ok.mean()
            return Patients(screen_fail_rate=float(fail), **picked)
        rate = max(ok.mean(), 1e-3)
        factor = 1.3 / rate
    raise InputError(
        f"eligibility criteria admit too few patients (about {100 * ok.mean():.2f}% of those screened); "
        "loosen the thresholds"
    )
