"""The embedded datasets: where they live, the endpoint catalog, and the pooled long table."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
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


# ----------------------------------------------------------------------------- consortium catalog
@dataclass(frozen=True, slots=True)
class CatalogEndpoint:
    """One endpoint of a consortium catalog: what every partner's values are converted to."""

    name: str
    task_type: str
    """``regression`` or ``classification``."""
    unit: str
    """Canonical unit; a partner's rows in another unit are converted (``pipelines.measurements``)."""
    transform: str = "none"
    """Transform the model learns on (``none`` / ``log10``)."""
    better: str = ""


@dataclass(frozen=True, slots=True)
class EndpointCatalog:
    """The endpoints a consortium trains on (names, canonical units, task type, transform) and the
    other names (aliases) each is known by, e.g. the K-MELLODDY gist names (``PPBR`` -> ``PPBR_AZ``).

    The operator publishes it (``fedadmet consortium catalog``); a node prepares its table against
    it (``fedadmet node check``). ``sha256`` identifies the exact catalog a node prepared with."""

    endpoints: dict[str, CatalogEndpoint]
    aliases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, catalog: pd.DataFrame) -> "EndpointCatalog":
        endpoints = {
            str(r["endpoint"]): CatalogEndpoint(str(r["endpoint"]), str(r["task_type"]), str(r["unit"]),
                                                str(r.get("transform") or "none"), str(r.get("better") or ""))
            for r in catalog.to_dict("records")
        }
        return cls(endpoints, endpoint_aliases(catalog))

    @classmethod
    def embedded(cls) -> "EndpointCatalog":
        return cls.from_frame(load_catalog())

    def to_json(self) -> dict:
        return {"format": "fedadmet-endpoint-catalog/1",
                "endpoints": [asdict(e) for e in self.endpoints.values()],
                "aliases": dict(sorted(self.aliases.items()))}

    @classmethod
    def from_json(cls, doc: dict) -> "EndpointCatalog":
        try:
            endpoints = {str(e["name"]): CatalogEndpoint(**{k: str(v) for k, v in e.items()})
                         for e in doc["endpoints"]}
            aliases = {str(k): str(v) for k, v in doc.get("aliases", {}).items()}
        except (KeyError, TypeError) as exc:
            raise InputError(f"not an endpoint catalog (expected 'endpoints' with name, task_type, unit): {exc}"
                             ) from exc
        bad = sorted(a for a, e in aliases.items() if e not in endpoints)
        if bad:
            raise InputError(f"catalog aliases point to unknown endpoints: {bad}")
        return cls(endpoints, aliases)

    @classmethod
    def read(cls, path: str | Path) -> "EndpointCatalog":
        path = Path(path)
        if not path.is_file():
            raise InputError(f"endpoint catalog not found: {path}")
        try:
            doc = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not a JSON endpoint catalog ({exc})") from exc
        return cls.from_json(doc)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @property
    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()

    def resolve(self, name: str, mapping: dict[str, str] | None = None) -> str | None:
        """The catalog endpoint a partner's endpoint name stands for (mapping file first, then the
        catalog's own names and aliases); ``None`` when unmapped."""
        name = str(name).strip()
        target = (mapping or {}).get(name, name)
        if target in self.endpoints:
            return target
        return self.aliases.get(target)


def read_endpoint_map(path: str | Path, catalog: EndpointCatalog) -> dict[str, str]:
    """A partner's mapping file: CSV/TSV with columns ``partner_endpoint,catalog_endpoint`` (the
    partner's endpoint name as ``fedadmet data validate`` writes it, e.g. ``PPB|Human``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"endpoint mapping file not found: {path}")
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: unreadable endpoint mapping ({exc})") from exc
    missing = {"partner_endpoint", "catalog_endpoint"} - set(table.columns)
    if missing:
        raise InputError(f"{path}: endpoint mapping needs columns partner_endpoint,catalog_endpoint "
                         f"(missing {sorted(missing)})")
    mapping = {str(a).strip(): str(b).strip() for a, b in zip(table["partner_endpoint"], table["catalog_endpoint"],
                                                              strict=True) if str(a).strip()}
    unknown = sorted({b for b in mapping.values() if catalog.resolve(b) is None})
    if unknown:
        raise InputError(f"{path}: mapped to endpoint(s) not in the consortium catalog: {unknown}")
    return {a: catalog.resolve(b) or b for a, b in mapping.items()}
