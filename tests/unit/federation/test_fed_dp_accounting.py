"""DP with an epsilon budget: the noise really lands on the aggregate (by the expected amount, also
when a partner is missing), epsilon per round comes from Flower's RDP accountant and grows with the
rounds, ``dp_epsilon_max`` stops before the budget is exceeded, a resumed run keeps spending from
the checkpointed accountant. Known answers from Google's ``dp-accounting`` used directly."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from dp_accounting import dp_event
from dp_accounting.rdp import RdpAccountant as GoogleRdp
from flwr.app import Array, ArrayRecord, Error, Message, Metadata, MetricRecord, RecordDict

from federation import partners as partners_mod
from federation import report as report_mod
from federation.client_app import app as client_app
from federation.config import FederatedConfig
from federation.dp import AccountedClientSideDP
from federation.inprocess import run_inprocess
from federation.run import run_config_for, warm_feature_cache
from federation.server_app import make_server_app
from federation.stages import GLOBAL_MODEL_FILE, RESULT_FILE
from federation.strategy import FederatedStrategy
from pipelines.errors import InputError

SMALL = dict(n_partners=3, rounds=3, local_epochs=1, hidden=(32,), endpoints=("HLM_CLint", "solubility"),
             max_rows=600, alpha=1.0, seed=0, engine="inprocess", baselines=False, quorum_grace=0.0)
CLIP, NOISE, DELTA = 0.5, 1.0, 1e-5


def expected_epsilon(rounds: int, noise: float = NOISE, delta: float = DELTA) -> float:
    """Google's RDP accountant directly: ``rounds`` Gaussian releases of multiplier ``noise``, no sampling."""
    acc = GoogleRdp()
    acc.compose(dp_event.GaussianDpEvent(noise), rounds)
    return float(acc.get_epsilon(delta))


def _reply(node: int, arrays: dict[str, np.ndarray]) -> Message:
    md = Metadata(run_id=1, message_id=f"m{node}", src_node_id=node, dst_node_id=0, reply_to_message_id="",
                  group_id="", created_at=time.time(), ttl=60, message_type="train")
    return Message(content=RecordDict({"arrays": ArrayRecord({k: Array(v) for k, v in arrays.items()}),
                                       "metrics": MetricRecord({"num-examples": 1, "train-loss": 0.1})}), metadata=md)


@pytest.mark.parametrize("answering, failed", [(3, 0), (2, 0), (2, 1)])
def test_noise_on_the_aggregate_has_std_z_c_over_the_updates_aggregated(answering, failed):
    """3 partners asked; all answer, one is silent, or one sends an error reply (a round with a failed
    partner still releases the others' mean, with the noise scaled to the 2 aggregated)."""
    rng = np.random.default_rng(1)
    g = {"trunk.0": rng.standard_normal((200, 100)).astype(np.float32)}
    updates = [{"trunk.0": g["trunk.0"] + 0.01 * rng.standard_normal((200, 100)).astype(np.float32)}
               for _ in range(answering)]
    inner = FederatedStrategy(strategy="fedavg", partner_of={i: f"p{i}" for i in range(3)}, uniform_weights=True,
                              validate_norms=False)
    inner.current = g
    dp = AccountedClientSideDP(inner, noise_multiplier=NOISE, clipping_norm=CLIP, num_sampled_clients=3, delta=DELTA)
    replies = [_reply(i, u) for i, u in enumerate(updates)]
    if failed:
        replies.append(Message(Error(code=2, reason="[p2] RuntimeError: boom"), metadata=replies[0].metadata))
    arrays, _ = dp.aggregate_train(1, replies)
    residual = arrays["trunk.0"].numpy().astype(np.float64) - np.mean([u["trunk.0"] for u in updates], axis=0)
    assert residual.std() == pytest.approx(NOISE * CLIP / answering, rel=0.03)  # 20k draws: ~0.5 % error
    assert abs(residual.mean()) < 0.01 * NOISE * CLIP
    assert dp.spent() == (pytest.approx(expected_epsilon(1), rel=1e-9), DELTA)


