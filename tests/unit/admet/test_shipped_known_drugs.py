"""bench/known_drugs.py: the pair / flag logic on a tiny bundle trained to known answers, and (slow) a
run on the shipped base model that only checks every row is produced (its failures are findings)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]


def _load_bench():
    spec = importlib.util.spec_from_file_location("known_drugs_bench", ROOT / "bench" / "known_drugs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


kd = _load_bench()


def test_every_smiles_is_the_named_drug():
    kd.check_structures()  # raises on a formula mismatch
    bad = dict(kd.DRUGS, caffeine=("Cn1cnc2c1c(=O)[nH]c(=O)n2C", "C8H10N4O2"))  # theophylline-like typo
    saved = kd.DRUGS
    try:
        kd.DRUGS = bad
        with pytest.raises(ValueError, match="caffeine"):
            kd.check_structures()
    finally:
        kd.DRUGS = saved


@pytest.fixture(scope="module")
def known_answer_bundle():
    """An MTNN memorising the known drugs: BBB and hERG labelled as the issue expects, AMES inverted
    (mutagens 0, Ames-negative drugs 1), so the BBB / hERG checks must pass and every AMES one fail."""
    from admet.config import ModelConfig
    from admet.fit import train_bundle
    from admet.tasks import REGRESSION, TaskData, TaskSpec
    from pipelines.catalog import load_embedded

    names = list(kd.DRUGS)
    endpoints = [c[1] for c in kd.CHECKS]
    Y = np.full((len(names), len(endpoints)), np.nan)
    for j, (_, _, high, low, _) in enumerate(kd.CHECKS):
        for d in high:
            Y[names.index(d), j] = 0.0 if endpoints[j] == "AMES" else 1.0
        for d in low:
            Y[names.index(d), j] = 1.0 if endpoints[j] == "AMES" else 0.0
    # calibration and test rows: other real molecules with middling labels on every endpoint
    pad = load_embedded(["solubility"])["smiles"].drop_duplicates().head(12).tolist()
    smiles = [kd.DRUGS[n][0] for n in names] + pad
    Y = np.vstack([Y, np.full((len(pad), len(endpoints)), 0.5)])
    split = np.array(["train"] * len(names) + ["valid"] * 8 + ["test"] * 4, dtype=object)
    tasks = [TaskSpec(e, REGRESSION) for e in endpoints]
    td = TaskData(smiles=smiles, inchikeys=list(smiles), Y=Y, censor=np.zeros(Y.shape, np.int8), tasks=tasks,
                  split=split)
    cfg = ModelConfig.build(featurizer="morgan_count", hidden=(64,), dropout=0.0, epochs=300, patience=0,
                            ensemble=1, batch_size=8, valid_fraction=0.0, lr=3e-3, seed=0)
    return train_bundle(td, cfg, with_context=False)


def test_checks_pass_and_fail_where_the_labels_say(known_answer_bundle):
    from rdkit import Chem

    aspirin = Chem.MolToInchiKey(Chem.MolFromSmiles(kd.DRUGS["aspirin"][0])).split("-")[0]
    result = kd.evaluate(known_answer_bundle, {"hERG": {aspirin: 0.0}}, {aspirin: "test"})
    by_endpoint = {c["endpoint"]: c for c in result["checks"]}
    seen = {r["drug"]: (r["in_training_data"], r["data_label"], r["fold"]) for r in by_endpoint["hERG"]["drugs"]}
    assert seen.pop("aspirin") == (True, 0.0, "test") and set(seen.values()) == {(False, None, "")}
    assert by_endpoint["BBB_Martins"]["status"] == "pass" and by_endpoint["BBB_Martins"]["n_pairs"] == 16
    assert by_endpoint["hERG"]["status"] == "pass" and by_endpoint["hERG"]["n_pairs"] == 8
    ames = by_endpoint["AMES"]
    # 9 pairs + 3 flags, every one failing: the inverted labels are what the model learnt
    assert ames["n_pairs"] == 12 and ames["n_pass"] == 0 and ames["status"].startswith("FAIL")
    assert not any(r["flagged"] for r in ames["drugs"] if r["expected"] == "high")
    assert result["n_pass"] == 24 and result["n_checks"] == 36
    ranks = sorted(r["rank"] for r in by_endpoint["BBB_Martins"]["drugs"])
    assert ranks == list(range(1, 9))
    md = kd.to_markdown(result)
    assert "24 of 36" in md and "2-aminoanthracene <= aspirin" in md and "aflatoxin B1 not flagged" in md


def test_missing_endpoint_is_reported_not_raised(tiny_bundle):
    from admet.bundle import load_bundle

    result = kd.evaluate(load_bundle(tiny_bundle))  # solubility / HLM_CLint only
    assert [c["status"] for c in result["checks"]] == ["endpoint not in the model"] * 3
    assert result["n_checks"] == 0


@pytest.mark.slow
def test_known_drugs_on_the_shipped_model(tmp_path):
    from admet.shipped import shipped_model_dir

    if not (shipped_model_dir() / "bundle.json").is_file():
        pytest.skip("the shipped base model is not in this checkout")
    assert kd.main(["--out", str(tmp_path)]) == 0
    import json

    result = json.loads((tmp_path / "known_drugs.json").read_text())
    # every check has every drug row with a finite score; pass or fail is the finding, not the test
    assert [len(c["drugs"]) for c in result["checks"]] == [8, 6, 6]
    assert all(np.isfinite(r["score"]) for c in result["checks"] for r in c["drugs"])
    assert result["n_checks"] == 16 + 8 + 12
