"""Read molecule files and measurement tables into DataFrames, never losing a record.

``read_molecules`` gives one row per input record (CSV/TSV/SDF/.smi/Parquet, gzip detected by magic
bytes): ``row`` (0-based record number), ``input`` (the raw SMILES text) and the other columns. An SDF
record RDKit cannot read at all is kept, with ``_reject = "unparsable"`` (``validate_molecules`` turns
it into a reject), so ``row`` numbers stay aligned with the file.

``read_long_table`` reads the project long table, the K-MELLODDY standard table, or a wide table
(SMILES + one column per endpoint, optional ``split``) into ``row, input`` + ``LONG_COLUMNS``.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pandas as pd
from rdkit import Chem

from pipelines.catalog import LONG_COLUMNS
from pipelines.errors import InputError
from pipelines.kmelloddy import kmelloddy_to_long, long_to_kmelloddy, looks_like_kmelloddy
from pipelines.sources import Source, as_source, open_text, read_text
from pipelines.widetable import long_rows_from_long_format, wide_to_long

log = logging.getLogger(__name__)

#: Column names recognised as the SMILES column, best first (compared case-insensitively).
SMILES_COLUMN_NAMES: tuple[str, ...] = (
    "smiles", "smiles_structure_parent", "canonical_smiles", "isomeric_smiles", "cano_smiles",
    "smi", "smiles_string", "structure", "mol_smiles", "molecule", "mol", "drug", "smiles_salt",
)
_CONTENT_SAMPLE = 100
_CONTENT_MIN_FRACTION = 0.6


# ----------------------------------------------------------------------------- raw tables
def _read_delimited(source: Source, sep: str) -> pd.DataFrame:
    try:
        with open_text(source) as fh:
            return pd.read_csv(fh, sep=sep, dtype=str, keep_default_na=False, skipinitialspace=False,
                               quoting=csv.QUOTE_MINIMAL)
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{source.path}: no columns to read (empty table)") from exc
    except pd.errors.ParserError as exc:
        raise InputError(f"{source.path}: malformed {source.fmt.upper()} ({exc})") from exc
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"{source.path}: cannot be read ({exc})") from exc


def _delimiter(source: Source) -> str:
    """Tab for TSV; for CSV a comma, or a semicolon when the header has semicolons and no comma
    (spreadsheets in locales with a decimal comma write those)."""
    if source.fmt == "tsv":
        return "\t"
    try:
        with open_text(source) as fh:
            header = fh.readline()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"{source.path}: cannot be read as text ({exc})") from exc
    return ";" if ";" in header and "," not in header else ","


def _read_parquet(source: Source) -> pd.DataFrame:
    try:
        table = pd.read_parquet(source.path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for corrupt files
        raise InputError(f"{source.path}: not a readable Parquet file ({exc})") from exc
    return table


def _read_smi(source: Source) -> pd.DataFrame:
    lines = read_text(source).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if lines:
        first = lines[0].split(maxsplit=1)
        if first and first[0].lower() in ("smiles", "smi", "canonical_smiles"):
            lines = lines[1:]
    smiles, ids = [], []
    for line in lines:
        fields = line.strip().split(maxsplit=1)
        smiles.append(fields[0] if fields else "")
        ids.append(fields[1].strip() if len(fields) > 1 else "")
    table = pd.DataFrame({"smiles": smiles})
    if any(ids):
        table["id"] = ids
    return table


def _sdf_properties(block_lines: list[str]) -> dict[str, str]:
    props: dict[str, str] = {}
    name, values = None, []
    for line in block_lines:
        if line.startswith(">"):
            if name is not None:
                props[name] = "\n".join(values).strip()
            start, end = line.find("<"), line.find(">", line.find("<") + 1)
            name = line[start + 1:end] if 0 <= start < end else line[1:].strip()
            values = []
        elif name is not None:
            values.append(line)
    if name is not None:
        props[name] = "\n".join(values).strip()
    return props


def _read_sdf(source: Source) -> pd.DataFrame:
    text = read_text(source)
    if "M  END" not in text and "$$$$" not in text:
        raise InputError(f"{source.path}: not an SDF file (no 'M  END' or '$$$$' record markers)")
    blocks = text.replace("\r\n", "\n").split("$$$$\n")
    if blocks and not blocks[-1].strip().strip("$"):
        blocks.pop()
    records = []
    for block in blocks:
        block = block.lstrip("\n") if block.startswith("\n\n") else block
        lines = block.split("\n")
        end = next((i for i, line in enumerate(lines) if line.startswith("M  END")), None)
        molblock = "\n".join(lines[: end + 1]) if end is not None else block
        props = _sdf_properties(lines[end + 1:] if end is not None else [])
        title = lines[0].strip() if lines else ""
        smiles, reject = "", ""
        mol = None
        if end is not None:
            # the usual parse first (stereo from wedges / coordinates needs sanitization); a record
            # that fails it is read unsanitized so validation can say why (e.g. a valence error)
            for sanitize in (True, False):
                try:
                    mol = Chem.MolFromMolBlock(molblock, sanitize=sanitize, removeHs=sanitize)
                except Exception:  # noqa: BLE001
                    mol = None
                if mol is not None:
                    break
        if mol is None or mol.GetNumAtoms() == 0:
            reject = "unparsable"
            smiles = f"<SDF record: {title}>" if title else "<SDF record>"
        else:
            try:
                mol.UpdatePropertyCache(strict=False)
                smiles = Chem.MolToSmiles(mol)
            except Exception:  # noqa: BLE001
                reject, smiles = "unparsable", f"<SDF record: {title}>"
        record = {"smiles": smiles, "name": title, "_reject": reject}
        for key, value in props.items():
            record.setdefault(key, value)
        records.append(record)
    table = pd.DataFrame.from_records(records)
    if not (table["_reject"] != "").any():
        table = table.drop(columns="_reject")
    return table


def read_table(path: Source | str | Path, fmt: str | None = None) -> pd.DataFrame:
    """Any supported file as a raw DataFrame (text columns as ``str``; empty cells as ``""``).

    ``path`` may be a :class:`~pipelines.sources.Source` checked already (not inspected again).
    """
    source = as_source(path, fmt)
    if source.fmt == "parquet":
        table = _read_parquet(source)
    elif source.fmt == "sdf":
        table = _read_sdf(source)
    elif source.fmt == "smi":
        table = _read_smi(source)
    else:
        table = _read_delimited(source, _delimiter(source))
    if table.shape[1] == 0:
        raise InputError(f"{source.path}: no columns found")
    if len(table) == 0:
        raise InputError(f"{source.path}: a header but no data rows")
    table.columns = [str(c).strip() for c in table.columns]
    return table.reset_index(drop=True)


# ----------------------------------------------------------------------------- SMILES column
def _parses(value: str) -> bool:
    value = value.strip()
    if not value or value.isdigit() or " " in value:
        return False
    try:
        return Chem.MolFromSmiles(value, sanitize=False) is not None
    except Exception:  # noqa: BLE001
        return False


def detect_smiles_column(table: pd.DataFrame, smiles_col: str | None = None) -> str:
    """The SMILES column: ``smiles_col`` if given, else by name, else by content."""
    columns = list(table.columns)
    if smiles_col is not None:
        if smiles_col not in columns:
            raise InputError(f"SMILES column {smiles_col!r} not found; columns are {columns}")
        return smiles_col
    lowered = {c.lower(): c for c in columns}
    for name in SMILES_COLUMN_NAMES:
        if name in lowered:
            return lowered[name]
    named = [c for c in columns if "smiles" in c.lower()]
    if named:
        return named[0]
    best, best_score = None, 0.0
    for column in columns:
        values = [v for v in table[column].head(_CONTENT_SAMPLE * 3) if isinstance(v, str) and v.strip()]
        values = values[:_CONTENT_SAMPLE]
        if not values:
            continue
        score = sum(_parses(v) for v in values) / len(values)
        if score > best_score:
            best, best_score = column, score
    if best is None or best_score < _CONTENT_MIN_FRACTION:
        raise InputError(f"no SMILES column found among {columns}; name it 'smiles' or pass smiles_col")
    log.info("SMILES column detected by content: %s (%.0f%% of a sample parse)", best, 100 * best_score)
    return best


def read_molecules(path: Source | str | Path, smiles_col: str | None = None, fmt: str | None = None
                   ) -> pd.DataFrame:
    """One row per record: ``row``, ``input`` (raw SMILES text), then the file's other columns."""
    return molecules_from_frame(read_table(path, fmt), smiles_col)


