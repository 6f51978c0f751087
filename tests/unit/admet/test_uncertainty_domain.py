"""Applicability domain with three signals on real drug-like data: peptides, macrocycles, metals and very
large molecules are outside; small drugs are inside; a bundle without domain data says unknown."""

import numpy as np
import pytest
from rdkit import Chem

from admet.domain import (
    BOX_DESCRIPTORS,
    INSIDE,
    OUTSIDE,
    UNKNOWN,
    ApplicabilityDomain,
    assess_without_domain,
    structure_flags,
)

POLYGLYCINE_30 = "NCC(=O)" + "NCC(=O)" * 28 + "NCC(=O)O"
LEUPROLIDE = ("CCNC(=O)[C@@H]1CCCN1C(=O)[C@H](CCCN=C(N)N)NC(=O)[C@H](CC(C)C)NC(=O)[C@@H](CC(C)C)NC(=O)"
              "[C@H](Cc1ccc(O)cc1)NC(=O)[C@H](CO)NC(=O)[C@H](Cc1c[nH]c2ccccc12)NC(=O)[C@H](Cc1cnc[nH]1)NC(=O)"
              "[C@@H]1CCC(=O)N1")
CYCLOSPORIN_A = ("CC[C@H]1C(=O)N(CC(=O)N([C@H](C(=O)N[C@H](C(=O)N([C@H](C(=O)N[C@H](C(=O)N[C@@H](C(=O)N("
                 "[C@H](C(=O)N([C@H](C(=O)N([C@H](C(=O)N([C@H](C(=O)N1)[C@@H]([C@H](C)C/C=C/C)O)C)C(C)C)C)"
                 "CC(C)C)C)CC(C)C)C)C)C)CC(C)C)C)C(C)C)CC(C)C)C)C")
SMALL_DRUGS = {"caffeine": "Cn1c(=O)c2c(ncn2C)n(C)c1=O", "diazepam": "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21",
               "carbamazepine": "NC(=O)N1c2ccccc2C=Cc2ccccc21", "haloperidol": "O=C(CCCN1CCC(O)(c2ccc(Cl)cc2)CC1)c1ccc(F)cc1"}


@pytest.fixture(scope="module")
def drug_domain():
    """Fitted on the embedded BBB (Martins) set: ~2,000 drugs and drug-like molecules."""
    from pipelines.catalog import load_embedded

    smiles = load_embedded(["BBB_Martins"])["smiles"].drop_duplicates().tolist()
    rng = np.random.default_rng(0)
    cal = set(rng.choice(len(smiles), 200, replace=False).tolist())
    train = [s for i, s in enumerate(smiles) if i not in cal]
    return ApplicabilityDomain.fit(train, [smiles[i] for i in sorted(cal)], percentile=5)


def test_peptides_and_macrocycles_are_outside_with_their_reasons(drug_domain):
    res = drug_domain.assess([POLYGLYCINE_30, LEUPROLIDE, CYCLOSPORIN_A])
    assert list(res.status) == [OUTSIDE] * 3
    flags = [set(f.split(";")) for f in res.flags]
    assert {"peptide", "large"} <= flags[0]
    assert {"peptide", "large"} <= flags[1]
    assert {"peptide", "macrocycle", "large"} <= flags[2]
    assert all(any(f.startswith("range:") for f in fl) for fl in flags)   # the descriptor box fires too


def test_small_drugs_are_inside_a_domain_fitted_on_drug_like_data(drug_domain):
    res = drug_domain.assess(list(SMALL_DRUGS.values()))
    assert list(res.status) == [INSIDE] * len(SMALL_DRUGS), dict(zip(SMALL_DRUGS, res.flags))
    assert all(f == "" for f in res.flags)
    assert np.all(res.similarity >= drug_domain.threshold)
    assert np.all(res.knn_similarity <= res.similarity + 1e-9)
    assert 0.8 <= drug_domain.calibration_inside <= 1.0   # most held-out drug-like molecules are inside


