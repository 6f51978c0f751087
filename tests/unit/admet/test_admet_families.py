"""LightGBM and DeepChem members behind the same interface as the multitask net."""

import numpy as np
import pytest

from admet.config import ModelConfig
from admet.ensemble import Ensemble
from admet.members import load_member
from admet.tasks import TaskSpec

TASKS = [TaskSpec("y", "regression"), TaskSpec("c", "classification")]


def _data(n=300, d=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    Y = np.column_stack([3 * X[:, 0] - X[:, 1] + rng.normal(0, 0.2, n), (X[:, 2] > 0.3).astype(float)])
    Y[rng.random(n) < 0.25, 1] = np.nan
    return X, Y, np.zeros(Y.shape, np.int8)


def _check_family(family, tmp_path, **kw):
    X, Y, C = _data()
    cfg = ModelConfig.build(model=family, ensemble=2, seed=0, **kw)
    ens = Ensemble.fit(X[:240], Y[:240], C[:240], TASKS, cfg)
    mean, std = ens.predict(X[240:])
    assert mean.shape == std.shape == (60, 2)
    ok = ~np.isnan(Y[240:, 1])
    assert np.corrcoef(mean[:, 0], Y[240:, 0])[0, 1] > 0.8
    assert ((mean[ok, 1] > 0.5) == (Y[240:, 1][ok] == 1)).mean() > 0.75
    assert np.all((mean[:, 1] >= 0) & (mean[:, 1] <= 1))
    ens.members[0].save(tmp_path / family)
    again = load_member(tmp_path / family)
    np.testing.assert_allclose(again.predict(X[240:]), ens.members[0].predict(X[240:]), rtol=1e-6)


def test_lightgbm_member(tmp_path):
    _check_family("lgbm", tmp_path, lgbm_n_estimators=100)


@pytest.mark.slow
def test_deepchem_member(tmp_path):
    _check_family("dc", tmp_path, hidden=(64,), epochs=30, patience=5, lr=3e-3, dropout=0.1)


def test_blend_member_is_the_mean_of_its_parts_and_round_trips(tmp_path):
    _check_family("blend", tmp_path, lgbm_n_estimators=100, hidden=(64,), epochs=40, patience=5, lr=3e-3)
    X, Y, C = _data(seed=1)
    member = load_member(tmp_path / "blend")
    net, gbm = member.net.predict(X), member.gbm.predict(X)
    np.testing.assert_allclose(member.predict(X), 0.5 * (net + gbm), rtol=1e-9)
    assert not np.allclose(net, gbm)  # two different models, so the mean is not either one


def test_blend_falls_back_to_the_network_where_lightgbm_has_no_model():
    X, Y, C = _data()
    Y[:, 1] = np.where(np.isnan(Y[:, 1]), np.nan, 1.0)  # one class only: LightGBM fits no booster
    cfg = ModelConfig.build(model="blend", ensemble=1, seed=0, lgbm_n_estimators=50, hidden=(32,), epochs=5)
    member = Ensemble.fit(X, Y, C, TASKS, cfg).members[0]
    assert member.gbm.boosters[1] is None
    pred = member.predict(X[:20])
    assert np.isfinite(pred).all()
    np.testing.assert_allclose(pred[:, 1], member.net.predict(X[:20])[:, 1])
