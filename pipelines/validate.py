"""Split rows into *accepted* (standardized) and *rejected* (with a reason); never lose one.

``len(accepted) + len(rejected) == len(input)`` holds for both functions, for any input.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.catalog import LONG_COLUMNS, EndpointCatalog, catalog_column, load_catalog
from pipelines.errors import InputError
from pipelines.measurements import check_units, convert_value, parse_measurement
from pipelines.standardize import DEFAULT_MAX_HEAVY_ATOMS, RejectReason, standardize_unique

log = logging.getLogger(__name__)

REJECTED_COLUMNS: tuple[str, ...] = ("row", "input", "reason")
#: Reject reason of a row whose endpoint the consortium catalog (and the partner's mapping file)
#: does not know: reported and skipped, never trained on under a guessed name.
UNMAPPED_ENDPOINT = "unmapped_endpoint"
_KNOWN_REASONS = frozenset(r.value for r in RejectReason)


@dataclass(slots=True)
class ValidationResult:
    """Accepted and rejected rows of one input."""

    accepted: pd.DataFrame
    """``row, input, smiles, inchikey`` + the other input columns (long tables: + ``LONG_COLUMNS``)."""
    rejected: pd.DataFrame
    """``row, input, reason`` (long tables add ``endpoint``)."""
    n_input: int = field(default=0)
    """Number of input rows (``len(accepted) + len(rejected)``)."""

    def reason_counts(self) -> dict[str, int]:
        """Rejects per reason, most frequent first."""
        return dict(Counter(self.rejected["reason"]).most_common())


def _with_row(df: pd.DataFrame) -> pd.DataFrame:
    if "row" in df.columns:
        return df.reset_index(drop=True)
    out = df.reset_index(drop=True)
    out.insert(0, "row", np.arange(len(out)))
    return out


def validate_molecules(df: pd.DataFrame, smiles_col: str = "input", tautomer: bool = False,
                       max_heavy_atoms: int = DEFAULT_MAX_HEAVY_ATOMS, progress=None,
                       n_jobs: int | None = None) -> ValidationResult:
    """Standardize every row's SMILES: accepted rows gain ``smiles`` and ``inchikey``.

    Distinct SMILES are standardized once; large inputs use ``n_jobs`` processes (None: all cores).

    A ``_reject`` column (set by the SDF reader for unreadable records) forces that reason.
    """
    if smiles_col not in df.columns:
        raise InputError(f"column {smiles_col!r} not found; columns are {list(df.columns)}")
    table = _with_row(df)
    if smiles_col != "input":
        table = table.rename(columns={"input": "input_orig"} if "input" in table.columns else {})
        table = table.rename(columns={smiles_col: "input"})
    others = [c for c in table.columns if c not in ("row", "input", "_reject")]
    clash = {c: f"{c}_input" for c in others if c in ("smiles", "inchikey", "reason")}
    table = table.rename(columns=clash)
    results = standardize_unique(table["input"].tolist(), tautomer, max_heavy_atoms, n_jobs=n_jobs,
                                 progress=progress)
    forced = table["_reject"].fillna("").astype(str).tolist() if "_reject" in table.columns else None
    reasons = []
    for i, result in enumerate(results):
        if forced is not None and forced[i] in _KNOWN_REASONS:
            reasons.append(forced[i])
        else:
            reasons.append(result.reason.value if result.reason is not None else "")
    reasons_arr = np.asarray(reasons, dtype=object)
    ok = reasons_arr == ""
    table = table.drop(columns=["_reject"], errors="ignore")
    accepted = table.loc[ok].copy()
    accepted.insert(2, "smiles", [r.smiles for r, good in zip(results, ok, strict=True) if good])
    accepted.insert(3, "inchikey", [r.inchikey for r, good in zip(results, ok, strict=True) if good])
    rejected = table.loc[~ok, ["row", "input"]].copy()
    rejected["reason"] = reasons_arr[~ok]
    log.info("validated %d rows: %d accepted, %d rejected", len(table), int(ok.sum()), int((~ok).sum()))
    return ValidationResult(accepted.reset_index(drop=True), rejected.reset_index(drop=True), len(table))


def _catalog_units() -> dict[str, str]:
    try:
        catalog = load_catalog()
    except InputError:
        return {}
    return catalog_column("unit", catalog)  # aliases (e.g. ``bbb``) get their endpoint's unit


def validate_long_table(long_df: pd.DataFrame, expected_units: dict[str, str] | None = None,
                        tautomer: bool = False, max_heavy_atoms: int = DEFAULT_MAX_HEAVY_ATOMS,
                        progress=None, n_jobs: int | None = None, consortium: EndpointCatalog | None = None,
                        endpoint_map: dict[str, str] | None = None) -> ValidationResult:
    """Validate a long table: molecules, endpoint names, relations, values and units.

    ``expected_units`` maps endpoint -> unit (default: the embedded catalog's units). Accepted rows:
    ``row, input, smiles, inchikey`` + the other ``LONG_COLUMNS`` with ``smiles`` standardized, ``relation`` one of
    ``= < >``, ``value`` float, ``unit`` filled where it was empty and is known, and ``compound_id``
    filled with the InChIKey where it was empty. Rejected rows: ``row, input, reason, endpoint``.
    The first failing check gives the reason (molecule, then endpoint, relation/value, unit).

    Values of a catalog endpoint in another unit are converted to the catalog unit where the rule is
    known (``pipelines.measurements.convert_value``; a decreasing conversion flips ``<``/``>``), else
    rejected ``unknown_unit``. With ``consortium`` (a node preparing its table for a consortium),
    endpoint names are resolved to the consortium catalog's (``endpoint_map`` first, then the catalog's
    names and aliases), an endpoint it does not know is rejected ``unmapped_endpoint``, only the
    catalog's units apply, and a classification value other than 0/1 is ``bad_value``.
    """
    missing = [c for c in ("smiles", "endpoint", "value") if c not in long_df.columns]
    if missing:
        raise InputError(f"long table lacks column(s) {missing}; expected {list(LONG_COLUMNS)}")
    table = _with_row(long_df)
    if "input" not in table.columns:
        table["input"] = table["smiles"]
    for column in LONG_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    if consortium is not None:
        expected = {name: e.unit for name, e in consortium.endpoints.items()}
        classification = {name for name, e in consortium.endpoints.items() if e.task_type == "classification"}
    else:
        expected = _catalog_units() if expected_units is None else dict(expected_units)
        classification = set()
    results = standardize_unique(table["input"].tolist(), tautomer, max_heavy_atoms, n_jobs=n_jobs,
                                 progress=progress)
    n = len(table)
    reasons: list[str] = [""] * n
    relations: list[str] = [""] * n
    values = np.full(n, np.nan)
    units = table["unit"].astype("string").fillna("").str.strip().astype(object).to_numpy().copy()
    endpoints = table["endpoint"].astype("string").fillna("").str.strip().astype(object).to_numpy().copy()
    for i, (result, rel, value) in enumerate(zip(results, table["relation"], table["value"], strict=True)):
        if result.reason is not None:
            reasons[i] = result.reason.value
            continue
        if not endpoints[i]:
            reasons[i] = RejectReason.MISSING_ENDPOINT.value
            continue
        if consortium is not None:
            target = consortium.resolve(endpoints[i], endpoint_map)
            if target is None:
                reasons[i] = UNMAPPED_ENDPOINT
                continue
            endpoints[i] = target
        relation, number, unit_override, reason = parse_measurement(rel, value)
        if reason is not None:
            reasons[i] = reason.value
            continue
        if unit_override is not None and not units[i]:
            units[i] = unit_override
        canonical = expected.get(endpoints[i])
        if canonical is not None and units[i] and units[i] != canonical:
            converted_rel, converted, unit_reason = convert_value(relation, number, units[i], canonical)
            if unit_reason is not None:
                reasons[i] = unit_reason.value
                continue
            relation, number, units[i] = converted_rel, converted, canonical
        if endpoints[i] in classification and number not in (0.0, 1.0):
            reasons[i] = RejectReason.BAD_VALUE.value
            continue
        relations[i], values[i] = relation, number
    unit_reasons = check_units(pd.Series(endpoints), pd.Series(units), expected)
    for i, unit_reason in enumerate(unit_reasons):
        if not reasons[i] and unit_reason is not None:
            reasons[i] = unit_reason.value
    reasons_arr = np.asarray(reasons, dtype=object)
    ok = reasons_arr == ""
    filled_units = [u or expected.get(e, "") for u, e in zip(units, endpoints, strict=True)]
    accepted = pd.DataFrame({
        "row": table["row"].to_numpy()[ok],
        "input": table["input"].to_numpy()[ok],
        "smiles": [r.smiles for r, good in zip(results, ok, strict=True) if good],
        "inchikey": [r.inchikey for r, good in zip(results, ok, strict=True) if good],
        "compound_id": table["compound_id"].astype("string").fillna("").astype(object).to_numpy()[ok],
        "endpoint": endpoints[ok],
        "relation": np.asarray(relations, dtype=object)[ok],
        "value": values[ok],
        "unit": np.asarray(filled_units, dtype=object)[ok],
        "source": table["source"].astype("string").fillna("").astype(object).to_numpy()[ok],
        "split": table["split"].astype("string").fillna("").astype(object).to_numpy()[ok],
    })
    no_id = accepted["compound_id"] == ""
    accepted.loc[no_id, "compound_id"] = accepted.loc[no_id, "inchikey"]
    rejected = pd.DataFrame({
        "row": table["row"].to_numpy()[~ok],
        "input": table["input"].to_numpy()[~ok],
        "reason": reasons_arr[~ok],
        "endpoint": endpoints[~ok],
    })
    log.info("validated %d measurements: %d accepted, %d rejected", n, int(ok.sum()), int((~ok).sum()))
    return ValidationResult(accepted, rejected, n)
