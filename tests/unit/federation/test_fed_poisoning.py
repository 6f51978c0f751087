"""Poisoning with real torch training (no Flower, synthetic data with a known linear answer).

10 partners, 2 send sign-flipped updates scaled x5. Plain FedAvg degrades; the server's norm
check rejects exactly the two adversaries, by name, in every round, and FedAvg behind it stays
within 2 % of the clean result. The coordinate-wise rules (trimmed mean, median) are not asserted
to beat poisoned FedAvg: the federation benchmark measured them *below* it on real data
(``bench/results/federation.json``: trimmed -9.1 %, FedMedian -6.6 % vs clean), because they also
drop honest extremes. What is asserted for them is the aggregation itself, against a known answer.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import spearmanr

from admet.model import MultitaskNet
from admet.tasks import TaskSpec
from admet.train import TrainConfig, predict_raw, seed_everything, train_epochs
from federation.aggregation import aggregate, validate_updates

N_PARTNERS, BAD, SCALE = 10, (3, 7), 5.0


def _data(seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(32)
    parts = []
    for _ in range(N_PARTNERS):
        X = rng.standard_normal((60, 32)).astype(np.float32)
        parts.append((X, (X @ w + 0.3 * rng.standard_normal(60))[:, None]))
    Xt = rng.standard_normal((400, 32)).astype(np.float32)
    return parts, Xt, Xt @ w


def _federate(parts, method: str, poisoned: bool, check_norms: bool, rounds: int = 4,
              rejected: list | None = None) -> MultitaskNet:
    torch.set_num_threads(1)
    seed_everything(0)
    model = MultitaskNet(32, [TaskSpec("y")], hidden=(32,), dropout=0.0)
    cfg = TrainConfig(epochs=1, lr=5e-3, batch_size=32, patience=0)
    keys = [f"p{i}" for i in range(len(model.all_arrays()))]
    for rnd in range(rounds):
        g = dict(zip(keys, model.all_arrays()))
        updates = []
        for i, (X, y) in enumerate(parts):
            model.set_all_arrays(list(g.values()))
            cfg.seed = rnd * 100 + i
            train_epochs(model, X, y, np.zeros_like(y, dtype=np.int8), cfg, 2)
            w = dict(zip(keys, model.all_arrays()))
            if poisoned and i in BAD:
                w = {k: g[k] - SCALE * (v - g[k]) for k, v in w.items()}
            updates.append((f"partner_{i:02d}", w))
        outcome = validate_updates(rnd + 1, g, updates, check_norms=check_norms)
        if rejected is not None:
            rejected.append(sorted(r.partner for r in outcome.rejections))
        kept = outcome.accepted
        new = aggregate([updates[i][1] for i in kept], [60.0] * len(kept), method=method)
        model.set_all_arrays([new[k] for k in keys])
    return model


def test_fedavg_degrades_and_the_norm_check_rejects_the_adversaries_by_name():
    parts, Xt, yt = _data()

    def score(model):
        return float(spearmanr(yt, predict_raw(model, Xt)[:, 0]).statistic)

    clean = score(_federate(parts, "mean", poisoned=False, check_norms=False))
    fedavg = score(_federate(parts, "mean", poisoned=True, check_norms=False))
    rejected: list[list[str]] = []
    checked = score(_federate(parts, "mean", poisoned=True, check_norms=True, rejected=rejected))
    assert clean > 0.75
    assert fedavg < clean * 0.98, (clean, fedavg)
    assert rejected == [[f"partner_{i:02d}" for i in BAD]] * 4  # both adversaries, every round, no one else
    assert abs(checked - clean) / clean <= 0.02, (clean, checked)


def test_clean_updates_pass_the_norm_check():
    parts, _, _ = _data()
    rejected: list[list[str]] = []
    _federate(parts, "mean", poisoned=False, check_norms=True, rounds=2, rejected=rejected)
    assert rejected == [[], []]


def test_trimmed_mean_and_median_ignore_the_outlier_fedavg_does_not():
    """Five updates, one an outlier: trimmed mean (20 %) and median ignore it, FedAvg does not."""
    values = [[1.0, -2.0], [2.0, 0.0], [3.0, 1.0], [4.0, 2.0], [100.0, -50.0]]
    ups = [{"w": np.array(v, dtype=np.float32)} for v in values]
    np.testing.assert_allclose(aggregate(ups, method="trimmed", trim_fraction=0.2)["w"], [3.0, -1 / 3])
    np.testing.assert_allclose(aggregate(ups, method="median")["w"], [3.0, 0.0])
    np.testing.assert_allclose(aggregate(ups, method="mean")["w"], [22.0, -9.8], rtol=1e-6)
    np.testing.assert_allclose(aggregate(ups, method="trimmed", trim_fraction=0.4)["w"], [3.0, 0.0])
