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
