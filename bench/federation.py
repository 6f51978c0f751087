"""Federation benchmark (issue 4): 20 partners from the embedded catalog, the project's Flower app.

What runs: the project's one ServerApp / ClientApp (real featurization, real torch training, real
Flower strategy, DP wrapper and SecAgg+ protocol) under the engine chosen with ``--engine``:
``ray`` = Flower's Simulation Engine (Ray backend), ``inprocess`` = the fallback transport
(``federation.inprocess``: the same app objects, messages handed over sequentially in this
process, no Ray). The engine used is recorded in the JSON (``engine``); the published tables in the
README were measured with ``--engine inprocess`` (Ray could not start on the shared machine).

The partition is ``fedadmet federate``'s (``--min-endpoint-rows``, default 100: every partner holds that many
rows of one endpoint, so its test fold can score it) and the federated model is the round of lowest
federated valid loss (``--keep-last-round`` for the last round's), as ``fedadmet federate`` does.

One command runs, side by side on the same partition, the same rounds and epochs for everyone:
  base    FedAvg, the default heads (``--heads``): per-partner table n rows / best solo / federated NN /
          federated blend / pooled / relative gain vs best solo / gap closed vs pooled, and per endpoint
          (mean over the partners that score it). Best solo = the partner's default-recipe model
          (``federation.baselines``: blend x ``--solo-ensemble`` members, default the CLI's, early
          stopping on its own valid rows; pooled likewise);
          federated blend = per endpoint the federated net, the partner's private LightGBM (fit on its
          train rows, early-stopped on an inner scaffold split of them, never on valid) or their mean,
          chosen on its valid rows; endpoints the valid rows cannot score take ``--blend-fallback``
          (default ``nn``: the federated net) (``federation.blend``). Printed and in the JSON: choice
          counts, valid-minus-test per option, the summary under every fallback rule (a second look,
          reported only). Targets (issue 10 §5): the blend beats best solo for >= 18 of 20 partners
          (a partner that cannot be scored counts as missed; n_scored beside it), median relative
          gain >= 5 %; the federated wall is
          printed next to the best-solo training time of all partners in turn. Bytes per round
          *measured* from the serialized Flower messages (both directions, train and evaluate
          phases), printed next to the size of the global arrays for scale (not a verdict);
  secagg  the same with SecAgg+ (legacy API path): accuracy and time cost;
  dp      the same with client-side clipping + Gaussian noise: accuracy and time cost;
  poison  10 partners (``--poison-partners``), 2 of them send sign-flipped updates scaled x5: clean
          FedAvg vs poisoned FedAvg, trimmed mean, FedMedian, Krum, MultiKrum, Bulyan (Flower's, no
          norm check; ``--robust-f``) vs poisoned FedAvg / MultiKrum with the server's norm check;
  scaling public feature scaling + partner-local targets (default) vs summed partner moments;
  fedtrees the base run's blend with federated trees (``federation.trees``, Flower's FedXgbBagging)
          as a fourth per-endpoint option, on the base run's folder (run after base, same --work);
  reblend the base run's blend again from its saved predictions (no training): per partner best solo /
          federated NN / blend with the equal fallback / blend with the consortium fallback
          (``federation.blend``; both choose on valid rows only), on the base run's folder (same --work);
          writes ``--reblend-out``;
  dpcurve accuracy vs epsilon: no DP and noise chosen (bisection on Flower's RDP accountant) so the
          run ends at each ``--epsilons`` value (partner-level, delta ``--dp-delta``).

    .venv/bin/python bench/federation.py [--partners 20] [--rounds 5] [--local-epochs 2]
        [--hidden 512] [--head-finetune-epochs 0] [--modes base secagg dp poison] [--dp-clip 1.0 --dp-noise 0.1] [--engine ray]
        [--out bench/results/federation.json] [--work /tmp/fedadmet_bench]

Prints tables and writes JSON (``bench/results/federation*.json``). Timings are wall clock on a
shared machine (the load average at start is recorded): compare ratios, not absolute seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pipelines  # noqa: E402

pipelines.configure()  # a benchmark is an entry point: the CLI's runtime defaults (offline, quiet, passive OpenMP)

from federation.config import FederatedConfig, resolve_blend_rule  # noqa: E402
from federation.report import beats_target  # noqa: E402
from federation.run import run_federated  # noqa: E402

log = logging.getLogger("bench.federation")


def _cfg(args, out: Path, **kw) -> FederatedConfig:
    base = dict(out_dir=out, n_partners=args.partners, rounds=args.rounds, local_epochs=args.local_epochs,
                hidden=tuple(args.hidden), heads=args.heads, strategy="fedavg", seed=args.seed,
                head_finetune_epochs=args.head_finetune_epochs,
                num_cpus=args.cpus, cache_dir=Path(args.work) / "feature_cache", engine=args.engine,
                endpoints=tuple(args.endpoints) if args.endpoints else None, max_rows=args.max_rows,
                solo_ensemble=args.solo_ensemble, blend_fallback=args.blend_fallback,
                blend_rule=resolve_blend_rule(args.blend_rule, args.private_net),
                min_endpoint_rows=args.min_endpoint_rows, keep_best_round=not args.keep_last_round,
                blend_private_net=args.private_net,
                validate_norms=not args.no_norm_check, pooled_reference=not args.no_pooled)
    base.update(kw)
    return FederatedConfig(**base)


def _f(v) -> str:
    return "   n/a" if v is None else f"{v:6.3f}"


def _table(rep: dict) -> str:
    rows = [f"{'partner':<12}{'n_train':>8}{'n_test':>7}{'solo':>8}{'fedNN':>8}{'blend':>8}{'pooled':>8}"
            f"{'rel':>8}{'gap':>8}"]
    for p in rep["partners"]:
        rows.append(f"{p['partner']:<12}{p['n_train']:>8}{p['n_test']:>7}  {_f(p['local'])}  {_f(p.get('federated_nn'))}"
                    f"  {_f(p.get('federated_blend'))}  {_f(p['pooled'])}  {_f(p['delta']['relative'])}"
                    f"  {_f(p['gap_closed'])}")
    return "\n".join(rows)


def _endpoint_table(rep: dict) -> str:
    rows = [f"{'endpoint':<32}{'metric':>9}{'n':>4}{'solo':>8}{'fedNN':>8}{'blend':>8}{'pooled':>8}  choices"]
    for ep, e in rep.get("per_endpoint", {}).items():
        choices = ", ".join(f"{k} {v}" for k, v in sorted(e["choices"].items()))
        rows.append(f"{ep:<32}{e['metric']:>9}{e['n_partners']:>4}  {_f(e['best_solo'])}  {_f(e['federated_nn'])}"
                    f"  {_f(e['federated_blend'])}  {_f(e['pooled'])}  {choices}")
    return "\n".join(rows)


def _targets(s: dict, n_partners: int) -> dict:
    """Issue 10 §5 targets for the blend; the count is over all partners (unscorable = missed)."""
    count = beats_target(s, n_partners)
    return {"blend_beats_best_solo_ge_18_of_20": count["met"], "blend_count": count,
            "blend_median_relative_gain_ge_5pct": (s["median_relative_improvement"] or 0) >= 0.05}


def _saved_predictions(cfg: FederatedConfig, out: Path):
    """The base run's partners and, per partner, its federated NN predictions (re-predicted from its
    node bundle) and its saved private-tree predictions: what the run's blend chose from."""
    from federation import blend
    from federation.run import load_all_partners, node_work_dir

    partners = load_all_partners(cfg, out / "partners")
    nn, trees, nets = {}, {}, {}
    for d in partners:
        bundle_dir = node_work_dir(cfg, d.partner) / "bundle"
        if bundle_dir.is_dir() and (node_work_dir(cfg, d.partner) / blend.TREE_PREDICTIONS_FILE).exists():
            nn[d.partner] = blend.federated_nn_predictions(bundle_dir, d)
            trees[d.partner] = blend.load_private_tree_predictions(node_work_dir(cfg, d.partner), d)
            net = blend.load_private_net_predictions(node_work_dir(cfg, d.partner), d)
            if net is not None:
                nets[d.partner] = net
    return partners, nn, trees, nets or None


