"""Streaming, resumable prediction of a molecule library with a model bundle.

The input is inspected once and read in chunks (``pipelines.library_stream``). Worker processes standardize and
featurize each chunk; this process runs the ensemble, the applicability domain and the
calibration, and writes the chunk as one part file under ``OUT.parts/`` (atomically: a part
exists completely or not at all). A re-run with the same input, bundle and chunk size skips
the parts already written, so an interrupted run resumes. When every chunk is done the parts
are joined into ``OUT`` (CSV or Parquet by extension) and the parts folder is removed.

Output: one row per input record, in order: ``row, input, smiles, status, reason``, the input's
other columns as text (IDs, names, SDF properties; a name that clashes with an output column gets
``_input`` appended), ``inchikey`` and ``duplicate_of`` (the row of the first earlier input with the
same InChIKey), the physicochemical columns of ``pipelines.physchem``, the domain
columns ``ad_status, ad_similarity, ad_flags`` and per endpoint ``E, E_std, E_lower, E_upper,
E_in_domain, E_pct_approved``. Next to ``OUT`` a ``OUT.columns.json`` sidecar (and, for Parquet,
the schema metadata key ``fedadmet.columns``) gives each column's unit, meaning and direction
(``admet.columns``; docs/OUTPUTS.md).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from admet.bundle import DOMAIN_TEXT_COLUMNS, FEATURIZATION_FAILED, ModelBundle, load_bundle, output_columns
from admet.columns import parquet_metadata, write_sidecar
from admet.prediction_inputs import PredictionInputs, featurize_for_prediction
from pipelines.errors import InputError
from pipelines.library_stream import iter_library
from pipelines.physchem import PHYSCHEM_COLUMNS
from pipelines.sources import Source, as_source

log = logging.getLogger(__name__)

HEAD_COLUMNS = ("row", "input", "smiles", "status", "reason")
#: After the input's ID columns: the compound identity and the first row with the same identity.
IDENTITY_COLUMNS = ("inchikey", "duplicate_of")
#: Columns of a library chunk that are bookkeeping, not the input's own columns.
_CHUNK_INTERNAL = ("row", "input", "_reject")
OUTPUT_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(slots=True)
class PredictSummary:
    """What a predict run did."""

    n_rows: int
    n_ok: int
    n_rejected: int
    n_chunks: int
    n_chunks_resumed: int
    seconds: float
    out_path: str

    @property
    def molecules_per_second(self) -> float:
        return self.n_rows / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict:
        return asdict(self) | {"molecules_per_second": self.molecules_per_second}


def output_format(out_path: Path) -> str:
    name = out_path.name.lower()
    if name.endswith(".csv.gz"):
        return "csv"
    fmt = OUTPUT_SUFFIXES.get(out_path.suffix.lower())
    if fmt is None:
        raise InputError(f"output {out_path} must end in .csv, .csv.gz or .parquet")
    return fmt


def _prepare_chunk(inputs: list, forced: list | None, spec: str) -> tuple:
    """Worker: standardize + featurize one chunk (``admet.prediction_inputs``, each molecule parsed
    once); returns what the main process needs."""
    from pipelines.standardize import standardize_many

    std = standardize_many(inputs, with_inchikey=True)
    smiles = [s.smiles if s.ok else None for s in std]
    keys = [s.inchikey if s.ok else None for s in std]
    reasons = [str(s.reason.value) if s.reason else "" for s in std]
    if forced is not None:
        for i, r in enumerate(forced):
            if r:
                smiles[i], reasons[i] = None, r
    ok = [i for i, s in enumerate(smiles) if s is not None]
    prepared = featurize_for_prediction([smiles[i] for i in ok], spec)
    return smiles, reasons, np.asarray(ok, dtype=np.int64), keys, prepared


def id_column_names(chunk_columns, task_names: list[str]) -> dict[str, str]:
    """The input's own columns -> their output names (``_input`` appended on a clash)."""
    reserved = set(HEAD_COLUMNS) | set(IDENTITY_COLUMNS) | set(PHYSCHEM_COLUMNS) | set(output_columns(task_names))
    names: dict[str, str] = {}
    for column in chunk_columns:
        if column in _CHUNK_INTERNAL:
            continue
        name = str(column)
        while name in reserved or name in names.values():
            name += "_input"
        names[column] = name
    return names


