"""Federated tuning: each trial is a short FedAvg simulation over real partner folders, reported
round by round; a hopeless trial is pruned on the per-round validation loss."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from flows.federated_tuning import FederatedObjective
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
    assert len(objective._consortia) == 1  # partner data loaded once for the featurizer


def test_federated_tuning_needs_a_partition(tmp_path):
    with pytest.raises(InputError, match=">= 2 partners"):
        FederatedObjective(tmp_path)
