"""The K-MELLODDY standard assay table <-> the project's long table (pure DataFrame conversions).

The K-MELLODDY layout (HITS-AI/k-melloddy reference tool) has twelve columns::

    Chemical ID, Chemical Name, SMILES_Structure_Parent, SMILES_Salt, Test, Test_Type, Test_Subject,
    Measurement_Type, Measurement_Condition, Measurement_Relation, Measurement_Value, Measurement_Unit

Endpoint naming: an endpoint is identified by ``Test_Type``, ``Test_Subject``, ``Measurement_Type`` and
``Measurement_Condition``. The project's endpoint name joins them with ``|`` and drops trailing empty
parts, so ``("PPB", "Human", "", "")`` is ``PPB|Human`` and ``("CYP2C19", "", "IC50", "")`` is
``CYP2C19||IC50``; an endpoint without ``|`` (e.g. ``HLM_CLint``) is written as ``Test_Type`` alone.
The conversion round-trips exactly. ``Test`` is the assay category; it is kept in a ``test`` column when
read and filled from ``TEST_CATEGORY`` for the embedded endpoints when written.

Relations are read raw here (``validate_long_table`` normalizes them); an empty relation means ``=``.
Two optional trailing columns, ``source`` and ``split``, carry the project's provenance and fixed
split through a round trip; the reference tool ignores unknown trailing columns.
"""

from __future__ import annotations

import logging

import pandas as pd

from pipelines.catalog import LONG_COLUMNS
from pipelines.errors import InputError

log = logging.getLogger(__name__)

KMELLODDY_COLUMNS: tuple[str, ...] = (
    "Chemical ID", "Chemical Name", "SMILES_Structure_Parent", "SMILES_Salt", "Test", "Test_Type",
    "Test_Subject", "Measurement_Type", "Measurement_Condition", "Measurement_Relation",
    "Measurement_Value", "Measurement_Unit",
)
#: Columns a K-MELLODDY table must have (``Chemical Name``, ``SMILES_Salt`` and
#: ``Measurement_Condition`` may be absent).
KMELLODDY_REQUIRED: tuple[str, ...] = (
    "Chemical ID", "SMILES_Structure_Parent", "Test", "Test_Type", "Test_Subject", "Measurement_Type",
    "Measurement_Relation", "Measurement_Value", "Measurement_Unit",
)
KMELLODDY_EXTRAS: tuple[str, ...] = ("source", "split")
_ENDPOINT_PARTS = ("Test_Type", "Test_Subject", "Measurement_Type", "Measurement_Condition")

#: K-MELLODDY ``Test`` category of each embedded endpoint.
TEST_CATEGORY: dict[str, str] = {
    "HLM_CLint": "Metabolic_stability", "RLM_CLint": "Metabolic_stability",
    "MDR1_ER": "Efflux_transporter", "solubility": "Solubility",
    "hPPB": "Plasma_protein_binding", "rPPB": "Plasma_protein_binding",
    "bioavailability": "In_vivo_PK", "clearance_lt12": "In_vivo_PK", "bbb": "Brain_penetration",
    "cyp2c19_inhib": "CYP_Inhibition", "toxcast_clean": "Toxicity",
    # TDC endpoints (datasets/tdc_admet); the HINT names above are their catalog aliases
    "Caco2_Wang": "Permeability", "HIA_Hou": "Absorption", "Pgp_Broccatelli": "Efflux_transporter",
    "Bioavailability_Ma": "In_vivo_PK", "Lipophilicity_AstraZeneca": "Lipophilicity",
    "Solubility_AqSolDB": "Solubility", "BBB_Martins": "Brain_penetration", "PPBR_AZ": "Plasma_protein_binding",
    "VDss_Lombardo": "In_vivo_PK", "Half_Life_Obach": "In_vivo_PK", "Clearance_Hepatocyte_AZ": "Metabolic_stability",
    "Clearance_Microsome_AZ": "Metabolic_stability", "LD50_Zhu": "Toxicity", "hERG": "Cardiotoxicity",
    "AMES": "Genotoxicity", "DILI": "Hepatotoxicity", "Skin_Reaction": "Toxicity", "Carcinogens_Lagunin": "Toxicity",
    "ClinTox": "Toxicity",
    **{f"{cyp}_Veith": "CYP_Inhibition" for cyp in ("CYP1A2", "CYP2C9", "CYP2C19", "CYP2D6", "CYP3A4")},
    **{f"{cyp}_Substrate_CarbonMangels": "CYP_Substrate" for cyp in ("CYP2C9", "CYP2D6", "CYP3A4")},
    **{a: "Toxicity" for a in ("NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD",
                               "NR-PPAR-gamma", "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53")},
    # K-MELLODDY gist endpoint names that the catalog lists as aliases (``catalog.csv``)
    "Caco2": "Permeability", "pgp_inhibitor": "Efflux_transporter", "HIA": "Absorption", "F20": "In_vivo_PK",
    "Lipophilicity": "Lipophilicity", "Solubility": "Solubility", "BBB_logbb(cls)": "Brain_penetration",
    "PPBR": "Plasma_protein_binding", "VDss": "In_vivo_PK", "t1/2(reg)": "In_vivo_PK", "LD50": "Toxicity",
    "Skin Reaction": "Toxicity", "Carcinogen": "Toxicity",
    **{f"{cyp}_Inhibitor": "CYP_Inhibition" for cyp in ("CYP1A2", "CYP2C9", "CYP2C19", "CYP2D6", "CYP3A4")},
    **{f"{cyp}_Substrate": "CYP_Substrate" for cyp in ("CYP2C9", "CYP2D6", "CYP3A4")},
}