def duplicate_rows(rows: np.ndarray, keys: list, seen: dict[str, int]) -> pd.Series:
    """For each row, the row of the first earlier one with the same key (NA for a first one or no key);
    ``seen`` (key -> first row) is updated, so it carries over from chunk to chunk."""
    out = []
    for row, key in zip(rows.tolist(), keys, strict=True):
        if key is None:
            out.append(pd.NA)
        elif key in seen:
            out.append(seen[key])
        else:
            seen[key] = row
            out.append(pd.NA)
    return pd.Series(out, dtype="Int64")


def predict_frame(bundle: ModelBundle, chunk: pd.DataFrame, prepared: tuple,
                  seen: dict[str, int] | None = None) -> pd.DataFrame:
    """The output rows of one chunk from its worker result. ``seen`` (InChIKey -> first row) makes
    ``duplicate_of`` span chunks; without it duplicates are found within the chunk."""
    smiles, reasons, ok, keys, inputs = prepared
    valid = inputs.valid
    n = len(chunk)
    status = np.full(n, "rejected", dtype=object)
    reasons = np.asarray(reasons, dtype=object)
    status[ok[valid]] = "ok"
    reasons[ok[~valid]] = FEATURIZATION_FAILED
    preds_ok = bundle.predict_inputs([smiles[i] for i in ok], inputs)
    preds_ok.index = ok
    preds = preds_ok.reindex(pd.RangeIndex(n))
    head = pd.DataFrame({
        "row": chunk["row"].to_numpy(dtype=np.int64),
        "input": pd.Series([None if v is None else str(v) for v in chunk["input"]], dtype=object),
        "smiles": pd.Series([s if status[i] == "ok" else None for i, s in enumerate(smiles)], dtype=object),
        "status": pd.Series(status, dtype=object),
        "reason": pd.Series(reasons, dtype=object),
    })
    names = id_column_names(chunk.columns, bundle.task_names)
    ids = pd.DataFrame({new: chunk[old].to_numpy(dtype=object) for old, new in names.items()}, index=head.index)
    is_ok = status == "ok"
    keys = [k if is_ok[i] else None for i, k in enumerate(keys)]
    identity = pd.DataFrame({"inchikey": pd.Series(keys, dtype=object),
                             "duplicate_of": duplicate_rows(head["row"].to_numpy(), keys,
                                                            {} if seen is None else seen)})
    physchem = np.full((n, len(PHYSCHEM_COLUMNS)), np.nan)
    physchem[ok] = inputs.physchem
    physchem[~is_ok] = np.nan
    physchem = pd.DataFrame(physchem, columns=list(PHYSCHEM_COLUMNS))
    return pd.concat([head, ids, identity, physchem, preds.reset_index(drop=True)], axis=1)


def _schema(task_names: list[str], id_columns: list[str] | tuple[str, ...] = ()) -> pa.Schema:
    fields = [pa.field("row", pa.int64())] + [pa.field(c, pa.string()) for c in HEAD_COLUMNS[1:]]
    fields += [pa.field(c, pa.string()) for c in id_columns]
    fields += [pa.field("inchikey", pa.string()), pa.field("duplicate_of", pa.int64())]
    fields += [pa.field(c, pa.float64()) for c in PHYSCHEM_COLUMNS]
    for col in output_columns(task_names):
        kind = pa.string() if col in DOMAIN_TEXT_COLUMNS else pa.bool_() if col.endswith("_in_domain") else pa.float64()
        fields.append(pa.field(col, kind))
    return pa.schema(fields)


def _write_part(frame: pd.DataFrame, schema: pa.Schema, path: Path) -> None:
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _run_key(bundle_dir: Path, input_path: Path, chunk_size: int, smiles_col: str | None) -> dict:
    st = input_path.stat()
    bundle_digest = hashlib.sha256((bundle_dir / "bundle.json").read_bytes()).hexdigest()
    return {"input": str(input_path.resolve()), "input_size": st.st_size, "input_mtime": st.st_mtime,
            "bundle": bundle_digest, "chunk_size": chunk_size, "smiles_col": smiles_col}


