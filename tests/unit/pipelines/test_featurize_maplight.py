"""MapLight's extra fingerprints (Avalon counts, ErG) are RDKit's own values, one row per input."""

from __future__ import annotations

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Avalon import pyAvalonTools
from rdkit.Chem import rdReducedGraphs

from pipelines.featurize import featurize_smiles, get_featurizer

SMILES = ["CC(C)NCC(O)COc1ccc(NC=O)cc1", "c1ccc2[nH]c(-c3ccncc3)nc2c1", "CCO", "not a molecule",
          "O=C(O)c1ccccc1OC(C)=O"]


def test_avalon_and_erg_equal_rdkit_and_bad_rows_are_nan():
    fm = featurize_smiles(SMILES, spec="avalon_count+erg", n_jobs=1)
    assert fm.X.shape == (len(SMILES), 1024 + 315)
    assert fm.valid.tolist() == [True, True, True, False, True]
    assert np.isnan(fm.X[3]).all()
    for i, smi in enumerate(SMILES):
        if not fm.valid[i]:
            continue
        mol = Chem.MolFromSmiles(smi)
        avalon = np.zeros(1024)
        DataStructs.ConvertToNumpyArray(pyAvalonTools.GetAvalonCountFP(mol, nBits=1024), avalon)
        np.testing.assert_array_equal(fm.X[i, :1024], avalon)
        np.testing.assert_allclose(fm.X[i, 1024:], rdReducedGraphs.GetErGFingerprint(mol), rtol=1e-6)
    assert fm.X[0, :1024].sum() > 0 and fm.X[0, 1024:].sum() > 0  # a real fingerprint, not zeros


def test_maplight_spec_column_layout():
    spec = "morgan_count+avalon_count+erg+rdkit2d"
    fm = featurize_smiles(SMILES[:2], spec=spec, n_jobs=1)
    expected = sum(get_featurizer(n).n_features for n in spec.split("+"))
    assert fm.X.shape == (2, expected)
    alone = featurize_smiles(SMILES[:2], spec="avalon_count", n_jobs=1)
    np.testing.assert_array_equal(fm.X[:, 2048:2048 + 1024], alone.X)
