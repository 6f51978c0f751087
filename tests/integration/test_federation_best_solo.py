"""A whole simulated run with references (issue 10 §5): best solo and pooled trained with the default
recipe, each partner's federated blend built on its node from its own bundle and private trees, and a
report with best solo / federated NN / federated blend / pooled. Real catalog slice, real training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from federation import blend, scoring
from federation.config import FederatedConfig
from federation.run import load_all_partners, node_work_dir, run_federated

pytestmark = pytest.mark.slow

SLICE = dict(n_partners=3, rounds=1, local_epochs=1, hidden=(32,), endpoints=("HLM_CLint", "solubility", "BBB_Martins"),
             max_rows=900, alpha=1.0, seed=0, engine="inprocess", quorum_grace=0.0)


def test_run_reports_best_solo_federated_nn_blend_and_pooled(tmp_path):
    cfg = FederatedConfig(out_dir=tmp_path / "run", **SLICE)
    res = run_federated(cfg)
    rep = res.report
    assert rep["references"]["family"] == "blend" and rep["references"]["ensemble"] == 2
    partners = {d.partner: d for d in load_all_partners(cfg, tmp_path / "run" / "partners")}
    for p in rep["partners"]:
        data = partners[p["partner"]]
        assert p["local"] == p["best_solo"] and p["federated"] == p["federated_blend"]
        # the node's bundle reproduces the federated NN scores the node reported through Flower
        nn = blend.federated_nn_predictions(node_work_dir(cfg, data.partner) / "bundle", data)
        scores = scoring.endpoint_scores(nn["test"], data.Y[data.rows("test")], data.tasks)
        for ep, s in scores.items():
            assert p["endpoints"][ep]["federated_nn"] == pytest.approx(s["value"])
        # the default rule: the equal blend on every endpoint, recorded on the node with the valid scores
        record = json.loads((node_work_dir(cfg, data.partner) / blend.BLEND_FILE).read_text())
        # (the choice covers every endpoint of the partner; the report lists those its test rows score)
        assert {ep: e["blend_choice"] for ep, e in p["endpoints"].items()}.items() <= record["choice"].items()
        assert set(record["choice"].values()) == {blend.EQUAL_BLEND} and set(record["chosen_by"].values()) == {"rule"}
        assert record["rule"] == blend.RULE_TEXT["equal"]
        assert any(set(v) == {blend.FED_NN, blend.PRIVATE_TREES, blend.EQUAL_BLEND} for v in record["valid_scores"].values())
        trees = blend.load_private_tree_predictions(node_work_dir(cfg, data.partner), data)
        assert trees["test"].shape == (len(data.rows("test")), len(data.tasks))
        assert np.isfinite(trees["test"]).any()
        # the reported blend is the mean of the node's net and its kept trees, scored here independently
        mean = scoring.endpoint_scores(blend.equal_blend(nn["test"], trees["test"]), data.Y[data.rows("test")], data.tasks)
        for ep, s in mean.items():
            assert p["endpoints"][ep]["federated_blend"] == pytest.approx(s["value"])
        assert p["pooled"] is not None and p["best_solo"] is not None
    assert rep["blend_rule"] == "equal"
    s = rep["summary"]
    assert s["n_scored"] == 3 and s["nn"]["n_scored"] == 3
    assert set(rep["per_endpoint"]) == {"HLM_CLint", "solubility", "BBB_Martins"}
    table = res.partner_table()
    assert {"best_solo", "federated_nn", "federated_blend"} <= set(table.columns)
