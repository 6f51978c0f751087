"""The ``rdkit2d`` featurizer: RDKit's ~200 ``Descriptors.descList`` descriptors; ``rdkit2d_fast``:
the subset without the costliest ones (``descriptors2d.FAST_EXCLUDED``), about 2-3x cheaper.

Values equal RDKit's own per-descriptor functions (see :mod:`pipelines.featurize.descriptors2d`,
which computes shared intermediates once). In the float32 feature matrix, a descriptor that RDKit
cannot compute, or whose value is not finite (e.g. ``Ipc`` overflowing for very large
molecules, or beyond float32's range) is NaN. NaN cells are *not* an invalid row: models impute
them (``admet.features.FeatureScaler`` replaces NaN by the training median after robust scaling).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from rdkit import Chem

from pipelines.featurize.base import Featurizer, register
from pipelines.featurize.descriptors2d import (
    DESCRIPTOR_NAMES,
    FAST_DESCRIPTOR_NAMES,
    descriptors_2d,
    descriptors_2d_fast,
)

log = logging.getLogger(__name__)

_F32_MAX = float(np.finfo(np.float32).max)


@register("rdkit2d")
class RDKit2DFeaturizer(Featurizer):
    """All RDKit 2D descriptors in ``descList`` order; non-finite values become NaN."""

    storage_dtype = np.dtype(np.float32)
    names: tuple[str, ...] = DESCRIPTOR_NAMES
    compute = staticmethod(descriptors_2d)

    def params(self) -> dict[str, Any]:
        return {"descriptors": list(self.names)}

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.names

    def featurize_mol(self, mol: Chem.Mol) -> np.ndarray:
        """float64 values (the exact RDKit numbers), NaN where RDKit fails or the value is not finite."""
        values = self.compute(mol)
        values[~np.isfinite(values)] = np.nan
        return values

    def compact(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            block = np.where(np.abs(block) > _F32_MAX, np.nan, block)
        return block.astype(np.float32)


@register("rdkit2d_fast")
class RDKit2DFastFeaturizer(RDKit2DFeaturizer):
    """RDKit 2D descriptors without fragment counts, QED, BCUT2D, Ipc, BertzCT, Chi3/Chi4,
    Morgan densities and SpacialScore (``descList`` order; values equal RDKit's functions)."""

    names = FAST_DESCRIPTOR_NAMES
    compute = staticmethod(descriptors_2d_fast)
