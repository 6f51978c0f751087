"""Published base rates of phase transition, so the clinical module always has a prior.

Source: Thomas D, Chancellor D, Micklus A, LaFever S, Hay M, Chaudhuri S, Bowden R, Lo AW.
*Clinical Development Success Rates and Contributing Factors 2011-2020.* BIO, Informa Pharma Intelligence,
QLS Advisors; February 2021. (Phase transitions of ~9,700 development programmes, 2011-2020.)

Published figures used here:

* all indications: Phase I->II 52.0%, II->III 28.9%, III->NDA/BLA 57.8%, NDA/BLA->approval 90.6%
  (likelihood of approval from Phase I, LOA, 7.9%);
* oncology: 48.8%, 24.6%, 47.7%, 92.0% (LOA 5.3%);
* LOA from Phase I for other groups named in the report's summary: hematology 23.9%, urology 3.6%,
  cardiovascular 4.8%, rare diseases 17.0%, chronic high-prevalence diseases 5.9%.

For a group where only the LOA is given here, the per-phase rates are **derived**, not published: the
all-indication rates shifted by one common amount on the logit scale so that their product equals the
group's LOA (``derived=True`` in the output). Areas not in the table fall back to all indications.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.errors import InputError

CITATION = (
    "Thomas D, Chancellor D, Micklus A, et al. Clinical Development Success Rates and Contributing "
    "Factors 2011-2020. BIO / Informa Pharma Intelligence / QLS Advisors, February 2021."
)
PHASES: tuple[str, ...] = ("phase1", "phase2", "phase3", "nda")
_PHASE_ALIASES = {
    "1": "phase1", "i": "phase1", "phase1": "phase1", "phase i": "phase1", "phase 1": "phase1",
    "2": "phase2", "ii": "phase2", "phase2": "phase2", "phase ii": "phase2", "phase 2": "phase2",
    "3": "phase3", "iii": "phase3", "phase3": "phase3", "phase iii": "phase3", "phase 3": "phase3",
    "nda": "nda", "bla": "nda", "nda/bla": "nda", "filing": "nda", "4": "nda",
}

#: Published per-phase transition rates (phase1, phase2, phase3, nda).
PUBLISHED_RATES: dict[str, tuple[float, float, float, float]] = {
    "all": (0.520, 0.289, 0.578, 0.906),
    "oncology": (0.488, 0.246, 0.477, 0.920),
}
#: Published likelihood of approval from Phase I for groups without per-phase rates here.
PUBLISHED_LOA: dict[str, float] = {
    "hematology": 0.239, "urology": 0.036, "cardiovascular": 0.048, "rare_disease": 0.170,
    "chronic_high_prevalence": 0.059,
}


@dataclass(slots=True)
class PhasePrior:
    """Base rate of one phase in one therapeutic area."""

    area: str
    phase: str
    p_transition: float
    """Probability of moving to the next phase."""
    loa: float
    """Likelihood of approval from the start of this phase."""
    derived: bool
    """True when per-phase rates were derived from a published LOA (see module docstring)."""
    source: str = CITATION


def _logit(p):
    return np.log(p / (1 - p))


def _derived_rates(loa: float) -> tuple[float, ...]:
    base = np.array(PUBLISHED_RATES["all"])
    lo, hi = -10.0, 10.0
    for _ in range(100):
        shift = (lo + hi) / 2
        rates = 1 / (1 + np.exp(-(_logit(base) + shift)))
        if np.prod(rates) < loa:
            lo = shift
        else:
            hi = shift
    return tuple(float(r) for r in rates)


def area_rates(area: str) -> tuple[tuple[float, ...], bool, str]:
    """(per-phase rates, derived?, resolved area) for a therapeutic area; unknown areas -> 'all'."""
    key = area.strip().lower().replace(" ", "_").replace("-", "_")
    if key in PUBLISHED_RATES:
        return PUBLISHED_RATES[key], False, key
    if key in PUBLISHED_LOA:
        return _derived_rates(PUBLISHED_LOA[key]), True, key
    return PUBLISHED_RATES["all"], False, "all"


def known_areas() -> list[str]:
    return sorted(set(PUBLISHED_RATES) | set(PUBLISHED_LOA))


def phase_prior(phase: str | float, area: str = "all") -> PhasePrior:
    """Base rate of passing ``phase`` ('1', 'II', 'phase3', 'nda', 1.5 -> phase 1) in ``area``."""
    if isinstance(phase, (int, float)) and not isinstance(phase, bool):
        phase = str(int(np.floor(phase))) if phase >= 1 else "1"
    key = _PHASE_ALIASES.get(str(phase).strip().lower())
    if key is None:
        raise InputError(f"unknown phase {phase!r}; use 1, 2, 3 or nda")
    rates, derived, resolved = area_rates(area)
    i = PHASES.index(key)
    return PhasePrior(resolved, key, float(rates[i]), float(np.prod(rates[i:])), derived)


def prior_table(area: str = "all") -> list[PhasePrior]:
    """All phases of one area."""
    return [phase_prior(p, area) for p in PHASES]
