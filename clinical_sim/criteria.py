"""Eligibility-criteria text: split inclusion from exclusion, and simple count/length features."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_INCL_RE = re.compile(r"inclusion\s+criteria\s*:?", re.IGNORECASE)
_EXCL_RE = re.compile(r"exclusion\s+criteria\s*:?", re.IGNORECASE)
_BULLET_RE = re.compile(r"(?:^|\n)\s*(?:-|\*|•|\d+[.)])\s+")
_AGE_RE = re.compile(r"(\d{1,3})\s*(?:years?|yrs?)", re.IGNORECASE)

#: Names of the numeric features of :func:`criteria_numeric`, in order.
CRITERIA_FEATURES: tuple[str, ...] = (
    "crit_len_incl", "crit_len_excl", "crit_n_incl", "crit_n_excl", "crit_has_split",
    "crit_min_age", "crit_max_age", "crit_mentions_pregnan", "crit_mentions_ecog",
    "crit_mentions_measurable", "crit_mentions_prior_therapy", "crit_mentions_healthy",
    "crit_mentions_hiv", "crit_mentions_metasta",
)


@dataclass(slots=True)
class CriteriaParts:
    """Inclusion and exclusion text of one trial (either may be empty)."""

    inclusion: str
    """Text after 'Inclusion Criteria' up to 'Exclusion Criteria' (all text when no header is found)."""
    exclusion: str
    """Text after 'Exclusion Criteria'."""
    has_split: bool
    """Whether an inclusion or exclusion header was found."""


def split_criteria(text: object) -> CriteriaParts:
    """Split free eligibility text into inclusion and exclusion parts."""
    s = "" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text)
    incl = _INCL_RE.search(s)
    excl = _EXCL_RE.search(s)
    if excl and (not incl or excl.start() > incl.start()):
        start = incl.end() if incl else 0
        return CriteriaParts(s[start:excl.start()].strip(), s[excl.end():].strip(), True)
    if excl and incl:  # exclusion section written first
        return CriteriaParts(s[incl.end():].strip(), s[excl.end():incl.start()].strip(), True)
    if incl:
        return CriteriaParts(s[incl.end():].strip(), "", True)
    return CriteriaParts(s.strip(), "", False)


def _n_items(text: str) -> int:
    if not text:
        return 0
    bullets = len(_BULLET_RE.findall(text))
    return bullets if bullets else max(1, text.count(";") + 1)


def criteria_numeric(text: object) -> np.ndarray:
    """The :data:`CRITERIA_FEATURES` of one trial's criteria text (float64)."""
    parts = split_criteria(text)
    low = (parts.inclusion + " " + parts.exclusion).lower()
    ages = [int(a) for a in _AGE_RE.findall(parts.inclusion) if 0 < int(a) < 120]
    return np.array([
        len(parts.inclusion), len(parts.exclusion), _n_items(parts.inclusion), _n_items(parts.exclusion),
        float(parts.has_split),
        min(ages) if ages else np.nan, max(ages) if ages else np.nan,
        float("pregnan" in low), float("ecog" in low or "performance status" in low),
        float("measurable" in low), float("prior" in low and ("therapy" in low or "treatment" in low)),
        float("healthy" in low), float("hiv" in low), float("metasta" in low),
    ], dtype=np.float64)
