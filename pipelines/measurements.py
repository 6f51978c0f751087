"""Parse one measurement (relation + value) and check units per endpoint.

Relations: ``=`` (also empty, ``==``, ``~`` and the quoted ``"="`` some exports write), ``<``, ``>``;
``<=`` is read as ``<`` and ``>=`` as ``>`` (a censored bound either way). A value cell may carry its own
relation (``"<5"``, ``">=100"``). Qualitative results written in the relation or value column (the
K-MELLODDY sample writes ``Non-Toxic`` in ``Measurement_Relation`` with an empty value) become binary
values: ``QUALITATIVE`` maps the word to 0 or 1 with unit ``binary``.
"""

from __future__ import annotations

import math
import re

import pandas as pd

from pipelines.standardize import RejectReason

RELATIONS: dict[str, str] = {
    "": "=", "=": "=", "==": "=", "~": "=", '"="': "=", "'='": "=",
    "<": "<", "<=": "<", "=<": "<", "≤": "<",
    ">": ">", ">=": ">", "=>": ">", "≥": ">",
}
QUALITATIVE: dict[str, float] = {
    "non-toxic": 0.0, "nontoxic": 0.0, "non toxic": 0.0, "negative": 0.0, "inactive": 0.0,
    "non-inhibitor": 0.0, "no": 0.0, "false": 0.0,
    "toxic": 1.0, "positive": 1.0, "active": 1.0, "inhibitor": 1.0, "yes": 1.0, "true": 1.0,
}
_VALUE = re.compile(r"^\s*(<=|>=|=<|=>|<|>|=|~|≤|≥)?\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def _clean(text: object) -> str:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    return str(text).strip()


def parse_measurement(relation: object, value: object
                      ) -> tuple[str, float, str | None, RejectReason | None]:
    """``(relation, value, unit_override, None)`` or ``("", nan, None, reason)``. Never raises."""
    rel_text = _clean(relation)
    qualitative = QUALITATIVE.get(rel_text.lower())
    if qualitative is not None and not _clean(value):
        return "=", qualitative, "binary", None
    rel = RELATIONS.get(rel_text.replace(" ", ""))
    if rel is None:
        return "", math.nan, None, RejectReason.BAD_RELATION
    if isinstance(value, bool):
        return rel, float(value), None, None
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = _clean(value)
        word = QUALITATIVE.get(text.lower())
        if word is not None and rel == "=":
            return "=", word, "binary", None
        match = _VALUE.match(text)
        if match is None:
            return "", math.nan, None, RejectReason.BAD_VALUE
        inline = RELATIONS[match.group(1) or ""]
        if inline != "=":
            if rel not in ("=", inline):
                return "", math.nan, None, RejectReason.BAD_RELATION
            rel = inline
        number = float(match.group(2))
    if not math.isfinite(number):
        return "", math.nan, None, RejectReason.BAD_VALUE
    return rel, number, None, None


def check_units(endpoints: pd.Series, units: pd.Series, expected: dict[str, str]) -> list[RejectReason | None]:
    """Per row: None when the unit fits the endpoint, else ``unknown_unit`` / ``unit_mismatch``.

    Endpoints in ``expected`` (the catalog's) must use that unit (an empty unit is taken to be it).
    Other endpoints must be consistent: any row whose (non-empty) unit differs from the endpoint's
    majority unit is a ``unit_mismatch`` (ties broken alphabetically, so the result is reproducible).
    """
    frame = pd.DataFrame({"endpoint": endpoints.to_numpy(), "unit": units.to_numpy()})
    majority: dict[str, str] = {}
    given = frame[frame["unit"] != ""]
    for endpoint, group in given.groupby("endpoint", sort=False):
        if endpoint in expected:
            continue
        counts = group["unit"].value_counts()
        top = counts.max()
        majority[endpoint] = sorted(counts[counts == top].index)[0]
    reasons: list[RejectReason | None] = []
    for endpoint, unit in zip(frame["endpoint"], frame["unit"], strict=True):
        if not unit:
            reasons.append(None)
        elif endpoint in expected:
            reasons.append(None if unit == expected[endpoint] else RejectReason.UNKNOWN_UNIT)
        else:
            reasons.append(None if unit == majority.get(endpoint, unit) else RejectReason.UNIT_MISMATCH)
    return reasons


# ----------------------------------------------------------------------------- unit conversion
# Written out rather than taken from a units library (pint is not a dependency, and none knows
# these): the catalog's canonical units mix log scales, "% bound" vs "% unbound" and assay
# conventions (10-6 cm/s), which are domain rules, not dimensional analysis. Each entry is
# (canonical unit, given unit) -> (function, increasing?). A decreasing conversion flips a censored
# relation (``<`` becomes ``>``). A (canonical, given) pair not listed is not convertible: the row
# is rejected ``unknown_unit``, never merged under another unit.
def _log10(scale: float = 1.0):
    return lambda x: math.log10(x * scale) if x * scale > 0 else math.nan


def _neg_log10(scale: float = 1.0):
    return lambda x: -math.log10(x * scale) if x * scale > 0 else math.nan


def _linear(scale: float = 1.0, offset: float = 0.0):
    return lambda x: x * scale + offset


_SAME = (_linear(), True)
UNIT_SYNONYMS: dict[str, str] = {
    "%": "%", "percent": "%", "hr": "h", "hour": "h", "hours": "h", "hrs": "h", "minutes": "min",
    "l/kg": "L/kg", "ml/kg": "mL/kg", "ug/ml": "ug/mL", "µg/ml": "ug/mL", "μg/ml": "ug/mL", "mg/l": "ug/mL",
    "ml/min/kg": "mL/min/kg", "l/h/kg": "L/h/kg", "l/hr/kg": "L/h/kg", "um": "uM", "µm": "uM", "mm": "mM",
    "m": "M", "mol/l": "mol/L", "cm/s": "cm/s", "10-6 cm/s": "1e-6 cm/s", "10^-6 cm/s": "1e-6 cm/s",
    "1e-6 cm/s": "1e-6 cm/s", "nm/s": "nm/s", "ratio": "ratio", "-": "", "mol/kg": "mol/kg",
    "ul/min/mg": "uL/min/mg", "ml/min/g": "uL/min/mg", "ul/min/10^6 cells": "uL/min/10^6 cells",
    "ul/min/million cells": "uL/min/10^6 cells", "% bound": "% bound", "% unbound": "% unbound",
    "fraction unbound": "fraction unbound", "fu": "fraction unbound", "fraction bound": "fraction bound",
    "logd": "logD7.4", "logd7.4": "logD7.4", "binary": "binary",
}
CONVERSIONS: dict[tuple[str, str], tuple] = {
    ("log10(mL/min/kg)", "mL/min/kg"): (_log10(), True),
    ("log10(mL/min/kg)", "L/h/kg"): (_log10(1000 / 60), True),
    ("log10(ratio)", "ratio"): (_log10(), True),
    ("log10(ratio)", ""): (_log10(), True),
    ("log10(ug/mL)", "ug/mL"): (_log10(), True),
    ("log10(% unbound)", "% unbound"): (_log10(), True),
    ("log10(% unbound)", "fraction unbound"): (_log10(100.0), True),
    ("log10(% unbound)", "% bound"): (lambda x: _log10()(100.0 - x), False),
    ("% bound", "%"): _SAME,
    ("% bound", "% unbound"): (_linear(-1.0, 100.0), False),
    ("% bound", "fraction bound"): (_linear(100.0), True),
    ("% bound", "fraction unbound"): (_linear(-100.0, 100.0), False),
    ("log10(cm/s)", "cm/s"): (_log10(), True),
    ("log10(cm/s)", "1e-6 cm/s"): (_log10(1e-6), True),
    ("log10(cm/s)", "nm/s"): (_log10(1e-7), True),
    ("L/kg", "mL/kg"): (_linear(1e-3), True),
    ("h", "min"): (_linear(1 / 60), True),
    ("log10(mol/L)", "mol/L"): (_log10(), True),
    ("log10(mol/L)", "M"): (_log10(), True),
    ("log10(mol/L)", "mM"): (_log10(1e-3), True),
    ("log10(mol/L)", "uM"): (_log10(1e-6), True),
    ("log10(1/(mol/kg))", "mol/kg"): (_neg_log10(), False),
    ("binary", ""): _SAME,
}


def canonical_unit_name(unit: str) -> str:
    """A unit's spelling as the conversion table knows it (case and common synonyms folded)."""
    text = _clean(unit)
    return UNIT_SYNONYMS.get(text.lower(), text)


def convert_value(relation: str, value: float, unit: str, canonical: str
                  ) -> tuple[str, float, RejectReason | None]:
    """``value`` in ``unit`` -> the ``canonical`` unit: ``(relation, value, None)``, or a reason.

    The same unit (or an empty one) passes unchanged; a decreasing conversion flips ``<``/``>``;
    an unknown pair is ``unknown_unit``; a value outside the conversion's domain (log of <= 0) is
    ``bad_value``."""
    given = canonical_unit_name(unit)
    if not given or given == canonical or _clean(unit) == canonical:
        return relation, value, None
    rule = CONVERSIONS.get((canonical, given))
    if rule is None:
        return relation, value, RejectReason.UNKNOWN_UNIT
    func, increasing = rule
    converted = func(value)
    if not math.isfinite(converted):
        return relation, value, RejectReason.BAD_VALUE
    if not increasing:
        relation = {"<": ">", ">": "<"}.get(relation, relation)
    return relation, float(converted), None
