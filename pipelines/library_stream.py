"""Read a molecule library in chunks (``row``, ``input``), never holding the whole file.

The streaming half of ``pipelines``' reading (``pipelines.readers`` reads whole files); both work
from one checked :class:`~pipelines.sources.Source`, so a file is inspected once per read.
CSV/TSV (pandas chunks), ``.smi`` (line by line) and Parquet (record batches) stream; SDF is
read whole by ``pipelines.readers.read_molecules`` and then chunked. Row numbers are 0-based
record numbers, as ``read_molecules`` gives them, so outputs line up with the input file.

Every other column of the input (ID and name columns, SDF properties; ``.smi``: the name after the
SMILES as ``id``) rides along as text, after ``row, input``, so predictions keep the input's
identifiers. Empty cells are ``""``.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from pipelines.errors import InputError
from pipelines.readers import detect_smiles_column, read_molecules
from pipelines.sources import Source, as_source, open_text

log = logging.getLogger(__name__)

_SMI_HEADERS = ("smiles", "smi", "canonical_smiles")


def _frame(rows: range, inputs: list, extra: pd.DataFrame | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"row": pd.Series(list(rows), dtype="int64"),
                          "input": pd.Series(inputs, dtype=object)})
    if extra is not None and extra.shape[1]:
        extra = extra.reset_index(drop=True)
        for column in extra.columns:
            frame[str(column)] = [_text(v) for v in extra[column].tolist()]
    return frame


def _text(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return value if isinstance(value, str) else str(value)


def _delimited(source: Source, sep: str, chunk_size: int, smiles_col: str | None) -> Iterator[pd.DataFrame]:
    start = 0
    column = None
    try:
        with open_text(source) as fh:
            reader = pd.read_csv(fh, sep=sep, dtype=str, keep_default_na=False, chunksize=chunk_size,
                                 quoting=csv.QUOTE_MINIMAL)
            for chunk in reader:
                if column is None:
                    column = detect_smiles_column(chunk, smiles_col)
                values = chunk[column].tolist()
                yield _frame(range(start, start + len(values)), values, chunk.drop(columns=[column]))
                start += len(values)
    except pd.errors.EmptyDataError:
        raise InputError(f"{source.path}: no columns to read (empty table)") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{source.path}: malformed {source.fmt.upper()} ({exc})") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"{source.path}: cannot be read ({exc})") from None


def _smi(source: Source, chunk_size: int) -> Iterator[pd.DataFrame]:
    start, first = 0, True
    batch: list[str] = []
    names: list[str] = []
    with_names: bool | None = None  # decided by the first record: an ``id`` column or none
    blank_run: list[str] = []  # blank lines are rows only when a record follows them
    try:
        with open_text(source) as fh:
            for line in fh:
                fields = line.strip().split(maxsplit=1)
                if first:
                    first = False
                    if fields and fields[0].lower() in _SMI_HEADERS:
                        continue
                if not fields:
                    blank_run.append("")
                    continue
                if with_names is None:
                    with_names = len(fields) > 1
                batch.extend(blank_run)
                names.extend([""] * len(blank_run))
                blank_run = []
                batch.append(fields[0])
                names.append(fields[1].strip() if len(fields) > 1 else "")
                if len(batch) >= chunk_size:
                    yield _frame(range(start, start + len(batch)), batch,
                                 pd.DataFrame({"id": names}) if with_names else None)
                    start += len(batch)
                    batch, names = [], []
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"{source.path}: cannot be read ({exc})") from None
    if batch:
        yield _frame(range(start, start + len(batch)), batch, pd.DataFrame({"id": names}) if with_names else None)


def _parquet(source: Source, chunk_size: int, smiles_col: str | None) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(source.path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for corrupt files
        raise InputError(f"{source.path}: not a readable Parquet file ({exc})") from None
    column, start = None, 0
    for batch in pf.iter_batches(batch_size=chunk_size):
        frame = batch.to_pandas()
        if column is None:
            column = detect_smiles_column(frame, smiles_col)
        values = frame[column].astype(object).tolist()
        yield _frame(range(start, start + len(values)), values, frame.drop(columns=[column]))
        start += len(values)


def _whole(source: Source, chunk_size: int, smiles_col: str | None) -> Iterator[pd.DataFrame]:
    table = read_molecules(source, smiles_col=smiles_col)
    inputs = table["input"].tolist()
    forced = table["_reject"].fillna("").astype(str).tolist() if "_reject" in table else None
    extra = table.drop(columns=[c for c in ("row", "input", "_reject") if c in table.columns])
    for start in range(0, len(table), chunk_size):
        part = inputs[start:start + chunk_size]
        frame = _frame(range(start, start + len(part)), part, extra.iloc[start:start + chunk_size])
        if forced is not None:  # an SDF record RDKit could not read: kept, with its reason
            frame["_reject"] = forced[start:start + chunk_size]
        yield frame


def iter_library(source: Source | str | Path, chunk_size: int = 5000, smiles_col: str | None = None
                 ) -> Iterator[pd.DataFrame]:
    """Chunks of ``row, input`` for a CSV/TSV/SMILES/Parquet/SDF file (gzip transparently).

    ``source`` is a checked :class:`Source` (used as it is) or a path (inspected here, once).
    """
    if chunk_size < 1:
        raise InputError(f"chunk size must be >= 1, got {chunk_size}")
    source = as_source(source)
    if source.fmt == "csv":
        yield from _delimited(source, ",", chunk_size, smiles_col)
    elif source.fmt == "tsv":
        yield from _delimited(source, "\t", chunk_size, smiles_col)
    elif source.fmt == "smi":
        yield from _smi(source, chunk_size)
    elif source.fmt == "parquet":
        yield from _parquet(source, chunk_size, smiles_col)
    else:
        log.info("%s: %s is read whole, then predicted in chunks", source.path, source.fmt.upper())
        yield from _whole(source, chunk_size, smiles_col)
