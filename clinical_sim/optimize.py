"""Multi-objective trial-design optimisation with Optuna (SQLite storage in the output folder).

Objectives: maximise simulated P(success), minimise total sample size (2 x n per arm). Search space: dose,
dosing interval, n per arm, and two inclusion thresholds (minimum creatinine clearance, maximum age).
Constraint (Optuna 5 ``Trial.set_constraint``, the successor of ``constraints_func``): mean active-arm
adverse-event rate <= ``optimize.max_ae_rate``.
Every design is simulated with the same random seed (common random numbers), so designs are compared on
the same virtual patients and the comparison is not blurred by Monte Carlo noise. Multi-objective studies
cannot prune in Optuna; each evaluation is a full (small) Monte Carlo run instead.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from clinical_sim.admet_link import PKTypical
from clinical_sim.design import OptimizeSection, TrialDesign
from clinical_sim.simulate import simulate_trials

log = logging.getLogger(__name__)

STUDY_NAME = "trial_design"
STORAGE_FILE = "study.db"
METRIC_NAMES = ("p_success", "total_patients")


def suggest_design(trial: optuna.Trial, space: OptimizeSection) -> dict:
    """The search space: one function, so every study samples the same parameters."""
    if space.dose_grid_mg:
        dose = float(trial.suggest_categorical("dose_mg", sorted(float(d) for d in space.dose_grid_mg)))
    else:
        dose = trial.suggest_float("dose_mg", space.dose_min_mg, space.dose_max_mg, log=True)
    interval = float(trial.suggest_categorical("interval_h", sorted(float(i) for i in space.intervals_h)))
    n = trial.suggest_int("n_per_arm", space.n_min, space.n_max, step=1 if space.n_max - space.n_min < 10 else 10)
    crcl_lo, crcl_hi = space.crcl_min_range
    crcl = trial.suggest_float("crcl_min_ml_min", crcl_lo, crcl_hi) if crcl_hi > crcl_lo else crcl_lo
    age_lo, age_hi = space.age_max_range
    age = trial.suggest_float("age_max", age_lo, age_hi) if age_hi > age_lo else age_lo
    return {"dose_mg": dose, "interval_h": interval, "n_per_arm": n, "crcl_min_ml_min": crcl, "age_max": age}


def apply_params(base: TrialDesign, params: dict, n_trials: int | None = None) -> TrialDesign:
    """The base design with a sampled parameter set applied."""
    return base.updated(
        dosing={"dose_mg": params["dose_mg"], "interval_h": params["interval_h"]},
        trial={"n_per_arm": int(params["n_per_arm"]), "n_trials": n_trials or base.trial.n_trials},
        eligibility={"crcl_min_ml_min": params["crcl_min_ml_min"], "age_max": params["age_max"]},
    )


class DesignObjective:
    """Holds the base design and the compound's PK once; each call simulates one candidate design."""

    def __init__(self, base: TrialDesign, typical: PKTypical) -> None:
        self.base = base
        self.typical = typical
        self.space = base.optimize

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        params = suggest_design(trial, self.space)
        design = apply_params(self.base, params, n_trials=self.space.trials_per_design)
        result = simulate_trials(design, self.typical, keep_patient_trials=0)
        s = result.summary
        for key in ("mean_ae_rate_active", "power_efficacy", "p_safe", "median_cavg_mg_l", "screen_fail_rate"):
            trial.set_user_attr(key, float(s[key]))
        trial.set_user_attr("ci_low", result.ci_low)
        trial.set_user_attr("ci_high", result.ci_high)
        trial.set_user_attr("cost", 2 * params["n_per_arm"] * self.base.trial.cost_per_patient)
        trial.set_user_attr("params_resolved", params)
        trial.set_constraint("ae_rate_excess", float(s["mean_ae_rate_active"]) - self.space.max_ae_rate)
        return result.p_success, float(2 * params["n_per_arm"])


