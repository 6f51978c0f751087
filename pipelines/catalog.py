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


#: The 11 endpoints of the first catalog (Biogen's 6 + the 5 HINT sets, three of them now TDC endpoints):
#: 29k distinct SMILES against 63k for the whole catalog. A stated subset for runs sized for minutes
#: (the demo); ``load_embedded()`` without arguments gives every endpoint.
DEMO_ENDPOINTS: tuple[str, ...] = (
    "HLM_CLint", "RLM_CLint", "MDR1_ER", "solubility", "hPPB", "rPPB",
    "Bioavailability_Ma", "BBB_Martins", "CYP2C19_Veith", "clearance_lt12", "toxcast_clean",
)

#: Catalog columns added with the TDC sets; older catalogs (``FEDADMET_DATASETS``) get these defaults.
CATALOG_DEFAULTS: dict[str, str] = {
    "transform": "none", "licence": "", "source": "", "metric": "", "split_kind": "", "aliases": "",
}
#: Value transforms a catalog may name: applied before training, undone at prediction.
TRANSFORMS: tuple[str, ...] = ("none", "log10")


def load_catalog() -> pd.DataFrame:
    """One row per embedded endpoint.

    Columns: endpoint, dataset, task_type, unit, count, description, better, file, transform (``none`` /
    ``log10``), licence, source (paper), metric (TDC leaderboard metric or empty), split_kind (``official``,
    ``none``, ``biogen_fixed``, ``upstream_random``), aliases (``;``-separated older names of the endpoint).
    """
    path = datasets_dir() / "catalog.csv"
    if not path.exists():
        raise InputError(f"embedded dataset catalog not found at {path}")
    catalog = pd.read_csv(path, dtype={c: str for c in CATALOG_DEFAULTS}, keep_default_na=False,
                          na_values={"count": [""]})
    for column, default in CATALOG_DEFAULTS.items():
        if column not in catalog.columns:
            catalog[column] = default
    catalog["transform"] = catalog["transform"].replace("", "none")
    bad = sorted(set(catalog["transform"]) - set(TRANSFORMS))
    if bad:
        raise InputError(f"catalog {path}: unknown transform(s) {bad}; known: {list(TRANSFORMS)}")
    return catalog


def endpoint_aliases(catalog: pd.DataFrame | None = None) -> dict[str, str]:
    """Older endpoint name -> the catalog endpoint it now resolves to (e.g. ``bbb`` -> ``BBB_Martins``)."""
    catalog = load_catalog() if catalog is None else catalog
    out: dict[str, str] = {}
    for endpoint, aliases in zip(catalog["endpoint"], catalog["aliases"], strict=True):
        for alias in filter(None, (a.strip() for a in str(aliases).split(";"))):
            out[alias] = str(endpoint)
    return out


def resolve_endpoints(names: list[str] | tuple[str, ...], catalog: pd.DataFrame | None = None) -> list[str]:
    """Catalog endpoint names for ``names`` (aliases resolved, order kept, duplicates dropped)."""
    catalog = load_catalog() if catalog is None else catalog
    aliases = endpoint_aliases(catalog)
    resolved = [aliases.get(str(n), str(n)) for n in names]
    unknown = sorted(set(resolved) - set(catalog["endpoint"]))
    if unknown:
        raise InputError(f"unknown endpoint(s) {unknown}; embedded endpoints are {list(catalog['endpoint'])}"
                         f" (aliases: {aliases})")
    return list(dict.fromkeys(resolved))


def catalog_column(column: str, catalog: pd.DataFrame | None = None) -> dict[str, str]:
    """Endpoint -> ``column`` value, with every alias mapped to its endpoint's value too."""
    catalog = load_catalog() if catalog is None else catalog
    values = {str(e): v for e, v in zip(catalog["endpoint"], catalog[column], strict=True)}
    for alias, endpoint in endpoint_aliases(catalog).items():
        values.setdefault(alias, values[endpoint])
    return values


def load_embedded(endpoints: list[str] | None = None) -> pd.DataFrame:
    """The pooled long table of the embedded datasets (``LONG_COLUMNS``), optionally for some endpoints.

    Endpoint aliases (``catalog.csv``'s ``aliases``) resolve to their catalog endpoint; rows carry the
    catalog name.
    """
    catalog = load_catalog()
    if endpoints:
        catalog = catalog[catalog["endpoint"].isin(resolve_endpoints(endpoints, catalog))]
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
