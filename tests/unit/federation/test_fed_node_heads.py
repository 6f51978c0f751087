"""A partner's private heads when the consortium's task list changes between runs (resume after a dropout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from flwr.app import ConfigRecord, Context, RecordDict

from admet.tasks import TaskSpec
from federation import modelio, node, task
from federation.config import FederatedConfig


def _model(names, seed=0):
    return task.build_model(8, [TaskSpec(n) for n in names], (4,), 0.0, seed)


def test_saved_heads_of_tasks_no_longer_in_the_run_are_left_out_and_new_tasks_keep_their_init(tmp_path: Path):
    before = _model(["a", "b", "c"], seed=1)  # the first run: three partners' endpoints
    saved = modelio.heads_record(before)
    where = node.Node("partner_00", tmp_path, tmp_path / "work", tmp_path / "cache", None,
                      FederatedConfig(out_dir=tmp_path))
    context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict({node.HEADS_STATE: saved}), run_config={})
    after = _model(["a", "b", "d"], seed=2)  # the resumed run: "c" gone with its partner, "d" new
    fresh_d = dict(zip(modelio.head_keys(after), after.head_arrays()))["head.d.weight"]
    node.load_private_heads(after, context, where, ConfigRecord({"run-token": "t"}))
    got = dict(zip(modelio.head_keys(after), after.head_arrays()))
    want = {k: a.numpy() for k, a in saved.items()}
    for key in ("head.a.weight", "head.a.bias", "head.b.weight", "head.b.bias"):
        np.testing.assert_array_equal(got[key], want[key])
    np.testing.assert_array_equal(got["head.d.weight"], fresh_d)


def _heads(value: float):
    from flwr.app import Array, ArrayRecord

    return ArrayRecord({"head.a.weight": Array(np.full((1, 4), value, dtype=np.float32)),
                        "head.a.bias": Array(np.full((1,), value, dtype=np.float32))})


def test_the_report_of_an_earlier_round_s_model_takes_that_round_s_heads(tmp_path: Path):
    """keep_best_round: the report stage names the round (``heads-round``) and the node pairs the trunk
    with the heads it trained in that round, from its state or, after a restart, from its folder."""
    where = node.Node("partner_00", tmp_path, tmp_path / "work", tmp_path / "cache", None,
                      FederatedConfig(out_dir=tmp_path))
    model = _model(["a"])
    context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    for rnd in (1, 2, 3):
        modelio.load_arrays(model, {k: a.numpy() for k, a in _heads(float(rnd)).items()})
        node.keep_private_heads(model, context, where, ConfigRecord({"run-token": "t", "global-round": rnd}))

    def head_value(ctx, cfg) -> float:
        fresh = _model(["a"], seed=5)
        node.load_private_heads(fresh, ctx, where, ConfigRecord(cfg))
        return float(dict(zip(modelio.head_keys(fresh), fresh.head_arrays()))["head.a.weight"][0, 0])

    assert head_value(context, {"run-token": "t"}) == 3.0                     # no round named: the newest
    assert head_value(context, {"run-token": "t", "heads-round": 2}) == 2.0
    restarted = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    assert head_value(restarted, {"run-token": "t", "heads-round": 1}) == 1.0  # from private_heads.r001.npz
    assert head_value(restarted, {"run-token": "t"}) == 3.0
    assert head_value(restarted, {"run-token": "other", "heads-round": 1}) not in (1.0, 2.0, 3.0)


def test_best_checkpoint_round_trip(tmp_path: Path):
    from federation.checkpoint import Checkpointer

    ckpt = Checkpointer(tmp_path)
    assert ckpt.best() is None
    ckpt.save_best(2, {"trunk.w": np.arange(3.0)}, {"valid_loss": 0.5, "run-token": "t"})
    ckpt.save_best(4, {"trunk.w": np.arange(3.0) + 1}, {"valid_loss": 0.4, "run-token": "t"})
    best = ckpt.best()
    assert best.round == 4 and best.meta == {"valid_loss": 0.4, "run-token": "t"}
    np.testing.assert_array_equal(best.arrays["trunk.w"], np.arange(3.0) + 1)
