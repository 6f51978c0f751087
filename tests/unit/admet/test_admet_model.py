"""MultitaskNet trunk/head interface, determinism, FedProx, target scaling."""

import numpy as np
import pytest

from admet.model import MultitaskNet
from admet.tasks import TaskSpec
from admet.train import TargetScaler, TrainConfig, fit_mtnn, predict_raw, train_epochs

TASKS = [TaskSpec("a.logS", "regression"), TaskSpec("b", "classification")]


def _data(n=120, d=16, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    Y = np.column_stack([X[:, 0] * 2 + 1 + rng.normal(0, 0.1, n), (X[:, 1] > 0).astype(float)])
    Y[rng.random(n) < 0.3, 0] = np.nan
    return X, Y, np.zeros_like(Y, dtype=np.int8)


def test_trunk_and_head_arrays_round_trip_and_shape_checks():
    a = MultitaskNet(16, TASKS, hidden=(8, 4))
    b = MultitaskNet(16, TASKS, hidden=(8, 4))
    assert list(a.heads.keys()) == ["a_logS", "b"]
    assert len(a.all_arrays()) == len(a.trunk_arrays()) + len(a.head_arrays()) == 4 + 4
    b.set_trunk_arrays(a.trunk_arrays())
    for x, y in zip(a.trunk_arrays(), b.trunk_arrays()):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(a.head_arrays(), b.head_arrays()))
    b.set_all_arrays(a.all_arrays())
    X = np.random.default_rng(1).normal(size=(5, 16)).astype(np.float32)
    np.testing.assert_array_equal(predict_raw(a, X), predict_raw(b, X))
    with pytest.raises(ValueError, match="shape"):
        b.set_trunk_arrays([np.zeros((3, 3))] + a.trunk_arrays()[1:])
    with pytest.raises(ValueError, match="expected"):
        b.set_head_arrays(a.head_arrays()[:-1])


def test_same_seed_same_weights_other_seed_differs():
    X, Y, C = _data()
    cfg = TrainConfig(epochs=3, batch_size=32, seed=7, patience=0)
    r1 = fit_mtnn(X, Y, C, TASKS, cfg, hidden=(16,))
    r2 = fit_mtnn(X, Y, C, TASKS, cfg, hidden=(16,))
    r3 = fit_mtnn(X, Y, C, TASKS, TrainConfig(epochs=3, batch_size=32, seed=8, patience=0), hidden=(16,))
    for x, y in zip(r1.model.all_arrays(), r2.model.all_arrays()):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(r1.model.all_arrays(), r3.model.all_arrays()))


def test_training_learns_and_predicts_in_original_units():
    X, Y, C = _data(n=400)
    res = fit_mtnn(X, Y, C, TASKS, TrainConfig(epochs=40, batch_size=32, patience=8, lr=3e-3), hidden=(32,))
    P = predict_raw(res.model, X, res.target_scaler)
    ok = ~np.isnan(Y[:, 0])
    assert np.corrcoef(P[ok, 0], Y[ok, 0])[0, 1] > 0.9
    assert abs(P[ok, 0].mean() - Y[ok, 0].mean()) < 0.3  # original units, not z-scores
    assert ((P[:, 1] > 0.5) == (Y[:, 1] == 1)).mean() > 0.85
    assert np.all((P[:, 1] >= 0) & (P[:, 1] <= 1))


def test_fedprox_term_keeps_weights_near_the_global_model():
    X, Y, C = _data()
    scaler = TargetScaler.fit(Y, [False, True])
    Z = scaler.transform(Y)

    def drift(mu):
        model = MultitaskNet(16, TASKS, hidden=(16,))
        start = model.all_arrays()
        train_epochs(model, X, Z, C, TrainConfig(lr=1e-2, batch_size=16, proximal_mu=mu, seed=0), epochs=3,
                     global_params=start)
        return sum(float(((a - b) ** 2).sum()) for a, b in zip(model.all_arrays(), start))

    assert drift(100.0) < 0.2 * drift(0.0)


def test_target_scaler_from_moments_equals_fit():
    _, Y, _ = _data()
    fitted = TargetScaler.fit(Y, [False, True])
    obs = ~np.isnan(Y)
    halves = [Y[:60], Y[60:]]  # two "partners"
    s = sum(np.where(~np.isnan(h), h, 0).sum(0) for h in halves)
    ss = sum(np.where(~np.isnan(h), h**2, 0).sum(0) for h in halves)
    n = sum((~np.isnan(h)).sum(0) for h in halves)
    fed = TargetScaler.from_moments(s, ss, n, [False, True])
    np.testing.assert_allclose(fed.mean, fitted.mean)
    np.testing.assert_allclose(fed.std, fitted.std)
    assert fitted.mean[1] == 0 and fitted.std[1] == 1  # classification passes through
    np.testing.assert_allclose(fitted.inverse(fitted.transform(Y))[obs], Y[obs])
