"""The simulation writes each partner's federated blend as a node-local bundle (issue 10 §5), from the
private trees and the per-endpoint choice the run already made (no refit): the saved bundle predicts the
partner's test rows exactly as the report's blend did. Real catalog slice, real training, 3 partners."""

from __future__ import annotations

import json

import numpy as np
import pytest

from admet.bundle import load_bundle
from federation import blend, blend_bundle
from federation.config import FederatedConfig
from federation.run import load_all_partners, node_work_dir, run_federated

pytestmark = pytest.mark.slow

SLICE = dict(n_partners=3, rounds=1, local_epochs=1, hidden=(32,), endpoints=("HLM_CLint", "solubility", "BBB_Martins"),
             max_rows=900, alpha=1.0, seed=0, engine="inprocess", quorum_grace=0.0, solo_ensemble=1)


def test_federate_writes_a_blended_bundle_per_partner_that_predicts_the_reported_blend(tmp_path):
    cfg = FederatedConfig(out_dir=tmp_path / "run", **SLICE)
    res = run_federated(cfg)
    partners = {d.partner: d for d in load_all_partners(cfg, tmp_path / "run" / "partners")}
    assert set(res.blend_bundles) == set(partners)
    assert res.report["timing"].get("blend_bundle_seconds") is not None
    for name, path in res.blend_bundles.items():
        data = partners[name]
        node = node_work_dir(cfg, name)
        assert path == node / blend_bundle.BUNDLE_DIR
        record = json.loads((node / blend.BLEND_FILE).read_text())
        bundle = load_bundle(path)
        assert bundle.task_names == data.task_names
        assert {n: e["choice"] for n, e in bundle.info["blend"].items()} == record["choice"]
        nn = blend.federated_nn_predictions(node / "bundle", data)
        trees = blend.load_private_tree_predictions(node, data)
        test = data.rows("test")
        expected = blend.apply(blend.candidates(nn["test"], trees["test"]),
                               {n: {"choice": c} for n, c in record["choice"].items()}, data.tasks)
        got = bundle.predict_features(data.X[test], [str(s) for s in data.smiles[test]])
        np.testing.assert_array_equal(got[data.task_names].to_numpy(float), expected)
