"""The exact outgoing content of every message a node sends, per mode (what ``docs/PRIVACY.md`` lists).

Each run is the project's real ServerApp / ClientApp over the in-process transport (real
featurization, torch training, Flower DP wrapper and SecAgg+ protocol); ``RecordingGrid`` keeps
every reply the server received, and each reply is described with ``federation.mods.describe_message``
(the audit record's own function: record names, keys, shapes, value types) and compared with the
contract. The SecAgg+ test also shows that what the server receives from a node is not that
node's true update (masked), while the sum it unmasks is the true weighted sum.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from flwr.common import bytes_to_ndarray
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key

from federation import partners as partners_mod
from federation import secagg
from federation.client_app import app as client_app
from federation.config import FederatedConfig
from federation.inprocess import SequentialGrid, run_inprocess
from federation.mods import describe_message
from federation.run import load_all_partners, run_config_for, warm_feature_cache
from federation.server_app import make_server_app
from federation.stages import GLOBAL_MODEL_FILE, RESULT_FILE

ENDPOINTS = ("HLM_CLint", "solubility")
SMALL = dict(n_partners=3, rounds=1, local_epochs=1, hidden=(32,), endpoints=ENDPOINTS, max_rows=600, alpha=1.0,
             seed=0, engine="inprocess", baselines=False, quorum_grace=0.0)


class RecordingGrid(SequentialGrid):
    """The in-process grid with recording on, plus a per-node view of one message type's replies."""

    def described(self, message_type: str) -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {}
        for msg, reply in self.exchanges:
            if msg.metadata.message_type == message_type:
                out.setdefault(msg.metadata.dst_node_id, []).append(describe_message(reply))
        return out


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("fed_privacy")
    cfg = FederatedConfig(out_dir=root / "base", **SMALL)
    partners_dir = partners_mod.prepare_partners(cfg)
    warm_feature_cache(cfg, partners_dir)
    return root, partners_dir, cfg.cache_dir


def _run(small, name: str, **kw):
    root, partners_dir, cache = small
    cfg = FederatedConfig(out_dir=root / name, partners_dir=partners_dir, cache_dir=cache, **{**SMALL, **kw})
    run_config = run_config_for(cfg, partners_dir)
    grid = RecordingGrid(client_app, 3, run_config, record=True)
    run_inprocess(make_server_app(), client_app, 3, run_config, grid=grid)
    outcome = json.loads((cfg.out_dir / RESULT_FILE).read_text())
    with np.load(cfg.out_dir / GLOBAL_MODEL_FILE) as z:
        shapes = {str(k): list(z[f"a{i:04d}"].shape) for i, k in enumerate(z["keys"])}
    outcome["own_endpoints"] = _own_endpoints(cfg, partners_dir)
    return outcome, grid, shapes


def _own_endpoints(cfg: FederatedConfig, partners_dir) -> dict[str, list[str]]:
    """Each partner's own endpoints, from its data prepared as its node does (cached arrays)."""
    return {d.partner: list(d.task_names) for d in load_all_partners(cfg, partners_dir)}


def _arrays(shapes: dict[str, list[int]]) -> dict:
    return {"arrays": {"arrays": {k: {"shape": s, "dtype": "float32"} for k, s in shapes.items()}}}


def _stats(n_tasks: int, moments: dict | None = None, units: bool = False, n_invalid: bool = False) -> dict:
    partner = {"partner-id": "str", "task-names": f"list[{n_tasks}]", "task-types": f"list[{n_tasks}]",
               "task-transforms": f"list[{n_tasks}]"}
    if units:
        partner["task-units"] = f"list[{n_tasks}]"
    metrics = {"num-examples": "int", **({"n-invalid": "int"} if n_invalid else {})}
    return {"arrays": {"moments": moments} if moments else {}, "metrics": {"metrics": metrics},
            "configs": {"partner": partner}}


def _check_report(described: dict, endpoints: list[str]) -> None:
    """Scalar scores: the mean metric, row counts, and per own endpoint with test rows its score and count."""
    assert described["arrays"] == {} and described["configs"] == {}
    (metrics,) = described["metrics"].values()
    scored = sorted(k[len("test."):] for k in metrics if k.startswith("test."))
    assert scored and set(scored) <= set(endpoints)
    expected = {"metric": "float", "n-train": "int", "n-test": "int"}
    for ep in scored:
        expected[f"test.{ep}"], expected[f"ntest.{ep}"] = "float", "int"
    assert metrics == expected


