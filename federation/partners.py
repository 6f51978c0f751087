"""Getting the partners' folders for a simulated consortium: an existing partition or a fresh one.

A fresh partition validates a long table (the embedded catalog by default) and splits the
accepted rows into ``n_partners`` non-IID partners with the project's one partner-preparation
path, ``pipelines.partner_data.prepare_partition`` (one folder per partner, ``partner_XX/data.csv``,
and ``rejected.csv``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from federation.config import FederatedConfig
from federation.task import DATA_FILE
from pipelines.errors import InputError
from pipelines.partner_data import load_long_table, prepare_partition

log = logging.getLogger(__name__)


def load_table(cfg: FederatedConfig) -> pd.DataFrame:
    """The table to partition: ``cfg.data`` (any table ``fedadmet admet train`` reads) or the catalog."""
    return load_long_table(cfg.data, cfg.endpoints, max_rows=cfg.max_rows, seed=cfg.seed)


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
    prepare_partition(load_table(cfg), out, n_partners=cfg.n_partners, alpha=cfg.alpha, seed=cfg.seed,
                      min_endpoint_rows=cfg.min_endpoint_rows)
    return out


def partner_folders(root: Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / DATA_FILE).exists())
