"""Salt stripping keeps the drug: known counter-ions and solvents go before the largest-fragment choice,
and a metal salt of a counter-ion (lithium citrate) is rejected with its own reason."""

import pytest
from rdkit import Chem

from pipelines.standardize import RejectReason, standardize_smiles
from pipelines.validate import validate_molecules

CITRATE = "OC(=O)CC(O)(CC(=O)O)C(=O)O"
OMEPRAZOLE_ANION = "COc1ccc2[n-]c(S(=O)Cc3ncc(C)c(OC)c3C)nc2c1"
ROCURONIUM = ("C=CC[N+]1(CCCC1)[C@H]1C[C@H]2[C@@H]3CC[C@H]4C[C@H](O)[C@@H](N5CCOCC5)C[C@]4(C)[C@H]3CC[C@]2(C)"
              "[C@H]1OC(C)=O")


def _key(smiles: str) -> str:
    return Chem.MolToInchiKey(Chem.MolFromSmiles(smiles))


@pytest.mark.parametrize(("salt", "parent"), [
    # 3 piperazine : 2 citric acid; citric acid is the larger fragment, so "largest fragment" alone gave citric acid
    (".".join(["C1CNCCN1"] * 3 + [CITRATE] * 2), "C1CNCCN1"),
    ("CN(C)C(=N)N=C(N)N.Cl", "CN(C)C(=N)N=C(N)N"),                        # metformin hydrochloride
    (f"[Mg+2].{OMEPRAZOLE_ANION}.{OMEPRAZOLE_ANION}",                      # omeprazole magnesium
     "COc1ccc2[nH]c(S(=O)Cc3ncc(C)c(OC)c3C)nc2c1"),
    (f"{ROCURONIUM}.[Br-]", ROCURONIUM),                                   # rocuronium bromide: the cation stays
    ("CC(=O)Nc1ccc(O)cc1.O.O", "CC(=O)Nc1ccc(O)cc1"),                     # a hydrate
])
def test_salts_give_the_drug(salt, parent):
    result = standardize_smiles(salt)
    assert result.ok, result
    assert result.inchikey == _key(parent)
    assert result.smiles == Chem.MolToSmiles(Chem.MolFromSmiles(parent))


def test_rocuronium_stays_a_quaternary_cation():
    result = standardize_smiles(f"{ROCURONIUM}.[Br-]")
    mol = Chem.MolFromSmiles(result.smiles)
    assert Chem.GetFormalCharge(mol) == 1 and "Br" not in result.smiles


def test_lithium_citrate_is_rejected_as_only_counterion():
    result = standardize_smiles("[Li+].[Li+].[Li+].OC(CC(=O)[O-])(CC(=O)[O-])C(=O)[O-]")
    assert not result.ok and result.reason is RejectReason.ONLY_COUNTERION
    assert str(result.reason) == "only_counterion"


def test_single_fragment_counterion_compounds_are_kept():
    # the list applies to salts only: citric acid or piperazine on their own are the compound
    for smiles in (CITRATE, "C1CNCCN1", "CC(=O)O"):
        assert standardize_smiles(smiles).inchikey == _key(smiles)


def test_salt_of_inorganic_after_stripping_is_still_rejected():
    # carbonate is on the list; what is left is platinum only
    assert standardize_smiles("OC(=O)O.[Pt]").reason is RejectReason.METAL_ONLY


def test_validate_counts_only_counterion_reject():
    import pandas as pd

    table = pd.DataFrame({"input": ["CN(C)C(=N)N=C(N)N.Cl", "[Li+].[Li+].[Li+].OC(CC(=O)[O-])(CC(=O)[O-])C(=O)[O-]"]})
    result = validate_molecules(table, n_jobs=1)
    assert len(result.accepted) + len(result.rejected) == 2
    assert result.rejected["reason"].tolist() == ["only_counterion"]


@pytest.mark.parametrize("salt", ["[Zn+2].CC(=O)[O-].CC(=O)[O-]", "[Ca+2].CC(O)C(=O)[O-].CC(O)C(=O)[O-]"])
def test_other_metal_salts_of_counterions_are_rejected(salt):
    assert standardize_smiles(salt).reason is RejectReason.ONLY_COUNTERION


def test_sodium_and_potassium_salts_keep_the_organic_anion():
    # Na+/K+ are the counter-cations of acidic drugs: sodium benzoate is benzoic acid, as before
    assert standardize_smiles("[Na+].[O-]C(=O)c1ccccc1").smiles == "O=C(O)c1ccccc1"
    assert standardize_smiles("[K+].CCCC([O-])=O").smiles == "CCCC(=O)O"
