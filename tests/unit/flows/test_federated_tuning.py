"""Federated tuning: each trial is a short run of the project's Flower app (FedAvg strategy, the default
heads: shared in plain mode) over real partner folders, reported round by round; a hopeless trial is pruned on the
per-round federated validation loss; the tuned values build the ``FederatedConfig`` of a run."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest

from admet.config import ModelConfig
from flows.federated_tuning import FederatedObjective, federated_config_for
from flows.tuning import SearchSpace, open_study
from pipelines.errors import InputError

SPACE = SearchSpace(trunk_width=(32, 64), trunk_depth=(1, 1), lr=(1e-7, 1e-2), featurizers=("morgan_count",),
                    batch_size=(32,))
GOOD = {"trunk_width": 64, "trunk_depth": 1, "dropout": 0.0, "lr": 3e-3, "weight_decay": 1e-6,
        "featurizer": "morgan_count", "batch_size": 32}


@pytest.fixture(scope="module")
def partners_dir(tmp_path_factory):
    from flows.demo_data import prepare_partners
    from pipelines.catalog import load_embedded

    long_df = load_embedded(["solubility", "HLM_CLint"])
    keep = long_df["compound_id"].drop_duplicates().head(450)
    folder = tmp_path_factory.mktemp("partners")
    src = folder / "table.csv"
    long_df[long_df["compound_id"].isin(keep)].to_csv(src, index=False)
    manifest = prepare_partners(folder / "p", n_partners=3, alpha=5.0, seed=0, data=src)
    assert len(manifest) == 3
    return folder / "p"


def test_federated_trials_report_each_round_and_hopeless_ones_are_pruned(partners_dir, tmp_path):
    objective = FederatedObjective(partners_dir, space=SPACE, rounds=3, local_epochs=1, work_dir=tmp_path / "w")
    study = open_study(tmp_path, "fed", pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))
    for params in (GOOD, GOOD, {**GOOD, "lr": 1e-7}):
        study.enqueue_trial(params)
    study.optimize(objective, n_trials=3)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert len(done) == 2 and len(pruned) == 1
    assert pruned[0].params["lr"] == pytest.approx(1e-7)
    assert sorted(done[0].intermediate_values) == [1, 2, 3]  # one report per federated round
    assert np.isfinite(study.best_value)
    # the trials ran the app's strategy with the default heads (shared in plain FedAvg, so no node keeps
    # a private heads file): the server's round log names the partners
    result = json.loads((tmp_path / "w" / "federation_result.json").read_text())
    assert result["strategy"] == "fedavg" and result["heads"] == "shared"
    assert all(len(r["accepted"]) + len(r["rejected"]) == 3 for r in result["round_log"])
    assert not list((tmp_path / "w" / "nodes").glob("*/private_heads.npz"))
    # partner data featurized once for the featurizer, shared by all trials
    assert len(list((tmp_path / "w" / "nodes").glob("*/partner_arrays_*.npz"))) == 3
    # the best trial's values are a FederatedConfig for `fedadmet federate`
    best = study.best_trial
    assert best.user_attrs["federated_config"]["heads"] == "shared"
    cfg = federated_config_for(ModelConfig(**best.user_attrs["model_config"]), out_dir=tmp_path / "run")
    assert cfg.hidden == (64,) and cfg.lr == pytest.approx(3e-3) and cfg.featurizer == "morgan_count"


def test_federated_tuning_needs_a_partition(tmp_path):
    with pytest.raises(InputError, match=">= 2 partners"):
        FederatedObjective(tmp_path)