def _parts_dir(out_path: Path, key: dict) -> Path:
    parts = out_path.with_name(out_path.name + ".parts")
    manifest = parts / "manifest.json"
    if parts.exists():
        try:
            old = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        if old != key:
            log.warning("%s holds parts of a run with other input/model/chunk size; starting over", parts)
            shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    if not manifest.exists():
        manifest.write_text(json.dumps(key, indent=1))
    return parts


def _join_parts(parts: Path, n_parts: int, out_path: Path, fmt: str, schema: pa.Schema,
                metadata: dict[bytes, bytes] | None = None) -> None:
    tmp = out_path.with_name(out_path.name + ".tmp")
    if fmt == "parquet":
        with pq.ParquetWriter(tmp, schema.with_metadata(metadata) if metadata else schema) as writer:
            for i in range(n_parts):
                writer.write_table(pq.read_table(parts / f"part_{i:06d}.parquet", schema=schema))
    else:
        gz = out_path.name.lower().endswith(".gz")
        with (gzip.open(tmp, "wt", newline="") if gz else open(tmp, "w", newline="")) as fh:
            for i in range(n_parts):
                # nullable integers (duplicate_of) stay integers in the CSV: "3", not "3.0"
                frame = pq.read_table(parts / f"part_{i:06d}.parquet", schema=schema).to_pandas(
                    types_mapper={pa.int64(): pd.Int64Dtype()}.get)
                frame.to_csv(fh, header=(i == 0), index=False)
    os.replace(tmp, out_path)


def columns_sidecar_path(out_path: Path) -> Path:
    """``OUT.columns.json`` next to a predict output."""
    return out_path.with_name(out_path.name + ".columns.json")


def predict_file(bundle_dir: str | Path, input_path: Source | str | Path, out_path: str | Path,
                 chunk_size: int = 5000, n_jobs: int | None = None, smiles_col: str | None = None,
                 progress: Callable[[int, float], None] | None = None,
                 bundle: ModelBundle | None = None) -> PredictSummary:
    """Predict every record of ``input_path`` into ``out_path`` (see the module docstring).

    ``input_path`` may be a :class:`~pipelines.sources.Source` checked already (the CLI's check);
    a path is inspected here, once. ``progress(n_rows_done, seconds)`` is called after each chunk.
    ``n_jobs`` worker processes standardize and featurize (None: the cores this process may use;
    1: in this process).
    """
    from pipelines.procs import resolve_n_jobs

    # missing, empty or binary input: a clear error before any output
    source = as_source(input_path)
    bundle_dir, input_path, out_path = Path(bundle_dir), source.path, Path(out_path)
    fmt = output_format(out_path)
    bundle = bundle or load_bundle(bundle_dir)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    parts = _parts_dir(out_path, _run_key(bundle_dir, input_path, chunk_size, smiles_col))
    layout: dict = {}  # the input's ID columns and the schema, fixed by the first chunk
    seen: dict[str, int] = {}  # InChIKey -> first row, across chunks (duplicate_of)
    spec = bundle.featurizer_spec
    workers = resolve_n_jobs(n_jobs)
    t0 = time.perf_counter()
    counts = {"rows": 0, "ok": 0, "chunks": 0, "resumed": 0}

    def record(frame: pd.DataFrame) -> None:
        counts["rows"] += len(frame)
        counts["ok"] += int((frame["status"] == "ok").sum())
        counts["chunks"] += 1
        if progress is not None:
            progress(counts["rows"], time.perf_counter() - t0)

    def chunks() -> Iterator[tuple[int, pd.DataFrame]]:
        for i, chunk in enumerate(iter_library(source, chunk_size, smiles_col)):
            if not layout:
                layout["ids"] = list(id_column_names(chunk.columns, bundle.task_names).values())
                layout["schema"] = _schema(bundle.task_names, layout["ids"])
            yield i, chunk

    def finish(i: int, chunk: pd.DataFrame, prepared: tuple) -> None:
        frame = predict_frame(bundle, chunk, prepared, seen)
        _write_part(frame, layout["schema"], parts / f"part_{i:06d}.parquet")
        record(frame)

    def resumed(i: int) -> bool:
        path = parts / f"part_{i:06d}.parquet"
        if not path.exists():
            return False
        done = pq.read_table(path, columns=["row", "status", "inchikey"]).to_pydict()
        status = done["status"]
        for row, key in zip(done["row"], done["inchikey"], strict=True):
            if key is not None:
                seen[key] = min(seen.get(key, row), row)
        counts["rows"] += len(status)
        counts["ok"] += sum(1 for s in status if s == "ok")
        counts["chunks"] += 1
        counts["resumed"] += 1
        if progress is not None:
            progress(counts["rows"], time.perf_counter() - t0)
        return True

    def forced(chunk: pd.DataFrame) -> list | None:
        return chunk["_reject"].tolist() if "_reject" in chunk else None

    try:
        _run(workers, chunks, resumed, finish, forced, spec)
    except InputError:
        if not any(parts.glob("part_*.parquet")):
            shutil.rmtree(parts, ignore_errors=True)
        raise
    if counts["rows"] == 0:
        shutil.rmtree(parts, ignore_errors=True)
        raise InputError(f"{input_path}: the library has no molecules (no data rows)")
    schema = layout["schema"]
    meta = parquet_metadata(schema.names, bundle.tasks, layout["ids"])
    _join_parts(parts, counts["chunks"], out_path, fmt, schema, meta)
    write_sidecar(columns_sidecar_path(out_path), schema.names, bundle.tasks, layout["ids"])
    shutil.rmtree(parts, ignore_errors=True)
    summary = PredictSummary(counts["rows"], counts["ok"], counts["rows"] - counts["ok"], counts["chunks"],
                             counts["resumed"], time.perf_counter() - t0, str(out_path))
    log.info("predicted %d rows (%d ok, %d rejected) in %.1f s (%.0f molecules/s)", summary.n_rows,
             summary.n_ok, summary.n_rejected, summary.seconds, summary.molecules_per_second)
    return summary


