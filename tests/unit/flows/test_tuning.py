"""Optuna tuning of the ADMET model on real data: pruning on a case built to be pruned, the SQLite
study reloads and grows, and the best trial becomes a config the training command accepts."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest

from flows.tuning import AdmetObjective, SearchSpace, load_tuning_data, open_study, trial_counts, write_best_config
from pipelines.errors import InputError

SPACE = SearchSpace(trunk_width=(32, 64), trunk_depth=(1, 1), lr=(1e-7, 1e-2), featurizers=("morgan_count",),
                    batch_size=(32,))
GOOD = {"trunk_width": 64, "trunk_depth": 1, "dropout": 0.0, "lr": 3e-3, "weight_decay": 1e-6,
        "featurizer": "morgan_count", "batch_size": 32}


@pytest.fixture(scope="module")
def tuning_data():
    return load_tuning_data(("solubility", "HLM_CLint"), max_molecules=240, seed=0)


def test_tuning_data_is_scaffold_split_and_featurized_once(tuning_data):
    folds = set(tuning_data.fold)
    assert folds == {"train", "valid"}
    X_tr, X_va = tuning_data.features("morgan_count")
    assert X_tr.shape[0] == int((tuning_data.fold == "train").sum())
    assert X_va.shape[0] == int((tuning_data.fold == "valid").sum())
    assert tuning_data.features("morgan_count")[0] is X_tr  # cached, not recomputed


def test_pruner_stops_hopeless_trials_and_study_reloads(tuning_data, tmp_path):
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    study = open_study(tmp_path, "prune-case", pruner=pruner)
    for _ in range(3):
        study.enqueue_trial(GOOD)
    for _ in range(2):  # a learning rate of 1e-7 cannot move the loss in 4 epochs: built to be pruned
        study.enqueue_trial({**GOOD, "lr": 1e-7})
    objective = AdmetObjective(tuning_data, space=SPACE, max_epochs=4)
    study.optimize(objective, n_trials=5)
    counts = trial_counts(study)
    assert counts.get("pruned", 0) >= 1, counts
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert all(t.params["lr"] == pytest.approx(1e-7) for t in pruned)
    assert all(len(t.intermediate_values) < 4 for t in pruned)

    reloaded = open_study(tmp_path, "prune-case", pruner=pruner)  # load_if_exists=True
    assert len(reloaded.trials) == 5
    assert reloaded.best_value == pytest.approx(study.best_value)
    reloaded.enqueue_trial(GOOD)
    reloaded.optimize(objective, n_trials=1)
    assert len(optuna.load_study(study_name="prune-case", storage=f"sqlite:///{tmp_path / 'optuna.db'}").trials) == 6

    best = write_best_config(reloaded, tmp_path / "best_params.json")
    from admet.config import ModelConfig

    cfg = ModelConfig.from_json(best)
    assert cfg.hidden == (64,) and cfg.lr == pytest.approx(3e-3) and cfg.featurizer == "morgan_count"
    assert json.loads(best.read_text())["trunk_width"] == 64


def test_best_config_needs_a_completed_trial(tmp_path):
    study = open_study(tmp_path, "empty")
    with pytest.raises(InputError, match="no completed trial"):
        write_best_config(study, tmp_path / "best.json")


def test_objective_values_are_finite_validation_losses(tuning_data):
    trial = optuna.trial.FixedTrial(GOOD)
    value = AdmetObjective(tuning_data, space=SPACE, max_epochs=2)(trial)
    assert np.isfinite(value) and value > 0


def test_tuning_flow_writes_study_trials_and_best_config(prefect_harness, tmp_path):
    from admet.config import ModelConfig
    from flows.tuning_flow import tuning_flow

    summary = tuning_flow(out_dir=str(tmp_path), n_trials=2, max_epochs=2, endpoints=("solubility",),
                          max_molecules=150, featurizers=("morgan_count",))
    assert summary["trials"].get("complete", 0) + summary["trials"].get("pruned", 0) == 2
    assert (tmp_path / "optuna.db").exists() and (tmp_path / "trials.csv").exists()
    assert ModelConfig.from_json(tmp_path / "best_params.json").featurizer == "morgan_count"
    again = tuning_flow(out_dir=str(tmp_path), n_trials=1, max_epochs=2, endpoints=("solubility",),
                        max_molecules=150, featurizers=("morgan_count",))
    assert sum(again["trials"].values()) == 3  # the study in the run folder was reloaded and grew
