"""The demo's last two stages on real small inputs: the experiment loop (real Optuna study on SQLite,
real random-forest surrogate on embedded labels) and the clinical module (real model bundle ->
PK -> Monte Carlo virtual trials -> design study)."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
import pytest

from flows.demo_stages import clinical_flow, experiment_loop_flow
from pipelines.catalog import load_embedded


@pytest.fixture
def ranked_csv(tmp_path, tiny_library):
    """A screening-style ranked table: the tiny library's good SMILES, best score first."""
    smiles = [s for s in pd.read_csv(tiny_library)["smiles"] if s not in ("C1CC(", "[Fe]")]
    frame = pd.DataFrame({"smiles": smiles, "score": np.linspace(0.9, 0.3, len(smiles))})
    path = tmp_path / "ranked.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_experiment_loop_proposes_a_batch_from_the_screened_candidates(prefect_harness, ranked_csv, tmp_path):
    from flows.lab import LabObjective, build_pool

    # the candidates: 4 compounds the loop has measured (they lead the ranking) + the 12 library ones
    pool = build_pool(load_embedded(["solubility"]), LabObjective(("solubility",)), spec="morgan_count",
                      max_compounds=60, seed=0)
    library = pd.read_csv(ranked_csv)
    library = library[~library["smiles"].isin(pool.smiles)]
    ranked = pd.concat([pd.DataFrame({"smiles": pool.smiles[:4], "score": 1.0}), library], ignore_index=True)
    ranked.to_csv(ranked_csv, index=False)
    out = tmp_path / "lab"
    summary = experiment_loop_flow(out_dir=str(out), ranked_csv=str(ranked_csv), pool_size=60, n_trials=2,
                                   n_candidates=8)
    batch = pd.read_csv(out / "proposed_batch.csv")
    assert summary["pool_measured"] == 60 and summary["candidates"] == 8
    assert summary["proposed"] == len(batch) == min(summary["batch_size"], 8)
    assert batch["smiles"].is_unique and set(batch["smiles"]) <= set(library["smiles"].head(8))
    assert not set(batch["smiles"]) & set(pool.smiles)  # nothing the loop measured already
    assert batch["acquisition"].is_monotonic_decreasing
    study = optuna.load_study(study_name="lab-acquisition", storage=f"sqlite:///{out / 'optuna.db'}")
    assert len(study.trials) == 2 and study.metric_names == ["discovery_auc"]


@pytest.mark.slow
def test_clinical_module_simulates_the_top_candidates_and_suggests_a_design(prefect_harness, ranked_csv,
                                                                            tiny_bundle, tmp_path):
    out = tmp_path / "clinical"
    summary = clinical_flow(out_dir=str(out), ranked_csv=str(ranked_csv), bundle_dir=str(tiny_bundle), top_k=2,
                            virtual_trials=50, designs=3, trials_per_design=20)
    trials = pd.read_csv(out / "virtual_trials.csv")
    assert trials["smiles"].tolist() == pd.read_csv(ranked_csv)["smiles"].head(2).tolist()
    assert trials["p_success"].between(0, 1).all()
    assert ((trials["ci95_low"] <= trials["p_success"]) & (trials["p_success"] <= trials["ci95_high"])).all()
    assert summary["best_p_success"] == pytest.approx(trials["p_success"].max())
    suggestion = json.loads((out / "suggested_design.json").read_text())
    assert suggestion["smiles"] == trials.sort_values("p_success", ascending=False, kind="stable")["smiles"].iloc[0]
    if "note" not in suggestion:  # a feasible design was found
        assert {"dose_mg", "interval_h", "n_per_arm", "p_success"} <= set(suggestion)
        study = optuna.load_study(study_name="trial_design", storage=f"sqlite:///{out / 'design' / 'study.db'}")
        assert study.metric_names == ["p_success", "total_patients"]
