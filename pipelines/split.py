"""Train/valid/test splits that never put one compound (or, for scaffold splits, one scaffold) in two folds.

Every split works on *groups*: rows sharing a key (InChIKey, or canonical SMILES when no key is given)
always land in the same fold. ``scaffold_split`` additionally joins rows sharing a Bemis-Murcko
scaffold (union-find over key and scaffold, so tautomers with one InChIKey but two scaffold drawings
still stay together). Group placement, as in chemprop / TDC's balanced scaffold split: groups larger
than half the valid or test size go first, largest first (they can only fit in train); the rest follow
in a seeded random order; each group goes to train while it fits, else valid, else test.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold

from pipelines.errors import InputError
from pipelines.procs import process_pool, resolve_n_jobs

log = logging.getLogger(__name__)

FOLDS: tuple[str, str, str] = ("train", "valid", "test")


def scaffold_of(smiles: str, generic: bool = False) -> str:
    """Bemis-Murcko scaffold SMILES (``""`` for acyclic molecules; ``"!" + smiles`` if unparsable).

    ``generic=True`` gives the element- and bond-agnostic framework (coarser groups). Results are
    memoised (a pure function of its arguments; bounded cache), since splits and partitions of one
    table ask for the same scaffolds repeatedly.
    """
    return _scaffold(smiles, generic) if isinstance(smiles, str) else f"!{smiles}"


@functools.lru_cache(maxsize=250_000)
def _scaffold(smiles: str, generic: bool) -> str:
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return f"!{smiles}"
    try:
        core = MurckoScaffold.GetScaffoldForMol(mol)
        if generic:
            core = MurckoScaffold.MakeScaffoldGeneric(core)
        return Chem.MolToSmiles(core) if core.GetNumAtoms() else ""
    except Exception:  # noqa: BLE001 - an RDKit failure makes the molecule its own group
        return f"!{smiles}"


PARALLEL_MIN = 4000
_CHUNK = 1000


def _scaffold_chunk(args: tuple[list[str], bool]) -> list[str]:
    chunk, generic = args
    return [scaffold_of(s, generic) for s in chunk]


def scaffolds_of(smiles: Sequence[str], generic: bool = False, n_jobs: int | None = 1) -> list[str]:
    """``scaffold_of`` for many molecules; ``n_jobs`` worker processes from ``PARALLEL_MIN`` distinct
    molecules up (None: every core)."""
    unique = list(dict.fromkeys(str(s) for s in smiles))
    jobs = resolve_n_jobs(n_jobs)
    if jobs > 1 and len(unique) >= PARALLEL_MIN:
        chunks = [unique[i:i + _CHUNK] for i in range(0, len(unique), _CHUNK)]
        with process_pool(jobs, preload="pipelines.split") as pool:
            results = pool.map(_scaffold_chunk, ((c, generic) for c in chunks))
            done = {s: r for c, rs in zip(chunks, results, strict=True) for s, r in zip(c, rs, strict=True)}
    else:
        done = {s: scaffold_of(s, generic) for s in unique}
    return [done[str(s)] for s in smiles]


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise InputError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    return float(fractions[0]), float(fractions[1]), float(fractions[2])


def _group_ids(*keys: Sequence[str]) -> np.ndarray:
    """Connected components over rows that share any of the given keys (union-find)."""
    n = len(keys[0])
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for key in keys:
        first: dict[str, int] = {}
        for i, k in enumerate(key):
            j = first.setdefault(k, i)
            if j != i:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[ri] = rj
    roots = [find(i) for i in range(n)]
    return pd.factorize(np.asarray(roots))[0]


def _assign_groups(groups: np.ndarray, fractions: tuple[float, float, float], seed: int,
                   balanced: bool) -> np.ndarray:
    n = len(groups)
    members = pd.Series(np.arange(n)).groupby(groups).apply(list).tolist()
    train_size, valid_size = fractions[0] * n, fractions[1] * n
    test_size = n - train_size - valid_size
    rng = np.random.default_rng(seed)
    if balanced:
        big = [m for m in members if len(m) > valid_size / 2 or len(m) > test_size / 2]
        small = [m for m in members if not (len(m) > valid_size / 2 or len(m) > test_size / 2)]
        big.sort(key=lambda m: (-len(m), m[0]))
        order = big + [small[i] for i in rng.permutation(len(small))]
    else:
        order = [members[i] for i in rng.permutation(len(members))]
    fold = np.empty(n, dtype=object)
    n_train = n_valid = 0
    for m in order:
        if n_train + len(m) <= train_size + 1e-9:
            fold[m], n_train = "train", n_train + len(m)
        elif n_valid + len(m) <= valid_size + 1e-9:
            fold[m], n_valid = "valid", n_valid + len(m)
        else:
            fold[m] = "test"
    return fold.astype(str)


def _keys_or_smiles(smiles: Sequence[str], keys: Sequence[str] | None) -> list[str]:
    if keys is None:
        return [str(s) for s in smiles]
    if len(keys) != len(smiles):
        raise InputError(f"{len(keys)} keys for {len(smiles)} molecules")
    return [str(k) for k in keys]


def scaffold_split(smiles: Sequence[str], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                   keys: Sequence[str] | None = None, scaffolds: Sequence[str] | None = None,
                   n_jobs: int | None = 1) -> np.ndarray:
    """Balanced Bemis-Murcko scaffold split -> array of ``train``/``valid``/``test`` per row.

    ``keys`` (InChIKeys) keep replicate rows together; ``scaffolds`` may be passed when precomputed.
    """
    fr = _check_fractions(fractions)
    if len(smiles) == 0:
        return np.array([], dtype=str)
    scaf = list(scaffolds) if scaffolds is not None else scaffolds_of(smiles, n_jobs=n_jobs)
    ids = _keys_or_smiles(smiles, keys)
    groups = _group_ids(ids, scaf)
    fold = _assign_groups(groups, fr, seed, balanced=True)
    log.debug("scaffold split of %d rows into %d groups: %s", len(smiles), groups.max() + 1,
              dict(zip(*np.unique(fold, return_counts=True), strict=True)))
    return fold


def random_split(keys: Sequence[str] | int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
                 ) -> np.ndarray:
    """Seeded random split; rows with the same key (InChIKey) share a fold. An int means n unique rows."""
    fr = _check_fractions(fractions)
    ids = [str(i) for i in range(keys)] if isinstance(keys, int) else [str(k) for k in keys]
    if not ids:
        return np.array([], dtype=str)
    return _assign_groups(_group_ids(ids), fr, seed, balanced=False)


def temporal_split(dates: Sequence[object], fractions: Sequence[float] = (0.8, 0.1, 0.1),
                   keys: Sequence[str] | None = None) -> np.ndarray:
    """Oldest rows to train, newest to test. A compound measured at several dates goes by its first date."""
    fr = _check_fractions(fractions)
    parsed = pd.to_datetime(pd.Series(list(dates)), errors="coerce", format="mixed")
    bad = int(parsed.isna().sum())
    if bad:
        raise InputError(f"temporal split: {bad} of {len(parsed)} rows have no usable date")
    n = len(parsed)
    if n == 0:
        return np.array([], dtype=str)
    ids = [str(i) for i in range(n)] if keys is None else [str(k) for k in keys]
    first = parsed.groupby(pd.Series(ids)).transform("min")
    order = np.lexsort((np.asarray(ids), first.to_numpy()))
    fold = np.empty(n, dtype=object)
    n_train = fr[0] * n
    n_valid = fr[1] * n
    done, current = 0, 0
    # walk groups in date order; a group never straddles a boundary
    key_arr = np.asarray(ids)[order]
    start = 0
    while start < n:
        end = start
        while end < n and key_arr[end] == key_arr[start]:
            end += 1
        size = end - start
        if done + size <= n_train + 1e-9 and current == 0:
            label = "train"
        elif done + size <= n_train + n_valid + 1e-9 and current <= 1:
            label, current = "valid", 1
        else:
            label, current = "test", 2
        fold[order[start:end]] = label
        done += size
        start = end
    return fold.astype(str)


def split_by_key(keys: Sequence[str], fold_of_key: dict[str, str], default: str = "train") -> np.ndarray:
    """Fold of each row from a key -> fold mapping (unknown keys get ``default``)."""
    return np.asarray([fold_of_key.get(str(k), default) for k in keys], dtype=str)


#: The key of simulated consortia's folds. Public on purpose: a simulation has every partner's rows in
#: one place anyway. A real consortium's operator hands every partner its own secret (``--fold-secret``).
SIMULATION_FOLD_SECRET = b"fedadmet-simulation-fold-key"


def keyed_fold(key: str, secret: bytes, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> str:
    """``train`` / ``valid`` / ``test`` from HMAC-SHA256(secret, key): the first 8 bytes as a number in
    [0, 1) against the cumulative fractions. The same key and secret give the same fold anywhere."""
    fr = _check_fractions(fractions)
    digest = hmac.new(secret, key.encode("utf-8"), hashlib.sha256).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    return FOLDS[0] if u < fr[0] else FOLDS[1] if u < fr[0] + fr[1] else FOLDS[2]


#: Bemis-Murcko scaffolds that name no chemical series: none (acyclic) and a lone benzene ring, shared by
#: unrelated molecules (10% of the embedded catalog's compounds have the benzene scaffold).
TRIVIAL_SCAFFOLDS = frozenset({"", "c1ccccc1"})


def series_key(scaffold: str, smiles: str) -> str:
    """The group a molecule is kept with (one fold, one simulated partner): its scaffold, or the molecule
    itself when the scaffold is trivial (``TRIVIAL_SCAFFOLDS``)."""
    if scaffold not in TRIVIAL_SCAFFOLDS:
        return f"scaffold:{scaffold}"
    return f"acyclic:{smiles}" if not scaffold else f"molecule:{smiles}"


def keyed_scaffold_folds(smiles: Sequence[str], secret: bytes, fractions: Sequence[float] = (0.8, 0.1, 0.1),
                         n_jobs: int | None = 1) -> np.ndarray:
    """Consortium-consistent folds, as MELLODDY assigned them: the fold of a molecule is the keyed hash
    (:func:`keyed_fold`) of its Bemis-Murcko scaffold, so one scaffold lands in the same fold at
    every partner holding the secret, and no partner shares a structure to agree on it. Molecules with
    a trivial scaffold (none, or a lone benzene ring: :func:`series_key`) are keyed by their own
    (standardized) SMILES; keyed by scaffold, every monosubstituted benzene of the consortium fell in one fold.

    Unlike :func:`scaffold_split`, fold sizes are only expected to match ``fractions``: a small
    partner can end up with few or no valid / test rows."""
    if not secret:
        raise InputError("the fold secret is empty")
    scaffolds = scaffolds_of(smiles, n_jobs=n_jobs)
    keys = [series_key(s, m) for s, m in zip(scaffolds, smiles, strict=True)]
    return np.asarray([keyed_fold(k, secret, fractions) for k in keys], dtype=object)


def fold_secret_fingerprint(secret: bytes) -> str:
    """A short public check value of a fold secret (partners compare it to see they hold the same
    secret without revealing it)."""
    return hmac.new(secret, b"fedadmet fold secret check", hashlib.sha256).hexdigest()[:16]
