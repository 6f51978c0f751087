"""Partition a pooled long table into N simulated consortium partners (non-IID, reproducible by seed).

How a partition is drawn (``partition_partners``):

1. **Task skew.** Each partner measures a random subset of the endpoints: its size is uniform in
   ``[min_endpoints, n_endpoints]``; every endpoint is then measured by at least
   ``min(min_partners_per_endpoint, n_partners)`` partners (added to the partners measuring the fewest).
2. **Quantity skew.** Partner sizes ``q ~ LogNormal(0, quantity_sigma)``, normalised to sum to 1.
3. **Chemical (scaffold) skew.** Compounds are grouped by Bemis-Murcko scaffold (a compound whose scaffold
   is trivial, none or a lone benzene ring, is its own group: ``pipelines.split.series_key``; grouped, the
   benzene scaffold made one partner 70% monosubstituted benzenes, all in one fold). Each scaffold cluster
   draws its own partner proportions ``p ~ Dirichlet(alpha * n_partners * q)`` (mean ``q``; smaller
   ``alpha`` = each chemical series concentrated in fewer partners).
4. Each compound goes to one partner, drawn with weight ``p[partner] * overlap``, where ``overlap`` is
   the fraction of the compound's endpoints that the partner measures, so no compound is in two
   partners. Measurements of endpoints its partner does not measure are dropped (that is what task
   skew means) and counted in the manifest (``dropped_rows``).
5. **Usability repair.** A partner with fewer than ``min_rows`` rows receives compounds (that carry its
   endpoints) from the largest partners until it has enough; an input too small for that is an
   ``InputError``.
6. **Scorable partners** (``min_endpoint_rows`` > 0, best effort). A partner whose best-covered endpoint has
   fewer rows than that receives compounds labelled on one of its endpoints (the one it holds most of
   first), from the partners holding most of them, as long as each donor keeps ``min_rows`` rows and its
   own floor (a donor below the floor gives only compounds whose rows it drops anyway). A binary endpoint
   (values all 0 / 1) counts at most ``MINORITY_FACTOR`` x its rows of the endpoint's rarer class, and while
   that class is what holds it back the partner receives compounds of that class: 100 rows of Tox21's
   PPAR-gamma (about 3% active) left one partner of the full-catalog run with a one-class test fold. Given
   the key of the partners' keyed folds (``fold_secret``: a simulation's public key), an endpoint also counts
   at most ``TEST_FACTOR`` x its test-fold labels (rarer class capped the same way), and a partner held back
   there receives test-fold compounds: the same partner, with 25 actives, still drew 3 test compounds. A partner the pool cannot bring to the floor keeps what it has (a warning names it). Without
   it, 2 of 20 partners of the catalog held 1 and 3 test compounds and could not be scored at all.

``write_partition`` writes ``partner_XX/data.csv`` (K-MELLODDY layout), ``manifest.csv`` (one row per
partner: rows, compounds, rows per endpoint) and ``manifest.json`` (the resolved config and the same
counts). ``read_partition`` reads it back.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.catalog import LONG_COLUMNS
from pipelines.errors import InputError
from pipelines.measurements import RELATIONS
from pipelines.readers import read_long_table, write_kmelloddy
from pipelines.split import scaffolds_of, series_key

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PartitionConfig:
    """The resolved settings of one partition (written to ``manifest.json``)."""

    n_partners: int = 20
    """Number of partners (ids ``partner_00`` ...)."""
    alpha: float = 0.5
    """Dirichlet concentration per scaffold cluster; smaller = more chemically skewed partners."""
    seed: int = 0
    """Seed of every random draw."""
    min_endpoints: int = 1
    """Fewest endpoints a partner measures."""
    quantity_sigma: float = 0.8
    """Log-normal sigma of partner sizes (0 = equal sizes)."""
    min_rows: int = 30
    """Fewest rows a partner may end with."""
    min_partners_per_endpoint: int = 2
    """Every endpoint is measured by at least this many partners (capped at ``n_partners``)."""
    min_endpoint_rows: int = 0
    """Best effort (every simulated consortium the product builds uses ``pipelines.partition_defaults.SCORABLE_ENDPOINT_ROWS``): every partner holds at least this many rows of one endpoint it measures, so its ~10%
    test fold has enough labels to score it (0 = off). See step 6 of the module docstring."""

    def validate(self, n_endpoints: int) -> None:
        """Raise ``InputError`` for settings that cannot work."""
        if self.n_partners < 1:
            raise InputError(f"n_partners must be >= 1, got {self.n_partners}")
        if not self.alpha > 0:
            raise InputError(f"alpha must be > 0, got {self.alpha}")
        if not 1 <= self.min_endpoints <= max(1, n_endpoints):
            raise InputError(f"min_endpoints must be between 1 and the {n_endpoints} endpoints, "
                             f"got {self.min_endpoints}")
        if self.quantity_sigma < 0 or self.min_rows < 0 or self.min_endpoint_rows < 0:
            raise InputError("quantity_sigma, min_rows and min_endpoint_rows must be >= 0")


@dataclass(slots=True)
class PartnerPartition:
    """Partner tables and their manifest."""

    tables: dict[str, pd.DataFrame]
    """partner id -> its private long table (``LONG_COLUMNS``)."""
    manifest: pd.DataFrame
    """One row per partner: ``partner, n_rows, n_compounds, n_endpoints`` + rows per endpoint."""
    config: PartitionConfig = field(default_factory=PartitionConfig)
    """The settings used."""
    dropped_rows: int = 0
    """Input rows not kept because the compound's partner does not measure that endpoint."""
    input_rows: int = 0
    """Rows of the pooled table."""

    @property
    def partner_ids(self) -> list[str]:
        """Partner ids in order."""
        return list(self.tables)


