"""Per-drug structure features (Morgan bits + a few RDKit descriptors) aggregated over a trial's drugs.

A SMILES RDKit cannot parse gives a NaN descriptor row and no bits; it never stops the batch. Each
trial's drugs are aggregated: fingerprint bits by OR (max), descriptors by mean / min / max.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable

import numpy as np
from rdkit import Chem
from rdkit.Chem import QED, Crippen, Descriptors, rdFingerprintGenerator, rdMolDescriptors

from pipelines.standardize import parse_smiles as parse_with_reason

log = logging.getLogger(__name__)
#: trial drugs include peptides far above the screening size limit
_NO_SIZE_LIMIT = 100_000

#: RDKit descriptors computed per drug, in order.
DESCRIPTOR_NAMES: tuple[str, ...] = (
    "mol_wt", "logp", "tpsa", "hbd", "hba", "rot_bonds", "rings", "arom_rings", "frac_csp3",
    "heavy_atoms", "qed", "charge_abs", "has_metal",
)
_METALS = {"Pt", "Fe", "Cu", "Zn", "Co", "Ni", "Gd", "Ga", "Tc", "Ru", "Au", "Ag", "Mn", "Li", "Bi", "Sb", "As"}


def parse_smiles(smiles: str) -> Chem.Mol | None:
    """RDKit molecule through the pipeline's parser, keeping organometallics whose only problem is
    valence (common in trial tables) and large drugs (peptides); None if hopeless."""
    mol, _ = parse_with_reason(smiles, max_heavy_atoms=_NO_SIZE_LIMIT, allow_valence_errors=True)
    return mol


def _descriptors(mol: Chem.Mol) -> np.ndarray:
    def safe(fn):
        try:
            return float(fn(mol))
        except Exception:  # noqa: BLE001
            return np.nan
    return np.array([
        safe(Descriptors.MolWt), safe(Crippen.MolLogP), safe(rdMolDescriptors.CalcTPSA),
        safe(rdMolDescriptors.CalcNumHBD), safe(rdMolDescriptors.CalcNumHBA),
        safe(rdMolDescriptors.CalcNumRotatableBonds), safe(rdMolDescriptors.CalcNumRings),
        safe(rdMolDescriptors.CalcNumAromaticRings), safe(rdMolDescriptors.CalcFractionCSP3),
        float(mol.GetNumHeavyAtoms()), safe(QED.qed),
        float(sum(abs(a.GetFormalCharge()) for a in mol.GetAtoms())),
        float(any(a.GetSymbol() in _METALS for a in mol.GetAtoms())),
    ], dtype=np.float64)


class DrugFeaturizer:
    """Morgan bits (radius 2) + :data:`DESCRIPTOR_NAMES` per unique SMILES, cached in memory."""

    def __init__(self, n_bits: int = 1024, radius: int = 2) -> None:
        self.n_bits = n_bits
        self.radius = radius
        self._gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def config(self) -> dict:
        return {"n_bits": self.n_bits, "radius": self.radius, "descriptors": list(DESCRIPTOR_NAMES)}

    def drug(self, smiles: str) -> tuple[np.ndarray, np.ndarray]:
        """(bits uint8 (n_bits,), descriptors float (len(DESCRIPTOR_NAMES),)); NaN descriptors if unparsable."""
        hit = self._cache.get(smiles)
        if hit is not None:
            return hit
        mol = parse_smiles(smiles)
        if mol is None:
            result = (np.zeros(self.n_bits, np.uint8), np.full(len(DESCRIPTOR_NAMES), np.nan))
        else:
            try:
                bits = self._gen.GetFingerprintAsNumPy(mol).astype(np.uint8)
            except Exception:  # noqa: BLE001
                bits = np.zeros(self.n_bits, np.uint8)
            result = (bits, _descriptors(mol))
        self._cache[smiles] = result
        return result

    def n_valid(self, smiles_list: Iterable[str]) -> int:
        return sum(1 for s in smiles_list if not np.isnan(self.drug(s)[1][0]))

    def trials(self, smiles_lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Aggregate per trial: (bits (n, n_bits) by OR, descriptors (n, 3*D) mean/min/max, descriptor names)."""
        n = len(smiles_lists)
        bits = np.zeros((n, self.n_bits), np.uint8)
        desc = np.full((n, 3 * len(DESCRIPTOR_NAMES)), np.nan)
        for i, smiles_list in enumerate(smiles_lists):
            rows = [self.drug(s) for s in smiles_list]
            if not rows:
                continue
            bits[i] = np.max(np.stack([r[0] for r in rows]), axis=0)
            d = np.stack([r[1] for r in rows])
            if np.isnan(d).all():
                continue
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                desc[i] = np.concatenate([np.nanmean(d, 0), np.nanmin(d, 0), np.nanmax(d, 0)])
        names = [f"drug_{stat}_{name}" for stat in ("mean", "min", "max") for name in DESCRIPTOR_NAMES]
        return bits, desc, names