@pytest.mark.parametrize(("smiles", "flag"), [
    ("CC(=O)O[Hg]c1ccccc1", "metal"),                      # phenylmercuric acetate
    ("C1CCCCCCCCCCC1", "macrocycle"),                      # cyclododecane: a 12-membered ring
    ("C" * 70, "large"),                                   # heptacontane, MW 983
    ("NCC(=O)NCC(=O)NCC(=O)NCC(=O)NCC(=O)O", "peptide"),   # pentaglycine: 4 peptide bonds
])
def test_structure_rules(smiles, flag):
    assert flag in structure_flags(Chem.MolFromSmiles(smiles))


def test_small_molecules_raise_no_structure_flag():
    for s in [*SMALL_DRUGS.values(), "NCCCC[C@H](N[C@@H](CCc1ccccc1)C(=O)O)C(=O)N1CCC[C@H]1C(=O)O"]:  # + lisinopril
        assert structure_flags(Chem.MolFromSmiles(s)) == []


def test_without_domain_data_everything_is_unknown_but_flags_are_kept():
    res = assess_without_domain([SMALL_DRUGS["caffeine"], CYCLOSPORIN_A, "not a smiles"])
    assert list(res.status[:2]) == [UNKNOWN, UNKNOWN] and res.status[2] is None
    assert "macrocycle" in res.flags[1]
    assert list(res.in_domain[:2]) == [pd_na(), pd_na()]


def pd_na():
    import pandas as pd

    return pd.NA


def test_bundle_without_domain_reports_unknown_never_inside(tiny_bundle):
    from admet.bundle import load_bundle

    bundle = load_bundle(tiny_bundle)
    with_domain = bundle.predict_smiles([SMALL_DRUGS["diazepam"], LEUPROLIDE])
    assert with_domain["ad_status"].iloc[1] == OUTSIDE
    assert with_domain["ad_status"].iloc[0] in (INSIDE, OUTSIDE)
    bundle.domain = None
    out = bundle.predict_smiles([SMALL_DRUGS["diazepam"], LEUPROLIDE])
    assert out["ad_status"].tolist() == [UNKNOWN, UNKNOWN]
    assert out["ad_similarity"].isna().all()
    assert "peptide" in out["ad_flags"].iloc[1]
    for t in bundle.task_names:
        assert out[f"{t}_in_domain"].isna().all()


def test_domain_round_trip_and_older_files_without_a_box(drug_domain, tmp_path):
    drug_domain.save(tmp_path / "d.npz")
    again = ApplicabilityDomain.load(tmp_path / "d.npz")
    np.testing.assert_allclose(again.box_low, drug_domain.box_low)
    assert len(again.box_high) == len(BOX_DESCRIPTORS)
    queries = [LEUPROLIDE, *SMALL_DRUGS.values()]
    assert list(again.assess(queries).flags) == list(drug_domain.assess(queries).flags)
    np.savez_compressed(tmp_path / "old.npz", reference=drug_domain.reference, threshold=np.float64(0.3),
                        percentile=np.float64(5.0), n_training=np.int64(10))
    old = ApplicabilityDomain.load(tmp_path / "old.npz")
    assert old.box_low is None
    res = old.assess([SMALL_DRUGS["caffeine"], CYCLOSPORIN_A])
    assert res.status[1] == OUTSIDE and not any(f.startswith("range:") for f in res.flags[1].split(";"))


def test_screening_report_counts_molecules_per_domain_reason():
    import pandas as pd

    from flows.screening_steps import domain_reason_counts

    ranked = pd.DataFrame({"ad_flags": ["", "peptide;large;range:MolWt", "low_similarity", None, "peptide"]})
    assert domain_reason_counts(ranked) == {"peptide": 2, "large": 1, "range:MolWt": 1, "low_similarity": 1}
    assert domain_reason_counts(pd.DataFrame({"x": [1]})) == {}
