"""Real Flower simulations (Ray backend) on a small slice of the embedded catalog.

Two runs, each shared by several tests (Ray start-up is the slow part):
- ``private_run``: MELLODDY mode (private heads), 4 partners x 2 rounds, audit log of every
  message that leaves a ClientApp;
- ``shared_run``: shared heads, 4 partners x 2 rounds, partner_03 sends NaN updates.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from admet.bundle import load_bundle
from admet.train import TrainConfig
from federation import scoring, task
from federation.config import FederatedConfig
from federation.partners import partner_folders
from federation.run import run_federated

pytestmark = pytest.mark.slow

ENDPOINTS = ("HLM_CLint", "RLM_CLint", "solubility", "bbb")
SLICE = dict(n_partners=4, rounds=2, local_epochs=2, hidden=(128,), endpoints=ENDPOINTS, max_rows=3000,
             alpha=1.0, num_cpus=2, seed=0)


@pytest.fixture(scope="module")
def private_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fed_private")
    return run_federated(FederatedConfig(out_dir=out, heads="private", **SLICE))


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fed_shared")
    cfg = FederatedConfig(out_dir=out, heads="shared", baselines=False, poison_partners=("partner_03",),
                          poison_scale=float("nan"), **SLICE)
    return run_federated(cfg)


def test_report_has_the_documented_keys(private_run):
    rep = json.loads((private_run.out_dir / "report.json").read_text())
    assert rep["strategy"] == "fedavg" and rep["rounds"] == 2 and rep["bytes_per_round"] > 0
    assert len(rep["partners"]) == 4
    for p in rep["partners"]:
        assert {"partner", "metric", "local", "federated", "pooled", "n_train", "n_test", "endpoints"} <= set(p)
    scored = [p for p in rep["partners"] if p["federated"] is not None and p["local"] is not None]
    assert len(scored) >= 3
    for p in scored:
        assert -1.0 <= p["federated"] <= 1.0 and p["n_train"] > 0
        for e in p["endpoints"].values():
            assert set(e["delta"]) == {"absolute", "relative", "improvement_to_perfect"}
    # bytes are measured from the serialized messages: each round the trunk goes down to the 4 partners
    # twice (train, evaluate) and comes back once, plus the round config and metadata
    for rnd in rep["round_log"]:
        assert 4 * rep["model_bytes"] < rnd["bytes_up"] < 1.2 * 4 * rep["model_bytes"] + 200_000
        assert rnd["bytes_down"] > 2 * 4 * rep["model_bytes"]
    assert (private_run.out_dir / "report.md").exists() and (private_run.out_dir / "partners.png").exists()
    assert len(list((private_run.out_dir / "checkpoints").glob("round_*.npz"))) == 2


def test_only_trunk_arrays_and_scalars_leave_a_partner(private_run):
    """Assert on the recorded content of every message a ClientApp sent."""
    trunk_shapes = None
    with np.load(private_run.out_dir / "global_model.npz") as z:
        keys = [str(k) for k in z["keys"]]
        trunk_shapes = {k: list(z[f"a{i:04d}"].shape) for i, k in enumerate(keys)}
    assert all(k.startswith("trunk.") for k in trunk_shapes)
    n_features = trunk_shapes["trunk.0"][1]
    n_tasks = len(ENDPOINTS)
    audit = sorted((private_run.out_dir / "audit").glob("partner_*.jsonl"))
    assert len(audit) == 4
    seen_train = 0
    for path in audit:
        for line in path.read_text().splitlines():
            msg = json.loads(line)
            assert "error" not in msg, msg
            for record in msg["metrics"].values():
                assert set(record.values()) <= {"int", "float"}  # scalars only, no lists
            if msg["message_type"] == "train":
                seen_train += 1
                (arrays,) = msg["arrays"].values()
                assert {k: v["shape"] for k, v in arrays.items()} == trunk_shapes
                assert msg["configs"] == {}
            elif msg["message_type"] == "evaluate":
                assert msg["arrays"] == {} and msg["configs"] == {}
            else:  # query: summed moments (feature / endpoint sized, never row sized) or scores
                for record in msg["arrays"].values():
                    for v in record.values():
                        assert len(v["shape"]) == 1
                        assert v["shape"][0] == n_features or v["shape"][0] <= n_tasks
    assert seen_train == 4 * 2


def test_private_heads_stay_on_the_partner(private_run):
    for folder in (private_run.out_dir / "nodes").iterdir():
        assert (folder / "private_heads.npz").exists()
        bundle = load_bundle(folder / "bundle")
        assert bundle.info["partner"] == folder.name
    assert private_run.bundle_dir is None and len(private_run.partner_bundles) == 4


def test_nan_update_rejected_and_partner_named(shared_run):
    rep = shared_run.report
    assert [r["partner"] for r in rep["rejections"]] == ["partner_03", "partner_03"]
    assert all(r["reason"].startswith("non_finite") for r in rep["rejections"])
    assert "partner_03" in (shared_run.out_dir / "report.md").read_text()
    assert all(sorted(r["accepted"]) == ["partner_00", "partner_01", "partner_02"] for r in rep["round_log"])


def test_global_model_beats_one_partner_alone_on_the_pooled_test(shared_run):
    cfg = FederatedConfig.from_dict(json.loads((shared_run.out_dir / "config.json").read_text()))
    partners = [task.load_partner(f, f.name, cfg.featurizer, cfg.cache_dir, None, seed=cfg.seed)
                for f in partner_folders(shared_run.out_dir / "partners")]
    largest = max(partners, key=lambda p: len(p.rows("train")))
    # the partner alone: same recipe, same total epochs, its own scaling
    scaling = task.consortium_scaling(largest.X.shape[1], list(largest.tasks),
                                      [(largest.task_names, task.local_moments(largest))])
    alone = task.build_model(largest.X.shape[1], scaling.tasks, cfg.hidden, cfg.dropout, cfg.seed)
    tcfg = TrainConfig(epochs=cfg.rounds * cfg.local_epochs, lr=cfg.lr, batch_size=cfg.batch_size, patience=0)
    task.train_partner(alone, largest, scaling, tcfg, tcfg.epochs)
    # the pooled test: every partner's scaffold-split test rows
    bundle = load_bundle(shared_run.bundle_dir)
    names = largest.task_names
    smiles, Y = [], []
    for p in partners:
        rows = p.rows("test")
        y, _ = task.align(p, scaling.tasks, strict=False)
        smiles += [str(s) for s in p.smiles[rows]]
        Y.append(y[rows])
    Y = np.concatenate(Y)
    pred_global = bundle.predict_smiles(smiles)[names].to_numpy(dtype=float)
    from admet.train import predict_raw

    X_test = np.concatenate([p.X[p.rows("test")] for p in partners])
    pred_alone = predict_raw(alone, scaling.scale_features(X_test), scaling.target)
    fed = scoring.partner_metric(scoring.endpoint_scores(pred_global, Y, scaling.tasks))
    solo = scoring.partner_metric(scoring.endpoint_scores(pred_alone, Y, scaling.tasks))
    assert math.isfinite(fed) and math.isfinite(solo)
    assert fed > solo, f"global {fed:.3f} vs {largest.partner} alone {solo:.3f}"