EVALUATE = {"arrays": {}, "metrics": {"metrics": {"num-examples": "int", "valid-loss": "float"}}, "configs": {}}
TRAIN_METRICS = {"metrics": {"num-examples": "int", "train-loss": "float"}}


def _check_common(outcome, grid, shapes, train_reply):
    partner_of = {int(k): v for k, v in outcome["partner_of_node"].items()}
    own = outcome["own_endpoints"]
    assert len(partner_of) == 3 and all(own.values())
    for node, (described,) in grid.described("query.stats").items():
        assert described == train_reply["stats"](len(own[partner_of[node]])), partner_of[node]
    for node, replies in grid.described("train").items():
        expected = train_reply["train"](own[partner_of[node]])
        assert replies and all(r == expected for r in replies), partner_of[node]
    for replies in grid.described("evaluate").values():
        assert replies and all(r == EVALUATE for r in replies)
    for node, (described,) in grid.described("query.report").items():
        _check_report(described, own[partner_of[node]])


@pytest.fixture(scope="module")
def plain(small):
    """The plain (no SecAgg+, no DP) private-heads run, shared by the tests that compare with it."""
    return _run(small, "plain", heads="private")


def _global_dtypes(out) -> dict[str, str]:
    """The dtypes of the run's final global arrays (``GLOBAL_MODEL_FILE``)."""
    with np.load(out / GLOBAL_MODEL_FILE) as z:
        return {str(k): str(z[f"a{i:04d}"].dtype) for i, k in enumerate(z["keys"])}


def test_plain_private_heads_sends_trunk_scalars_and_names_only(plain):
    outcome, grid, shapes = plain
    assert all(k.startswith("trunk.") for k in shapes)  # private heads: only the trunk travels
    _check_common(outcome, grid, shapes, {"stats": lambda n: _stats(n),
                                          "train": lambda own: {**_arrays(shapes), "metrics": TRAIN_METRICS, "configs": {}}})


def test_shared_heads_adds_heads_and_label_counts_but_no_label_moments(small):
    """Shared heads, the default of a plain run (no ``heads`` given): the heads and per-endpoint label
    counts travel; the target scale is the operator's (public data), so the statistics reply is the
    private-heads one: no label sums leave the node."""
    outcome, grid, shapes = _run(small, "shared")
    assert outcome["heads"] == "shared" and outcome["heads_note"] == "default: shared heads"
    assert any(k.startswith("head.") for k in shapes) and any(k.startswith("trunk.") for k in shapes)

    def train(own):  # label counts per own endpoint weight the shared heads
        metrics = {"num-examples": "int", "train-loss": "float", **{f"n.{t}": "int" for t in own}}
        return {**_arrays(shapes), "metrics": {"metrics": metrics}, "configs": {}}

    _check_common(outcome, grid, shapes, {"stats": lambda n: _stats(n), "train": train})


def test_moments_scaling_sends_every_partner_moment(small):
    """The older mode (plain only): feature-length and endpoint-length sums leave every node."""
    outcome, grid, shapes = _run(small, "moments", scaling="moments", heads="private")
    n_features = shapes["trunk.0"][1]

    def stats(n):
        f, t = {"shape": [n_features], "dtype": "float64"}, {"shape": [n], "dtype": "float64"}
        return _stats(n, moments={"feature-sum": f, "feature-sumsq": f, "feature-count": f, "target-sum": t,
                                  "target-sumsq": t, "target-count": t}, units=True, n_invalid=True)

    _check_common(outcome, grid, shapes, {"stats": stats,
                                          "train": lambda own: {**_arrays(shapes), "metrics": TRAIN_METRICS, "configs": {}}})


def test_dp_sends_the_same_fields_and_each_update_is_clipped(small):
    clip = 0.5
    outcome, grid, shapes = _run(small, "dp", dp_clip=clip, dp_noise=0.5)
    _check_common(outcome, grid, shapes, {"stats": lambda n: _stats(n),
                                          "train": lambda own: {**_arrays(shapes), "metrics": TRAIN_METRICS, "configs": {}}})
    for msg, reply in grid.exchanges:
        if msg.metadata.message_type != "train":
            continue
        sent = next(iter(msg.content.array_records.values()))
        got = next(iter(reply.content.array_records.values()))
        diff = np.sqrt(sum(float(np.sum((got[k].numpy().astype(np.float64) - sent[k].numpy()) ** 2)) for k in got))
        assert diff <= clip * (1 + 1e-5)  # Flower's fixedclipping_mod clipped the update before it left


