"""Robust rounds: a quorum default that does not stall, partners named by id, SecAgg+ refused with 2
partners, resumed runs that keep their history. Real Flower messages; one small real in-process run
(the project's ServerApp / ClientApp, real featurization and torch training)."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, Metadata, MetricRecord, RecordDict

from federation import partners as partners_mod
from federation import report as report_mod
from federation.client_app import app as client_app
from federation.config import FederatedConfig
from federation.inprocess import run_inprocess
from federation.metered_grid import MeteredGrid
from federation.run import run_config_for, warm_feature_cache
from federation.server_app import make_server_app
from federation.stages import RESULT_FILE, wait_for_nodes
from federation.strategy import partner_in_error
from pipelines.errors import InputError

SMALL = dict(n_partners=3, rounds=2, local_epochs=1, hidden=(32,), endpoints=("HLM_CLint", "solubility"),
             max_rows=600, alpha=1.0, seed=0, engine="inprocess", baselines=False, quorum_grace=0.0)


def test_default_quorum_is_two_thirds_of_the_registered_partners():
    assert [FederatedConfig(out_dir="x", n_partners=n).minimum_partners for n in (2, 3, 4, 6, 20)] == [2, 2, 3, 4, 14]
    assert FederatedConfig(out_dir="x", n_partners=20, min_partners=20).minimum_partners == 20
    assert FederatedConfig(out_dir="x", n_partners=10, quorum=1.0).minimum_partners == 10
    with pytest.raises(InputError, match="quorum"):
        FederatedConfig(out_dir="x", quorum=0.0)


def test_secagg_with_two_partners_is_refused_unless_the_operator_overrides():
    with pytest.raises(InputError, match="recover the other's"):
        FederatedConfig(out_dir="x", n_partners=2, secagg=True)
    assert FederatedConfig(out_dir="x", n_partners=2, secagg=True, secagg_allow_two=True).secagg
    assert FederatedConfig(out_dir="x", n_partners=3, secagg=True).secagg


class _Nodes:
    """A grid whose connected nodes are fixed (what ``wait_for_nodes`` polls)."""

    def __init__(self, nodes):
        self.nodes = nodes

    def get_node_ids(self):
        return list(self.nodes)


def test_wait_for_nodes_goes_on_with_a_quorum_and_fails_below_it():
    t0 = time.monotonic()
    assert wait_for_nodes(_Nodes([11, 12]), expected=3, minimum=2, timeout=30, grace=0.2) == [11, 12]
    assert time.monotonic() - t0 < 10  # did not wait for the full timeout (stall) ...
    with pytest.raises(InputError, match="only 1 of 3"):  # ... and refuses below the quorum
        wait_for_nodes(_Nodes([11]), expected=3, minimum=2, timeout=0.3, grace=0.1)


class _PushPull:
    """A push / pull grid where node 3 never answers (what SuperLink grids do with a dead node)."""

    def __init__(self):
        self.sent = {}

    def get_node_ids(self):
        return [1, 2, 3]

    def push_messages(self, messages):  # as Flower's grids: sets each message id, returns the ids stored
        ids = []
        for i, m in enumerate(messages):
            m.metadata.__dict__["_message_id"] = f"m{i}"
            self.sent[f"m{i}"] = m
            ids.append(f"m{i}")
        return ids

    def pull_messages(self, ids):
        out = []
        for mid in list(ids):
            m = self.sent[mid]
            if m.metadata.dst_node_id == 3:
                continue
            md = Metadata(run_id=1, message_id=f"r{mid}", src_node_id=m.metadata.dst_node_id, dst_node_id=0,
                          reply_to_message_id=mid, group_id="", created_at=time.time(), ttl=60,
                          message_type="train")
            out.append(Message(content=RecordDict({"metrics": MetricRecord({"x": 1.0})}), metadata=md))
        return out


def test_metered_grid_returns_once_the_quorum_answered_and_names_the_missing_node():
    grid = MeteredGrid(_PushPull(), quorum=2, grace=0.3)
    msgs = [Message(content=RecordDict({"config": ConfigRecord({"a": 1})}),
                    metadata=Metadata(run_id=1, message_id="", src_node_id=0, dst_node_id=n, reply_to_message_id="",
                                      group_id="", created_at=time.time(), ttl=60, message_type="train"))
            for n in (1, 2, 3)]
    t0 = time.monotonic()
    replies = grid.send_and_receive(msgs, timeout=600)
    assert time.monotonic() - t0 < 30  # not the round timeout
    assert sorted(r.metadata.src_node_id for r in replies) == [1, 2] and grid.missing == [3]
    assert grid.bytes_down > 0 and grid.bytes_up > 0


def test_partner_id_is_read_from_an_error_reply():
    assert partner_in_error("[partner_02] InputError: cannot read <path>") == "partner_02"
    assert partner_in_error("ValueError: boom") is None


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("fed_quorum")
    cfg = FederatedConfig(out_dir=root / "base", **SMALL)
    partners_dir = partners_mod.prepare_partners(cfg)
    warm_feature_cache(cfg, partners_dir)
    return root, partners_dir, cfg.cache_dir


def _run(cfg, partners_dir, n=3):
    run_inprocess(make_server_app(), client_app, n, run_config_for(cfg, partners_dir))
    return json.loads((cfg.out_dir / RESULT_FILE).read_text())


def test_a_broken_partner_is_named_the_run_goes_on_and_its_error_reply_has_no_path(small):
    root, partners_dir, cache = small
    broken = root / "partners_broken"
    shutil.copytree(partners_dir, broken)
    (broken / "partner_02" / "data.csv").write_text("this is not a measurement table\n")
    cfg = FederatedConfig(out_dir=root / "broken", partners_dir=broken, cache_dir=cache, **SMALL)
    outcome = _run(cfg, broken)
    rep = report_mod.build_report(outcome)
    assert sorted(outcome["partners"]) == ["partner_00", "partner_01"]  # the quorum (2 of 3) trained
    assert outcome["stats_failed"] == ["partner_02"] and "partner_02" in rep["failed_partners"]
    assert not any("node-" in p for p in rep["failed_partners"])
    assert rep["quorum"] == {"registered": 3, "needed": 2, "answered_stats": 2}
    assert len(outcome["round_log"]) == 2
    assert all(r["failed"] == ["partner_02"] for r in outcome["round_log"])  # named by id in every round
    entries = [json.loads(x) for x in (root / "broken" / "audit" / "partner_02.jsonl").read_text().splitlines()]
    assert entries[0]["message_type"] == "query.stats"  # error replies go through the audit record ...
    for entry in entries:  # ... and carry the partner id, no local path
        assert entry["error"].startswith("[partner_02] InputError: ")
        assert str(broken) not in entry["error"] and "/" not in entry["error"]


def test_a_resumed_run_keeps_the_earlier_rounds_history(small):
    root, partners_dir, cache = small
    out = root / "resume"
    first = FederatedConfig(out_dir=out, partners_dir=partners_dir, cache_dir=cache, **{**SMALL, "rounds": 1})
    one = _run(first, partners_dir)
    again = FederatedConfig(out_dir=out, partners_dir=partners_dir, cache_dir=cache, resume=True, **SMALL)
    two = _run(again, partners_dir)
    assert two["resumed_from"] == 1 and [r["round"] for r in two["round_log"]] == [1, 2]
    assert two["round_log"][0]["accepted"] == one["round_log"][0]["accepted"]
    assert np.isfinite(two["round_log"][0]["train_loss"])


def test_flower_robust_rules_aggregate_after_the_norm_check():
    """krum / multikrum / bulyan / fedmedian / trimmed run Flower's own aggregation on the replies that
    passed our checks: a NaN update is still rejected by name, and Krum returns one honest update."""
    from federation.strategy import FederatedStrategy

    rng = np.random.default_rng(0)
    g = {"trunk.0": rng.standard_normal((4, 3)).astype(np.float32)}
    honest = [{"trunk.0": g["trunk.0"] + 0.01 * rng.standard_normal((4, 3)).astype(np.float32)} for _ in range(7)]
    bad = {"trunk.0": g["trunk.0"] - 50.0}
    nan = {"trunk.0": np.full((4, 3), np.nan, np.float32)}

    def reply(node, arrays):
        md = Metadata(run_id=1, message_id=f"m{node}", src_node_id=node, dst_node_id=0, reply_to_message_id="",
                      group_id="", created_at=time.time(), ttl=60, message_type="train")
        return Message(content=RecordDict({"arrays": ArrayRecord({k: Array(v) for k, v in arrays.items()}),
                                           "metrics": MetricRecord({"num-examples": 10, "train-loss": 0.1})}),
                       metadata=md)

    updates = [*honest, bad, nan]
    names = {i: f"partner_{i:02d}" for i in range(len(updates))}
    for rule in ("krum", "multikrum", "bulyan", "fedmedian", "trimmed"):
        s = FederatedStrategy(strategy=rule, partner_of=names, validate_norms=False, robust_f=1)
        s.current = g
        arrays, _ = s.aggregate_train(1, [reply(i, u) for i, u in enumerate(updates)])
        assert [r.partner for r in s.rejections] == ["partner_08"], rule
        out = arrays["trunk.0"].numpy()
        assert np.abs(out - g["trunk.0"]).max() < 0.1, rule  # the -50 update did not pull it
        if rule == "krum":
            assert any(np.array_equal(out, h["trunk.0"]) for h in honest)
    mean = FederatedStrategy(strategy="fedavg", partner_of=names, validate_norms=False)
    mean.current = g
    arrays, _ = mean.aggregate_train(1, [reply(i, u) for i, u in enumerate(updates)])
    assert np.abs(arrays["trunk.0"].numpy() - g["trunk.0"]).max() > 1.0  # plain FedAvg is dragged away


_CLI = r"""
import json, sys
from typer.testing import CliRunner
from flows.cli import app
r = CliRunner().invoke(app, json.loads(sys.argv[1]))
print(json.dumps({"code": r.exit_code, "out": r.stdout + (r.stderr or "")}))
"""


@pytest.mark.parametrize("args, needle", [
    (["--partners", "2", "--secagg"], "SecAgg+ needs >= 3 partners"),
    (["--partners", "3", "--dp-clip", "1", "--dp-noise", "1", "--strategy", "bulyan"], "mean of clipped updates"),
])
def test_cli_refuses_unsafe_privacy_settings_with_one_error_line(tmp_path, args, needle):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    proc = subprocess.run([sys.executable, "-c", _CLI, json.dumps(["federate", *args, "--out", str(tmp_path)])],
                          capture_output=True, text=True, cwd=root, timeout=120)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] == 2 and needle in result["out"] and "Traceback" not in result["out"]
    assert [line for line in result["out"].splitlines() if line.startswith("error:")]


def test_an_unavailability_error_from_the_superlink_is_named_by_the_partner_it_was_sent_to():
    """Flower's SuperLink answers for a dead node with an error reply from its own node id: the round
    log names the partner the message went to, and only once."""
    from flwr.app import Error

    from federation.strategy import FederatedStrategy

    g = {"trunk.0": np.zeros((2, 2), np.float32)}
    s = FederatedStrategy(strategy="fedavg", partner_of={11: "partner_00", 12: "partner_01", 13: "partner_02"},
                          validate_norms=False)
    s.current = g
    sent = []
    for i, node in enumerate((11, 12, 13)):
        m = Message(content=RecordDict(), metadata=Metadata(
            run_id=1, message_id=f"id{i}", src_node_id=0, dst_node_id=node, reply_to_message_id="", group_id="",
            created_at=time.time(), ttl=60, message_type="train"))
        sent.append(m)
    s._sent, s._sent_to = sent, [11, 12, 13]
    from federation.strategy import RoundLog

    s.rounds.append(RoundLog(round=1))

    def ok(node, mid):
        md = Metadata(run_id=1, message_id="r" + mid, src_node_id=node, dst_node_id=0, reply_to_message_id=mid,
                      group_id="", created_at=time.time(), ttl=60, message_type="train")
        return Message(content=RecordDict({"arrays": ArrayRecord({"trunk.0": Array(np.ones((2, 2), np.float32))}),
                                           "metrics": MetricRecord({"num-examples": 5, "train-loss": 0.1})}),
                       metadata=md)

    dead = Message(Error(code=5, reason="Node unavailable"), metadata=Metadata(
        run_id=1, message_id="rx", src_node_id=1, dst_node_id=0, reply_to_message_id="id2", group_id="",
        created_at=time.time(), ttl=60, message_type="train"))
    arrays, _ = s.aggregate_train(1, [ok(11, "id0"), ok(12, "id1"), dead])
    assert arrays is not None and s.rounds[-1].failed == ["partner_02"]
