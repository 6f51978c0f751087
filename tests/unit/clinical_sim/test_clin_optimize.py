"""Design optimisation: on a case with a known best dose, the Optuna study finds it."""

import optuna
import pytest

from clinical_sim.admet_link import PKTypical
from clinical_sim.design import load_design
from clinical_sim.optimize import STORAGE_FILE, STUDY_NAME, apply_params, optimize_design, pareto_front
from clinical_sim.simulate import simulate_trials

PK = PKTypical(cl_l_h=10.0, v_l=80.0, ka_h=1.0, f=0.6, fraction_renal=0.2, tox_risk=0.2)
GRID = [10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0]


def _case():
    # n, interval and inclusion fixed: only the dose moves. Low doses lack efficacy, high doses break the
    # safety limit, so P(success) peaks at one interior dose.
    return load_design().updated(
        optimize={"dose_grid_mg": GRID, "intervals_h": [24.0], "n_min": 100, "n_max": 100,
                  "crcl_min_range": (30.0, 30.0), "age_max_range": (80.0, 80.0), "trials_per_design": 200,
                  "max_ae_rate": 0.5},
        trial={"seed": 11},
    )


def test_optimizer_finds_the_known_best_dose(tmp_path):
    base = _case()
    truth = {}
    for dose in GRID:  # the answer, by direct simulation with the same random numbers
        params = {"dose_mg": dose, "interval_h": 24.0, "n_per_arm": 100, "crcl_min_ml_min": 30.0, "age_max": 80.0}
        design = apply_params(base, params, n_trials=200)
        truth[dose] = simulate_trials(design, PK, keep_patient_trials=0).p_success
    best = max(truth, key=truth.get)
    assert GRID[0] < best < GRID[-1]
    assert truth[best] - sorted(truth.values())[-2] > 0.05  # a clear winner

    result = optimize_design(base, PK, n_trials=14, out_dir=tmp_path, seed=0)
    assert result.chosen["dose_mg"] == best
    assert result.chosen["p_success"] == pytest.approx(truth[best])
    assert (tmp_path / STORAGE_FILE).exists()
    # the study survives in SQLite and resumes
    again = optimize_design(base, PK, n_trials=2, out_dir=tmp_path, seed=1)
    assert len(again.trials) == 16
    study = optuna.load_study(study_name=STUDY_NAME, storage=result.storage)
    assert len(study.trials) == 16


def test_ae_constraint_marks_unsafe_designs_infeasible(tmp_path):
    base = _case().updated(optimize={"max_ae_rate": 0.2, "dose_grid_mg": [100.0, 3000.0]})
    result = optimize_design(base, PK, n_trials=6, out_dir=tmp_path, seed=0)
    table = result.trials
    assert not table.loc[table["dose_mg"] == 3000.0, "feasible"].any()
    assert (pareto_front(table)["dose_mg"] == 100.0).all()
