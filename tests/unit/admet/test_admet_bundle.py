"""Bundle round trip and the checks on load (uses the session-wide ``tiny_bundle``)."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from admet.bundle import load_bundle, output_columns
from pipelines.errors import InputError

SMILES = ["CCOc1ccccc1C(=O)NCCN(C)C", "Cc1ccc(S(=O)(=O)Nc2ccccn2)cc1", "not a smiles", "", "[Na+].[Cl-]",
          "CC(C)Cc1ccc(C(C)C(=O)O)cc1"]


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path):
    dst = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, dst)
    return dst


def test_round_trip_predictions_identical_and_rows_accounted(tiny_bundle, tmp_path):
    b1 = load_bundle(tiny_bundle)
    p1 = b1.predict_smiles(SMILES)
    b1.save(tmp_path / "again")
    p2 = load_bundle(tmp_path / "again").predict_smiles(SMILES)
    pd.testing.assert_frame_equal(p1, p2)
    assert len(p1) == len(SMILES)
    assert list(p1.columns) == ["input", "smiles", "status", "reason"] + output_columns(b1.task_names)
    assert p1["status"].tolist() == ["ok", "ok", "rejected", "rejected", "rejected", "ok"]
    assert p1["reason"].tolist()[2:5] == ["unparsable", "empty", "no_carbon"]
    ok = p1["status"] == "ok"
    for name in b1.task_names:
        assert p1.loc[ok, name].notna().all() and p1.loc[~ok, name].isna().all()
        assert (p1.loc[ok, f"{name}_lower"] < p1.loc[ok, name]).all()
        assert (p1.loc[ok, f"{name}_upper"] > p1.loc[ok, name]).all()
        assert p1.loc[ok, f"{name}_pct_approved"].between(0, 100).all()
        assert (p1.loc[ok, f"{name}_std"] > 0).all()  # two members disagree somewhat
    card = (tiny_bundle / "model_card.md").read_text()
    assert "Threshold" in card and "approved" in card and b1.data_hash in card


def test_wrong_path_and_non_bundle_folder(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_bundle(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InputError, match="must be a folder"):
        load_bundle(tmp_path / "file.txt")
    with pytest.raises(InputError, match="not a model bundle"):
        load_bundle(tmp_path)


def test_truncated_or_corrupt_files_are_refused(bundle_copy):
    weights = next(bundle_copy.glob("ensemble/member_00/*.pt"))
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_bundle(bundle_copy)
    weights.unlink()
    with pytest.raises(InputError, match="missing"):
        load_bundle(bundle_copy)
    (bundle_copy / "bundle.json").write_text('{"format": 1, "tas')
    with pytest.raises(InputError, match="corrupt"):
        load_bundle(bundle_copy)


def _edit_meta(folder, fn):
    meta = json.loads((folder / "bundle.json").read_text())
    fn(meta)
    (folder / "bundle.json").write_text(json.dumps(meta))


def test_mismatched_featurizer_config_fails_clearly(bundle_copy):
    def change(meta):
        meta["featurizer"]["config"]["morgan_count"]["params"]["radius"] = 3

    _edit_meta(bundle_copy, change)
    with pytest.raises(InputError, match="another featurizer configuration"):
        load_bundle(bundle_copy)


def test_library_major_version_mismatch_fails_clearly(bundle_copy):
    _edit_meta(bundle_copy, lambda meta: meta["versions"].update(torch="1.13.1"))
    with pytest.raises(InputError, match="torch major version 1"):
        load_bundle(bundle_copy)
    minor = bundle_copy.parent / "minor"
    shutil.copytree(bundle_copy, minor)
    _edit_meta(minor, lambda meta: meta["versions"].update(torch="2.0.1"))
    load_bundle(minor)  # same major: loads


def test_metrics_and_calibration_recorded(tiny_bundle):
    b = load_bundle(tiny_bundle)
    meta = json.loads((tiny_bundle / "bundle.json").read_text())
    assert set(meta["conformal"]) == set(b.task_names)
    assert all(c["q"] is not None and c["q"] > 0 for c in meta["conformal"].values())
    assert 0 < meta["domain"]["threshold"] < 1
    assert np.all(np.diff(b.approved.sorted_predictions[b.task_names[0]]) >= 0)
    assert b.approved.n_drugs > 2000
