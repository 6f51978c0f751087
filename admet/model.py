"""The multitask network: a shared MLP trunk and one small head per endpoint.

Federation shares the trunk across partners and may keep heads private, so the split is an
explicit interface: ``trunk_arrays`` / ``head_arrays`` give the parameters as numpy arrays in a
fixed order, and the ``set_*`` methods load them back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from admet.tasks import TaskSpec

log = logging.getLogger(__name__)


def head_key(task_name: str) -> str:
    """A ModuleDict-safe key for a task name (torch forbids ``.`` in module names)."""
    return task_name.replace(".", "_") or "_"


class MultitaskNet(nn.Module):
    """Shared trunk (Linear -> ReLU -> Dropout, per hidden width) + one Linear head per task.

    ``forward`` returns (n, T) raw outputs in task order: scaled values for regression tasks,
    logits for classification tasks (see ``admet.train.predict_raw`` for original units).
    """

    def __init__(
        self,
        n_features: int,
        tasks: Sequence[TaskSpec | str],
        hidden: Sequence[int] = (1024, 512),
        dropout: float = 0.2,
        input_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        if not tasks:
            raise ValueError("MultitaskNet needs at least one task")
        if not hidden:
            raise ValueError("MultitaskNet needs at least one hidden layer")
        self.tasks: list[TaskSpec] = [t if isinstance(t, TaskSpec) else TaskSpec(str(t)) for t in tasks]
        self.n_features = int(n_features)
        self.hidden = tuple(int(h) for h in hidden)
        self.dropout = float(dropout)
        self.input_dropout = float(input_dropout)
        layers: list[nn.Module] = []
        if input_dropout > 0:
            layers.append(nn.Dropout(input_dropout))
        width = self.n_features
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.trunk = nn.Sequential(*layers)
        keys = [head_key(t.name) for t in self.tasks]
        if len(set(keys)) != len(keys):
            raise ValueError(f"task names collide as module keys: {keys}")
        self.heads = nn.ModuleDict({k: nn.Linear(width, 1) for k in keys})
        self._keys = keys

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def is_classification(self) -> torch.Tensor:
        return torch.tensor([t.is_classification for t in self.tasks], dtype=torch.bool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.trunk(x)
        return torch.cat([self.heads[k](z) for k in self._keys], dim=1)

    def architecture(self) -> dict:
        """Everything needed to rebuild an empty copy of this network."""
        return {"n_features": self.n_features, "tasks": [t.to_dict() for t in self.tasks],
                "hidden": list(self.hidden), "dropout": self.dropout,
                "input_dropout": self.input_dropout}

    @classmethod
    def from_architecture(cls, arch: dict) -> "MultitaskNet":
        return cls(arch["n_features"], [TaskSpec.from_dict(t) for t in arch["tasks"]],
                   hidden=tuple(arch["hidden"]), dropout=arch["dropout"],
                   input_dropout=arch.get("input_dropout", 0.0))

    # -- parameters as numpy arrays (the federation interface) -----------------------------
    def trunk_arrays(self) -> list[np.ndarray]:
        """Trunk parameters in ``state_dict`` order, as float32 copies."""
        return [v.detach().cpu().numpy().copy() for v in self.trunk.state_dict().values()]

    def set_trunk_arrays(self, arrays: Sequence[np.ndarray]) -> None:
        _load(self.trunk, arrays, "trunk")

    def head_arrays(self) -> list[np.ndarray]:
        """Head parameters: per task in task order, weight then bias."""
        return [v.detach().cpu().numpy().copy() for v in self.heads.state_dict().values()]

    def set_head_arrays(self, arrays: Sequence[np.ndarray]) -> None:
        _load(self.heads, arrays, "heads")

    def all_arrays(self) -> list[np.ndarray]:
        """Trunk arrays followed by head arrays."""
        return self.trunk_arrays() + self.head_arrays()

    def set_all_arrays(self, arrays: Sequence[np.ndarray]) -> None:
        n_trunk = len(self.trunk.state_dict())
        self.set_trunk_arrays(arrays[:n_trunk])
        self.set_head_arrays(arrays[n_trunk:])


def _load(module: nn.Module, arrays: Sequence[np.ndarray], what: str) -> None:
    state = module.state_dict()
    if len(arrays) != len(state):
        raise ValueError(f"{what}: expected {len(state)} arrays, got {len(arrays)}")
    new = {}
    for (name, old), arr in zip(state.items(), arrays):
        arr = np.asarray(arr)
        if tuple(arr.shape) != tuple(old.shape):
            raise ValueError(f"{what}.{name}: expected shape {tuple(old.shape)}, got {arr.shape}")
        new[name] = torch.as_tensor(arr, dtype=old.dtype).clone()
    module.load_state_dict(new)
