"""Standardization benchmark: pipelines.standardize against a straightforward rdMolStandardize loop.

One run measures, side by side, on the same molecules (one process each):
  1. naive: per molecule ``MolFromSmiles`` -> ``rdMolStandardize.Cleanup`` -> ``FragmentParent`` ->
     a new ``Uncharger().uncharge`` -> canonical SMILES + InChIKey (what a first version usually does);
  2. ``standardize_smiles`` (reused standardizer objects, fast paths for one-fragment uncharged molecules);
  3. ``standardize_smiles(with_inchikey=False)`` (screening use: identity not needed);
  4. end to end: ``read_molecules`` + ``validate_molecules`` (distinct inputs standardized once).
It also reports how often the two standardizations give the same InChIKey (agreement), on two inputs:
the MOSES screening sample (clean, neutral: fast paths) and the embedded ADMET catalog's SMILES
(salts, charges, inorganics: slow paths).

    .venv/bin/python bench/standardize.py [SMILES_FILE] [--n 10000] [--out bench/results/standardize.json]
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/standardize.py --fragments   # multi-fragment cost

Timings are wall clock on a possibly shared machine (the load average at start is recorded).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pipelines  # noqa: E402

pipelines.configure()  # a benchmark is an entry point: the CLI's runtime defaults (offline, quiet, passive OpenMP)
from pipelines.catalog import load_embedded, screening_library_path  # noqa: E402
from pipelines.readers import read_molecules  # noqa: E402
from pipelines.standardize import standardize_smiles  # noqa: E402
from pipelines.validate import validate_molecules  # noqa: E402


def naive_standardize(smiles: str) -> str | None:
    """The unoptimized reference: fresh objects, every step on every molecule."""
    from rdkit import Chem
    from rdkit.Chem.MolStandardize import rdMolStandardize

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    try:
        mol = rdMolStandardize.Cleanup(mol)
        mol = rdMolStandardize.FragmentParent(mol)
        mol = rdMolStandardize.Uncharger().uncharge(mol)
        Chem.MolToSmiles(mol)
        return Chem.MolToInchiKey(mol) or None
    except Exception:  # noqa: BLE001
        return None


def _timed(fn, items) -> tuple[float, float, list]:
    """(wall seconds, CPU seconds of this process, results). CPU time is far less sensitive to other
    processes competing for the cores than wall time."""
    start, cpu = time.perf_counter(), time.process_time()
    out = [fn(s) for s in items]
    return time.perf_counter() - start, time.process_time() - cpu, out


def measure(name: str, smiles: list[str], file_for_e2e: Path | None) -> dict:
    n = len(smiles)
    t_naive, c_naive, naive = _timed(naive_standardize, smiles)
    t_ours, c_ours, ours = _timed(standardize_smiles, smiles)
    t_fast, c_fast, _ = _timed(lambda s: standardize_smiles(s, with_inchikey=False), smiles)
    both = [(a, b.inchikey) for a, b in zip(naive, ours, strict=True) if a and b.ok]
    row = {
        "input": name, "n": n,
        "naive_mol_per_s": n / t_naive, "ours_mol_per_s": n / t_ours,
        "ours_no_inchikey_mol_per_s": n / t_fast, "speedup_vs_naive": t_naive / t_ours,
        "naive_mol_per_cpu_s": n / c_naive, "ours_mol_per_cpu_s": n / c_ours,
        "ours_no_inchikey_mol_per_cpu_s": n / c_fast, "cpu_speedup_vs_naive": c_naive / c_ours,
        "accepted_ours": sum(r.ok for r in ours), "accepted_naive": sum(bool(a) for a in naive),
        "inchikey_agreement": (sum(a == b for a, b in both) / len(both)) if both else None,
    }
    if file_for_e2e is not None:
        start = time.perf_counter()
        frame = read_molecules(file_for_e2e)
        result = validate_molecules(frame, n_jobs=1)
        elapsed = time.perf_counter() - start
        row["end_to_end_read_validate_mol_per_s"] = len(frame) / elapsed  # one process
        row["end_to_end_rows"] = len(frame)
        row["end_to_end_rejected"] = len(result.rejected)
    return row


def fragments(n_repeats: int, out: Path) -> None:
    """Multi-fragment vs single-fragment catalog SMILES, ``standardize_smiles`` with the salt list narrowed per
    molecule (``pipelines.standardize._remover_for``, now) vs RDKit's SaltRemover over the whole list (before);
    CPU time, modes interleaved, fastest repeat; the two give identical results on every molecule."""
    import pipelines.standardize as st

    smiles = list(dict.fromkeys(load_embedded()["smiles"]))
    multi = [s for s in smiles if "." in s]
    single = [s for s in smiles if "." not in s][: len(multi)]
    narrowed = st._remover_for

    def full_list(mol):
        return st._salt_remover()

    cpu: dict = {}
    results: dict = {}
    for _ in range(n_repeats):
        for way, remover in (("before", full_list), ("after", narrowed)):
            st._remover_for = remover
            try:
                for name, items in (("multi_fragment", multi), ("single_fragment", single)):
                    _, c, res = _timed(standardize_smiles, items)
                    cpu.setdefault((name, way), []).append(c)
                    results[(name, way)] = [(r.smiles, r.inchikey, r.reason) for r in res]
            finally:
                st._remover_for = narrowed
    rows = {}
    for name, items in (("multi_fragment", multi), ("single_fragment", single)):
        b, a = min(cpu[(name, "before")]), min(cpu[(name, "after")])
        rows[name] = {"n": len(items), "cpu_ms_per_mol_before": 1000 * b / len(items),
                      "cpu_ms_per_mol_after": 1000 * a / len(items), "ratio_before_over_after": b / a,
                      "identical": results[(name, "before")] == results[(name, "after")],
                      "cpu_s_before": cpu[(name, "before")], "cpu_s_after": cpu[(name, "after")]}
    m, o = rows["multi_fragment"], rows["single_fragment"]
    summary = {"multi_over_single_before": m["cpu_ms_per_mol_before"] / o["cpu_ms_per_mol_before"],
               "multi_over_single_after": m["cpu_ms_per_mol_after"] / o["cpu_ms_per_mol_after"]}
    print(f"{'input':18s} {'n':>6s} {'ms/mol before':>14s} {'ms/mol after':>13s} {'x':>6s} identical")
    for name, r in rows.items():
        print(f"{name:18s} {r['n']:6d} {r['cpu_ms_per_mol_before']:14.3f} {r['cpu_ms_per_mol_after']:13.3f} "
              f"{r['ratio_before_over_after']:6.2f} {r['identical']}")
    print(f"multi / single fragment cost: {summary['multi_over_single_before']:.1f}x before, "
          f"{summary['multi_over_single_after']:.1f}x after")
    doc = {"benchmark": "standardize_fragments", "python": platform.python_version(), "cpu_count": os.cpu_count(),
           "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
           "input": "unique SMILES of the embedded catalog (pipelines.catalog.load_embedded): those with '.', "
                    "and as many without", "repeats": n_repeats, "results": rows, **summary,
           "what": "standardize_smiles (with InChIKey), one process; before = SaltRemover.StripMol over all "
                   f"{len(st._salt_remover().salts)} patterns of the list, after = the patterns that can delete "
                   "a fragment of the molecule (atom count and a match); CPU = time.process_time()"}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("smiles_file", nargs="?", type=Path, default=screening_library_path())
    ap.add_argument("--n", type=int, default=10_000, help="molecules per input (default 10,000)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "standardize.json")
    ap.add_argument("--fragments", action="store_true",
                    help="only multi- vs single-fragment catalog SMILES, salt list narrowed vs whole "
                         "(-> bench/results/standardize_fragments.json)")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved repeats for --fragments")
    args = ap.parse_args()
    if args.fragments:
        fragments(args.repeats, REPO / "bench" / "results" / "standardize_fragments.json")
        return
    opener = gzip.open if args.smiles_file.suffix == ".gz" else open
    with opener(args.smiles_file, "rt") as fh:
        library = [line.split()[0] for line, _ in zip(fh, range(args.n)) if line.strip()]
    catalog = list(dict.fromkeys(load_embedded()["smiles"]))[: args.n]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    e2e = args.smiles_file if args.n >= 10_000 or args.smiles_file != screening_library_path() else None
    rows = [measure(args.smiles_file.name, library, e2e), measure("embedded catalog SMILES", catalog, None)]
    header = (f"{'input':28s} {'n':>6s} {'naive/s':>9s} {'ours/s':>9s} {'x':>5s} {'no-key/s':>9s} "
              f"{'e2e/s':>8s} {'agree':>6s} | per CPU-s: {'naive':>6s} {'ours':>6s} {'x':>5s}")
    print(header)
    print("-" * len(header))
    for r in rows:
        e2e_rate = r.get("end_to_end_read_validate_mol_per_s")
        print(f"{r['input'][:28]:28s} {r['n']:6d} {r['naive_mol_per_s']:9.0f} {r['ours_mol_per_s']:9.0f} "
              f"{r['speedup_vs_naive']:5.2f} {r['ours_no_inchikey_mol_per_s']:9.0f} "
              f"{(f'{e2e_rate:8.0f}' if e2e_rate else '       -')} "
              f"{(r['inchikey_agreement'] or 0) * 100:5.1f}% |            {r['naive_mol_per_cpu_s']:6.0f} "
              f"{r['ours_mol_per_cpu_s']:6.0f} {r['cpu_speedup_vs_naive']:5.2f}")
    doc = {"benchmark": "standardize", "python": platform.python_version(), "machine": platform.machine(),
           "cpu_count": os.cpu_count(), "load_average_at_start": load,
           "note": "one process; wall clock on a shared machine is noisy, per-CPU-second rates less so",
           "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
