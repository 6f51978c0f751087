"""Partner partition: disjoint compounds, reproducible by seed, usable partners, manifest == tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipelines.catalog import load_embedded
from pipelines.errors import InputError
from pipelines.partition import partition_partners, read_partition, write_partition


@pytest.fixture(scope="module")
def pooled() -> pd.DataFrame:
    """A real multi-endpoint slice of the embedded data (no validation: keyed by SMILES)."""
    table = load_embedded()
    return table.groupby("endpoint", group_keys=False).head(150).reset_index(drop=True)


def _compound_owner(partition) -> pd.Series:
    frames = [t.assign(partner=pid) for pid, t in partition.tables.items()]
    return pd.concat(frames).groupby("smiles")["partner"].nunique()


def test_partition_is_disjoint_usable_and_matches_manifest(pooled):
    part = partition_partners(pooled, n_partners=8, alpha=0.5, seed=0, min_rows=30)
    assert part.partner_ids == [f"partner_{i:02d}" for i in range(8)]
    assert _compound_owner(part).max() == 1                    # no compound in two partners
    kept = sum(len(t) for t in part.tables.values())
    assert kept + part.dropped_rows == len(pooled) == part.input_rows
    manifest = part.manifest.set_index("partner")
    for pid, table in part.tables.items():
        assert len(table) >= 30
        assert manifest.loc[pid, "n_rows"] == len(table)
        assert manifest.loc[pid, "n_compounds"] == table["compound_id"].nunique()
        counts = table["endpoint"].value_counts()
        for endpoint in pooled["endpoint"].unique():
            assert manifest.loc[pid, endpoint] == counts.get(endpoint, 0)


def test_partition_is_reproducible_and_seed_dependent(pooled):
    a = partition_partners(pooled, n_partners=6, seed=3)
    b = partition_partners(pooled, n_partners=6, seed=3)
    c = partition_partners(pooled, n_partners=6, seed=4)
    for pid in a.tables:
        pd.testing.assert_frame_equal(a.tables[pid], b.tables[pid])
    assert any(len(a.tables[p]) != len(c.tables[p]) or not a.tables[p].equals(c.tables[p]) for p in a.tables)


def test_task_and_quantity_skew(pooled):
    part = partition_partners(pooled, n_partners=10, alpha=0.3, seed=1, min_rows=20)
    n_endpoints = part.manifest["n_endpoints"]
    assert n_endpoints.min() >= 1
    assert n_endpoints.nunique() > 1                           # partners measure different subsets
    assert part.manifest["n_rows"].max() > 2 * part.manifest["n_rows"].min()
    # every endpoint measured by at least two partners
    endpoints = pooled["endpoint"].unique()
    assert ((part.manifest[endpoints] > 0).sum() >= 2).all()


def test_smaller_alpha_concentrates_scaffolds():
    # 40 scaffold series (biphenyl-like cores with linkers of 0..39 carbons) x 10 side chains
    rows = [{"smiles": f"{'C' * (k + 1)}c1ccc(cc1){'C' * s}c2ccccc2", "endpoint": "e", "value": float(k),
             "compound_id": f"s{s}-{k}"} for s in range(40) for k in range(10)]
    table = pd.DataFrame(rows)

    def spread(alpha: float) -> float:
        part = partition_partners(table, n_partners=5, alpha=alpha, seed=0, min_rows=5, quantity_sigma=0.0)
        owner = pd.concat([t.assign(p=pid) for pid, t in part.tables.items()])
        owner["series"] = owner["compound_id"].str.split("-").str[0]
        return owner.groupby("series")["p"].nunique().mean()

    assert spread(0.05) < 2.0 < spread(100.0)


def test_write_and_read_round_trip(pooled, tmp_path):
    part = partition_partners(pooled, n_partners=5, seed=0)
    write_partition(part, tmp_path)
    doc = json.loads((tmp_path / "manifest.json").read_text())
    assert doc["config"]["n_partners"] == 5 and doc["config"]["seed"] == 0
    assert sum(p["n_rows"] for p in doc["partners"].values()) + doc["dropped_rows"] == len(pooled)
    header = (tmp_path / "partner_00" / "data.csv").read_text().splitlines()[0]
    assert header.startswith("Chemical ID,Chemical Name,SMILES_Structure_Parent,SMILES_Salt,Test,Test_Type")
    back = read_partition(tmp_path)
    assert back.partner_ids == part.partner_ids
    for pid in part.tables:
        mine, theirs = part.tables[pid], back.tables[pid]
        assert mine["smiles"].tolist() == theirs["smiles"].tolist()
        assert mine["endpoint"].tolist() == theirs["endpoint"].tolist()
        assert np.allclose(mine["value"].astype(float), theirs["value"])
        assert mine["relation"].tolist() == theirs["relation"].tolist()
    pd.testing.assert_frame_equal(back.manifest, part.manifest, check_dtype=False)


def test_impossible_requests_are_input_errors(pooled):
    with pytest.raises(InputError, match="at least 10000 rows"):
        partition_partners(pooled, n_partners=4, min_rows=10_000)
    with pytest.raises(InputError, match="alpha"):
        partition_partners(pooled, alpha=0.0)
    with pytest.raises(InputError, match="not a partition folder"):
        read_partition("/nonexistent-folder")


@pytest.mark.slow
def test_embedded_catalog_gives_twenty_usable_partners():
    table = load_embedded()
    part = partition_partners(table, n_partners=20, alpha=0.5, seed=0)
    rows = part.manifest["n_rows"]
    assert len(rows) == 20 and rows.min() >= 30
    assert _compound_owner(part).max() == 1


def test_rewriting_a_folder_with_fewer_partners_removes_the_old_partner_folders(pooled, tmp_path):
    """A 3-partner partition written over a 5-partner one: only the new partners remain, so
    nothing that lists the folder (federation, nodes) sees partners of the earlier partition."""
    write_partition(partition_partners(pooled, n_partners=5, seed=0), tmp_path)
    (tmp_path / "notes").mkdir()  # not a partner folder: left alone
    write_partition(partition_partners(pooled, n_partners=3, seed=1), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("partner_")) == \
        ["partner_00", "partner_01", "partner_02"]
    assert sorted(p.parent.name for p in tmp_path.glob("*/data.csv")) == ["partner_00", "partner_01", "partner_02"]
    assert (tmp_path / "notes").is_dir()
    assert read_partition(tmp_path).partner_ids == ["partner_00", "partner_01", "partner_02"]
