"""The link to the ADMET half: predicted endpoints per drug, and PK typical values derived from them.

The project's ADMET bundle (``admet.bundle.load_bundle(dir).predict_smiles(smiles)``) predicts, per
endpoint ``E``, the columns ``E, E_std, E_lower, E_upper, E_in_domain, E_pct_approved``, already
back-transformed to the catalog unit. The PK typical values come from the bundle's endpoints where
the bundle predicts them, each with a stated fallback (``pk_sources`` says which one was used; every
assumption is in docs/CLINICAL.md):

* fraction unbound: ``fu = 10**hPPB / 100`` (hPPB: human, log10 % unbound); else
  ``fu = (100 - PPBR_AZ) / 100`` (PPBR_AZ: % bound, species not recorded); else the default; clipped
  to [0.001, 1].
* intrinsic clearance ``CLint`` (mL/min/kg), first available of: human hepatocytes
  ``Clearance_Hepatocyte_AZ`` (uL/min/10^6 cells) x 120e6 cells/g x 25.7 g liver/kg / 1000; human
  liver microsomes ``Clearance_Microsome_AZ`` (uL/min/mg) x 40 mg protein/g x 25.7 g/kg / 1000;
  ``10**HLM_CLint`` (Biogen, already per kg body weight); else the default. Hepatocytes come first
  because they carry phase II metabolism and uptake that microsomes miss; no incubation binding
  correction is made (not predicted).
* hepatic clearance, well-stirred liver: ``CLh = Qh*fu*CLint / (Qh + fu*CLint)``, ``Qh = 20.7`` mL/min/kg;
  renal clearance by filtration only: ``CLr = fu * GFR``, ``GFR = 1.8`` mL/min/kg.
* bioavailability ``F = Fabs * Fh`` with hepatic escape ``Fh = 1 - CLh/Qh`` and absorbed fraction
  ``Fabs = 0.2 + 0.8 * p(Bioavailability_Ma: F >= 20%)``.
* volume: ``VDss_Lombardo`` (L/kg, human VDss) x 70 kg when predicted; else Oie-Tozer
  ``V = Vp(1+R) + fu*Vp*(Ve/Vp - R) + Vr*fu/fu_t`` with ``Vp=0.0436, Ve=0.151, Vr=0.380`` L/kg,
  ``R=1.4``, tissue binding scaled by lipophilicity ``fu_t = fu * 10**(-0.25*clip(logP,-2,6))``.
* absorption rate ``ka = 1.0 /h`` (0.5 /h when predicted solubility < 10 ug/mL).
* toxicity risk ``1 - p(toxcast_clean)``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from pipelines.errors import InputError

log = logging.getLogger(__name__)

Q_HEPATIC_ML_MIN_KG = 20.7
GFR_ML_MIN_KG = 1.8
REFERENCE_WEIGHT_KG = 70.0
_ML_MIN_KG_TO_L_H = REFERENCE_WEIGHT_KG * 60.0 / 1000.0
_VP, _VE, _VR, _R = 0.0436, 0.151, 0.380, 1.4

#: Endpoint names the PK derivation reads (each may be absent: a documented fallback is used).
PK_ENDPOINTS = ("Clearance_Hepatocyte_AZ", "Clearance_Microsome_AZ", "HLM_CLint", "hPPB", "PPBR_AZ",
                "VDss_Lombardo", "bioavailability", "solubility", "toxcast_clean")
#: Defaults when an endpoint is not predicted.
DEFAULTS = {"HLM_CLint": 1.0, "hPPB": 1.0, "bioavailability": 0.5, "solubility": 1.5, "toxcast_clean": 0.5}
#: In vitro -> in vivo scaling (human): liver 25.7 g/kg body weight, 40 mg microsomal protein per g
#: liver, 120e6 hepatocytes per g liver (Barter et al. 2007 central values).
LIVER_G_PER_KG = 25.7
MICROSOMAL_MG_PER_G = 40.0
HEPATOCYTES_1E6_PER_G = 120.0


class AdmetPredictor(Protocol):
    """Anything with the bundle's ``predict_smiles`` (the admet ModelBundle, or a test double trained for real)."""

    def predict_smiles(self, smiles: list[str]) -> pd.DataFrame: ...


