"""bench/tdc_protocol.py reproduces TDC's benchmark-group train/valid scaffold split and metrics."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import numpy as np
import pytest


def _load_bench_module(name: str):
    """Load bench/<name>.py by file path: putting bench/ on sys.path would let bench/flows.py shadow
    the flows package for the rest of the session (and, through Ray's PYTHONPATH, its subprocesses)."""
    path = Path(__file__).resolve().parents[3] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


tp = _load_bench_module("tdc_protocol")

# eight molecules, eight different Bemis-Murcko scaffolds (acyclic ethanol has the empty scaffold)
DISTINCT = ["c1ccccc1", "C1CCCCC1", "c1ccncc1", "C1CCOC1", "c1ccc2ccccc2c1", "C1CC1", "c1ccsc1", "CCO"]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_group_order_is_pythons_seeded_shuffle_of_first_appearance(seed):
    # n=8: train takes int(8*0.875)=7 molecules, valid 1, test 0, so every group counts as "big"
    # and the order is random.Random(seed).shuffle of the groups in order of first appearance
    train, valid = tp.tdc_scaffold_split(DISTINCT, seed)
    order = list(range(len(DISTINCT)))
    random.Random(seed).shuffle(order)
    assert valid.tolist() == [order[-1]]
    assert train.tolist() == sorted(order[:-1])


def test_scaffold_groups_stay_together_and_fractions_hold():
    # 40 molecules in 5 scaffold families of 8 (substituents change, ring systems do not)
    cores = ["c1ccc({})cc1", "c1ccc({})nc1", "C1CCC({})CC1", "c1ccc2cc({})ccc2c1", "c1csc({})c1"]
    subs = ["C", "CC", "CCC", "O", "N", "Cl", "F", "OC"]
    smiles = [c.format(s) for c in cores for s in subs]
    for seed in tp.SEEDS:
        train, valid = tp.tdc_scaffold_split(smiles, seed)
        assert len(train) + len(valid) == len(smiles) and not set(train) & set(valid)
        assert len(train) <= int(len(smiles) * 0.875)
        fam_train = {i // 8 for i in train}
        fam_valid = {i // 8 for i in valid}
        assert not fam_train & fam_valid, "a scaffold family was split across folds"
    folds = {tuple(tp.tdc_scaffold_split(smiles, s)[1]) for s in tp.SEEDS}
    assert len(folds) > 1, "seeds must give different valid folds"


def test_unparsable_smiles_are_left_out_of_both_folds():
    train, valid = tp.tdc_scaffold_split(DISTINCT + ["not a smiles"], 1)
    assert 8 not in set(train) | set(valid)
    assert len(train) + len(valid) == 8


def test_leaderboard_metrics_and_summary():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    assert tp.score("auroc", y, p) == pytest.approx(8 / 9)
    # average precision: positives ranked 1st (0.9), 2nd (0.8), 4th (0.35) -> (1 + 1 + 3/4) / 3
    assert tp.score("auprc", y, p) == pytest.approx((1 + 1 + 0.75) / 3)
    assert tp.score("mae", np.array([1.0, 2.0]), np.array([1.5, 1.0])) == pytest.approx(0.75)
    assert tp.score("spearman", np.array([1.0, 2.0, 3.0]), np.array([10.0, 100.0, 1000.0])) == pytest.approx(1.0)
    mean, std = tp.leaderboard_summary([0.8764, 0.8766, 0.9])
    assert mean == pytest.approx(np.mean([0.876, 0.877, 0.9])) and std == pytest.approx(np.std([0.876, 0.877, 0.9]))


def test_all_22_sets_and_set_selection():
    assert len(tp.TDC_SETS) == 22 and len({s.key for s in tp.TDC_SETS}) == 22
    assert {s.key for s in tp.TDC_SETS if s.log10} == {
        "vdss_lombardo", "half_life_obach", "clearance_hepatocyte_az", "clearance_microsome_az"}
    assert [s.key for s in tp.resolve_sets("Caco2_Wang, herg")] == ["caco2_wang", "herg"]
    with pytest.raises(ValueError, match="unknown TDC set"):
        tp.resolve_sets("caco2,nope")