def _blend_diagnostics(args, out: Path) -> dict:
    """After the base run, from its saved predictions (no training): the blend's choice counts, the
    valid-minus-test gap per option (``federation.blend.valid_test_gaps``; reads test scores, after
    the choice) and the summary under every fallback rule (a second look at the same test set:
    reported, the default rule is not picked from it)."""
    from federation import blend
    from federation import report as report_mod
    from federation.stages import RESULT_FILE

    cfg = FederatedConfig.from_dict(json.loads((out / "config.json").read_text()) | {"partners_dir": str(out / "partners")})
    partners, nn, trees, nets = _saved_predictions(cfg, out)
    base_rep = json.loads((out / "report.json").read_text())
    outcome = json.loads((out / RESULT_FILE).read_text())
    local, pooled = _reference_scores(base_rep, "best_solo"), _reference_scores(base_rep, "pooled")
    rules, by_rule, mine = {}, {}, None
    for rule in blend.FALLBACK_RULES:  # the fallback matters only where the rule chooses per endpoint
        mixed, _ = blend.blend_consortium(partners, nn, trees, fallback=rule, nets=nets, rule="endpoint")
        rep = report_mod.build_report(outcome, local, pooled, blend=mixed)
        rules[rule] = _summary_line(rep["summary"])
        if cfg.blend_rule == "endpoint" and rule == cfg.blend_fallback:
            mine = mixed
    for rule in blend.BLEND_RULES:
        if rule == "equal" and nets:
            continue
        mixed, _ = blend.blend_consortium(partners, nn, trees, fallback=cfg.blend_fallback, nets=nets, rule=rule)
        by_rule[rule] = _summary_line(report_mod.build_report(outcome, local, pooled, blend=mixed)["summary"])
        if rule == cfg.blend_rule == "equal":
            mine = mixed
    return {"blend_choices": blend.choice_counts(mine), "valid_vs_test_diagnostic": blend.valid_test_gaps(mine),
            "fallback_rules": rules, "blend_rules": by_rule}


