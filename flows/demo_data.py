"""The data stage of the main job: embedded long table -> validate -> partition into partners."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from pipelines.errors import InputError

log = logging.getLogger(__name__)


def prepare_partners(out_dir: Path, n_partners: int = 20, alpha: float = 0.5, seed: int = 0,
                     endpoints: tuple[str, ...] | None = None, data: Path | None = None,
                     max_rows: int | None = None) -> pd.DataFrame:
    """Validate the embedded (or given) long table and write ``partner_XX/data.csv`` folders.

    Returns the partition manifest (one row per partner: molecules, measurements, endpoints).
    Rejected rows are written to ``rejects.csv`` next to the partner folders.
    """
    from pipelines.catalog import load_embedded
    from pipelines.partition import partition_partners, write_partition
    from pipelines.validate import validate_long_table

    if data is not None:
        from pipelines.readers import read_long_table

        long_df = read_long_table(Path(data))
    else:
        long_df = load_embedded(list(endpoints) if endpoints else None)
    if max_rows is not None:
        long_df = long_df.head(max_rows)
    if len(long_df) == 0:
        raise InputError("no measurements to partition")
    checked = validate_long_table(long_df)
    accepted, rejected = checked.accepted, checked.rejected
    if len(accepted) + len(rejected) != len(long_df):
        raise RuntimeError("validation lost rows")
    partition = partition_partners(accepted, n_partners=n_partners, alpha=alpha, seed=seed)
    out_dir = Path(out_dir)
    write_partition(partition, out_dir)
    rejected.to_csv(out_dir / "rejects.csv", index=False)
    summary = {"n_rows": len(long_df), "n_accepted": len(accepted), "n_rejected": len(rejected),
               "n_partners": n_partners, "alpha": alpha, "seed": seed}
    (out_dir / "data_summary.json").write_text(json.dumps(summary, indent=2))
    log.info("partitioned %d measurements into %d partners (%d rejected)", len(accepted), n_partners,
             len(rejected))
    return partition.manifest