@dataclass(slots=True)
class OptimizationResult:
    trials: pd.DataFrame
    """Every finished design with objectives, constraint and attributes."""
    pareto: pd.DataFrame
    """The feasible Pareto front (max P(success), min total n)."""
    chosen: dict
    """The chosen design's parameters and metrics."""
    chosen_design: TrialDesign
    storage: str


def _trial_rows(study: optuna.Study, max_ae_rate: float) -> pd.DataFrame:
    rows = []
    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        p = t.user_attrs.get("params_resolved", t.params)
        rows.append({
            "number": t.number, "p_success": t.values[0], "total_n": t.values[1], **p,
            "ci_low": t.user_attrs.get("ci_low"), "ci_high": t.user_attrs.get("ci_high"),
            "ae_rate": t.user_attrs.get("mean_ae_rate_active"), "power": t.user_attrs.get("power_efficacy"),
            "cost": t.user_attrs.get("cost"),
            "feasible": t.user_attrs.get("mean_ae_rate_active", 1.0) <= max_ae_rate,
        })
    return pd.DataFrame(rows)


def pareto_front(table: pd.DataFrame) -> pd.DataFrame:
    """Feasible rows not dominated on (higher p_success, lower total_n)."""
    feasible = table[table["feasible"]].sort_values(["total_n", "p_success"], ascending=[True, False])
    keep, best = [], -np.inf
    for idx, row in feasible.iterrows():
        if row["p_success"] > best:
            keep.append(idx)
            best = row["p_success"]
    return feasible.loc[keep].reset_index(drop=True)


def choose(pareto: pd.DataFrame, target: float) -> pd.Series:
    """Smallest design reaching ``target`` P(success); else the design with the highest P(success)."""
    reach = pareto[pareto["p_success"] >= target]
    if len(reach):
        return reach.sort_values(["total_n", "p_success"], ascending=[True, False]).iloc[0]
    return pareto.sort_values(["p_success", "total_n"], ascending=[False, True]).iloc[0]


def optimize_design(base: TrialDesign, typical: PKTypical, n_trials: int, out_dir: str | Path,
                    seed: int = 0, callbacks: list | None = None) -> OptimizationResult:
    """Run (or resume) the study in ``out_dir/study.db`` for ``n_trials`` more designs."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(out / STORAGE_FILE).resolve()}"
    space = base.optimize
    sampler = optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=min(10, n_trials), multivariate=True,
    )
    study = optuna.create_study(
        study_name=STUDY_NAME, storage=storage, load_if_exists=True, directions=["maximize", "minimize"],
        sampler=sampler,
    )
    if study.metric_names is None:  # optuna-dashboard shows these instead of "Objective 0/1"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(METRIC_NAMES))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(DesignObjective(base, typical), n_trials=n_trials, callbacks=callbacks or [],
                   catch=(ValueError,))
    table = _trial_rows(study, space.max_ae_rate)
    if table.empty or not table["feasible"].any():
        from pipelines.errors import InputError
        raise InputError("no feasible design found (every candidate broke the AE-rate constraint); "
                         "widen the search space or raise optimize.max_ae_rate")
    front = pareto_front(table)
    best = choose(front, space.target_p_success)
    chosen_params = {k: best[k] for k in ("dose_mg", "interval_h", "n_per_arm", "crcl_min_ml_min", "age_max")}
    chosen_params["n_per_arm"] = int(chosen_params["n_per_arm"])
    chosen = {**{k: (float(v) if k != "n_per_arm" else int(v)) for k, v in chosen_params.items()},
              "p_success": float(best["p_success"]), "total_n": int(best["total_n"]),
              "ae_rate": float(best["ae_rate"]), "trial_number": int(best["number"])}
    chosen_design = apply_params(base, chosen_params)
    log.info("study %s: %d designs, %d on the Pareto front; chosen %s", STUDY_NAME, len(table), len(front), chosen)
    return OptimizationResult(table, front, chosen, chosen_design, storage)
