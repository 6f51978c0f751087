"""``fedadmet data ...`` through Typer's CliRunner on the fixtures (real files in, real files out)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.cli.data_cmd import app
from pipelines.catalog import load_embedded

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
runner = CliRunner()


def test_catalog_lists_the_embedded_endpoints():
    result = runner.invoke(app, ["catalog"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for text in ("HLM_CLint", "solubility", "toxcast_clean", "VDss_Lombardo", "SR-p53", "ClinTox",
                 "CYP2C19_Veith", "alias cyp2c19_inhib", "L/kg log10", "CC BY-SA 3.0", "Lombardo 2016"):
        assert text in result.output, text
    assert "47 endpoints" in result.output


def test_catalog_json_carries_every_column():
    from pipelines.catalog import load_catalog

    result = runner.invoke(app, ["catalog", "--json"], terminal_width=80)
    assert result.exit_code == 0, result.output
    records = {r["endpoint"]: r for r in json.loads(result.output)["endpoints"]}
    catalog = load_catalog().set_index("endpoint")
    assert list(records) == list(catalog.index)
    vdss = records["VDss_Lombardo"]
    assert (vdss["unit"], vdss["transform"], vdss["metric"], vdss["count"]) == ("L/kg", "log10", "Spearman", 1130)
    assert vdss["source"] == catalog.loc["VDss_Lombardo", "source"]  # full text, not the table's short form
    assert "bbb" in records["BBB_Martins"]["aliases"]


def test_validate_writes_accepted_and_rejected(tmp_path):
    result = runner.invoke(app, ["validate", str(FIXTURES / "bad_smiles.csv"), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    accepted = pd.read_csv(tmp_path / "accepted.csv", keep_default_na=False)
    rejected = pd.read_csv(tmp_path / "rejected.csv", keep_default_na=False)
    assert list(accepted.columns[:4]) == ["row", "input", "smiles", "inchikey"]
    assert list(rejected.columns) == ["row", "input", "reason"]
    assert len(accepted) + len(rejected) == 19
    assert sorted([*accepted["row"], *rejected["row"]]) == list(range(19))
    assert "no_carbon" in result.output and "rejected" in result.output
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["kind"] == "molecules" and config["n_input"] == 19


def test_validate_sdf_and_kmelloddy(tmp_path):
    sdf = runner.invoke(app, ["validate", str(FIXTURES / "molecules.sdf"), "--out", str(tmp_path / "sdf")])
    assert sdf.exit_code == 0, sdf.output
    assert len(pd.read_csv(tmp_path / "sdf" / "rejected.csv")) == 2
    km = runner.invoke(app, ["validate", str(FIXTURES / "k_melloddy_sample.csv"), "--out", str(tmp_path / "km")])
    assert km.exit_code == 0, km.output
    accepted = pd.read_csv(tmp_path / "km" / "accepted.csv")
    assert len(accepted) == 193 and {"endpoint", "relation", "value", "unit"} <= set(accepted.columns)


@pytest.mark.parametrize(("name", "words"), [("empty.csv", "empty"), ("binary.csv", "binary"),
                                              ("missing.csv", "no such file"),
                                              ("kmelloddy_missing_columns.csv", "Test_Type")])
def test_unusable_input_exits_2_with_a_clear_message(tmp_path, name, words):
    result = runner.invoke(app, ["validate", str(FIXTURES / name), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "error:" in result.output and words in result.output
    assert "Traceback" not in result.output


def test_featurize_parquet_and_npy(tmp_path):
    out = tmp_path / "features.parquet"
    result = runner.invoke(app, ["featurize", str(FIXTURES / "molecules.smi"), "--featurizer", "morgan_count",
                                 "--out", str(out), "--n-jobs", "1"])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert len(table) == 5 and table["valid"].tolist() == [True, True, False, False, True]
    features = table.drop(columns=["row", "input", "smiles", "inchikey", "reason", "valid"]).to_numpy()
    assert features.shape[1] == 2048
    assert np.isnan(features[2]).all() and not np.isnan(features[0]).any()
    from pipelines.featurize import featurize_smiles

    direct = featurize_smiles(["CCO", "c1ccccc1"], spec="morgan_count", n_jobs=1).X
    assert np.array_equal(features[[0, 1]], direct) and direct.sum() > 0
    npy = tmp_path / "f.npy"
    result = runner.invoke(app, ["featurize", str(FIXTURES / "molecules.smi"), "-f", "maccs", "--out", str(npy),
                                 "--n-jobs", "1"])
    assert result.exit_code == 0, result.output
    X = np.load(npy)
    index = pd.read_csv(tmp_path / "f.index.csv", keep_default_na=False)
    assert X.shape[0] == len(index) == 5
    assert index["reason"].tolist()[2:4] == ["empty", "unparsable"]


def test_featurize_rejects_unknown_output_suffix(tmp_path):
    result = runner.invoke(app, ["featurize", str(FIXTURES / "molecules.smi"), "--out", str(tmp_path / "x.txt")])
    assert result.exit_code == 2 and ".parquet or .npy" in result.output


def test_partition_command_writes_partners(tmp_path):
    pooled = load_embedded().groupby("endpoint", group_keys=False).head(40)
    source = tmp_path / "pooled.csv"
    pooled.to_csv(source, index=False)
    out = tmp_path / "partners"
    result = runner.invoke(app, ["partition", str(source), "--partners", "4", "--alpha", "0.5", "--seed", "1",
                                 "--min-rows", "20", "--out", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    manifest = pd.read_csv(out / "manifest.csv")
    assert manifest["partner"].tolist() == [f"partner_{i:02d}" for i in range(4)]
    for row in manifest.itertuples():
        data = pd.read_csv(out / row.partner / "data.csv")
        assert len(data) == row.n_rows >= 20
    config = json.loads((out / "config.json").read_text())
    assert config["partners"] == 4 and config["seed"] == 1
    assert "partner_03" in result.output
