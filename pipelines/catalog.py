"""The embedded datasets: where they live, the endpoint catalog, and the pooled long table."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from pipelines.errors import InputError

#: Columns of the pooled long table, in order.
LONG_COLUMNS: tuple[str, ...] = (
    "compound_id", "smiles", "endpoint", "relation", "value", "unit", "source", "split",
)


def datasets_dir() -> Path:
    """Folder holding the vendored datasets (``FEDADMET_DATASETS`` overrides it)."""
    override = os.environ.get("FEDADMET_DATASETS")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "datasets"


def load_catalog() -> pd.DataFrame:
    """One row per embedded endpoint: endpoint, dataset, task_type, unit, count, description, better, file."""
    path = datasets_dir() / "catalog.csv"
    if not path.exists():
        raise InputError(f"embedded dataset catalog not found at {path}")
    return pd.read_csv(path)


def load_embedded(endpoints: list[str] | None = None) -> pd.DataFrame:
    """The pooled long table of the embedded datasets (``LONG_COLUMNS``), optionally for some endpoints."""
    catalog = load_catalog()
    if endpoints:
        unknown = sorted(set(endpoints) - set(catalog["endpoint"]))
        if unknown:
            raise InputError(
                f"unknown endpoint(s) {unknown}; embedded endpoints are {list(catalog['endpoint'])}"
            )
        catalog = catalog[catalog["endpoint"].isin(endpoints)]
    frames = []
    for file in catalog["file"].unique():
        frame = pd.read_csv(datasets_dir() / file, dtype={"split": str, "compound_id": str})
        frames.append(frame[frame["endpoint"].isin(catalog["endpoint"])])
    table = pd.concat(frames, ignore_index=True)
    table["split"] = table["split"].fillna("")
    return table.loc[:, list(LONG_COLUMNS)]


def screening_library_path() -> Path:
    """A bundled drug-like library (10,000 MOSES molecules, MIT) for demos and screening."""
    return datasets_dir() / "moses_sample" / "moses_10k.smi.gz"
