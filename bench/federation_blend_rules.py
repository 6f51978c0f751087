"""Which rule should pick the blend's option? On a finished ``bench/federation.py --modes base`` run (its
``WORK/base`` folder), re-blend every partner from the run's saved predictions (the federated net of its node
bundle, its private trees) under several choice rules, all reading valid rows only:

- ``endpoint``: per endpoint, the option best on the partner's valid rows (``federation.blend.choose``;
  ``FederatedConfig.blend_rule = "endpoint"``, the default when this script was written);
- ``partner``: one option for all of the partner's endpoints, the one with the best mean valid metric over the
  endpoints its valid rows score (three choices per partner instead of three per endpoint: less noise);
- ``margin``: per endpoint, the equal blend unless another option beats it on valid by more than ``MARGIN``;
  ``margin_nn`` / ``margin_nn05``: the federated net unless another option beats it by more than ``MARGIN`` / 0.05;
- ``hybrid``: ``endpoint`` where the valid rows hold >= ``HYBRID_MIN_LABELS`` labels of the endpoint, else
  ``partner``'s pick;
- ``fixed:<option>``: no choice (the federated net alone; the equal blend, ``blend_rule = "equal"``, the
  default since this script's comparison on two partitions);
- ``endpoint5`` / ``partner5`` / ``hybrid5``: the same rules over five mixes of net and trees (weight on the net
  1, .75, .5, .25, 0) instead of three.

The adoption signal is a cross-fit valid estimate per partner: choose on one random half of its valid rows,
score the other half, both ways, over three random halvings. The test scores against the run's best solo
model are printed beside it and never used to decide.

    .venv/bin/python bench/federation_blend_rules.py WORK/base [--refit-valid] [--out bench/results/F.json]

``--refit-valid`` is for runs made before the blend read the kept trees' valid predictions
(``federation.blend.PrivateTrees.predict_valid``): it fits the private trees again and uses the valid predictions of
the trees the partner keeps (refit on all its train rows with the rounds the inner split found; no valid rows used)
instead of the saved inner-split trees'. On a newer run it only repeats what the run saved.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pipelines  # noqa: E402

pipelines.configure()

import numpy as np  # noqa: E402

from federation import blend, scoring  # noqa: E402
from federation import report as report_mod  # noqa: E402
from federation.baselines import solo_config  # noqa: E402
from federation.config import FederatedConfig  # noqa: E402
from federation.run import load_all_partners, node_work_dir  # noqa: E402

MARGIN = 0.02
HYBRID_MIN_LABELS = 100
HALVINGS = (0, 1, 2)


def _order(valid):
    return [o for o in blend.PREFERENCE if o in valid] + [o for o in valid if o not in blend.PREFERENCE]


def rule_endpoint(valid, Y, tasks):
    return {ep: c["choice"] for ep, c in blend.choose(valid, Y, tasks).items()}


def rule_partner(valid, Y, tasks):
    per = {o: scoring.endpoint_scores(p, Y, tasks) for o, p in valid.items()}
    common = set.intersection(*(set(s) for s in per.values())) if per else set()
    pick = blend.FED_NN
    if common:
        means = {o: np.mean([per[o][ep]["value"] for ep in common]) for o in _order(valid)}
        best = max(means.values())
        pick = next(o for o in _order(valid) if means[o] == best)
    return {t.name: pick for t in tasks}


def rule_margin(valid, Y, tasks, base=blend.EQUAL_BLEND, margin=MARGIN):
    out = {}
    for ep, c in blend.choose(valid, Y, tasks).items():
        s = c["valid"]
        if not s:
            out[ep] = c["choice"]
        elif base in s and s[c["choice"]] - s[base] <= margin:
            out[ep] = base
        else:
            out[ep] = c["choice"]
    return out


def rule_hybrid(valid, Y, tasks, min_labels=HYBRID_MIN_LABELS):
    """Per endpoint where the valid rows hold >= ``min_labels`` labels of it, else the partner-level pick."""
    ends, part = rule_endpoint(valid, Y, tasks), rule_partner(valid, Y, tasks)
    n = np.sum(np.isfinite(Y), axis=0)
    return {t.name: ends[t.name] if n[j] >= min_labels else part[t.name] for j, t in enumerate(tasks)}


def with_weights(nn, trees):
    """Extra options: the federated net and the trees mixed 3:1 and 1:3 (``nn_75`` / ``nn_25``)."""
    tr = np.where(np.isnan(trees), nn, trees)
    return {"nn_75": 0.75 * nn + 0.25 * tr, "nn_25": 0.25 * nn + 0.75 * tr}


def rule_fixed(option):
    return lambda valid, Y, tasks: {t.name: option for t in tasks}


RULES = {"endpoint": rule_endpoint, "partner": rule_partner, "margin": rule_margin, "hybrid": rule_hybrid,
         "margin_nn": lambda v, Y, t: rule_margin(v, Y, t, base=blend.FED_NN),
         "margin_nn05": lambda v, Y, t: rule_margin(v, Y, t, base=blend.FED_NN, margin=0.05),
         "fixed:federated_nn": rule_fixed(blend.FED_NN), "fixed:equal_blend": rule_fixed(blend.EQUAL_BLEND)}


def _score(preds, choice, Y, tasks):
    s = scoring.endpoint_scores(blend.apply(preds, {k: {"choice": v} for k, v in choice.items()}, tasks), Y, tasks)
    return scoring.partner_metric(s) if s else float("nan")


def crossfit(rule, valid, Yv, tasks):
    vals = []
    for sd in HALVINGS:
        perm = np.random.default_rng(sd).permutation(len(Yv))
        A, B = perm[: len(Yv) // 2], perm[len(Yv) // 2:]
        for a, b in ((A, B), (B, A)):
            ch = rule({k: v[a] for k, v in valid.items()}, Yv[a], tasks)
            m = _score({k: v[b] for k, v in valid.items()}, ch, Yv[b], tasks)
            if np.isfinite(m):
                vals.append(m)
    return float(np.mean(vals)) if vals else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a base run's folder (bench/federation.py's WORK/base)")
    ap.add_argument("--out", type=Path, default=None, help="JSON (default: RUN/../blend_rules.json)")
    ap.add_argument("--refit-valid", action="store_true",
                    help="fit each partner's private trees again (federation.blend.fit_private_trees) and choose on "
                         "the valid predictions of the refit trees the partner keeps, not of the inner-split trees")
    args = ap.parse_args()
    out = args.run
    cfg = FederatedConfig.from_dict(json.loads((out / "config.json").read_text()) | {"partners_dir": str(out / "partners")})
    rep = json.loads((out / "report.json").read_text())
    solo = {p["partner"]: p["best_solo"] for p in rep["partners"]}
    mcfg = solo_config(cfg, cfg.solo_ensemble)
    rows = []
    for d in load_all_partners(cfg, out / "partners"):
        nd = node_work_dir(cfg, d.partner)
        nn = blend.federated_nn_predictions(nd / "bundle", d)
        tr = blend.load_private_tree_predictions(nd, d)
        if args.refit_valid:
            kept = blend.fit_private_trees(d, mcfg)
            tr = {"valid": kept.predict(d.X[d.rows("valid")]), "test": kept.predict(d.X[d.rows("test")])}
        valid = blend.candidates(nn["valid"], tr["valid"])
        test = blend.candidates(nn["test"], tr["test"])
        Yv, Yt = d.Y[d.rows("valid")], d.Y[d.rows("test")]
        r = {"partner": d.partner, "solo": solo.get(d.partner), "valid_labels": int(np.isfinite(Yv).sum())}
        for name, rule in RULES.items():
            r["test:" + name] = _score(test, rule(valid, Yv, d.tasks), Yt, d.tasks)
            r["cf:" + name] = crossfit(rule, valid, Yv, d.tasks)
        # the five-weight family: the same rules over five mixes of net and trees instead of three
        valid5 = valid | with_weights(nn["valid"], tr["valid"])
        test5 = test | with_weights(nn["test"], tr["test"])
        for name in ("endpoint", "partner", "hybrid"):
            r[f"test:{name}5"] = _score(test5, RULES[name](valid5, Yv, d.tasks), Yt, d.tasks)
            r[f"cf:{name}5"] = crossfit(RULES[name], valid5, Yv, d.tasks)
        rows.append(r)
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)
    summary = {}
    for name in list(RULES) + ["endpoint5", "partner5", "hybrid5"]:
        ok = [r for r in rows if r["solo"] is not None and np.isfinite(r["test:" + name])]
        gains = [(r["test:" + name] - r["solo"]) / abs(r["solo"]) for r in ok if r["solo"]]
        summary[name] = {"crossfit_valid_mean": float(np.nanmean([r["cf:" + name] for r in rows])),
                         "test_beats_best_solo": sum(r["test:" + name] - r["solo"] > report_mod.TIE_TOLERANCE
                                                     for r in ok),
                         "test_median_relative_gain": float(np.median(gains)) if gains else None,
                         "test_mean": float(np.mean([r["test:" + name] for r in ok])) if ok else None}
        print(f"{name:<22} cross-fit valid {summary[name]['crossfit_valid_mean']:.4f}   test: beats best solo "
              f"{summary[name]['test_beats_best_solo']:>2} of {len(rows)}, median gain "
              f"{summary[name]['test_median_relative_gain']:+.3f}, mean {summary[name]['test_mean']:.4f}")
    (args.out or out.parent / "blend_rules.json").write_text(json.dumps(
        {"summary": summary, "partners": rows, "margin": MARGIN, "refit_valid": args.refit_valid}, indent=1))


if __name__ == "__main__":
    main()
