"""Federated trees (``federation.trees``): Flower's FedXgbBagging over the in-process transport.

Real partition slice of the embedded catalog (3 partners, 2 endpoints), real featurization, real
xgboost, Flower's strategy; ``RecordingGrid`` keeps every message and reply the server exchanged.
"""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from federation import partners as partners_mod
from federation.config import FederatedConfig
from federation.inprocess import SequentialGrid
from federation.run import load_all_partners, run_config_for, warm_feature_cache
from federation.trees import (
    BASE_SCORE,
    TreeSettings,
    federated_trees,
    load_booster,
    predict_raw,
    trees_client_app,
)
from pipelines.errors import InputError

ENDPOINTS = ("HLM_CLint", "BBB_Martins")
SMALL = dict(n_partners=3, endpoints=ENDPOINTS, max_rows=900, alpha=1.0, seed=0, engine="inprocess",
             baselines=False, quorum_grace=0.0)
SETTINGS = TreeSettings(rounds=6, patience=3)


class RecordingGrid(SequentialGrid):
    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.exchanges = []

    def send_and_receive(self, messages, *, timeout=None):
        messages = list(messages)
        sent = copy.deepcopy(messages)  # the strategy reuses (and later changes) one config record per round
        replies = super().send_and_receive(messages, timeout=timeout)
        self.exchanges.extend(zip(sent, replies, strict=True))
        return replies

    def of_type(self, message_type: str, endpoint: str | None = None):
        return [(m, r) for m, r in self.exchanges if m.metadata.message_type == message_type
                and (endpoint is None or str(m.content["config"]["endpoint"]) == endpoint)]


def _model_of(message) -> dict:
    raw = next(iter(message.content.array_records.values()))["0"].numpy().tobytes()
    return json.loads(raw) if raw else {}


def _trees(model: dict) -> list[dict]:
    return model["learner"]["gradient_booster"]["model"]["trees"] if model else []


def _run(cfg: FederatedConfig, partners_dir, settings=SETTINGS):
    n = len(partners_mod.partner_folders(partners_dir))
    grid = RecordingGrid(trees_client_app, n, run_config_for(cfg, partners_dir))
    return federated_trees(cfg, partners_dir, settings, grid=grid), grid


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fed_trees")
    cfg = FederatedConfig(out_dir=root / "run", **SMALL)
    partners_dir = partners_mod.prepare_partners(cfg)
    warm_feature_cache(cfg, partners_dir)
    result, grid = _run(cfg, partners_dir)
    return cfg, partners_dir, result, grid, {d.partner: d for d in load_all_partners(cfg, partners_dir)}


def test_bagging_appends_every_partners_tree(run):
    cfg, _, result, grid, data = run
    for endpoint in ENDPOINTS:
        trains = grid.of_type("train", endpoint)
        by_round: dict[int, list] = {}
        for msg, reply in trains:
            by_round.setdefault(int(msg.content["config"]["server-round"]), []).append((msg, reply))
        assert len(by_round[1]) >= 2, "the slice should give each endpoint at least two partners"
        assert _trees(_model_of(by_round[1][0][0])) == []  # round 1 starts from the empty model
        sent_r2 = _trees(_model_of(by_round[2][0][0]))
        replied_r1 = [_trees(_model_of(reply))[0] for _, reply in by_round[1]]
        assert len(sent_r2) == len(by_round[1])  # one tree per partner of round 1, not one partner's model
        key = lambda t: (t["split_indices"], t["split_conditions"])  # noqa: E731
        assert sorted(map(key, sent_r2)) == sorted(map(key, replied_r1))
        info = result.endpoints[endpoint]
        assert info["trees_per_round"]["2"] == 2 * len(info["partners"])
        assert info["n_trees"] > 1 and info["best_round"] >= 1


def test_partner_without_the_endpoint_is_not_asked(run):
    cfg, _, result, grid, data = run
    node_of = {}
    for msg, reply in grid.of_type("query.trees_endpoints"):
        node_of[str(reply.content["partner"]["partner-id"])] = msg.metadata.dst_node_id
    lacking = [(p, ep) for p, d in data.items() for ep in ENDPOINTS if ep not in d.task_names]
    assert lacking, "the slice should leave some partner without an endpoint"
    for endpoint in ENDPOINTS:
        have = {node_of[p] for p, d in data.items() if endpoint in d.task_names}
        asked = {m.metadata.dst_node_id for m, _ in grid.of_type("train", endpoint)}
        assert asked == have
        assert {m.metadata.dst_node_id for m, _ in grid.of_type("query.trees_predict", endpoint)} == have
    for partner, endpoint in lacking:
        assert endpoint not in result.predictions.get(partner, {})


def test_predictions_follow_the_partner_rows(run):
    cfg, _, result, grid, data = run
    node_partner = {m.metadata.dst_node_id: str(r.content["partner"]["partner-id"])
                    for m, r in grid.of_type("query.trees_endpoints")}
    for msg, _ in grid.of_type("query.trees_predict"):
        partner, endpoint = node_partner[msg.metadata.dst_node_id], str(msg.content["config"]["endpoint"])
        d, task_type = data[partner], result.endpoints[endpoint]["task_type"]
        bst = load_booster(next(iter(msg.content.array_records.values()))["0"].numpy().tobytes())
        for fold in ("valid", "test"):
            got = result.predictions[partner][endpoint][fold]
            assert got.shape == (len(d.rows(fold)),)
            np.testing.assert_allclose(got, predict_raw(bst, d.X[d.rows(fold)], task_type), rtol=1e-6)
        if task_type == "classification":
            assert np.all((got >= 0) & (got <= 1))
    # the federated regression model is better than the base score alone on the partners' test rows
    errs = []
    for partner, d in data.items():
        if "HLM_CLint" in result.predictions.get(partner, {}):
            y = d.Y[d.rows("test"), d.task_names.index("HLM_CLint")]
            p = result.predictions[partner]["HLM_CLint"]["test"]
            ok = ~np.isnan(y)
            errs.append((((p[ok] - y[ok]) ** 2).sum(), ((BASE_SCORE["regression"] - y[ok]) ** 2).sum()))
    assert sum(e for e, _ in errs) < 0.5 * sum(b for _, b in errs)


