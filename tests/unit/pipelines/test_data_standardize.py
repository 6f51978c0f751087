"""Standardization: the bad-input suite and the normalisations, with known answers."""

from __future__ import annotations

import math

import pytest

from pipelines.standardize import RejectReason, standardize_many, standardize_smiles

ASPIRIN_KEY = "BSYNRYMUTXBXSQ-UHFFFAOYSA-N"


@pytest.mark.parametrize(
    ("smiles", "reason"),
    [
        ("", RejectReason.EMPTY),
        ("   \t ", RejectReason.EMPTY),
        (None, RejectReason.NOT_A_STRING),
        (math.nan, RejectReason.NOT_A_STRING),
        (42, RejectReason.NOT_A_STRING),
        ("this is not a smiles", RejectReason.UNPARSABLE),
        ("CCO ethanol", RejectReason.UNPARSABLE),  # RDKit would read "ethanol" as a name
        ("C1CC(", RejectReason.UNPARSABLE),
        ("C1CCCCC", RejectReason.UNPARSABLE),  # unclosed ring
        ("c1cccc1", RejectReason.UNPARSABLE),  # cannot be kekulized
        ("C(C)(C)(C)(C)C", RejectReason.VALENCE_ERROR),
        ("[NH5]", RejectReason.VALENCE_ERROR),
        ("C" * 200, RejectReason.TOO_MANY_HEAVY_ATOMS),
        ("C" * 5000, RejectReason.TOO_MANY_HEAVY_ATOMS),  # rejected before parsing
        ("[Pt]", RejectReason.METAL_ONLY),
        ("[Na+].[K+]", RejectReason.METAL_ONLY),
        ("[Na+].[Cl-]", RejectReason.NO_CARBON),
        ("O=S(=O)(O)O", RejectReason.NO_CARBON),
        ("Cl[Pt](Cl)(N)N", RejectReason.NO_CARBON),
        ("O", RejectReason.NO_CARBON),
    ],
)
def test_bad_inputs_are_rejected_with_their_reason(smiles, reason):
    result = standardize_smiles(smiles)
    assert result.reason is reason
    assert result.smiles is None and result.inchikey is None and not result.ok


@pytest.mark.parametrize(
    ("smiles", "expected"),
    [
        ("CC(=O)[O-].[Na+]", "CC(=O)O"),            # salt stripped, acid neutralised
        ("C[NH3+].[Cl-]", "CN"),                    # hydrochloride -> free base
        ("CCCCCCCCO.O.O", "CCCCCCCCO"),             # solvent (water) stripped
        ("[H]C([H])([H])O", "CO"),                  # explicit hydrogens removed
        ("  CCO  ", "CCO"),                         # surrounding whitespace ignored
        ("C[N+](C)(C)C", "C[N+](C)(C)C"),           # a quaternary ammonium cannot be neutralised
    ],
)
def test_standardized_parent(smiles, expected):
    result = standardize_smiles(smiles)
    assert result.ok, result
    assert result.smiles == expected


def test_identity_is_the_inchikey_of_the_parent():
    written = ["CC(=O)Oc1ccccc1C(=O)O", "OC(=O)c1ccccc1OC(C)=O", "CC(=O)Oc1ccccc1C(=O)[O-].[Na+]"]
    results = standardize_many(written)
    assert {r.inchikey for r in results} == {ASPIRIN_KEY}
    assert len({r.smiles for r in results}) == 1


def test_ring_size_limit_is_configurable():
    assert standardize_smiles("C" * 40, max_heavy_atoms=30).reason is RejectReason.TOO_MANY_HEAVY_ATOMS
    assert standardize_smiles("C" * 40, max_heavy_atoms=50).ok


def test_optional_canonical_tautomer():
    # 2-hydroxypyridine and 2-pyridone are one compound (same InChIKey) drawn two ways
    plain = standardize_many(["Oc1ccccn1", "O=c1cccc[nH]1"])
    assert plain[0].inchikey == plain[1].inchikey
    assert plain[0].smiles != plain[1].smiles
    taut = standardize_many(["Oc1ccccn1", "O=c1cccc[nH]1"], tautomer=True)
    assert taut[0].smiles == taut[1].smiles


def test_without_inchikey_only_smiles():
    result = standardize_smiles("CC(=O)[O-].[Na+]", with_inchikey=False)
    assert result.ok and result.smiles == "CC(=O)O" and result.inchikey is None


def test_reason_values_are_plain_strings():
    assert RejectReason("valence_error") is RejectReason.VALENCE_ERROR
    assert RejectReason.EMPTY == "empty"


def test_stereo_is_part_of_the_identity():
    from rdkit import Chem

    for smiles in ("Cc1cnn(CC2CC2)c1NC(=O)/C=C/c1ccccc1", "C[C@H](N)C(=O)O", "C/C=C\\C"):
        result = standardize_smiles(smiles)
        assert result.inchikey == Chem.MolToInchiKey(Chem.MolFromSmiles(smiles))
        assert not result.inchikey.endswith("UHFFFAOYSA-N")  # the stereo layer is present
    assert standardize_smiles("C/C=C/C").inchikey != standardize_smiles("C/C=C\\C").inchikey


def test_neutral_single_fragment_molecules_keep_rdkit_identity():
    from rdkit import Chem

    from pipelines.catalog import screening_library_path
    from pipelines.readers import read_molecules

    library = read_molecules(screening_library_path())["input"].head(300).tolist()
    for smiles in library:
        mol = Chem.MolFromSmiles(smiles)
        result = standardize_smiles(smiles)
        assert (result.smiles, result.inchikey) == (Chem.MolToSmiles(mol), Chem.MolToInchiKey(mol))


def test_parallel_path_equals_serial(monkeypatch):
    import pipelines.standardize as std
    from pipelines.catalog import load_embedded

    smiles = load_embedded(["toxcast_clean"])["smiles"].head(120).tolist() + ["", None, "xyz", "[Na+].[Cl-]"]
    serial = std.standardize_unique(smiles, n_jobs=1)
    monkeypatch.setattr(std, "PARALLEL_MIN_UNIQUE", 10)
    monkeypatch.setattr(std, "_CHUNK", 25)
    seen = []
    parallel = std.standardize_unique(smiles, n_jobs=2, progress=seen.append)
    assert parallel == serial
    assert seen[-1] == len(smiles) and len(seen) > 2
