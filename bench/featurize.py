"""Featurization benchmark (issue 2, section 5): pipelines.featurize against plain RDKit loops.

One run measures, side by side:
  1. Morgan counts (radius 2, 2048): the plain single-process loop (``Chem.MolFromSmiles`` +
     ``GetCountFingerprintAsNumPy`` into a float32 matrix) vs ``featurize_smiles(spec="morgan_count",
     n_jobs=N)``; outputs must be identical.
  2. RDKit 2D descriptors on a subset: the naive loop over ``Descriptors.descList`` vs ``rdkit2d``
     in one process (per-core speed) and on N processes; values must match (1e-6, NaN where NaN).
  3. The on-disk cache: a cold run writing the cache vs a second run reading it.
  4. Streaming: a child process streams the library repeated up to 100k and 1M molecules through
     ``iter_featurize`` and reports its peak RSS (and its workers', sampled as a process tree).

    .venv/bin/python bench/featurize.py [SMILES_FILE] [--n-jobs 2] [--rdkit2d-n 2000]
        [--stream-sizes 100000 1000000] [--skip-stream] [--out bench/results/featurize.json]

SMILES_FILE: one SMILES per line (first whitespace-separated token), ``.gz`` read transparently;
default ``/work/shared/data/moses_100k.smi.gz``. Prints a table and writes JSON. Timings are wall
clock; on a shared machine they are noisy, so the load average at start is recorded too.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pipelines  # noqa: E402

pipelines.configure()  # a benchmark is an entry point: the CLI's runtime defaults (offline, quiet, passive OpenMP)
from pipelines.featurize import featurize_smiles, iter_featurize  # noqa: E402
from pipelines.featurize.descriptors2d import naive_descriptors_2d  # noqa: E402

DEFAULT_INPUT = Path(os.environ.get("FEDADMET_SHARED_DATA", "/work/shared/data")) / "moses_100k.smi.gz"


def iter_smiles(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        for line in handle:
            token = line.split(maxsplit=1)[0] if line.strip() else ""
            if token and token.lower() != "smiles":
                yield token


def repeated(path: Path, n: int) -> Iterator[str]:
    produced = 0
    while produced < n:
        before = produced
        for smi in iter_smiles(path):
            if produced >= n:
                return
            yield smi
            produced += 1
        if produced == before:
            return


# ------------------------------------------------------------------------------------ baselines
def morgan_floor(smiles: list[str]) -> np.ndarray:
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    out = np.full((len(smiles), 2048), np.nan, dtype=np.float32)
    for i, smi in enumerate(smiles):
        mol = Chem.MolFromSmiles(smi)
        if mol is not None:
            out[i] = gen.GetCountFingerprintAsNumPy(mol)
    return out


def rdkit2d_naive(smiles: list[str]) -> np.ndarray:
    from rdkit import Chem

    out = np.full((len(smiles), len(naive_descriptors_2d(Chem.MolFromSmiles("C")))), np.nan)
    for i, smi in enumerate(smiles):
        mol = Chem.MolFromSmiles(smi)
        if mol is not None:
            out[i] = naive_descriptors_2d(mol)
    return out


CPU_LOG: dict[str, dict[str, float]] = {}


def _cpu() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker processes, once joined
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def timed(label: str, fn, *args, **kwargs):
    """Wall seconds, and CPU seconds of this process and of its (finished) workers under CPU_LOG."""
    cpu0, start = _cpu(), time.perf_counter()
    result = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    cpu1 = _cpu()
    CPU_LOG[label] = {"wall_s": seconds, "cpu_main_s": cpu1[0] - cpu0[0], "cpu_workers_s": cpu1[1] - cpu0[1]}
    return result, seconds


# -------------------------------------------------------------------------------------- streaming
def stream_child(path: Path, n: int, n_jobs: int, chunk_size: int) -> None:
    """Runs in a child process: stream n molecules, print one JSON line with peak RSS figures."""
    import psutil

    me = psutil.Process()
    peak_tree = [0]
    peak_workers = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            total = 0
            try:
                for proc in me.children(recursive=True):
                    try:
                        rss = proc.memory_info().rss
                    except psutil.Error:
                        continue
                    total += rss
                    peak_workers[0] = max(peak_workers[0], rss)
            except psutil.Error:
                pass
            total += me.memory_info().rss
            peak_tree[0] = max(peak_tree[0], total)
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    rows = valid = 0
    column_sum = None
    for chunk in iter_featurize(repeated(path, n), spec="morgan_count", chunk_size=chunk_size, n_jobs=n_jobs):
        rows += len(chunk)
        valid += int(chunk.valid.sum())
        part = np.nansum(chunk.X, axis=0, dtype=np.float64)
        column_sum = part if column_sum is None else column_sum + part
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    print(json.dumps({
        "molecules": rows,
        "valid": valid,
        "seconds": seconds,
        "mol_per_s": rows / seconds,
        # VmHWM: this process's own peak (ru_maxrss would carry the benchmark parent's peak
        # across fork+exec); workers and the whole tree are sampled every 0.2 s.
        "peak_rss_main_mb": _vm_hwm_mb(),
        "peak_rss_largest_child_mb": peak_workers[0] / 2**20,
        "peak_rss_tree_mb": peak_tree[0] / 2**20,
        "checksum": float(column_sum.sum()) if column_sum is not None else 0.0,
    }))


def _vm_hwm_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_stream(path: Path, n: int, n_jobs: int, chunk_size: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), str(path), "--stream-child", str(n),
           "--n-jobs", str(n_jobs), "--chunk-size", str(chunk_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"streaming child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", nargs="?", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--rdkit2d-n", type=int, default=2000, help="molecules for the descriptor comparison")
    parser.add_argument("--stream-sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--chunk-size", type=int, default=10_000, help="streaming chunk size")
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "featurize.json")
    parser.add_argument("--stream-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.input.exists():
        print(f"error: SMILES file not found: {args.input}", file=sys.stderr)
        return 2
    if args.stream_child is not None:
        stream_child(args.input, args.stream_child, args.n_jobs, args.chunk_size)
        return 0

    from rdkit import __version__ as rdkit_version

    smiles = list(iter_smiles(args.input))
    n = len(smiles)
    results: dict = {
        "input": str(args.input), "molecules": n, "n_jobs": args.n_jobs,
        "cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(), "rdkit": rdkit_version,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    rows: list[tuple[str, str, str, str]] = []

    # 1. Morgan counts -----------------------------------------------------------------------
    floor, t_floor = timed("morgan_floor", morgan_floor, smiles)
    ours, t_ours = timed("morgan_pipeline", featurize_smiles, smiles, spec="morgan_count", n_jobs=args.n_jobs)
    identical = bool(np.array_equal(floor, ours.X, equal_nan=True))
    del floor
    morgan = {
        "floor_seconds": t_floor, "floor_mol_per_s": n / t_floor,
        "pipeline_seconds": t_ours, "pipeline_mol_per_s": n / t_ours,
        "speedup": t_floor / t_ours, "target_speedup": 1.7, "identical": identical,
    }
    results["morgan_count"] = morgan
    rows.append(("Morgan counts, plain loop, 1 process", f"{n / t_floor:,.0f} mol/s", "1.00x", ""))
    rows.append((f"Morgan counts, featurize_smiles, {args.n_jobs} procs", f"{n / t_ours:,.0f} mol/s",
                 f"{morgan['speedup']:.2f}x", f"target >= 1.7x; identical={identical}"))
    del ours

    # 2. RDKit 2D descriptors on a subset ----------------------------------------------------
    step = max(1, n // args.rdkit2d_n)
    subset = smiles[::step][: args.rdkit2d_n]
    m = len(subset)
    naive, t_naive = timed("rdkit2d_naive", rdkit2d_naive, subset)
    one, t_one = timed("rdkit2d_one_process", featurize_smiles, subset, spec="rdkit2d", n_jobs=1)
    par, t_par = timed("rdkit2d_parallel", featurize_smiles, subset, spec="rdkit2d", n_jobs=args.n_jobs)
    naive32 = naive.copy()
    naive32[~np.isfinite(naive32)] = np.nan
    naive32[np.abs(np.nan_to_num(naive32)) > np.finfo(np.float32).max] = np.nan
    naive32 = naive32.astype(np.float32)
    close = np.isclose(one.X, naive32, rtol=1e-6, atol=1e-6, equal_nan=True)
    rdkit2d = {
        "molecules": m, "descriptors": int(naive.shape[1]),
        "naive_seconds": t_naive, "naive_mol_per_s": m / t_naive,
        "one_process_seconds": t_one, "one_process_mol_per_s": m / t_one,
        "per_core_speedup": t_naive / t_one, "target_per_core_speedup": 2.0,
        "parallel_seconds": t_par, "parallel_mol_per_s": m / t_par, "parallel_speedup": t_naive / t_par,
        "per_core_speedup_cpu_time": CPU_LOG["rdkit2d_naive"]["cpu_main_s"] / CPU_LOG["rdkit2d_one_process"]["cpu_main_s"],
        "cells_not_equal_1e-6": int((~close).sum()),
        "parallel_equals_serial": bool(np.array_equal(one.X, par.X, equal_nan=True)),
    }
    results["rdkit2d"] = rdkit2d
    rows.append((f"rdkit2d, naive descList loop ({m} mols)", f"{m / t_naive:,.0f} mol/s", "1.00x", ""))
    rows.append(("rdkit2d, shared intermediates, 1 process", f"{m / t_one:,.0f} mol/s",
                 f"{rdkit2d['per_core_speedup']:.2f}x",
                 f"target >= 2x per core (CPU-time ratio {rdkit2d['per_core_speedup_cpu_time']:.2f}x); "
                 f"cells off by >1e-6: {rdkit2d['cells_not_equal_1e-6']}"))
    rows.append((f"rdkit2d, shared intermediates, {args.n_jobs} procs", f"{m / t_par:,.0f} mol/s",
                 f"{rdkit2d['parallel_speedup']:.2f}x", ""))
    # the rdkit2d_fast subset: one process, vs the naive loop over the same subset and over all
    from pipelines.featurize.descriptors2d import FAST_DESCRIPTOR_NAMES, naive_descriptors_2d_fast

    def naive_fast(smiles_: list[str]) -> np.ndarray:
        from rdkit import Chem

        return np.array([naive_descriptors_2d_fast(Chem.MolFromSmiles(x)) for x in smiles_])

    _, t_naive_fast = timed("rdkit2d_fast_naive", naive_fast, subset)
    fast_one, t_fast = timed("rdkit2d_fast_one_process", featurize_smiles, subset, spec="rdkit2d_fast", n_jobs=1)
    rdkit2d["fast_subset"] = {
        "descriptors": len(FAST_DESCRIPTOR_NAMES), "one_process_seconds": t_fast, "one_process_mol_per_s": m / t_fast,
        "naive_same_subset_seconds": t_naive_fast, "speedup_vs_naive_same_subset": t_naive_fast / t_fast,
        "speedup_vs_naive_all_descriptors": t_naive / t_fast,
        "cpu_time_speedup_vs_naive_all": CPU_LOG["rdkit2d_naive"]["cpu_main_s"] / CPU_LOG["rdkit2d_fast_one_process"]["cpu_main_s"],
    }
    rows.append((f"rdkit2d_fast ({len(FAST_DESCRIPTOR_NAMES)} descriptors), 1 process", f"{m / t_fast:,.0f} mol/s",
                 f"{t_naive / t_fast:.2f}x",
                 f"vs the naive loop over all {naive.shape[1]}; {t_naive_fast / t_fast:.2f}x vs the naive loop over the same subset"))

    # 3. Cache -------------------------------------------------------------------------------
    with tempfile.TemporaryDirectory(prefix="fedadmet-featcache-") as cache_dir:
        cold, t_cold = timed("cache_cold_morgan", featurize_smiles, smiles, spec="morgan_count", n_jobs=args.n_jobs, cache_dir=cache_dir)
        warm, t_warm = timed("cache_warm_morgan", featurize_smiles, smiles, spec="morgan_count", n_jobs=args.n_jobs, cache_dir=cache_dir)
        same_morgan = bool(np.array_equal(cold.X, warm.X, equal_nan=True))
        del cold, warm
        cold2, t_cold2 = timed("cache_cold_default", featurize_smiles, subset, spec="morgan_count+rdkit2d", n_jobs=args.n_jobs,
                               cache_dir=cache_dir + "/default")
        warm2, t_warm2 = timed("cache_warm_default", featurize_smiles, subset, spec="morgan_count+rdkit2d", n_jobs=args.n_jobs,
                               cache_dir=cache_dir + "/default")
        same_default = bool(np.array_equal(cold2.X, warm2.X, equal_nan=True))
    cache = {
        "morgan_count_full": {"molecules": n, "cold_seconds": t_cold, "warm_seconds": t_warm,
                              "speedup": t_cold / t_warm, "identical": same_morgan},
        "default_spec_subset": {"spec": "morgan_count+rdkit2d", "molecules": m, "cold_seconds": t_cold2,
                                "warm_seconds": t_warm2, "speedup": t_cold2 / t_warm2, "identical": same_default},
        "target_speedup": 20.0,
    }
    results["cache"] = cache
    rows.append((f"cache, morgan_count, {n} mols: cold -> warm", f"{t_cold:.2f}s -> {t_warm:.2f}s",
                 f"{cache['morgan_count_full']['speedup']:.1f}x", f"target >= 20x; identical={same_morgan}"))
    rows.append((f"cache, morgan_count+rdkit2d, {m} mols", f"{t_cold2:.2f}s -> {t_warm2:.3f}s",
                 f"{cache['default_spec_subset']['speedup']:.1f}x", f"identical={same_default}"))

    # 4. Streaming ---------------------------------------------------------------------------
    if not args.skip_stream:
        stream = {}
        for size in args.stream_sizes:
            stats = run_stream(args.input, size, args.n_jobs, args.chunk_size)
            stream[str(size)] = stats
            rows.append((f"stream morgan_count, {stats['molecules']:,} mols", f"{stats['mol_per_s']:,.0f} mol/s",
                         "", f"peak RSS main {stats['peak_rss_main_mb']:.0f} MB, "
                             f"process tree {stats['peak_rss_tree_mb']:.0f} MB"))
        stream["target_peak_rss_mb"] = 1536
        results["streaming"] = stream

    results["cpu_seconds"] = CPU_LOG
    results["load_average_at_end"] = os.getloadavg()
    results["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")

    width = max(len(r[0]) for r in rows)
    print(f"featurize benchmark: {n:,} molecules from {args.input} "
          f"(load average at start {results['load_average_at_start'][0]:.1f} on {os.cpu_count()} cores)")
    print(f"{'measurement'.ljust(width)}  {'throughput':>22}  {'ratio':>7}  note")
    for name, speed, ratio, note in rows:
        print(f"{name.ljust(width)}  {speed:>22}  {ratio:>7}  {note}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
