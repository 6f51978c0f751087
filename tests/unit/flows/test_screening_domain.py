"""The screening report's applicability-domain counts: a molecule is inside only when the model
says so; a bundle without domain data gives 'unknown', never 'inside'."""

from __future__ import annotations

import pandas as pd

from admet.bundle import load_bundle
from flows.screening_steps import count_out_of_domain, domain_counts


def _flags(*columns) -> pd.DataFrame:
    return pd.DataFrame({f"e{i}_in_domain": pd.array(c, dtype="boolean") for i, c in enumerate(columns)})


def test_unknown_domain_is_neither_inside_nor_outside():
    flags = _flags([True, False, None, None], [True, True, None, True])
    n_out = count_out_of_domain(flags)
    assert n_out.tolist()[:2] == [0, 1] and n_out.isna().tolist() == [False, False, True, True]
    assert domain_counts(pd.DataFrame({"n_out_of_domain": n_out})) == {"inside": 1, "outside": 1, "unknown": 2}


def test_real_bundle_with_and_without_domain_data(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    smiles = ["CCO", "c1ccccc1C(=O)Nc1ccc(O)cc1", "CC(C)Cc1ccc(cc1)C(C)C(=O)O"]
    cols = [f"{t}_in_domain" for t in bundle.task_names]
    with_domain = domain_counts(pd.DataFrame({"n_out_of_domain": count_out_of_domain(
        bundle.predict_smiles(smiles)[cols])}))
    assert with_domain["unknown"] == 0 and with_domain["inside"] + with_domain["outside"] == 3
    bundle.domain = None  # e.g. a federated global model: the server never sees structures
    without = domain_counts(pd.DataFrame({"n_out_of_domain": count_out_of_domain(
        bundle.predict_smiles(smiles)[cols])}))
    assert without == {"inside": 0, "outside": 0, "unknown": 3}
