"""Screening throughput: fedadmet end-to-end predict vs ADMET-AI 2.0.1 on the same molecules, same run.

    .venv/bin/python bench/admet_throughput.py                  # 10,000 MOSES molecules + 1M streamed
    .venv/bin/python bench/admet_throughput.py --quick          # 500 molecules, no stream, no ADMET-AI
    .venv/bin/python bench/admet_throughput.py --n 2000 --stream-n 0
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/admet_throughput.py --predict-path   # issue 9
    OMP_NUM_THREADS=1 .venv/bin/python bench/admet_throughput.py --stages BUNDLE [BUNDLE ...]  # CPU per stage

fedadmet: ``admet.predict.predict_file`` (read, standardize, featurize, every endpoint with ensemble
spread, conformal interval, applicability-domain flag and approved-drug percentile, written to
Parquet) in a child process, timed from the call to the written file; the bundle is loaded before
the clock starts (model load is reported separately). ADMET-AI: ``ADMETModel().predict(smiles=...)``
in its own venv (/work/peers/admetai, bench/peers/setup.sh), in a child process with the network
namespace removed (``unshare -n`` when available) so that a download attempt would fail.
Streaming: the MOSES 100k file repeated to ``--stream-n`` rows; the child samples its own RSS plus
its workers' after every chunk; peak RSS by 100k rows is compared with the peak over the whole run.

The bundle: ``--bundle DIR``, or one trained here on every embedded endpoint (47 since the TDC sets)
with ``fedadmet admet train``'s default configuration (``ModelConfig.cli_default``), networks for 2
epochs (weights quality does not change prediction cost), optionally on ``--bundle-max-per-endpoint``
molecules per endpoint; cached under .fedadmet-cache/bench/. The table and JSON give both tools'
endpoint counts next to every ratio.
``--bundle-featurizer SPEC`` / ``--bundle-model FAMILY`` train that bundle on another feature spec (e.g.
``morgan_count+rdkit2d_fast``) or model family (e.g. ``blend``).
Writes bench/results/admet_throughput.json (or ``--out NAME``) and prints a Markdown table.
``--predict-path``: only CPU time per molecule of ``ModelBundle.predict_smiles`` and of one screening chunk on
the first ``--n`` (2,000) MOSES molecules with the shipped model (or ``--bundle``), the separate steps as they
were vs the one prediction path, outputs compared exactly -> bench/results/predict_path_unified.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import admet_common as ac  # noqa: E402

log = logging.getLogger("bench.admet_throughput")
MOSES = ac.SHARED_DATA / "moses_100k.smi.gz"
WORK = ac.FEATURE_CACHE / "throughput"
ADMETAI_PY = ac.PEERS_DIR / "admetai" / "bin" / "python"


# ------------------------------------------------------------------------------------ inputs
def write_library(n: int, path: Path) -> Path:
    """First ``n`` MOSES molecules (the 100k file cycled when n > 100k), one SMILES per line."""
    if path.exists() and sum(1 for _ in open(path)) == n:
        return path
    with gzip.open(MOSES, "rt") as fh:
        base = [line.split()[0] for line in fh if line.strip()]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as out:
        for i in range(n):
            out.write(base[i % len(base)] + "\n")
    return path


def get_bundle(bundle: str | None, quick: bool, endpoints: list[str] | None = None,
               featurizer: str | None = None, model: str | None = None, ensemble: int | None = None,
               max_per_endpoint: int | None = None) -> Path:
    """The bundle to time: ``bundle``, or one trained here with the project's CLI default configuration.

    ``fedadmet admet train``'s default (``ModelConfig.cli_default``: family, features, ensemble) with
    ``featurizer`` / ``model`` / ``ensemble`` on top; networks train 2 epochs (their prediction cost does
    not depend on the weights). ``max_per_endpoint`` keeps that many molecules per endpoint (seeded) so a
    bundle over every endpoint trains in minutes: prediction cost is set by the architecture (members x
    endpoints x trees or layers), not by the number of training rows; a LightGBM tree grown on fewer rows
    can have fewer leaves, which makes its traversal at most a few comparisons shorter.
    """
    if bundle:
        return Path(bundle)
    from admet.config import ModelConfig
    from admet.fit import prepare_task_data, train_bundle
    from pipelines.catalog import load_embedded

    cfg = ModelConfig.cli_default(epochs=1 if quick else 2, patience=0, ensemble=ensemble or (2 if quick else None),
                                  featurizer=featurizer, model=model)
    target = WORK / ("_".join(["bundle_quick" if quick else "bundle_cli_default", cfg.model,
                               cfg.featurizer.replace("+", "_"), f"ens{cfg.ensemble}"]
                              + (["_".join(endpoints)] if endpoints else ["all"])
                              + ([f"max{max_per_endpoint}"] if max_per_endpoint else [])))
    if (target / "bundle.json").exists():
        return target
    long_df = load_embedded(endpoints)
    if quick:
        keep = long_df["compound_id"].drop_duplicates().sample(n=1500, random_state=0)
        long_df = long_df[long_df["compound_id"].isin(set(keep))]
    if max_per_endpoint:
        long_df = (long_df.sample(frac=1.0, random_state=0).groupby("endpoint", sort=False)
                   .head(max_per_endpoint).reset_index(drop=True))
    log.info("training the throughput bundle (%d rows, %s)", len(long_df), cfg.to_json_dict())
    td = prepare_task_data(long_df)
    t0 = time.perf_counter()
    b = train_bundle(td, cfg, cache_dir=ac.FEATURE_CACHE / "fedadmet_featcache")
    b.info["throughput_bench"] = {"train_seconds": time.perf_counter() - t0, "rows": len(long_df),
                                  "max_per_endpoint": max_per_endpoint}
    if target.exists():
        shutil.rmtree(target)
    b.save(target)
    return target


# ------------------------------------------------------------------------------ child runner
def _tree_rss_mb() -> float:
    import psutil

    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(bundle_dir: str, input_path: str, out_path: str, stats_path: str, chunk_size: int) -> None:
    """Runs in a fresh process: load the bundle, predict the file, record timing and memory."""
    from admet.bundle import load_bundle
    from admet.predict import predict_file

    t0 = time.perf_counter()
    bundle = load_bundle(bundle_dir)
    t_load = time.perf_counter() - t0
    samples: list[tuple[int, float, float]] = []

    def progress(rows: int, seconds: float) -> None:
        samples.append((rows, round(seconds, 2), round(_tree_rss_mb(), 1)))

    summary = predict_file(bundle_dir, input_path, out_path, chunk_size=chunk_size, progress=progress,
                           bundle=bundle)
    import pyarrow.parquet as pq

    meta = pq.read_metadata(out_path)
    cols = pq.read_schema(out_path).names
    Path(stats_path).write_text(json.dumps({
        "load_seconds": t_load, "predict_seconds": summary.seconds, "n_rows": summary.n_rows,
        "n_ok": summary.n_ok, "n_rejected": summary.n_rejected, "rows_in_output": meta.num_rows,
        "n_output_columns": len(cols), "endpoints": bundle.task_names,
        "mol_per_s": summary.n_rows / summary.seconds,
        "peak_rss_self_mb": _vm_hwm_mb(),  # own high-water mark; ru_maxrss would carry the parent's RSS at fork
        "peak_rss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "rss_samples": samples, "chunk_size": chunk_size, "workers_rss_included": True,
    }))


def run_fedadmet(bundle: Path, library: Path, tag: str, chunk_size: int, profile: bool = False) -> dict:
    out = WORK / f"pred_{tag}.parquet"
    stats = WORK / f"stats_{tag}.json"
    for p in (out, stats):
        p.unlink(missing_ok=True)
    shutil.rmtree(out.with_name(out.name + ".parts"), ignore_errors=True)
    cmd = [sys.executable, __file__, "--child", str(bundle), str(library), str(out), str(stats),
           "--chunk-size", str(chunk_size)]
    t0 = time.perf_counter()
    env = dict(os.environ, FEDADMET_BENCH_PROFILE="1") if profile else None
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"fedadmet predict child failed:\n{proc.stderr[-3000:]}")
    res = json.loads(stats.read_text())
    res["wall_seconds_incl_startup"] = wall
    prof = stats.with_suffix(".profile.txt")
    if prof.exists():
        res["profile_top"] = prof.read_text()[:6000]
    out.unlink(missing_ok=True)
    return res


def run_admetai(library: Path) -> dict:
    if not ADMETAI_PY.exists():
        return {"skipped": f"ADMET-AI venv missing at {ADMETAI_PY}; run bash bench/peers/setup.sh"}
    stats = WORK / "stats_admetai.json"
    stats.unlink(missing_ok=True)
    cmd = [str(ADMETAI_PY), str(Path(__file__).parent / "peers" / "admetai_predict.py"), str(library), str(stats)]
    isolated = shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-n", "true"], capture_output=True).returncode == 0
    if isolated:
        cmd = ["unshare", "-n"] + cmd
    # ADMET-AI gets torch's default threading (all cores), whatever this process was started with
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"failed": proc.stderr[-3000:], "network_isolated": isolated}
    res = json.loads(stats.read_text())
    res.update(wall_seconds_incl_startup=wall, network_isolated=isolated)
    return res


def endpoint_counts(fed: dict, admetai: dict) -> dict:
    """How many endpoints each side predicted in this run, so a speed ratio is read at its endpoint counts.

    fedadmet: the bundle's tasks. ADMET-AI: its learned endpoints counted from its output in this run
    (``n_model_endpoints``; RDKit physchem columns counted apart); where the run has no count (older peer
    script, or ADMET-AI skipped) its documented 41 is used and labelled as such.
    """
    ours = len(fed.get("endpoints", []))
    if "n_model_endpoints" in admetai:
        theirs = int(admetai["n_model_endpoints"])
        label = f"{theirs} + {admetai['n_physchem']} physchem/alerts"
        how = "counted from ADMET-AI's output in this run"
    else:
        theirs, label, how = 41, "41 (documented, not counted in this run)", "ADMET-AI 2.0.1 documentation"
    return {"fedadmet": ours, "admetai": theirs, "admetai_label": label, "admetai_count_source": how,
            "like_for_like": ours >= theirs}


# ------------------------------------------------------------------------------------- main
# ------------------------------------------------------------------- one prediction path (issue 9)


def _old_screening_chunk(bundle, smiles: list[str]):
    """The screening chunk as it was: ``featurize_smiles``, ``physchem_frame`` and ``predict_features``
    (domain inputs from the SMILES), each parsing the molecules."""
    import pandas as pd

    from pipelines.featurize import featurize_smiles
    from pipelines.physchem import physchem_frame

    fm = featurize_smiles(smiles, spec=bundle.featurizer_spec, n_jobs=1)
    return pd.concat([physchem_frame(smiles), bundle.predict_features(fm.X, smiles, fm.valid)], axis=1)


def predict_path(bundle_dir: Path, n: int, repeats: int, out_name: str) -> int:
    """CPU seconds per molecule of ``predict_smiles`` and of one screening chunk (the same first ``n`` MOSES
    molecules; the chunk holds their standardized SMILES), the separate steps as they were vs the one
    prediction path now, interleaved in this process; outputs compared exactly."""
    import pandas as pd
    import torch

    from admet.bundle import load_bundle
    from admet.prediction_inputs import separate_steps_predict_smiles
    from flows import screening_steps as steps
    from pipelines.standardize import standardize_many

    torch.set_num_threads(1)
    bundle = load_bundle(bundle_dir)
    bundle.features.n_jobs = 1  # one process, one thread: CPU time is this process's
    lib = write_library(n, WORK / f"moses_{n}.smi")
    inputs = [line.strip() for line in open(lib)]
    chunk = [s.smiles for s in standardize_many(inputs, with_inchikey=False) if s.ok]
    cached = steps.cached_bundle(str(bundle_dir))  # the screening tasks' bundle, loaded before the clock
    ways = {
        ("predict_smiles", "before"): lambda: separate_steps_predict_smiles(bundle, inputs),
        ("predict_smiles", "after"): lambda: bundle.predict_smiles(inputs),
        ("screening_chunk", "before"): lambda: _old_screening_chunk(bundle, chunk),
        ("screening_chunk", "after"): lambda: steps.predict_chunk(
            bundle_dir, chunk, steps.featurize_chunk(chunk, bundle.featurizer_spec)),
    }
    for warm in (bundle, cached):  # warm-up (imports, first-call costs) outside the clock
        warm.predict_smiles(inputs[:50])
    cpu: dict = {key: [] for key in ways}
    frames: dict = {}
    for _ in range(repeats):
        for key, fn in ways.items():
            t0 = time.process_time()
            frames[key] = fn()
            cpu[key].append(time.process_time() - t0)
            log.info("%s %s: %.1f s CPU", *key, cpu[key][-1])
    rows, results = [], {}
    for entry in ("predict_smiles", "screening_chunk"):
        before, after = frames[(entry, "before")], frames[(entry, "after")]
        try:
            pd.testing.assert_frame_equal(after, before, check_exact=True)
            same = True
        except AssertionError as exc:
            log.error("%s outputs differ: %s", entry, exc)
            same = False
        m = len(inputs) if entry == "predict_smiles" else len(chunk)
        b, a = min(cpu[(entry, "before")]), min(cpu[(entry, "after")])
        results[entry] = {"molecules": m, "cpu_s_before": cpu[(entry, "before")], "cpu_s_after": cpu[(entry, "after")],
                          "cpu_ms_per_mol_before": 1000 * b / m, "cpu_ms_per_mol_after": 1000 * a / m,
                          "ratio_before_over_after": b / a, "outputs_identical": same,
                          "columns": int(before.shape[1])}
        rows.append([entry, m, 1000 * b / m, 1000 * a / m, b / a, same])
    table = ac.markdown_table(["entry point", "molecules", "CPU ms/mol before", "CPU ms/mol after", "ratio",
                               "outputs identical"], rows)
    print(table)
    commit = subprocess.run(["git", "-C", str(ac.REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    payload = {"benchmark": "predict_path_unified", "bundle": str(bundle_dir), "n": n, "repeats": repeats,
               "results": results, "markdown": table, "head": commit, "machine": ac.machine_info(),
               "what": "before = the separate steps the entry points ran until this change (featurize_smiles, "
                       "physchem_frame, predict_features recomputing the domain inputs from SMILES; reproduced "
                       "in this script), after = the code now (admet.prediction_inputs + "
                       "ModelBundle.predict_inputs); one process, one thread, torch 1 thread, modes "
                       "interleaved, fastest repeat per mode; CPU time = time.process_time()"}
    print(f"\nwrote {ac.write_json(out_name, payload)}")
    return 0 if all(r["outputs_identical"] for r in results.values()) else 1


def bundle_recipe(bundle_dir: Path) -> dict:
    """What a bundle is (family, members, features, endpoints) and its own held-out quality on the
    catalog's test fold (mean Spearman over regression endpoints, mean AUROC over binary ones), read
    from the bundle's ``config.json`` / ``metrics.json``: context for a speed table, never a choice."""
    import numpy as np

    config = json.loads((bundle_dir / "config.json").read_text())
    test = json.loads((bundle_dir / "metrics.json").read_text()).get("test", {})
    spearman = [m["spearman"] for m in test.values() if m.get("spearman") is not None]
    auroc = [m["auroc"] for m in test.values() if m.get("auroc") is not None]
    return {"model": config.get("model"), "ensemble": config.get("ensemble"),
            "featurizer": config.get("featurizer"), "endpoints": len(test),
            "test_mean_spearman": float(np.mean(spearman)) if spearman else None,
            "test_mean_auroc": float(np.mean(auroc)) if auroc else None,
            "regression_endpoints": len(spearman), "binary_endpoints": len(auroc)}