def partner_id(index: int) -> str:
    """``partner_07`` for index 7."""
    return f"partner_{index:02d}"


def _task_skew(endpoints: list[str], cfg: PartitionConfig, rng: np.random.Generator) -> np.ndarray:
    n_e = len(endpoints)
    measures = np.zeros((cfg.n_partners, n_e), dtype=bool)
    for p in range(cfg.n_partners):
        k = int(rng.integers(cfg.min_endpoints, n_e + 1))
        measures[p, rng.choice(n_e, size=k, replace=False)] = True
    need = min(cfg.min_partners_per_endpoint, cfg.n_partners)
    for e in range(n_e):
        while measures[:, e].sum() < need:
            candidates = np.flatnonzero(~measures[:, e])
            fewest = candidates[measures[candidates].sum(1) == measures[candidates].sum(1).min()]
            measures[rng.choice(fewest), e] = True
    return measures


def _draw_partners(clusters: np.ndarray, overlap: np.ndarray, q: np.ndarray, cfg: PartitionConfig,
                   rng: np.random.Generator) -> np.ndarray:
    n_clusters = int(clusters.max()) + 1 if clusters.size else 0
    concentration = np.maximum(cfg.alpha * cfg.n_partners * q, 1e-3)
    props = rng.dirichlet(concentration, size=n_clusters)
    weights = (props[clusters] + 1e-12) * overlap
    no_partner = weights.sum(1) == 0
    weights[no_partner] = 1.0
    cum = np.cumsum(weights / weights.sum(1, keepdims=True), axis=1)
    draws = rng.random(len(clusters))[:, None]
    return np.minimum((cum < draws).sum(1), cfg.n_partners - 1)


def _kept_rows(owner: np.ndarray, membership: np.ndarray, measures: np.ndarray) -> np.ndarray:
    """Rows each compound contributes to its owner (compound x endpoint counts masked by the owner's)."""
    return (membership * measures[owner]).sum(1)


