"""The project long format and wide tables -> ``row, input`` + ``LONG_COLUMNS`` (pure DataFrame code).

*Long*: columns ``smiles``, ``endpoint``, ``value`` are required; ``compound_id``, ``relation``,
``unit``, ``source``, ``split`` are optional (filled with ``""``; an empty relation means ``=``).

*Wide*: one SMILES column, optionally an id column (``compound_id``, ``id``, ``name``, ...) and a
``split`` column; every other column is an endpoint when at least one of its cells holds a number
(censored cells such as ``<5`` or ``>100`` count and keep their relation). Empty cells are "not
measured" and produce no row; a record without any measured endpoint still produces one row (with an
empty endpoint) so that it is accounted for (validation rejects it as ``missing_endpoint``), not lost.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from pipelines.catalog import LONG_COLUMNS
from pipelines.errors import InputError

log = logging.getLogger(__name__)

ID_COLUMN_NAMES: tuple[str, ...] = (
    "compound_id", "chemical id", "id", "mol_id", "molecule_id", "compound", "name", "drug_id",
    "chembl_id", "cid",
)
_NUMBER = re.compile(r"^\s*(<=|>=|<|>|=|~)?\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def _text_column(table: pd.DataFrame, name: str) -> np.ndarray:
    if name not in table.columns:
        return np.full(len(table), "", dtype=object)
    return table[name].astype("string").fillna("").str.strip().astype(object).to_numpy()


def _rows(table: pd.DataFrame) -> np.ndarray:
    return table["row"].to_numpy() if "row" in table.columns else np.arange(len(table))


def long_rows_from_long_format(table: pd.DataFrame, default_source: str = "input") -> pd.DataFrame:
    """The project long format, with missing optional columns filled."""
    missing = [c for c in ("smiles", "endpoint", "value") if c not in table.columns]
    if missing:
        raise InputError(f"long table is missing required column(s) {missing}; "
                         f"the long format is {list(LONG_COLUMNS)}")
    unknown = [c for c in table.columns if c not in LONG_COLUMNS and c not in ("row", "input", "test",
                                                                               "inchikey")]
    if unknown:
        log.warning("long table: ignoring unknown column(s) %s", unknown)
    out = pd.DataFrame({"row": _rows(table)})
    for column in LONG_COLUMNS:
        if column == "value":
            out[column] = table["value"].to_numpy()
        else:
            out[column] = _text_column(table, column)
    if "source" not in table.columns:
        out["source"] = default_source
    out["input"] = out["smiles"]
    return out.loc[:, ["row", "input", *LONG_COLUMNS]]


def _is_measurement(value: object) -> bool:
    if isinstance(value, (int, float, np.integer, np.floating)):
        return bool(np.isfinite(value))
    return isinstance(value, str) and bool(_NUMBER.match(value))


def _is_empty(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def wide_to_long(table: pd.DataFrame, smiles_column: str, default_source: str = "input") -> pd.DataFrame:
    """A wide table (SMILES + endpoint columns) -> long rows; see the module docstring."""
    lowered = {c.lower(): c for c in table.columns if c != smiles_column}
    id_column = next((lowered[n] for n in ID_COLUMN_NAMES if n in lowered), None)
    split_column = lowered.get("split")
    reserved = {smiles_column, id_column, split_column, "row"}
    candidates = [c for c in table.columns if c not in reserved]
    endpoints = [c for c in candidates if table[c].map(_is_measurement).any()]
    text_only = [c for c in candidates if c not in endpoints]
    if text_only:
        raise InputError(
            f"wide table: column(s) {text_only} hold no numeric values, so they are not endpoints, and "
            f"they are not a known id/split column (id names: {list(ID_COLUMN_NAMES)})"
        )
    if not endpoints:
        raise InputError(f"wide table has no endpoint columns (numeric columns besides "
                         f"{smiles_column!r}); columns are {list(table.columns)}")
    rows = _rows(table)
    smiles = _text_column(table, smiles_column)
    ids = _text_column(table, id_column) if id_column else np.full(len(table), "", dtype=object)
    splits = _text_column(table, split_column) if split_column else np.full(len(table), "", dtype=object)
    records = []
    for i in range(len(table)):
        measured = False
        for endpoint in endpoints:
            value = table[endpoint].iat[i]
            if _is_empty(value):
                continue
            measured = True
            records.append((rows[i], smiles[i], ids[i], smiles[i], endpoint, "", value, "",
                            default_source, splits[i]))
        if not measured:
            records.append((rows[i], smiles[i], ids[i], smiles[i], "", "", np.nan, "", default_source,
                            splits[i]))
    return pd.DataFrame.from_records(records, columns=["row", "input", *LONG_COLUMNS])