#: Rows per worker task when a pool is used: a chunk goes to the workers in blocks of this size, so
#: all workers featurize the same chunk and this process can predict it (the ensemble runs here, one
#: chunk at a time, as before: the same numbers) while they go on with the next. Before, each worker
#: took a whole chunk, and the last ``workers`` chunks were predicted one after the other with the
#: workers idle (with the shipped model the ensemble + domain step costs about 0.4x the worker step).
WORKER_BLOCK = 500


def _join_prepared(blocks: list[tuple], starts: list[int]) -> tuple:
    """One chunk's ``_prepare_chunk`` result from its blocks' (row ``starts`` within the chunk)."""
    if len(blocks) == 1:
        return blocks[0]
    smiles, reasons, keys, ok, parts = [], [], [], [], []
    for (s_, r_, ok_, k_, p_), start in zip(blocks, starts, strict=True):
        smiles += s_
        reasons += r_
        keys += k_
        ok.append(ok_ + start)
        parts.append(p_)
    return smiles, reasons, np.concatenate(ok), keys, PredictionInputs.concat(parts)


def _run(workers, chunks, resumed, finish, forced, spec) -> None:
    """Process the chunks: in this process (workers <= 1) or with a pool, results in order."""
    if workers <= 1:
        for i, chunk in chunks():
            if not resumed(i):
                finish(i, chunk, _prepare_chunk(chunk["input"].tolist(), forced(chunk), spec))
    else:
        pending: deque = deque()
        from pipelines.featurize.parallel import PRELOAD
        from pipelines.procs import process_pool

        def done(j: int, c: pd.DataFrame, starts: list[int], futures: list) -> None:
            finish(j, c, _join_prepared([f.result() for f in futures], starts))

        with process_pool(workers, preload=PRELOAD) as pool:
            for i, chunk in chunks():
                if resumed(i):
                    continue
                starts = list(range(0, max(len(chunk), 1), WORKER_BLOCK))
                futures = [pool.submit(_prepare_chunk, block["input"].tolist(), forced(block), spec)
                           for block in (chunk.iloc[s:s + WORKER_BLOCK] for s in starts)]
                pending.append((i, chunk, starts, futures))
                while len(pending) > workers:
                    done(*pending.popleft())
            while pending:
                done(*pending.popleft())
