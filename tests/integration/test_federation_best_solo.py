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
        # the blend's per-endpoint choice is on the node, with the valid scores it was made from
        record = json.loads((node_work_dir(cfg, data.partner) / blend.BLEND_FILE).read_text())
        # (the choice covers every endpoint of the partner; the report lists those its test rows score)
        assert {ep: e["blend_choice"] for ep, e in p["endpoints"].items()}.items() <= record["choice"].items()
        for ep, scores_valid in record["valid_scores"].items():
            if scores_valid:
                assert record["choice"][ep] in scores_valid
                assert scores_valid[record["choice"][ep]] == max(scores_valid.values())
        trees = blend.load_private_tree_predictions(node_work_dir(cfg, data.partner), data)
        assert trees["test"].shape == (len(data.rows("test")), len(data.tasks))
        assert np.isfinite(trees["test"]).any()
        assert p["pooled"] is not None and p["best_solo"] is not None
    s = rep["summary"]
    assert s["n_scored"] == 3 and s["nn"]["n_scored"] == 3
    assert set(rep["per_endpoint"]) == {"HLM_CLint", "solubility", "BBB_Martins"}
    table = res.partner_table()
    assert {"best_solo", "federated_nn", "federated_blend"} <= set(table.columns)
