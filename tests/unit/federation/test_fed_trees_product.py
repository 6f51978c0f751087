"""Federated trees from the product (issue 10 §5): ``fedadmet federate --federated-trees`` runs Flower's
FedXgbBagging after the NN run, the blend gets them as a fourth per-endpoint option, the report names
them, and each node's blended bundle carries the federated models it holds.

Real catalog slice (3 partners, 2 endpoints, 600 rows), real featurization, torch, LightGBM, xgboost and
Flower's in-process transport; the command runs in this process (``CliRunner``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from admet.bundle import load_bundle
from federation import blend, blend_bundle
from federation import partners as partners_mod
from federation.config import TREE_PATIENCE, TREE_ROUNDS, FederatedConfig
from federation.run import load_all_partners, node_work_dir
from federation.trees import TreeSettings, model_path, predictions_path
from pipelines.errors import InputError

ENDPOINTS = ("HLM_CLint", "BBB_Martins")
SLICE = dict(n_partners=3, endpoints=ENDPOINTS, max_rows=600, alpha=1.0, seed=0, engine="inprocess")


def test_config_carries_the_tree_settings_through_the_run_config(tmp_path):
    assert (TreeSettings().rounds, TreeSettings().patience) == (TREE_ROUNDS, TREE_PATIENCE)
    cfg = FederatedConfig(out_dir=tmp_path, federated_trees=True, blend_rule="endpoint", tree_rounds=7, tree_patience=2, seed=3)
    back = FederatedConfig.from_run_config(cfg.to_run_config())
    assert back.to_dict() == cfg.to_dict()
    s = TreeSettings.from_config(back)
    assert (s.rounds, s.patience, s.seed) == (7, 2, 3)
    for bad in ({"secagg": True}, {"dp_clip": 1.0, "dp_noise": 0.5}):
        with pytest.raises(InputError, match="without secure aggregation and without DP"):
            FederatedConfig(out_dir=tmp_path, federated_trees=True, blend_rule="endpoint", **bad)
    with pytest.raises(InputError, match="no-baselines"):
        FederatedConfig(out_dir=tmp_path, federated_trees=True, blend_rule="endpoint", baselines=False)
    with pytest.raises(InputError, match="tree-rounds"):
        FederatedConfig(out_dir=tmp_path, federated_trees=True, blend_rule="endpoint", tree_rounds=0)
    # the trees are an option to choose among: the no-choice equal rule refuses them
    with pytest.raises(InputError, match="--blend-rule endpoint"):
        FederatedConfig(out_dir=tmp_path, federated_trees=True)


def test_federate_refuses_trees_with_secagg_in_one_line(tmp_path):
    exe = Path(sys.executable).with_name("fedadmet")
    res = subprocess.run([str(exe), "federate", "--federated-trees", "--secagg", "--partners", "3", "--out",
                          str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert "secure aggregation" in lines[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def federated(tmp_path_factory):
    from flows.cli import app

    root = tmp_path_factory.mktemp("fed_trees_product")
    prep = FederatedConfig(out_dir=root / "prep", **SLICE)
    partners_dir = partners_mod.prepare_partners(prep)
    out = root / "run"
    res = CliRunner().invoke(app, ["federate", "--partners-dir", str(partners_dir), "--partners", "3",
                                   "--rounds", "1", "--local-epochs", "1", "--hidden", "32", "--engine", "inprocess",
                                   "--federated-trees", "--tree-rounds", "4", "--tree-patience", "2",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    cfg = FederatedConfig(**{k: v for k, v in json.loads((out / "config.json").read_text()).items()})
    assert cfg.blend_rule == "endpoint"  # --federated-trees without --blend-rule: the trees are chosen per endpoint
    partners = {d.partner: d for d in load_all_partners(cfg, partners_dir)}
    return cfg, out, partners, json.loads((out / "report.json").read_text()), res.output


@pytest.mark.slow  # with the module's federated run (about 35-60 s on 2 busy cores)
def test_federate_runs_the_trees_and_blends_them_as_a_fourth_option(federated):
    cfg, out, partners, report, output = federated
    assert cfg.federated_trees and cfg.tree_rounds == 4 and cfg.tree_patience == 2
    trees = report["federated_trees"]
    assert trees["settings"]["rounds"] == 4 and set(trees["endpoints"]) == set(ENDPOINTS)
    assert all(1 <= e["rounds_run"] <= 4 for e in trees["endpoints"].values())
    assert trees["bytes_up"] > 0 and report["timing"]["federated_trees_seconds"] > 0
    assert "federated trees:" in output
    md = (out / "report.md").read_text()
    assert "## Federated trees" in md and all(f"| {ep} |" in md for ep in ENDPOINTS)
    for name, data in partners.items():
        record = json.loads((node_work_dir(cfg, name) / blend.BLEND_FILE).read_text())
        for ep in data.task_names:
            if record["valid_scores"][ep]:  # the valid rows score every option, the federated trees included
                assert blend.FED_TREES in record["valid_scores"][ep]
        assert trees["test_metric_federated_trees_only"][name] is not None
    choices = [e["blend_choice"] for p in report["partners"] for e in p["endpoints"].values()]
    assert set(choices) <= {blend.FED_NN, blend.PRIVATE_TREES, blend.EQUAL_BLEND, blend.FED_TREES, *blend.PRIVATE_NET_WEIGHTS}
    assert trees["blend_chose_federated_trees"] == choices.count(blend.FED_TREES)
    # each node kept the final model of every endpoint it predicted, next to its predictions
    token = next(p.parent.name for p in (node_work_dir(cfg, next(iter(partners))) / "trees").glob("*/*.json"))
    for name, data in partners.items():
        for ep in data.task_names:
            assert model_path(node_work_dir(cfg, name), token, ep).is_file()
            assert predictions_path(node_work_dir(cfg, name), token, ep).is_file()


@pytest.mark.slow
def test_blended_bundle_that_chose_the_federated_trees_predicts_them_exactly(federated, tmp_path):
    """Known answer: with every endpoint's choice set to the federated trees, the node's bundle predicts
    exactly the predictions the trees' predict stage wrote on that node for its test rows."""
    from federation.baselines import solo_config

    cfg, out, partners, report, _ = federated
    name, data = next((n, d) for n, d in partners.items() if len(d.task_names) == len(ENDPOINTS))
    node = node_work_dir(cfg, name)
    token = next(p.parent.name for p in (node / "trees").glob("*/*.json"))
    per_endpoint = {}
    for ep in data.task_names:
        with np.load(predictions_path(node, token, ep)) as z:
            per_endpoint[ep] = {"valid": z["valid"], "test": z["test"]}
    expected = blend.federated_tree_option(per_endpoint, data)["test"]
    private = blend.fit_private_trees(data, solo_config(cfg, 2))  # two members: the bundle's mean stays exact
    result = {"choice": {ep: blend.FED_TREES for ep in data.task_names},
              "chosen_by": {ep: "valid" for ep in data.task_names}, "valid_scores": {}, "endpoints": {},
              "metric": float("nan")}
    part = blend_bundle.federated_trees_part(node, token, report["federated_trees"]["endpoints"], data.task_names)
    path = blend_bundle.write_blend_bundle(node / "bundle", data, private, result, tmp_path / "bb", fed_trees=part)
    bundle = load_bundle(path)
    test = data.rows("test")
    got = bundle.predict_features(data.X[test], [str(s) for s in data.smiles[test]])
    np.testing.assert_array_equal(got[data.task_names].to_numpy(float), expected)
    assert bundle.info["federated_trees_endpoints"] == data.task_names and bundle.info["federated_trees_sent_in_clear"]
    assert "federated trees" in (path / "model_card.md").read_text()
    summary = json.loads((path / blend_bundle.SUMMARY_FILE).read_text())
    assert all(e["federated_trees"] for e in summary["endpoints"].values())
    # a mixed choice: the federated model only where chosen (the other endpoint's is not packaged), the net elsewhere
    mixed = {**result, "choice": {ep: blend.FED_TREES if j == 0 else blend.FED_NN
                                  for j, ep in enumerate(data.task_names)}}
    path = blend_bundle.write_blend_bundle(node / "bundle", data, private, mixed, tmp_path / "mixed", fed_trees=part)
    bundle = load_bundle(path)
    member = bundle.ensemble.members[0]
    assert member.xgb.models[0] and all(m is None for m in member.xgb.models[1:])
    got = bundle.predict_features(data.X[test], [str(s) for s in data.smiles[test]])[data.task_names].to_numpy(float)
    nn = blend.federated_nn_predictions(node / "bundle", data)["test"]
    np.testing.assert_array_equal(got[:, 0], expected[:, 0])
    np.testing.assert_array_equal(got[:, 1:], nn[:, 1:])
    # the run's own bundle carries exactly the chosen endpoints' federated models
    run_bundle = load_bundle(node / blend_bundle.BUNDLE_DIR)
    chosen = [ep for ep in data.task_names if run_bundle.info["blend"][ep]["choice"] == blend.FED_TREES]
    assert run_bundle.info.get("federated_trees_endpoints", []) == chosen
    # without the node's models a federated-trees choice cannot be packaged
    with pytest.raises(ValueError, match="federated trees"):
        blend_bundle.write_blend_bundle(node / "bundle", data, private, result, tmp_path / "bb2")
