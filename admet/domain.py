"""Applicability domain: nearest-neighbour Tanimoto similarity (Morgan bits) to the training set.

A molecule is *in domain* when its most similar training molecule reaches the threshold,
by default the 5th percentile of the nearest-neighbour similarity of the (scaffold-held-out)
calibration molecules, so about 95% of molecules like the calibration set count as in domain.

The search is exact and fast: query fingerprints are a sparse 0/1 matrix, the reference a
dense uint16 (bits x molecules) matrix; one sparse-dense product gives every intersection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

log = logging.getLogger(__name__)

AD_RADIUS = 2
AD_BITS = 2048


def _generator():
    return rdFingerprintGenerator.GetMorganGenerator(radius=AD_RADIUS, fpSize=AD_BITS)


def morgan_on_bits(smiles: Sequence[str]) -> list[list[int] | None]:
    """On-bit indices of the Morgan fingerprint per SMILES (None where it does not parse)."""
    gen = _generator()
    out: list[list[int] | None] = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s) if isinstance(s, str) and s else None
        out.append(list(gen.GetFingerprint(mol).GetOnBits()) if mol is not None else None)
    return out


def _bits_to_csr(bits: Sequence[list[int] | None]) -> sp.csr_matrix:
    indptr = np.zeros(len(bits) + 1, dtype=np.int64)
    lengths = [len(b) if b is not None else 0 for b in bits]
    indptr[1:] = np.cumsum(lengths)
    indices = np.fromiter((i for b in bits if b for i in b), dtype=np.int32, count=int(indptr[-1]))
    data = np.ones(len(indices), dtype=np.uint16)
    return sp.csr_matrix((data, indices, indptr), shape=(len(bits), AD_BITS))


@dataclass(slots=True)
class ApplicabilityDomain:
    """Reference fingerprints (bit-packed) and the in-domain similarity threshold."""

    reference: np.ndarray
    """uint8 (n_ref, AD_BITS/8), ``np.packbits`` of the reference Morgan bit vectors."""
    threshold: float
    percentile: float = 5.0
    n_training: int = 0
    _dense: np.ndarray | None = field(default=None, repr=False)
    _counts: np.ndarray | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def fit(cls, train_smiles: Sequence[str], calibration_smiles: Sequence[str],
            percentile: float = 5.0, max_reference: int = 20000, seed: int = 0) -> "ApplicabilityDomain":
        """Reference = training molecules (a seeded random subset above ``max_reference``)."""
        smiles = list(train_smiles)
        if len(smiles) > max_reference:
            keep = np.sort(np.random.default_rng(seed).choice(len(smiles), max_reference, replace=False))
            smiles = [smiles[i] for i in keep]
        bits = [b for b in morgan_on_bits(smiles) if b is not None]
        dense = np.zeros((len(bits), AD_BITS), dtype=np.uint8)
        for i, b in enumerate(bits):
            dense[i, b] = 1
        ad = cls(reference=np.packbits(dense, axis=1), threshold=0.0, percentile=percentile,
                 n_training=len(train_smiles))
        cal = ad.max_similarity(calibration_smiles) if len(calibration_smiles) else np.array([])
        cal = cal[np.isfinite(cal)]
        ad.threshold = float(np.percentile(cal, percentile)) if len(cal) else 0.0
        log.info("applicability domain: %d reference molecules, threshold %.3f (%.0fth pct of %d "
                 "calibration nearest-neighbour similarities)", len(bits), ad.threshold, percentile, len(cal))
        return ad

    def _prepare(self) -> tuple[np.ndarray, np.ndarray]:
        """The unpacked reference (bits x molecules) and its bit counts, built once.

        Thread-safe: screening runs predict tasks on a thread pool that share one loaded bundle,
        so two threads may ask at once; both arrays are published together under a lock.
        """
        with self._lock:
            if self._dense is None or self._counts is None:
                unpacked = np.unpackbits(self.reference, axis=1)[:, :AD_BITS]
                counts = unpacked.sum(1).astype(np.float32)
                dense = np.ascontiguousarray(unpacked.T.astype(np.uint16))
                self._counts, self._dense = counts, dense
            return self._dense, self._counts

    def max_similarity(self, smiles: Sequence[str], block: int = 512) -> np.ndarray:
        """Max Tanimoto similarity to the reference per SMILES (NaN where it does not parse)."""
        return self.max_similarity_bits(morgan_on_bits(list(smiles)), block=block)

    def max_similarity_bits(self, bits: Sequence[list[int] | None], block: int = 512) -> np.ndarray:
        dense, counts = self._prepare()
        out = np.full(len(bits), np.nan)
        if len(counts) == 0:
            return out
        for start in range(0, len(bits), block):
            chunk = bits[start:start + block]
            q = _bits_to_csr(chunk)
            inter = np.asarray(q @ dense, dtype=np.float32)
            qc = np.array([len(b) if b is not None else 0 for b in chunk], dtype=np.float32)
            union = qc[:, None] + counts[None, :] - inter
            sim = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
            best = sim.max(axis=1)
            valid = np.array([b is not None for b in chunk])
            out[start:start + len(chunk)] = np.where(valid, best, np.nan)
        return out

    def in_domain(self, similarity: np.ndarray) -> np.ndarray:
        return np.asarray(similarity) >= self.threshold

    def save(self, path: Path) -> None:
        np.savez_compressed(path, reference=self.reference, threshold=np.float64(self.threshold),
                            percentile=np.float64(self.percentile),
                            n_training=np.int64(self.n_training))

    @classmethod
    def load(cls, path: Path) -> "ApplicabilityDomain":
        with np.load(path) as z:
            return cls(reference=z["reference"], threshold=float(z["threshold"]),
                       percentile=float(z["percentile"]), n_training=int(z["n_training"]))