@dataclass(slots=True)
class PKTypical:
    """Typical (70 kg, normal renal function) PK values of one compound."""

    cl_l_h: float
    """Total clearance (L/h)."""
    v_l: float
    """Volume of distribution (L)."""
    ka_h: float
    """First-order absorption rate constant (1/h)."""
    f: float
    """Oral bioavailability (0-1)."""
    fu: float = 0.1
    """Fraction unbound in plasma."""
    fraction_renal: float = 0.1
    """Share of clearance that is renal (scales with renal function)."""
    tox_risk: float = 0.0
    """Predicted toxicity risk 0-1 (raises the adverse-event logit)."""

    def as_dict(self) -> dict:
        return asdict(self)


def load_admet(bundle_dir: str | Path) -> AdmetPredictor:
    """Load the project's ADMET bundle from a folder (clear error if it is missing)."""
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.exists():
        raise InputError(f"ADMET model folder not found: {bundle_dir}")
    from admet.bundle import load_bundle

    return load_bundle(bundle_dir)


def endpoint_values(predictions: pd.DataFrame) -> pd.DataFrame:
    """Keep the point-prediction column ``E`` of each endpoint (drops ``E_std``, ``E_lower``, ...)."""
    suffixes = ("_std", "_lower", "_upper", "_in_domain", "_pct_approved")
    # ``ad_*`` (applicability-domain status, similarity, flags) describe the molecule's place relative to the
    # training set, not an endpoint; ``duplicate_of`` is a row number.
    keep = [c for c in predictions.columns
            if not c.endswith(suffixes) and not c.startswith("ad_")
            and c not in ("smiles", "input", "row", "status", "reason", "inchikey", "duplicate_of")
            and pd.api.types.is_numeric_dtype(predictions[c])]
    return predictions[keep].astype(float)


def predict_drugs(predictor: AdmetPredictor, smiles: list[str]) -> pd.DataFrame:
    """Predicted endpoint values for unique SMILES, indexed by SMILES (NaN rows for unpredictable ones)."""
    unique = list(dict.fromkeys(s for s in smiles if isinstance(s, str) and s))
    if not unique:
        return pd.DataFrame()
    raw = predictor.predict_smiles(unique)
    if len(raw) != len(unique):
        raise InputError(f"ADMET predictor returned {len(raw)} rows for {len(unique)} SMILES")
    values = endpoint_values(raw.reset_index(drop=True).drop(columns=[c for c in raw.columns if c.endswith('_in_domain')]))
    in_domain = [c for c in raw.columns if c.endswith("_in_domain")]
    if in_domain:
        values["admet_frac_in_domain"] = raw[in_domain].astype("Float64").to_numpy(float, na_value=np.nan).mean(axis=1)
    values.index = pd.Index(unique, name="smiles")
    return values


@functools.lru_cache(maxsize=1)
def _catalog_names() -> dict[str, str]:
    """Older endpoint name -> the catalog endpoint a bundle now predicts (``bioavailability`` -> Bioavailability_Ma)."""
    from pipelines.catalog import endpoint_aliases

    try:
        return endpoint_aliases()
    except InputError:
        return {}


def _value(values: dict, name: str):
    """A prediction by ``name`` or, for a catalog alias, by its catalog endpoint's name."""
    v = values.get(name)
    return values.get(_catalog_names().get(name, name)) if v is None else v


def _get(values: dict, name: str) -> float:
    v = _value(values, name)
    if v is None or not np.isfinite(v):
        return DEFAULTS[name]
    return float(v)


def _finite(values: dict, name: str) -> float | None:
    v = _value(values, name)
    return float(v) if v is not None and np.isfinite(v) else None


def _fu(values: dict) -> tuple[float, str]:
    if (v := _finite(values, "hPPB")) is not None:
        return 10 ** v / 100.0, "hPPB"
    if (v := _finite(values, "PPBR_AZ")) is not None:
        return (100.0 - v) / 100.0, "PPBR_AZ"
    return 10 ** DEFAULTS["hPPB"] / 100.0, "default"