def test_secagg_uploads_are_masked_not_the_true_update_and_sum_to_it(small, plain, monkeypatch):
    true_updates = {}
    fit = secagg.PartnerClient.fit

    def recording_fit(self, parameters, config):
        arrays, n, metrics = fit(self, parameters, config)
        true_updates[self.context.node_id] = ([a.astype(np.float64).copy() for a in arrays], n)
        return arrays, n, metrics

    monkeypatch.setattr(secagg.PartnerClient, "fit", recording_fit)
    outcome, grid, shapes = _run(small, "secagg", secagg=True)
    assert outcome["secagg"] is True and len(true_updates) == 3
    own = outcome["own_endpoints"]
    partner_of = {int(k): v for k, v in outcome["partner_of_node"].items()}
    for node, (described,) in grid.described("query.stats").items():
        assert described == _stats(len(own[partner_of[node]]))  # no moments under SecAgg+
    for (described,) in grid.described("query.setup").values():
        assert described == {"arrays": {}, "metrics": {}, "configs": {}}
    # the four SecAgg+ replies of a node, exactly: public keys; encrypted shares for the other nodes;
    # the masked vectors (weight factor + one per trunk array) with the legacy FitRes fields Flower's
    # secaggplus_mod leaves in the clear (number of examples, train loss, status); the unmasking shares
    n_arrays = len(shapes)
    expected = [
        {"arrays": {}, "configs": {RECORD_KEY_CONFIGS: {"pk1": "bytes", "pk2": "bytes"}}, "metrics": {}},
        {"arrays": {}, "configs": {RECORD_KEY_CONFIGS: {"ctxts": "list[2]", "dsts": "list[2]"}}, "metrics": {}},
        {"arrays": {"fitres.parameters": {}},
         "configs": {"fitres.metrics": {"train-loss": "float"}, "fitres.status": {"code": "int", "message": "str"},
                     RECORD_KEY_CONFIGS: {"masked_params": f"list[{n_arrays + 1}]"}},
         "metrics": {"fitres.num_examples": {"num_examples": "int"}}},
        {"arrays": {}, "configs": {RECORD_KEY_CONFIGS: {"nids": "list[3]", "shares": "list[3]"}}, "metrics": {}},
    ]
    for node, replies in grid.described("train").items():
        assert replies == expected, partner_of[node]
    masked = {}
    for msg, reply in grid.exchanges:
        configs = reply.content.config_records.get(RECORD_KEY_CONFIGS) if msg.metadata.message_type == "train" else None
        if configs is not None and Key.MASKED_PARAMETERS in configs:
            masked[msg.metadata.dst_node_id] = [bytes_to_ndarray(b) for b in configs[Key.MASKED_PARAMETERS]]
    assert sorted(masked) == sorted(true_updates)
    for node, (arrays, _) in true_updates.items():
        upload = masked[node][-len(arrays):]  # the first masked vector is the weight factor
        assert [u.shape for u in upload] == [a.shape for a in arrays]
        big = int(np.argmax([a.size for a in arrays]))
        received, true = upload[big].ravel().astype(np.float64), arrays[big].ravel()
        assert not np.allclose(received, true)  # what the server got from this node is not its update
        assert abs(np.corrcoef(received, true)[0, 1]) < 0.05  # and carries no linear trace of it
        assert received.min() >= 0 and received.max() > 2**31  # field elements over [0, 2^32)
    with np.load(small[0] / "secagg" / "checkpoints" / "round_001.npz") as z:
        got = np.concatenate([z[f"a{i:04d}"].astype(np.float64).ravel() for i in range(len(shapes))])
    stack = np.stack([np.concatenate([a.ravel() for a in arrays]) for arrays, _ in true_updates.values()])
    weights = np.array([n for _, n in true_updates.values()], dtype=np.float64)
    assert np.abs(got - weights @ stack / weights.sum()).max() < 1e-4  # the unmasked aggregate is the true one
    # SecAgg+ dequantizes to float64; the aggregate goes back to the model's dtype: the global arrays,
    # the checkpoint and the arrays the server sends next (the report query) are the plain run's dtypes
    want = _global_dtypes(small[0] / "plain")
    assert set(want.values()) == {"float32"} and _global_dtypes(small[0] / "secagg") == want
    with np.load(small[0] / "secagg" / "checkpoints" / "round_001.npz") as z:
        assert {str(z[f"a{i:04d}"].dtype) for i in range(len(shapes))} == {"float32"}
    sent = [next(iter(m.content.array_records.values())) for m, _ in grid.exchanges
            if m.metadata.message_type == "query.report"]
    assert len(sent) == 3 and all({k: str(a.numpy().dtype) for k, a in rec.items()} == want for rec in sent)