def _mean_fed(rep: dict, exclude=()) -> float:
    vals = [p["federated"] for p in rep["partners"] if p["federated"] is not None and p["partner"] not in exclude]
    return float(np.mean(vals)) if vals else float("nan")


def run_base(args, partners_dir: Path | None) -> tuple[dict, Path]:
    out = Path(args.work) / "base"
    t0 = time.perf_counter()
    res = run_federated(_cfg(args, out, partners_dir=partners_dir))
    rep = res.report
    s, t = rep["summary"], rep["timing"]
    fed_train = t.get("federated_train_seconds") or float("nan")
    fed_wall = t.get("federated_wall_seconds") or float("nan")
    local = t.get("local_all_partners_seconds") or float("nan")
    result = {
        "table": [{k: p.get(k) for k in ("partner", "n_train", "n_test", "local", "federated", "pooled",
                                         "best_solo", "federated_nn", "federated_blend")} |
                  {"relative": p["delta"]["relative"], "gap_closed": p["gap_closed"],
                   "relative_nn": p.get("delta_nn", {}).get("relative"), "gap_closed_nn": p.get("gap_closed_nn"),
                   "blend_choice": {ep: e.get("blend_choice") for ep, e in p["endpoints"].items()}}
                  for p in rep["partners"]],
        "summary": s,
        "per_endpoint": rep.get("per_endpoint"),
        "references": rep.get("references"),
        "partition": {"max_rows": args.max_rows, "endpoints": args.endpoints, "n_partners": args.partners,
                      "min_endpoint_rows": args.min_endpoint_rows},
        "norm_check": not args.no_norm_check,
        "selected_round": rep.get("selected_round"),
        "valid_loss_by_round": {r["round"]: r.get("valid_loss") for r in rep.get("round_log", [])},
        "blend_seconds": t.get("blend_seconds"),
        "bytes_per_round": rep["bytes_per_round"], "bytes_measured_as": rep["bytes_measured_as"],
        "model_bytes": rep["model_bytes"],
        "federated_train_seconds": fed_train, "federated_server_seconds": fed_wall,
        "local_all_partners_seconds": local, "pooled_seconds": t.get("pooled_seconds"),
        "wall_ratio_train_vs_local": fed_train / local if local else float("nan"),
        "wall_ratio_server_vs_local": fed_wall / local if local else float("nan"),
        "run_seconds": time.perf_counter() - t0,
        "targets": _targets(s, args.partners) | {
            "nn_beats_best_solo_ge_18_of_20": beats_target(s["nn"], args.partners)["met"],
            "nn_count": beats_target(s["nn"], args.partners),
            "nn_median_relative_gain_ge_5pct": (s["nn"]["median_relative_improvement"] or 0) >= 0.05,
        },
        "solo_ensemble": args.solo_ensemble, "blend_fallback": args.blend_fallback,
        "blend_rule": resolve_blend_rule(args.blend_rule, args.private_net),
        "blend_trees_seconds": t.get("blend_trees_seconds"), "blend_net_seconds": t.get("blend_net_seconds"),
        "blend_private_net": args.private_net,
    }
    try:  # a diagnostic: if it fails, the measured run above is still written
        result.update(_blend_diagnostics(args, out))
    except Exception as exc:  # noqa: BLE001
        log.exception("blend diagnostics failed")
        result.update(blend_choices={}, valid_vs_test_diagnostic={"n_partner_endpoints_scored_on_valid_and_test": 0,
                                                                  "mean_valid_minus_test": {}},
                      fallback_rules={}, diagnostics_error=repr(exc))
    print(f"\n== base: FedAvg, {args.heads} heads; references: best solo and pooled (default recipe) ==")
    print(_table(rep))
    print("\nper endpoint (mean over the partners that score it):")
    print(_endpoint_table(rep))
    nn = s["nn"]
    print(f"\nfederated blend beats best solo for {s['n_improved']}/{args.partners} partners ({s['n_scored']} scorable; "
          f"unscorable count as missed), median relative gain "
          f"{_f(s['median_relative_improvement'])}, median gap closed {_f(s['median_gap_closed'])}")
    print(f"federated NN alone: {nn['n_improved']}/{args.partners} ({nn['n_scored']} scorable), median relative gain "
          f"{_f(nn['median_relative_improvement'])}, median gap closed {_f(nn['median_gap_closed'])}")
    print("blend choices: " + ", ".join(f"{k} {v}" for k, v in result["blend_choices"].items()))
    diag = result["valid_vs_test_diagnostic"]
    print(f"valid - test per option over {diag['n_partner_endpoints_scored_on_valid_and_test']} partner-endpoints "
          f"(mean): " + ", ".join(f"{o} {v:+.3f}" for o, v in diag["mean_valid_minus_test"].items()))
    for rule, r in result["fallback_rules"].items():
        print(f"  fallback {rule:<11} beats best solo {r['n_improved']}/{args.partners}, median rel. gain "
              f"{_f(r['median_relative_improvement'])}")
    print(f"bytes/round {rep['bytes_per_round']:.0f} measured ({rep['bytes_measured_as']}); "
          f"global arrays {rep['model_bytes']} B")
    print(f"federated rounds {fed_train:.1f}s (server total {fed_wall:.1f}s) vs best solo, all partners in turn "
          f"{local:.1f}s; pooled {t.get('pooled_seconds') or float('nan'):.1f}s")
    return result, out / "partners"


