"""Federated tuning: each Optuna trial is a short run of the consortium's own Flower app.

A trial builds a ``federation.config.FederatedConfig`` from the sampled hyperparameters (same
recipe as ``fedadmet federate``: FedAvg through ``federation.strategy``, its default heads, the same
consortium scaling, the same ClientApp training) and runs the project's one ServerApp / ClientApp
over the in-process fallback transport (``federation.inprocess``; a Ray start per trial would
cost more than the trial). After every round the strategy's federated validation loss (weighted
over the partners' validation rows) is reported to Optuna, which may prune the trial there. No
FedAvg is written here. The best trial is written as an ``admet.config.ModelConfig`` JSON, and
each trial keeps ``federated_config``: the ``FederatedConfig`` fields it ran with, so the tuned
values transfer to ``fedadmet federate --tuned best_params.json`` unchanged (``federated_config_for``).

All trials share one run folder, so each partner's featurized arrays (cached by content hash in
its node folder) and the feature cache are computed once per featurizer; every trial starts a
fresh model (a new run token, so no trial reuses another's private heads; no resume).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import optuna

from flows.tuning import SearchSpace, report_or_prune, suggest_params
from pipelines.errors import InputError

log = logging.getLogger(__name__)

#: The ModelConfig values a federated run takes (``FederatedConfig`` field -> ``ModelConfig`` field).
TUNED_FIELDS = ("hidden", "dropout", "lr", "batch_size", "weight_decay", "featurizer")


def federated_config_for(model_config, **run) -> "object":
    """A ``FederatedConfig`` with the tuned hyperparameters of ``model_config`` and the run settings."""
    from federation.config import FederatedConfig

    return FederatedConfig(**{f: getattr(model_config, f) for f in TUNED_FIELDS}, **run)


class FederatedObjective:
    """Optuna objective: best per-round federated validation loss of a short run of the Flower app."""

    def __init__(self, partners_dir: Path, space: SearchSpace | None = None, rounds: int = 4,
                 local_epochs: int = 1, seed: int = 0, work_dir: Path | None = None) -> None:
        partners_dir = Path(partners_dir)
        self.partner_dirs = sorted(p for p in partners_dir.iterdir() if (p / "data.csv").exists()) \
            if partners_dir.is_dir() else []
        if len(self.partner_dirs) < 2:
            raise InputError(f"federated tuning needs a partition folder with >= 2 partners, got {partners_dir}")
        self.partners_dir = partners_dir
        self.space = space or SearchSpace()
        self.rounds, self.local_epochs, self.seed = rounds, local_epochs, seed
        self.run_dir = Path(work_dir) if work_dir is not None else partners_dir.parent / "federated_trials"

    def config_for(self, model_config):
        """The trial's FederatedConfig (the ``fedadmet federate`` recipe, short, no references)."""
        return federated_config_for(
            model_config, out_dir=self.run_dir, partners_dir=self.partners_dir,
            n_partners=len(self.partner_dirs), rounds=self.rounds, local_epochs=self.local_epochs,
            strategy="fedavg", heads="auto", seed=self.seed, baselines=False, final_report=False,
            audit=False, engine="inprocess")

    def __call__(self, trial: optuna.Trial) -> float:
        from admet.config import ModelConfig
        from federation.client_app import app as client_app
        from federation.inprocess import run_inprocess
        from federation.run import run_config_for
        from federation.server_app import make_server_app

        params = suggest_params(trial, self.space)
        model_config = ModelConfig.build(**params, seed=self.seed)
        cfg = self.config_for(model_config)
        losses: list[float] = []

        def on_evaluate(server_round: int, loss: float) -> None:
            losses.append(loss)
            report_or_prune(trial, loss, server_round, f"after round {server_round}")

        trial.set_user_attr("model_config", model_config.to_json_dict())
        trial.set_user_attr("federated_config", {f: _json_value(getattr(cfg, f)) for f in TUNED_FIELDS}
                            | {"rounds": cfg.rounds, "local_epochs": cfg.local_epochs, "heads": cfg.heads,
                               "strategy": cfg.strategy})
        server = make_server_app(on_evaluate=on_evaluate)
        run_inprocess(server, client_app, len(self.partner_dirs), run_config_for(cfg, self.partners_dir))
        if len(losses) != self.rounds:
            raise RuntimeError(f"trial {trial.number}: {len(losses)} validation losses for {self.rounds} rounds")
        best = min(losses)
        if not math.isfinite(best):
            raise optuna.TrialPruned("no finite validation loss")
        return best


def _json_value(value):
    return list(value) if isinstance(value, tuple) else json.loads(json.dumps(value))
