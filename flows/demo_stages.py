"""The last two stages of the main job, as Prefect subflows of ``fedadmet-demo``.

* ``experiment-loop``: the autonomous lab. Optuna tunes the acquisition settings on a pool of
  embedded compounds whose real labels act as the oracle (retrospective campaigns, study in
  ``lab/optuna.db``); the tuned loop then proposes the next batch of compounds to measure from
  the screened library (candidates: the best-ranked screened compounds the loop has not measured).
* ``clinical-module``: for the top screened candidates, PK typical values derived from the
  model's predictions (``clinical_sim.admet_link``), Monte Carlo virtual trials (probability of
  success with a 95% interval), and a suggested design for the most promising one from the
  multi-objective design study (``clinical/design/study.db``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import flow

from flows import artifacts, run_names
from pipelines.errors import InputError

log = logging.getLogger(__name__)


@flow(name="experiment-loop", description="Optuna-tuned acquisition (oracle: embedded labels), then the next batch "
      "to measure from the screened library.",
      flow_run_name=run_names.namer(lambda p: f"lab {p.get('endpoint')}: next batch from "
                                              f"{run_names.partner_set(Path(str(p.get('ranked_csv'))).parent)}"))
def experiment_loop_flow(out_dir: str, ranked_csv: str, endpoint: str = "solubility", n_trials: int = 4,
                         pool_size: int = 300, budget: int = 100, n_candidates: int = 500, n_trees: int = 30,
                         featurizer: str = "morgan_count", seed: int = 0) -> dict:
    from flows.lab import LabObjective, LabSettings, build_pool, propose_batch
    from flows.lab_flow import endpoint_sign, settings_from_study, tune_acquisition
    from flows.tuning import trial_counts
    from pipelines.catalog import load_embedded
    from pipelines.featurize import featurize_smiles

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_names.tag_run(run_names.standard_tags("experiment-loop", endpoint=endpoint,
                                              library=run_names.partner_set(Path(ranked_csv).parent),
                                              model=f"random-forest-{n_trees}"))
    objective = LabObjective((endpoint,), sign=endpoint_sign(endpoint))
    pool = build_pool(load_embedded([endpoint]), objective, spec=featurizer, max_compounds=pool_size, seed=seed)
    base = LabSettings(budget=min(budget, len(pool.smiles)), n_initial=20, batch_size=20, n_trees=n_trees, seed=seed)
    study = tune_acquisition(pool, out, base, n_trials)
    tuned = settings_from_study(study, base)
    ranked = pd.read_csv(ranked_csv)
    ranked = ranked[~ranked["smiles"].isin(set(pool.smiles))].head(n_candidates).reset_index(drop=True)
    if ranked.empty:
        raise InputError(f"{ranked_csv} has no unmeasured ranked compounds to propose from")
    fm = featurize_smiles(ranked["smiles"].astype(str).tolist(), spec=featurizer)
    ok = np.asarray(fm.valid, dtype=bool)
    X = np.nan_to_num(np.asarray(fm.X, dtype=np.float32)[ok])
    candidates = ranked[ok].reset_index(drop=True)
    proposal = propose_batch(pool, X, tuned)
    keep = [c for c in ("smiles", "score", endpoint) if c in candidates.columns]
    table = pd.concat([candidates.loc[proposal["candidate"], keep].reset_index(drop=True),
                       proposal.drop(columns="candidate").reset_index(drop=True)], axis=1)
    table = table.rename(columns={"score": "screening_score", endpoint: f"{endpoint}_screening_model"})
    batch = table[table["proposed"]].drop(columns="proposed")
    files = {"proposed_csv": out / "proposed_batch.csv", "candidates_csv": out / "candidates_ranked.csv",
             "trials_csv": out / "lab_trials.csv", "settings_json": out / "tuned_settings.json"}
    batch.to_csv(files["proposed_csv"], index=False)
    table.to_csv(files["candidates_csv"], index=False)
    study.trials_dataframe().to_csv(files["trials_csv"], index=False)
    files["settings_json"].write_text(json.dumps(tuned.to_dict(), indent=2))
    counts = trial_counts(study)
    summary = {"endpoint": endpoint, "pool_measured": len(pool.smiles), "candidates": len(candidates),
               "proposed": len(batch), "acquisition": tuned.acquisition, "batch_size": tuned.batch_size,
               "study_trials": counts, "best_discovery_auc": study.best_value if counts.get("complete") else None,
               "storage": str(out / "optuna.db")}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    artifacts.publish_table("lab-proposed-batch", batch,
                            f"Next {len(batch)} compounds to measure ({tuned.acquisition}, objective {endpoint})")
    artifacts.publish_markdown("lab-summary", "\n".join([
        "# Experiment loop", "",
        f"- acquisition tuned by Optuna on {len(pool.smiles)} measured compounds ({endpoint}; {counts}); "
        f"best discovery AUC {artifacts.significant(study.best_value) if counts.get('complete') else 'n/a'}",
        f"- tuned settings: {json.dumps(tuned.to_dict())}",
        f"- proposed {len(batch)} of {len(candidates)} screened candidates; study: `{out / 'optuna.db'}` "
        f"(`fedadmet dashboard optuna {out}`)", "", artifacts.frame_to_markdown(batch.head(20))]), "Experiment loop")
    return {**summary, **{k: str(v) for k, v in files.items()}}


@flow(name="clinical-module", description="Virtual trials and a suggested design for the top screened candidates.",
      flow_run_name=run_names.namer(lambda p: f"clinical top {p.get('top_k')} from "
                                              f"{run_names.partner_set(Path(str(p.get('ranked_csv'))).parent)}"))
def clinical_flow(out_dir: str, ranked_csv: str, bundle_dir: str, top_k: int = 3, virtual_trials: int = 200,
                  designs: int = 12, trials_per_design: int = 100, seed: int = 0) -> dict:
    from clinical_sim.admet_link import compound_pk, load_admet
    from clinical_sim.design import load_design
    from clinical_sim.optimize import optimize_design
    from clinical_sim.simulate import simulate_trials

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_names.tag_run(run_names.standard_tags("clinical-module", model=run_names.partner_set(bundle_dir),
                                              candidates=top_k))
    ranked = pd.read_csv(ranked_csv).head(top_k)
    if ranked.empty:
        raise InputError(f"{ranked_csv} has no ranked compounds for the clinical module")
    design = load_design(None).updated(trial={"n_trials": virtual_trials, "seed": seed})
    predictor = load_admet(bundle_dir)
    rows, typicals = [], {}
    for rank, smiles in enumerate(ranked["smiles"].astype(str), start=1):
        predicted, _ = compound_pk(predictor, smiles)
        typical = design.pk.typical(predicted)
        sim = simulate_trials(design, typical).summary
        typicals[smiles] = typical
        rows.append({"rank": rank, "smiles": smiles, "p_success": sim["p_success"], "ci95_low": sim["ci95"][0],
                     "ci95_high": sim["ci95"][1], "p_safe": sim["p_safe"], "power_efficacy": sim["power_efficacy"],
                     "ae_rate_active": sim["mean_ae_rate_active"], "cl_l_h": typical.cl_l_h, "v_l": typical.v_l,
                     "f": typical.f, "tox_risk": typical.tox_risk})
    trials = pd.DataFrame(rows)
    trials.to_csv(out / "virtual_trials.csv", index=False)
    best = trials.sort_values(["p_success", "rank"], ascending=[False, True]).iloc[0]
    suggestion: dict = {"smiles": best["smiles"]}
    try:
        opt = optimize_design(design.updated(optimize={"trials_per_design": trials_per_design}),
                              typicals[best["smiles"]], designs, out / "design", seed=seed)
        suggestion.update(opt.chosen)
        opt.chosen_design.to_toml(out / "suggested_design.toml")
        opt.pareto.to_csv(out / "design" / "pareto.csv", index=False)
    except InputError as exc:  # no feasible design within the search space: say so, keep the trials
        log.warning("clinical module: no design suggested for %s: %s", best["smiles"], exc)
        suggestion["note"] = str(exc)
    (out / "suggested_design.json").write_text(json.dumps(suggestion, indent=2, default=float))
    artifacts.publish_table("clinical-virtual-trials", trials,
                            f"Virtual trials ({virtual_trials} per compound, {design.trial.n_per_arm}/arm, "
                            f"{design.dosing.dose_mg:g} mg every {design.dosing.interval_h:g} h)")
    artifacts.publish_markdown("clinical-suggested-design", "# Suggested trial design\n\n```json\n"
                               + json.dumps(suggestion, indent=2, default=float) + "\n```\n\n"
                               f"design study: `{out / 'design' / 'study.db'}`", "Suggested design (top candidate)")
    return {"virtual_trials": str(out / "virtual_trials.csv"), "suggested_design": suggestion,
            "best_p_success": float(best["p_success"]), "study": str(out / "design" / "study.db")}