def _reference_scores(rep: dict, key: str) -> dict[str, dict]:
    return {p["partner"]: {"metric": p[key] if p[key] is not None else float("nan"),
                           "endpoints": {ep: e[key] for ep, e in p["endpoints"].items() if e.get(key) is not None}}
            for p in rep["partners"]}


def run_fedtrees(args) -> dict:
    """The base run's blend again with a fourth per-endpoint option, federated trees (``federation.trees``:
    Flower's FedXgbBagging), on the base run's partition; reads the base run's folder (its nodes' bundles and
    saved private-tree predictions), so ``--modes base`` must have run with the same ``--work``."""
    from federation import blend
    from federation import report as report_mod
    from federation.run import load_all_partners, node_work_dir
    from federation.stages import RESULT_FILE
    from federation.trees import federated_trees

    out = Path(args.work) / "base"
    cfg = _cfg(args, out, partners_dir=out / "partners")
    t0 = time.perf_counter()
    trees = federated_trees(cfg, out / "partners")
    t_trees = time.perf_counter() - t0
    partners = load_all_partners(cfg, out / "partners")
    base_rep = json.loads((out / "report.json").read_text())
    private = {d.partner: blend.load_private_tree_predictions(node_work_dir(cfg, d.partner), d) for d in partners}
    extra = {d.partner: {blend.FED_TREES: blend.federated_tree_option(trees.predictions.get(d.partner, {}), d)}
             for d in partners}
    nets = {d.partner: n for d in partners if (n := blend.load_private_net_predictions(node_work_dir(cfg, d.partner), d))}
    mixed = blend.federated_blend(partners, {d.partner: node_work_dir(cfg, d.partner) / "bundle" for d in partners},
                                  private, extra, write_choice=False, nets=nets or None, rule="endpoint")
    outcome = json.loads((out / RESULT_FILE).read_text())
    rep = report_mod.build_report(outcome, _reference_scores(base_rep, "best_solo"),
                                  _reference_scores(base_rep, "pooled"), blend=mixed,
                                  references=base_rep.get("references"))
    s = rep["summary"]
    result = {"table": [{k: p.get(k) for k in ("partner", "n_train", "n_test", "best_solo", "federated_nn",
                                                "federated_blend", "pooled")} |
                        {"relative": p["delta"]["relative"], "gap_closed": p["gap_closed"],
                         "blend_choice": {ep: e.get("blend_choice") for ep, e in p["endpoints"].items()}}
                        for p in rep["partners"]],
              "summary": s, "per_endpoint": rep["per_endpoint"], "federated_trees_seconds": t_trees,
              "federated_trees_bytes_down": trees.bytes_down, "federated_trees_bytes_up": trees.bytes_up,
              "federated_trees_only": {p: r["test_by_option"].get(blend.FED_TREES, {}).get("metric")
                                       for p, r in mixed.items()},
              "targets": _targets(s, args.partners)}
    print("\n== fedtrees: the blend with federated trees as a fourth option (same partition, same net) ==")
    print(_table(rep))
    print("\nper endpoint:")
    print(_endpoint_table(rep))
    print(f"\nblend (4 options) beats best solo for {s['n_improved']}/{s['n_scored']} partners, median relative gain "
          f"{_f(s['median_relative_improvement'])}, median gap closed {_f(s['median_gap_closed'])}; "
          f"federated trees {t_trees:.0f}s")
    return result