def test_train_reply_is_one_tree_with_partner_thresholds(run):
    """What leaves a node per round (docs/PRIVACY.md): one tree and two valid-loss numbers; every
    split threshold is a feature value of one of the partner's own training molecules."""
    cfg, _, result, grid, data = run
    node_partner = {m.metadata.dst_node_id: str(r.content["partner"]["partner-id"])
                    for m, r in grid.of_type("query.trees_endpoints")}
    msg, reply = grid.of_type("train", "HLM_CLint")[0]
    content = reply.content
    assert list(content.array_records) == ["arrays"] and list(content.config_records) == []
    assert sorted(content["metrics"]) == ["num-examples", "valid-loss-sum", "valid-n"]
    model = _model_of(reply)
    assert sorted(model["learner"]) == ["attributes", "feature_names", "feature_types", "gradient_booster",
                                        "learner_model_param", "objective"]
    assert model["learner"]["learner_model_param"]["base_score"] == "[0E0]"  # fixed, not the partner's mean
    (tree,) = _trees(model)
    d = data[node_partner[msg.metadata.dst_node_id]]
    j = d.task_names.index("HLM_CLint")
    train_rows = d.rows("train")[~np.isnan(d.Y[d.rows("train"), j])]
    splits = [(f, c) for f, c, left in zip(tree["split_indices"], tree["split_conditions"], tree["left_children"],
                                           strict=True) if left != -1]
    assert splits
    for feature, threshold in splits:
        assert np.any(d.X[train_rows, feature].astype(np.float32) == np.float32(threshold))
    assert tree["sum_hessian"][0] <= len(train_rows)  # squared error: the hessian sum is a row count


def test_synthetic_target_learned_better_federated_than_by_the_smallest_partner(run, tmp_path):
    """Known answer: label = Crippen logP of the molecule (a function of the features). The smallest
    partner alone (the same code with one node) predicts held-out molecules worse than the federation."""
    from rdkit import Chem
    from rdkit.Chem import Crippen

    cfg, partners_dir, _, _, _ = run
    rows = []
    for folder in partners_mod.partner_folders(partners_dir):
        table = pd.read_csv(folder / "data.csv", dtype=str, keep_default_na=False)
        rows.append(table[table["Test_Type"] == "HLM_CLint"])
    table = pd.concat(rows).drop_duplicates("SMILES_Structure_Parent").reset_index(drop=True)
    table["Measurement_Value"] = [f"{Crippen.MolLogP(Chem.MolFromSmiles(s)):.4f}"
                                  for s in table["SMILES_Structure_Parent"]]
    table["Measurement_Relation"] = ""
    sizes = {"partner_00": slice(0, 15), "partner_01": slice(15, 250), "partner_02": slice(250, None)}
    for name, root in (("fed", tmp_path / "fed"), ("solo", tmp_path / "solo")):
        for partner, part in sizes.items():
            if name == "solo" and partner != "partner_00":
                continue
            (root / partner).mkdir(parents=True)
            table.iloc[part].to_csv(root / partner / "data.csv", index=False)
        shutil.copy(partners_dir / "catalog.json", root / "catalog.json")
    scores = {}
    held_out = None
    for name in ("fed", "solo"):
        c = FederatedConfig(out_dir=tmp_path / f"out_{name}", partners_dir=tmp_path / name, cache_dir=cfg.cache_dir,
                            **{k: v for k, v in SMALL.items() if k not in ("endpoints", "max_rows")})
        result, grid = _run(c, tmp_path / name, TreeSettings(rounds=8, patience=8))
        (msg, _), *_ = grid.of_type("query.trees_predict")
        bst = load_booster(next(iter(msg.content.array_records.values()))["0"].numpy().tobytes())
        if held_out is None:  # every federated partner's valid + test rows
            parts = load_all_partners(c, tmp_path / "fed")
            X = np.concatenate([p.X[np.flatnonzero(p.split != "train")] for p in parts])
            y = np.concatenate([p.Y[np.flatnonzero(p.split != "train"), 0] for p in parts])
            held_out = (X, y)
            assert len(parts[0].rows("train")) < 15 and len(y) > 40
        scores[name] = float(spearmanr(predict_raw(bst, held_out[0], "regression"), held_out[1]).statistic)
    assert scores["fed"] > 0.8
    assert scores["fed"] > scores["solo"] + 0.1, scores


def test_trees_refuse_secagg_and_dp(tmp_path):
    for kw in ({"secagg": True}, {"dp_clip": 1.0, "dp_noise": 0.5}):
        cfg = FederatedConfig(out_dir=tmp_path / "x", **{**SMALL, **kw})
        with pytest.raises(InputError, match="without secure aggregation and without DP"):
            federated_trees(cfg, tmp_path)
