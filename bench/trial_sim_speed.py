"""Virtual-trial simulator speed: 1,000 trials x 300 patients (150 per arm), and 300 per arm.

    .venv/bin/python bench/trial_sim_speed.py [--repeats 5]

Times ``clinical_sim.simulate.simulate_trials`` (population sampling with eligibility screening,
individual PK, Emax response, AE model, dropout, Welch test) with explicit PK typical values, median of
``--repeats`` runs, and writes bench/results/trial_sim_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pipelines  # noqa: E402

pipelines.configure()  # a benchmark is an entry point: the CLI's runtime defaults (offline, quiet, passive OpenMP)

from clinical_sim.admet_link import PKTypical  # noqa: E402
from clinical_sim.design import load_design  # noqa: E402
from clinical_sim.simulate import simulate_trials  # noqa: E402

PK = PKTypical(cl_l_h=10.0, v_l=80.0, ka_h=1.0, f=0.6, fraction_renal=0.2, tox_risk=0.2)


def time_case(n_trials: int, n_per_arm: int, repeats: int) -> dict:
    design = load_design().updated(trial={"n_trials": n_trials, "n_per_arm": n_per_arm})
    simulate_trials(design.updated(trial={"n_trials": 10}), PK)  # warm-up (imports, caches)
    times, p = [], None
    for r in range(repeats):
        t0 = time.perf_counter()
        res = simulate_trials(design, PK, seed=r)
        times.append(time.perf_counter() - t0)
        p = res.p_success
    patients = n_trials * 2 * n_per_arm
    med = float(np.median(times))
    return {"n_trials": n_trials, "n_per_arm": n_per_arm, "patients_per_trial": 2 * n_per_arm,
            "median_seconds": med, "min_seconds": float(min(times)), "patients_per_second": patients / med,
            "p_success_last": p}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "trial_sim_speed.json")
    args = ap.parse_args(argv)
    cases = [time_case(1000, 150, args.repeats), time_case(1000, 300, args.repeats)]
    header = f"{'trials':>7}{'patients/trial':>16}{'median s':>10}{'min s':>8}{'patients/s':>13}"
    lines = [header, "-" * len(header)]
    for c in cases:
        lines.append(f"{c['n_trials']:>7}{c['patients_per_trial']:>16}{c['median_seconds']:>10.2f}"
                     f"{c['min_seconds']:>8.2f}{c['patients_per_second']:>13.3g}")
    table = "\n".join(lines)
    print(table)
    doc = {"benchmark": "virtual-trial simulator speed", "cases": cases, "table": table,
           "command": "python bench/trial_sim_speed.py", "machine": {
               "python": platform.python_version(), "cpu_count": os.cpu_count(),
               "load_avg": os.getloadavg(), "note": "2 shared cores with other jobs running: noisy"}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
