"""Input checks every command runs before it starts Prefect, Ray or Flower.

Each check is cheap (file headers, the first rows, ``bundle.json``; no torch, no Prefect import)
and raises :class:`~pipelines.errors.InputError` with a message that names the option as the
command line spells it (``--smiles-col``, ``--model``, ``LIBRARY``), so a chemist's bad input fails
in about a second with one line instead of after the orchestration has started. The library code
checks the same things again where it reads them; these checks only move the failure forward.
"""

from __future__ import annotations

import csv
import json
import tomllib
from pathlib import Path

from pipelines.errors import InputError

#: Rows read to check a table's SMILES column (the readers detect the column on a sample too).
HEAD_ROWS = 200

#: A partner folder of a partition holds this file (``federation.task.DATA_FILE``; not imported
#: here because importing ``federation`` loads Flower and torch, seconds before the check).
PARTNER_DATA_FILE = "data.csv"


def _relabel(exc: InputError, label: str) -> InputError:
    return InputError(f"{label} {exc}")


def readable_file(path: Path, option: str):
    """The file's :class:`pipelines.sources.Source` (exists, regular, non-empty, known format)."""
    from pipelines.sources import inspect_source

    try:
        return inspect_source(path)
    except InputError as exc:
        raise _relabel(exc, option) from None


def _head_table(source, option: str):
    """The first rows of a CSV / TSV / Parquet file as text columns (None for SMILES / SDF)."""
    import pandas as pd

    from pipelines.sources import open_text

    try:
        if source.fmt == "parquet":
            import pyarrow.parquet as pq

            batch = next(pq.ParquetFile(source.path).iter_batches(batch_size=HEAD_ROWS), None)
            return batch.to_pandas() if batch is not None else pd.DataFrame()
        if source.fmt not in ("csv", "tsv"):
            return None
        with open_text(source) as fh:
            header = fh.readline()
            fh.seek(0)
            # the readers' delimiter rule: tab for TSV; a semicolon header without commas is
            # a spreadsheet export from a decimal-comma locale
            sep = "\t" if source.fmt == "tsv" else (";" if ";" in header and "," not in header else ",")
            return pd.read_csv(fh, sep=sep, dtype=str, keep_default_na=False, nrows=HEAD_ROWS,
                               quoting=csv.QUOTE_MINIMAL)
    except pd.errors.EmptyDataError:
        raise InputError(f"{option} {source.path}: no columns to read (empty table)") from None
    except Exception as exc:  # noqa: BLE001 - pandas/pyarrow raise many types for a broken file
        raise InputError(f"{option} {source.path}: cannot be read ({exc})") from None


def molecule_library(path: Path, option: str = "LIBRARY", smiles_col: str | None = None,
                     smiles_option: str = "--smiles-col"):
    """A molecule file: readable, with rows, and a SMILES column (``smiles_col`` or detected).

    Returns its :class:`pipelines.sources.Source`, to be passed on so the file is inspected once."""
    from pipelines.readers import detect_smiles_column

    source = readable_file(path, option)
    if source.fmt == "smi" and smiles_col is not None:
        raise InputError(f"{smiles_option} {smiles_col!r} does not apply to {option} {path}: a SMILES "
                         "file has no named columns")
    head = _head_table(source, option)
    if head is None:
        return source
    if head.shape[1] == 0 or len(head) == 0:
        raise InputError(f"{option} {path}: no molecules (a header but no data rows)")
    head.columns = [str(c).strip() for c in head.columns]
    if smiles_col is not None:
        if smiles_col not in head.columns:
            raise InputError(f"{smiles_option} {smiles_col!r} is not a column of {option} {path}; "
                             f"columns are {list(head.columns)}")
        return source
    try:
        detect_smiles_column(head)
    except InputError:
        raise InputError(f"{option} {path}: no SMILES column found among {list(head.columns)}; "
                         f"name it 'smiles' or pass {smiles_option}") from None
    return source


def measurement_table(path: Path, option: str = "--data") -> None:
    """A measurement table (long, K-MELLODDY or wide): readable, with a header and rows."""
    source = readable_file(path, option)
    head = _head_table(source, option)
    if head is not None and (head.shape[1] == 0 or len(head) == 0):
        raise InputError(f"{option} {path}: a header but no data rows")


