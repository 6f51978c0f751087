"""What the ServerApp's MeteredGrid counts: every exchange of the real apps, SecAgg+ stages included.

The project's one ServerApp / ClientApp over the in-process transport (real featurization, torch
training and Flower's SecAgg+ protocol), 3 partners, one round in each mode. The grid must see each
SecAgg+ protocol stage (key advertisement, encrypted shares, masked vectors, unmasking) as its own
exchange with one message per partner each way, and a SecAgg+ round must cost more bytes than a
plain one (the masked vectors travel as integers, plus keys and shares). The same counts on the
Deployment Engine are checked in ``test_deployment_admet.py``.
"""

from __future__ import annotations

import json

import pytest
from flwr.common.secure_aggregation.secaggplus_constants import Stage as SecAggStage

from federation.client_app import app as client_app
from federation.config import FederatedConfig
from federation.inprocess import FIRST_NODE_ID, SequentialGrid, run_inprocess
from federation.partners import prepare_partners
from federation.run import run_config_for
from federation.server_app import make_server_app

N = 3
SLICE = dict(n_partners=N, rounds=1, local_epochs=1, hidden=(16,), endpoints=("HLM_CLint", "RLM_CLint", "solubility"),
             max_rows=600, seed=0, engine="inprocess", baselines=False, min_partners=N)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    root = tmp_path_factory.mktemp("traffic")
    partners_dir = prepare_partners(FederatedConfig(out_dir=root / "partition", **SLICE))
    assert len([p for p in partners_dir.iterdir() if p.is_dir()]) == N
    out = {}
    for mode in ("plain", "secagg"):
        cfg = FederatedConfig(out_dir=root / mode, partners_dir=partners_dir, cache_dir=root / "cache",
                              secagg=(mode == "secagg"), heads="private", **SLICE)  # same arrays in both modes
        run_config = run_config_for(cfg, partners_dir)
        grid = SequentialGrid(client_app, N, run_config)
        if mode == "plain":  # the first partner opts in to sharing its preparation counts
            grid.contexts[FIRST_NODE_ID].node_config["share-counts"] = 1
        run_inprocess(make_server_app(), client_app, N, run_config, grid=grid)
        out[mode] = json.loads((root / mode / "federation_result.json").read_text())
    return out


def _kinds(outcome: dict) -> list[str]:
    return [e["kind"] for e in outcome["traffic"]]


def test_every_secagg_stage_is_one_exchange_with_one_message_per_partner(outcomes):
    secagg = outcomes["secagg"]
    stages = [f"train:{s}" for s in SecAggStage.all()]
    assert _kinds(secagg) == ["query.stats", "query.setup", *stages, "query.report"]
    for entry in secagg["traffic"]:
        assert entry["messages_down"] == N and entry["messages_up"] == N, entry
        assert entry["errors_up"] == 0, entry
        assert entry["bytes_down"] > 0 and entry["bytes_up"] > 0
    in_round = [e for e in secagg["traffic"] if e["kind"] in stages]
    assert sum(e["messages_down"] for e in in_round) == len(SecAggStage.all()) * N
    # the round log's bytes are exactly the four protocol stages' bytes (nothing else in the round)
    rnd = secagg["round_log"][0]
    assert rnd["bytes_down"] == sum(e["bytes_down"] for e in in_round)
    assert rnd["bytes_up"] == sum(e["bytes_up"] for e in in_round)
    # the masked vectors are the big upload; keys and shares are small next to them
    by = {e["kind"]: e for e in in_round}
    assert by["train:collect_masked_vectors"]["bytes_up"] > 10 * by["train:share_keys"]["bytes_up"]


def test_plain_round_is_train_and_evaluate_and_secagg_costs_more_bytes(outcomes):
    plain, secagg = outcomes["plain"], outcomes["secagg"]
    assert _kinds(plain) == ["query.stats", "train", "evaluate", "query.report"]
    rp, rs = plain["round_log"][0], secagg["round_log"][0]
    in_round = [e for e in plain["traffic"] if e["kind"] in ("train", "evaluate")]
    assert rp["bytes_down"] + rp["bytes_up"] == sum(e["bytes_down"] + e["bytes_up"] for e in in_round)
    # the trunk goes up once in both modes; SecAgg+ sends it as int64 masked values (8 bytes vs 4)
    assert rs["bytes_up"] > 1.5 * rp["bytes_up"]


def test_only_the_partner_that_opted_in_has_preparation_counts_at_the_server(outcomes):
    plain, secagg = outcomes["plain"], outcomes["secagg"]
    first = plain["partner_of_node"][str(FIRST_NODE_ID)]
    assert list(plain["preparation_counts"]) == [first]
    counts = plain["preparation_counts"][first]
    assert counts["n-input"] == counts["n-accepted"] + counts["n-rejected"] > 0
    assert secagg["preparation_counts"] == {}
