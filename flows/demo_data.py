"""The data stage of the main job: embedded long table -> validate -> partition into partners."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)


def prepare_partners(out_dir: Path, n_partners: int = 20, alpha: float = 0.5, seed: int = 0,
                     endpoints: tuple[str, ...] | None = None, data: Path | None = None,
                     max_rows: int | None = None, min_endpoint_rows: int | None = None) -> pd.DataFrame:
    """Validate the embedded (or given) long table and write ``partner_XX/data.csv`` folders.

    Every partner gets ``min_endpoint_rows`` rows of one endpoint it measures (default
    ``pipelines.partition.SCORABLE_ENDPOINT_ROWS``, best effort), so each can be scored.
    Returns the partition manifest (one row per partner: molecules, measurements, endpoints).
    Rejected rows are written to ``rejected.csv`` next to the partner folders
    (``pipelines.partner_data.prepare_partition``).
    """
    from pipelines.partition_defaults import SCORABLE_ENDPOINT_ROWS
    from pipelines.partner_data import load_long_table, prepare_partition

    floor = SCORABLE_ENDPOINT_ROWS if min_endpoint_rows is None else min_endpoint_rows
    long_df = load_long_table(data, endpoints, max_rows=max_rows, seed=seed)
    return prepare_partition(long_df, out_dir, n_partners=n_partners, alpha=alpha, seed=seed,
                             min_endpoint_rows=floor).manifest