def _repair(owner: np.ndarray, membership: np.ndarray, measures: np.ndarray, cfg: PartitionConfig,
            rng: np.random.Generator) -> np.ndarray:
    owner = owner.copy()
    for _ in range(cfg.n_partners * 4):
        rows = np.bincount(owner, weights=_kept_rows(owner, membership, measures),
                           minlength=cfg.n_partners)
        short = np.flatnonzero(rows < cfg.min_rows)
        if short.size == 0:
            return owner
        p = int(short[np.argmin(rows[short])])
        gain = (membership * measures[p]).sum(1)
        for donor in np.argsort(-rows):
            if donor == p or rows[donor] <= cfg.min_rows:
                continue
            candidates = np.flatnonzero((owner == donor) & (gain > 0))
            if candidates.size == 0:
                continue
            loss = _kept_rows(np.full(candidates.size, donor), membership[candidates], measures)
            order = candidates[rng.permutation(candidates.size)]
            loss = dict(zip(candidates, loss, strict=True))
            for c in order:
                if rows[p] >= cfg.min_rows:
                    break
                if rows[donor] - loss[c] < cfg.min_rows:
                    continue
                owner[c] = p
                rows[p] += gain[c]
                rows[donor] -= loss[c]
            if rows[p] >= cfg.min_rows:
                break
        if rows[p] < cfg.min_rows:
            raise InputError(
                f"cannot give all {cfg.n_partners} partners at least {cfg.min_rows} rows: {partner_id(p)} "
                f"ends with {int(rows[p])}; use fewer partners, a smaller min_rows, or more data"
            )
    raise InputError("partition repair did not converge; use fewer partners or a smaller min_rows")


def partition_partners(long_df: pd.DataFrame, n_partners: int = 20, alpha: float = 0.5, seed: int = 0,
                       min_endpoints: int = 1, min_rows: int = 30, quantity_sigma: float = 0.8,
                       min_partners_per_endpoint: int = 2, min_endpoint_rows: int = 0,
                       n_jobs: int | None = None, fold_secret: bytes | None = None) -> PartnerPartition:
    """Split a pooled long table into partners (see the module docstring for the method).

    ``n_jobs`` only parallelizes scaffold computation (None: every core); the result does not depend on it.
    ``fold_secret``: the key the partners' keyed scaffold folds will use (``pipelines.split.keyed_scaffold_folds``;
    a simulation's is ``SIMULATION_FOLD_SECRET``); with it the endpoint floor also asks for test-fold labels
    (step 6). It is used here only and never written.
    """
    cfg = PartitionConfig(n_partners, alpha, seed, min_endpoints, quantity_sigma, min_rows,
                          min_partners_per_endpoint, min_endpoint_rows)
    missing = [c for c in ("smiles", "endpoint", "value") if c not in long_df.columns]
    if missing:
        raise InputError(f"partition needs a long table; missing column(s) {missing}")
    table = long_df.reset_index(drop=True).copy()
    if len(table) == 0:
        raise InputError("partition: the long table has no rows")
    endpoints = sorted(table["endpoint"].astype(str).unique())
    cfg.validate(len(endpoints))
    key = table["inchikey"] if "inchikey" in table.columns else table["smiles"]
    if "compound_id" in table.columns:
        # one id per compound, so a partner table never shows one molecule under two ids
        first_id = table.groupby(key.astype(str), sort=False)["compound_id"].transform("first")
        table["compound_id"] = first_id.where(first_id.astype(str) != "", key.astype(str))
    compound_index, compounds = pd.factorize(key.astype(str))
    endpoint_index = pd.Index(endpoints).get_indexer(table["endpoint"].astype(str))
    membership = np.zeros((len(compounds), len(endpoints)), dtype=np.int32)
    np.add.at(membership, (compound_index, endpoint_index), 1)
    first_row = pd.Series(np.arange(len(table))).groupby(compound_index).first().to_numpy()
    smiles = table["smiles"].astype(str).to_numpy()[first_row]
    scaffolds = scaffolds_of(list(smiles), n_jobs=n_jobs)
    keys = [series_key(s, m) for s, m in zip(scaffolds, smiles, strict=True)]
    clusters = pd.factorize(np.asarray(keys))[0]
    rng = np.random.default_rng(seed)
    measures = _task_skew(endpoints, cfg, rng)
    q = rng.lognormal(0.0, quantity_sigma, size=n_partners) if quantity_sigma > 0 else np.ones(n_partners)
    q = q / q.sum()
    present = (membership > 0).astype(float)
    overlap = present @ measures.T.astype(float) / present.sum(1, keepdims=True)
    owner = _draw_partners(clusters, overlap, q, cfg, rng)
    owner = _repair(owner, membership, measures, cfg, rng)
    if cfg.min_endpoint_rows > 0:
        minor, binary = _minority_rows(table, compound_index, endpoint_index, membership.shape)
        in_test = None
        if fold_secret:
            from pipelines.split import keyed_fold

            in_test = np.asarray([keyed_fold(k, fold_secret) == "test" for k in keys])
        owner = _repair_endpoint_floor(owner, membership, measures, cfg, rng, minor, binary, in_test)
    row_owner = owner[compound_index]
    keep = measures[row_owner, endpoint_index]
    columns = [c for c in LONG_COLUMNS if c in table.columns]
    tables: dict[str, pd.DataFrame] = {}
    for p in range(n_partners):
        part = table.loc[keep & (row_owner == p), columns].copy()
        for column in LONG_COLUMNS:
            if column not in part.columns:
                part[column] = ""
        part = part.loc[:, list(LONG_COLUMNS)].sort_values(["endpoint", "compound_id"], kind="stable")
        tables[partner_id(p)] = part.reset_index(drop=True)
    partition = PartnerPartition(tables, _manifest(tables, endpoints), cfg, int((~keep).sum()), len(table))
    log.info("partitioned %d rows (%d compounds, %d scaffolds) into %d partners; %d rows dropped by task skew",
             len(table), len(compounds), int(clusters.max()) + 1, n_partners, partition.dropped_rows)
    return partition


