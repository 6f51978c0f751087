"""The single-pass prediction step (``admet.prediction_inputs.featurize_for_prediction``) gives exactly what the
separate steps gave: ``featurize_smiles`` + ``domain_inputs`` + ``physchem_frame``, each parsing again.
Real molecules: slices of the vendored TDC sets (salts, charges, isotopes, large molecules) after the
project's standardization, plus rule-flag cases; and the shipped model's output columns both ways."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from admet.domain import domain_inputs
from admet.predict import _prepare_chunk, predict_frame
from admet.prediction_inputs import PredictionInputs, featurize_for_prediction
from pipelines.featurize import featurize_smiles
from pipelines.physchem import physchem_frame
from pipelines.standardize import standardize_many

ROOT = Path(__file__).resolve().parents[3]
TDC = ROOT.parent / "shared" / "data" / "tdc_admet"
SHIPPED = ROOT / "models" / "fedadmet-base-1.1"
SETS = ("ames", "herg", "ppbr_az", "clintox_moleculenet", "vdss_lombardo", "half_life_obach", "ld50_zhu")
EXTRA = [
    "[2H]C([2H])([2H])Oc1ccccc1C(=O)O",                      # explicit isotopic hydrogens (QED's H path)
    "C[N+](C)(C)CCOC(C)=O",                                    # permanent cation (net charge in the box)
    "O=C1CCCCCCCCCCCN1",                                       # 13-membered ring: macrocycle flag
    "NCC(=O)NCC(=O)NCC(=O)NCC(=O)NCC(=O)NCC(=O)O",             # peptide flag
    "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC(=O)O",  # large, Ipc overflow
]


def _library(per_set: int = 12) -> list[str]:
    smiles: list[str] = []
    for key in SETS:
        path = TDC / key / "data.csv"
        if path.exists():
            smiles += pd.read_csv(path)["smiles"].head(per_set).tolist()
    if len(smiles) < 50:
        pytest.skip(f"TDC data not found under {TDC}")
    return [s.smiles for s in standardize_many(smiles + EXTRA, with_inchikey=False) if s.ok]


@pytest.fixture(scope="module")
def library() -> list[str]:
    return _library()


@pytest.mark.parametrize("spec", ["morgan_count+rdkit2d", "morgan_count+rdkit2d_fast", "morgan_count",
                                  "rdkit2d+morgan_bits"])
def test_single_pass_equals_the_separate_steps(library, spec):
    got = featurize_for_prediction(library, spec)
    X, valid, dom, phys = got.X, got.valid, got.domain, got.physchem
    fm = featurize_smiles(library, spec=spec, n_jobs=1)
    assert X.dtype == fm.X.dtype and X.shape == fm.X.shape
    assert np.array_equal(X, fm.X, equal_nan=True)
    assert np.array_equal(valid, fm.valid)
    ref = domain_inputs(library)
    rows = np.flatnonzero(valid)
    assert [dom.bits[i] for i in rows] == [ref.bits[i] for i in rows]
    assert np.array_equal(dom.descriptors[rows], ref.descriptors[rows], equal_nan=True)
    assert [dom.flags[i] for i in rows] == [ref.flags[i] for i in rows]
    assert np.array_equal(phys[rows], physchem_frame(library).to_numpy(float)[rows], equal_nan=True)
    flagged = {f for fl in dom.flags if fl for f in fl}
    assert {"macrocycle", "peptide"} <= flagged  # the rule-flag cases were really checked
    assert np.isnan(X).any() or spec in ("morgan_count",)  # rdkit2d's NaN cells (Ipc) are compared too


def test_bits_come_from_the_morgan_counts_and_descriptors_from_rdkit2d(library, monkeypatch):
    """The shortcuts are taken: with the domain's own fingerprint and box functions disabled the
    default spec still gives the same inputs (so the speed-up is real, not a silent fallback)."""
    import admet.domain as domain

    expected = featurize_for_prediction(library, "morgan_count+rdkit2d")

    def no_generator():
        raise AssertionError("the domain fingerprint was recomputed")

    monkeypatch.setattr(domain, "_generator", no_generator)
    monkeypatch.setattr(domain, "BOX_DESCRIPTORS", {k: (v if k == "NetCharge" else no_generator)
                                                    for k, v in domain.BOX_DESCRIPTORS.items()})
    monkeypatch.setattr("admet.prediction_inputs.physchem_frame", lambda s: no_generator())
    got = featurize_for_prediction(library, "morgan_count+rdkit2d")
    assert got.domain.bits == expected.domain.bits
    assert np.array_equal(got.domain.descriptors, expected.domain.descriptors, equal_nan=True)
    assert np.array_equal(got.physchem, expected.physchem, equal_nan=True)


def _old_prepare(inputs: list, spec: str) -> tuple:
    """The worker step as it was: standardize, featurize, then domain inputs and physchem apart."""
    std = standardize_many(inputs, with_inchikey=True)
    smiles = [s.smiles if s.ok else None for s in std]
    ok = [i for i, s in enumerate(smiles) if s is not None]
    ok_smiles = [smiles[i] for i in ok]
    fm = featurize_smiles(ok_smiles, spec=spec, n_jobs=1)
    return (smiles, [str(s.reason.value) if s.reason else "" for s in std], np.asarray(ok, dtype=np.int64),
            [s.inchikey if s.ok else None for s in std],
            PredictionInputs(fm.X, fm.valid, domain_inputs(ok_smiles), physchem_frame(ok_smiles).to_numpy(float)))


@pytest.mark.skipif(not (SHIPPED / "bundle.json").exists(), reason="shipped model not in this checkout")
def test_shipped_model_outputs_identical(library):
    """Every output column of the shipped model (47 endpoints, domain, physchem) is equal both ways."""
    from admet.bundle import load_bundle

    bundle = load_bundle(SHIPPED)
    inputs = library[:60] + ["C1CC(", "[Fe]", ""]
    chunk = pd.DataFrame({"row": np.arange(len(inputs)), "input": inputs})
    new = predict_frame(bundle, chunk, _prepare_chunk(inputs, None, bundle.featurizer_spec))
    old = predict_frame(bundle, chunk, _old_prepare(inputs, bundle.featurizer_spec))
    assert (new["status"] == "ok").sum() >= 55 and len(bundle.task_names) >= 40
    pd.testing.assert_frame_equal(new, old, check_exact=True)


@pytest.mark.skipif(not (SHIPPED / "bundle.json").exists(), reason="shipped model not in this checkout")
def test_pool_blocks_give_the_in_process_output(library, tmp_path, monkeypatch):
    """With workers, each chunk is featurized in blocks (``WORKER_BLOCK``) spread over the workers and
    joined before the chunk is predicted; the file equals the in-process run's exactly (duplicates
    across blocks and chunks, a bad row, a partial block)."""
    import admet.predict as predict
    from admet.bundle import load_bundle

    smiles = library[:23]
    lib = tmp_path / "lib.csv"
    rows = ["smiles", *smiles[:9], smiles[2], "C1CC(", *smiles[9:], smiles[0]]  # 2 repeats, 1 unparsable
    lib.write_text("\n".join(rows) + "\n")
    bundle = load_bundle(SHIPPED)
    one = predict.predict_file(SHIPPED, lib, tmp_path / "one.parquet", chunk_size=10, n_jobs=1, bundle=bundle)
    monkeypatch.setattr(predict, "WORKER_BLOCK", 4)
    two = predict.predict_file(SHIPPED, lib, tmp_path / "two.parquet", chunk_size=10, n_jobs=2, bundle=bundle)
    assert (one.n_rows, one.n_ok, one.n_chunks) == (two.n_rows, two.n_ok, two.n_chunks) == (len(rows) - 1,
                                                                                            len(rows) - 2, 3)
    a, b = pd.read_parquet(tmp_path / "one.parquet"), pd.read_parquet(tmp_path / "two.parquet")
    assert a["duplicate_of"].notna().sum() == 2
    pd.testing.assert_frame_equal(a, b, check_exact=True)
