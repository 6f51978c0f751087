"""The one partner-preparation path: every input row is partitioned after validation or rejected."""

from __future__ import annotations

import json

import pandas as pd

from pipelines.catalog import load_embedded
from pipelines.partition import read_partition
from pipelines.partner_data import REJECTS_FILE, SUMMARY_FILE, load_long_table, prepare_partition
from pipelines.standardize import standardize_smiles


def _table_with_bad_rows() -> pd.DataFrame:
    table = load_embedded(["solubility", "HLM_CLint"]).groupby("endpoint").head(120).reset_index(drop=True)
    good = table.iloc[0].to_dict()
    bad = [dict(good, smiles="C1CC(", compound_id="bad1"), dict(good, smiles="[Fe]", compound_id="bad2"),
           dict(good, smiles=good["smiles"] + ".Cl", compound_id="salt")]
    return pd.concat([table, pd.DataFrame(bad)], ignore_index=True)


def test_prepare_partition_validates_before_partitioning(tmp_path):
    table = _table_with_bad_rows()
    prepared = prepare_partition(table, tmp_path, n_partners=3, alpha=5.0, seed=0)
    rejects = pd.read_csv(tmp_path / REJECTS_FILE)
    summary = json.loads((tmp_path / SUMMARY_FILE).read_text())
    assert summary["n_rows"] == len(table) == summary["n_accepted"] + summary["n_rejected"] == \
        prepared.summary.n_accepted + len(rejects)
    assert set(rejects["reason"]) >= {"unparsable", "metal_only"}
    assert {"C1CC(", "[Fe]"} <= set(rejects["input"])
    partition = read_partition(tmp_path)
    written = pd.concat(partition.tables.values())
    assert len(prepared.manifest) == 3 and prepared.manifest["n_rows"].sum() == len(written)
    assert len(written) + summary["n_dropped"] == summary["n_partitioned"] == summary["n_accepted"]
    # partner folders hold standardized molecules: the salt's counter-ion is gone
    assert not written["smiles"].str.contains(".", regex=False).any()
    assert standardize_smiles(table.iloc[-1]["smiles"]).smiles in set(written["smiles"])


def test_prepare_partition_aggregates_replicates_when_asked(tmp_path):
    table = _table_with_bad_rows()
    replicate = table.iloc[[0]].assign(compound_id="replicate")  # a second measurement of row 0
    table = pd.concat([table, replicate], ignore_index=True)
    plain = prepare_partition(table, tmp_path / "plain", n_partners=3, alpha=5.0, seed=0).summary
    merged = prepare_partition(table, tmp_path / "merged", n_partners=3, alpha=5.0, seed=0, aggregate=True).summary
    assert plain.n_accepted == merged.n_accepted == plain.n_partitioned
    assert merged.n_partitioned < plain.n_partitioned and merged.aggregated


def test_load_long_table_keeps_whole_molecules():
    full = load_embedded(["solubility", "HLM_CLint"])
    sliced = load_long_table(endpoints=("solubility", "HLM_CLint"), max_rows=200, seed=1)
    assert 200 <= len(sliced) < 260
    counts = full[full["smiles"].isin(set(sliced["smiles"]))].groupby("smiles").size()
    assert sliced.groupby("smiles").size().sort_index().equals(counts.sort_index())
