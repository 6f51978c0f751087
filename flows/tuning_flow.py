"""Tuning flow: an Optuna study (SQLite in the run folder) over ADMET hyperparameters, centralized or
federated; the best parameters become ``best_params.json`` for ``fedadmet admet train --config``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import optuna
import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import artifacts, run_names
from flows.runners import retry_unless_input_error
from flows.tuning import (
    BIOGEN_ENDPOINTS,
    AdmetObjective,
    SearchSpace,
    load_tuning_data,
    open_study,
    trial_counts,
    write_best_config,
)

log = logging.getLogger(__name__)


@task(name="load-tuning-data", retries=1, cache_policy=NO_CACHE, retry_condition_fn=retry_unless_input_error)
def load_data_task(endpoints: tuple[str, ...], max_molecules: int | None, seed: int, cache_dir: Path):
    return load_tuning_data(endpoints, max_molecules=max_molecules, seed=seed, cache_dir=cache_dir)


@task(name="optimize-study", cache_policy=NO_CACHE)
def optimize_task(study: optuna.Study, objective, n_trials: int) -> optuna.Study:
    study.optimize(objective, n_trials=n_trials, gc_after_trial=True)
    return study


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    rows = []
    for t in study.trials:
        rows.append({"trial": t.number, "state": t.state.name.lower(),
                     "value": t.value if t.value is not None else float("nan"),
                     "epochs_or_rounds": len(t.intermediate_values), **t.params})
    return pd.DataFrame(rows)


def _describe(p: dict) -> str:
    where = (f"federated {run_names.partner_set(p.get('partners_dir'), 20)}" if p.get("federated")
             else "+".join(p.get("endpoints") or BIOGEN_ENDPOINTS))
    return f"tune {p.get('study_name') or 'admet'} on {where} x{p.get('n_trials', '?')} trials"


@flow(name="tuning", description="Optuna study over ADMET hyperparameters with pruning; best params as a config.",
      flow_run_name=run_names.namer(_describe))
def tuning_flow(out_dir: str, n_trials: int = 20, max_epochs: int = 15,
                endpoints: tuple[str, ...] = BIOGEN_ENDPOINTS, max_molecules: int | None = None,
                federated: bool = False, partners_dir: str | None = None, rounds: int = 4,
                study_name: str | None = None, seed: int = 0,
                featurizers: tuple[str, ...] = ("morgan_count+rdkit2d", "morgan_count")) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = study_name or ("federated-admet" if federated else "admet")
    run_names.tag_run(run_names.standard_tags(
        "tuning", study=name, partners=run_names.partner_set(partners_dir, 20) if federated else None,
        endpoints=None if federated else "+".join(endpoints), model="multitask-net"))
    space = SearchSpace(featurizers=tuple(featurizers))
    if federated:
        from flows.federated_tuning import FederatedObjective

        if partners_dir is None:
            from flows.federated_flow import partition_task

            partition_task(out / "partners", 20, 0.5, seed)
            partners_dir = str(out / "partners")
        objective = FederatedObjective(Path(partners_dir), space=space, rounds=rounds, seed=seed,
                                       work_dir=out / "partner_cache")
        pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    else:
        data = load_data_task(tuple(endpoints), max_molecules, seed, out / "feature_cache")
        objective = AdmetObjective(data, space=space, max_epochs=max_epochs, seed=seed)
        pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    study = open_study(out, name, direction="minimize", pruner=pruner, seed=seed)
    study = optimize_task(study, objective, n_trials)
    best_path = write_best_config(study, out / "best_params.json")
    frame = trials_frame(study)
    frame.to_csv(out / "trials.csv", index=False)
    summary = {"study": name, "storage": str(out / "optuna.db"), "trials": trial_counts(study),
               "best_value": study.best_value, "best_params": study.best_params, "best_config": str(best_path),
               "federated": federated}
    (out / "config.json").write_text(json.dumps({"n_trials": n_trials, "max_epochs": max_epochs,
                                                 "endpoints": list(endpoints), "max_molecules": max_molecules,
                                                 "federated": federated, "partners_dir": partners_dir,
                                                 "rounds": rounds, "seed": seed, "study": name,
                                                 "search_space": space.model_dump()}, indent=2))
    artifacts.publish_table("tuning-trials", frame, f"Optuna study {name}: all trials")
    artifacts.publish_markdown("tuning-best", "# Best parameters\n\n```json\n"
                               + json.dumps(summary, indent=2, default=str) + "\n```", "Best trial")
    return summary
