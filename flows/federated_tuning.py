"""Federated tuning: each Optuna trial is a short federated simulation, pruned on per-round validation.

A trial runs FedAvg rounds over the partners in this process with the same partner-side
functions Flower's ClientApps call (``federation.task``: load, moments, local training, scoring);
only the transport is left out, so a trial costs seconds instead of a Ray start-up. After every
round the global model's validation loss (weighted over partners' validation rows) is reported
to Optuna. The best trial is written as an ``admet.config.ModelConfig`` JSON.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna

from flows.tuning import SearchSpace, report_or_prune, suggest_params
from pipelines.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class Consortium:
    """Every partner's featurized data for one featurizer spec, plus the combined scaling."""

    partners: list
    """federation.task.PartnerData, one per partner."""
    tasks: list
    scaling: object
    """federation.task.ConsortiumScaling built from the partners' moments (no pooling of rows)."""


class FederatedObjective:
    """Optuna objective: best per-round validation loss of a short FedAvg simulation."""

    def __init__(self, partners_dir: Path, space: SearchSpace | None = None, rounds: int = 4,
                 local_epochs: int = 1, seed: int = 0, work_dir: Path | None = None) -> None:
        partners_dir = Path(partners_dir)
        self.partner_dirs = sorted(p for p in partners_dir.iterdir() if (p / "data.csv").exists()) \
            if partners_dir.is_dir() else []
        if len(self.partner_dirs) < 2:
            raise InputError(f"federated tuning needs a partition folder with >= 2 partners, got {partners_dir}")
        self.space = space or SearchSpace()
        self.rounds, self.local_epochs, self.seed = rounds, local_epochs, seed
        self.work_dir = work_dir
        self._consortia: dict[str, Consortium] = {}

    def consortium(self, spec: str) -> Consortium:
        """Loaded once per featurizer spec (the objective's data cache)."""
        if spec not in self._consortia:
            from federation import task as ftask

            partners = [ftask.load_partner(d, d.name, spec, cache_dir=None, work_dir=self.work_dir, seed=self.seed)
                        for d in self.partner_dirs]
            tasks = ftask.union_tasks([p.tasks for p in partners])
            scaling = ftask.consortium_scaling(partners[0].X.shape[1], tasks,
                                               [(p.task_names, ftask.local_moments(p)) for p in partners])
            self._consortia[spec] = Consortium(partners, tasks, scaling)
        return self._consortia[spec]

    def __call__(self, trial: optuna.Trial) -> float:
        from admet.config import ModelConfig
        from federation import task as ftask

        params = suggest_params(trial, self.space)
        cfg = ModelConfig.build(**params, seed=self.seed)
        cons = self.consortium(cfg.featurizer)
        model = ftask.build_model(cons.scaling.n_features, cons.tasks, cfg.hidden, cfg.dropout,
                                  self.seed)
        best = math.inf
        for rnd in range(1, self.rounds + 1):
            global_arrays = model.all_arrays()
            updates, weights = [], []
            for p in cons.partners:
                n_train = len(p.rows("train"))
                if n_train == 0:
                    continue
                model.set_all_arrays(global_arrays)
                ftask.train_partner(model, p, cons.scaling, cfg.train_config(seed=self.seed + rnd),
                                    self.local_epochs)
                updates.append(model.all_arrays())
                weights.append(n_train)
            w = np.asarray(weights, float) / float(np.sum(weights))
            model.set_all_arrays([sum(wi * u[k] for wi, u in zip(w, updates)) for k in range(len(global_arrays))])
            val = self.validation_loss(model, cons)
            report_or_prune(trial, val, rnd, f"after round {rnd}")
            best = min(best, val)
        trial.set_user_attr("model_config", cfg.to_json_dict())
        return best

    @staticmethod
    def validation_loss(model, cons: Consortium) -> float:
        """Validation loss of the global model, weighted by each partner's validation rows."""
        from admet.train import evaluate_loss
        from federation import task as ftask

        total, count = 0.0, 0
        for p in cons.partners:
            rows = p.rows("valid")
            if len(rows) == 0:
                continue
            Y, C = ftask.align(p, cons.tasks)
            X = cons.scaling.scale_features(p.X[rows])
            total += evaluate_loss(model, X, cons.scaling.target.transform(Y[rows]), C[rows]) * len(rows)
            count += len(rows)
        if count == 0:
            raise InputError("no partner has validation rows: cannot tune")
        return total / count