def _summary_line(s: dict) -> dict:
    return {"n_improved": s["n_improved"], "n_scored": s["n_scored"],
            "median_relative_improvement": s["median_relative_improvement"],
            "median_gap_closed": s["median_gap_closed"], "mean_federated": s["mean_federated"]}


def run_reblend(args) -> dict:
    """The base run's federated blend recomputed under every fallback rule, from what the run saved:
    each node's bundle (the federated NN, re-predicted on the partner's valid / test rows) and its
    ``private_trees_predictions.npz``. Nothing is trained; the choice reads valid labels only."""
    from federation import blend
    from federation import report as report_mod
    from federation.stages import RESULT_FILE

    out = Path(args.work) / "base"
    cfg = FederatedConfig.from_dict(json.loads((out / "config.json").read_text()) | {"partners_dir": str(out / "partners")})
    t0 = time.perf_counter()
    partners, nn, trees, nets = _saved_predictions(cfg, out)
    base_rep = json.loads((out / "report.json").read_text())
    outcome = json.loads((out / RESULT_FILE).read_text())
    local, pooled = _reference_scores(base_rep, "best_solo"), _reference_scores(base_rep, "pooled")
    reps, by_rule, consortium = {}, {}, {}
    for rule in blend.FALLBACK_RULES:
        mixed, cons = blend.blend_consortium(partners, nn, trees, fallback=rule, nets=nets, rule="endpoint")
        reps[rule] = report_mod.build_report(outcome, local, pooled, blend=mixed, references=base_rep.get("references"))
        by_rule[rule] = mixed
        consortium = cons or consortium
    counts = {rule: blend.choice_counts(mixed) for rule, mixed in by_rule.items()}
    # diagnostic (reads test labels, after the choice; not part of it): how far each option's valid score
    # is from its test score, over the partner-endpoints both folds can score, and how often the
    # valid-row winner is the test-row winner (the valid-row choices are the same under every rule)
    diagnostic = blend.valid_test_gaps(by_rule["equal"])
    n_both, agree = diagnostic["n_partner_endpoints_scored_on_valid_and_test"], diagnostic["valid_winner_is_a_test_winner"]
    eq, co, bn = reps["equal"], reps["consortium"], reps["nn"]
    table = []
    for pe, pc, pn in zip(eq["partners"], co["partners"], bn["partners"], strict=True):
        table.append({"partner": pe["partner"], "n_train": pe["n_train"], "n_test": pe["n_test"],
                      "best_solo": pe["best_solo"], "federated_nn": pe["federated_nn"],
                      "blend_equal": pe["federated_blend"], "blend_consortium": pc["federated_blend"],
                      "blend_nn": pn["federated_blend"], "relative_blend_nn": pn["delta"]["relative"],
                      "pooled": pe["pooled"], "relative_nn": pe.get("delta_nn", {}).get("relative"),
                      "relative_equal": pe["delta"]["relative"], "relative_consortium": pc["delta"]["relative"],
                      "gap_closed_nn": pe.get("gap_closed_nn"), "gap_closed_equal": pe["gap_closed"],
                      "gap_closed_consortium": pc["gap_closed"],
                      "choice_consortium": by_rule["consortium"].get(pe["partner"], {}).get("choice")})
    result = {"source": str(out), "seconds": time.perf_counter() - t0,
              "note": "second look at the same test set: the consortium fallback was introduced after the first "
                      "run (federation_best_solo.json) showed the equal fallback losing to the net alone; "
                      "the rule itself reads valid rows only",
              "summary": {"federated_nn": _summary_line(eq["summary"]["nn"]),
                          "blend_equal_fallback": _summary_line(eq["summary"]),
                          "blend_consortium_fallback": _summary_line(co["summary"]),
                          "blend_nn_fallback": _summary_line(bn["summary"])},
              "choices": counts, "valid_vs_test_diagnostic": diagnostic,
              "consortium_fallback": consortium,
              "per_endpoint": {"equal": eq["per_endpoint"], "consortium": co["per_endpoint"], "nn": bn["per_endpoint"]},
              "table": table}
    print("\n== reblend: the base run's blend, equal vs consortium fallback (saved predictions, no training) ==")
    print(f"{'partner':<12}{'n_test':>7}{'solo':>8}{'fedNN':>8}{'b.eq':>8}{'b.cons':>8}{'pooled':>8}")
    for r in table:
        print(f"{r['partner']:<12}{r['n_test']:>7}  {_f(r['best_solo'])}  {_f(r['federated_nn'])}  {_f(r['blend_equal'])}"
              f"  {_f(r['blend_consortium'])}  {_f(r['pooled'])}")
    for name, s in result["summary"].items():
        print(f"{name:<28} beats best solo {s['n_improved']}/{s['n_scored']}, median rel. gain "
              f"{_f(s['median_relative_improvement'])}, median gap closed {_f(s['median_gap_closed'])}")
    for rule, c in counts.items():
        print(f"choices ({rule} fallback): " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    print(f"diagnostic over {n_both} partner-endpoints scored on valid and test: valid winner = a test winner "
          f"{agree}/{n_both}; mean valid - test: "
          + ", ".join(f"{o} {v:+.3f}" for o, v in diagnostic["mean_valid_minus_test"].items()))
    return result


def run_variant(args, name: str, partners_dir: Path, base: dict, **kw) -> dict:
    out = Path(args.work) / name
    t0 = time.perf_counter()
    res = run_federated(_cfg(args, out, partners_dir=partners_dir, baselines=False, **kw))
    rep = res.report
    fed = _mean_fed(rep)
    base_fed = float(np.mean([r["federated"] for r in base["table"] if r["federated"] is not None]))
    t = rep["timing"].get("federated_train_seconds") or float("nan")
    result = {"mean_federated": fed, "base_mean_federated": base_fed, "accuracy_cost": base_fed - fed,
              "federated_train_seconds": t, "time_ratio_vs_base": t / base["federated_train_seconds"],
              "bytes_per_round": rep["bytes_per_round"], "privacy": rep["privacy"],
              "per_partner": {p["partner"]: p["federated"] for p in rep["partners"]},
              "run_seconds": time.perf_counter() - t0}
    print(f"\n== {name} == mean federated {fed:.3f} (base {base_fed:.3f}); rounds {t:.1f}s "
          f"({result['time_ratio_vs_base']:.2f}x base)")
    return result


def noise_for_epsilon(epsilon: float, rounds: int, n_partners: int, delta: float) -> float:
    """The noise multiplier whose ``rounds`` releases spend ``epsilon`` at ``delta`` (bisection on the
    run's own accountant, ``federation.dp``: Flower's RdpAccountant, partner-level, no amplification)."""
    from federation.dp import make_accountant, round_event

    def spent(z: float) -> float:
        acc = make_accountant(n_partners, delta)
        acc.compose(round_event(z, n_partners), rounds)
        return acc.get_epsilon(delta)

    lo, hi = 1e-2, 1e3
    for _ in range(80):
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if spent(mid) < epsilon else (mid, hi)
    return hi


def run_scaling(args) -> dict:
    """Public feature scaling + partner-local target scaling (default, nothing leaves a node for it)
    vs the older consortium scaling from summed partner moments; same partition, FedAvg, private heads."""
    results, partners_dir = {}, None
    for mode in ("moments", "public"):
        out = Path(args.work) / f"scaling_{mode}"
        heads = {"heads": "private"} if args.heads == "auto" else {}  # partner-local target scaling is private heads
        res = run_federated(_cfg(args, out, partners_dir=partners_dir, scaling=mode, baselines=False, **heads))
        partners_dir = partners_dir or out / "partners"
        results[mode] = {"mean_federated": _mean_fed(res.report),
                         "per_partner": {p["partner"]: p["federated"] for p in res.report["partners"]},
                         "train_seconds": res.report["timing"].get("federated_train_seconds")}
    print("\n== scaling: public reference + partner targets vs summed moments ==")
    for mode, r in results.items():
        print(f"{mode:<10} mean federated {r['mean_federated']:.3f}")
    return {"runs": results, "partners_dir": str(partners_dir)}


def run_dp_curve(args) -> dict:
    """Accuracy vs epsilon: the same partition and rounds, noise chosen so the run ends at each epsilon."""
    partners_dir = Path(args.work) / "dpcurve_none" / "partners"
    rows = {}
    settings = [("none", None)] + [(f"eps_{e:g}", e) for e in args.epsilons]
    for name, eps in settings:
        out = Path(args.work) / f"dpcurve_{name}"
        kw = {"heads": "private"} if args.heads == "auto" else {}  # no-DP point on the DP runs' heads
        if eps is not None:
            z = noise_for_epsilon(eps, args.rounds, args.partners, args.dp_delta)
            kw.update(dp_clip=args.dp_clip, dp_noise=z, dp_delta=args.dp_delta)
        res = run_federated(_cfg(args, out, partners_dir=partners_dir if partners_dir.exists() else None,
                                 baselines=False, **kw))
        rep = res.report
        dp = rep["privacy"]["differential_privacy"] or {}
        rows[name] = {"target_epsilon": eps, "noise_multiplier": kw.get("dp_noise"), "clipping_norm": kw.get("dp_clip"),
                      "epsilon": dp.get("epsilon"), "delta": dp.get("delta"),
                      "epsilon_by_round": [r.get("epsilon") for r in rep["round_log"]],
                      "mean_federated": _mean_fed(rep)}
    print(f"\n== accuracy vs epsilon ({args.partners} partners, {args.rounds} rounds, delta {args.dp_delta}) ==")
    for name, r in rows.items():
        z = "-" if r["noise_multiplier"] is None else f"{r['noise_multiplier']:.3f}"
        e = "inf" if r["epsilon"] is None else f"{r['epsilon']:.2f}"
        print(f"{name:<10} z {z:>8}  epsilon {e:>6}  mean federated {r['mean_federated']:.3f}")
    return {"runs": rows, "clipping_norm": args.dp_clip, "delta": args.dp_delta}


def run_poison(args) -> dict:
    n = args.poison_partners
    bad = ("partner_03", "partner_07")
    f = args.robust_f
    common = dict(n_partners=n, baselines=False, rounds=args.poison_rounds, robust_f=f)
    if args.heads == "auto":  # auto gives robust rules private heads: the clean FedAvg run takes them too
        common["heads"] = "private"
    runs = {
        "clean_fedavg": dict(strategy="fedavg", validate_norms=False),
        "poisoned_fedavg": dict(strategy="fedavg", validate_norms=False, poison_partners=bad),
        "poisoned_trimmed": dict(strategy="trimmed", validate_norms=False, poison_partners=bad),
        "poisoned_fedmedian": dict(strategy="fedmedian", validate_norms=False, poison_partners=bad),
        "poisoned_krum": dict(strategy="krum", validate_norms=False, poison_partners=bad),
        "poisoned_multikrum": dict(strategy="multikrum", validate_norms=False, poison_partners=bad),
        "poisoned_bulyan": dict(strategy="bulyan", validate_norms=False, poison_partners=bad),
        "poisoned_fedavg_normcheck": dict(strategy="fedavg", validate_norms=True, poison_partners=bad),
        "poisoned_multikrum_normcheck": dict(strategy="multikrum", validate_norms=True, poison_partners=bad),
    }
    partners_dir = None
    results = {}
    for name, kw in runs.items():
        out = Path(args.work) / f"poison_{name}"
        cfg = _cfg(args, out, partners_dir=partners_dir, poison_scale=5.0, **common, **kw)
        res = run_federated(cfg)
        partners_dir = partners_dir or out / "partners"
        rep = res.report
        results[name] = {"mean_federated_honest": _mean_fed(rep, exclude=bad),
                         "rejected": sorted({r["partner"] for r in rep["rejections"]}),
                         "train_seconds": rep["timing"].get("federated_train_seconds")}
    clean = results["clean_fedavg"]["mean_federated_honest"]
    for r in results.values():
        r["relative_to_clean"] = (r["mean_federated_honest"] - clean) / abs(clean) if clean else float("nan")
    summary = {"runs": results, "poisoned_partners": list(bad), "scale": 5.0,
               "fedavg_degrades": results["poisoned_fedavg"]["relative_to_clean"] < -0.02,
               "trimmed_within_2pct": abs(results["poisoned_trimmed"]["relative_to_clean"]) <= 0.02,
               "fedmedian_within_2pct": abs(results["poisoned_fedmedian"]["relative_to_clean"]) <= 0.02,
               "normcheck_within_2pct": abs(results["poisoned_fedavg_normcheck"]["relative_to_clean"]) <= 0.02,
               "n_partners": n, "robust_f": f}
    print(f"\n== poisoning: {n} partners, 2 send sign-flipped updates x5 (Krum / Bulyan f = {f}) ==")
    for name, r in results.items():
        print(f"{name:<28} honest mean {r['mean_federated_honest']:.3f}  vs clean {r['relative_to_clean']:+.1%}"
              f"  rejected {r['rejected']}")
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--partners", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--poison-rounds", type=int, default=3)
    ap.add_argument("--local-epochs", type=int, default=2)
    ap.add_argument("--head-finetune-epochs", type=int, default=0,
                    help="private heads: refit each partner's heads on the final trunk before the report")
    ap.add_argument("--hidden", type=int, nargs="+", default=[512])
    ap.add_argument("--heads", default="auto", choices=["auto", "private", "shared"],
                    help="auto (the product default: shared heads in plain FedAvg, private under SecAgg+, DP or a "
                         "robust strategy), private (MELLODDY: only the trunk travels) or shared (the whole net "
                         "averaged; per-endpoint label counts leave each node: docs/PRIVACY.md). The dp curve's "
                         "no-DP run takes private heads under auto, like its DP runs")
    ap.add_argument("--no-pooled", action="store_true",
                    help="skip the pooled reference (its column is empty; saves its training time)")
    ap.add_argument("--modes", nargs="+", default=["base", "secagg", "dp", "poison"],
                    help="base secagg dp poison scaling dpcurve fedtrees reblend (fedtrees, reblend: after base, same --work)")
    ap.add_argument("--endpoints", nargs="+", default=None, help="restrict the catalog (small benchmark sizes)")
    ap.add_argument("--max-rows", type=int, default=None)
    ap.add_argument("--min-endpoint-rows", type=int, default=100,
                    help="partition floor: rows of one endpoint every partner holds (fedadmet federate's default)")
    ap.add_argument("--no-norm-check", action="store_true",
                    help="diagnostic: the server's update-norm outlier check off (default on, as in fedadmet federate)")
    ap.add_argument("--keep-last-round", action="store_true",
                    help="the run's model is the last round's (default: the round of lowest federated valid loss)")
    ap.add_argument("--solo-ensemble", type=int, default=None,
                    help="members of the best-solo / pooled references and of the blend's private trees "
                         "(default: the CLI default recipe's)")
    ap.add_argument("--private-net", action="store_true",
                    help="the blend with the partner's private-net options (FederatedConfig.blend_private_net on)")
    ap.add_argument("--blend-fallback", default="nn", choices=["nn", "consortium", "equal"],
                    help="FederatedConfig.blend_fallback for the base run (--blend-rule endpoint)")
    ap.add_argument("--blend-rule", default=None, choices=["equal", "endpoint"],
                    help="FederatedConfig.blend_rule for the base run (default: equal; endpoint with --private-net)")
    ap.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0, 8.0])
    ap.add_argument("--dp-delta", type=float, default=1e-5)
    ap.add_argument("--poison-partners", type=int, default=10)
    ap.add_argument("--robust-f", type=int, default=2, help="krum / multikrum / bulyan: adversaries tolerated")
    ap.add_argument("--dp-clip", type=float, default=1.0)
    ap.add_argument("--dp-noise", type=float, default=0.1)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--engine", default="ray", choices=["ray", "inprocess"],
                    help="ray: Flower Simulation Engine; inprocess: fallback transport, same apps (no Ray)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="/tmp/fedadmet_bench")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "federation.json"))
    ap.add_argument("--reblend-out", default=str(REPO / "bench" / "results" / "federation_best_solo_reblend.json"),
                    help="reblend: where its JSON goes (the other modes write --out)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    doc = {"config": vars(args), "load_average_start": os.getloadavg(), "cpus": os.cpu_count(),
           "engine": args.engine}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every mode, so a long run leaves what it measured
        doc["total_seconds"] = time.perf_counter() - t0
        doc["load_average_end"] = os.getloadavg()
        out.write_text(json.dumps(doc, indent=2, default=str))

    base, partners_dir = None, None
    if "base" in args.modes or "secagg" in args.modes or "dp" in args.modes:
        base, partners_dir = run_base(args, None)
        doc["base"] = base
        save()
    if "fedtrees" in args.modes:
        doc["fedtrees"] = run_fedtrees(args)
        save()
    if "reblend" in args.modes:
        reblend = {"config": vars(args), "load_average_start": os.getloadavg()} | run_reblend(args)
        Path(args.reblend_out).write_text(json.dumps(reblend, indent=2, default=str))
        print(f"wrote {args.reblend_out}")
        if set(args.modes) == {"reblend"}:
            return 0
    if "dp" in args.modes:
        doc["dp"] = run_variant(args, "dp", partners_dir, base, dp_clip=args.dp_clip, dp_noise=args.dp_noise)
        doc["dp"]["clipping_norm"], doc["dp"]["noise_multiplier"] = args.dp_clip, args.dp_noise
        save()
    if "secagg" in args.modes:
        doc["secagg"] = run_variant(args, "secagg", partners_dir, base, secagg=True)
        save()
    if "poison" in args.modes:
        doc["poison"] = run_poison(args)
        save()
    if "scaling" in args.modes:
        doc["scaling"] = run_scaling(args)
        save()
    if "dpcurve" in args.modes:
        doc["dp_curve"] = run_dp_curve(args)
        save()
    print(f"\nwrote {out} ({doc['total_seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
