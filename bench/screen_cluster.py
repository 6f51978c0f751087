"""Screening on a real Dask cluster (``dask scheduler`` + N ``dask worker`` processes, one thread
each) vs the same screening flow in-process (Prefect's default thread-pool runner), one run.

    .venv/bin/python bench/screen_cluster.py --n 100000            # 100k MOSES-derived molecules
    .venv/bin/python bench/screen_cluster.py --n 1000000 --chunk-size 5000

The library is ``/work/shared/data/moses_100k.smi.gz`` repeated until it holds ``--n`` molecules
(so a 1M library holds each MOSES molecule ten times; featurization caching is off, so every
copy is featurized and predicted). Each mode runs in its own child process (clean peak RSS):
``inprocess`` (``run_screening`` with the default runner) and ``cluster`` (``run_screening`` with
the Dask runner on the cluster's address, as ``fedadmet screen --dask-address`` does). Reported:
molecules/s over the whole flow (read, validate, featurize, predict, rank, report), the driver's
peak RSS, and each worker's peak RSS (``VmHWM`` read on the worker). On one machine the cluster's
workers share the CPUs with the driver; the ratio says what the distribution costs or gains here,
not what N machines would give. Prints a table and writes ``bench/results/screen_cluster.json``.

Both modes report to one real ``prefect server`` started here (``--prefect-api server``, the
default), as a cluster deployment would: with the ephemeral API (``--prefect-api ephemeral``)
the driver has no URL to hand the workers, and each Dask worker starts a temporary Prefect API
of its own on its first task (measured: that start-up is part of the cluster's time).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MOSES = Path("/work/shared/data/moses_100k.smi.gz")


def build_library(n: int, out: Path) -> Path:
    with gzip.open(MOSES, "rt") as fh:
        base = [line.split()[0] for line in fh if line.strip() and not line.lower().startswith("smiles")]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as fh:
        fh.write("smiles\n")
        for i in range(n):
            fh.write(base[i % len(base)] + "\n")
    return out


def _vmhwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return -1


class _PhaseClock:
    """Log handler that notes when the flow's own log lines mark the end of each phase: the
    driver's validation (``validated ...``) and the last predicted chunk (``predicted N/N``)."""

    def __init__(self) -> None:
        import logging

        self.marks: dict[str, float] = {}
        self.handler = logging.Handler()
        self.handler.emit = self._emit

    def _emit(self, record) -> None:
        message = record.getMessage()
        if message.startswith("validated ") and "validated" not in self.marks:
            self.marks["validated"] = time.perf_counter()
        elif message.startswith("predicted "):
            done, total = message.split()[1].split("/")
            if done == total:
                self.marks["predicted"] = time.perf_counter()


def child(args) -> None:
    """One mode in this process; prints one JSON line."""
    import logging

    import pipelines

    pipelines.configure()
    clock = _PhaseClock()
    for name in ("pipelines", "flows"):
        logging.getLogger(name).addHandler(clock.handler)
        logging.getLogger(name).setLevel(logging.INFO)
    from flows.runners import RunnerSpec
    from flows.screening import run_screening
    from flows.screening_steps import ScreeningConfig

    cfg = ScreeningConfig(library=args.library, bundle_dir=args.bundle, out_dir=args.out, chunk_size=args.chunk_size,
                          top_n=25, use_cache=False)
    spec = RunnerSpec(kind="dask", address=args.address) if args.address else RunnerSpec()
    t0 = time.perf_counter()
    result = run_screening(cfg, spec)
    seconds = time.perf_counter() - t0
    end = t0 + seconds
    marks = clock.marks
    phases = {}
    if "validated" in marks and "predicted" in marks:
        # driver start-up + read + validate (serial) | featurize + predict chunks | score, rank, report
        phases = {"until_validated": marks["validated"] - t0, "chunks": marks["predicted"] - marks["validated"],
                  "after_chunks": end - marks["predicted"]}
    doc = {"seconds": seconds, "n_input": result.n_input, "n_ranked": len(result.ranked),
           "n_rejected": len(result.rejects), "driver_peak_rss": _vmhwm(), "phase_seconds": phases}
    if args.address:
        from flows.dask_cluster import worker_peak_rss, worker_task_records

        doc["worker_peak_rss"] = worker_peak_rss(args.address)
        doc["worker_tasks"] = {w: len(keys) for w, keys in worker_task_records(args.address).items()}
    print("RESULT=" + json.dumps(doc))


