"""The two references every federated result is judged against, trained with the same recipe.

- **local-only**: each partner trains alone on its own train rows (its own scaling, its own
  endpoints), the same total epochs as a federated partner (rounds x local epochs);
- **pooled**: one model on all partners' train rows together (the centralized upper reference),
  the same total epochs, scored on each partner's own test rows.
Both are scored exactly like the federated model (``federation.scoring``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from admet.train import TrainConfig
from federation import scoring, task
from federation.config import FederatedConfig

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BaselineResult:
    local: dict[str, dict] = field(default_factory=dict)
    """partner -> {"metric": x, "endpoints": {ep: score}}"""
    pooled: dict[str, dict] = field(default_factory=dict)
    local_seconds: float = 0.0
    pooled_seconds: float = 0.0


def train_config(cfg: FederatedConfig, seed_offset: int = 0) -> TrainConfig:
    epochs = cfg.rounds * cfg.local_epochs
    return TrainConfig(epochs=epochs, lr=cfg.lr, batch_size=cfg.batch_size, weight_decay=cfg.weight_decay,
                       patience=0, seed=cfg.seed + seed_offset)


def _scores(model, data: task.PartnerData, scaling: task.ConsortiumScaling) -> dict:
    pred, Y = task.predict_partner(model, data, scaling, "test")
    eps = scoring.endpoint_scores(pred, Y, scaling.tasks, only=data.task_names)
    return {"metric": scoring.partner_metric(eps), "endpoints": {k: v["value"] for k, v in eps.items()}}


def local_only(cfg: FederatedConfig, partners: list[task.PartnerData]) -> tuple[dict[str, dict], float]:
    t0 = time.perf_counter()
    out = {}
    tcfg = train_config(cfg)
    for data in partners:
        scaling = task.consortium_scaling(data.X.shape[1], list(data.tasks),
                                          [(data.task_names, task.local_moments(data))])
        model = task.build_model(data.X.shape[1], scaling.tasks, cfg.hidden, cfg.dropout, cfg.seed)
        task.train_partner(model, data, scaling, tcfg, tcfg.epochs)
        out[data.partner] = _scores(model, data, scaling)
        log.info("local-only %s: %.3f", data.partner, out[data.partner]["metric"])
    return out, time.perf_counter() - t0


def pooled(cfg: FederatedConfig, partners: list[task.PartnerData]) -> tuple[dict[str, dict], float]:
    t0 = time.perf_counter()
    tasks = task.union_tasks([p.tasks for p in partners])
    scaling = task.consortium_scaling(partners[0].X.shape[1], tasks,
                                      [(p.task_names, task.local_moments(p)) for p in partners])
    X, Y, C = [], [], []
    for data in partners:
        tr = data.rows("train")
        y, c = task.align(data, tasks)
        X.append(data.X[tr])
        Y.append(y[tr])
        C.append(c[tr])
    pooled_data = task.PartnerData("pooled", np.concatenate(X), np.concatenate(Y), np.concatenate(C), tasks,
                                   np.array(["train"] * sum(len(x) for x in X), dtype=object))
    model = task.build_model(pooled_data.X.shape[1], tasks, cfg.hidden, cfg.dropout, cfg.seed)
    tcfg = train_config(cfg)
    task.train_partner(model, pooled_data, scaling, tcfg, tcfg.epochs)
    out = {data.partner: _scores(model, data, scaling) for data in partners}
    return out, time.perf_counter() - t0


def run_baselines(cfg: FederatedConfig, partners: list[task.PartnerData]) -> BaselineResult:
    local, t_local = local_only(cfg, partners)
    pool, t_pool = pooled(cfg, partners)
    return BaselineResult(local=local, pooled=pool, local_seconds=t_local, pooled_seconds=t_pool)
