"""Streaming, resumable prediction of a molecule library with a model bundle.

The input is inspected once and read in chunks (``pipelines.library_stream``). Worker processes standardize and
featurize each chunk; this process runs the ensemble, the applicability domain and the
calibration, and writes the chunk as one part file under ``OUT.parts/`` (atomically: a part
exists completely or not at all). A re-run with the same input, bundle and chunk size skips
the parts already written, so an interrupted run resumes. When every chunk is done the parts
are joined into ``OUT`` (CSV or Parquet by extension) and the parts folder is removed.

Output: one row per input record, in order: ``row, input, smiles, status, reason`` and per
endpoint ``E, E_std, E_lower, E_upper, E_in_domain, E_pct_approved``.
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

from admet.bundle import FEATURIZATION_FAILED, ModelBundle, load_bundle, output_columns
from admet.domain import morgan_on_bits
from pipelines.errors import InputError
from pipelines.library_stream import iter_library
from pipelines.sources import Source, as_source

log = logging.getLogger(__name__)

HEAD_COLUMNS = ("row", "input", "smiles", "status", "reason")
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
    """Worker: standardize + featurize one chunk; returns what the main process needs."""
    from pipelines.featurize import featurize_smiles
    from pipelines.standardize import standardize_many

    std = standardize_many(inputs, with_inchikey=False)
    smiles = [s.smiles if s.ok else None for s in std]
    reasons = [str(s.reason.value) if s.reason else "" for s in std]
    if forced is not None:
        for i, r in enumerate(forced):
            if r:
                smiles[i], reasons[i] = None, r
    ok = [i for i, s in enumerate(smiles) if s is not None]
    ok_smiles = [smiles[i] for i in ok]
    if ok_smiles:
        fm = featurize_smiles(ok_smiles, spec=spec, n_jobs=1)
        X, valid = fm.X, fm.valid
    else:
        X, valid = None, np.zeros(0, bool)
    bits = morgan_on_bits(ok_smiles)
    return smiles, reasons, np.asarray(ok, dtype=np.int64), X, valid, bits


def predict_frame(bundle: ModelBundle, chunk: pd.DataFrame, prepared: tuple) -> pd.DataFrame:
    """The output rows of one chunk from its worker result."""
    smiles, reasons, ok, X, valid, bits = prepared
    n = len(chunk)
    status = np.full(n, "rejected", dtype=object)
    reasons = np.asarray(reasons, dtype=object)
    if len(ok):
        status[ok[valid]] = "ok"
        reasons[ok[~valid]] = FEATURIZATION_FAILED
        preds_ok = bundle.predict_features(X, [smiles[i] for i in ok], valid, domain_bits=bits)
        preds_ok.index = ok
        preds = preds_ok.reindex(pd.RangeIndex(n))
    else:
        preds = bundle.predict_features(np.zeros((0, 1), np.float32), [], np.zeros(0, bool)).reindex(
            pd.RangeIndex(n))
    head = pd.DataFrame({
        "row": chunk["row"].to_numpy(dtype=np.int64),
        "input": pd.Series([None if v is None else str(v) for v in chunk["input"]], dtype=object),
        "smiles": pd.Series([s if status[i] == "ok" else None for i, s in enumerate(smiles)], dtype=object),
        "status": pd.Series(status, dtype=object),
        "reason": pd.Series(reasons, dtype=object),
    })
    return pd.concat([head, preds.reset_index(drop=True)], axis=1)


def _schema(task_names: list[str]) -> pa.Schema:
    fields = [pa.field("row", pa.int64())] + [pa.field(c, pa.string()) for c in HEAD_COLUMNS[1:]]
    for col in output_columns(task_names):
        fields.append(pa.field(col, pa.bool_() if col.endswith("_in_domain") else pa.float64()))
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


def _join_parts(parts: Path, n_parts: int, out_path: Path, fmt: str, schema: pa.Schema) -> None:
    tmp = out_path.with_name(out_path.name + ".tmp")
    if fmt == "parquet":
        with pq.ParquetWriter(tmp, schema) as writer:
            for i in range(n_parts):
                writer.write_table(pq.read_table(parts / f"part_{i:06d}.parquet", schema=schema))
    else:
        gz = out_path.name.lower().endswith(".gz")
        with (gzip.open(tmp, "wt", newline="") if gz else open(tmp, "w", newline="")) as fh:
            for i in range(n_parts):
                frame = pq.read_table(parts / f"part_{i:06d}.parquet", schema=schema).to_pandas()
                frame.to_csv(fh, header=(i == 0), index=False)
    os.replace(tmp, out_path)


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
    schema = _schema(bundle.task_names)
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
        yield from enumerate(iter_library(source, chunk_size, smiles_col))

    def finish(i: int, chunk: pd.DataFrame, prepared: tuple) -> None:
        frame = predict_frame(bundle, chunk, prepared)
        _write_part(frame, schema, parts / f"part_{i:06d}.parquet")
        record(frame)

    def resumed(i: int) -> bool:
        path = parts / f"part_{i:06d}.parquet"
        if not path.exists():
            return False
        status = pq.read_table(path, columns=["status"]).column("status").to_pylist()
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
    _join_parts(parts, counts["chunks"], out_path, fmt, schema)
    shutil.rmtree(parts, ignore_errors=True)
    summary = PredictSummary(counts["rows"], counts["ok"], counts["rows"] - counts["ok"], counts["chunks"],
                             counts["resumed"], time.perf_counter() - t0, str(out_path))
    log.info("predicted %d rows (%d ok, %d rejected) in %.1f s (%.0f molecules/s)", summary.n_rows,
             summary.n_ok, summary.n_rejected, summary.seconds, summary.molecules_per_second)
    return summary


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

        with process_pool(workers, preload=PRELOAD) as pool:
            for i, chunk in chunks():
                if resumed(i):
                    continue
                pending.append((i, chunk, pool.submit(_prepare_chunk, chunk["input"].tolist(),
                                                      forced(chunk), spec)))
                while len(pending) > workers:
                    j, c, fut = pending.popleft()
                    finish(j, c, fut.result())
            while pending:
                j, c, fut = pending.popleft()
                finish(j, c, fut.result())
