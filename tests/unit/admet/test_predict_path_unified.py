"""Every prediction entry point goes through one path (``admet.prediction_inputs`` + ``ModelBundle.predict_inputs``)
and gives what the separate steps gave before it: ``featurize_smiles`` for the features, ``physchem_frame`` for the
physicochemical columns and ``predict_features`` recomputing the domain inputs from SMILES, each parsing again.

Real molecules: the first 300 of the MOSES sample, salts, a charged parent, bad SMILES (unparsable, empty, metal only,
not a string); the shipped model (47 endpoints, domain, approved-drug percentiles). The expectations are computed
here from the featurizers, physchem and the bundle's ``predict_features`` directly, not with the code under test.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from admet.prediction_inputs import separate_steps_predict_smiles
from pipelines.featurize import featurize_smiles
from pipelines.physchem import PHYSCHEM_COLUMNS, physchem_frame

ROOT = Path(__file__).resolve().parents[3]
MOSES = ROOT.parent / "shared" / "data" / "moses_100k.smi.gz"
SHIPPED = ROOT / "models" / "fedadmet-base-1.1"
EXTRA = [
    "CC(=O)Oc1ccccc1C(=O)[O-].[Na+]",          # sodium salt: the parent acid is predicted
    "CN1CCC[C@H]1c1cccnc1.Cl.Cl",               # dihydrochloride
    "C[N+](C)(C)CCOC(C)=O",                     # permanent cation
    "C1CC(",                                    # unparsable
    "",                                         # empty
    "[Fe]",                                     # metal only
    "not a smiles",
]

pytestmark = pytest.mark.skipif(not (SHIPPED / "bundle.json").exists() or not MOSES.exists(),
                                reason="shipped model or MOSES sample not in this checkout")


@pytest.fixture(scope="module")
def inputs() -> list:
    with gzip.open(MOSES, "rt") as fh:
        moses = [line.split()[0] for _, line in zip(range(300), fh)]
    return moses[:150] + EXTRA + moses[150:] + [None]


@pytest.fixture(scope="module")
def bundle():
    from admet.bundle import load_bundle

    return load_bundle(SHIPPED)


@pytest.fixture(scope="module")
def expected(bundle, inputs) -> pd.DataFrame:
    return separate_steps_predict_smiles(bundle, inputs)


def test_predict_smiles_equals_the_separate_steps(bundle, inputs, expected):
    got = bundle.predict_smiles(inputs)
    assert (got["status"] == "ok").sum() == 303  # 300 MOSES + 3 salts/cation
    rejected = got.loc[got["status"] == "rejected", "reason"]
    assert set(rejected) >= {"unparsable", "empty", "metal_only"} and len(rejected) == len(EXTRA) - 3 + 1
    assert got.loc[150, "smiles"] == "CC(=O)Oc1ccccc1C(=O)O"  # the salt's parent
    assert got["ad_status"].notna().sum() == 303 and got[bundle.task_names].notna().all(axis=1).sum() >= 300
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_predict_smiles_with_worker_processes_is_the_same(bundle, inputs, expected, monkeypatch):
    """A long list is featurized in blocks over worker processes (here 4 blocks of 80 on 2 workers)."""
    import admet.prediction_inputs as pi

    monkeypatch.setattr(pi, "POOL_BLOCK", 80)
    monkeypatch.setattr(bundle.features, "n_jobs", 2)
    pd.testing.assert_frame_equal(bundle.predict_smiles(inputs), expected, check_exact=True)


def test_predict_smiles_of_only_bad_rows_keeps_their_reasons(bundle):
    got = bundle.predict_smiles(["C1CC(", "", "[Fe]"])
    assert got["status"].tolist() == ["rejected"] * 3
    assert got["reason"].tolist() == ["unparsable", "empty", "metal_only"]
    assert got[bundle.task_names].isna().all().all()


def test_screening_chunks_equal_the_separate_steps(bundle, inputs, tmp_path):
    """The screening run (plain functions; the flow's tasks wrap the same ones) ranks and rejects exactly
    what the old chunk step (``featurize_smiles`` + ``physchem_frame`` + ``predict_features``) gave."""
    from flows import screening_steps as steps
    from flows.desirability import load_profile

    lib = tmp_path / "lib.csv"
    pd.DataFrame({"smiles": [s if s is not None else "" for s in inputs],
                  "id": [f"M{i}" for i in range(len(inputs))]}).to_csv(lib, index=False)
    cfg = steps.ScreeningConfig(library=lib, bundle_dir=SHIPPED, out_dir=tmp_path / "out", chunk_size=128, use_cache=False)
    result = steps.screen_plain(cfg)

    validation = steps.validate_library(steps.read_library(lib))
    accepted = validation.accepted.reset_index(drop=True)
    smiles = accepted["smiles"].tolist()
    parts, valid = [], []
    for start in range(0, len(smiles), 128):
        chunk = smiles[start:start + 128]
        fm = featurize_smiles(chunk, spec=bundle.featurizer_spec, n_jobs=1)
        old = pd.concat([physchem_frame(chunk), bundle.predict_features(fm.X, chunk, fm.valid)], axis=1)
        new = steps.predict_chunk(SHIPPED, chunk, steps.featurize_chunk(chunk, bundle.featurizer_spec))
        assert list(new.columns) == list(old.columns)
        assert fm.valid.all()  # so the old physchem of every row is an output
        pd.testing.assert_frame_equal(new, old, check_exact=True)
        parts.append(old)
        valid.append(fm.valid)
    profile = load_profile(None)
    ranked, failed = steps.rank_predictions(accepted, pd.concat(parts, ignore_index=True), np.concatenate(valid), profile,
                                      bundle.task_names, float(getattr(bundle.config, "coverage", 0.9)))
    assert len(result.ranked) == 303 and len(result.ranked) + len(result.rejects) == len(inputs)
    assert set(PHYSCHEM_COLUMNS) <= set(result.ranked.columns)
    pd.testing.assert_frame_equal(result.ranked, ranked, check_exact=True)
    pd.testing.assert_frame_equal(result.rejects, steps.all_rejects(validation.rejected, failed), check_exact=True)
    assert result.rejects["reason"].value_counts().to_dict() == {"unparsable": 2, "empty": 2, "metal_only": 1}
