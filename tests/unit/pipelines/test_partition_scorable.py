"""A simulated partition whose partners can all be scored: trivial scaffolds are no chemical series, and
the endpoint floor gives every partner enough rows of one endpoint for its test fold."""

from __future__ import annotations

import json
from dataclasses import asdict

import pandas as pd
import pytest

from pipelines.catalog import load_embedded
from pipelines.partition import partition_partners
from pipelines.split import SIMULATION_FOLD_SECRET, keyed_scaffold_folds, scaffold_of, series_key


def _para_benzenes() -> pd.DataFrame:
    """210 distinct para-dialkylbenzenes: every one has the lone-benzene Bemis-Murcko scaffold."""
    smiles = [f"{'C' * a}c1ccc({'C' * b})cc1" for a in range(1, 16) for b in range(1, 15)]
    return pd.DataFrame({"smiles": smiles, "endpoint": "e", "value": range(len(smiles)),
                         "compound_id": [f"m{i}" for i in range(len(smiles))]})


def test_series_key_known_answers():
    assert scaffold_of("CCc1ccc(C)cc1") == "c1ccccc1"
    assert series_key("c1ccccc1", "CCc1ccc(C)cc1") == "molecule:CCc1ccc(C)cc1"
    assert series_key("", "CCO") == "acyclic:CCO"
    assert series_key("c1ccc2ccccc2c1", "Cc1ccc2ccccc2c1") == "scaffold:c1ccc2ccccc2c1"


def test_benzene_scaffold_molecules_are_spread_over_partners_and_folds():
    table = _para_benzenes()
    part = partition_partners(table, n_partners=5, alpha=0.05, seed=0, min_rows=5, quantity_sigma=0.0)
    sizes = sorted(len(t) for t in part.tables.values())
    # one series at alpha 0.05 would sit (nearly) whole in one partner; 210 separate molecules cannot
    assert sizes[-1] < 0.6 * len(table)
    assert sum(s >= 10 for s in sizes) >= 4
    folds = pd.Series(keyed_scaffold_folds(table["smiles"].tolist(), SIMULATION_FOLD_SECRET)).value_counts()
    assert set(folds.index) == {"train", "valid", "test"}          # keyed by scaffold they were all one fold
    assert 0.03 < folds["test"] / len(table) < 0.2


@pytest.fixture(scope="module")
def pooled() -> pd.DataFrame:
    """A real multi-endpoint slice of the embedded data (keyed by SMILES)."""
    return load_embedded().groupby("endpoint", group_keys=False).head(150).reset_index(drop=True)


def _best_endpoint_rows(part) -> dict[str, int]:
    return {pid: int(t["endpoint"].value_counts().max()) if len(t) else 0 for pid, t in part.tables.items()}


def test_endpoint_floor_lifts_every_partner_and_loses_no_row(pooled):
    kw = dict(n_partners=10, alpha=0.5, seed=0, min_rows=30)
    plain = partition_partners(pooled, **kw)
    floor = 60
    assert min(_best_endpoint_rows(plain).values()) < floor        # the case the floor is for
    lifted = partition_partners(pooled, **kw, min_endpoint_rows=floor)
    assert min(_best_endpoint_rows(lifted).values()) >= floor
    owners = pd.concat([t.assign(p=pid) for pid, t in lifted.tables.items()]).groupby("smiles")["p"].nunique()
    assert owners.max() == 1                                       # still disjoint
    assert sum(len(t) for t in lifted.tables.values()) + lifted.dropped_rows == len(pooled)
    assert min(len(t) for t in lifted.tables.values()) >= 30       # donors kept min_rows
    assert lifted.config.min_endpoint_rows == floor


def test_an_unreachable_floor_is_best_effort_with_a_warning(pooled, caplog):
    part = partition_partners(pooled, n_partners=10, alpha=0.5, seed=0, min_rows=30, min_endpoint_rows=10_000)
    assert len(part.tables) == 10
    assert "floor 10000" in caplog.text


