"""On-disk feature cache: one folder per featurizer configuration, rows keyed by SMILES.

Layout: ``<cache_dir>/<featurizer name>-<config hash>/`` holds ``config.json`` (the featurizer's
full config) and shards, each three ``.npy`` files written by one call: ``<id>.x.npy`` (compact
rows), ``<id>.ok.npy`` (featurizer succeeded) and ``<id>.keys.npy`` (64-bit hashes of the SMILES
text, see :func:`smiles_keys`; written last and atomically: a shard without keys does not exist
for readers).

Keys are the SMILES *text* as given. The pipeline passes standardized canonical SMILES (from
``pipelines.standardize``), so one molecule maps to one key; another spelling of the same molecule
is simply a cache miss, never a wrong hit. A different featurizer config (radius, size, RDKit or
DeepChem version) is a different folder. 64-bit keys: the chance of any collision among 10
million molecules is about 3e-6.

Lookups load only the small key files, sort them once, and gather hit rows from memory-mapped
shards; a second run over the same library therefore reads compact arrays instead of parsing
and featurizing again. Writers only ever add new shards, so several processes may share a cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from pathlib import Path

import numpy as np

from pipelines.featurize.base import Featurizer

log = logging.getLogger(__name__)


_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def _mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads every input bit over the whole 64-bit key."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def smiles_keys(smiles: list[object]) -> np.ndarray:
    """uint64 key per SMILES: FNV-1a over the stripped ASCII text and its length, then mixed.

    Vectorised over the chunk (a per-string Python hash costs more than reading the cache).
    Non-strings hash as the empty string; non-ASCII text is hashed with BLAKE2b instead.
    """
    texts = [s.strip() if type(s) is str else (s.strip() if isinstance(s, str) else "") for s in smiles]
    if not texts:
        return np.empty(0, dtype=np.uint64)
    foreign = [i for i, t in enumerate(texts) if not t.isascii()]
    for i in foreign:
        texts[i] = ""
    raw = np.array(texts, dtype=np.bytes_)
    width = raw.dtype.itemsize
    codes = raw.view(np.uint8).reshape(len(texts), width) if width else np.zeros((len(texts), 0), np.uint8)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    h = np.full(len(texts), _FNV_OFFSET, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in range(width):
            live = lengths > col
            mixed = (h ^ codes[:, col].astype(np.uint64)) * _FNV_PRIME
            h = np.where(live, mixed, h)
        h = _mix64(h ^ lengths.astype(np.uint64))
    for i in foreign:  # rare: hash the UTF-8 bytes instead, one string at a time
        text = smiles[i].strip()  # type: ignore[union-attr]
        h[i] = np.frombuffer(hashlib.blake2b(text.encode(), digest_size=8).digest(), dtype="<u8")[0]
    return h


class FeatureCache:
    """The cache of one featurizer configuration under ``root``."""

    def __init__(self, root: str | os.PathLike[str], featurizer: Featurizer) -> None:
        self.featurizer = featurizer
        self.folder = Path(root) / f"{featurizer.name}-{featurizer.config_hash()}"
        self.folder.mkdir(parents=True, exist_ok=True)
        config_path = self.folder / "config.json"
        if not config_path.exists():
            tmp = config_path.with_suffix(f".{uuid.uuid4().hex}.tmp")
            tmp.write_text(json.dumps(featurizer.config(), indent=2, sort_keys=True))
            os.replace(tmp, config_path)
        self._keys = np.empty(0, dtype=np.uint64)
        self._shard = np.empty(0, dtype=np.int32)
        self._row = np.empty(0, dtype=np.int64)
        self._shard_ids: list[str] = []
        self._loaded: set[str] = set()
        self._refresh()

    # -- index -------------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Add shards written since the last look (by this or another process) to the index."""
        new = sorted(
            p.name[: -len(".keys.npy")] for p in self.folder.glob("*.keys.npy")
            if p.name[: -len(".keys.npy")] not in self._loaded
        )
        if not new:
            return
        keys, shard, row = [self._keys], [self._shard], [self._row]
        for shard_id in new:
            try:
                shard_keys = np.load(self.folder / f"{shard_id}.keys.npy")
            except (OSError, ValueError) as exc:
                log.warning("skipping unreadable cache shard %s: %s", shard_id, exc)
                self._loaded.add(shard_id)
                continue
            index = len(self._shard_ids)
            self._shard_ids.append(shard_id)
            self._loaded.add(shard_id)
            keys.append(shard_keys.astype(np.uint64, copy=False))
            shard.append(np.full(len(shard_keys), index, dtype=np.int32))
            row.append(np.arange(len(shard_keys), dtype=np.int64))
        all_keys = np.concatenate(keys)
        order = np.argsort(all_keys, kind="stable")
        all_keys = all_keys[order]
        first = np.ones(len(all_keys), dtype=bool)
        first[1:] = all_keys[1:] != all_keys[:-1]
        self._keys = all_keys[first]
        self._shard = np.concatenate(shard)[order][first]
        self._row = np.concatenate(row)[order][first]

    def __len__(self) -> int:
        return len(self._keys)

    def _positions(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not len(self._keys):
            return np.zeros(len(keys), dtype=bool), np.zeros(len(keys), dtype=np.int64)
        pos = np.searchsorted(self._keys, keys)
        pos_clipped = np.minimum(pos, len(self._keys) - 1)
        hit = self._keys[pos_clipped] == keys
        return hit, pos_clipped

    # -- read / write ------------------------------------------------------------------------
    def lookup_parts(self, keys: np.ndarray) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        """``(hit, parts)``: hit mask over ``keys``, and per shard ``(query rows, values, ok)``.

        ``values``/``ok`` may be views of memory-mapped shard files (read them, don't keep them).
        """
        self._refresh()
        hit, pos = self._positions(keys)
        query_rows = np.flatnonzero(hit)
        if not len(query_rows):
            return hit, []
        hit_pos = pos[query_rows]
        shards = self._shard[hit_pos]
        rows = self._row[hit_pos]
        parts = []
        for index in np.unique(shards):
            shard_id = self._shard_ids[int(index)]
            take = np.flatnonzero(shards == index) if len(np.unique(shards)) > 1 else np.arange(len(shards))
            x = np.load(self.folder / f"{shard_id}.x.npy", mmap_mode="r")
            ok = np.load(self.folder / f"{shard_id}.ok.npy", mmap_mode="r")
            src = rows[take]
            if _is_range(src):
                x_part, ok_part = x[src[0]:src[-1] + 1], ok[src[0]:src[-1] + 1]
            else:
                x_part, ok_part = x[src], ok[src]
            parts.append((query_rows[take], x_part, ok_part))
        return hit, parts

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(hit, values, ok)``: hit mask over ``keys``; values/ok rows for the hits, in order."""
        hit, parts = self.lookup_parts(keys)
        n_hits = int(hit.sum())
        dtype = np.result_type(*(p[1].dtype for p in parts)) if parts else self.featurizer.storage_dtype
        values = np.empty((n_hits, self.featurizer.n_features), dtype=dtype)
        oks = np.empty(n_hits, dtype=bool)
        rank = np.cumsum(hit) - 1  # query row -> position among the hits
        for query_rows, x_part, ok_part in parts:
            values[rank[query_rows]] = x_part
            oks[rank[query_rows]] = ok_part
        return hit, values, oks

    def store(self, keys: np.ndarray, values: np.ndarray, ok: np.ndarray) -> int:
        """Add rows whose keys are not cached yet; returns how many were written."""
        if len(keys) != len(values) or len(keys) != len(ok):
            raise ValueError("keys, values and ok must have the same length")
        self._refresh()
        hit, _ = self._positions(keys)
        _, first = np.unique(keys, return_index=True)
        fresh = np.zeros(len(keys), dtype=bool)
        fresh[first] = True
        fresh &= ~hit
        if not fresh.any():
            return 0
        shard_id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._write(self.folder / f"{shard_id}.x.npy", np.ascontiguousarray(values[fresh]))
        self._write(self.folder / f"{shard_id}.ok.npy", np.ascontiguousarray(ok[fresh]))
        self._write(self.folder / f"{shard_id}.keys.npy", np.ascontiguousarray(keys[fresh]))
        self._refresh()
        n = int(fresh.sum())
        log.debug("cached %d rows for %s in shard %s", n, self.featurizer.name, shard_id)
        return n

    @staticmethod
    def _write(path: Path, array: np.ndarray) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as handle:
            np.save(handle, array)
        os.replace(tmp, path)


def _is_range(idx: np.ndarray) -> bool:
    """True when ``idx`` is ``start, start+1, ..., stop`` (then a slice replaces fancy indexing)."""
    return len(idx) > 0 and int(idx[-1]) - int(idx[0]) + 1 == len(idx) and bool(np.all(np.diff(idx) == 1))
