"""``ModelConfig.seed``: the ablation's repetitions differ by seed, and one seed reproduces exactly."""

import dataclasses

import numpy as np
from clin_synthetic import make_trials

from clinical_sim.features import FeatureConfig
from clinical_sim.outcome_model import ModelConfig, TrialOutcomeModel
from clinical_sim.trial_table import parse_trials

SMALL = ModelConfig(n_seeds=1, n_estimators=60, learning_rate=0.05, calibration_folds=3, num_leaves=7,
                    min_child_samples=10, colsample_bytree=0.5, text_model=False,
                    features=FeatureConfig(fp_bits=16, text_components=2, disease_components=0))


def test_seed_changes_the_model_and_reproduces():
    train = parse_trials(make_trials(160, seed=0), require_label=True).usable
    test = parse_trials(make_trials(40, seed=1), require_label=True).usable
    y = train["label"].to_numpy()

    def fit(seed: int) -> np.ndarray:
        return TrialOutcomeModel(dataclasses.replace(SMALL, seed=seed)).fit(train, y).predict_proba(test)

    p0, p0_again, p1 = fit(0), fit(0), fit(1)
    np.testing.assert_array_equal(p0, p0_again)
    assert np.abs(p0 - p1).max() > 1e-6