def test_the_demo_partition_leaves_no_partner_unscorable(tmp_path):
    """``make demo``'s partition (its 11-endpoint panel, 20 partners, seed 0) takes the product's endpoint
    floor: every partner ends with >= 5 test labels of one endpoint (scoring's minimum). Without the floor
    two of its partners had 3 test compounds."""
    from flows.demo import DEMO_ENDPOINTS
    from flows.demo_data import prepare_partners

    manifest = prepare_partners(tmp_path, n_partners=20, seed=0, endpoints=DEMO_ENDPOINTS)
    assert len(manifest) == 20
    best_test = {}
    for path in sorted(tmp_path.glob("partner_*/data.csv")):
        table = pd.read_csv(path)
        folds = keyed_scaffold_folds(table["SMILES_Structure_Parent"].astype(str).tolist(), SIMULATION_FOLD_SECRET)
        test = table[folds == "test"]
        best_test[path.parent.name] = int(test.groupby("Test_Type").size().max()) if len(test) else 0
    assert len(best_test) == 20
    assert min(best_test.values()) >= 5, best_test


def test_a_rare_class_endpoint_gets_enough_of_its_rare_class(monkeypatch):
    """One binary endpoint, 15% active, 1,000 acyclic molecules, 5 partners, floor 100: every partner ends with
    >= 25 actives (the floor / MINORITY_FACTOR); counting rows alone leaves a partner short of them."""
    import numpy as np

    from pipelines import partition as partition_mod

    smiles = [f"{'C' * a}O{'C' * b}N{'C' * c}" for a in range(1, 11) for b in range(1, 11) for c in range(1, 11)]
    active = np.random.default_rng(3).random(len(smiles)) < 0.15
    table = pd.DataFrame({"smiles": smiles, "endpoint": "tox", "value": active.astype(float),
                          "compound_id": [f"m{i}" for i in range(len(smiles))]})
    kw = dict(n_partners=5, alpha=0.5, seed=1, min_rows=30, quantity_sigma=1.5, min_endpoint_rows=100)
    floor_actives = 100 // partition_mod.MINORITY_FACTOR
    lifted = partition_partners(table, **kw)
    got = {pid: int(t["value"].sum()) for pid, t in lifted.tables.items()}
    assert min(got.values()) >= floor_actives, got
    assert min(len(t) for t in lifted.tables.values()) >= 100
    assert sum(len(t) for t in lifted.tables.values()) + lifted.dropped_rows == len(table)
    assert sum(got.values()) == int(active.sum())                  # no active lost or duplicated
    monkeypatch.setattr(partition_mod, "MINORITY_FACTOR", 10**9)  # rows alone decide
    rows_only = partition_partners(table, **kw)
    assert min(int(t["value"].sum()) for t in rows_only.tables.values()) < floor_actives


def test_with_the_fold_key_the_floor_asks_for_test_fold_labels():
    """Given the key the partners' keyed folds use, the floor counts an endpoint at most TEST_FACTOR x its
    test-fold labels: every partner of a 1,000-molecule regression table ends with >= 10 test compounds
    (the floor 100 / TEST_FACTOR), counted with the folds the nodes will compute; rows alone leave one at 7."""
    import numpy as np

    from pipelines.partition import TEST_FACTOR

    smiles = [f"{'C' * a}O{'C' * b}N{'C' * c}" for a in range(1, 11) for b in range(1, 11) for c in range(1, 11)]
    table = pd.DataFrame({"smiles": smiles, "endpoint": "logS", "value": np.random.default_rng(3).normal(size=1000),
                          "compound_id": [f"m{i}" for i in range(len(smiles))]})
    kw = dict(n_partners=8, alpha=0.5, seed=0, min_rows=30, quantity_sigma=1.5, min_endpoint_rows=100)

    def test_rows(part):
        return [int((keyed_scaffold_folds(t["smiles"].tolist(), SIMULATION_FOLD_SECRET) == "test").sum())
                for t in part.tables.values()]

    keyed = partition_partners(table, **kw, fold_secret=SIMULATION_FOLD_SECRET)
    assert min(test_rows(keyed)) >= 100 // TEST_FACTOR
    assert min(len(t) for t in keyed.tables.values()) >= 100
    assert sum(len(t) for t in keyed.tables.values()) + keyed.dropped_rows == len(table)
    assert "fold_secret" not in json.dumps(asdict(keyed.config))          # the key is never written
    assert min(test_rows(partition_partners(table, **kw))) < 100 // TEST_FACTOR
