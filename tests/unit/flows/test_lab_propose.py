"""``propose_batch``: the tuned loop's next batch from unmeasured candidates (real random forest)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flows.lab import LabObjective, LabPool, LabSettings, propose_batch
from pipelines.errors import InputError


def _pool(sign: float = 1.0) -> LabPool:
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(120, 4)).astype(np.float32)
    labels = pd.DataFrame({"y": 3.0 * X[:, 0] + 0.05 * rng.normal(size=120)})
    objective = LabObjective(("y",), sign=sign)
    return LabPool(smiles=[f"C{i}" for i in range(120)], X=X, truth=objective.truth(labels), labels=labels,
                   objective=objective)


def _candidates() -> np.ndarray:
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, size=(40, 4)).astype(np.float32)
    X[:, 0] = np.linspace(0.0, 1.0, 40)  # candidate i has true y = 3 * i / 39
    return X


@pytest.mark.parametrize("kind", ["greedy", "ei", "ucb"])
def test_batch_holds_the_candidates_with_the_best_predicted_objective(kind):
    frame = propose_batch(_pool(), _candidates(), LabSettings(acquisition=kind, batch_size=5, n_trees=30, kappa=0.1))
    batch = frame[frame["proposed"]]
    assert len(batch) == 5 and frame["rank"].tolist() == list(range(1, 41))
    assert set(batch["candidate"]) <= set(range(30, 40))  # all from the top quarter of true y
    assert frame["acquisition"].is_monotonic_decreasing


def test_lower_is_better_flips_the_choice():
    frame = propose_batch(_pool(sign=-1.0), _candidates(), LabSettings(acquisition="greedy", batch_size=5, n_trees=30))
    assert set(frame.loc[frame["proposed"], "candidate"]) <= set(range(0, 10))


def test_candidates_with_other_features_are_an_input_error():
    with pytest.raises(InputError, match="shape"):
        propose_batch(_pool(), np.zeros((3, 7), dtype=np.float32), LabSettings())
