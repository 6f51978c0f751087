"""Getting the partners' folders for a simulated consortium: an existing partition or a fresh one.

A fresh partition splits a long table (the embedded catalog by default) into ``n_partners``
non-IID partners with ``pipelines.partition.partition_partners`` and writes one folder per
partner (``partner_XX/data.csv``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from federation.config import FederatedConfig
from federation.task import DATA_FILE
from pipelines.errors import InputError

log = logging.getLogger(__name__)


def load_table(cfg: FederatedConfig) -> pd.DataFrame:
    """The table to partition: ``cfg.data`` (any table ``fedadmet admet train`` reads) or the catalog."""
    if cfg.data is not None:
        from pipelines.readers import read_long_table

        table = read_long_table(cfg.data)
    else:
        from pipelines.catalog import load_embedded

        table = load_embedded(list(cfg.endpoints) if cfg.endpoints else None)
    if cfg.max_rows:
        table = _slice(table, cfg.max_rows, cfg.seed)
    if len(table) == 0:
        raise InputError("the table to federate has no rows")
    return table.reset_index(drop=True)


def _slice(table: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """A random subset of whole molecules (all of a molecule's rows kept together)."""
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


def prepare_partners(cfg: FederatedConfig) -> Path:
    """The partners folder to use: ``cfg.partners_dir`` as given, or a fresh partition in the run folder."""
    if cfg.partners_dir is not None:
        folders = partner_folders(cfg.partners_dir)
        if len(folders) < 2:
            raise InputError(f"{cfg.partners_dir} holds {len(folders)} partner folder(s) with {DATA_FILE}; need >= 2")
        return cfg.partners_dir
    out = Path(cfg.out_dir) / "partners"
    if partner_folders(out) and len(partner_folders(out)) == cfg.n_partners:
        log.info("reusing the partition in %s", out)
        return out
    from pipelines.partition import partition_partners, write_partition

    table = load_table(cfg)
    partition = partition_partners(table, n_partners=cfg.n_partners, alpha=cfg.alpha, seed=cfg.seed)
    write_partition(partition, out)
    log.info("partitioned %d rows into %d partners under %s", len(table), len(partition.tables), out)
    return out


def partner_folders(root: Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / DATA_FILE).exists())
