"""A simulated consortium's data, prepared once: read -> validate -> partition -> partner folders.

The one partner-preparation path of the project: ``fedadmet data partition``, the federated run
and the main job's data stage all call it. Every input row is either accepted (standardized and
validated) or written to ``rejected.csv`` with its reason; accepted rows that the partition's task
skew gives to no partner are counted (``n_dropped`` in ``data_summary.json``), never lost silently.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from pipelines.errors import InputError
from pipelines.partition import PartnerPartition

log = logging.getLogger(__name__)

REJECTS_FILE = "rejected.csv"
SUMMARY_FILE = "data_summary.json"


@dataclass(frozen=True, slots=True)
class PartitionSummary:
    """What :func:`prepare_partition` did, as written to ``data_summary.json``."""

    n_rows: int
    """Input rows."""
    n_accepted: int
    """Rows that passed validation (standardized)."""
    n_rejected: int
    """Rows written to ``rejected.csv`` with a reason (``n_accepted + n_rejected == n_rows``)."""
    n_partitioned: int
    """Rows handed to the partition (``n_accepted``, or fewer after aggregating replicates)."""
    n_dropped: int
    """Partitioned rows no partner kept (an endpoint a partner's task skew left out)."""
    n_partners: int
    alpha: float
    seed: int
    aggregated: bool
    """Replicates were aggregated (one row per compound x endpoint) before partitioning."""


@dataclass(frozen=True, slots=True)
class PreparedPartition:
    """The partition written to disk, and what happened to the input rows."""

    partition: PartnerPartition
    summary: PartitionSummary

    @property
    def manifest(self) -> pd.DataFrame:
        """One row per partner: molecules, measurements, endpoints."""
        return self.partition.manifest


def load_long_table(data: str | Path | None = None, endpoints: tuple[str, ...] | list[str] | None = None,
                    max_rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """The measurements to federate: ``data`` (any long table ``read_long_table`` reads) or the
    embedded catalog (``endpoints`` of it, default all). ``max_rows`` keeps a random subset of whole
    molecules (all of a molecule's rows together) with at least that many rows."""
    if data is not None:
        from pipelines.readers import read_long_table

        table = read_long_table(Path(data))
    else:
        from pipelines.catalog import load_embedded

        table = load_embedded(list(endpoints) if endpoints else None)
    if max_rows:
        table = _whole_molecule_slice(table, max_rows, seed)
    if len(table) == 0:
        raise InputError("the table to federate has no rows")
    return table.reset_index(drop=True)


def _whole_molecule_slice(table: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    key = "smiles" if "smiles" in table.columns else table.columns[0]
    molecules = table[key].drop_duplicates().sample(frac=1.0, random_state=seed)
    counts = table.groupby(key).size()
    keep, total = [], 0
    for mol in molecules:
        if total >= max_rows:
            break
        keep.append(mol)
        total += int(counts[mol])
    return table[table[key].isin(set(keep))]


def prepare_partition(long_df: pd.DataFrame, out_dir: str | Path, n_partners: int = 20, alpha: float = 0.5,
                      seed: int = 0, aggregate: bool = False, min_rows: int = 30, min_endpoints: int = 1,
                      progress: Callable[[int], None] | None = None) -> PreparedPartition:
    """Validate ``long_df``, optionally aggregate replicates, partition the accepted rows into
    ``n_partners`` non-IID partners and write ``partner_XX/data.csv`` folders (with the manifest),
    ``rejected.csv`` and ``data_summary.json`` under ``out_dir``.

    ``progress(n)`` is told how many input rows are validated.
    """
    from pipelines.aggregate import aggregate_replicates
    from pipelines.partition import partition_partners, write_partition
    from pipelines.validate import validate_long_table

    if len(long_df) == 0:
        raise InputError("no measurements to partition")
    checked = validate_long_table(long_df, progress=progress)
    accepted, rejected = checked.accepted, checked.rejected
    if len(accepted) + len(rejected) != len(long_df):
        raise RuntimeError(f"validation lost rows: {len(accepted)} + {len(rejected)} != {len(long_df)}")
    table = aggregate_replicates(accepted) if aggregate else accepted
    partition = partition_partners(table, n_partners=n_partners, alpha=alpha, seed=seed, min_rows=min_rows,
                                   min_endpoints=min_endpoints)
    out_dir = Path(out_dir)
    write_partition(partition, out_dir)
    rejected.to_csv(out_dir / REJECTS_FILE, index=False)
    summary = PartitionSummary(len(long_df), len(accepted), len(rejected), len(table), partition.dropped_rows,
                               n_partners, alpha, seed, aggregate)
    (out_dir / SUMMARY_FILE).write_text(json.dumps(asdict(summary), indent=2))
    log.info("partitioned %d measurements into %d partners under %s (%d rejected)", len(table), n_partners,
             out_dir, len(rejected))
    return PreparedPartition(partition, summary)
