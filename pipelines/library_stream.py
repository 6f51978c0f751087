"""Read a molecule library in chunks (``row``, ``input``), never holding the whole file.

The streaming half of ``pipelines``' reading (``pipelines.readers`` reads whole files); both work
from one checked :class:`~pipelines.sources.Source`, so a file is inspected once per read.
CSV/TSV (pandas chunks), ``.smi`` (line by line) and Parquet (record batches) stream; SDF is
read whole by ``pipelines.readers.read_molecules`` and then chunked. Row numbers are 0-based
record numbers, as ``read_molecules`` gives them, so outputs line up with the input file.
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


def _frame(rows: range, inputs: list) -> pd.DataFrame:
    return pd.DataFrame({"row": pd.Series(list(rows), dtype="int64"),
                         "input": pd.Series(inputs, dtype=object)})


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
                yield _frame(range(start, start + len(values)), values)
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
                batch.extend(blank_run)
                blank_run = []
                batch.append(fields[0])
                if len(batch) >= chunk_size:
                    yield _frame(range(start, start + len(batch)), batch)
                    start += len(batch)
                    batch = []
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"{source.path}: cannot be read ({exc})") from None
    if batch:
        yield _frame(range(start, start + len(batch)), batch)


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
        yield _frame(range(start, start + len(values)), values)
        start += len(values)


def _whole(source: Source, chunk_size: int, smiles_col: str | None) -> Iterator[pd.DataFrame]:
    table = read_molecules(source, smiles_col=smiles_col)
    inputs = table["input"].tolist()
    forced = table["_reject"].fillna("").astype(str).tolist() if "_reject" in table else None
    for start in range(0, len(table), chunk_size):
        part = inputs[start:start + chunk_size]
        frame = _frame(range(start, start + len(part)), part)
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
