"""Validation: every row accounted for, reasons per row, value/relation/unit checks."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.readers import read_long_table, read_molecules
from pipelines.validate import validate_long_table, validate_molecules

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _reasons(result) -> dict[int, str]:
    return dict(zip(result.rejected["row"], result.rejected["reason"], strict=True))


def test_bad_smiles_fixture_every_row_accounted():
    table = read_molecules(FIXTURES / "bad_smiles.csv")
    result = validate_molecules(table)
    assert len(result.accepted) + len(result.rejected) == len(table) == result.n_input
    assert set(result.accepted["row"]).isdisjoint(result.rejected["row"])
    ids = dict(zip(table["row"], table["compound_id"], strict=True))
    by_id = {ids[row]: reason for row, reason in _reasons(result).items()}
    assert by_id == {
        "empty": "empty", "spaces": "empty", "garbage": "unparsable", "garbage2": "unparsable",
        "unclosed": "unparsable", "valence": "valence_error", "valence2": "valence_error",
        "aromatic": "unparsable", "huge": "too_many_heavy_atoms", "metal": "metal_only",
        "metal2": "metal_only", "inorganic": "no_carbon", "inorganic2": "no_carbon",
    }
    accepted = result.accepted.set_index("compound_id")
    assert list(result.accepted.columns[:4]) == ["row", "input", "smiles", "inchikey"]
    assert accepted.loc["salt", "smiles"] == "CC(=O)O"
    assert accepted.loc["mixture", "smiles"] == "CCCCCCCCO"
    # the duplicate drawn differently is the same compound
    assert accepted.loc["dup-aspirin", "inchikey"] == accepted.loc["ok-aspirin", "inchikey"]


def test_sdf_unreadable_record_becomes_a_reject():
    table = read_molecules(FIXTURES / "molecules.sdf")
    result = validate_molecules(table)
    assert _reasons(result) == {2: "unparsable", 4: "valence_error"}
    assert "_reject" not in result.accepted.columns
    assert result.accepted.loc[result.accepted["name"] == "benzoate Na", "smiles"].item() == "O=C(O)c1ccccc1"


def test_long_table_values_relations_units():
    long = read_long_table(FIXTURES / "long_values.csv")
    result = validate_long_table(long)
    assert len(result.accepted) + len(result.rejected) == len(long)
    ids = dict(zip(long["row"], long["compound_id"], strict=True))
    by_id = {ids[row]: reason for row, reason in _reasons(result).items()}
    assert by_id == {
        "c7": "bad_value",         # text
        "c8": "bad_value",         # empty value
        "c9": "unknown_unit",      # uM is not the catalog unit of solubility
        "c10": "bad_relation",
        "c11": "missing_endpoint",
        "c12": "unparsable",
        "c15": "unit_mismatch",    # logD is not in the catalog: majority unit wins
        "c16": "bad_value",        # inf
    }
    acc = result.accepted.set_index("compound_id")
    assert acc.loc["c2", "unit"] == "log10(ug/mL)"  # empty unit filled from the catalog
    assert acc.loc["c4", "relation"] == "<" and acc.loc["c5", "relation"] == ">"  # <= and >= normalised
    assert acc.loc["c6", "relation"] == "="         # the quoted "=" some exports write
    assert acc.loc["c17", "relation"] == "<" and acc.loc["c17", "value"] == 4.5  # "<4.5" in the value cell
    assert acc.loc["c19", "unit"] == "binary"
    assert result.accepted["value"].dtype == float


def test_kmelloddy_qualitative_results_become_binary():
    result = validate_long_table(read_long_table(FIXTURES / "k_melloddy_sample.csv"))
    assert len(result.rejected) == 0
    ames = result.accepted[result.accepted["endpoint"].str.startswith("Ames")]
    assert len(ames) == 4 and set(ames["value"]) == {0.0} and set(ames["unit"]) == {"binary"}
    assert set(result.accepted["relation"]) == {"=", "<", ">"}


_VALID = ["CCO", "c1ccccc1O", "CC(=O)[O-].[Na+]", "CCN(CC)CC", "OC(=O)C1CCCCC1"]
_INVALID = ["", " ", "C1CC", "xyz", "[Pt]", "C(C)(C)(C)(C)C", "O", "c1cccc1", "C" * 400]
_cells = st.one_of(
    st.sampled_from(_VALID + _INVALID),
    st.text(alphabet="CNOc1()=#[]+-.@/\\ 0Hl", max_size=12),
    st.none(),
    st.floats(allow_nan=True),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_cells, max_size=25))
def test_property_molecules_accepted_plus_rejected_is_input(cells):
    result = validate_molecules(pd.DataFrame({"input": pd.Series(cells, dtype=object)}))
    assert len(result.accepted) + len(result.rejected) == len(cells)
    assert sorted([*result.accepted["row"], *result.rejected["row"]]) == list(range(len(cells)))
    assert result.accepted["inchikey"].map(lambda k: isinstance(k, str) and len(k) == 27).all()


_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6), st.none(),
                    st.sampled_from(["<5", ">=3", "1e3", "n/a"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_VALID + _INVALID), st.sampled_from(["solubility", "bbb", "X", ""]),
                          st.sampled_from(["", "=", "<", ">=", '"="', "~~", None]), _values,
                          st.sampled_from(["", "binary", "uM", "log10(ug/mL)"])), max_size=20))
def test_property_long_table_accepted_plus_rejected_is_input(rows):
    frame = pd.DataFrame(rows, columns=["smiles", "endpoint", "relation", "value", "unit"])
    result = validate_long_table(frame)
    assert len(result.accepted) + len(result.rejected) == len(frame)
    assert result.accepted["value"].map(lambda v: isinstance(v, float) and math.isfinite(v)).all()
    assert set(result.accepted["relation"]) <= {"=", "<", ">"}
