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
from pipelines.node_settings import NodeDataSettings
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
                      min_endpoint_rows: int = 0, progress: Callable[[int], None] | None = None,
                      fold_secret: bytes | None = None) -> PreparedPartition:
    """Validate ``long_df``, optionally aggregate replicates, partition the accepted rows into
    ``n_partners`` non-IID partners and write ``partner_XX/data.csv`` folders (with the manifest),
    ``rejected.csv``, ``data_summary.json`` and the simulated consortium's endpoint catalog
    (``catalog.json``: the embedded catalog plus the table's other endpoints) under ``out_dir``. Each
    simulated partner then prepares its ``data.csv`` as a real node does (:func:`prepare_node_data`).

    ``progress(n)`` is told how many input rows are validated. ``fold_secret``: the key of the simulated
    partners' keyed folds (default the public simulation key, which their nodes use unless given another),
    so the endpoint floor can count test-fold labels (``pipelines.partition``, step 6).
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
    from pipelines.split import SIMULATION_FOLD_SECRET

    partition = partition_partners(table, n_partners=n_partners, alpha=alpha, seed=seed, min_rows=min_rows,
                                   min_endpoints=min_endpoints, min_endpoint_rows=min_endpoint_rows,
                                   fold_secret=fold_secret or SIMULATION_FOLD_SECRET)
    out_dir = Path(out_dir)
    write_partition(partition, out_dir)
    # the simulated operator's published catalog: every partner node prepares its data.csv against it
    consortium_catalog_for(accepted).write(out_dir / CONSORTIUM_CATALOG)
    rejected.to_csv(out_dir / REJECTS_FILE, index=False)
    summary = PartitionSummary(len(long_df), len(accepted), len(rejected), len(table), partition.dropped_rows,
                               n_partners, alpha, seed, aggregate)
    (out_dir / SUMMARY_FILE).write_text(json.dumps(asdict(summary), indent=2))
    log.info("partitioned %d measurements into %d partners under %s (%d rejected)", len(table), n_partners,
             out_dir, len(rejected))
    return PreparedPartition(partition, summary)


# ----------------------------------------------------------------------------- a node's own table
#: What a node writes next to itself (``fedadmet node check`` / ``node start``); none of it leaves the node.
NODE_ACCEPTED = "accepted.csv"
NODE_REJECTED = "rejected.csv"
NODE_PREPARED = "prepared.csv"
NODE_SUMMARY = "summary.json"
#: Part of a prepared folder's input key: a folder prepared by an older version (without the summary's
#: ``transforms``) is prepared again instead of read back.
PREPARATION_VERSION = "node-prep/2"
CONSORTIUM_CATALOG = "catalog.json"


@dataclass(frozen=True, slots=True)
class NodePreparation:
    """A partner's raw table after the consortium's preparation."""

    accepted: pd.DataFrame
    """Validated rows (``fedadmet data validate``'s accepted columns), endpoint names and units the
    catalog's, values converted to them."""
    rejected: pd.DataFrame
    """``row, input, reason, endpoint`` (the partner's own endpoint name)."""
    prepared: pd.DataFrame
    """Replicates aggregated (``pipelines.aggregate``): one row per InChIKey x endpoint, with ``fold``
    (train / valid / test from the keyed scaffold hash). This is what the node trains on."""
    summary: dict

    @property
    def usable(self) -> bool:
        return len(self.prepared) > 0

    def write(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.accepted.to_csv(out / NODE_ACCEPTED, index=False)
        self.rejected.to_csv(out / NODE_REJECTED, index=False)
        self.prepared.to_csv(out / NODE_PREPARED, index=False)
        (out / NODE_SUMMARY).write_text(json.dumps(self.summary, indent=2) + "\n")
        return out


def prepare_node_table(raw: pd.DataFrame, catalog, endpoint_map: dict[str, str] | None = None,
                       fold_secret: bytes | None = None, progress: Callable[[int], None] | None = None,
                       n_jobs: int | None = 1) -> NodePreparation:
    """The one preparation every node runs before training (and ``fedadmet federate``'s simulated
    partners run too): ``validate_long_table`` against the consortium ``catalog`` (standardize,
    reasons, endpoint mapping, unit conversion, censored relations kept) -> ``aggregate_replicates``
    -> keyed scaffold folds (``pipelines.split.keyed_scaffold_folds``)."""
    from pipelines.aggregate import aggregate_replicates
    from pipelines.split import SIMULATION_FOLD_SECRET, fold_secret_fingerprint, keyed_scaffold_folds
    from pipelines.validate import UNMAPPED_ENDPOINT, validate_long_table

    secret = fold_secret or SIMULATION_FOLD_SECRET
    checked = validate_long_table(raw, consortium=catalog, endpoint_map=endpoint_map, progress=progress,
                                  n_jobs=n_jobs)
    accepted, rejected = checked.accepted, checked.rejected
    if len(accepted) + len(rejected) != len(raw):
        raise RuntimeError(f"validation lost rows: {len(accepted)} + {len(rejected)} != {len(raw)}")
    types = {n: e.task_type for n, e in catalog.endpoints.items()}
    better = {n: e.better for n, e in catalog.endpoints.items()}
    if len(accepted):
        prepared = aggregate_replicates(accepted, task_types=types, better=better)
        prepared["fold"] = keyed_scaffold_folds(prepared["smiles"].astype(str).tolist(), secret, n_jobs=n_jobs)
    else:
        prepared = accepted.assign(n_replicates=pd.Series(dtype=int), std=pd.Series(dtype=float),
                                   conflict=pd.Series(dtype=bool), fold=pd.Series(dtype=object))
    unmapped = rejected[rejected["reason"] == UNMAPPED_ENDPOINT]
    summary = {
        "n_input": int(len(raw)),
        "n_accepted": int(len(accepted)),
        "n_rejected": int(len(rejected)),
        "rejected_by_reason": {str(k): int(v) for k, v in checked.reason_counts().items()},
        "unmapped_endpoints": {str(k): int(v) for k, v in unmapped["endpoint"].value_counts().items()},
        "n_prepared": int(len(prepared)),
        "n_molecules": int(prepared["inchikey"].nunique()) if len(prepared) else 0,
        "n_replicates_merged": int(len(accepted) - len(prepared)),
        "n_censored": int((prepared["relation"] != "=").sum()) if len(prepared) else 0,
        "n_conflicts": int(prepared["conflict"].sum()) if len(prepared) else 0,
        "endpoints": {str(k): int(v) for k, v in prepared["endpoint"].value_counts().sort_index().items()},
        "task_types": {str(k): types[str(k)] for k in sorted(set(prepared["endpoint"].astype(str)))},
        # The catalog's value transform per endpoint (``log10`` for VDss, half-life, clearances): the
        # node trains on it (``federation.task.load_partner``); prepared.csv keeps the catalog's unit.
        "transforms": {str(k): catalog.endpoints[str(k)].transform
                       for k in sorted(set(prepared["endpoint"].astype(str)))},
        "folds": {str(k): int(v) for k, v in prepared["fold"].value_counts().sort_index().items()},
        "catalog_sha256": catalog.sha256,
        "fold_secret_check": fold_secret_fingerprint(secret),
        "fold_secret": "consortium" if fold_secret else "public simulation key",
    }
    log.info("node preparation: %d rows -> %d accepted (%d rejected) -> %d after aggregating replicates",
             len(raw), len(accepted), len(rejected), len(prepared))
    return NodePreparation(accepted, rejected, prepared, summary)


def _table_path(data: str | Path) -> Path:
    path = Path(data)
    if path.is_dir():
        path = path / "data.csv"
    if not path.is_file():
        raise InputError(f"partner data not found: {path}")
    return path


def prepare_node_data(data: str | Path, out_dir: str | Path, settings: NodeDataSettings | None = None,
                      progress: Callable[[int], None] | None = None) -> NodePreparation:
    """Read a partner's raw table (a folder with ``data.csv``, or the file), prepare it
    (:func:`prepare_node_table`) and write ``accepted.csv`` / ``rejected.csv`` / ``prepared.csv`` /
    ``summary.json`` to ``out_dir``. A folder already holding the result for the same input bytes and
    settings is read back instead of redone (``node start`` prepares, the ClientApp reuses it)."""
    import hashlib

    from pipelines.readers import read_long_table

    settings = settings or NodeDataSettings()
    path = _table_path(data)
    catalog, mapping, secret = settings.load()
    digest = hashlib.sha256(path.read_bytes())
    digest.update(PREPARATION_VERSION.encode())
    digest.update(catalog.sha256.encode())
    digest.update(json.dumps(sorted((mapping or {}).items())).encode())
    digest.update(hashlib.sha256(secret or b"").digest())
    key = digest.hexdigest()
    out = Path(out_dir)
    summary_path = out / NODE_SUMMARY
    if summary_path.is_file() and (out / NODE_PREPARED).is_file():
        summary = json.loads(summary_path.read_text())
        if summary.get("input_key") == key:
            prepared = pd.read_csv(out / NODE_PREPARED, dtype={"compound_id": str, "split": str, "source": str},
                                   keep_default_na=False, na_values={"value": [""], "std": [""]})
            return NodePreparation(pd.DataFrame(), pd.DataFrame(), prepared, summary)
    raw = read_long_table(path)
    prep = prepare_node_table(raw, catalog, mapping, secret, progress=progress)
    prep.summary["input_key"] = key
    prep.summary["input_name"] = path.name
    prep.write(out)
    return prep


def consortium_catalog_for(table: pd.DataFrame, catalog=None):
    """A simulated consortium's catalog: the embedded one plus the endpoints of ``table`` (a validated
    long table) it lacks, each with its majority unit and inferred task type (what an operator
    would publish for such data)."""
    from pipelines.aggregate import infer_task_type
    from pipelines.catalog import CatalogEndpoint, EndpointCatalog

    catalog = catalog or EndpointCatalog.embedded()
    extra = {}
    for endpoint, part in table.groupby("endpoint", sort=True):
        name = str(endpoint)
        if catalog.resolve(name) is not None:
            continue
        units = part["unit"].astype(str)
        unit = units[units != ""].mode().sort_values().iloc[0] if (units != "").any() else ""
        values = pd.to_numeric(part["value"], errors="coerce")
        extra[name] = CatalogEndpoint(name, infer_task_type(values, unit), unit)
    if not extra:
        return catalog
    return EndpointCatalog({**catalog.endpoints, **extra}, dict(catalog.aliases))
