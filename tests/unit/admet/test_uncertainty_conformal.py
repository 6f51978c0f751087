"""Normalised split-conformal intervals and rank-keeping probability calibration, on constructions
with a known answer (heteroscedastic data whose difficulty the model can or cannot see)."""

import math

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from admet.conformal import ConformalRegressor, ProbabilityCalibrator, expected_calibration_error


def _draw(rng, n):
    """Noise grows with the distance to the training set; the spread is a noisy view of it."""
    distance = rng.uniform(0, 1, n)
    sigma = 0.15 + 1.5 * distance**2
    mu = rng.normal(0, 2, n)
    y = mu + rng.normal(0, sigma)
    spread = 0.3 * sigma * rng.lognormal(0, 0.4, n)
    nn = 1 - distance
    knn = np.clip(nn - rng.uniform(0, 0.1, n), 0, 1)
    return y, mu, spread, nn, knn


def test_normalised_interval_covers_90_and_its_width_follows_the_error():
    rng = np.random.default_rng(0)
    y, mu, spread, nn, knn = _draw(rng, 2000)   # coverage sd over calibration draws ~0.7 points at n = 2000
    conf = ConformalRegressor.fit(y, mu, spread, 0.9, nn_sim=nn, knn_sim=knn)
    assert conf.method in ("spread", "error_model") and conf.n_calibration == 2000
    const = ConformalRegressor.fit(y, mu, spread, 0.9, method="absolute", nn_sim=nn, knn_sim=knn)
    yt, mut, st, nnt, knnt = _draw(rng, 40_000)
    for c in (conf, const):
        lo, hi = c.interval(mut, st, nnt, knnt)
        assert 0.88 <= np.mean((yt >= lo) & (yt <= hi)) <= 0.92
    lo, hi = conf.interval(mut, st, nnt, knnt)
    assert spearmanr(hi - lo, np.abs(yt - mut)).statistic > 0.3
    c_lo, c_hi = const.interval(mut, st, nnt, knnt)
    assert len(np.unique(np.round(c_hi - c_lo, 12))) == 1          # the constant interval: no information
    assert np.mean(hi - lo) < np.mean(c_hi - c_lo)                   # adaptive is also narrower on average
    assert conf.selection["absolute"]["mean_width"] > conf.selection[conf.method]["mean_width"]
    assert ConformalRegressor.from_dict(conf.to_dict()) == conf


def test_error_model_uses_distance_when_the_ensemble_has_no_spread():
    """A single-member network has spread 0: the width must come from the domain distances."""
    rng = np.random.default_rng(1)
    y, mu, _, nn, knn = _draw(rng, 2000)
    conf = ConformalRegressor.fit(y, mu, np.zeros(2000), 0.9, nn_sim=nn, knn_sim=knn)
    assert conf.method == "error_model" and "log_spread" not in conf.features
    yt, mut, _, nnt, knnt = _draw(rng, 40_000)
    lo, hi = conf.interval(mut, np.zeros(len(mut)), nnt, knnt)
    assert 0.88 <= np.mean((yt >= lo) & (yt <= hi)) <= 0.92
    assert spearmanr(hi - lo, np.abs(yt - mut)).statistic > 0.3
    far, near = nnt < 0.2, nnt > 0.8
    assert np.mean((hi - lo)[far]) > 2 * np.mean((hi - lo)[near])


def test_older_bundles_normalized_intervals_still_predict_the_same():
    old = {"method": "normalized", "q": 2.0, "eps": 0.1, "coverage": 0.9, "n_calibration": 50}
    conf = ConformalRegressor.from_dict(old)
    lo, hi = conf.interval(np.array([1.0, 1.0]), np.array([0.0, 1.0]))
    np.testing.assert_allclose(hi - 1.0, [0.2, 2.2])
    assert conf.method == "normalized" and math.isfinite(conf.q)


def test_too_few_calibration_labels_gives_no_interval():
    conf = ConformalRegressor.fit(np.ones(5), np.zeros(5), np.ones(5), 0.9)
    assert not conf.calibrated and conf.n_calibration == 5
    assert np.isnan(conf.interval(np.zeros(3), np.ones(3))[0]).all()


