"""Aggregate replicate measurements: one row per compound (InChIKey) and endpoint.

Rules (also in the data cards):

*Regression*
- Exact (``=``) values present: the value is their **mean**, ``std`` their population standard
  deviation (0 for one value). Censored replicates of the same compound are then redundant and are
  not averaged in; when one contradicts the mean (``<b`` with mean > b, or ``>b`` with mean < b) the
  row is flagged ``conflict``.
- Only ``<`` bounds: the **tightest** (smallest) bound, relation ``<``; only ``>`` bounds: the largest,
  relation ``>``. ``std`` is NaN (no exact value).
- ``<`` and ``>`` bounds, no exact value: the direction with more replicates wins (ties: ``>``), with
  its tightest bound; ``conflict`` when the bounds are incompatible (largest ``>`` bound >= smallest
  ``<`` bound).

*Classification* (values 0/1)
- **Majority vote**; ``conflict`` when the labels disagree. A tie goes to the *unfavourable* class,
  the conservative choice for safety decisions: 0 when the catalog says higher is better (1 =
  bioavailable, 1 = clean in ToxCast), else 1 (1 = inhibitor, or direction unknown).
  ``std`` is the population std of the labels.

Every output row has ``n_replicates`` (rows aggregated, censored included). ``compound_id`` is made
consistent per InChIKey (the first id seen in the table); ``source`` joins the distinct sources with
``;``; ``split`` is the most frequent split among the replicates (ties: the first seen).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from pipelines.catalog import LONG_COLUMNS, catalog_column, load_catalog
from pipelines.errors import InputError

log = logging.getLogger(__name__)

AGGREGATED_COLUMNS: tuple[str, ...] = (*LONG_COLUMNS, "inchikey", "n_replicates", "std", "conflict")


def _catalog_meta() -> tuple[dict[str, str], dict[str, str]]:
    try:
        catalog = load_catalog()
    except InputError:
        return {}, {}
    return catalog_column("task_type", catalog), catalog_column("better", catalog)


def infer_task_type(values: pd.Series, unit: str) -> str:
    """``classification`` for binary units or 0/1-only values, else ``regression``."""
    if unit == "binary":
        return "classification"
    distinct = set(pd.unique(values.dropna()))
    return "classification" if distinct and distinct <= {0.0, 1.0} else "regression"


def _regression(rel: np.ndarray, val: np.ndarray) -> tuple[str, float, float, bool]:
    exact = val[rel == "="]
    lower = val[rel == ">"]
    upper = val[rel == "<"]
    if exact.size:
        mean = float(exact.mean())
        conflict = bool((upper.size and (upper < mean).any()) or (lower.size and (lower > mean).any()))
        return "=", mean, float(exact.std()), conflict
    if not lower.size:
        return "<", float(upper.min()), np.nan, False
    if not upper.size:
        return ">", float(lower.max()), np.nan, False
    conflict = bool(lower.max() >= upper.min())
    if upper.size > lower.size:
        return "<", float(upper.min()), np.nan, conflict
    return ">", float(lower.max()), np.nan, conflict


def _classification(val: np.ndarray, better: str) -> tuple[str, float, float, bool]:
    labels = (val >= 0.5).astype(float)
    positives = labels.sum()
    negatives = labels.size - positives
    if positives != negatives:
        label = 1.0 if positives > negatives else 0.0
    else:
        label = 0.0 if better == "higher" else 1.0
    return "=", label, float(labels.std()), bool(0 < positives < labels.size)


def _mode_first(values: list[str]) -> str:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    top = max(counts.values())
    return next(v for v in values if counts[v] == top)


def aggregate_replicates(long_df: pd.DataFrame, task_types: dict[str, str] | None = None,
                         better: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per ``inchikey`` x ``endpoint`` (see the module docstring for the rules).

    ``long_df`` is a validated long table (``validate_long_table(...).accepted``). ``task_types`` and
    ``better`` (endpoint -> ``higher``/``lower``) default to the embedded catalog, then to inference.
    """
    needed = ["inchikey", "endpoint", "relation", "value"]
    missing = [c for c in needed if c not in long_df.columns]
    if missing:
        raise InputError(f"aggregate_replicates needs a validated long table; missing {missing}")
    catalog_types, catalog_better = _catalog_meta()
    types = {**catalog_types, **(task_types or {})}
    direction = {**catalog_better, **(better or {})}
    table = long_df.reset_index(drop=True).copy()
    for column in LONG_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    table["value"] = table["value"].astype(float)
    first_id = table.groupby("inchikey", sort=False)["compound_id"].first()
    for endpoint in table["endpoint"].unique():
        if endpoint not in types:
            part = table[table["endpoint"] == endpoint]
            types[endpoint] = infer_task_type(part["value"], str(part["unit"].iloc[0]))
    sizes = table.groupby(["inchikey", "endpoint"], sort=False)["value"].transform("size")
    single = table[sizes == 1]
    out_single = single.loc[:, ["inchikey", "compound_id", "smiles", "endpoint", "relation", "value", "unit",
                                "source", "split"]].copy()
    out_single["n_replicates"] = 1
    out_single["std"] = np.where(out_single["relation"] == "=", 0.0, np.nan)
    out_single["conflict"] = False
    is_class = out_single["endpoint"].map(types).eq("classification")
    out_single.loc[is_class, "value"] = (out_single.loc[is_class, "value"] >= 0.5).astype(float)
    out_single.loc[is_class, "relation"] = "="
    out_single.loc[is_class, "std"] = 0.0
    records = []
    multi = table[sizes > 1]
    for (inchikey, endpoint), group in multi.groupby(["inchikey", "endpoint"], sort=False):
        rel = group["relation"].to_numpy(dtype=object)
        val = group["value"].to_numpy(dtype=float)
        if types[endpoint] == "classification":
            relation, value, std, conflict = _classification(val, direction.get(endpoint, ""))
        else:
            relation, value, std, conflict = _regression(rel, val)
        sources = sorted({s for s in group["source"].astype(str) if s})
        records.append({
            "inchikey": inchikey, "compound_id": group["compound_id"].iloc[0],
            "smiles": group["smiles"].iloc[0], "endpoint": endpoint, "relation": relation, "value": value,
            "unit": group["unit"].iloc[0], "source": ";".join(sources),
            "split": _mode_first(group["split"].astype(str).tolist()), "n_replicates": len(group),
            "std": std, "conflict": conflict,
        })
    out = pd.concat([out_single, pd.DataFrame.from_records(records, columns=out_single.columns)],
                    ignore_index=True) if records else out_single.reset_index(drop=True)
    out["compound_id"] = out["inchikey"].map(first_id)
    out["n_replicates"] = out["n_replicates"].astype(int)
    out["conflict"] = out["conflict"].astype(bool)
    n_conflict = int(out["conflict"].sum())
    log.info("aggregated %d rows into %d compound x endpoint values (%d with replicates, %d conflicts)",
             len(table), len(out), len(records), n_conflict)
    return out.loc[:, list(AGGREGATED_COLUMNS)].sort_values(["endpoint", "inchikey"], kind="stable"
                                                            ).reset_index(drop=True)
