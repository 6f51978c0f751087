"""``fedadmet data ...``: catalog, validate, featurize, partition.

Every command turns an ``InputError`` (an unusable file) into one red line and exit code 2; rows that
are rejected are normal (exit 0). Each command writes its resolved settings (``config.json``) next to
its outputs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flows.cli.errors import CommandGroup
from pipelines.errors import InputError
from pipelines.partition_defaults import SCORABLE_ENDPOINT_ROWS

log = logging.getLogger(__name__)

app = typer.Typer(cls=CommandGroup, help="Molecule data pipeline: catalog, validate, featurize, partition.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console()
err_console = Console(stderr=True)


@contextlib.contextmanager
def _progress(label: str, total: int) -> Iterator:
    """A rich progress bar; yields ``update(n_done)``."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


def _write_config(out_dir: Path, command: str, **settings: object) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"command": f"fedadmet data {command}",
           **{k: (str(v) if isinstance(v, Path) else v) for k, v in settings.items()}}
    (out_dir / "config.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")


def _reasons_table(result, title: str) -> Table:
    table = Table(title=title)
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    table.add_row("input", str(result.n_input))
    table.add_row("[green]accepted", str(len(result.accepted)))
    table.add_row("[red]rejected", str(len(result.rejected)))
    for reason, count in result.reason_counts().items():
        table.add_row(f"  {reason}", str(count))
    return table


# ----------------------------------------------------------------------------- catalog
@app.command("catalog")
def catalog_cmd(
    as_json: bool = typer.Option(False, "--json", help="Every catalog column as JSON on stdout."),
) -> None:
    """The embedded endpoints: task type, unit, transform, count, metric, source paper, licence."""
    from flows.cli.catalog_view import print_catalog
    from pipelines.catalog import load_catalog

    print_catalog(load_catalog(), console, as_json=as_json)


# ----------------------------------------------------------------------------- validate
def _is_long_table(columns: list[str]) -> bool:
    from pipelines.kmelloddy import looks_like_kmelloddy

    return looks_like_kmelloddy(columns) or {"endpoint", "value"} <= set(columns)


@app.command("validate")
def validate_cmd(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="CSV/TSV/SDF/.smi/Parquet (gzip ok)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for accepted.csv / rejected.csv."),
    smiles_col: str | None = typer.Option(None, "--smiles-col", help="SMILES column (default: detected)."),
    kind: str = typer.Option("auto", help="auto | molecules | long (measurement table: also checks "
                                          "values, relations and units)."),
    tautomer: bool = typer.Option(False, "--tautomer", help="Also canonicalize tautomers (slower)."),
    consortium: bool = typer.Option(False, "--consortium",
                                    help="Long tables: validate as a consortium node does (endpoint names mapped "
                                         "to the catalog, others rejected unmapped_endpoint)."),
    catalog: Path | None = typer.Option(None, "--catalog", help="With --consortium: the consortium's catalog.json "
                                                                "(default: the embedded catalog)."),
    endpoint_map: Path | None = typer.Option(None, "--endpoint-map",
                                             help="With --consortium: CSV partner_endpoint,catalog_endpoint."),
) -> None:
    """Standardize every record: accepted.csv (row, input, smiles, inchikey, ...) + rejected.csv."""
    from pipelines.readers import long_table_from_frame, molecules_from_frame, read_table
    from pipelines.validate import validate_long_table, validate_molecules

    if kind not in ("auto", "molecules", "long"):
        raise InputError(f"--kind must be auto, molecules or long, not {kind!r}")
    if (catalog is not None or endpoint_map is not None) and not consortium:
        raise InputError("--catalog and --endpoint-map need --consortium")
    node_catalog = mapping = None
    if consortium:
        from pipelines.catalog import EndpointCatalog, read_endpoint_map

        node_catalog = EndpointCatalog.read(catalog) if catalog else EndpointCatalog.embedded()
        mapping = read_endpoint_map(endpoint_map, node_catalog) if endpoint_map else None
    start = time.perf_counter()
    raw = read_table(input_path)
    as_long = kind == "long" or (kind == "auto" and smiles_col is None and _is_long_table(list(raw.columns)))
    with _progress("standardizing", len(raw)) as update:
        if as_long:
            long_df = long_table_from_frame(raw, source_name=input_path.name.split(".")[0])
            result = validate_long_table(long_df, tautomer=tautomer, progress=update, consortium=node_catalog,
                                         endpoint_map=mapping)
        else:
            frame = molecules_from_frame(raw, smiles_col)
            result = validate_molecules(frame, smiles_col="input", tautomer=tautomer, progress=update)
    out.mkdir(parents=True, exist_ok=True)
    result.accepted.to_csv(out / "accepted.csv", index=False)
    result.rejected.to_csv(out / "rejected.csv", index=False)
    _write_config(out, "validate", input=input_path, smiles_col=smiles_col, kind="long" if as_long
                  else "molecules", tautomer=tautomer, n_input=result.n_input,
                  n_accepted=len(result.accepted), n_rejected=len(result.rejected))
    console.print(_reasons_table(result, f"{input_path.name}: {'measurements' if as_long else 'molecules'}"))
    console.print(f"wrote {out / 'accepted.csv'} and {out / 'rejected.csv'} "
                  f"({time.perf_counter() - start:.1f} s)")


