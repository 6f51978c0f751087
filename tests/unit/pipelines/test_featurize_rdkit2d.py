"""rdkit2d (and its fast subset) equal RDKit's naive loop over Descriptors.descList (1e-6, NaN where NaN)."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Descriptors

from pipelines.catalog import load_embedded
from pipelines.featurize import featurize_smiles, get_featurizer
from pipelines.featurize.descriptors2d import (
    DESCRIPTOR_NAMES,
    FAST_DESCRIPTOR_NAMES,
    FAST_EXCLUDED,
    descriptors_2d,
    descriptors_2d_fast,
    naive_descriptors_2d,
)

# Molecules that exercise the special paths: explicit/isotopic hydrogens (QED falls back to
# RDKit), charges, salts, radicals, single atoms, metals (Gasteiger/BCUT fail -> NaN), rings of 3.
EDGE_CASES = [
    "[2H]C([2H])([2H])c1ccccc1O", "[H]c1ccccc1", "[H][H]", "C", "[Na+].[Cl-]", "[Fe]",
    "O=C([O-])c1ccccc1.[Na+]", "C[N+](C)(C)C", "CC[CH2]", "C1CC1N", "C#N", "CC(=O)OC1=CC=CC=C1C(=O)O",
    "c1ccc2c(c1)[nH]c1ccccc12", "N=C(CCSCc1csc(N=C(N)N)n1)NS(N)(=O)=O", "C/C=C/C[C@H](N)C(=O)O",
]


@pytest.fixture(scope="module")
def molecules_smiles() -> list[str]:
    table = load_embedded(["HLM_CLint", "solubility", "bbb"])
    smiles = table["smiles"].drop_duplicates().sample(n=90, random_state=0).tolist()
    return smiles + EDGE_CASES


@pytest.fixture(scope="module")
def naive_values(molecules_smiles) -> np.ndarray:
    return np.array([naive_descriptors_2d(Chem.MolFromSmiles(s)) for s in molecules_smiles])


def test_descriptor_names_follow_rdkit():
    assert DESCRIPTOR_NAMES == tuple(name for name, _ in Descriptors.descList)
    assert len(DESCRIPTOR_NAMES) > 200


def test_values_equal_the_naive_loop(molecules_smiles, naive_values):
    fast = np.array([descriptors_2d(Chem.MolFromSmiles(s)) for s in molecules_smiles])
    naive = naive_values
    assert fast.shape == naive.shape == (len(molecules_smiles), len(DESCRIPTOR_NAMES))
    close = np.isclose(fast, naive, rtol=1e-6, atol=1e-6, equal_nan=True)
    bad = [(molecules_smiles[i], DESCRIPTOR_NAMES[j], naive[i, j], fast[i, j]) for i, j in np.argwhere(~close)]
    assert not bad, bad[:10]
    # NaN exactly where the naive loop gives NaN (metals: Gasteiger/BCUT fail)
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(naive))
    assert np.isnan(naive).any()


def test_featurizer_output_matches_naive_in_float32(molecules_smiles, naive_values):
    fm = featurize_smiles(molecules_smiles, spec="rdkit2d", n_jobs=1)
    naive = naive_values.copy()
    naive[~np.isfinite(naive)] = np.nan
    assert fm.valid.all()  # a NaN descriptor is a NaN cell, not an invalid row
    np.testing.assert_allclose(fm.X, naive.astype(np.float32), rtol=1e-6, atol=1e-6, equal_nan=True)


def test_non_finite_values_become_nan():
    feat = get_featurizer("rdkit2d")
    block = np.zeros((2, feat.n_features))
    block[0, 0] = np.inf
    block[1, 1] = 1e300  # beyond float32
    out = feat.compact(block)
    assert out.dtype == np.float32
    assert np.isnan(out[0, 0]) and np.isnan(out[1, 1])
    assert np.isfinite(out[:, 2:]).all()


def test_fast_subset_equals_the_same_columns_of_the_naive_loop(molecules_smiles, naive_values):
    assert set(FAST_DESCRIPTOR_NAMES) | FAST_EXCLUDED == set(DESCRIPTOR_NAMES)
    assert not set(FAST_DESCRIPTOR_NAMES) & FAST_EXCLUDED
    assert 100 < len(FAST_DESCRIPTOR_NAMES) < len(DESCRIPTOR_NAMES)
    assert {"MolLogP", "TPSA", "MolWt", "NumHDonors", "BalabanJ", "MaxEStateIndex"} <= set(FAST_DESCRIPTOR_NAMES)
    cols = [DESCRIPTOR_NAMES.index(n) for n in FAST_DESCRIPTOR_NAMES]
    naive = naive_values[:, cols]
    fast = np.array([descriptors_2d_fast(Chem.MolFromSmiles(s)) for s in molecules_smiles])
    close = np.isclose(fast, naive, rtol=1e-6, atol=1e-6, equal_nan=True)
    bad = [(molecules_smiles[i], FAST_DESCRIPTOR_NAMES[j], naive[i, j], fast[i, j]) for i, j in np.argwhere(~close)]
    assert not bad, bad[:10]
    fm = featurize_smiles(molecules_smiles, spec="rdkit2d_fast", n_jobs=1)
    assert fm.X.shape == (len(molecules_smiles), len(FAST_DESCRIPTOR_NAMES)) and fm.valid.all()
    expected = naive.copy()
    expected[~np.isfinite(expected)] = np.nan
    np.testing.assert_allclose(fm.X, expected.astype(np.float32), rtol=1e-6, atol=1e-6, equal_nan=True)