def _cpu_ms(fn, n: int) -> float:
    """CPU milliseconds per molecule of ``fn()`` over ``n`` molecules, fastest of two runs."""
    best = float("inf")
    for _ in range(2):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return 1000 * best / n


def _stage_costs(bundle_dir: Path, smiles: list[str], table: Path) -> dict[str, float]:
    from admet.bundle import load_bundle
    from admet.predict import predict_file
    from admet.prediction_inputs import featurize_for_prediction
    from pipelines.featurize.base import get_featurizer, parse_spec
    from pipelines.standardize import parse_smiles

    n = len(smiles)
    bundle = load_bundle(bundle_dir)
    spec = bundle.featurizer_spec
    out = WORK / "stages_out.parquet"

    def run_file():
        predict_file(bundle_dir, table, out, chunk_size=1000, n_jobs=1, bundle=bundle)

    run_file()  # warm-up: imports, first-call costs, the domain's unpacked reference
    costs = {}

    def parse_each(featurizer=None):
        # one molecule at a time, as the predict path does (rdkit2d over a list of 1,000 molecules
        # parsed up front measured about 1.4x slower here than parsing and featurizing each in turn)
        for text in smiles:
            mol, _ = parse_smiles(text)
            if featurizer is not None and mol is not None:
                featurizer.featurize_mol(mol)

    costs["parse"] = _cpu_ms(parse_each, n)
    for name in parse_spec(spec):
        costs[f"parse+{name}"] = _cpu_ms(lambda f=get_featurizer(name): parse_each(f), n)
    prepared = featurize_for_prediction(smiles, spec)
    costs["featurize_for_prediction"] = _cpu_ms(lambda: featurize_for_prediction(smiles, spec), n)
    costs["predict_inputs"] = _cpu_ms(lambda: bundle.predict_inputs(smiles, prepared), n)
    costs["predict_file"] = _cpu_ms(run_file, n)
    return costs