#: A binary endpoint counts toward the endpoint floor at most this many times its rarer class's rows, so a
#: floor of 100 asks for 25 of them (about 2.5 in a ~10% test fold), where 100 rows of a 3%-active assay gave
#: a test fold of one class.
MINORITY_FACTOR = 4
#: With the partners' fold key known (``partition_partners(fold_secret=)``), an endpoint counts toward the floor at
#: most this many times its test-fold labels: a floor of 100 asks for 10 (the keyed folds are 80/10/10), where 100
#: rows gave one partner of the full-catalog run 3 test compounds.
TEST_FACTOR = 10


def _minority_rows(table: pd.DataFrame, compound_index: np.ndarray, endpoint_index: np.ndarray,
                   shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(compound x endpoint rows carrying the endpoint's rarer class, endpoint is binary): binary means every
    value is 0 or 1 and both occur; the rarer class is counted over the whole table."""
    values = pd.to_numeric(table["value"], errors="coerce").to_numpy(float)
    binary = np.zeros(shape[1], dtype=bool)
    minority_value = np.full(shape[1], np.nan)
    for e in range(shape[1]):
        v = values[endpoint_index == e]
        if v.size and np.isin(v, (0.0, 1.0)).all() and 0 < v.sum() < v.size:
            binary[e] = True
            minority_value[e] = 1.0 if v.sum() <= v.size / 2 else 0.0
    minor = np.zeros(shape, dtype=np.int32)
    hit = binary[endpoint_index] & (values == minority_value[endpoint_index])
    np.add.at(minor, (compound_index[hit], endpoint_index[hit]), 1)
    return minor, binary


def _repair_endpoint_floor(owner: np.ndarray, membership: np.ndarray, measures: np.ndarray, cfg: PartitionConfig,
                           rng: np.random.Generator, minor: np.ndarray | None = None,
                           binary: np.ndarray | None = None, in_test: np.ndarray | None = None) -> np.ndarray:
    """Step 6 of the module docstring: give each partner ``min_endpoint_rows`` rows of one endpoint it measures
    (``minor`` / ``binary``: :func:`_minority_rows`; a binary endpoint counts at most ``MINORITY_FACTOR`` x its
    rarer class's rows). ``in_test`` (bool per compound: its keyed fold is ``test``): the endpoint also counts
    at most ``TEST_FACTOR`` x its test-fold labels (a binary one: at most ``MINORITY_FACTOR`` x its test-fold
    rarer-class labels among them), and a partner held back there receives test-fold compounds."""
    owner = owner.copy()
    floor = cfg.min_endpoint_rows
    labelled = membership > 0
    minor = np.zeros_like(membership) if minor is None else minor
    binary = np.zeros(membership.shape[1], dtype=bool) if binary is None else binary
    test_aware = in_test is not None
    t = (np.asarray(in_test, dtype=bool) if test_aware else np.zeros(len(owner), dtype=bool))[:, None]
    # per compound: rows, rarer-class rows, test rows, test rarer-class rows (compound x endpoint each)
    per_compound = np.stack([membership, minor, membership * t, minor * t])

    def per_endpoint(o: np.ndarray) -> np.ndarray:  # (4, partner, endpoint) kept
        out = np.zeros((4, *measures.shape))
        for k in range(4):
            np.add.at(out[k], o, per_compound[k] * measures[o])
        return out

    def capped(rows: np.ndarray, rare: np.ndarray) -> np.ndarray:
        return np.where(binary, np.minimum(rows, MINORITY_FACTOR * rare), rows)

    def effective(tab: np.ndarray) -> np.ndarray:
        eff = capped(tab[0], tab[1])
        return np.minimum(eff, TEST_FACTOR * capped(tab[2], tab[3])) if test_aware else eff

    def helps(tab: np.ndarray, c: int, e: int) -> bool:
        """Does compound ``c`` relieve what holds the partner back on endpoint ``e`` (``tab``: its counts)?"""
        rows, rare, trows, trare = tab[:, e]
        cap = (lambda n, r: min(n, MINORITY_FACTOR * r)) if binary[e] else (lambda n, r: n)  # noqa: E731
        if test_aware and TEST_FACTOR * cap(trows, trare) < cap(rows, rare):  # the test fold binds
            if not t[c, 0]:
                return False
            return not (binary[e] and trows >= MINORITY_FACTOR * trare and minor[c, e] == 0)
        return not (binary[e] and rows >= MINORITY_FACTOR * rare and minor[c, e] == 0)

    for _ in range(cfg.n_partners):
        best = effective(per_endpoint(owner)).max(1)
        short = np.flatnonzero(best < floor)
        if short.size == 0:
            break
        moved_any = False
        for p in short[np.argsort(best[short])]:
            tab = per_endpoint(owner)
            eff = effective(tab)
            rows = tab[0].sum(1)
            # its endpoints from the one it holds most of (closest to the floor) down, until one reaches it
            for e in sorted(np.flatnonzero(measures[p]), key=lambda j: -eff[p, j]):
                for donor in np.argsort(-tab[0][:, e]):
                    if eff[p, e] >= floor:
                        break
                    if donor == p:
                        continue
                    candidates = np.flatnonzero((owner == donor) & labelled[:, e])
                    for c in candidates[rng.permutation(candidates.size)]:
                        loss = per_compound[:, c] * measures[donor]
                        if eff[p, e] >= floor or rows[donor] - loss[0].sum() < cfg.min_rows:
                            continue
                        if not helps(tab[:, p], c, e):
                            continue
                        # a donor keeps its own floor; one below it gives only compounds whose rows it drops anyway
                        if loss[0].sum() > 0 and effective(tab[:, donor] - loss).max() < floor:
                            continue
                        owner[c] = p
                        gain = per_compound[:, c] * measures[p]
                        tab[:, donor] -= loss
                        tab[:, p] += gain
                        eff[[p, donor]] = effective(tab[:, [p, donor]])
                        rows[donor] -= loss[0].sum()
                        rows[p] += gain[0].sum()
                        moved_any = True
                if eff[p, e] >= floor:
                    break
        if not moved_any:
            break
    best = effective(per_endpoint(owner)).max(1)
    for p in np.flatnonzero(best < floor):
        log.warning("partition: %s holds at most %d rows of one endpoint (floor %d; a binary endpoint counts at "
                    "most %dx its rarer class%s): the pool has no more to give", partner_id(int(p)), int(best[p]),
                    floor, MINORITY_FACTOR, f", and at most {TEST_FACTOR}x its test-fold labels" if test_aware else "")
    return owner


def _manifest(tables: dict[str, pd.DataFrame], endpoints: list[str]) -> pd.DataFrame:
    records = []
    for pid, part in tables.items():
        counts = part["endpoint"].value_counts()
        record = {"partner": pid, "n_rows": len(part), "n_compounds": int(part["compound_id"].nunique()),
                  "n_endpoints": int((counts > 0).sum())}
        record.update({e: int(counts.get(e, 0)) for e in endpoints})
        records.append(record)
    return pd.DataFrame.from_records(records)


def write_partition(partition: PartnerPartition, out_dir: str | Path) -> Path:
    """Write partner folders, ``manifest.csv`` and ``manifest.json`` (with the resolved config)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Partner folders of an earlier partition into the same folder would otherwise be read as
    # extra partners (with rows that overlap the new ones) by everything that lists the folder.
    stale = sorted(p for p in out.iterdir()
                   if p.is_dir() and re.fullmatch(r"partner_\d+", p.name) and p.name not in partition.tables
                   and (p / "data.csv").exists())
    for folder in stale:
        shutil.rmtree(folder)
    if stale:
        log.warning("removed %d partner folder(s) of an earlier partition from %s: %s", len(stale), out,
                    ", ".join(p.name for p in stale))
    for pid, part in partition.tables.items():
        write_kmelloddy(part, out / pid / "data.csv")
    partition.manifest.to_csv(out / "manifest.csv", index=False)
    endpoints = [c for c in partition.manifest.columns
                 if c not in ("partner", "n_rows", "n_compounds", "n_endpoints")]
    doc = {
        "config": asdict(partition.config),
        "input_rows": partition.input_rows,
        "dropped_rows": partition.dropped_rows,
        "endpoints": endpoints,
        "partners": {
            row["partner"]: {"n_rows": int(row["n_rows"]), "n_compounds": int(row["n_compounds"]),
                             "endpoints": {e: int(row[e]) for e in endpoints if row[e] > 0},
                             "data": f"{row['partner']}/data.csv"}
            for row in partition.manifest.to_dict("records")
        },
    }
    (out / "manifest.json").write_text(json.dumps(doc, indent=2) + "\n")
    log.info("wrote %d partner tables to %s", len(partition.tables), out)
    return out


def read_partition(out_dir: str | Path) -> PartnerPartition:
    """Read a folder written by ``write_partition`` (values as floats, relations ``= < >``)."""
    out = Path(out_dir)
    manifest_path = out / "manifest.json"
    if not manifest_path.exists():
        raise InputError(f"{out}: not a partition folder (no manifest.json)")
    doc = json.loads(manifest_path.read_text())
    tables = {}
    for pid, info in doc["partners"].items():
        if info["n_rows"] == 0:
            tables[pid] = pd.DataFrame({c: pd.Series(dtype=float if c == "value" else object)
                                        for c in LONG_COLUMNS})
            continue
        long = read_long_table(out / info["data"])
        long["relation"] = long["relation"].map(lambda r: RELATIONS.get(str(r).strip(), str(r)))
        long["value"] = pd.to_numeric(long["value"], errors="raise").astype(float)
        tables[pid] = long.loc[:, list(LONG_COLUMNS)].reset_index(drop=True)
    manifest = pd.read_csv(out / "manifest.csv")
    return PartnerPartition(tables, manifest, PartitionConfig(**doc["config"]), int(doc["dropped_rows"]),
                            int(doc["input_rows"]))