def test_platt_keeps_every_distinct_score_and_the_ranking_and_fixes_overconfidence():
    rng = np.random.default_rng(2)
    true_p = rng.uniform(0.02, 0.98, 6000)
    y = (rng.random(len(true_p)) < true_p).astype(float)
    raw = 1 / (1 + np.exp(-4 * np.log(true_p / (1 - true_p)) - 1.0))   # overconfident and shifted
    cal = ProbabilityCalibrator.fit(y[:1000], raw[:1000])
    assert cal.method == "platt" and cal.a > 0
    p = cal.transform(raw[1000:])
    assert len(np.unique(p)) == len(np.unique(raw[1000:]))          # nothing merged (isotonic merged)
    assert np.all(np.diff(p[np.argsort(raw[1000:])]) > 0)            # strictly increasing in the raw score
    assert roc_auc_score(y[1000:], p) == pytest.approx(roc_auc_score(y[1000:], raw[1000:]), abs=1e-12)
    assert expected_calibration_error(y[1000:], p) < 0.5 * expected_calibration_error(y[1000:], raw[1000:])
    assert ProbabilityCalibrator.from_dict(cal.to_dict()) == cal


def test_platt_with_an_inverted_fit_or_one_class_is_the_identity():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 300)
    y = (rng.random(300) < 1 - p).astype(float)       # the score ranks the wrong way round
    assert ProbabilityCalibrator.fit(y, p).method == "identity"
    assert ProbabilityCalibrator.fit(np.ones(100), p[:100]).method == "identity"
    with pytest.raises(ValueError, match="isotonic"):
        ProbabilityCalibrator.fit(y, p, method="isotonic")


def test_expected_calibration_error_known_answer():
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0], float)
    p = np.full(10, 0.3)                  # one bin, observed rate 0.3 -> ECE 0
    assert expected_calibration_error(y, p) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(10, 0.8)) == pytest.approx(0.5)


def test_error_model_follows_errors_that_grow_towards_the_ends_of_the_range():
    """No spread, no distance signal: the noise grows with |mu - median|, which the error model sees."""
    rng = np.random.default_rng(4)

    def draw(n):
        mu = rng.normal(0, 2, n)
        return mu + rng.normal(0, 0.1 + 0.5 * np.abs(mu)), mu

    y, mu = draw(2000)
    nn = np.full(2000, 0.5) + rng.uniform(0, 1e-3, 2000)   # uninformative
    conf = ConformalRegressor.fit(y, mu, np.zeros(2000), 0.9, nn_sim=nn, knn_sim=nn)
    assert conf.method == "error_model" and "prediction_dev" in conf.features
    yt, mut = draw(40_000)
    nnt = np.full(40_000, 0.5)
    lo, hi = conf.interval(mut, np.zeros(40_000), nnt, nnt)
    assert 0.88 <= np.mean((yt >= lo) & (yt <= hi)) <= 0.92
    assert spearmanr(hi - lo, np.abs(yt - mut)).statistic > 0.4


def test_uncertainty_metrics_constant_width_has_no_width_error_correlation():
    """mu +/- q differs from 2q in the last bits; that float noise must not count as a varying width."""
    from admet.difficulty import CalibratedPrediction
    from admet.domain import DomainResult
    from admet.tasks import TaskSpec
    from admet.uncertainty_metrics import uncertainty_metrics

    rng = np.random.default_rng(5)
    n = 500
    mu = rng.normal(0, 3, (n, 1))
    y = mu + rng.normal(0, 1, (n, 1))
    status = np.array(["inside"] * 400 + ["outside"] * 100, dtype=object)
    dom = DomainResult(status, np.ones(n), np.ones(n), np.array([""] * n, dtype=object))
    pred = CalibratedPrediction(mu, mu, np.zeros((n, 1)), np.zeros((n, 1)), mu - 1.645, mu + 1.645, dom)
    m = uncertainty_metrics(y, np.zeros((n, 1), np.int8), [TaskSpec("e", "regression")], pred, 0.9)["e"]
    assert m["spearman_width_error"] is None and m["n_distinct_widths"] == 1
    assert 0.85 <= m["test_coverage"] <= 0.95 and m["n_inside"] == 400 and m["n_outside"] == 100
