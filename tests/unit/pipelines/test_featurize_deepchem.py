"""DeepChem-backed featurizers on a few real molecules."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.catalog import load_embedded
from pipelines.featurize import featurize_smiles, get_featurizer


@pytest.fixture(scope="module")
def few_smiles() -> list[str]:
    return load_embedded(["bbb"])["smiles"].drop_duplicates().iloc[:5].tolist()


@pytest.mark.parametrize(
    ("name", "width"), [("dc_circular", 2048), ("dc_rdkit_descriptors", 217), ("dc_molgraphconv", 73)]
)
def test_deepchem_featurizers_on_real_molecules(name, width, few_smiles):
    fm = featurize_smiles([*few_smiles, "garbage("], spec=name, n_jobs=1)
    assert fm.X.shape == (6, width)
    assert fm.valid.tolist() == [True] * 5 + [False]
    assert np.isnan(fm.X[5]).all()
    assert (np.nansum(np.abs(fm.X[:5]), axis=1) > 0).all()
    assert "deepchem" in fm.config["featurizers"][0]["versions"]


def test_molgraphconv_pooling_is_what_the_docs_say(few_smiles):
    from rdkit import Chem

    feat = get_featurizer("dc_molgraphconv")
    mol = Chem.MolFromSmiles(few_smiles[0])
    vec = feat.featurize_mol(mol)
    assert vec[-2] == mol.GetNumAtoms() and vec[-1] == mol.GetNumBonds()
    atom_mean, atom_max = vec[:30], vec[30:60]
    assert (atom_max >= atom_mean - 1e-12).all()
    assert atom_mean.sum() > 0  # one-hot atom features average to something non-zero


def test_single_atom_molecule_is_invalid_for_graph_features_not_empty():
    fm = featurize_smiles(["C", "CCO"], spec="morgan_count+dc_molgraphconv", n_jobs=1)
    assert fm.valid.tolist() == [False, True]
    assert np.isnan(fm.X[0, 2048:]).all()  # the graph block is NaN, not zeros
    assert fm.X[0, :2048].sum() > 0  # the Morgan block of methane is still computed