def _run_child(extra: list[str], common: list[str], env: dict | None = None) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *common, *extra], capture_output=True, text=True,
                          cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-4000:])
    return json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT="))[7:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk-size", type=int, default=5000)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_screen_cluster")
    ap.add_argument("--bundle", type=Path, default=None, help="Model bundle (default: a small one trained once).")
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "screen_cluster.json")
    ap.add_argument("--prefect-api", choices=("server", "ephemeral"), default="server",
                    help="server: both modes report to one `prefect server` started here (workers get its URL); "
                         "ephemeral: no server (each Dask worker then starts a temporary API of its own).")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--library", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--address", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return 0

    import pipelines

    pipelines.configure()
    from bench.flows import bench_bundle
    from flows.dask_cluster import start_cluster
    from flows.prefect_server import free_port, start_server

    load = os.getloadavg()
    bundle = args.bundle or bench_bundle(args.work, "morgan_count")
    library = build_library(args.n, args.work / f"library_{args.n}.csv")
    common = ["--library", str(library), "--bundle", str(bundle), "--chunk-size", str(args.chunk_size)]
    server = None
    env = dict(os.environ)
    if args.prefect_api == "server":
        server = start_server(port=free_port(), prefect_home=args.work / "prefect_home",
                              log_path=args.work / "prefect_server.log")
        server.wait_ready(timeout=300)
        env = dict(server.env, PREFECT_API_URL=server.api_url)
    try:
        rows = {"inprocess": _run_child(["--out", str(args.work / "inprocess")], common, env)}
        with start_cluster(free_port(), n_workers=args.workers, log_dir=args.work / "dask_logs") as cluster:
            rows["cluster"] = _run_child(["--out", str(args.work / "cluster"), "--address", cluster.address],
                                         common, env)
    finally:
        if server is not None:
            server.stop()
    for row in rows.values():
        row["molecules_per_second"] = row["n_input"] / row["seconds"]
    ratio = rows["cluster"]["molecules_per_second"] / rows["inprocess"]["molecules_per_second"]
    derived = ("the first N molecules, each distinct" if args.n <= 100_000 else
               f"{MOSES.name} repeated to N; every copy is featurized and predicted again (featurization "
               "cache off), so the work is that of N molecules, but only 100,000 distinct structures")
    doc = {"benchmark": "screen_cluster", "n_molecules": args.n, "library": f"{MOSES} ({derived})",
           "peak_rss_measured_as": "VmHWM of /proc/<pid>/status (the kernel's peak resident set), read inside "
                                   "each worker process with Client.run and in the driver at the end",
           "chunk_size": args.chunk_size, "workers": args.workers, "bundle": str(bundle),
           "prefect_api": args.prefect_api,
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_at_start": load},
           "modes": rows, "cluster_over_inprocess_throughput": ratio}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")

    print(f"screening {args.n:,} MOSES-derived molecules, chunk {args.chunk_size}, Prefect API {args.prefect_api}, "
          f"load at start {load[0]:.1f}")
    print(f"{'mode':<10} {'seconds':>9} {'mol/s':>8} {'driver peak RSS':>16} {'worker peak RSS':>28}")
    for mode, row in rows.items():
        workers = ", ".join(f"{w}: {v / 2**20:,.0f} MB" for w, v in sorted(row.get("worker_peak_rss", {}).items()))
        print(f"{mode:<10} {row['seconds']:>9.1f} {row['molecules_per_second']:>8.0f} "
              f"{row['driver_peak_rss'] / 2**20:>13,.0f} MB {workers or '-':>28}")
    print(f"cluster / in-process throughput: {ratio:.2f}x  -> {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
