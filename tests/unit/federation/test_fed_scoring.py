"""federation.scoring: which test folds can score an endpoint, and what a constant prediction scores."""

import numpy as np

from admet.tasks import TaskSpec
from federation import scoring

REG = TaskSpec(name="logS", task_type="regression")
CLS = TaskSpec(name="AMES", task_type="classification")


def test_a_constant_regression_target_is_not_scored_but_a_constant_prediction_scores_zero():
    y_const = np.full((8, 1), 2.0)
    y_vary = np.arange(8, dtype=float)[:, None]
    ranked = np.arange(8, dtype=float)[:, None]
    assert scoring.endpoint_scores(ranked, y_const, [REG]) == {}
    flat = scoring.endpoint_scores(np.zeros((8, 1)), y_vary, [REG])
    assert flat["logS"]["value"] == 0.0
    assert scoring.endpoint_scores(ranked, y_vary, [REG])["logS"]["value"] == 1.0


def test_a_single_class_or_short_fold_is_not_scored():
    one_class = np.zeros((10, 1))
    assert scoring.endpoint_scores(np.linspace(0, 1, 10)[:, None], one_class, [CLS]) == {}
    short = np.array([[0.0], [1.0], [0.0], [1.0]])
    assert len(short) < scoring.MIN_TEST
    assert scoring.endpoint_scores(short, short, [CLS]) == {}
    assert np.isnan(scoring.partner_metric({}))
