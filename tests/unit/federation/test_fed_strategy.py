"""FederatedStrategy on real Flower reply messages; checkpoints; deltas; config validation."""

from __future__ import annotations

import time

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, Message, Metadata, MetricRecord, RecordDict

from federation.checkpoint import Checkpointer
from federation.config import FederatedConfig
from federation.scoring import deltas, gap_closed
from federation.strategy import FederatedStrategy
from pipelines.errors import InputError


def _reply(node: int, arrays: dict[str, np.ndarray], n: int, **metrics) -> Message:
    md = Metadata(run_id=1, message_id=f"m{node}", src_node_id=node, dst_node_id=0, reply_to_message_id="",
                  group_id="", created_at=time.time(), ttl=60, message_type="train")
    content = RecordDict({"arrays": ArrayRecord({k: Array(v) for k, v in arrays.items()}),
                          "metrics": MetricRecord({"num-examples": n, "train-loss": 0.5, **metrics})})
    return Message(content=content, metadata=md)


def _global():
    rng = np.random.default_rng(0)
    return {"trunk.0": rng.standard_normal((6, 3)).astype(np.float32), "trunk.1": np.zeros(3, np.float32)}


def _strategy(name="fedavg", **kw):
    partner_of = {100 + i: f"partner_{i:02d}" for i in range(6)}
    s = FederatedStrategy(strategy=name, partner_of=partner_of, **kw)
    s.current = _global()
    return s


def test_nan_update_rejected_and_named_round_goes_on():
    g = _global()
    s = _strategy()
    replies = [_reply(100 + i, {k: v + 0.01 * i for k, v in g.items()}, 10) for i in range(5)]
    bad = {k: v.copy() for k, v in g.items()}
    bad["trunk.0"][0, 0] = np.nan
    replies.append(_reply(105, bad, 10))
    arrays, metrics = s.aggregate_train(1, replies)
    assert arrays is not None and metrics["n-accepted"] == 5 and metrics["n-rejected"] == 1
    assert [(r.partner, r.reason.split(":")[0]) for r in s.rejections] == [("partner_05", "non_finite")]
    np.testing.assert_allclose(arrays["trunk.1"].numpy(), np.full(3, 0.02), atol=1e-6)


def test_weighted_mean_and_median_differ_under_poison():
    g = _global()
    honest = [{k: v + 0.1 for k, v in g.items()} for _ in range(4)]
    poisoned = {k: g[k] - 20 * 0.1 for k in g}
    replies = [_reply(100 + i, u, 10) for i, u in enumerate(honest)] + [_reply(104, poisoned, 10)]
    mean, _ = _strategy(validate_norms=False).aggregate_train(1, replies)
    median, _ = _strategy("fedmedian", validate_norms=False).aggregate_train(1, replies)
    np.testing.assert_allclose(median["trunk.1"].numpy(), np.full(3, 0.1), atol=1e-6)
    assert np.all(mean["trunk.1"].numpy() < 0)  # one scaled sign flip drags the mean past zero


def test_shared_heads_weighted_by_task_counts():
    g = {"trunk.0": np.zeros(2, np.float32), "head.sol.weight": np.zeros(2, np.float32)}
    s = FederatedStrategy(strategy="fedavg", partner_of={1: "a", 2: "b"})
    s.current = g
    r1 = _reply(1, {"trunk.0": np.ones(2, np.float32), "head.sol.weight": np.full(2, 4.0, np.float32)}, 10, **{"n.sol": 10})
    r2 = _reply(2, {"trunk.0": np.full(2, 3.0, np.float32), "head.sol.weight": np.zeros(2, np.float32)}, 10, **{"n.sol": 0})
    arrays, _ = s.aggregate_train(1, [r1, r2])
    np.testing.assert_allclose(arrays["trunk.0"].numpy(), [2.0, 2.0])
    np.testing.assert_allclose(arrays["head.sol.weight"].numpy(), [4.0, 4.0])


def test_checkpoint_roundtrip_and_prune(tmp_path):
    ck = Checkpointer(tmp_path / "ck", keep=2)
    assert ck.latest() is None
    for r in (1, 2, 3):
        ck.save(r, {"trunk.0": np.full(3, r, np.float32)}, {"strategy": "fedavg"})
    latest = ck.latest()
    assert latest.round == 3 and latest.meta["strategy"] == "fedavg"
    np.testing.assert_array_equal(latest.arrays["trunk.0"], np.full(3, 3, np.float32))
    assert sorted(p.name for p in (tmp_path / "ck").glob("round_*.npz")) == ["round_002.npz", "round_003.npz"]


def test_melloddy_deltas_known_answers():
    d = deltas(0.6, 0.7)
    assert d["absolute"] == pytest.approx(0.1)
    assert d["relative"] == pytest.approx(0.1 / 0.6)
    assert d["improvement_to_perfect"] == pytest.approx(0.25)
    assert gap_closed(0.6, 0.7, 0.8) == pytest.approx(0.5)
    assert np.isnan(gap_closed(0.6, 0.7, 0.5))


def test_config_errors_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="strategy"):
        FederatedConfig(out_dir=tmp_path, strategy="fedfoo")
    with pytest.raises(InputError, match="both --dp-clip and --dp-noise"):
        FederatedConfig(out_dir=tmp_path, dp_clip=1.0)
    with pytest.raises(InputError, match="does not exist"):
        FederatedConfig(out_dir=tmp_path, data=tmp_path / "missing.csv")
    cfg = FederatedConfig(out_dir=tmp_path, strategy="fedmedian", hidden=(64,))
    assert FederatedConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()


def test_partner_that_never_replies_is_named_and_round_goes_on():
    from federation.strategy import RoundLog

    g = _global()
    s = _strategy()
    s.rounds.append(RoundLog(round=1))
    s._sent_to = [100, 101, 102, 103]
    replies = [_reply(100 + i, {k: v + 0.01 for k, v in g.items()}, 10) for i in range(3)]
    arrays, metrics = s.aggregate_train(1, replies)
    assert arrays is not None and metrics["n-accepted"] == 3
    assert s.rounds[-1].failed == ["partner_03"]
