"""DeepChem-backed member: ``dc.models.MultitaskRegressor`` / ``MultitaskClassifier``.

DeepChem's multitask networks take one task type each, so a mixed endpoint set gets one
DeepChem model per task type. Missing labels get weight 0 (DeepChem's ``w``); positives of
classification tasks are weighted n_neg/n_pos. Training runs epoch by epoch and keeps the
weights of the best epoch on a seeded validation split (early stopping, as for ``mtnn``).
Censored regression labels are used as their bound (DeepChem has no censored loss).
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from admet.config import ModelConfig
from admet.members import MEMBERS
from admet.tasks import TaskSpec
from admet.train import TargetScaler, seed_everything

log = logging.getLogger(__name__)


def _build(kind: str, n_tasks: int, n_features: int, params: dict):
    import deepchem as dc

    cls = dc.models.MultitaskClassifier if kind == "classification" else dc.models.MultitaskRegressor
    return cls(n_tasks=n_tasks, n_features=n_features, layer_sizes=list(params["layer_sizes"]),
               dropouts=params["dropout"], learning_rate=params["lr"],
               batch_size=params["batch_size"], weight_decay_penalty=params["weight_decay"],
               model_dir=tempfile.mkdtemp(prefix="fedadmet_dc_"))


def _weights(Y: np.ndarray, classification: bool, class_weighting: bool) -> np.ndarray:
    w = (~np.isnan(Y)).astype(np.float32)
    if classification and class_weighting:
        for t in range(Y.shape[1]):
            col = Y[:, t]
            pos, neg = np.nansum(col == 1), np.nansum(col == 0)
            if pos > 0 and neg > 0:
                w[:, t] = np.where(col == 1, neg / pos, w[:, t])
    return w


@MEMBERS.register("dc")
class DCMember:
    """One DeepChem model per task type present; predictions reassembled in task order."""

    family = "dc"

    def __init__(self, tasks: Sequence[TaskSpec], models: dict, params: dict,
                 target_scaler: TargetScaler, n_features: int) -> None:
        self.tasks = list(tasks)
        self.models = models  # "regression"/"classification" -> DeepChem model
        self.params = params
        self.target_scaler = target_scaler
        self.n_features = n_features

    def _columns(self, kind: str) -> list[int]:
        return [j for j, t in enumerate(self.tasks) if t.task_type == kind]

    @classmethod
    def fit(cls, X, Y, censor, tasks, cfg: ModelConfig, seed: int) -> "DCMember":
        import deepchem as dc

        X = np.asarray(X, np.float32)
        is_cls = np.array([t.is_classification for t in tasks])
        scaler = TargetScaler.fit(Y, is_cls)
        Z = scaler.transform(Y)
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(X))
        n_val = int(round(cfg.valid_fraction * len(X))) if len(X) >= 20 else 0
        va, tr = perm[:n_val], perm[n_val:]
        params = {"layer_sizes": list(cfg.hidden), "dropout": cfg.dropout, "lr": cfg.lr,
                  "batch_size": cfg.batch_size, "weight_decay": cfg.weight_decay}
        member = cls(tasks, {}, params, scaler, X.shape[1])
        for kind in ("regression", "classification"):
            cols = member._columns(kind)
            if not cols:
                continue
            seed_everything(seed)
            model = _build(kind, len(cols), X.shape[1], params)
            Zk = Z[:, cols]
            w = _weights(Zk, kind == "classification", cfg.class_weighting)
            train = dc.data.NumpyDataset(X[tr], np.nan_to_num(Zk[tr]), w[tr])
            best, best_state, best_epoch = np.inf, None, 0
            for epoch in range(1, cfg.epochs + 1):
                model.fit(train, nb_epoch=1, checkpoint_interval=0)
                if n_val == 0:
                    continue
                loss = _valid_loss(model, kind, X[va], Zk[va], w[va])
                if loss < best - 1e-6:
                    best, best_state, best_epoch = loss, copy.deepcopy(model.model.state_dict()), epoch
                elif cfg.patience and epoch - best_epoch >= cfg.patience:
                    break
            if best_state is not None:
                model.model.load_state_dict(best_state)
            log.info("dc %s model: %d tasks, best epoch %d", kind, len(cols), best_epoch)
            member.models[kind] = model
        return member

    def predict(self, X: np.ndarray) -> np.ndarray:
        import deepchem as dc

        X = np.asarray(X, np.float32)
        Z = np.full((len(X), len(self.tasks)), np.nan)
        if len(X) == 0:
            return Z
        ds = dc.data.NumpyDataset(X)
        for kind, model in self.models.items():
            cols = self._columns(kind)
            out = np.asarray(model.predict(ds))
            if kind == "classification":
                Z[:, cols] = out.reshape(len(X), len(cols), -1)[:, :, 1]
            else:
                Z[:, cols] = out.reshape(len(X), len(cols))
        P = self.target_scaler.inverse(Z)
        cls_cols = self._columns("classification")
        P[:, cls_cols] = Z[:, cls_cols]
        return P

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for kind, model in self.models.items():
            torch.save(model.model.state_dict(), folder / f"{kind}.pt")
        (folder / "member.json").write_text(json.dumps({
            "family": self.family, "tasks": [t.to_dict() for t in self.tasks],
            "params": self.params, "kinds": sorted(self.models), "n_features": self.n_features,
            "target_scaler": self.target_scaler.to_dict()}, indent=1))

    @classmethod
    def load(cls, folder: Path) -> "DCMember":
        meta = json.loads((folder / "member.json").read_text())
        tasks = [TaskSpec.from_dict(t) for t in meta["tasks"]]
        member = cls(tasks, {}, meta["params"], TargetScaler.from_dict(meta["target_scaler"]),
                     meta["n_features"])
        for kind in meta["kinds"]:
            model = _build(kind, len(member._columns(kind)), meta["n_features"], meta["params"])
            model.model.load_state_dict(torch.load(folder / f"{kind}.pt", map_location="cpu",
                                                   weights_only=True))
            member.models[kind] = model
        return member


def _valid_loss(model, kind: str, X: np.ndarray, Z: np.ndarray, w: np.ndarray) -> float:
    import deepchem as dc

    out = np.asarray(model.predict(dc.data.NumpyDataset(X)))
    mask = ~np.isnan(Z)
    if not mask.any():
        return np.inf
    if kind == "classification":
        p = np.clip(out.reshape(len(X), Z.shape[1], -1)[:, :, 1], 1e-6, 1 - 1e-6)
        y = np.nan_to_num(Z)
        per = -(y * np.log(p) + (1 - y) * np.log(1 - p)) * w
    else:
        per = (out.reshape(Z.shape) - np.nan_to_num(Z)) ** 2
    return float(per[mask].mean())
