"""Population PK: known answers with between-patient variability switched off."""

import numpy as np
import pytest

from clinical_sim import pk
from clinical_sim.admet_link import PKTypical, pk_from_admet
from clinical_sim.design import load_design
from clinical_sim.simulate import simulate_trials

TYPICAL = PKTypical(cl_l_h=6.0, v_l=60.0, ka_h=1.2, f=0.7, fraction_renal=0.3, tox_risk=0.1)


def _trapz(y, x):
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2)


def test_single_dose_auc_and_cmax_match_analytic():
    dose = 200.0
    t = np.linspace(0, 400, 400_001)
    c = pk.concentration_single(t, dose, TYPICAL.ka_h, TYPICAL.cl_l_h, TYPICAL.v_l, TYPICAL.f)
    assert _trapz(c, t) == pytest.approx(TYPICAL.f * dose / TYPICAL.cl_l_h, rel=1e-4)
    assert pk.auc(dose, TYPICAL.cl_l_h, TYPICAL.f) == pytest.approx(TYPICAL.f * dose / TYPICAL.cl_l_h)
    i = int(np.argmax(c))
    assert t[i] == pytest.approx(float(pk.tmax_single(TYPICAL.ka_h, TYPICAL.cl_l_h, TYPICAL.v_l)), abs=2e-3)
    assert c[i] == pytest.approx(float(pk.cmax_single(dose, TYPICAL.ka_h, TYPICAL.cl_l_h, TYPICAL.v_l, TYPICAL.f)),
                                 rel=1e-6)


def test_steady_state_is_the_sum_of_doses():
    dose, tau = 100.0, 12.0
    args = (TYPICAL.ka_h, TYPICAL.cl_l_h, TYPICAL.v_l, TYPICAL.f)
    t_in = np.linspace(0, tau, 1201)
    summed = sum(pk.concentration_single(t_in + k * tau, dose, *args) for k in range(400))
    ss = pk.concentration_ss(t_in, dose, tau, *args)
    np.testing.assert_allclose(ss, summed, rtol=1e-6)
    assert _trapz(ss, t_in) == pytest.approx(TYPICAL.f * dose / TYPICAL.cl_l_h, rel=1e-4)
    assert ss.max() == pytest.approx(float(pk.cmax_ss(dose, tau, *args)), rel=1e-5)


def test_ka_equal_ke_is_finite():
    c = pk.concentration_single(np.array([1.0, 5.0]), 100.0, 0.1, 6.0, 60.0, 1.0)
    assert np.all(np.isfinite(c)) and np.all(c > 0)


def test_simulated_auc_without_variability_equals_f_dose_over_cl():
    design = load_design().updated(
        pk={"omega_cl": 0.0, "omega_v": 0.0, "omega_ka": 0.0, "cl_weight_exponent": 0.0, "v_weight_exponent": 0.0},
        population={"scr_cv": 0.0, "hepatic_cv": 0.0},
        trial={"n_per_arm": 20, "n_trials": 5},
    )
    typical = PKTypical(cl_l_h=6.0, v_l=60.0, ka_h=1.2, f=0.7, fraction_renal=0.0)
    res = simulate_trials(design, typical)
    dose, tau = design.dosing.dose_mg, design.dosing.interval_h
    np.testing.assert_allclose(res.patients["auc_ss"], 0.7 * dose / 6.0, rtol=1e-12)
    np.testing.assert_allclose(res.patients["cmax_ss"], pk.cmax_ss(dose, tau, 1.2, 6.0, 60.0, 0.7), rtol=1e-12)


def test_variability_and_covariates_change_clearance():
    rng = np.random.default_rng(0)
    w = np.full(20000, 70.0)
    ind = pk.individual_pk(TYPICAL, w, np.full(20000, 100.0), np.ones(20000), pk.IIV(omega_cl=0.3), rng)
    assert np.std(np.log(ind.cl)) == pytest.approx(0.3, rel=0.05)
    assert np.exp(np.mean(np.log(ind.cl))) == pytest.approx(TYPICAL.cl_l_h, rel=0.02)
    renal = pk.individual_pk(TYPICAL, w[:1], np.array([50.0]), np.ones(1), pk.IIV(0, 0, 0), rng)
    assert renal.cl[0] == pytest.approx(TYPICAL.cl_l_h * (0.7 + 0.3 * 0.5))
    heavy = pk.individual_pk(TYPICAL, np.array([140.0]), np.array([100.0]), np.ones(1), pk.IIV(0, 0, 0), rng)
    assert heavy.cl[0] == pytest.approx(TYPICAL.cl_l_h * 2 ** 0.75)


def test_pk_from_admet_well_stirred_liver():
    # fu = 10% (hPPB log10 % unbound = 1), CLint = 100 mL/min/kg, p(bioavailable) = 1
    got = pk_from_admet({"hPPB": 1.0, "HLM_CLint": 2.0, "bioavailability": 1.0, "toxcast_clean": 0.8})
    clh = 20.7 * 0.1 * 100 / (20.7 + 0.1 * 100)
    cl = clh + 0.1 * 1.8
    assert got.cl_l_h == pytest.approx(cl * 70 * 60 / 1000)
    assert got.f == pytest.approx(1 - clh / 20.7)
    assert got.fraction_renal == pytest.approx(0.18 / cl)
    assert got.tox_risk == pytest.approx(0.2)
    low = pk_from_admet({"hPPB": 1.0, "HLM_CLint": 0.0, "bioavailability": 1.0})
    assert low.cl_l_h < got.cl_l_h and low.f > got.f  # less first-pass loss