def stages(bundle_dirs: list[Path], n: int, out_name: str) -> int:
    """CPU milliseconds per molecule of each prediction stage, one process, one thread, first ``n``
    MOSES molecules: parsing, parsing + each featurizer (one molecule at a time), the whole preparation
    (``featurize_for_prediction``: parse, features, domain inputs, physchem), the model + domain +
    intervals (``predict_inputs``) and ``predict_file`` end to end; fastest of two repeats."""
    import torch

    from pipelines.featurize.base import parse_spec

    torch.set_num_threads(1)
    lib = write_library(n, WORK / f"moses_{n}.smi")
    smiles = [line.strip() for line in open(lib)]
    table = WORK / f"stages_{n}.smi"
    table.write_text("smiles\n" + "\n".join(smiles) + "\n")
    results, rows = {}, []
    for bundle_dir in bundle_dirs:
        r = _stage_costs(Path(bundle_dir), smiles, table)
        recipe = bundle_recipe(Path(bundle_dir))
        results[str(bundle_dir)] = {"recipe": recipe, "cpu_ms_per_molecule": r}
        names = parse_spec(recipe["featurizer"])
        rows.append([f"{recipe['model']} x{recipe['ensemble']}, {recipe['featurizer']}", recipe["endpoints"],
                     r["parse"], "; ".join(f"{k} {r['parse+' + k]:.2f}" for k in names),
                     r["featurize_for_prediction"],
                     r["predict_inputs"], r["predict_file"]])
    text = ac.markdown_table(["bundle", "endpoints", "parse (ms)", "parse + each featurizer (ms)",
                              "preparation (ms)",
                              "model + domain + intervals (ms)", "predict_file, 1 process (ms)"], rows)
    print(text)
    payload = {"benchmark": "admet_throughput_stages", "n": n, "results": results, "markdown": text,
               "machine": ac.machine_info(),
               "what": "CPU ms per molecule (time.process_time), one process, torch 1 thread, fastest of 2; "
                       "preparation = featurize_for_prediction (parse, features, domain inputs, physchem); "
                       "predict_file includes standardization, InChIKey, the model and Parquet writing"}
    print(f"\nwrote {ac.write_json(out_name, payload)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=None, help="molecules for the head-to-head (default 10000)")
    parser.add_argument("--stream-n", type=int, default=None, help="rows for the streaming run (default 1e6; 0 = skip)")
    parser.add_argument("--bundle", default=None, help="an existing model bundle folder")
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--no-admetai", action="store_true")
    parser.add_argument("--bundle-endpoints", default=None,
                        help="train the bundle on these embedded endpoints only (comma list; default all)")
    parser.add_argument("--bundle-featurizer", default=None,
                        help="feature spec for the bundle trained here (default: the project default)")
    parser.add_argument("--bundle-ensemble", type=int, default=None, help="ensemble members of the bundle trained here")
    parser.add_argument("--bundle-model", default=None, help="model family for the bundle trained here (e.g. blend)")
    parser.add_argument("--bundle-max-per-endpoint", type=int, default=None,
                        help="molecules per endpoint for the bundle trained here (default: all rows)")
    parser.add_argument("--out", default="admet_throughput.json", help="result file name under bench/results/")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the fedadmet predict process (main process only; workers not profiled)")
    parser.add_argument("--predict-path", action="store_true",
                        help="only the one-prediction-path check (issue 9): predict_smiles and one screening "
                             "chunk, before vs after, on --n molecules (default 2000) -> predict_path_unified.json")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats for --predict-path")
    parser.add_argument("--stages", nargs="+", type=Path, metavar="BUNDLE",
                        help="only the CPU cost per molecule of each prediction stage for these bundles, one "
                             "process, --n molecules (default 2000) -> --out (admet_throughput_stages.json)")
    parser.add_argument("--child", nargs=4, metavar=("BUNDLE", "INPUT", "OUT", "STATS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.child:
        if os.environ.get("FEDADMET_BENCH_PROFILE"):
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.runcall(child, *args.child, chunk_size=args.chunk_size)
            stats = pstats.Stats(prof).sort_stats("cumulative")
            out = Path(args.child[3]).with_suffix(".profile.txt")
            with open(out, "w") as fh:
                stats.stream = fh
                stats.print_stats(40)
            return 0
        child(*args.child, chunk_size=args.chunk_size)
        return 0
    if args.stages:
        out = args.out if args.out != "admet_throughput.json" else "admet_throughput_stages.json"
        return stages(args.stages, args.n or 2000, Path(out).name)
    if args.predict_path:
        bundle = Path(args.bundle) if args.bundle else ac.REPO / "models" / "fedadmet-base-1.1"
        return predict_path(bundle, args.n or 2000, args.repeats, "predict_path_unified.json")
    n = args.n or (500 if args.quick else 10_000)
    stream_n = args.stream_n if args.stream_n is not None else (0 if args.quick else 1_000_000)
    t_start = time.perf_counter()
    bundle = get_bundle(args.bundle, args.quick,
                        args.bundle_endpoints.split(",") if args.bundle_endpoints else None, args.bundle_featurizer,
                        args.bundle_model, args.bundle_ensemble, args.bundle_max_per_endpoint)
    library = write_library(n, WORK / f"moses_{n}.smi")
    results: dict = {"n": n, "bundle": str(bundle)}
    results["fedadmet"] = run_fedadmet(bundle, library, f"n{n}", min(args.chunk_size, max(n // 4, 100)),
                                       profile=args.profile)
    log.info("fedadmet: %.0f molecules/s", results["fedadmet"]["mol_per_s"])
    if not (args.quick or args.no_admetai):
        results["admetai"] = run_admetai(library)
    a = results.get("admetai", {})
    results["endpoint_counts"] = endpoint_counts(results["fedadmet"], a)
    counts = results["endpoint_counts"]
    rows = [["fedadmet (predict_file, std + interval + domain + percentile)", counts["fedadmet"], n,
             results["fedadmet"]["predict_seconds"], results["fedadmet"]["mol_per_s"],
             max(results["fedadmet"]["peak_rss_self_mb"], 0) + results["fedadmet"]["peak_rss_children_mb"]]]
    if "mol_per_s_predict" in a:
        rows.append(["ADMET-AI 2.0.1 (ADMETModel().predict)", counts["admetai_label"], n, a["predict_seconds"],
                     a["mol_per_s_predict"], a["peak_rss_mb"]])
        results["speedup_vs_admetai"] = results["fedadmet"]["mol_per_s"] / a["mol_per_s_predict"]
    table = ac.markdown_table(["tool", "endpoints", "molecules", "predict seconds", "molecules/s", "peak RSS MB"],
                              rows)
    lines = [table]
    if "speedup_vs_admetai" in results:
        lines.append(f"speed-up vs ADMET-AI: {results['speedup_vs_admetai']:.1f}x at {counts['fedadmet']} vs "
                     f"{counts['admetai_label']} endpoints (target >= 10x and >= 500/s at an equal-or-larger "
                     f"endpoint count: {'equal or larger' if counts['like_for_like'] else 'NOT like for like'})")
        lines.append(f"ADMET-AI weights from its package: {a.get('models_dir_inside_package')}, "
                     f"network namespace removed during the run: {a.get('network_isolated')}")
    if stream_n:
        lib = write_library(stream_n, WORK / f"moses_{stream_n}.smi")
        s = run_fedadmet(bundle, lib, f"stream{stream_n}", args.chunk_size)
        samples = s["rss_samples"]
        early = [r for rows_, _, r in samples if rows_ <= min(100_000, stream_n)]
        s["peak_rss_by_100k_mb"] = max(early) if early else None
        s["peak_rss_sampled_mb"] = max(r for _, _, r in samples)
        s["rss_growth_100k_to_end_mb"] = (s["peak_rss_sampled_mb"] - s["peak_rss_by_100k_mb"]) if early else None
        results["stream"] = s
        lines.append(ac.markdown_table(
            ["stream rows", "molecules/s", "peak RSS by 100k (MB)", "peak RSS whole run (MB)", "growth (MB)",
             "self ru_maxrss (MB)", "workers ru_maxrss (MB)"],
            [[stream_n, s["mol_per_s"], s["peak_rss_by_100k_mb"], s["peak_rss_sampled_mb"],
              s["rss_growth_100k_to_end_mb"], s["peak_rss_self_mb"], s["peak_rss_children_mb"]]]))
    text = "\n\n".join(lines)
    print(text)
    payload = {"benchmark": "admet_throughput", "quick": args.quick, **results, "markdown": text,
               "seconds_total": time.perf_counter() - t_start, "machine": ac.machine_info(),
               "note": "RSS samples sum the predict process and its featurization workers (psutil), after each chunk"}
    name = "admet_throughput_quick.json" if args.quick else Path(args.out).name
    print(f"\nwrote {ac.write_json(name, payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
