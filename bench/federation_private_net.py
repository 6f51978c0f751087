"""Does the blend gain from the partner's private net? On a finished ``bench/federation.py --modes base`` run
(its ``WORK/base`` folder), fit each partner's private net (``federation.blend.fit_private_net``, the product
code) and blend again with and without the private-net options (``blend.PRIVATE_NET_WEIGHTS``), choices on valid
rows only. The adoption signal is a cross-fit valid estimate per partner (choose on one random half of the valid
rows, score the other half, both ways, three random halvings); the test scores against best solo are reported
beside it, never used to decide.

    .venv/bin/python bench/federation_private_net.py WORK/base [--out bench/results/F.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pipelines  # noqa: E402

pipelines.configure()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from federation import blend, scoring  # noqa: E402
from federation.baselines import solo_config  # noqa: E402
from federation.config import FederatedConfig  # noqa: E402
from federation.run import load_all_partners, node_work_dir  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("run", type=Path, help="a base run's folder (bench/federation.py's WORK/base)")
ap.add_argument("--out", type=Path, default=None, help="JSON of the per-partner rows (default: RUN/../private_net.json)")
args = ap.parse_args()
torch.set_num_threads(2)
out = args.run
cfg = FederatedConfig.from_dict(json.loads((out / "config.json").read_text()) | {"partners_dir": str(out / "partners")})
rep = json.loads((out / "report.json").read_text())
solo = {p["partner"]: p["best_solo"] for p in rep["partners"]}
mcfg = solo_config(cfg, cfg.solo_ensemble)
partners = load_all_partners(cfg, out / "partners")

def crossfit(d, nn, tr, net, seeds=(0, 1, 2)):
    Yv = d.Y[d.rows("valid")]
    ex = blend.with_private_net(nn, tr, net)
    valid = blend.candidates(nn["valid"], tr["valid"], {k: v["valid"] for k, v in ex.items()})
    vals = []
    for sd in seeds:
        perm = np.random.default_rng(sd).permutation(len(Yv))
        A, B = perm[: len(Yv) // 2], perm[len(Yv) // 2:]
        for a, b in ((A, B), (B, A)):
            ch = blend.choose({k: v[a] for k, v in valid.items()}, Yv[a], d.tasks)
            s = scoring.endpoint_scores(blend.apply({k: v[b] for k, v in valid.items()}, ch, d.tasks), Yv[b], d.tasks)
            if s:
                vals.append(scoring.partner_metric(s))
    return float(np.mean(vals)) if vals else float("nan")

rows = []
t0 = time.perf_counter()
for d in partners:
    nd = node_work_dir(cfg, d.partner)
    nn = blend.federated_nn_predictions(nd / "bundle", d)
    tr = blend.load_private_tree_predictions(nd, d)
    net = blend.fit_private_net(d, mcfg).fold_predictions(d)
    blend.save_private_net_predictions(nd, d, net)
    r = {"partner": d.partner, "solo": solo.get(d.partner)}
    for key, n in (("base", None), ("ext", net)):
        res = blend.blend_partner(d, nn, tr, net=n, rule="endpoint")
        r[key] = res["metric"] if np.isfinite(res["metric"]) else None
        r["cf_" + key] = crossfit(d, nn, tr, n)
        if n is not None:
            r["choices"] = {o: list(res["choice"].values()).count(o) for o in set(res["choice"].values())}
            r["private_net_only"] = res["test_by_option"][blend.PRIVATE_NET]["metric"]
    rows.append(r)
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}), f"{time.perf_counter()-t0:.0f}s", flush=True)

def wins(key):
    return sum(1 for r in rows if r[key] is not None and r["solo"] is not None and r[key] > r["solo"])
def med(key):
    return float(np.median([(r[key] - r["solo"]) / abs(r["solo"]) for r in rows if r[key] is not None and r["solo"]]))
print("base blend beats solo", wins("base"), "median rel", round(med("base"), 4), "mean", np.mean([r["base"] for r in rows if r["base"] is not None]).round(4))
print("extended blend beats solo", wins("ext"), "median rel", round(med("ext"), 4), "mean", np.mean([r["ext"] for r in rows if r["ext"] is not None]).round(4))
print("cross-fit valid mean base / ext", np.nanmean([r["cf_base"] for r in rows]).round(4), np.nanmean([r["cf_ext"] for r in rows]).round(4),
      "partners ext>base on cross-fit valid", sum(r["cf_ext"] > r["cf_base"] for r in rows if np.isfinite(r["cf_ext"])))
(args.out or out.parent / "private_net.json").write_text(json.dumps(rows, indent=1))