def looks_like_kmelloddy(columns: list[str] | pd.Index) -> bool:
    """True when the columns are (mostly) the K-MELLODDY layout."""
    present = set(columns)
    return "SMILES_Structure_Parent" in present or len(present & set(KMELLODDY_REQUIRED)) >= 4


def _text(series: pd.Series) -> pd.Series:
    return series.astype("string").fillna("").str.strip().astype(object)


def kmelloddy_to_long(table: pd.DataFrame, default_source: str = "k_melloddy") -> pd.DataFrame:
    """K-MELLODDY rows -> ``LONG_COLUMNS`` + ``row``, ``input``, ``test`` (values still raw text)."""
    missing = [c for c in KMELLODDY_REQUIRED if c not in table.columns]
    if missing:
        raise InputError(
            f"K-MELLODDY table is missing required column(s) {missing}; "
            f"the layout is {list(KMELLODDY_COLUMNS)}"
        )
    unknown = [c for c in table.columns if c not in KMELLODDY_COLUMNS and c not in KMELLODDY_EXTRAS
               and c != "row"]
    if unknown:
        log.warning("K-MELLODDY table: ignoring unknown column(s) %s", unknown)
    parts = [_text(table[c]) if c in table.columns else pd.Series("", index=table.index, dtype=object)
             for c in _ENDPOINT_PARTS]
    endpoint = ["|".join(p).rstrip("|") for p in zip(*parts, strict=True)]
    smiles = _text(table["SMILES_Structure_Parent"])
    if "SMILES_Salt" in table.columns:
        salt = _text(table["SMILES_Salt"])
        smiles = smiles.where(smiles != "", salt)
    out = pd.DataFrame({
        "row": table["row"].to_numpy() if "row" in table.columns else range(len(table)),
        "compound_id": _text(table["Chemical ID"]).to_numpy(),
        "smiles": smiles.to_numpy(),
        "endpoint": endpoint,
        "relation": _text(table["Measurement_Relation"]).to_numpy(),
        "value": table["Measurement_Value"].to_numpy(),
        "unit": _text(table["Measurement_Unit"]).to_numpy(),
        "source": (_text(table["source"]).to_numpy() if "source" in table.columns else default_source),
        "split": _text(table["split"]).to_numpy() if "split" in table.columns else "",
        "test": _text(table["Test"]).to_numpy(),
    })
    out["input"] = out["smiles"]
    return out.loc[:, ["row", "input", *LONG_COLUMNS, "test"]]


def long_to_kmelloddy(long_df: pd.DataFrame) -> pd.DataFrame:
    """A long table (``LONG_COLUMNS``) -> the K-MELLODDY layout, plus ``source`` and ``split``."""
    missing = [c for c in ("smiles", "endpoint", "value") if c not in long_df.columns]
    if missing:
        raise InputError(f"cannot write K-MELLODDY: the long table lacks column(s) {missing}")
    n = len(long_df)
    endpoints = long_df["endpoint"].astype(str).tolist()
    parts = [(e.split("|") + ["", "", "", ""])[:4] for e in endpoints]
    if "test" in long_df.columns:
        test = [t if isinstance(t, str) and t else TEST_CATEGORY.get(e, "")
                for t, e in zip(long_df["test"], endpoints, strict=True)]
    else:
        test = [TEST_CATEGORY.get(e, "") for e in endpoints]
    relation = (long_df["relation"].astype(str).replace({"=": ""}).tolist()
                if "relation" in long_df.columns else [""] * n)

    def column(name: str, default: str = "") -> list:
        return long_df[name].tolist() if name in long_df.columns else [default] * n

    out = pd.DataFrame({
        "Chemical ID": column("compound_id"),
        "Chemical Name": [""] * n,
        "SMILES_Structure_Parent": long_df["smiles"].tolist(),
        "SMILES_Salt": [""] * n,
        "Test": test,
        "Test_Type": [p[0] for p in parts],
        "Test_Subject": [p[1] for p in parts],
        "Measurement_Type": [p[2] for p in parts],
        "Measurement_Condition": [p[3] for p in parts],
        "Measurement_Relation": relation,
        "Measurement_Value": long_df["value"].tolist(),
        "Measurement_Unit": column("unit"),
        "source": column("source"),
        "split": column("split"),
    })
    return out
