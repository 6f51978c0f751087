"""The two fingerprints MapLight adds to Morgan counts and RDKit descriptors: Avalon counts and ErG.

MapLight (Notwell & Wood 2023, arXiv:2310.00174; top of several TDC ADMET leaderboards) uses
ECFP counts + Avalon counts + ErG + RDKit 2D descriptors with gradient boosting. With the
existing ``morgan_count`` and ``rdkit2d`` featurizers the spec
``morgan_count+avalon_count+erg+rdkit2d`` is that feature set. Both are RDKit's own functions
(``pyAvalonTools.GetAvalonCountFP``, ``rdReducedGraphs.GetErGFingerprint``), values unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Avalon import pyAvalonTools
from rdkit.Chem import rdReducedGraphs

from pipelines.featurize.base import Featurizer, register

ERG_SIZE = 315  # RDKit's ErG vector length (fixed by its pharmacophore-pair definition)


@register("avalon_count")
class AvalonCountFeaturizer(Featurizer):
    """Avalon count fingerprint (1024 bins by default), as ``GetAvalonCountFP``; stored as uint16."""

    storage_dtype = np.dtype(np.uint16)

    def __init__(self, n_bits: int = 1024) -> None:
        if n_bits <= 0:
            raise ValueError(f"Avalon n_bits must be > 0 (got {n_bits})")
        self.n_bits = n_bits

    def params(self) -> dict[str, Any]:
        return {"n_bits": self.n_bits}

    @property
    def n_features(self) -> int:
        return self.n_bits

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"avalon_{i}" for i in range(self.n_bits))

    def featurize_mol(self, mol: Chem.Mol) -> np.ndarray:
        out = np.zeros(self.n_bits, dtype=np.float64)
        DataStructs.ConvertToNumpyArray(pyAvalonTools.GetAvalonCountFP(mol, nBits=self.n_bits), out)
        return np.minimum(out, np.iinfo(np.uint16).max)


@register("erg")
class ErGFeaturizer(Featurizer):
    """Extended reduced-graph (ErG) pharmacophore-pair fingerprint, 315 floats."""

    def params(self) -> dict[str, Any]:
        return {}

    @property
    def n_features(self) -> int:
        return ERG_SIZE

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"erg_{i}" for i in range(ERG_SIZE))

    def featurize_mol(self, mol: Chem.Mol) -> np.ndarray:
        return np.asarray(rdReducedGraphs.GetErGFingerprint(mol), dtype=np.float32)