def test_without_noise_nothing_is_added_and_epsilon_is_infinite():
    g = {"trunk.0": np.zeros((10, 10), np.float32)}
    updates = [{"trunk.0": np.full((10, 10), float(i), np.float32)} for i in range(3)]
    inner = FederatedStrategy(strategy="fedavg", partner_of={}, uniform_weights=True, validate_norms=False)
    inner.current = g
    dp = AccountedClientSideDP(inner, noise_multiplier=0.0, clipping_norm=CLIP, num_sampled_clients=3, delta=DELTA)
    arrays, _ = dp.aggregate_train(1, [_reply(i, u) for i, u in enumerate(updates)])
    np.testing.assert_array_equal(arrays["trunk.0"].numpy(), np.ones((10, 10), np.float32))
    assert dp.spent()[0] == float("inf")


def test_dp_options_are_validated():
    with pytest.raises(InputError, match="dp-epsilon-max"):
        FederatedConfig(out_dir="x", dp_epsilon_max=3.0)
    with pytest.raises(InputError, match="mean of clipped updates"):
        FederatedConfig(out_dir="x", dp_clip=1.0, dp_noise=1.0, strategy="krum")
    with pytest.raises(InputError, match="unmasked"):
        FederatedConfig(out_dir="x", dp_clip=1.0, dp_noise=1.0, scaling="moments")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("fed_dp")
    cfg = FederatedConfig(out_dir=root / "base", **SMALL)
    partners_dir = partners_mod.prepare_partners(cfg)
    warm_feature_cache(cfg, partners_dir)
    return root, partners_dir, cfg.cache_dir


def _run(cfg, partners_dir):
    run_inprocess(make_server_app(), client_app, 3, run_config_for(cfg, partners_dir))
    return json.loads((cfg.out_dir / RESULT_FILE).read_text())


def test_epsilon_per_round_grows_and_a_resumed_run_keeps_the_accountant(small):
    root, partners_dir, cache = small
    out = root / "grow"
    dp = dict(dp_clip=CLIP, dp_noise=NOISE, dp_delta=DELTA)
    first = _run(FederatedConfig(out_dir=out, partners_dir=partners_dir, cache_dir=cache, **dp,
                                 **{**SMALL, "rounds": 1}), partners_dir)
    assert [r["epsilon"] for r in first["round_log"]] == [pytest.approx(expected_epsilon(1), rel=1e-9)]
    outcome = _run(FederatedConfig(out_dir=out, partners_dir=partners_dir, cache_dir=cache, resume=True, **dp,
                                   **SMALL), partners_dir)
    eps = [r["epsilon"] for r in outcome["round_log"]]
    assert eps == [pytest.approx(expected_epsilon(r), rel=1e-9) for r in (1, 2, 3)]
    assert eps[0] < eps[1] < eps[2] and all(r["delta"] == DELTA for r in outcome["round_log"])
    rep = report_mod.build_report(outcome)
    report_mod.write_report(rep, out)
    records = json.loads((out / "report.json").read_text())["round_log"]
    assert [(r["round"], r["delta"]) for r in records] == [(1, DELTA), (2, DELTA), (3, DELTA)]
    md = (out / "report.md").read_text()
    assert "## Differential privacy" in md and f"| 3 | {eps[2]:.3f} | {DELTA} |" in md


def test_epsilon_max_stops_before_the_round_that_would_exceed_it(small):
    root, partners_dir, cache = small
    out = root / "budget"
    budget = (expected_epsilon(1) + expected_epsilon(2)) / 2
    cfg = FederatedConfig(out_dir=out, partners_dir=partners_dir, cache_dir=cache, dp_clip=CLIP, dp_noise=NOISE,
                          dp_delta=DELTA, dp_epsilon_max=budget, **SMALL)
    outcome = _run(cfg, partners_dir)
    assert [r["round"] for r in outcome["round_log"]] == [1]
    assert outcome["dp"]["epsilon"] <= budget < expected_epsilon(2)
    assert outcome["dp"]["stopped_by_budget"]["before_round"] == 2
    assert len(outcome["partners"]) == 3  # the report stage still ran, on the last model within budget
    with np.load(out / GLOBAL_MODEL_FILE) as final, np.load(out / "checkpoints" / "round_001.npz") as one:
        assert all(np.array_equal(final[f"a{i:04d}"], one[f"a{i:04d}"]) for i in range(len(final["keys"])))
