"""Autonomous-lab flow: Optuna tunes the acquisition settings on a tuning endpoint, then the
tuned loop and random picking run on a held-out endpoint; the discovery curves are the report.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import artifacts, plots, run_names
from flows.lab import Campaign, LabObjective, LabPool, LabSettings, build_pool, run_campaign
from flows.runners import retry_unless_input_error
from flows.tuning import open_study
from pipelines.errors import InputError

log = logging.getLogger(__name__)


class AcquisitionObjective:
    """Optuna objective: discovery AUC of a campaign with the trial's acquisition settings.

    The pool is built once; every trial reruns the campaign on it. Intermediate values (found
    fraction after each round) are reported, so a pruner can stop campaigns that lag behind.
    """

    def __init__(self, pool: LabPool, base: LabSettings, kinds: tuple[str, ...] = ("ei", "ucb")) -> None:
        self.pool, self.base, self.kinds = pool, base, kinds

    def suggest(self, trial: optuna.Trial) -> LabSettings:
        kind = trial.suggest_categorical("acquisition", list(self.kinds))
        return replace(
            self.base, acquisition=kind,
            batch_size=trial.suggest_categorical("batch_size", [10, 20, 40]),
            n_initial=trial.suggest_categorical("n_initial", [20, 40, 80]),
            kappa=trial.suggest_float("kappa", 0.0, 3.0) if kind == "ucb" else self.base.kappa,
            xi=trial.suggest_float("xi", 0.0, 0.5) if kind == "ei" else self.base.xi,
        )

    def __call__(self, trial: optuna.Trial) -> float:
        settings = self.suggest(trial)

        def report(round_no: int, n_measured: int, n_found: int) -> None:
            trial.report(n_found / max(int(self.pool.top_mask().sum()), 1), n_measured)
            if trial.should_prune():
                raise optuna.TrialPruned(f"lagging after {n_measured} measurements")

        campaign = run_campaign(self.pool, settings, on_round=report)
        return campaign.auc()


def tune_acquisition(pool: LabPool, study_dir: Path, base: LabSettings, n_trials: int,
                     study_name: str = "lab-acquisition") -> optuna.Study:
    study = open_study(study_dir, study_name, direction="maximize", seed=base.seed, metric_name="discovery_auc",
                       pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=base.n_initial))
    study.optimize(AcquisitionObjective(pool, base), n_trials=n_trials)
    return study


def settings_from_study(study: optuna.Study, base: LabSettings) -> LabSettings:
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        log.warning("no completed acquisition trial; using the base settings")
        return base
    p = study.best_params
    return replace(base, **{k: v for k, v in p.items() if k in LabSettings.__dataclass_fields__})


def compare(pool: LabPool, tuned: LabSettings, seeds: tuple[int, ...], fraction: float = 0.5) -> dict:
    """Tuned loop vs random picking over several seeds: curves and measurements-to-find ratio."""
    runs: dict[str, list[Campaign]] = {"model": [], "random": []}
    for seed in seeds:
        runs["model"].append(run_campaign(pool, replace(tuned, seed=seed)))
        runs["random"].append(run_campaign(pool, replace(tuned, acquisition="random", seed=seed)))
    n_top = runs["model"][0].n_top

    def need(c: Campaign) -> float:
        m = c.measurements_to_find(fraction)
        return float(m) if m is not None else float("nan")

    model_need = float(np.nanmean([need(c) for c in runs["model"]])) if any(
        c.measurements_to_find(fraction) for c in runs["model"]) else float("nan")
    random_seen = [need(c) for c in runs["random"]]
    # random picking: the k-th top compound sits at k (N+1)/(K+1) in expectation (exact, without
    # replacement); used when the budget is too small for random picking to get there
    k = int(np.ceil(fraction * n_top))
    random_expected = k * (len(pool.smiles) + 1) / (n_top + 1)
    random_need = float(np.mean(random_seen)) if not np.isnan(random_seen).any() else random_expected
    return {
        "n_pool": len(pool.smiles), "n_top": n_top, "fraction_target": fraction,
        "measurements_model": model_need, "measurements_random": random_need,
        "measurements_random_expected": random_expected,
        "random_source": "observed" if not np.isnan(random_seen).any() else "expected (budget too small)",
        "ratio_random_over_model": random_need / model_need if model_need > 0 else float("nan"),
        "found_at_budget_model": float(np.mean([c.found[-1] for c in runs["model"]])),
        "found_at_budget_random": float(np.mean([c.found[-1] for c in runs["random"]])),
        "auc_model": float(np.mean([c.auc() for c in runs["model"]])),
        "auc_random": float(np.mean([c.auc() for c in runs["random"]])),
        "curves": {k: np.stack([c.found for c in v]).tolist() for k, v in runs.items()},
        "settings": tuned.to_dict(), "seeds": list(seeds),
    }


@task(name="build-lab-pool", cache_policy=NO_CACHE, retries=1, retry_condition_fn=retry_unless_input_error)
def build_pool_task(endpoint: str, sign: float, max_compounds: int | None, seed: int,
                    featurizer: str = "morgan_count+rdkit2d") -> LabPool:
    from pipelines.catalog import load_embedded

    return build_pool(load_embedded([endpoint]), LabObjective((endpoint,), sign=sign), spec=featurizer,
                      max_compounds=max_compounds, seed=seed)


@task(name="tune-acquisition", cache_policy=NO_CACHE)
def tune_task(pool: LabPool, study_dir: Path, base: LabSettings, n_trials: int) -> LabSettings:
    study = tune_acquisition(pool, study_dir, base, n_trials)
    return settings_from_study(study, base)


@task(name="run-campaigns", cache_policy=NO_CACHE)
def compare_task(pool: LabPool, tuned: LabSettings, seeds: tuple[int, ...], fraction: float) -> dict:
    return compare(pool, tuned, seeds, fraction)


def endpoint_sign(endpoint: str) -> float:
    from pipelines.catalog import load_catalog

    cat = load_catalog().set_index("endpoint")
    if endpoint not in cat.index:
        raise InputError(f"unknown endpoint {endpoint!r}; embedded endpoints are {list(cat.index)}")
    better = str(cat.at[endpoint, "better"])
    if better not in ("higher", "lower"):
        raise InputError(f"endpoint {endpoint!r} has no better direction ({better}); pick another")
    return 1.0 if better == "higher" else -1.0


@flow(name="autonomous-lab", description="Optuna-tuned acquisition on one endpoint, then the tuned loop vs random "
      "picking on a held-out endpoint (oracle = real labels).",
      flow_run_name=run_names.namer(lambda p: f"lab tune {p.get('tune_endpoint')} test {p.get('test_endpoint')}"))
def lab_flow(out_dir: str, tune_endpoint: str = "HLM_CLint", test_endpoint: str = "solubility",
             n_trials: int = 8, budget: int = 400, max_compounds: int | None = 1500,
             seeds: tuple[int, ...] = (0, 1, 2), n_trees: int = 60,
             featurizer: str = "morgan_count+rdkit2d", fraction: float = 0.25) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_names.tag_run(run_names.standard_tags("autonomous-lab", tune=tune_endpoint, test=test_endpoint,
                                              model=f"random-forest-{n_trees}", library="embedded"))
    base = LabSettings(budget=budget, n_trees=n_trees)
    tune_pool = build_pool_task(tune_endpoint, endpoint_sign(tune_endpoint), max_compounds, 0, featurizer)
    tuned = tune_task(tune_pool, out, base, n_trials) if n_trials > 0 else base
    test_pool = build_pool_task(test_endpoint, endpoint_sign(test_endpoint), max_compounds, 1, featurizer)
    result = compare_task(test_pool, tuned, tuple(seeds), fraction)
    result.update({"tune_endpoint": tune_endpoint, "test_endpoint": test_endpoint, "n_trials": n_trials})
    write_lab_report(result, out)
    return {k: v for k, v in result.items() if k != "curves"}


def write_lab_report(result: dict, out: Path) -> dict[str, Path]:
    files = {"json": out / "lab_result.json", "plot": out / "lab_curve.png", "config": out / "config.json"}
    files["json"].write_text(json.dumps(result, indent=2, default=float))
    files["config"].write_text(json.dumps({k: result[k] for k in ("settings", "seeds", "tune_endpoint",
                                                                 "test_endpoint", "n_trials") if k in result},
                                          indent=2, default=str))
    plots.discovery_curves({"tuned loop": np.array(result["curves"]["model"]),
                            "random": np.array(result["curves"]["random"])}, result["n_top"], files["plot"])
    table = pd.DataFrame([
        {"strategy": "tuned loop", "measurements_to_find": result["measurements_model"],
         "discovery_auc": result["auc_model"]},
        {"strategy": "random", "measurements_to_find": result["measurements_random"],
         "discovery_auc": result["auc_random"]},
    ])
    artifacts.publish_table("lab-comparison", table, f"Held-out endpoint {result.get('test_endpoint')}: "
                            f"ratio random/model = {result['ratio_random_over_model']:.2f}")
    artifacts.publish_image("lab-discovery-curve", files["plot"], "Top-10% compounds found vs measurements")
    return files