def molecules_from_frame(table: pd.DataFrame, smiles_col: str | None = None) -> pd.DataFrame:
    """An in-memory table -> ``row``, ``input`` + the other columns (as ``read_molecules``)."""
    column = detect_smiles_column(table, smiles_col)
    raw = table[column]
    others = table.drop(columns=[column])
    renames = {c: f"{c}_input" for c in others.columns if c in ("row", "input", "smiles", "inchikey")}
    others = others.rename(columns=renames)
    out = pd.DataFrame({"row": range(len(table)), "input": raw.astype(object).to_numpy()})
    return pd.concat([out, others.reset_index(drop=True)], axis=1)


# ----------------------------------------------------------------------------- long tables
def long_table_from_frame(table: pd.DataFrame, source_name: str = "input") -> pd.DataFrame:
    """Convert an in-memory table in any of the three layouts to ``row, input`` + ``LONG_COLUMNS``."""
    columns = [str(c) for c in table.columns]
    if looks_like_kmelloddy(columns):
        return kmelloddy_to_long(table, default_source=source_name)
    if {"endpoint", "value"} <= set(columns):
        return long_rows_from_long_format(table, default_source=source_name)
    smiles_column = detect_smiles_column(table)
    return wide_to_long(table, smiles_column, default_source=source_name)


def read_long_table(path: Source | str | Path, fmt: str | None = None) -> pd.DataFrame:
    """A measurement file (project long format, K-MELLODDY, or wide) as ``row, input`` + ``LONG_COLUMNS``.

    Values are left as read (text allowed); ``validate_long_table`` parses and checks them.
    """
    source = as_source(path, fmt)
    table = read_table(source)
    name = source.path.name
    for suffix in (".gz", ".csv", ".tsv", ".parquet", ".sdf", ".smi"):
        name = name.removesuffix(suffix)
    return long_table_from_frame(table, source_name=name)


def write_kmelloddy(long_df: pd.DataFrame, path: str | Path) -> Path:
    """Write a long table in the K-MELLODDY standard layout (gzip when the name ends in ``.gz``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    long_to_kmelloddy(long_df).to_csv(path, index=False)
    return path


__all__ = [
    "LONG_COLUMNS", "SMILES_COLUMN_NAMES", "detect_smiles_column", "long_table_from_frame", "molecules_from_frame",
    "read_long_table", "read_molecules", "read_table", "write_kmelloddy",
]