def model_bundle(path: Path, option: str = "--model") -> list[str]:
    """A model bundle folder (``bundle.json`` present, parseable, its files there); its endpoints.

    Checksums, versions and the featurizer config are checked by ``admet.bundle.load_bundle``
    when the bundle is loaded (importing it loads torch, which takes seconds).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{option} {path}: model bundle folder not found")
    if not path.is_dir():
        raise InputError(f"{option} {path}: a model bundle is a folder, got a file")
    meta_path = path / "bundle.json"
    if not meta_path.is_file():
        raise InputError(f"{option} {path}: not a model bundle (no bundle.json; train one with "
                         "`fedadmet admet train --out FOLDER`)")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{option} {path}: bundle.json is corrupt ({exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("tasks"), list):
        raise InputError(f"{option} {path}: bundle.json has no task list (not a model bundle)")
    missing = sorted(rel for rel in meta.get("files", {}) if not (path / rel).is_file())
    if missing:
        raise InputError(f"{option} {path}: bundle files missing: {', '.join(missing[:5])}")
    return [str(t.get("name")) for t in meta["tasks"] if isinstance(t, dict)]


def profile_file(path: Path | None, endpoints: list[str] | None = None, option: str = "--profile") -> None:
    """A desirability profile: a TOML file whose endpoints overlap the model's (when given).

    The full schema is validated by ``flows.desirability.load_profile`` (pydantic + scipy take
    seconds to import; a schema problem still ends as one ``error:`` line, only later).
    """
    if path is None:
        return
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{option} {path}: no such file")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{option} {path}: not valid TOML ({exc})") from None
    scored = raw.get("endpoints") if isinstance(raw, dict) else None
    if not isinstance(scored, dict) or not scored:
        raise InputError(f"{option} {path}: no [endpoints.NAME] sections")
    if endpoints is not None and not set(scored) & set(endpoints):
        raise InputError(f"{option} {path} scores {sorted(scored)} but the model predicts "
                         f"{sorted(endpoints)}: no endpoint in common")


def partition_folder(path: Path, option: str = "--partners-dir") -> None:
    """A partition folder with at least two ``partner_XX/data.csv``."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{option} {path}: no such folder")
    found = [p for p in path.iterdir() if p.is_dir() and (p / PARTNER_DATA_FILE).is_file()]
    if len(found) < 2:
        raise InputError(f"{option} {path}: {len(found)} partner folder(s) with {PARTNER_DATA_FILE}; "
                         "a federation needs >= 2 (write one with `fedadmet data partition`)")


def at_least(value: int | None, minimum: int, option: str) -> None:
    if value is not None and value < minimum:
        raise InputError(f"{option} must be >= {minimum}, got {value}")


def dask_address(address: str, option: str = "--dask-address", timeout: float = 2.0) -> str:
    """``tcp://HOST:PORT`` of a Dask scheduler that accepts connections right now."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "tcp" or not parts.hostname or port is None:
        raise InputError(f"{option} must be tcp://HOST:PORT, got {address!r}")
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        raise InputError(f"{option} {address}: no Dask scheduler answers there ({exc.strerror or exc})") from None
    return f"tcp://{parts.hostname}:{port}"


def task_runner(runner: str | None, workers: int | None, address: str | None):
    """The screening task runner the options ask for; a combination that would ignore one of
    them is an error. ``--dask-address`` alone selects the Dask runner on that cluster."""
    from flows.runners import RunnerSpec

    if runner is not None and runner not in ("default", "dask"):
        raise InputError(f"--runner must be 'default' or 'dask', got {runner!r}")
    if address is not None:
        if runner == "default":
            raise InputError("--dask-address runs on a Dask cluster; it contradicts --runner default")
        if workers is not None:
            raise InputError("--workers sizes a local Dask cluster; with --dask-address the cluster's own "
                             "workers run the tasks (drop --workers)")
        return RunnerSpec(kind="dask", address=dask_address(address))
    if runner == "dask":
        at_least(workers, 1, "--workers")
        return RunnerSpec(kind="dask", workers=workers or 2)
    if workers is not None:
        raise InputError("--workers applies to the Dask runner only (add --runner dask)")
    return RunnerSpec(kind="default")
