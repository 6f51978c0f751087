"""Applicability domain from three signals: similarity to the training set, descriptor ranges, structure rules.

* Similarity: the maximum Tanimoto similarity (Morgan radius 2, 2048 bits) to the training
  molecules, and the mean over the 5 nearest. A molecule is below the similarity threshold when its
  nearest training molecule is less similar than the ``percentile``-th percentile (default 5th) of the
  (scaffold-held-out) calibration molecules' nearest-neighbour similarity.
* Descriptor ranges: molecular weight, Crippen logP, TPSA, H-bond donors/acceptors, rotatable
  bonds, heavy atoms, rings and net formal charge must lie inside the box spanned by the training
  molecules' 0.5th-99.5th percentiles (``BOX_PERCENTILES``).
* Structure rules (``structure_flags``), independent of the training data: ``peptide`` (>= 4 peptide
  bonds, i.e. backbone units N-C(alpha)-C(=O)-N), ``macrocycle`` (a ring of >= 12 atoms), ``metal`` (any
  metal atom), ``large`` (molecular weight > 900 Da).

``ad_status`` is ``inside`` only when no signal fires, ``outside`` when any does (``ad_flags``
names which), and ``unknown`` for a bundle without domain data, whatever the rules say (the
flags are still reported). A bundle written before the descriptor box existed checks similarity
and the rules only.

The similarity search is exact and fast: query fingerprints are a sparse 0/1 matrix, the
reference a dense uint16 (bits x molecules) matrix; one sparse-dense product gives every
intersection.
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
from rdkit.Chem import Crippen, Descriptors, rdFingerprintGenerator, rdMolDescriptors

log = logging.getLogger(__name__)

AD_RADIUS = 2
AD_BITS = 2048
KNN = 5
BOX_PERCENTILES = (0.5, 99.5)
INSIDE, OUTSIDE, UNKNOWN = "inside", "outside", "unknown"
PEPTIDE_MIN_RESIDUES = 4
MACROCYCLE_MIN_RING = 12
LARGE_MW = 900.0
_RESIDUE = Chem.MolFromSmarts("[NX3][CX4][CX3](=O)[NX3]")
_NON_METALS = {1, 2, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 33, 34, 35, 36, 52, 53, 54, 85, 86}


def _net_charge(mol) -> float:
    return float(Chem.GetFormalCharge(mol))


#: Descriptor-range signal: name -> function of an RDKit molecule.
BOX_DESCRIPTORS = {
    "MolWt": Descriptors.MolWt,
    "MolLogP": Crippen.MolLogP,
    "TPSA": rdMolDescriptors.CalcTPSA,
    "NumHDonors": rdMolDescriptors.CalcNumHBD,
    "NumHAcceptors": rdMolDescriptors.CalcNumHBA,
    "NumRotatableBonds": rdMolDescriptors.CalcNumRotatableBonds,
    "HeavyAtomCount": lambda m: m.GetNumHeavyAtoms(),
    "RingCount": rdMolDescriptors.CalcNumRings,
    "NetCharge": _net_charge,
}


def _generator():
    return rdFingerprintGenerator.GetMorganGenerator(radius=AD_RADIUS, fpSize=AD_BITS)


def _mol(s) -> Chem.Mol | None:
    return Chem.MolFromSmiles(s) if isinstance(s, str) and s else None


def morgan_on_bits(smiles: Sequence[str]) -> list[list[int] | None]:
    """On-bit indices of the Morgan fingerprint per SMILES (None where it does not parse)."""
    gen = _generator()
    out: list[list[int] | None] = []
    for s in smiles:
        mol = _mol(s)
        out.append(list(gen.GetFingerprint(mol).GetOnBits()) if mol is not None else None)
    return out


def structure_flags(mol: Chem.Mol) -> list[str]:
    """Rule flags that put a molecule outside any small-molecule model's domain (see the module doc)."""
    flags = []
    if len(mol.GetSubstructMatches(_RESIDUE)) >= PEPTIDE_MIN_RESIDUES:
        flags.append("peptide")
    if max((len(r) for r in mol.GetRingInfo().AtomRings()), default=0) >= MACROCYCLE_MIN_RING:
        flags.append("macrocycle")
    if any(a.GetAtomicNum() not in _NON_METALS for a in mol.GetAtoms()):
        flags.append("metal")
    if Descriptors.MolWt(mol) > LARGE_MW:
        flags.append("large")
    return flags


