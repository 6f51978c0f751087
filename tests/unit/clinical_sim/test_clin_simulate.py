"""Virtual trials: simulated power against the analytic power of the test; safety and dropout behave."""

import numpy as np
import pytest
from scipy import stats

from clinical_sim.admet_link import PKTypical
from clinical_sim.design import load_design
from clinical_sim.simulate import simulate_trials, wilson_interval

PK = PKTypical(cl_l_h=6.0, v_l=60.0, ka_h=1.2, f=0.7, fraction_renal=0.2, tox_risk=0.0)


def _fixed_effect_design(n, delta, sd, n_trials, alpha=0.025):
    # EC50 tiny -> every active patient gets the full effect emax = delta; no dropout, no safety limit
    return load_design().updated(
        trial={"n_per_arm": n, "n_trials": n_trials, "alpha": alpha, "seed": 3},
        efficacy={"emax": delta, "ec50_mg_l": 1e-9, "sd": sd, "e0": 1.0},
        dropout={"rate": 0.0, "after_ae": 0.0}, safety={"max_ae_rate": 1.0},
    )


def analytic_power(n, delta, sd, alpha):
    df = 2 * n - 2
    ncp = delta / (sd * np.sqrt(2.0 / n))
    return float(stats.nct.sf(stats.t.ppf(1 - alpha, df), df, ncp))


@pytest.mark.parametrize("n,delta", [(40, 6.0), (100, 5.0)])
def test_simulated_power_matches_analytic(n, delta):
    sd, alpha, T = 15.0, 0.025, 4000
    res = simulate_trials(_fixed_effect_design(n, delta, sd, T, alpha), PK)
    expected = analytic_power(n, delta, sd, alpha)
    mc_se = np.sqrt(expected * (1 - expected) / T)
    assert 0.2 < expected < 0.95
    assert abs(res.p_success - expected) < 4 * mc_se, (res.p_success, expected)
    # the reported 95% interval is the one of this run's T trials: around p_success, as wide as
    # the normal approximation says for T (an interval over the wrong count fails here)
    assert res.ci_low < res.p_success < res.ci_high
    half_width = 1.959964 * np.sqrt(res.p_success * (1 - res.p_success) / T)
    assert res.ci_high - res.ci_low == pytest.approx(2 * half_width, rel=0.02)


def test_type_one_error_under_the_null():
    res = simulate_trials(_fixed_effect_design(50, 0.0, 10.0, 4000, alpha=0.05), PK)
    assert abs(res.p_success - 0.05) < 4 * np.sqrt(0.05 * 0.95 / 4000)


def test_safety_limit_and_toxicity_raise_failures():
    base = load_design().updated(trial={"n_per_arm": 60, "n_trials": 400})
    safe = simulate_trials(base, PK)
    toxic = simulate_trials(base, PKTypical(**{**PK.as_dict(), "tox_risk": 0.9}))
    assert toxic.summary["mean_ae_rate_active"] > safe.summary["mean_ae_rate_active"]
    strict = simulate_trials(base.updated(safety={"max_ae_rate": 0.01}), PK)
    assert strict.p_success == 0.0 and strict.summary["p_safe"] == 0.0
    assert safe.summary["mean_ae_rate_placebo"] == pytest.approx(1 / (1 + np.exp(2.5)), abs=0.01)


def test_dropout_reduces_completers():
    d = load_design().updated(trial={"n_per_arm": 100, "n_trials": 200}, dropout={"rate": 0.3, "after_ae": 0.0})
    res = simulate_trials(d, PK)
    assert res.trials["completed_placebo"].mean() == pytest.approx(70, abs=1.5)


def test_wilson_interval():
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)


def test_eligibility_filters_population():
    d = load_design().updated(trial={"n_per_arm": 200, "n_trials": 20},
                              eligibility={"crcl_min_ml_min": 90.0, "age_max": 50.0})
    res = simulate_trials(d, PK, keep_patient_trials=20)
    assert res.patients["crcl"].min() >= 90.0 and res.patients["age"].max() <= 50.0
    assert res.summary["screen_fail_rate"] > 0.5
