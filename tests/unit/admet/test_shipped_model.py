"""The shipped base model: ``fedadmet admet pack`` on a real (small) blend bundle trained from the
command line, the resolver that ``predict`` / ``screen`` use without ``-m``, and its errors."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from admet import shipped
from flows.cli import app

runner = CliRunner()
#: two small embedded endpoints with official splits (HIA_Hou: TDC) and a fixed one (rPPB: Biogen)
ENDPOINTS = "HIA_Hou,rPPB"


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """(trained bundle, packed shipped folder): blend x1 from ``fedadmet admet train``, then ``pack``."""
    base = tmp_path_factory.mktemp("shipped")
    config = base / "small.json"
    config.write_text(json.dumps({"model": "blend", "ensemble": 1, "featurizer": "morgan_count", "hidden": [32],
                                  "epochs": 3, "patience": 0, "lgbm_n_estimators": 15, "lgbm_num_leaves": 7}))
    trained = base / "trained"
    res = runner.invoke(app, ["admet", "train", "--out", str(trained), "--endpoints", ENDPOINTS,
                              "--config", str(config), "--n-jobs", "1"])
    assert res.exit_code == 0, res.output
    out = base / "fedadmet-base-test"
    res = runner.invoke(app, ["admet", "pack", str(trained), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return trained, out


def test_pack_gzips_boosters_losslessly_and_writes_manifest_card_and_heldout(packed):
    trained, out = packed
    lgbm = out / "ensemble" / "member_00" / "lgbm"
    assert sorted(p.name for p in lgbm.glob("task_*")) == ["task_000.txt.gz", "task_001.txt.gz"]
    original = (trained / "ensemble" / "member_00" / "lgbm" / "task_000.txt").read_bytes()
    assert gzip.decompress((lgbm / "task_000.txt.gz").read_bytes()) == original
    manifest = json.loads((out / shipped.MANIFEST).read_text())
    assert manifest["version"] == shipped.VERSION and manifest["model"] == "blend x1"
    assert manifest["pack"]["max_abs_prediction_change"] == 0.0
    assert manifest["data_hash"] == json.loads((trained / "bundle.json").read_text())["data_hash"]
    assert set(manifest["versions"]) >= {"torch", "lightgbm", "rdkit"}
    sizes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert abs(manifest["size_bytes"] - sizes) < 2000  # the docs state a size measured with them in it
    # held-out list: the training run's folds, as many test molecules as the bundle was scored on
    n_molecules = json.loads((trained / "metrics.json").read_text())["n_molecules"]
    test_keys = shipped.read_heldout(out)
    assert len(test_keys) == n_molecules["test"] == manifest["heldout"]["folds"]["test"]
    assert shipped.read_heldout(out, "train").isdisjoint(test_keys)
    card = (out / shipped.CARD).read_text()
    assert "| HIA_Hou | classification | binary | higher | none |" in card
    assert "| AUROC |" in card and "MIT (Biogen)" in card and "CC BY 4.0 (TDC)" in card
    assert "make ship-model" in card and not (out / "model_card.md").exists()


def test_packed_bundle_predicts_exactly_like_the_trained_one(packed, tiny_library):
    from admet.bundle import load_bundle

    trained, out = packed
    smiles = pd.read_csv(tiny_library)["smiles"].tolist()
    a, b = load_bundle(trained).predict_smiles(smiles), load_bundle(out).predict_smiles(smiles)
    cols = ["HIA_Hou", "rPPB"]
    assert np.array_equal(a[cols].to_numpy(float), b[cols].to_numpy(float), equal_nan=True)
    assert np.isfinite(b[cols].to_numpy(float)[b["status"] == "ok"]).all()


def test_predict_without_model_uses_the_shipped_bundle(packed, tiny_library, tmp_path, monkeypatch):
    monkeypatch.setenv(shipped.ENV_OVERRIDE, str(packed[1]))
    out = tmp_path / "p.csv"
    res = runner.invoke(app, ["admet", "predict", str(tiny_library), "--out", str(out), "--n-jobs", "1"])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out)
    assert {"HIA_Hou", "rPPB_lower", "rPPB_upper"} <= set(df.columns) and len(df) == 14
    run = json.loads((tmp_path / "p.csv.run.json").read_text())
    assert run["shipped_model"] is True and run["model"] == str(packed[1])


def _error_line(res) -> str:
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output, res.output
    assert lines[0].startswith("error:"), res.output
    return " ".join(lines)


@pytest.mark.parametrize("command", ["predict", "screen"])
def test_missing_shipped_model_is_one_error_line(command, tiny_library, tmp_path, monkeypatch):
    monkeypatch.setenv(shipped.ENV_OVERRIDE, str(tmp_path / "nowhere"))
    args = (["admet", "predict", str(tiny_library), "--out", str(tmp_path / "p.csv")] if command == "predict"
            else ["screen", str(tiny_library), "--out", str(tmp_path / "run")])
    text = _error_line(runner.invoke(app, args))
    assert "shipped base model is missing" in text and "make ship-model" in text


def test_corrupt_shipped_model_is_caught_before_loading(packed, tiny_library, tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    shutil.copytree(packed[1], broken)
    target = broken / "ensemble" / "member_00" / "lgbm" / "task_001.txt.gz"
    target.write_bytes(target.read_bytes()[:100])  # truncated
    monkeypatch.setenv(shipped.ENV_OVERRIDE, str(broken))
    text = _error_line(runner.invoke(app, ["screen", str(tiny_library), "--out", str(tmp_path / "run")]))
    assert "task_001.txt.gz is corrupt or truncated" in text
    (broken / shipped.MANIFEST).write_text("{not json")
    text = _error_line(runner.invoke(app, ["admet", "predict", str(tiny_library), "--out", str(tmp_path / "p.csv")]))
    assert "SHIPPED.json is corrupt" in text


def test_resolver_prefers_an_explicit_model_and_defaults_to_models_folder(monkeypatch):
    monkeypatch.delenv(shipped.ENV_OVERRIDE, raising=False)
    assert shipped.shipped_model_dir() == shipped.models_dir() / f"{shipped.NAME}-{shipped.VERSION}"
    assert shipped.resolve_model_dir(Path("elsewhere")) == (Path("elsewhere"), False)


def _manifest(path: Path, keys, folds, digest: str) -> Path:
    codes = np.array([shipped.SPLIT_FOLDS.index(f) for f in folds], dtype=np.uint8)
    np.savez_compressed(path, keys=np.array(keys, dtype=str), fold=codes, data_hash=np.array(digest))
    return path


def test_pack_checks_a_given_split_manifest_against_the_bundle(packed, tmp_path):
    trained = packed[0]
    keys, folds, _ = shipped._read_split_file(trained / "split.npz")
    digest = json.loads((trained / "bundle.json").read_text())["data_hash"]
    wrong_hash = _manifest(tmp_path / "a.npz", keys, folds, "0" * 64)
    res = runner.invoke(app, ["admet", "pack", str(trained), "--out", str(tmp_path / "s1"),
                              "--split-manifest", str(wrong_hash)])
    assert "other training data" in _error_line(res) and not (tmp_path / "s1").exists()
    moved = ["train" if f == "test" else f for f in folds]  # the right data, but not the run's folds
    res = runner.invoke(app, ["admet", "pack", str(trained), "--out", str(tmp_path / "s2"),
                              "--split-manifest", str(_manifest(tmp_path / "b.npz", keys, moved, digest))])
    assert "trained and scored on" in _error_line(res)
    good = _manifest(tmp_path / "c.npz", keys, folds, digest)
    bare = tmp_path / "bare"
    shutil.copytree(trained, bare)
    (bare / "split.npz").unlink()  # as a bundle saved before split version 2
    meta = json.loads((bare / "bundle.json").read_text())
    meta["files"].pop("split.npz")
    (bare / "bundle.json").write_text(json.dumps(meta))
    res = runner.invoke(app, ["admet", "pack", str(bare), "--out", str(tmp_path / "s3"), "--split-manifest", str(good)])
    assert res.exit_code == 0, res.output
    assert shipped.read_heldout(tmp_path / "s3") == shipped.read_heldout(packed[1])
