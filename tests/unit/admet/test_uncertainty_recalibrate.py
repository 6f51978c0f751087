"""``fedadmet admet recalibrate``: the calibration rows are found again exactly, so recalibrating a bundle
with the code that trained it reproduces its calibration; older bundles without a split manifest are
re-derived (and refused when the data no longer match)."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from admet.bundle import load_bundle
from flows.cli import app

runner = CliRunner()
ENDPOINTS = ("solubility", "HLM_CLint")


@pytest.fixture(scope="module")
def blend_bundle(tmp_path_factory):
    """A real blend x1 bundle (network + LightGBM) on 300 Biogen molecules, and its training table."""
    from admet.config import ModelConfig
    from admet.fit import prepare_task_data, train_bundle
    from pipelines.catalog import load_embedded

    root = tmp_path_factory.mktemp("recal")
    long_df = load_embedded(list(ENDPOINTS))
    keep = long_df["compound_id"].drop_duplicates().head(300)
    table = long_df[long_df["compound_id"].isin(keep)]
    table.to_csv(root / "table.csv", index=False)
    cfg = ModelConfig.build(model="blend", featurizer="morgan_count", hidden=(64,), epochs=6, patience=0,
                            ensemble=1, batch_size=64, seed=0, lgbm_n_estimators=40)
    bundle = train_bundle(prepare_task_data(table), cfg, with_context=False)
    bundle.save(root / "bundle")
    return root / "bundle", root / "table.csv"


def _same_calibration(a, b):
    assert a.conformal == b.conformal
    assert a.calibrators == b.calibrators
    assert a.domain.threshold == pytest.approx(b.domain.threshold)
    np.testing.assert_array_equal(a.domain.reference, b.domain.reference)
    np.testing.assert_allclose(a.domain.box_low, b.domain.box_low)


def test_training_stores_split_manifest_and_calibration_counts(blend_bundle):
    bundle = load_bundle(blend_bundle[0])
    m = bundle.split_manifest
    assert m is not None and len(m.keys) == sum(bundle.info["split_counts"].values())
    counts = bundle.info["calibration_label_counts"]
    assert set(counts) == set(ENDPOINTS) and all(n > 0 for n in counts.values())
    assert counts == {k: v["n_calibration"] for k, v in bundle.metrics["calibration"].items()}
    unc = bundle.metrics["uncertainty"]
    for e in ENDPOINTS:
        assert unc[e]["test_coverage"] is not None and unc[e]["n_inside"] + unc[e]["n_outside"] <= unc[e]["n"]
    # blend x1: one member, so E_std is 0, but the network/LightGBM spread still exists
    pred = bundle.predict_smiles(["CCOc1ccccc1C(=O)NCCN(C)C", "Cc1ccc(S(=O)(=O)Nc2ccccn2)cc1"])
    assert (pred["solubility_std"] == 0).all()


def test_recalibrate_reproduces_the_training_calibration(blend_bundle, tmp_path):
    src, table = blend_bundle
    out = tmp_path / "recal"
    res = runner.invoke(app, ["admet", "recalibrate", str(src), "--data", str(table), "--out", str(out), "--n-jobs", "1"])
    assert res.exit_code == 0, res.output
    assert "exact" in res.output
    _same_calibration(load_bundle(src), load_bundle(out))
    run = json.loads((out / "recalibrate_run.json").read_text())
    assert run["report"]["exact"] is True and run["report"]["folds"][""] == 0


def test_older_bundle_without_manifest_is_re_derived_exactly(blend_bundle, tmp_path):
    src, table = blend_bundle
    old = load_bundle(src)
    old.split_manifest = None
    old.save(tmp_path / "old")
    assert not (tmp_path / "old" / "split.npz").exists()
    from admet.recalibrate import recalibrate_bundle

    report = recalibrate_bundle(tmp_path / "old", out=tmp_path / "new", data=table, n_jobs=1, with_context=False)
    assert report["exact"] and report["split"].startswith("re-derived")
    new = load_bundle(tmp_path / "new")
    _same_calibration(load_bundle(src), new)
    assert new.split_manifest is not None           # the next recalibration can look molecules up


def test_older_bundle_with_other_data_is_refused(blend_bundle, tmp_path):
    import pandas as pd

    src, table = blend_bundle
    old = load_bundle(src)
    old.split_manifest = None
    old.save(tmp_path / "old")
    df = pd.read_csv(table)
    df.iloc[:-40].to_csv(tmp_path / "fewer.csv", index=False)    # not the training data any more
    res = runner.invoke(app, ["admet", "recalibrate", str(tmp_path / "old"), "--data", str(tmp_path / "fewer.csv")])
    assert res.exit_code == 2
    assert "error:" in res.output and "split-manifest" in res.output and "Traceback" not in res.output


def test_recalibrate_bad_bundle_is_one_error_line(tmp_path):
    res = runner.invoke(app, ["admet", "recalibrate", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "error:" in res.output and "Traceback" not in res.output


def test_recalibrate_in_place_keeps_a_loadable_bundle(blend_bundle, tmp_path):
    src, table = blend_bundle
    dst = tmp_path / "b"
    shutil.copytree(src, dst)
    res = runner.invoke(app, ["admet", "recalibrate", str(dst), "--data", str(table), "--n-jobs", "1"])
    assert res.exit_code == 0, res.output
    _same_calibration(load_bundle(src), load_bundle(dst))


def test_borrow_test_moves_only_test_molecules_into_calibration(blend_bundle, tmp_path):
    from admet.recalibrate import recalibrate_bundle

    src, table = blend_bundle
    before = load_bundle(src)
    report = recalibrate_bundle(src, out=tmp_path / "b", data=table, n_jobs=1, with_context=False, borrow_test=0.5)
    after = load_bundle(tmp_path / "b")
    old = dict(zip(before.split_manifest.keys, before.split_manifest.split))
    new = dict(zip(after.split_manifest.keys, after.split_manifest.split))
    changed = {k for k in old if old[k] != new[k]}
    assert changed and report["borrowed_from_test"]["molecules"] == len(changed)
    assert all(old[k] == "test" and new[k] == "valid" for k in changed)       # never a training molecule
    for e, n in report["calibration_label_counts"].items():
        assert n >= before.info["calibration_label_counts"][e]
    assert sum(report["calibration_label_counts"].values()) > sum(before.info["calibration_label_counts"].values())
