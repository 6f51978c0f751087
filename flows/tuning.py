"""Optuna tuning of the ADMET model: search space, objective object, study on SQLite, best config.

The objective loads and featurizes the data once (per featurizer choice), splits it by scaffold,
and trains a :class:`admet.model.MultitaskNet` epoch by epoch, reporting the validation loss to
Optuna after every epoch so that a pruner can stop hopeless trials early. The best trial is
written as an :class:`admet.config.ModelConfig` JSON that ``fedadmet admet train --config`` reads.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
from pydantic import BaseModel, ConfigDict

from pipelines.errors import InputError

log = logging.getLogger(__name__)


def report_or_prune(trial: optuna.Trial, val: float, step: int, where: str) -> None:
    """Report one intermediate validation loss; prune on a non-finite loss or the pruner's word."""
    if not math.isfinite(val):
        raise optuna.TrialPruned(f"validation loss is {val} {where}")
    trial.report(val, step)
    if trial.should_prune():
        raise optuna.TrialPruned(f"pruned {where} (validation loss {val:.4f})")

BIOGEN_ENDPOINTS = ("HLM_CLint", "RLM_CLint", "MDR1_ER", "solubility", "hPPB", "rPPB")


class SearchSpace(BaseModel):
    """Ranges the tuner samples from (validated once)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trunk_width: tuple[int, int] = (128, 1024)
    trunk_depth: tuple[int, int] = (1, 3)
    dropout: tuple[float, float] = (0.0, 0.5)
    lr: tuple[float, float] = (1e-4, 3e-3)
    weight_decay: tuple[float, float] = (1e-7, 1e-3)
    featurizers: tuple[str, ...] = ("morgan_count+rdkit2d", "morgan_count")
    batch_size: tuple[int, ...] = (64, 128)


def suggest_params(trial: optuna.Trial, space: SearchSpace) -> dict:
    """The search-space function: one ModelConfig-compatible parameter dict per trial."""
    return {
        "trunk_width": trial.suggest_int("trunk_width", *space.trunk_width, log=True),
        "trunk_depth": trial.suggest_int("trunk_depth", *space.trunk_depth),
        "dropout": trial.suggest_float("dropout", *space.dropout),
        "lr": trial.suggest_float("lr", *space.lr, log=True),
        "weight_decay": trial.suggest_float("weight_decay", *space.weight_decay, log=True),
        "featurizer": trial.suggest_categorical("featurizer", list(space.featurizers)),
        "batch_size": trial.suggest_categorical("batch_size", list(space.batch_size)),
    }


@dataclass
class TuningData:
    """Labels split by scaffold, and (lazily, once per featurizer spec) the scaled features."""

    task_data: object
    """admet.tasks.TaskData of all molecules."""
    fold: np.ndarray
    """``train`` / ``valid`` / ``test`` per molecule (scaffold split)."""
    cache_dir: Path | None = None
    _features: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def features(self, spec: str) -> tuple[np.ndarray, np.ndarray]:
        """(X_train, X_valid) scaled by a scaler fitted on the training rows only."""
        if spec not in self._features:
            from admet.features import FeatureSet

            fs = FeatureSet(spec=spec, cache_dir=self.cache_dir)
            X_raw, _ = fs.featurize(self.task_data.smiles)
            train, valid = self.fold == "train", self.fold == "valid"
            fs.fit_matrix(X_raw[train])
            self._features[spec] = (fs.transform_matrix(X_raw[train]), fs.transform_matrix(X_raw[valid]))
            log.info("featurized %d molecules with %s", len(X_raw), spec)
        return self._features[spec]

    def labels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, object]:
        """(Y_train, C_train, Y_valid, C_valid, target scaler) in model space."""
        from admet.train import TargetScaler

        td = self.task_data
        train, valid = self.fold == "train", self.fold == "valid"
        scaler = TargetScaler.fit(td.Y[train], td.is_classification)
        return (scaler.transform(td.Y[train]), td.censor[train], scaler.transform(td.Y[valid]),
                td.censor[valid], scaler)


def load_tuning_data(endpoints: tuple[str, ...] | list[str] = BIOGEN_ENDPOINTS, max_molecules: int | None = None,
                     seed: int = 0, cache_dir: Path | None = None, long_df=None) -> TuningData:
    """Embedded (or given) long table -> TaskData -> scaffold split; at most ``max_molecules`` rows."""
    from admet.tasks import task_data_from_long
    from pipelines.catalog import load_embedded
    from pipelines.split import scaffold_split

    long_df = load_embedded(list(endpoints)) if long_df is None else long_df
    td = task_data_from_long(long_df)
    if max_molecules is not None and len(td) > max_molecules:
        rng = np.random.default_rng(seed)
        td = td.subset(np.sort(rng.choice(len(td), size=max_molecules, replace=False)))
    fold = np.asarray(scaffold_split(td.smiles, fractions=(0.8, 0.2, 0.0), seed=seed))
    if not (fold == "valid").any() or not (fold == "train").any():
        raise InputError("too few molecules for a train/validation scaffold split")
    return TuningData(task_data=td, fold=fold, cache_dir=cache_dir)


class AdmetObjective:
    """Optuna objective: best validation loss of a MultitaskNet trained with the trial's params."""

    def __init__(self, data: TuningData, space: SearchSpace | None = None, max_epochs: int = 20,
                 seed: int = 0) -> None:
        if max_epochs < 1:
            raise InputError("max_epochs must be >= 1")
        self.data = data
        self.space = space or SearchSpace()
        self.max_epochs = max_epochs
        self.seed = seed
        self._labels = data.labels()

    def __call__(self, trial: optuna.Trial) -> float:
        from admet.config import ModelConfig
        from admet.model import MultitaskNet
        from admet.train import evaluate_loss, seed_everything, train_epochs

        params = suggest_params(trial, self.space)
        cfg = ModelConfig.build(**params, epochs=self.max_epochs, seed=self.seed)
        X_tr, X_va = self.data.features(cfg.featurizer)
        Y_tr, C_tr, Y_va, C_va, _ = self._labels
        seed_everything(self.seed)
        model = MultitaskNet(X_tr.shape[1], list(self.data.task_data.tasks), hidden=cfg.hidden,
                             dropout=cfg.dropout)
        best = math.inf
        for epoch in range(self.max_epochs):
            train_epochs(model, X_tr, Y_tr, C_tr, cfg.train_config(seed=self.seed + epoch), epochs=1)
            val = evaluate_loss(model, X_va, Y_va, C_va)
            report_or_prune(trial, val, epoch, f"at epoch {epoch}")
            best = min(best, val)
        trial.set_user_attr("model_config", cfg.to_json_dict())
        return best


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def open_study(study_dir: Path, study_name: str, direction: str = "minimize",
               pruner: optuna.pruners.BasePruner | None = None, seed: int = 0,
               metric_name: str = "validation_loss") -> optuna.Study:
    """The study stored in ``study_dir/optuna.db`` (created, or reloaded with its trials).

    The objective is named ``metric_name`` (optuna-dashboard shows it instead of "Objective 0")."""
    study_dir.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        storage=sqlite_url(study_dir / "optuna.db"), study_name=study_name, direction=direction,
        load_if_exists=True, sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
    )
    name_objectives(study, [metric_name])
    return study


def name_objectives(study: optuna.Study, names: list[str]) -> None:
    """``study.set_metric_names`` (experimental in Optuna 5; its warning is not for our users)."""
    import warnings

    if study.metric_names == names:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(names)


def trial_counts(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    return counts


def write_best_config(study: optuna.Study, path: Path, base: dict | None = None) -> Path:
    """Best trial's parameters as an admet ModelConfig JSON (validated before writing)."""
    from admet.config import ModelConfig

    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise InputError(f"study {study.study_name!r} has no completed trial to take parameters from")
    best = study.best_trial
    values = dict(best.user_attrs.get("model_config") or {})
    if not values:
        values = {**(base or {}), **best.params}
    cfg = ModelConfig.build(**values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg.to_json_dict(), indent=2, sort_keys=True))
    log.info("best trial #%d (value %.4f) written to %s", best.number, best.value, path)
    return path
