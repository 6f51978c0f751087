"""The project's one ServerApp / ClientApp and the real SecAgg+ protocol over the in-process fallback.

``federation.inprocess`` drives the same app objects through their public call API (each message
deep-copied, as the wire would, and handed to the destination node's ClientApp with its persistent
Context). ``RecordingGrid`` keeps every (message, reply) pair the server exchanged, so the tests
can compare what the server *received* with what it *produced*. Real featurization and torch
training; ``test_federation_sim.py`` runs the Ray backend, which is slower to start.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from flwr.common import bytes_to_ndarray
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key

from admet.bundle import load_bundle
from federation import partners as partners_mod
from federation import report as report_mod
from federation import secagg
from federation.client_app import app as client_app
from federation.config import FederatedConfig
from federation.inprocess import SequentialGrid, run_inprocess
from federation.run import run_config_for, warm_feature_cache
from federation.server_app import make_server_app
from federation.stages import RESULT_FILE

pytestmark = pytest.mark.slow

SLICE = dict(n_partners=4, rounds=2, local_epochs=1, hidden=(64,), endpoints=("HLM_CLint", "RLM_CLint", "solubility"),
             max_rows=1500, alpha=1.0, seed=0, engine="inprocess")


class RecordingGrid(SequentialGrid):
    """The in-process grid with recording on (every sent message and its reply, in order), plus views."""

    def train_replies(self):
        """Message-API train replies: {partner node id: arrays} per round, in order."""
        rounds = []
        for msg, reply in self.exchanges:
            if msg.metadata.message_type != "train" or reply.has_error() or not reply.content.array_records:
                continue
            if not rounds or msg.metadata.dst_node_id in rounds[-1]:
                rounds.append({})
            record = next(iter(reply.content.array_records.values()))
            metrics = next(iter(reply.content.metric_records.values()))
            rounds[-1][msg.metadata.dst_node_id] = ({k: a.numpy() for k, a in record.items()},
                                                    float(metrics["num-examples"]))
        return rounds


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    out = tmp_path_factory.mktemp("fed_inproc")
    cfg = FederatedConfig(out_dir=out / "base", **SLICE)
    partners_dir = partners_mod.prepare_partners(cfg)
    warm_feature_cache(cfg, partners_dir)
    return out, partners_dir, cfg.cache_dir


def _run(cfg: FederatedConfig, partners_dir) -> tuple[dict, RecordingGrid]:
    run_config = run_config_for(cfg, partners_dir)
    grid = RecordingGrid(client_app, 4, run_config, record=True)
    run_inprocess(make_server_app(), client_app, 4, run_config, grid=grid)
    return json.loads((cfg.out_dir / RESULT_FILE).read_text()), grid


def _checkpoint(out, rnd: int) -> dict[str, np.ndarray]:
    """The global arrays checkpointed after round ``rnd`` (keys: the same in every round)."""
    keys = json.loads((out / "checkpoints" / "latest.json").read_text())["keys"]
    with np.load(out / "checkpoints" / f"round_{rnd:03d}.npz") as z:
        return {k: z[f"a{i:04d}"] for i, k in enumerate(keys)}


def _flat(arrays: dict[str, np.ndarray], keys) -> np.ndarray:
    return np.concatenate([np.asarray(arrays[k], dtype=np.float64).ravel() for k in keys])


def test_message_api_round_trip_with_a_nan_partner(consortium):
    root, partners_dir, cache = consortium
    out = root / "shared"
    cfg = FederatedConfig(out_dir=out, partners_dir=partners_dir, cache_dir=cache, heads="shared",
                          poison_partners=("partner_01",), poison_scale=float("nan"), **SLICE)
    outcome, _ = _run(cfg, partners_dir)
    rep = report_mod.build_report(outcome)
    assert [r["partner"] for r in rep["rejections"]] == ["partner_01", "partner_01"]
    assert all(r["reason"].startswith("non_finite") for r in rep["rejections"])
    assert {p["partner"] for p in rep["partners"]} == {f"partner_0{i}" for i in range(4)}
    assert len(list((out / "checkpoints").glob("round_*.npz"))) == 2
    bundle = load_bundle(out / "global_bundle")
    preds = bundle.predict_smiles(["CCOc1ccc2nc(S(N)(=O)=O)sc2c1", "not a smiles"])
    assert preds.loc[0, "status"] == "ok" and np.isfinite(preds.loc[0, "solubility"])
    assert preds.loc[1, "status"] == "rejected"
    # heads travel in shared mode: every train reply holds trunk + head arrays, still nothing else
    for line in (out / "audit" / "partner_00.jsonl").read_text().splitlines():
        msg = json.loads(line)
        if msg["message_type"] == "train":
            (arrays,) = msg["arrays"].values()
            assert any(k.startswith("head.") for k in arrays) and any(k.startswith("trunk.") for k in arrays)


def test_resume_continues_and_fedavg_is_the_weighted_mean_of_what_arrived(consortium):
    root, partners_dir, cache = consortium
    out = root / "resume"
    # private heads, asked for: every array is then weighted by num-examples (shared heads weight each
    # head by its partner's label count; test_message_api_round_trip_with_a_nan_partner runs those)
    first = FederatedConfig(out_dir=out, partners_dir=partners_dir, cache_dir=cache, heads="private",
                            **{**SLICE, "rounds": 1})
    outcome, grid = _run(first, partners_dir)
    # without DP the new global model is exactly the num-examples-weighted mean of the accepted replies
    (received,) = grid.train_replies()
    assert len(received) == 4
    accepted = set(outcome["round_log"][0]["accepted"])
    received = {n: v for n, v in received.items() if outcome["partner_of_node"][str(n)] in accepted}
    assert len(received) >= 3
    keys = list(next(iter(received.values()))[0])
    stack = np.stack([_flat(a, keys) for a, _ in received.values()])
    weights = np.array([w for _, w in received.values()])
    global_1 = _flat(_checkpoint(out, 1), keys)
    assert np.abs(global_1 - weights @ stack / weights.sum()).max() < 1e-6
    assert np.abs(global_1 - stack.mean(0)).max() > 1e-4  # the weights matter (so the check can fail)
    again = FederatedConfig(out_dir=out, partners_dir=partners_dir, cache_dir=cache, resume=True, heads="private",
                            **SLICE)
    outcome, _ = _run(again, partners_dir)
    assert outcome["resumed_from"] == 1
    assert [r["round"] for r in outcome["round_log"]] == [1, 2]  # the resumed run keeps round 1's history
    assert sorted(p.name for p in (out / "checkpoints").glob("round_*.npz")) == ["round_001.npz", "round_002.npz"]
    _assert_model_is_the_best_valid_round(out, outcome, grid)


def _assert_model_is_the_best_valid_round(out, outcome, grid, last: int = 2):
    """keep_best_round (default): the run's model is the checkpoint of the round with the lowest federated
    valid loss, counted over the rounds of both processes of a resumed run, and each partner scores it
    with the private heads it trained in that round."""
    losses = {r["round"]: r["valid_loss"] for r in outcome["round_log"]}
    assert len(losses) == last
    best = min((r for r in losses if np.isfinite(losses[r])), key=losses.get)
    assert outcome["selected_round"]["round"] == best
    assert outcome["selected_round"]["valid_loss"] == pytest.approx(losses[best])
    with np.load(out / "global_model.npz") as z:
        keys = [str(k) for k in z["keys"]]
        final = {k: z[f"a{i:04d}"] for i, k in enumerate(keys)}
    for rnd in losses:
        same = np.array_equal(_flat(final, keys), _flat(_checkpoint(out, rnd), keys))
        assert same == (rnd == best), (rnd, best, losses)
    report_configs = [m.content["config"] for m, _ in grid.exchanges if m.metadata.message_type.endswith("report")]
    assert report_configs
    assert all(int(c.get("heads-round", 0)) == (best if best != last else 0) for c in report_configs)


def test_an_earlier_round_is_kept_when_later_rounds_are_worse(consortium):
    """Known answer for keep_best_round: every partner sends a sign-flipped, x5 update (gradient ascent on
    its own loss) and the norm check is off, so each round's global model is worse than the one before.
    The run's model must be round 1's, not the last round's, and the partners report with round 1's heads."""
    root, partners_dir, cache = consortium
    out = root / "ascent"
    cfg = FederatedConfig(out_dir=out, partners_dir=partners_dir, cache_dir=cache, validate_norms=False,
                          heads="private", poison_partners=tuple(f"partner_0{i}" for i in range(4)), poison_scale=5.0,
                          **{**SLICE, "rounds": 3})
    outcome, grid = _run(cfg, partners_dir)
    losses = {r["round"]: r["valid_loss"] for r in outcome["round_log"]}
    assert sorted(losses) == [1, 2, 3]
    finite = [v for v in losses.values() if np.isfinite(v)]
    assert np.isfinite(losses[1]) and losses[1] == min(finite), losses  # the construction did what it says
    assert outcome["selected_round"]["round"] == 1
    _assert_model_is_the_best_valid_round(out, outcome, grid, last=3)


def test_secagg_server_receives_masked_vectors_whose_sum_is_the_true_mean(consortium, monkeypatch):
    """What the server receives from each node is masked (uncorrelated with that node's true update);
    the aggregate it unmasks equals the num-examples-weighted mean of the true updates."""
    root, partners_dir, cache = consortium
    out = root / "secagg"
    true_updates = []
    fit = secagg.PartnerClient.fit

    def recording_fit(self, parameters, config):  # the real fit; its return value is kept for the check
        arrays, n, metrics = fit(self, parameters, config)
        true_updates.append((self.context.node_id, int(config["server_round"]), [a.copy() for a in arrays], n))
        return arrays, n, metrics

    monkeypatch.setattr(secagg.PartnerClient, "fit", recording_fit)
    cfg = FederatedConfig(out_dir=out, partners_dir=partners_dir, cache_dir=cache, secagg=True,
                          **{**SLICE, "rounds": 1})
    outcome, grid = _run(cfg, partners_dir)
    assert outcome["secagg"] is True and len(outcome["partners"]) == 4
    assert len(true_updates) == 4 and {r for _, r, _, _ in true_updates} == {1}
    global_1 = _checkpoint(out, 1)
    keys = list(global_1)
    assert all(k.startswith("trunk.") for k in keys)
    # 1. no reply carries a model array in the clear; the masked uploads are uncorrelated with the updates
    masked = {}
    for msg, reply in grid.exchanges:
        if msg.metadata.message_type != "train" or reply.has_error():
            continue
        assert all(not rec for rec in reply.content.array_records.values())
        configs = reply.content.config_records.get(RECORD_KEY_CONFIGS)
        if configs is not None and Key.MASKED_PARAMETERS in configs:
            masked[msg.metadata.dst_node_id] = [bytes_to_ndarray(b) for b in configs[Key.MASKED_PARAMETERS]]
    assert sorted(masked) == sorted(node for node, _, _, _ in true_updates)
    for node, _, arrays, _ in true_updates:
        upload = masked[node][-len(arrays):]  # the first masked vector is the weight factor
        assert [u.shape for u in upload] == [a.shape for a in arrays]
        big = int(np.argmax([a.size for a in arrays]))
        r = np.corrcoef(upload[big].ravel().astype(np.float64), arrays[big].ravel().astype(np.float64))[0, 1]
        assert abs(r) < 0.05, f"node {node}: masked upload correlates with its true update (r={r:.3f})"
    # 2. the unmasked aggregate is the weighted mean of the true updates (up to SecAgg+'s quantization)
    stack = np.stack([np.concatenate([a.astype(np.float64).ravel() for a in arrays]) for _, _, arrays, _ in true_updates])
    weights = np.array([n for _, _, _, n in true_updates], dtype=np.float64)
    expected = weights @ stack / weights.sum()
    got = _flat(global_1, keys)

    assert np.abs(got - expected).max() < 1e-4
    assert np.abs(stack - got).max(axis=1).min() > 1e-3  # it is not any one node's update


def test_dp_noise_is_added_to_the_aggregate_with_the_expected_std(consortium):
    root, partners_dir, cache = consortium
    out = root / "dp"
    clip, noise = 0.5, 0.2
    cfg = FederatedConfig(out_dir=out, partners_dir=partners_dir, cache_dir=cache, dp_clip=clip, dp_noise=noise, **SLICE)
    outcome, grid = _run(cfg, partners_dir)
    norms = [n for r in outcome["round_log"] for n in r["norms"].values()]
    assert len(norms) == 8 and max(norms) <= clip * (1 + 1e-4)  # what reached the server was clipped
    rounds = grid.train_replies()
    assert len(rounds) == 2
    keys = list(next(iter(rounds[0].values()))[0])
    expected_std = noise * clip / 4  # Flower: noise_multiplier * clipping_norm / sampled clients
    for rnd, received in enumerate(rounds, start=1):
        mean = np.stack([_flat(a, keys) for a, _ in received.values()]).mean(0)  # DP: uniform weights
        residual = _flat(_checkpoint(out, rnd), keys) - mean
        assert abs(residual.mean()) < 0.05 * expected_std
        assert residual.std() == pytest.approx(expected_std, rel=0.05), (rnd, residual.std(), expected_std)
    rep = report_mod.build_report(outcome)
    dp = rep["privacy"]["differential_privacy"]
    assert (dp["clipping_norm"], dp["noise_multiplier"], dp["rounds_released"]) == (clip, noise, 2)
    assert [r["epsilon"] for r in rep["round_log"]] == sorted(r["epsilon"] for r in rep["round_log"])


def test_bytes_per_round_are_measured_from_the_serialized_messages(consortium):
    """The round log's bytes are Flower's serialized message sizes: more than the arrays alone (the
    round config and metadata travel too) and of the arrays' order of magnitude."""
    root, partners_dir, _ = consortium
    outcome = json.loads((root / "resume" / RESULT_FILE).read_text())
    rnd = outcome["round_log"][-1]  # the round this (resumed) run trained
    trunk_bytes = outcome["model_bytes"]
    # train: the trunk down to 4 nodes and back; evaluate: the trunk down again
    assert rnd["bytes_up"] > 4 * trunk_bytes and rnd["bytes_down"] > 2 * 4 * trunk_bytes
    assert rnd["bytes_up"] < 1.2 * 4 * trunk_bytes + 200_000