# ----------------------------------------------------------------------------- featurize
def _feature_names(matrix, spec: str) -> list[str]:
    names = getattr(matrix, "feature_names", None)
    if names is not None and len(names) == matrix.X.shape[1]:
        return [str(n) for n in names]
    try:
        from pipelines.featurize import get_featurizer

        names = [str(n) for part in spec.split("+") for n in get_featurizer(part).feature_names]
        if len(names) == matrix.X.shape[1]:
            return names
    except Exception:  # noqa: BLE001 - names are cosmetic; fall back to positions
        log.debug("no feature names for %s", spec, exc_info=True)
    return [f"f{i}" for i in range(matrix.X.shape[1])]


@app.command("featurize")
def featurize_cmd(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="Molecule file (CSV/TSV/SDF/.smi/Parquet)."),
    featurizer: str = typer.Option("morgan_count", "--featurizer", "-f",
                                   help="Featurizer name or spec (names joined by '+')."),
    out: Path = typer.Option(..., "--out", "-o", help="features.parquet, or features.npy (+ .index.csv)."),
    smiles_col: str | None = typer.Option(None, "--smiles-col"),
    n_jobs: int | None = typer.Option(None, "--n-jobs", help="Worker processes (default: all cores)."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="On-disk feature cache folder."),
) -> None:
    """Standardize then featurize; one output row per input record (rejected rows: NaN, valid=False)."""
    from pipelines.featurize import featurize_smiles
    from pipelines.readers import read_molecules
    from pipelines.validate import validate_molecules

    suffix = out.name.lower()
    if not (suffix.endswith(".parquet") or suffix.endswith(".npy")):
        raise InputError(f"--out must end in .parquet or .npy, not {out.name!r}")
    start = time.perf_counter()
    frame = read_molecules(input_path, smiles_col=smiles_col)
    with _progress("standardizing", len(frame)) as update:
        checked = validate_molecules(frame, progress=update)
    accepted = checked.accepted
    with err_console.status(f"featurizing {len(accepted):,} molecules with {featurizer}"):
        matrix = featurize_smiles(accepted["smiles"].tolist(), spec=featurizer, n_jobs=n_jobs,
                                  cache_dir=cache_dir)
    n, d = len(frame), matrix.X.shape[1]
    X = np.full((n, d), np.nan, dtype=np.float32)
    valid = np.zeros(n, dtype=bool)
    position = {row: i for i, row in enumerate(frame["row"].tolist())}
    where = np.asarray([position[r] for r in accepted["row"]], dtype=int)
    X[where] = matrix.X
    valid[where] = np.asarray(matrix.valid, dtype=bool)
    index = frame.loc[:, ["row", "input"]].copy()
    index["smiles"] = ""
    index["inchikey"] = ""
    index.loc[where, "smiles"] = accepted["smiles"].to_numpy()
    index.loc[where, "inchikey"] = accepted["inchikey"].to_numpy()
    index["reason"] = ""
    reject_pos = np.asarray([position[r] for r in checked.rejected["row"]], dtype=int)
    index.loc[reject_pos, "reason"] = checked.rejected["reason"].to_numpy()
    index.loc[(index["reason"] == "") & ~valid, "reason"] = "featurization_failed"
    index["valid"] = valid
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix.endswith(".parquet"):
        features = pd.DataFrame(X, columns=_feature_names(matrix, featurizer))
        pd.concat([index, features], axis=1).to_parquet(out, index=False)
        written = [out]
    else:
        np.save(out, X)
        index_path = out.with_name(out.name[:-4] + ".index.csv")
        index.to_csv(index_path, index=False)
        written = [out, index_path]
    _write_config(out.parent, "featurize", input=input_path, featurizer=featurizer, out=out,
                  feature_config=getattr(matrix, "config", None), n_input=n, n_valid=int(valid.sum()),
                  n_features=d)
    console.print(f"{n:,} records -> {int(valid.sum()):,} featurized ({d} features), "
                  f"{n - int(valid.sum()):,} invalid; wrote {', '.join(map(str, written))} "
                  f"({time.perf_counter() - start:.1f} s)")


