"""Featurize chunks of SMILES, in this process or in a pool of worker processes.

Each SMILES is parsed once per chunk and handed to every featurizer of the spec. A worker keeps
its featurizer instances (and their RDKit generators) for its whole life, and returns compact
arrays (uint8/uint16 counts, float32 descriptors), not float64 rows.

Workers start with ``fork`` when this process runs a single thread (quickest: RDKit is already
imported), otherwise with ``forkserver`` (forked from a small server process that imported RDKit
once), which stays safe when the parent runs threads (Prefect, Dask, torch).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from pipelines.featurize.base import Featurizer, get_featurizer
from pipelines.procs import process_pool
from pipelines.standardize import parse_smiles

#: featurizers take any size of molecule (the screening size limit is a standardization rule)
_NO_SIZE_LIMIT = 100_000
#: what a ``forkserver`` imports once for its workers
PRELOAD = "pipelines.featurize.parallel"

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BlockResult:
    """One featurizer's output for one chunk."""

    values: np.ndarray
    """Compact rows ``(n, n_features)``; rows with ``ok=False`` hold zeros (or NaN)."""
    ok: np.ndarray
    """bool ``(n,)``: the molecule parsed and this featurizer succeeded."""


_WORKER_FEATURIZERS: dict[str, Featurizer] = {}


def _featurizer(name: str) -> Featurizer:
    """This process's instance of a registered featurizer (built once, generators reused)."""
    feat = _WORKER_FEATURIZERS.get(name)
    if feat is None:
        feat = get_featurizer(name)
        _WORKER_FEATURIZERS[name] = feat
    return feat


def featurize_chunk(smiles: list[object], names: tuple[str, ...]) -> list[BlockResult]:
    """Parse each SMILES once and run every named featurizer on it; one result per featurizer."""
    featurizers = [_featurizer(name) for name in names]
    n = len(smiles)
    blocks = [np.zeros((n, f.n_features), dtype=f.storage_dtype) for f in featurizers]
    oks = [np.zeros(n, dtype=bool) for _ in featurizers]
    n_failed = 0
    for i, text in enumerate(smiles):
        mol, _ = parse_smiles(text, max_heavy_atoms=_NO_SIZE_LIMIT)
        if mol is None:
            n_failed += 1
            continue
        for block, ok, feat in zip(blocks, oks, featurizers):
            try:
                block[i] = feat.featurize_mol(mol)
            except Exception as exc:  # noqa: BLE001 - one molecule never kills the batch
                log.debug("%s failed on %r: %s", feat.name, text, exc)
                continue
            ok[i] = True
    if n_failed:
        log.debug("%d of %d SMILES did not parse", n_failed, n)
    return [BlockResult(feat.compact(block), ok) for feat, block, ok in zip(featurizers, blocks, oks)]


class _Done:
    """A finished 'future' for work done in this process."""

    def __init__(self, value: list[BlockResult]) -> None:
        self._value = value

    def result(self) -> list[BlockResult]:
        return self._value


def run_chunks(
    jobs: Iterable[tuple[object, list[object], tuple[str, ...]]],
    n_jobs: int,
    max_in_flight: int | None = None,
) -> Iterator[tuple[object, list[BlockResult]]]:
    """Featurize ``(tag, smiles, names)`` jobs; yield ``(tag, results)`` in input order.

    At most ``max_in_flight`` jobs are queued at once, so a stream of chunks is processed in
    bounded memory. With ``n_jobs == 1`` everything runs in this process.
    """
    if n_jobs <= 1:
        for tag, smiles, names in jobs:
            yield tag, featurize_chunk(smiles, names) if names and smiles else []
        return
    limit = max_in_flight or 2 * n_jobs
    pending: deque[tuple[object, Future | _Done]] = deque()
    with process_pool(n_jobs, preload=PRELOAD) as executor:
        for tag, smiles, names in jobs:
            if names and smiles:
                pending.append((tag, executor.submit(featurize_chunk, smiles, names)))
            else:
                pending.append((tag, _Done([])))
            while len(pending) >= limit:
                done_tag, future = pending.popleft()
                yield done_tag, future.result()
        while pending:
            done_tag, future = pending.popleft()
            yield done_tag, future.result()
