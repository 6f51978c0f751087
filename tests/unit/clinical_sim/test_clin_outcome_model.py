"""Trial-outcome predictor on a small synthetic slice with known structure: beats the base rate."""

import numpy as np
import pytest
from clin_synthetic import make_trials
from sklearn.metrics import brier_score_loss, roc_auc_score

from clinical_sim.features import FeatureConfig
from clinical_sim.outcome_model import ModelConfig, TrialOutcomeModel
from clinical_sim.trial_table import parse_trials
from pipelines.errors import InputError

SMALL = ModelConfig(n_seeds=2, n_estimators=120, learning_rate=0.05, calibration_folds=3, num_leaves=7,
                    min_child_samples=10, colsample_bytree=0.5,
                    features=FeatureConfig(fp_bits=64, text_components=4, disease_components=2))


@pytest.fixture(scope="module")
def fitted():
    train = parse_trials(make_trials(260, seed=0), require_label=True).usable
    test = parse_trials(make_trials(160, seed=1), require_label=True).usable
    model = TrialOutcomeModel(SMALL).fit(train, train["label"].to_numpy())
    return model, train, test


def test_predictor_beats_the_base_rate(fitted):
    model, train, test = fitted
    p = model.predict_proba(test)
    y = test["label"].to_numpy().astype(int)
    assert p.shape == (len(test),) and np.all((p > 0) & (p < 1))
    assert roc_auc_score(y, p) > 0.7
    base = np.full(len(y), train["label"].mean())
    assert brier_score_loss(y, p) < brier_score_loss(y, base) - 0.01
    assert abs(p.mean() - y.mean()) < 0.1  # calibrated on average


def test_explanations_and_round_trip(fitted, tmp_path):
    model, _, test = fitted
    expl = model.explain(test.head(5))
    assert len(expl) == 5 and all("criteria_text_logit" in e for e in expl)
    model.save(tmp_path)
    again = TrialOutcomeModel.load(tmp_path)
    np.testing.assert_allclose(again.predict_proba(test), model.predict_proba(test))
    assert (tmp_path / "trial_model.json").exists()


def test_training_refuses_unusable_labels():
    trials = parse_trials(make_trials(30, seed=2)).usable
    with pytest.raises(InputError, match="one class"):
        TrialOutcomeModel(SMALL).fit(trials, np.ones(len(trials)))
    with pytest.raises(InputError, match="at least 20"):
        TrialOutcomeModel(SMALL).fit(trials.head(5), np.array([0, 1, 0, 1, 0]))
