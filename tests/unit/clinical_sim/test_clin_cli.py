"""`fedadmet trial ...` end to end through the Typer app (real model, real simulation, real files)."""

import json

import pandas as pd
import pytest
from clin_synthetic import make_trials
from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()
ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
DESIGN = """
[trial]
n_trials = 60
n_per_arm = 40
[pk]
cl_l_h = 10.0
v_l = 80.0
ka_h = 1.0
f = 0.6
"""


def test_prior_json():
    res = runner.invoke(app, ["trial", "prior", "--phase", "3", "--area", "oncology", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc[0]["p_transition"] == pytest.approx(0.477) and "2011-2020" in doc[-1]["source"]


def test_simulate_writes_outputs(tmp_path):
    design = tmp_path / "design.toml"
    design.write_text(DESIGN)
    out = tmp_path / "sim"
    res = runner.invoke(app, ["trial", "simulate", "--compound", ASPIRIN, "--design", str(design), "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert 0 <= summary["p_success"] <= 1 and summary["n_trials"] == 60
    assert len(pd.read_csv(out / "trials.csv")) == 60
    for name in ("exposure.png", "response.png", "design.toml", "config.json"):
        assert (out / name).stat().st_size > 0


def test_simulate_without_pk_source_is_a_clear_error(tmp_path, monkeypatch):
    # no --admet-model, no explicit [pk], and no shipped base model to fall back on
    monkeypatch.setenv("FEDADMET_BASE_MODEL", str(tmp_path / "no_shipped_model"))
    res = runner.invoke(app, ["trial", "simulate", "--compound", ASPIRIN, "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "shipped base model" in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[trial]\nn_per_arm = -3\n")
    res = runner.invoke(app, ["trial", "simulate", "--compound", ASPIRIN, "--design", str(bad), "--out",
                              str(tmp_path / "y")])
    assert res.exit_code == 2


@pytest.mark.slow
def test_train_then_predict_keeps_every_row(tmp_path):
    train = make_trials(200, seed=0)
    train.to_csv(tmp_path / "train.csv", index=False)
    score = make_trials(6, seed=5)
    score.loc[2, "smiless"] = "[]"  # cannot be scored
    score.to_csv(tmp_path / "score.csv", index=False)
    res = runner.invoke(app, ["trial", "train", "--data", str(tmp_path / "train.csv"), "--out",
                              str(tmp_path / "model"), "--seeds", "1"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["trial", "predict", str(tmp_path / "score.csv"), "--model", str(tmp_path / "model"),
                              "--out", str(tmp_path / "pred.csv")])
    assert res.exit_code == 0, res.output
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert pred["nctid"].tolist() == score["nctid"].tolist()
    assert pred.loc[2, "status"] == "unscored" and "smiless" in pred.loc[2, "reason"]
    ok = pred.drop(index=2)
    assert (ok["status"] == "ok").all() and ok["p_success"].between(0, 1).all()
    assert ok["top_features"].str.len().gt(0).all()
