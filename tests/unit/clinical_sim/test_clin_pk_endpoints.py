"""PK typical values from the ADMET bundle's own PK endpoints (VDss, hepatocyte / microsome clearance,
plasma protein binding) where it predicts them, with the documented fallbacks; known-answer arithmetic."""

import pytest

from clinical_sim.admet_link import GFR_ML_MIN_KG, Q_HEPATIC_ML_MIN_KG, REFERENCE_WEIGHT_KG, pk_from_admet, pk_sources

L_H = REFERENCE_WEIGHT_KG * 60 / 1000  # mL/min/kg -> L/h for 70 kg


def _cl(fu, clint):
    return (Q_HEPATIC_ML_MIN_KG * fu * clint / (Q_HEPATIC_ML_MIN_KG + fu * clint) + fu * GFR_ML_MIN_KG) * L_H


def test_vdss_endpoint_sets_the_volume():
    pk = pk_from_admet({"VDss_Lombardo": 2.0, "hPPB": 1.0})
    assert pk.v_l == pytest.approx(2.0 * 70)
    assert pk_sources({"VDss_Lombardo": 2.0})["v"] == "VDss_Lombardo"
    # without it: Oie-Tozer from fu and logP (differs with logP)
    assert pk_from_admet({"hPPB": 1.0}, logp=0.0).v_l != pk_from_admet({"hPPB": 1.0}, logp=4.0).v_l
    assert pk_sources({"hPPB": 1.0})["v"] == "Oie-Tozer"


def test_clearance_from_hepatocytes_first_then_microsomes_then_hlm():
    fu = 10 ** 1.0 / 100  # hPPB = 1.0 -> 10 % unbound
    hep = {"Clearance_Hepatocyte_AZ": 10.0, "Clearance_Microsome_AZ": 50.0, "HLM_CLint": 2.0, "hPPB": 1.0}
    # 10 uL/min/1e6 cells x 120e6 cells/g x 25.7 g/kg / 1000 = 30.84 mL/min/kg
    assert pk_from_admet(hep).cl_l_h == pytest.approx(_cl(fu, 30.84))
    assert pk_sources(hep)["clint"] == "Clearance_Hepatocyte_AZ"
    mic = {k: v for k, v in hep.items() if k != "Clearance_Hepatocyte_AZ"}
    # 50 uL/min/mg x 40 mg/g x 25.7 g/kg / 1000 = 51.4 mL/min/kg
    assert pk_from_admet(mic).cl_l_h == pytest.approx(_cl(fu, 51.4))
    hlm = {"HLM_CLint": 2.0, "hPPB": 1.0}
    assert pk_from_admet(hlm).cl_l_h == pytest.approx(_cl(fu, 100.0))
    assert pk_sources(hlm)["clint"] == "HLM_CLint" and pk_sources({})["clint"] == "default"


def test_fraction_unbound_from_hppb_then_ppbr():
    assert pk_from_admet({"hPPB": 0.5}).fu == pytest.approx(10 ** 0.5 / 100)
    assert pk_from_admet({"PPBR_AZ": 95.0}).fu == pytest.approx(0.05)
    assert pk_sources({"PPBR_AZ": 95.0})["fu"] == "PPBR_AZ"
    assert pk_from_admet({"PPBR_AZ": 100.0}).fu == pytest.approx(1e-3)  # clipped, never 0
    assert pk_from_admet({"hPPB": float("nan"), "PPBR_AZ": 80.0}).fu == pytest.approx(0.2)


def test_bioavailability_probability_and_hepatic_escape():
    high, low = pk_from_admet({"Bioavailability_Ma": 0.9}), pk_from_admet({"Bioavailability_Ma": 0.1})
    assert high.f > low.f
    assert pk_sources({"Bioavailability_Ma": 0.9})["f"] == "Bioavailability_Ma"
    # a high-clearance compound loses more to the liver on first pass
    fast = pk_from_admet({"Bioavailability_Ma": 0.9, "Clearance_Hepatocyte_AZ": 200.0, "PPBR_AZ": 0.0})
    assert fast.f < high.f