def box_descriptors(mols: Sequence[Chem.Mol | None], known: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(n, len(BOX_DESCRIPTORS)) descriptor matrix; NaN rows where the molecule is None.

    ``known``: name -> (n,) values the caller computed already with the same RDKit function (predict
    takes them from the rdkit2d featurizer's float64 values); only the other columns are computed here.
    """
    out = np.full((len(mols), len(BOX_DESCRIPTORS)), np.nan)
    known = known or {}
    todo = [(j, f) for j, (name, f) in enumerate(BOX_DESCRIPTORS.items()) if name not in known]
    for j, name in enumerate(BOX_DESCRIPTORS):
        if name in known:
            out[:, j] = np.asarray(known[name], dtype=float)
    for i, m in enumerate(mols):
        if m is None:
            out[i] = np.nan
            continue
        for j, f in todo:
            out[i, j] = float(f(m))
    return out


@dataclass(slots=True)
class DomainInputs:
    """What the domain needs from each molecule, computed once (``domain_inputs``; in predict's worker
    processes, next to featurization, so the main process only does the similarity search)."""

    bits: list
    """Morgan on-bits per molecule (None where it does not parse)."""
    descriptors: np.ndarray
    """(n, len(BOX_DESCRIPTORS)); NaN rows where it does not parse."""
    flags: list
    """``structure_flags`` per molecule (None where it does not parse)."""

    def take(self, rows) -> "DomainInputs":
        rows = [int(i) for i in rows]
        return DomainInputs([self.bits[i] for i in rows], self.descriptors[rows], [self.flags[i] for i in rows])


def domain_inputs(smiles: Sequence[str]) -> DomainInputs:
    """Parse each SMILES once: fingerprint bits, box descriptors and rule flags."""
    return domain_inputs_from_mols([_mol(s) for s in smiles])


def domain_inputs_from_mols(mols: Sequence[Chem.Mol | None], bits: Sequence[list[int] | None] | None = None,
                            known: dict[str, np.ndarray] | None = None) -> DomainInputs:
    """``domain_inputs`` of molecules parsed already (None where a SMILES did not parse).

    ``bits``: their Morgan on-bits, where the caller computed the same fingerprint (radius ``AD_RADIUS``,
    ``AD_BITS`` bins: the non-zero bins of a Morgan count fingerprint with those settings are exactly
    these bits); ``known``: some ``BOX_DESCRIPTORS`` already computed (see :func:`box_descriptors`).
    """
    if bits is None:
        gen = _generator()
        bits = [list(gen.GetFingerprint(m).GetOnBits()) if m is not None else None for m in mols]
    else:
        bits = [b if m is not None else None for m, b in zip(mols, bits, strict=True)]
    return DomainInputs(list(bits), box_descriptors(mols, known),
                        [structure_flags(m) if m is not None else None for m in mols])


def _bits_to_csr(bits: Sequence[list[int] | None]) -> sp.csr_matrix:
    indptr = np.zeros(len(bits) + 1, dtype=np.int64)
    lengths = [len(b) if b is not None else 0 for b in bits]
    indptr[1:] = np.cumsum(lengths)
    indices = np.fromiter((i for b in bits if b for i in b), dtype=np.int32, count=int(indptr[-1]))
    data = np.ones(len(indices), dtype=np.uint16)
    return sp.csr_matrix((data, indices, indptr), shape=(len(bits), AD_BITS))


@dataclass(slots=True)
class DomainResult:
    """Per-molecule applicability-domain outcome (arrays aligned with the queried molecules)."""

    status: np.ndarray
    """object array of ``inside`` / ``outside`` / ``unknown`` (None where the molecule did not parse)."""
    similarity: np.ndarray
    """Max Tanimoto similarity to the training set (NaN without domain data or unparsable)."""
    knn_similarity: np.ndarray
    """Mean similarity of the ``KNN`` most similar training molecules."""
    flags: np.ndarray
    """object array: ``;``-joined reasons (``low_similarity``, ``range:<descriptor>``, rule flags)."""

    @property
    def in_domain(self):
        """pandas boolean array: True inside, False outside, NA unknown / unparsable."""
        import pandas as pd

        arr = pd.array([None if s not in (INSIDE, OUTSIDE) else s == INSIDE for s in self.status], dtype="boolean")
        return arr


def _inputs(smiles: Sequence[str], given) -> DomainInputs:
    """``given`` may be a ``DomainInputs``, a list of Morgan bits (older callers) or None."""
    if isinstance(given, DomainInputs):
        return given
    inputs = domain_inputs(list(smiles))
    if given is not None:
        inputs.bits = list(given)
    return inputs


def assess_without_domain(smiles: Sequence[str], inputs=None) -> DomainResult:
    """Rule flags only; status ``unknown`` for every parsable molecule (no domain data)."""
    inputs = _inputs(smiles, inputs)
    n = len(inputs.flags)
    flags = np.array([";".join(f) if f is not None else None for f in inputs.flags], dtype=object)
    status = np.array([UNKNOWN if f is not None else None for f in inputs.flags], dtype=object)
    return DomainResult(status, np.full(n, np.nan), np.full(n, np.nan), flags)


@dataclass(slots=True)
class ApplicabilityDomain:
    """Reference fingerprints (bit-packed), the similarity threshold and the descriptor box."""

    reference: np.ndarray
    """uint8 (n_ref, AD_BITS/8), ``np.packbits`` of the reference Morgan bit vectors."""
    threshold: float
    percentile: float = 5.0
    n_training: int = 0
    box_low: np.ndarray | None = None
    """Per ``BOX_DESCRIPTORS`` entry, the training set's low percentile (None: older bundle, no box)."""
    box_high: np.ndarray | None = None
    calibration_inside: float | None = None
    """Fraction of the calibration fold that is ``inside`` (recorded at fit time)."""
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
        mols = [_mol(s) for s in smiles]
        gen = _generator()
        bits = [list(gen.GetFingerprint(m).GetOnBits()) for m in mols if m is not None]
        dense = np.zeros((len(bits), AD_BITS), dtype=np.uint8)
        for i, b in enumerate(bits):
            dense[i, b] = 1
        desc = box_descriptors([m for m in mols if m is not None])
        low, high = (np.nanpercentile(desc, BOX_PERCENTILES[0], axis=0), np.nanpercentile(desc, BOX_PERCENTILES[1], axis=0)) \
            if len(desc) else (None, None)
        ad = cls(reference=np.packbits(dense, axis=1), threshold=0.0, percentile=percentile,
                 n_training=len(train_smiles), box_low=low, box_high=high)
        cal = ad.max_similarity(calibration_smiles) if len(calibration_smiles) else np.array([])
        cal = cal[np.isfinite(cal)]
        ad.threshold = float(np.percentile(cal, percentile)) if len(cal) else 0.0
        if len(calibration_smiles):
            status = ad.assess(list(calibration_smiles)).status
            parsed = status[status != None]  # noqa: E711 - object array
            ad.calibration_inside = float(np.mean(parsed == INSIDE)) if len(parsed) else None
        log.info("applicability domain: %d reference molecules, similarity threshold %.3f (%.0fth pct of %d "
                 "calibration nearest-neighbour similarities), %s of the calibration fold inside",
                 len(bits), ad.threshold, percentile, len(cal),
                 "n/a" if ad.calibration_inside is None else f"{ad.calibration_inside:.1%}")
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
        return self.similarities_bits(bits, block)[0]

    def similarities_bits(self, bits: Sequence[list[int] | None], block: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """(max similarity, mean of the ``KNN`` largest) per fingerprint (NaN where None)."""
        dense, counts = self._prepare()
        best_out, knn_out = np.full(len(bits), np.nan), np.full(len(bits), np.nan)
        if len(counts) == 0:
            return best_out, knn_out
        k = min(KNN, len(counts))
        for start in range(0, len(bits), block):
            chunk = bits[start:start + block]
            q = _bits_to_csr(chunk)
            # in place on the block's one float32 array (no second and third block-sized array); the
            # same float32 operations in the same order as computing union and sim separately
            sim = np.asarray(q @ dense, dtype=np.float32)  # shared on-bits
            qc = np.array([len(b) if b is not None else 0 for b in chunk], dtype=np.float32)
            union = qc[:, None] + counts[None, :]
            union -= sim
            np.divide(sim, union, out=sim, where=union > 0)  # union 0 only where both are empty: sim 0
            sim.partition(sim.shape[1] - k, axis=1)
            top = sim[:, -k:]
            valid = np.array([b is not None for b in chunk])
            best_out[start:start + len(chunk)] = np.where(valid, top.max(axis=1), np.nan)
            knn_out[start:start + len(chunk)] = np.where(valid, top.mean(axis=1), np.nan)
        return best_out, knn_out

    def in_domain(self, similarity: np.ndarray) -> np.ndarray:
        """The similarity signal alone: at or above the threshold."""
        return np.asarray(similarity) >= self.threshold

    def assess(self, smiles: Sequence[str], bits=None) -> DomainResult:
        """All three signals for each SMILES; ``bits``: its ``domain_inputs`` (or only ``morgan_on_bits``)."""
        inputs = _inputs(smiles, bits)
        best, knn = self.similarities_bits(inputs.bits)
        has_box = self.box_low is not None and self.box_high is not None
        names = list(BOX_DESCRIPTORS)
        n = len(inputs.bits)
        status, flags = np.full(n, None, dtype=object), np.full(n, None, dtype=object)
        outside_box = (inputs.descriptors < self.box_low) | (inputs.descriptors > self.box_high) if has_box else None
        for i in range(n):
            if inputs.flags[i] is None or not np.isfinite(best[i]):
                continue
            reasons = ["low_similarity"] if best[i] < self.threshold else []
            if has_box:
                reasons += [f"range:{names[j]}" for j in np.flatnonzero(outside_box[i])]
            reasons += inputs.flags[i]
            status[i] = OUTSIDE if reasons else INSIDE
            flags[i] = ";".join(reasons)
        return DomainResult(status, best, knn, flags)

    def save(self, path: Path) -> None:
        extra = {}
        if self.box_low is not None and self.box_high is not None:
            extra = {"box_low": np.asarray(self.box_low, float), "box_high": np.asarray(self.box_high, float),
                     "box_names": np.array(list(BOX_DESCRIPTORS))}
        if self.calibration_inside is not None:
            extra["calibration_inside"] = np.float64(self.calibration_inside)
        np.savez_compressed(path, reference=self.reference, threshold=np.float64(self.threshold),
                            percentile=np.float64(self.percentile),
                            n_training=np.int64(self.n_training), **extra)

    @classmethod
    def load(cls, path: Path) -> "ApplicabilityDomain":
        with np.load(path) as z:
            low = high = None
            if "box_low" in z and [str(v) for v in z["box_names"]] == list(BOX_DESCRIPTORS):
                low, high = z["box_low"], z["box_high"]
            inside = float(z["calibration_inside"]) if "calibration_inside" in z else None
            return cls(reference=z["reference"], threshold=float(z["threshold"]),
                       percentile=float(z["percentile"]), n_training=int(z["n_training"]),
                       box_low=low, box_high=high, calibration_inside=inside)
