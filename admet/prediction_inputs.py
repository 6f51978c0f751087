"""What a model bundle needs to predict standardized SMILES, each molecule parsed once.

Every prediction entry point goes through :func:`featurize_for_prediction` (or its pooled form
:func:`prediction_inputs`) and then ``ModelBundle.predict_inputs``: ``ModelBundle.predict_smiles``,
the streamed ``fedadmet admet predict`` workers (``admet.predict``), and the screening flow's
featurize / predict chunk tasks (``flows.screening_steps``; ``fedadmet screen`` and the served
watched-folder deployments run that flow). The result, :class:`PredictionInputs`, holds the raw
feature rows, the valid mask, the applicability-domain inputs and the physicochemical columns of
``pipelines.physchem``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from admet.domain import AD_BITS, AD_RADIUS, BOX_DESCRIPTORS, DomainInputs, domain_inputs_from_mols
from pipelines.physchem import PHYSCHEM_COLUMNS, physchem_frame

#: featurizers take any size of molecule (the screening size limit is a standardization rule)
_NO_SIZE_LIMIT = 100_000
#: Rows per worker task when :func:`prediction_inputs` uses a pool.
POOL_BLOCK = 500

#: physchem column -> the rdkit2d descriptor computed by the same RDKit function (``pipelines.physchem``;
#: value-exact, ``tests/unit/admet/test_predict_single_pass.py``)
_PHYSCHEM_FROM_RDKIT2D = {"MW": "MolWt", "cLogP": "MolLogP", "TPSA": "TPSA", "HBD": "NumHDonors",
                          "HBA": "NumHAcceptors", "rotatable_bonds": "NumRotatableBonds", "QED": "qed"}


@dataclass(slots=True)
class PredictionInputs:
    """Rows aligned with the standardized SMILES they were computed from."""

    X: np.ndarray
    """float32 ``(n, n_features)`` raw (unscaled) features; NaN where a featurizer failed."""
    valid: np.ndarray
    """bool ``(n,)``: every featurizer succeeded (only these rows are predicted)."""
    domain: DomainInputs
    """Applicability-domain inputs (fingerprint bits, descriptor box values, rule flags)."""
    physchem: np.ndarray
    """float64 ``(n, len(PHYSCHEM_COLUMNS))``; NaN on invalid rows."""

    def __len__(self) -> int:
        return len(self.valid)

    @classmethod
    def concat(cls, parts: Sequence["PredictionInputs"]) -> "PredictionInputs":
        """Blocks of one list, in order, joined."""
        if len(parts) == 1:
            return parts[0]
        return cls(np.concatenate([p.X for p in parts]), np.concatenate([p.valid for p in parts]),
                   DomainInputs([b for p in parts for b in p.domain.bits],
                                np.concatenate([p.domain.descriptors for p in parts]),
                                [f for p in parts for f in p.domain.flags]),
                   np.concatenate([p.physchem for p in parts]))


def _physchem_from_descriptors(values: dict[str, np.ndarray], n: int) -> np.ndarray:
    """``physchem_frame``'s columns from rdkit2d's float64 values: a row is NaN where any value but QED
    is (``physchem_frame`` leaves a row NaN when a descriptor fails, QED alone when only QED does)."""
    out = np.full((n, len(PHYSCHEM_COLUMNS)), np.nan)
    for j, col in enumerate(PHYSCHEM_COLUMNS):
        if col in _PHYSCHEM_FROM_RDKIT2D:
            out[:, j] = values[_PHYSCHEM_FROM_RDKIT2D[col]]
    mw, logp, hbd, hba = (out[:, PHYSCHEM_COLUMNS.index(c)] for c in ("MW", "cLogP", "HBD", "HBA"))
    out[:, PHYSCHEM_COLUMNS.index("lipinski_violations")] = (
        (mw > 500).astype(int) + (logp > 5) + (hbd > 5) + (hba > 10))
    others = [j for j, c in enumerate(PHYSCHEM_COLUMNS) if c != "QED"]
    out[np.isnan(out[:, others]).any(axis=1)] = np.nan
    return out


def featurize_for_prediction(smiles: Sequence[str], spec: str) -> PredictionInputs:
    """:class:`PredictionInputs` of standardized SMILES, in this process, each molecule parsed once.

    ``X`` and ``valid`` equal ``featurize_smiles(smiles, spec, n_jobs=1)`` bit for bit (the same parser,
    featurizers, order and storage dtypes as ``pipelines.featurize.parallel.featurize_chunk``). What the
    domain and the physchem columns need is read off the same work where the spec has it: the domain's
    fingerprint bits are the non-zero bins of a Morgan count featurizer with the domain's radius and
    size, and the descriptor box and physchem values are rdkit2d's float64 values (the same RDKit
    functions) before the float32 storage; anything the spec lacks is computed from the parsed molecule.
    Measured on the shipped model's spec (1,000 MOSES molecules, one core, CPU time): physchem
    (1.9 ms/molecule, mostly QED) and the domain inputs (0.7 ms) were computed apart, each parsing again,
    next to 6.4 ms of featurization.
    """
    from pipelines.featurize.base import get_featurizer, parse_spec
    from pipelines.featurize.fingerprints import MorganCountFeaturizer
    from pipelines.featurize.rdkit2d import RDKit2DFeaturizer
    from pipelines.standardize import parse_smiles

    smiles = list(smiles)
    featurizers = [get_featurizer(name) for name in parse_spec(spec)]
    n = len(smiles)
    blocks = [np.zeros((n, f.n_features), dtype=f.storage_dtype) for f in featurizers]
    oks = [np.zeros(n, dtype=bool) for _ in featurizers]
    morgan = next((k for k, f in enumerate(featurizers) if isinstance(f, MorganCountFeaturizer)
                   and (f.radius, f.n_bits) == (AD_RADIUS, AD_BITS)), None)
    desc = next((k for k, f in enumerate(featurizers) if isinstance(f, RDKit2DFeaturizer)), None)
    wanted = [name for name in dict.fromkeys([*BOX_DESCRIPTORS, *_PHYSCHEM_FROM_RDKIT2D.values()])
              if desc is not None and name in featurizers[desc].names]
    columns = [featurizers[desc].names.index(name) for name in wanted] if wanted else []
    raw = np.full((n, len(wanted)), np.nan)
    mols: list = [None] * n
    for i, text in enumerate(smiles):
        mol, _ = parse_smiles(text, max_heavy_atoms=_NO_SIZE_LIMIT)
        if mol is None:
            continue
        mols[i] = mol
        for k, (block, ok, feat) in enumerate(zip(blocks, oks, featurizers)):
            try:
                values = feat.featurize_mol(mol)
                block[i] = values
            except Exception:  # noqa: BLE001 - one molecule never kills the chunk (as featurize_chunk)
                continue
            ok[i] = True
            if k == desc and columns:
                raw[i] = np.asarray(values, dtype=np.float64)[columns]
    X = np.empty((n, sum(f.n_features for f in featurizers)), dtype=np.float32)
    valid = np.ones(n, dtype=bool)
    start = 0
    for feat, block, ok in zip(featurizers, blocks, oks):
        cols = slice(start, start + feat.n_features)
        X[:, cols] = feat.compact(block)
        X[~ok, cols] = np.nan
        valid &= ok
        start += feat.n_features
    known = {name: raw[:, j] for j, name in enumerate(wanted)}
    bits = None
    if morgan is not None:
        counts, ok_m = blocks[morgan], oks[morgan]
        bits = [np.flatnonzero(counts[i]).tolist() if ok_m[i] else None for i in range(n)]
    dom = domain_inputs_from_mols(mols, bits, {k: v for k, v in known.items() if k in BOX_DESCRIPTORS})
    if all(name in known for name in _PHYSCHEM_FROM_RDKIT2D.values()):
        phys = _physchem_from_descriptors(known, n)
    else:
        phys = np.array(physchem_frame(smiles).to_numpy(float))  # a writable copy
    # rows a featurizer failed on are never predicted; their physchem is blank in every output
    phys[~valid] = np.nan
    return PredictionInputs(X, valid, dom, phys)


def prediction_inputs(smiles: Sequence[str], spec: str, n_jobs: int | None = 1) -> PredictionInputs:
    """:func:`featurize_for_prediction` over ``n_jobs`` worker processes (None: the cores this process
    may use) in blocks of ``POOL_BLOCK`` rows; the same result as in one process. A list of at most
    one block, or one worker, stays in this process (starting a pool costs more than it saves)."""
    from pipelines.featurize.parallel import PRELOAD
    from pipelines.procs import process_pool, resolve_n_jobs

    smiles = list(smiles)
    workers = min(resolve_n_jobs(n_jobs), math.ceil(len(smiles) / POOL_BLOCK))
    if workers <= 1:
        return featurize_for_prediction(smiles, spec)
    with process_pool(workers, preload=PRELOAD) as pool:
        futures = [pool.submit(featurize_for_prediction, smiles[s:s + POOL_BLOCK], spec)
                   for s in range(0, len(smiles), POOL_BLOCK)]
        return PredictionInputs.concat([f.result() for f in futures])


def separate_steps_predict_smiles(bundle, inputs: list):
    """Reference, not a prediction path: ``ModelBundle.predict_smiles`` as the separate steps gave it before
    the one path (``featurize_smiles``, then ``predict_features`` recomputing the domain inputs from the SMILES:
    a second and a third RDKit parse). Kept, like ``descriptors2d.naive_descriptors_2d``, so the equality test
    and the before/after benchmark (``bench/admet_throughput.py --predict-path``) compare with one copy of it."""
    import pandas as pd

    from admet.bundle import FEATURIZATION_FAILED
    from pipelines.featurize import featurize_smiles
    from pipelines.standardize import standardize_many

    std = standardize_many(inputs, with_inchikey=False)
    ok = np.array([i for i, s in enumerate(std) if s.ok], dtype=int)
    ok_smiles = [std[i].smiles for i in ok]
    fm = featurize_smiles(ok_smiles, spec=bundle.featurizer_spec, n_jobs=1)
    preds = bundle.predict_features(fm.X, ok_smiles, fm.valid)
    preds.index = ok
    head = pd.DataFrame({"input": pd.Series(inputs, dtype=object),
                         "smiles": pd.Series([s.smiles if s.ok else None for s in std], dtype=object),
                         "status": "rejected",  # pandas' own string dtype, as predict_smiles always gave
                         "reason": pd.Series([str(s.reason.value) if s.reason else "" for s in std], dtype=object)})
    head.loc[ok[fm.valid], "status"] = "ok"
    head.loc[ok[~fm.valid], "reason"] = FEATURIZATION_FAILED
    return pd.concat([head, preds.reindex(pd.RangeIndex(len(inputs)))], axis=1)
