"""A partner node prepares its raw K-MELLODDY table with the consortium's one pipeline.

Known answers on ``tests/fixtures/k_melloddy_raw_partner.csv`` (9 rows, K-MELLODDY gist endpoint names):
a ``furlongs/fortnight`` row is rejected ``unknown_unit``, a text value ``bad_value``, an endpoint the
catalog does not know ``unmapped_endpoint``; the HCl salt and the parent of one compound merge into one
aggregated row; ``% unbound`` and ``10-6 cm/s`` are converted to the catalog's units with the censored
relation flipped where the conversion decreases; folds are the keyed scaffold hash.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.catalog import EndpointCatalog, read_endpoint_map
from pipelines.errors import InputError
from pipelines.measurements import convert_value
from pipelines.partner_data import NodeDataSettings, prepare_node_data, prepare_node_table
from pipelines.readers import read_long_table
from pipelines.split import keyed_fold, keyed_scaffold_folds, scaffold_of
from pipelines.validate import REJECTED_COLUMNS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
RAW = FIXTURES / "k_melloddy_raw_partner.csv"


@pytest.fixture(scope="module")
def prepared():
    return prepare_node_table(read_long_table(RAW), EndpointCatalog.embedded())


def test_every_row_is_accepted_or_rejected_with_its_reason(prepared):
    s = prepared.summary
    assert (s["n_input"], s["n_accepted"], s["n_rejected"]) == (9, 6, 3)
    rejected = prepared.rejected.set_index("row")
    assert rejected.loc[2, "reason"] == "unknown_unit"        # furlongs/fortnight: never merged
    assert rejected.loc[3, "reason"] == "bad_value"           # "see notes" counted, not dropped silently
    assert rejected.loc[6, "reason"] == "unmapped_endpoint"
    assert s["unmapped_endpoints"] == {"Metabolic stability I|Human|T1/2": 1}
    assert s["rejected_by_reason"] == {"unknown_unit": 1, "bad_value": 1, "unmapped_endpoint": 1}
    assert set(REJECTED_COLUMNS) <= set(prepared.rejected.columns)


def test_gist_names_map_to_catalog_endpoints_with_canonical_units(prepared):
    acc = prepared.accepted.set_index("compound_id")
    assert set(prepared.accepted["endpoint"]) == {"PPBR_AZ", "Caco2_Wang", "CYP3A4_Veith"}
    assert acc.loc["C5", "unit"] == "log10(cm/s)"
    assert acc.loc["C5", "value"] == pytest.approx(math.log10(20e-6))
    # "< 10 % unbound" is "> 90 % bound": the conversion decreases, so the relation flips
    assert (acc.loc["C4", "relation"], acc.loc["C4", "value"], acc.loc["C4", "unit"]) == (">", 90.0, "% bound")
    assert (acc.loc["C8", "relation"], acc.loc["C8", "value"]) == (">", 50.0)  # censored kept


def test_salt_and_parent_replicates_merge(prepared):
    rows = prepared.prepared
    ppbr = rows[(rows["endpoint"] == "PPBR_AZ") & (rows["relation"] == "=")]
    assert len(ppbr) == 1
    merged = ppbr.iloc[0]
    assert merged["n_replicates"] == 2 and merged["value"] == pytest.approx(25.0)
    assert merged["smiles"] == "CCN(CC)CCNC(=O)c1ccc(N)cc1"
    assert prepared.summary["n_replicates_merged"] == 1
    assert prepared.summary["n_prepared"] == 5 and prepared.summary["n_censored"] == 2


def test_mapping_file_brings_an_endpoint_in_and_converts_its_unit(tmp_path):
    catalog = EndpointCatalog.embedded()
    mapping_file = tmp_path / "map.csv"
    mapping_file.write_text("partner_endpoint,catalog_endpoint\nMetabolic stability I|Human|T1/2,Half_Life_Obach\n")
    mapping = read_endpoint_map(mapping_file, catalog)
    prep = prepare_node_table(read_long_table(RAW), catalog, mapping)
    half = prep.accepted[prep.accepted["endpoint"] == "Half_Life_Obach"].iloc[0]
    assert (half["value"], half["unit"]) == (pytest.approx(2.0), "h")   # 120 min
    assert prep.summary["unmapped_endpoints"] == {}
    bad = tmp_path / "bad.csv"
    bad.write_text("partner_endpoint,catalog_endpoint\nX,No_Such_Endpoint\n")
    with pytest.raises(InputError, match="not in the consortium catalog"):
        read_endpoint_map(bad, catalog)


def test_unit_conversions_known_answers():
    assert convert_value("=", 95.0, "% bound", "log10(% unbound)") == ("=", pytest.approx(math.log10(5.0)), None)
    assert convert_value("<", 0.5, "mol/kg", "log10(1/(mol/kg))")[:2] == (">", pytest.approx(math.log10(2.0)))
    assert convert_value("=", 3.0, "furlongs/fortnight", "% bound")[2].value == "unknown_unit"
    assert convert_value("=", -1.0, "mL/min/kg", "log10(mL/min/kg)")[2].value == "bad_value"
    assert convert_value("=", 7.0, "", "L/kg") == ("=", 7.0, None)


def test_keyed_folds_agree_across_partners_and_depend_on_the_secret():
    same_scaffold = ["c1ccccc1CCN", "c1ccccc1CCO", "Cc1ccccc1"]          # one benzene scaffold
    assert len({scaffold_of(s) for s in same_scaffold}) == 1
    a = keyed_scaffold_folds(same_scaffold, b"consortium-secret")
    b = keyed_scaffold_folds(same_scaffold[::-1], b"consortium-secret")  # another partner, other order
    assert len(set(a)) == 1 and set(a) == set(b)
    keys = [f"scaffold:{i}" for i in range(4000)]
    folds = np.array([keyed_fold(k, b"k1") for k in keys])
    shares = {f: float((folds == f).mean()) for f in ("train", "valid", "test")}
    assert shares["train"] == pytest.approx(0.8, abs=0.03) and shares["test"] == pytest.approx(0.1, abs=0.02)
    other = np.array([keyed_fold(k, b"k2") for k in keys])
    assert (folds != other).mean() > 0.2                                 # the secret matters


def test_prepare_node_data_writes_reports_and_reuses_them(tmp_path):
    out = tmp_path / "prepared"
    secret = tmp_path / "fold.key"
    secret.write_bytes(b"s3cret\n")
    prep = prepare_node_data(RAW, out, NodeDataSettings(fold_secret_path=secret))
    for name in ("accepted.csv", "rejected.csv", "prepared.csv", "summary.json"):
        assert (out / name).is_file()
    rejected = pd.read_csv(out / "rejected.csv")
    assert list(rejected.columns[:3]) == ["row", "input", "reason"]
    assert prep.summary["fold_secret"] == "consortium" and "s3cret" not in (out / "summary.json").read_text()
    again = prepare_node_data(RAW, out, NodeDataSettings(fold_secret_path=secret))
    assert again.summary["input_key"] == prep.summary["input_key"]
    pd.testing.assert_frame_equal(again.prepared[["inchikey", "endpoint", "fold"]].reset_index(drop=True),
                                  prep.prepared[["inchikey", "endpoint", "fold"]].reset_index(drop=True))


def test_node_check_cli(tmp_path):
    from flows.cli.consortium_cmd import node_app

    runner = CliRunner()
    out = tmp_path / "check"
    result = runner.invoke(node_app, ["check", "--data", str(RAW), "--out", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "unknown_unit" in result.output and "Metabolic stability I|Human|T1/2" in result.output
    assert len(pd.read_csv(out / "accepted.csv")) == 6
    nothing = tmp_path / "bad.csv"
    nothing.write_text(RAW.read_text().splitlines()[0] + "\nX1,,CCO,,Plasma_protein_binding,PPBR,,,,,5,furlongs/fortnight\n")
    result = runner.invoke(node_app, ["check", "--data", str(nothing), "--out", str(tmp_path / "c2")])
    assert result.exit_code == 2 and "nothing usable remains" in result.output
    result = runner.invoke(node_app, ["check", "--data", str(tmp_path / "missing.csv"), "--out", str(out)])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_data_validate_consortium_mode_is_the_nodes_validation(tmp_path):
    """``fedadmet data validate --consortium`` and ``node check`` write the same accepted / rejected rows."""
    from flows.cli.data_cmd import app as data_app

    runner = CliRunner()
    result = runner.invoke(data_app, ["validate", str(RAW), "--out", str(tmp_path / "v"), "--consortium"])
    assert result.exit_code == 0, result.output
    prep = prepare_node_data(RAW, tmp_path / "n")
    for name in ("accepted.csv", "rejected.csv"):
        validated = pd.read_csv(tmp_path / "v" / name)
        node = pd.read_csv(tmp_path / "n" / name)
        pd.testing.assert_frame_equal(validated, node)
    assert len(prep.rejected) == 3
    plain = runner.invoke(data_app, ["validate", str(RAW), "--out", str(tmp_path / "p")])
    assert plain.exit_code == 0
    assert "PPBR" in set(pd.read_csv(tmp_path / "p" / "accepted.csv")["endpoint"])  # names kept without it
    bad = runner.invoke(data_app, ["validate", str(RAW), "--out", str(tmp_path / "b"), "--endpoint-map", str(RAW)])
    assert bad.exit_code == 2 and "--consortium" in bad.output
