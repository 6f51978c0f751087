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
