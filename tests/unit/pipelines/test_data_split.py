"""Splits: no InChIKey and no scaffold in two folds; seeded; balanced; temporal order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.catalog import load_embedded
from pipelines.errors import InputError
from pipelines.split import random_split, scaffold_of, scaffold_split, split_by_key, temporal_split
from pipelines.validate import validate_long_table


@pytest.fixture(scope="module")
def solubility_slice() -> pd.DataFrame:
    raw = load_embedded(["solubility"]).head(600)
    return validate_long_table(raw).accepted


def test_scaffold_of_known_answers():
    assert scaffold_of("CC(=O)Oc1ccccc1C(=O)O") == "c1ccccc1"
    assert scaffold_of("CCCCO") == ""
    assert scaffold_of("Cc1ccc(Cc2ccncc2)cc1") == "c1ccc(Cc2ccncc2)cc1"
    assert scaffold_of("c1ccccc1O", generic=True) == "C1CCCCC1"
    assert scaffold_of("not a smiles").startswith("!")


def test_scaffold_split_disjoint_and_sized(solubility_slice):
    smiles = solubility_slice["smiles"].tolist()
    keys = solubility_slice["inchikey"].tolist()
    fold = scaffold_split(smiles, (0.8, 0.1, 0.1), seed=0, keys=keys)
    assert len(fold) == len(smiles) and set(fold) == {"train", "valid", "test"}
    scaffolds = np.asarray([scaffold_of(s) for s in smiles])
    for column in (scaffolds, np.asarray(keys)):
        folds_per_group = pd.Series(fold).groupby(column).nunique()
        assert folds_per_group.max() == 1
    counts = pd.Series(fold).value_counts()
    assert abs(counts["train"] - 0.8 * len(fold)) <= 0.05 * len(fold)
    # seeded: same seed same split, another seed another split
    assert (scaffold_split(smiles, seed=0, keys=keys) == fold).all()
    assert (scaffold_split(smiles, seed=1, keys=keys) != fold).any()


def test_scaffold_split_keeps_a_key_together_even_across_scaffolds():
    # one InChIKey drawn as two tautomers with different scaffold strings must not straddle folds
    smiles = ["Oc1ccccn1", "O=c1cccc[nH]1"] + [f"C{'C' * i}c1ccccc1" for i in range(30)]
    keys = ["same", "same"] + [f"k{i}" for i in range(30)]
    for seed in range(5):
        fold = scaffold_split(smiles, (0.5, 0.25, 0.25), seed=seed, keys=keys)
        assert fold[0] == fold[1]


def test_big_scaffold_groups_go_to_train():
    smiles = ["c1ccccc1" + "C" * i for i in range(1, 41)] + [f"C1CC{'C' * i}1" for i in range(1, 11)]
    fold = scaffold_split(smiles, (0.8, 0.1, 0.1), seed=3)
    assert set(fold[:40]) == {"train"}  # the 40-member benzene series cannot fit valid or test


def test_random_split_groups_duplicates():
    keys = [f"k{i // 3}" for i in range(300)]
    fold = random_split(keys, (0.7, 0.15, 0.15), seed=4)
    assert pd.Series(fold).groupby(keys).nunique().max() == 1
    assert len(random_split(50)) == 50


def test_temporal_split_orders_by_first_date():
    dates = pd.date_range("2020-01-01", periods=100, freq="D").astype(str).tolist()
    keys = [f"k{i}" for i in range(100)]
    keys[99] = "k0"  # measured again late: goes with its first (oldest) measurement
    fold = temporal_split(dates, (0.8, 0.1, 0.1), keys=keys)
    assert fold[0] == fold[99] == "train"
    assert fold[85] == "valid" and fold[98] == "test"
    with pytest.raises(InputError, match="no usable date"):
        temporal_split(["2020-01-01", "not a date"])


def test_fractions_are_checked_and_split_by_key():
    with pytest.raises(InputError, match="fractions"):
        scaffold_split(["CCO"], (0.5, 0.5, 0.5))
    assert split_by_key(["a", "b", "z"], {"a": "test", "b": "valid"}).tolist() == ["test", "valid", "train"]


def test_parallel_scaffolds_equal_serial(monkeypatch, solubility_slice):
    import pipelines.split as split

    smiles = solubility_slice["smiles"].tolist()[:200] + ["not a smiles", "CCO"]
    serial = split.scaffolds_of(smiles, n_jobs=1)
    monkeypatch.setattr(split, "PARALLEL_MIN", 10)
    monkeypatch.setattr(split, "_CHUNK", 40)
    assert split.scaffolds_of(smiles, n_jobs=2) == serial == [scaffold_of(s) for s in smiles]
