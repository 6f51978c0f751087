"""Monte Carlo virtual trials: two arms (active vs placebo), vectorised over trials x patients.

Per trial: enrol eligible patients into each arm; active patients get individual PK (``clinical_sim.pk``),
steady-state average concentration drives an Emax efficacy response, steady-state Cmax (and the compound's
predicted toxicity risk) drive a logistic adverse-event model; patients drop out at random and more often
after an AE; completers are analysed with Welch's t-test at the design's alpha. A trial succeeds when the
efficacy test is significant in favour of the active arm AND the active-arm AE rate is at most
``safety.max_ae_rate``. P(success) over trials comes with a Wilson 95% interval.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from clinical_sim import pk as pkm
from clinical_sim.admet_link import PKTypical
from clinical_sim.design import TrialDesign
from clinical_sim.population import sample_patients

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SimulationResult:
    """Outcome of a Monte Carlo run."""

    p_success: float
    ci_low: float
    ci_high: float
    trials: pd.DataFrame
    """One row per simulated trial."""
    patients: pd.DataFrame
    """Active-arm patients of the first few trials (exposure, response, AE) for plots."""
    summary: dict


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def emax_effect(conc, emax, ec50, hill):
    """Emax model: emax * C^h / (EC50^h + C^h)."""
    c = np.power(np.maximum(conc, 0.0), hill)
    return emax * c / (ec50 ** hill + c)


def ae_logit(cmax, tox_risk, base, slope, cmax_ref, tox_weight):
    """Adverse-event log-odds: base + slope * (1 + tox_weight*tox_risk) * Cmax/Cmax_ref (placebo: base)."""
    return base + slope * (1.0 + tox_weight * tox_risk) * np.asarray(cmax, dtype=float) / cmax_ref


def _masked_mean_var(y: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = keep.sum(axis=1).astype(float)
    s = np.where(keep, y, 0.0).sum(axis=1)
    mean = s / np.maximum(n, 1)
    dev = np.where(keep, y - mean[:, None], 0.0)
    var = (dev ** 2).sum(axis=1) / np.maximum(n - 1, 1)
    return mean, var, n


def welch_p_value(mean_a, var_a, n_a, mean_b, var_b, n_b, test: str = "one-sided"):
    """Vectorised Welch t-test of A > B (one-sided) or A != B (two-sided); returns (t, p)."""
    se2_a, se2_b = var_a / np.maximum(n_a, 1), var_b / np.maximum(n_b, 1)
    se = np.sqrt(se2_a + se2_b)
    t = np.where(se > 0, (mean_a - mean_b) / np.where(se > 0, se, 1), 0.0)
    df = (se2_a + se2_b) ** 2 / np.maximum(
        se2_a ** 2 / np.maximum(n_a - 1, 1) + se2_b ** 2 / np.maximum(n_b - 1, 1), 1e-300)
    p = stats.t.sf(t, df) if test == "one-sided" else 2 * stats.t.sf(np.abs(t), df)
    p = np.where((n_a < 2) | (n_b < 2), 1.0, p)
    return t, p


def simulate_trials(design: TrialDesign, typical: PKTypical, n_trials: int | None = None,
                    seed: int | None = None, keep_patient_trials: int = 5) -> SimulationResult:
    """Run ``n_trials`` virtual trials of ``design`` for a compound with PK ``typical``."""
    T = int(n_trials or design.trial.n_trials)
    N = design.trial.n_per_arm
    rng = np.random.default_rng(design.trial.seed if seed is None else seed)
    dose, tau = design.dosing.dose_mg, design.dosing.interval_h
    eff, saf, drop = design.efficacy, design.safety, design.dropout

    active = sample_patients(design.population, design.eligibility, T, N, rng)
    # the placebo arm's covariates are not used by the response model; they are still drawn so the
    # random stream, and so every seeded result, stays what it was
    sample_patients(design.population, design.eligibility, T, N, rng)
    ind = pkm.individual_pk(typical, active.weight, active.crcl, active.hepatic, design.pk.iiv(), rng)
    auc = pkm.auc(dose, ind.cl, ind.f)
    cavg = auc / tau
    cmax = pkm.cmax_ss(dose, tau, ind.ka, ind.cl, ind.v, ind.f)

    y_active = eff.e0 + emax_effect(cavg, eff.emax, eff.ec50_mg_l, eff.hill) + rng.normal(0, eff.sd, (T, N))
    y_placebo = eff.e0 + rng.normal(0, eff.sd, (T, N))

    logit_a = ae_logit(cmax, typical.tox_risk, saf.ae_base_logit, saf.ae_slope, saf.ae_cmax_ref_mg_l,
                       saf.ae_tox_weight)
    ae_a = rng.random((T, N)) < 1.0 / (1.0 + np.exp(-logit_a))
    ae_p = rng.random((T, N)) < 1.0 / (1.0 + np.exp(-saf.ae_base_logit))

    def completers(ae: np.ndarray) -> np.ndarray:
        p_drop = np.clip(drop.rate + drop.after_ae * ae, 0.0, 1.0)
        return rng.random((T, N)) >= p_drop

    keep_a, keep_p = completers(ae_a), completers(ae_p)
    mean_a, var_a, n_a = _masked_mean_var(y_active, keep_a)
    mean_p, var_p, n_p = _masked_mean_var(y_placebo, keep_p)
    t, p = welch_p_value(mean_a, var_a, n_a, mean_p, var_p, n_p, design.trial.test)
    significant = (p < design.trial.alpha) & (mean_a > mean_p)
    ae_rate_a, ae_rate_p = ae_a.mean(axis=1), ae_p.mean(axis=1)
    safe = ae_rate_a <= saf.max_ae_rate
    success = significant & safe

    trials = pd.DataFrame({
        "trial": np.arange(T), "n_active": N, "n_placebo": N,
        "completed_active": n_a.astype(int), "completed_placebo": n_p.astype(int),
        "mean_active": mean_a, "mean_placebo": mean_p, "difference": mean_a - mean_p,
        "t": t, "p_value": p, "significant": significant,
        "ae_rate_active": ae_rate_a, "ae_rate_placebo": ae_rate_p, "safe": safe, "success": success,
        "median_cavg_mg_l": np.median(cavg, axis=1), "median_cmax_mg_l": np.median(cmax, axis=1),
        "screen_fail_rate": active.screen_fail_rate,
    })
    k = min(keep_patient_trials, T)
    patients = pd.DataFrame({
        "trial": np.repeat(np.arange(k), N), "age": active.age[:k].ravel(), "weight": active.weight[:k].ravel(),
        "crcl": active.crcl[:k].ravel(), "cl_l_h": ind.cl[:k].ravel(), "v_l": ind.v[:k].ravel(),
        "ka_h": ind.ka[:k].ravel(), "auc_ss": auc[:k].ravel(), "cavg_ss": cavg[:k].ravel(),
        "cmax_ss": cmax[:k].ravel(), "response": y_active[:k].ravel(), "ae": ae_a[:k].ravel(),
        "completed": keep_a[:k].ravel(),
    })
    n_success = int(success.sum())
    lo, hi = wilson_interval(n_success, T)
    summary = {
        "p_success": n_success / T, "ci95": [lo, hi], "n_trials": T, "n_per_arm": N,
        "power_efficacy": float(significant.mean()), "p_safe": float(safe.mean()),
        "mean_ae_rate_active": float(ae_rate_a.mean()), "mean_ae_rate_placebo": float(ae_rate_p.mean()),
        "median_cavg_mg_l": float(np.median(cavg)), "median_cmax_mg_l": float(np.median(cmax)),
        "mean_effect": float(np.mean(mean_a - mean_p)), "screen_fail_rate": active.screen_fail_rate,
        "pk_typical": typical.as_dict(), "dose_mg": dose, "interval_h": tau,
    }
    log.debug("%d trials x %d per arm: P(success) %.3f [%.3f, %.3f]", T, N, n_success / T, lo, hi)
    return SimulationResult(n_success / T, lo, hi, trials, patients, summary)