# ----------------------------------------------------------------------------- partition
def summary(manifest: pd.DataFrame, title: str = "Partners", rejected: int | None = None,
            dropped: int | None = None, out: Console | None = None) -> Table:
    """Print (and return) a readable table of a partition manifest: one row per partner."""
    endpoints = [c for c in manifest.columns if c not in ("partner", "n_rows", "n_compounds", "n_endpoints")]
    table = Table(title=title)
    table.add_column("partner")
    table.add_column("rows", justify="right")
    table.add_column("compounds", justify="right")
    table.add_column("endpoints", justify="right")
    table.add_column("largest endpoints")
    for row in manifest.to_dict("records"):
        top = sorted(((row[e], e) for e in endpoints if row[e] > 0), reverse=True)[:3]
        table.add_row(row["partner"], f"{row['n_rows']:,}", f"{row['n_compounds']:,}", str(row["n_endpoints"]),
                      ", ".join(f"{e} {c}" for c, e in top))
    caption = [f"{int(manifest['n_rows'].sum()):,} rows in {len(manifest)} partners"]
    if rejected is not None:
        caption.append(f"{rejected:,} rows rejected by validation")
    if dropped is not None:
        caption.append(f"{dropped:,} dropped by task skew")
    table.caption = "; ".join(caption)
    (out or console).print(table)
    return table


@app.command("partition")
def partition_cmd(
    input_path: Path | None = typer.Argument(None, metavar="[INPUT]",
                                             help="Measurement table (default: the embedded catalog)."),
    partners: int = typer.Option(20, "--partners", "-n", help="Number of partners."),
    alpha: float = typer.Option(0.5, "--alpha", help="Dirichlet concentration (smaller = more non-IID)."),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (partner_XX/data.csv + manifest)."),
    min_rows: int = typer.Option(30, "--min-rows", help="Fewest rows any partner may end with."),
    min_endpoints: int = typer.Option(1, "--min-endpoints", help="Fewest endpoints a partner measures."),
    min_endpoint_rows: int = typer.Option(SCORABLE_ENDPOINT_ROWS, "--min-endpoint-rows",
                                          help="Every partner holds at least this many rows of one endpoint it "
                                               "measures, so it can be scored (best effort; 0 = off)."),
    aggregate: bool = typer.Option(True, "--aggregate/--no-aggregate",
                                   help="Aggregate replicates (one row per compound x endpoint) first."),
) -> None:
    """Validate a pooled measurement table and split it into N non-IID partners."""
    from pipelines.catalog import load_embedded
    from pipelines.partner_data import prepare_partition
    from pipelines.readers import read_long_table

    start = time.perf_counter()
    long_df = load_embedded() if input_path is None else read_long_table(input_path)
    with _progress("validating and partitioning", len(long_df)) as update:
        prepared = prepare_partition(long_df, out, n_partners=partners, alpha=alpha, seed=seed, aggregate=aggregate,
                                     min_rows=min_rows, min_endpoints=min_endpoints,
                                     min_endpoint_rows=min_endpoint_rows, progress=update)
    done = prepared.summary
    _write_config(out, "partition", input=input_path or "embedded catalog", partners=partners,
                  alpha=alpha, seed=seed, min_rows=min_rows, min_endpoints=min_endpoints,
                  min_endpoint_rows=min_endpoint_rows, aggregate=aggregate, n_input=done.n_rows, n_rejected=done.n_rejected,
                  n_partitioned=done.n_partitioned, dropped_by_task_skew=done.n_dropped)
    summary(prepared.manifest, title=f"{partners} partners (alpha={alpha}, seed={seed})",
            rejected=done.n_rejected, dropped=done.n_dropped)
    console.print(f"wrote {out}/partner_XX/data.csv, manifest.csv, manifest.json "
                  f"({time.perf_counter() - start:.1f} s)")
