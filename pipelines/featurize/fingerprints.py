"""Fingerprint featurizers: Morgan (ECFP-like) counts and bits, MACCS keys.

The Morgan generator is built once per featurizer instance (so once per worker process) and
reused for every molecule. Outputs travel between processes and sit in the cache as small
unsigned integers; the float32 feature matrix is made only at the end.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Chem import MACCSkeys, rdFingerprintGenerator

from pipelines.featurize.base import Featurizer, register

log = logging.getLogger(__name__)


class _MorganBase(Featurizer):
    def __init__(self, radius: int = 2, n_bits: int = 2048) -> None:
        if radius < 0 or n_bits <= 0:
            raise ValueError(f"Morgan radius must be >= 0 and n_bits > 0 (got {radius}, {n_bits})")
        self.radius = radius
        self.n_bits = n_bits

    def params(self) -> dict[str, Any]:
        return {"radius": self.radius, "n_bits": self.n_bits}

    @property
    def n_features(self) -> int:
        return self.n_bits

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(str(i) for i in range(self.n_bits))

    @property
    def generator(self) -> rdFingerprintGenerator.FingerprintGenerator64:
        gen = self.__dict__.get("_lazy_generator")
        if gen is None:
            gen = rdFingerprintGenerator.GetMorganGenerator(radius=self.radius, fpSize=self.n_bits)
            self.__dict__["_lazy_generator"] = gen
        return gen


@register("morgan_count")
class MorganCountFeaturizer(_MorganBase):
    """Folded Morgan count fingerprint (radius 2, 2048 bins by default), as ``GetCountFingerprintAsNumPy``.

    Stored as uint8 when a chunk's counts fit, else uint16/uint32: always lossless.
    """

    storage_dtype = np.dtype(np.uint32)

    def featurize_mol(self, mol: Chem.Mol) -> np.ndarray:
        return self.generator.GetCountFingerprintAsNumPy(mol)

    def compact(self, block: np.ndarray) -> np.ndarray:
        top = int(block.max()) if block.size else 0
        return block.astype(np.min_scalar_type(top), copy=False)


@register("morgan_bits")
class MorganBitsFeaturizer(_MorganBase):
    """Folded Morgan bit fingerprint (radius 2, 2048 bits by default), 0/1 per bit."""

    storage_dtype = np.dtype(np.uint8)

    def featurize_mol(self, mol: Chem.Mol) -> np.ndarray:
        return self.generator.GetFingerprintAsNumPy(mol)


@register("maccs")
class MACCSFeaturizer(Featurizer):
    """The 167 MACCS structural keys (bit 0 is always 0 in RDKit's numbering)."""

    storage_dtype = np.dtype(np.uint8)

    def params(self) -> dict[str, Any]:
        return {}

    @property
    def n_features(self) -> int:
        return 167

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"maccs_{i}" for i in range(167))

    def featurize_mol(self, mol: Chem.Mol) -> np.ndarray:
        out = np.zeros(167, dtype=np.uint8)
        DataStructs.ConvertToNumpyArray(MACCSkeys.GenMACCSKeys(mol), out)
        return out
