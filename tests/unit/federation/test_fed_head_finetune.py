"""Private-heads refit before the report: heads move, the shared trunk does not, the fit improves."""

from __future__ import annotations

import numpy as np

from admet.tasks import TaskSpec
from admet.train import TrainConfig
from federation import task
from federation.config import FederatedConfig


def _partner(seed=0, n=240, d=16):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = 2.0 * X[:, 0] - X[:, 3] + rng.normal(0, 0.1, n)
    Y = y[:, None]
    split = np.array(["train"] * 200 + ["valid"] * 20 + ["test"] * 20)
    tasks = [TaskSpec("y", "regression")]
    data = task.PartnerData("p0", X, Y, np.zeros(Y.shape, np.int8), tasks, split)
    moments = task.local_moments(data)
    scaling = task.consortium_scaling(d, tasks, [(["y"], moments)])
    return data, scaling


def test_finetune_heads_moves_heads_only_and_fits_better():
    data, scaling = _partner()
    model = task.build_model(scaling.n_features, scaling.tasks, (32,), 0.0, seed=0)
    trunk_before = [a.copy() for a in model.trunk_arrays()]
    heads_before = [a.copy() for a in model.head_arrays()]

    def train_mse():
        pred, Y = task.predict_partner(model, data, scaling, "train")
        return float(np.mean((pred[:, 0] - Y[:, 0]) ** 2))

    mse_before = train_mse()
    cfg = TrainConfig(epochs=40, lr=1e-2, batch_size=32, weight_decay=1e-5, patience=0, seed=0)
    task.finetune_heads(model, data, scaling, cfg, epochs=40)
    for a, b in zip(trunk_before, model.trunk_arrays()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(heads_before, model.head_arrays()))
    assert train_mse() < 0.5 * mse_before
    assert all(p.requires_grad for p in model.trunk.parameters())  # trunk trainable again afterwards


def test_head_finetune_epochs_is_off_by_default_and_validated(tmp_path):
    import pytest

    from pipelines.errors import InputError

    assert FederatedConfig(out_dir=tmp_path).head_finetune_epochs == 0
    with pytest.raises(InputError, match="fine-tuning"):
        FederatedConfig(out_dir=tmp_path, head_finetune_epochs=-1)


def test_saved_private_heads_are_only_reused_by_the_same_run(tmp_path):
    """A fresh run into a folder that holds another run's heads must start its heads afresh
    (reruns were not reproducible before); a resumed run keeps its token and gets them back."""
    from flwr.app import Array, ArrayRecord

    from federation import modelio

    record = ArrayRecord({"heads.y.weight": Array(np.arange(4, dtype=np.float32).reshape(1, 4))})
    modelio.save_heads(tmp_path, record, "run-a")
    again = modelio.load_heads(tmp_path, "run-a")
    np.testing.assert_array_equal(again["heads.y.weight"].numpy(), record["heads.y.weight"].numpy())
    assert modelio.load_heads(tmp_path, "run-b") is None
    assert modelio.load_heads(tmp_path / "nowhere", "run-a") is None
    assert modelio.load_heads(tmp_path) is not None  # no token asked: whatever is there
