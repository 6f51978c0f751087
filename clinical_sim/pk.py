"""One-compartment oral PK, analytic and vectorised, with log-normal IIV and covariates on clearance.

Units: dose mg, clearance L/h, volume L, time h, concentration mg/L. Every function broadcasts over
numpy arrays (e.g. shape (n_trials, n_patients)).

Single dose:  C(t) = F*D*ka / (V*(ka-ke)) * (exp(-ke t) - exp(-ka t)),  ke = CL/V
Steady state (dose every tau):  C(t) = F*D*ka / (V*(ka-ke)) * (exp(-ke t)/(1-exp(-ke tau)) - exp(-ka t)/(1-exp(-ka tau)))
AUC(0-inf) single dose = AUC(0-tau) at steady state = F*D/CL.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clinical_sim.admet_link import REFERENCE_WEIGHT_KG, PKTypical

#: Reference creatinine clearance (mL/min) at which the renal part of clearance is the typical one.
REFERENCE_CRCL_ML_MIN = 100.0
_EPS = 1e-9


def _ka_safe(ka, ke):
    """Nudge ka away from ke where they coincide (the formula's removable singularity)."""
    ka = np.asarray(ka, dtype=float)
    ke = np.asarray(ke, dtype=float)
    return np.where(np.abs(ka - ke) < 1e-6 * np.maximum(ke, _EPS), ka * (1 + 1e-4), ka)


def concentration_single(t, dose, ka, cl, v, f):
    """Plasma concentration after one oral dose at time ``t`` (h; 0 before the dose)."""
    t = np.asarray(t, dtype=float)
    ke = np.asarray(cl, dtype=float) / np.asarray(v, dtype=float)
    ka = _ka_safe(ka, ke)
    c = f * dose * ka / (v * (ka - ke)) * (np.exp(-ke * t) - np.exp(-ka * t))
    return np.where(t >= 0, c, 0.0)


def concentration_ss(t, dose, tau, ka, cl, v, f):
    """Steady-state concentration at time ``t`` (0 <= t < tau) after a dose, dosing every ``tau`` h."""
    ke = np.asarray(cl, dtype=float) / np.asarray(v, dtype=float)
    ka = _ka_safe(ka, ke)
    return f * dose * ka / (v * (ka - ke)) * (
        np.exp(-ke * t) / (1 - np.exp(-ke * tau)) - np.exp(-ka * t) / (1 - np.exp(-ka * tau))
    )


def tmax_single(ka, cl, v):
    """Time of the single-dose peak: ln(ka/ke) / (ka - ke)."""
    ke = np.asarray(cl, dtype=float) / np.asarray(v, dtype=float)
    ka = _ka_safe(ka, ke)
    return np.log(ka / ke) / (ka - ke)


def cmax_single(dose, ka, cl, v, f):
    """Analytic single-dose Cmax (concentration at :func:`tmax_single`)."""
    return concentration_single(tmax_single(ka, cl, v), dose, ka, cl, v, f)


def tmax_ss(tau, ka, cl, v):
    """Time after the dose of the steady-state peak."""
    ke = np.asarray(cl, dtype=float) / np.asarray(v, dtype=float)
    ka = _ka_safe(ka, ke)
    return np.log(ka * (1 - np.exp(-ke * tau)) / (ke * (1 - np.exp(-ka * tau)))) / (ka - ke)


def cmax_ss(dose, tau, ka, cl, v, f):
    """Analytic steady-state Cmax."""
    return concentration_ss(tmax_ss(tau, ka, cl, v), dose, tau, ka, cl, v, f)


def auc(dose, cl, f):
    """AUC(0-inf) of one dose = AUC over a dosing interval at steady state: F*D/CL (mg*h/L)."""
    return f * np.asarray(dose, dtype=float) / np.asarray(cl, dtype=float)


def cavg_ss(dose, tau, cl, f):
    """Average steady-state concentration F*D/(CL*tau)."""
    return auc(dose, cl, f) / tau


@dataclass(slots=True)
class IIV:
    """Between-patient variability (SD of log-normal random effects) and covariate exponents."""

    omega_cl: float = 0.3
    omega_v: float = 0.2
    omega_ka: float = 0.4
    cl_weight_exponent: float = 0.75
    v_weight_exponent: float = 1.0


@dataclass(slots=True)
class IndividualPK:
    """Per-patient PK parameters, arrays of one shape."""

    cl: np.ndarray
    v: np.ndarray
    ka: np.ndarray
    f: np.ndarray


def individual_pk(typical: PKTypical, weight, crcl, hepatic, iiv: IIV, rng: np.random.Generator) -> IndividualPK:
    """Patient parameters from typical values, covariates and log-normal random effects.

    ``CL_i = CL * (WT/70)^a * ((1-fr)*hepatic + fr*CrCL/100) * exp(eta_CL)``;
    ``V_i = V * (WT/70)^b * exp(eta_V)``; ``ka_i = ka * exp(eta_ka)``; F is the typical F.
    """
    weight = np.asarray(weight, dtype=float)
    shape = weight.shape
    wt = weight / REFERENCE_WEIGHT_KG
    organ = (1 - typical.fraction_renal) * np.asarray(hepatic, float) + \
        typical.fraction_renal * np.asarray(crcl, float) / REFERENCE_CRCL_ML_MIN

    def eta(omega: float) -> np.ndarray:
        return np.exp(rng.normal(0.0, omega, shape)) if omega > 0 else np.ones(shape)

    cl = typical.cl_l_h * wt ** iiv.cl_weight_exponent * organ * eta(iiv.omega_cl)
    v = typical.v_l * wt ** iiv.v_weight_exponent * eta(iiv.omega_v)
    ka = typical.ka_h * eta(iiv.omega_ka)
    return IndividualPK(cl=cl, v=v, ka=ka, f=np.full(shape, typical.f))
