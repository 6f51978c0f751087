"""Synthetic TOP/HINT-format trial tables with a known label structure (no benchmark rows)."""

from __future__ import annotations

import numpy as np
import pandas as pd

# A few approved drugs (structures as in ChEMBL's approved-drug list).
DRUGS = {
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "ibuprofen": "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
    "metformin": "CN(C)C(=N)NC(=N)N",
    "atenolol": "CC(C)NCC(O)COc1ccc(CC(N)=O)cc1",
    "caffeine": "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    "imatinib": "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1",
    "gefitinib": "COc1cc2ncnc(Nc3ccc(F)c(Cl)c3)c2cc1OCCCN1CCOCC1",
    "methotrexate": "CN(Cc1cnc2nc(N)nc(N)c2n1)c1ccc(C(=O)NC(CCC(=O)O)C(=O)O)cc1",
    "simvastatin": "CCC(C)(C)C(=O)OC1CC(C)C=C2C=CC(C)C(CCC3CC(O)CC(=O)O3)C21",
}
DISEASES = {  # disease -> (ICD-10 codes, effect on success logit)
    "type 2 diabetes": (["E11.9", "E11.65"], 1.2),
    "hypertension": (["I10"], 1.0),
    "breast cancer": (["C50.911", "C50.912"], -1.2),
    "lung cancer": (["C34.90"], -1.4),
    "asthma": (["J45.909"], 0.6),
}
GOOD_DRUGS = {"metformin", "atenolol", "paracetamol"}


def make_trials(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` phase-1 trials; success depends on disease, drug identity and a criteria keyword."""
    rng = np.random.default_rng(seed)
    names = list(DRUGS)
    diseases = list(DISEASES)
    rows = []
    for i in range(n):
        disease = diseases[rng.integers(len(diseases))]
        codes, effect = DISEASES[disease]
        drugs = list(rng.choice(names, size=rng.integers(1, 3), replace=False))
        biomarker = rng.random() < 0.4
        logit = effect + 0.8 * sum(d in GOOD_DRUGS for d in drugs) + (1.0 if biomarker else -0.3) - 0.3
        label = int(rng.random() < 1 / (1 + np.exp(-logit)))
        incl = ["adults aged 18 to 75 years", f"diagnosed with {disease}"]
        if biomarker:
            incl.append("positive for the predictive biomarker on central testing")
        excl = ["pregnancy", "severe renal impairment"] + (["prior chemotherapy"] if "cancer" in disease else [])
        criteria = ("Inclusion Criteria:\n" + "".join(f"\n  -  {c}" for c in incl)
                    + "\n\nExclusion Criteria:\n" + "".join(f"\n  -  {c}" for c in excl))
        rows.append({
            "nctid": f"NCT9{i:07d}", "status": "completed" if label else "terminated", "why_stop": "",
            "label": label, "phase": "phase 1", "diseases": str([disease]), "icdcodes": str([str(codes)]),
            "drugs": str(drugs), "smiless": str([DRUGS[d] for d in drugs]), "criteria": criteria,
        })
    return pd.DataFrame(rows)
