"""Physicochemical columns a medicinal chemist expects next to ADMET predictions, computed with RDKit.

Computed on the standardized parent (after salt stripping and neutralization), so a hydrochloride
gets the free base's values. Each value is RDKit's own descriptor; nothing is fitted:

- ``MW``: average molecular weight (``Descriptors.MolWt``, g/mol);
- ``cLogP``: Wildman-Crippen logP (``Crippen.MolLogP``);
- ``TPSA``: topological polar surface area (``rdMolDescriptors.CalcTPSA``, N and O only, A^2);
- ``HBD`` / ``HBA``: hydrogen-bond donors / acceptors (``rdMolDescriptors.CalcNumHBD`` / ``CalcNumHBA``);
- ``rotatable_bonds``: ``rdMolDescriptors.CalcNumRotatableBonds`` (RDKit's default definition);
- ``QED``: quantitative estimate of drug-likeness (``Chem.QED.qed``, 0-1, Bickerton et al. 2012);
- ``lipinski_violations``: how many of MW > 500, cLogP > 5, HBD > 5, HBA > 10 hold (0-4), from the
  columns above.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from rdkit import Chem
from rdkit.Chem import QED, Crippen, Descriptors, rdMolDescriptors

log = logging.getLogger(__name__)

#: Column order of :func:`physchem_frame`.
PHYSCHEM_COLUMNS: tuple[str, ...] = ("MW", "cLogP", "TPSA", "HBD", "HBA", "rotatable_bonds", "QED",
                                     "lipinski_violations")

#: unit, meaning, direction (``columns.json``); direction ``n/a``: context for the chemist, not a goal.
PHYSCHEM_META: dict[str, tuple[str, str, str]] = {
    "MW": ("g/mol", "average molecular weight of the standardized parent (RDKit MolWt)", "n/a"),
    "cLogP": ("log10 (octanol/water)", "Wildman-Crippen calculated logP (RDKit MolLogP)", "n/a"),
    "TPSA": ("A^2", "topological polar surface area, N and O contributions (RDKit CalcTPSA)", "n/a"),
    "HBD": ("count", "hydrogen-bond donors (RDKit CalcNumHBD)", "n/a"),
    "HBA": ("count", "hydrogen-bond acceptors (RDKit CalcNumHBA)", "n/a"),
    "rotatable_bonds": ("count", "rotatable bonds (RDKit CalcNumRotatableBonds)", "n/a"),
    "QED": ("0-1", "quantitative estimate of drug-likeness (RDKit QED, Bickerton 2012)", "higher"),
    "lipinski_violations": ("count 0-4", "rule-of-five violations: MW > 500, cLogP > 5, HBD > 5, HBA > 10",
                            "lower"),
}


def _row(mol: Chem.Mol) -> list[float]:
    mw = Descriptors.MolWt(mol)
    logp = Crippen.MolLogP(mol)
    hbd = rdMolDescriptors.CalcNumHBD(mol)
    hba = rdMolDescriptors.CalcNumHBA(mol)
    try:
        qed = QED.qed(mol)
    except Exception:  # noqa: BLE001 - QED fails on a few exotic valences; the other columns stand
        qed = float("nan")
    violations = int(mw > 500) + int(logp > 5) + int(hbd > 5) + int(hba > 10)
    return [mw, logp, rdMolDescriptors.CalcTPSA(mol), hbd, hba, rdMolDescriptors.CalcNumRotatableBonds(mol),
            qed, violations]


def physchem_frame(smiles: Sequence[str | None]) -> pd.DataFrame:
    """One row per SMILES (NaN for None or an unparsable one), columns ``PHYSCHEM_COLUMNS``."""
    values = np.full((len(smiles), len(PHYSCHEM_COLUMNS)), np.nan)
    for i, text in enumerate(smiles):
        if not isinstance(text, str) or not text:
            continue
        mol = Chem.MolFromSmiles(text)
        if mol is None:
            continue
        try:
            values[i] = _row(mol)
        except Exception:  # noqa: BLE001 - a descriptor failure leaves this row NaN, never the chunk
            log.debug("physchem failed for %s", text, exc_info=True)
    return pd.DataFrame(values, columns=list(PHYSCHEM_COLUMNS))
