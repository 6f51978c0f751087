"""Replicate aggregation: known answers for each stated rule."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from pipelines.aggregate import aggregate_replicates
from pipelines.catalog import load_embedded
from pipelines.validate import validate_long_table


def _long(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["inchikey", "endpoint", "relation", "value"])
    frame["compound_id"] = frame["inchikey"].str.lower()
    frame["smiles"] = "C"
    frame["unit"] = ""
    frame["source"] = "s"
    frame["split"] = "train"
    return frame


def _one(out: pd.DataFrame, key: str, endpoint: str) -> dict:
    return out[(out["inchikey"] == key) & (out["endpoint"] == endpoint)].iloc[0].to_dict()


def test_regression_mean_std_count_and_censoring_rules():
    out = aggregate_replicates(_long([
        ("A", "logS", "=", 1.0), ("A", "logS", "=", 3.0),                # mean 2, std 1
        ("B", "logS", "=", 1.0), ("B", "logS", "<", 5.0),                # bound consistent
        ("C", "logS", "=", 1.0), ("C", "logS", ">", 5.0),                # bound contradicts: conflict
        ("D", "logS", "<", 3.0), ("D", "logS", "<", 2.0),                # tightest upper bound
        ("E", "logS", ">", 3.0), ("E", "logS", ">", 4.0),                # tightest lower bound
        ("F", "logS", "<", 2.0), ("F", "logS", ">", 3.0), ("F", "logS", ">", 1.0),  # > wins 2:1, conflict
        ("G", "logS", "=", 7.5),
    ]), task_types={"logS": "regression"})
    a = _one(out, "A", "logS")
    assert (a["relation"], a["value"], a["std"], a["n_replicates"], a["conflict"]) == ("=", 2.0, 1.0, 2, False)
    b = _one(out, "B", "logS")
    assert (b["relation"], b["value"], b["conflict"]) == ("=", 1.0, False)
    assert _one(out, "C", "logS")["conflict"] is True
    d = _one(out, "D", "logS")
    assert (d["relation"], d["value"]) == ("<", 2.0) and math.isnan(d["std"])
    e = _one(out, "E", "logS")
    assert (e["relation"], e["value"]) == (">", 4.0)
    f = _one(out, "F", "logS")
    assert (f["relation"], f["value"], f["conflict"], f["n_replicates"]) == (">", 3.0, True, 3)
    g = _one(out, "G", "logS")
    assert (g["value"], g["n_replicates"], g["std"]) == (7.5, 1, 0.0)
    assert len(out) == 7


def test_classification_majority_and_conservative_ties():
    out = aggregate_replicates(_long([
        ("A", "tox", "=", 1), ("A", "tox", "=", 1), ("A", "tox", "=", 0),   # majority 1, conflict
        ("B", "tox", "=", 1), ("B", "tox", "=", 0),                          # tie, 1 = bad -> 1
        ("B", "good", "=", 1), ("B", "good", "=", 0),                        # tie, 1 = good -> 0
        ("C", "good", "=", 0), ("C", "good", "=", 0),
    ]), task_types={"tox": "classification", "good": "classification"},
        better={"tox": "lower", "good": "higher"})
    a = _one(out, "A", "tox")
    assert (a["value"], a["conflict"], a["n_replicates"]) == (1.0, True, 3)
    assert _one(out, "B", "tox")["value"] == 1.0
    assert _one(out, "B", "good")["value"] == 0.0
    c = _one(out, "C", "good")
    assert (c["value"], c["conflict"]) == (0.0, False)


def test_embedded_catalog_directions_are_used():
    # toxcast_clean: 1 = clean (higher is better), so a 1/0 tie resolves to 0 (not clean)
    out = aggregate_replicates(_long([("A", "toxcast_clean", "=", 1), ("A", "toxcast_clean", "=", 0)]))
    assert _one(out, "A", "toxcast_clean")["value"] == 0.0


def test_real_slice_one_row_per_compound_and_endpoint():
    raw = load_embedded(["bbb", "bioavailability"])
    raw = pd.concat([raw.head(300), raw.tail(300)], ignore_index=True)
    valid = validate_long_table(raw).accepted
    out = aggregate_replicates(valid)
    assert not out.duplicated(["inchikey", "endpoint"]).any()
    assert out["n_replicates"].sum() == len(valid)
    assert set(out["value"]) <= {0.0, 1.0}
    # one compound id per InChIKey across endpoints
    assert out.groupby("inchikey")["compound_id"].nunique().max() == 1


def test_requires_validated_table():
    from pipelines.errors import InputError

    with pytest.raises(InputError, match="inchikey"):
        aggregate_replicates(pd.DataFrame({"smiles": ["C"], "endpoint": ["x"], "value": [1.0]}))