def _clint(values: dict) -> tuple[float, str]:
    """Intrinsic clearance scaled to mL/min/kg body weight (module docstring, first available)."""
    if (v := _finite(values, "Clearance_Hepatocyte_AZ")) is not None and v > 0:
        return v * HEPATOCYTES_1E6_PER_G * LIVER_G_PER_KG / 1000.0, "Clearance_Hepatocyte_AZ"
    if (v := _finite(values, "Clearance_Microsome_AZ")) is not None and v > 0:
        return v * MICROSOMAL_MG_PER_G * LIVER_G_PER_KG / 1000.0, "Clearance_Microsome_AZ"
    if (v := _finite(values, "HLM_CLint")) is not None:
        return 10 ** v, "HLM_CLint"
    return 10 ** DEFAULTS["HLM_CLint"], "default"


def pk_sources(values: dict) -> dict[str, str]:
    """Which endpoint (or ``default`` / ``Oie-Tozer``) each PK typical value came from."""
    vd = _finite(values, "VDss_Lombardo")
    return {"fu": _fu(values)[1], "clint": _clint(values)[1],
            "v": "VDss_Lombardo" if vd is not None and vd > 0 else "Oie-Tozer",
            "f": "Bioavailability_Ma" if _finite(values, "bioavailability") is not None else "default"}


def pk_from_admet(values: dict, logp: float = 2.0) -> PKTypical:
    """Derive :class:`PKTypical` from one drug's predicted endpoint values (see module docstring)."""
    fu = float(np.clip(_fu(values)[0], 1e-3, 1.0))
    clint = _clint(values)[0]
    clh = Q_HEPATIC_ML_MIN_KG * fu * clint / (Q_HEPATIC_ML_MIN_KG + fu * clint)
    clr = fu * GFR_ML_MIN_KG
    cl = clh + clr
    f_h = 1.0 - clh / Q_HEPATIC_ML_MIN_KG
    p_bio = float(np.clip(_get(values, "bioavailability"), 0.0, 1.0))
    f = float(np.clip((0.2 + 0.8 * p_bio) * f_h, 0.01, 1.0))
    vdss = _finite(values, "VDss_Lombardo")
    if vdss is not None and vdss > 0:
        v_l_kg = vdss
    else:
        fu_t = fu * 10 ** (-0.25 * float(np.clip(logp if np.isfinite(logp) else 2.0, -2, 6)))
        v_l_kg = _VP * (1 + _R) + fu * _VP * (_VE / _VP - _R) + _VR * fu / fu_t
    ka = 1.0 if _get(values, "solubility") >= 1.0 else 0.5
    tox = float(np.clip(1.0 - _get(values, "toxcast_clean"), 0.0, 1.0))
    return PKTypical(
        cl_l_h=cl * _ML_MIN_KG_TO_L_H, v_l=v_l_kg * REFERENCE_WEIGHT_KG, ka_h=ka, f=f, fu=fu,
        fraction_renal=clr / cl, tox_risk=tox,
    )


def pk_table(endpoint_table: pd.DataFrame, logp: np.ndarray | None = None) -> pd.DataFrame:
    """PK typical values for every row of a :func:`predict_drugs` table (same index)."""
    rows = []
    logps = np.full(len(endpoint_table), 2.0) if logp is None else np.asarray(logp, float)
    for (_, row), lp in zip(endpoint_table.iterrows(), logps):
        rows.append(pk_from_admet(row.to_dict(), lp).as_dict())
    return pd.DataFrame(rows, index=endpoint_table.index)


def compound_pk(predictor: AdmetPredictor, smiles: str) -> tuple[PKTypical, dict]:
    """PK typical values for one compound SMILES, plus the endpoint predictions they came from."""
    from clinical_sim.drug_features import DESCRIPTOR_NAMES, DrugFeaturizer

    desc = DrugFeaturizer(n_bits=64).drug(smiles)[1]
    if np.isnan(desc).all():
        raise InputError(f"compound SMILES cannot be parsed: {smiles!r}")
    values = predict_drugs(predictor, [smiles])
    row = values.iloc[0].to_dict() if len(values) else {}
    sources = pk_sources(row)
    fallbacks = {k: v for k, v in sources.items() if v in ("default", "Oie-Tozer")}
    if fallbacks:
        log.warning("ADMET model does not predict what PK values %s need; documented fallbacks used", fallbacks)
    return pk_from_admet(row, logp=float(desc[DESCRIPTOR_NAMES.index("logp")])), row | {"pk_sources": sources}
