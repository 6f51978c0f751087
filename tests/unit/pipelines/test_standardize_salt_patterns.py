"""Counter-ion stripping tries only the salt patterns that can delete a fragment (``_remover_for``) and gives
exactly what RDKit's ``SaltRemover`` over the whole list gives. Real molecules: every multi-fragment SMILES of the
embedded catalog's vendored sets (salts, hydrates, mixtures, metal salts), standardized both ways."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from rdkit import Chem

import pipelines.standardize as st

ROOT = Path(__file__).resolve().parents[3]
TDC = ROOT.parent / "shared" / "data" / "tdc_admet"
SETS = ("clintox_moleculenet", "ld50_zhu", "herg", "ames", "dili", "ppbr_az", "vdss_lombardo", "half_life_obach",
        "solubility_aqsoldb")
CASES = [
    "CC(=O)Oc1ccccc1C(=O)[O-].[Na+]",                 # sodium salt: the organic anion stays
    "C1CNCCN1.OC(=O)CC(O)(CC(=O)O)C(=O)O",            # piperazine citrate: list order decides
    "CC(=O)[O-].CC(=O)[O-].[Zn+2]",                   # zinc acetate: only_counterion
    "CCO.CCN(CC)CC",                                  # a mixture with a solvent
    "[Cl-].[Cl-].[Pt+2].N.N",                         # no carbon after stripping
    "Cl.Cl.CN1CCC[C@H]1c1cccnc1",                     # dihydrochloride (repeated pattern)
    "O.O.O.CC(=O)Nc1ccc(O)cc1",                       # trihydrate
]


def _multi_fragment_smiles() -> list[str]:
    found: list[str] = []
    for key in SETS:
        path = TDC / key / "data.csv"
        if path.exists():
            found += [s for s in pd.read_csv(path)["smiles"].astype(str) if "." in s]
    if len(found) < 100:
        pytest.skip(f"TDC data not found under {TDC}")
    return list(dict.fromkeys(found + CASES))


def test_narrowed_salt_list_gives_the_full_lists_result(monkeypatch):
    smiles = _multi_fragment_smiles()
    fast = [st.standardize_smiles(s) for s in smiles]
    narrowed = [len(st._remover_for(st.parse_smiles(s)[0]).salts) for s in CASES]
    # the old path: RDKit's SaltRemover with every pattern of the list
    monkeypatch.setattr(st, "_remover_for", lambda mol: st._salt_remover())
    full = [st.standardize_smiles(s) for s in smiles]
    assert [(a.smiles, a.inchikey, a.reason) for a in fast] == [(b.smiles, b.inchikey, b.reason) for b in full]
    reasons = {a.reason for a in fast}
    assert {None, st.RejectReason.ONLY_COUNTERION} <= reasons
    assert sum(a.ok for a in fast) > 0.6 * len(smiles) and len(smiles) > 1000  # AqSolDB has many inorganics
    assert max(narrowed) < len(st._salt_remover().salts) // 4  # the list really is narrowed


def test_narrowed_list_keeps_the_patterns_that_delete():
    mol = st.parse_smiles("Cl.Cl.CN1CCC[C@H]1c1cccnc1")[0]
    salts = st._remover_for(mol).salts
    assert salts and all(mol.HasSubstructMatch(s) for s in salts)
    stripped = st._remover_for(mol).StripMol(mol)
    assert Chem.MolToSmiles(stripped) == "CN1CCC[C@H]1c1cccnc1"
    assert st._remover_for(mol) is not st._salt_remover() and len(st._salt_remover().salts) > 100
