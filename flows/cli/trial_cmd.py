"""``fedadmet trial ...``: train / predict trial outcomes, published priors, virtual trials, design optimisation.

Each command turns an ``InputError`` into one red line and exit code 2, and writes its resolved settings
(``config.json``) next to its outputs.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from flows.cli.errors import CommandGroup
from pipelines.errors import InputError

log = logging.getLogger(__name__)

trial_app = typer.Typer(cls=CommandGroup, help="Clinical trials: outcome prediction, priors, virtual trials, design optimisation.",
                        no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console()
err_console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.add_typer(trial_app, name="trial")


@contextlib.contextmanager
def _spinner(label: str) -> Iterator[None]:
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        bar.add_task(label, total=None)
        yield


def _write_config(out_dir: Path, command: str, **settings: object) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"command": f"fedadmet trial {command}",
           **{k: (str(v) if isinstance(v, Path) else v) for k, v in settings.items()}}
    (out_dir / "config.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")


def _metrics(y: np.ndarray, p: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
    return {"n": int(len(y)), "roc_auc": float(roc_auc_score(y, p)), "pr_auc": float(average_precision_score(y, p)),
            "f1": float(f1_score(y, p >= 0.5)), "base_rate": float(np.mean(y))}


# ----------------------------------------------------------------------------- train
@trial_app.command("train")
def train_cmd(
    data: Path = typer.Option(..., "--data", help="Labelled trial table (TOP/HINT format, CSV/.gz/Parquet)."),
    out: Path = typer.Option(..., "--out", help="Folder for the trained model."),
    valid: Path | None = typer.Option(None, "--valid", help="Optional labelled table to report metrics on."),
    admet_model: Path | None = typer.Option(None, "--admet-model", help="ADMET bundle folder: adds ADMET features."),
    seeds: int = typer.Option(5, "--seeds", min=1, help="LightGBM seeds averaged."),
) -> None:
    """Train the trial-outcome model (drugs, ADMET, ICD-10, criteria text, phase)."""
    from clinical_sim.admet_link import load_admet
    from clinical_sim.features import FeatureConfig
    from clinical_sim.outcome_model import ModelConfig, TrialOutcomeModel
    from clinical_sim.trial_table import read_trials

    table = read_trials(data, require_label=True)
    admet = load_admet(admet_model) if admet_model else None
    cfg = ModelConfig(n_seeds=seeds, features=FeatureConfig(use_admet=admet is not None))
    usable = table.usable
    _write_config(out, "train", data=data, valid=valid, admet_model=admet_model, model=cfg.as_dict())
    table.problems.to_csv(out / "unusable_rows.csv", index=False)
    with _spinner(f"training on {len(usable)} trials ({seeds} seeds)"):
        model = TrialOutcomeModel(cfg, admet=admet, admet_dir=str(admet_model.resolve()) if admet_model else None)
        model.fit(usable, usable["label"].to_numpy())
    metrics = {"train_oof": dict(model.metrics), "n_input": len(table.trials),
               "n_unusable": len(table.problems)}
    if valid is not None:
        vt = read_trials(valid, require_label=True).usable
        metrics["valid"] = _metrics(vt["label"].to_numpy().astype(int), model.predict_proba(vt))
    model.metrics.update({k: v for k, v in metrics.items() if k != "train_oof"})
    model.save(out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    t = Table(title=f"trial model -> {out}")
    t.add_column("set")
    for col in ("n", "ROC-AUC", "PR-AUC"):
        t.add_column(col, justify="right")
    t.add_row("train (out-of-fold)", str(model.n_train), f"{model.metrics['oof_roc_auc']:.3f}",
              f"{model.metrics['oof_pr_auc']:.3f}")
    if "valid" in metrics:
        v = metrics["valid"]
        t.add_row("valid", str(v["n"]), f"{v['roc_auc']:.3f}", f"{v['pr_auc']:.3f}")
    console.print(t)
    if len(table.problems):
        console.print(f"{len(table.problems)} unusable row(s) listed in {out / 'unusable_rows.csv'}")


# ----------------------------------------------------------------------------- predict
@trial_app.command("predict")
def predict_cmd(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="Trial table to score (labels not needed)."),
    model_dir: Path = typer.Option(..., "--model", help="Folder written by `fedadmet trial train`."),
    out: Path = typer.Option(..., "--out", help="Output CSV: one row per input trial, in order."),
    admet_model: Path | None = typer.Option(None, "--admet-model", help="Override the ADMET bundle folder."),
) -> None:
    """Score trials: nctid, p_success, top contributing features; unscorable rows get status + reason."""
    from clinical_sim.admet_link import load_admet
    from clinical_sim.outcome_model import TrialOutcomeModel
    from clinical_sim.trial_table import read_trials

    model = TrialOutcomeModel.load(model_dir, admet=load_admet(admet_model) if admet_model else None)
    table = read_trials(input_path)
    trials = table.trials
    result = pd.DataFrame({"row": trials["row"], "nctid": trials["nctid"], "status": "unscored",
                           "reason": trials["problem"], "p_success": np.nan, "top_features": ""})
    usable = table.usable
    if len(usable):
        with _spinner(f"scoring {len(usable)} trials"):
            result.loc[usable.index, "p_success"] = model.predict_proba(usable)
            result.loc[usable.index, "top_features"] = model.explain(usable)
        result.loc[usable.index, "status"] = "ok"
    out.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(out, index=False)
    console.print(f"{int((result['status'] == 'ok').sum())} scored, {int((result['status'] != 'ok').sum())} "
                  f"unscored of {len(result)} -> {out}")


# ----------------------------------------------------------------------------- prior
@trial_app.command("prior")
def prior_cmd(
    phase: str = typer.Option("all", "--phase", help="1, 2, 3, nda, or 'all'."),
    area: str = typer.Option("all", "--area", help="Therapeutic area (e.g. oncology, hematology, urology)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Published phase-transition base rates (BIO/Informa/QLS 2011-2020) for a therapeutic area."""
    from clinical_sim.prior import CITATION, known_areas, phase_prior, prior_table

    rows = prior_table(area) if phase == "all" else [phase_prior(phase, area)]
    if as_json:
        console.print_json(json.dumps([{k: getattr(r, k) for k in ("area", "phase", "p_transition", "loa", "derived")}
                                       for r in rows] + [{"source": CITATION}]))
        return
    if rows[0].area != area.strip().lower().replace(" ", "_") and area != "all":
        err_console.print(f"[yellow]no published rate for area {area!r}; using all indications. "
                          f"Areas: {', '.join(known_areas())}")
    t = Table(title=f"Phase transition base rates: {rows[0].area}")
    for col in ("phase", "P(next phase)", "LOA from phase", "derived"):
        t.add_column(col)
    for r in rows:
        t.add_row(r.phase, f"{r.p_transition:.3f}", f"{r.loa:.3f}", "yes" if r.derived else "")
    console.print(t)
    console.print(f"source: {CITATION}")


# ----------------------------------------------------------------------------- simulate / optimize
def _compound_pk(compound: str, admet_model: Path | None, design):
    from clinical_sim.admet_link import compound_pk, load_admet

    predicted, values = None, {}
    if admet_model is None and not design.pk.explicit():
        # the shipped base model (admet.shipped) predicts the PK endpoints when no bundle is named
        from admet.shipped import check_shipped, shipped_model_dir

        try:
            check_shipped(shipped_model_dir())
        except InputError as exc:
            raise InputError("give --admet-model, or explicit cl_l_h, v_l, ka_h and f in the design's [pk] "
                             f"section (no usable shipped base model: {exc})") from None
        admet_model = shipped_model_dir()
    if admet_model is not None:
        predicted, values = compound_pk(load_admet(admet_model), compound)
    return design.pk.typical(predicted), values


@trial_app.command("simulate")
def simulate_cmd(
    compound: str = typer.Option(..., "--compound", help="Compound SMILES."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    admet_model: Path | None = typer.Option(None, "--admet-model", help="ADMET bundle: PK typical values (default: the shipped base model, unless the design's [pk] "
                                      "gives cl_l_h, v_l, ka_h and f)."),
    design_path: Path | None = typer.Option(None, "--design", help="Design TOML (default: the shipped one)."),
    n_trials: int | None = typer.Option(None, "--n-trials", min=1, help="Override the number of virtual trials."),
    seed: int | None = typer.Option(None, "--seed", help="Override the design's seed."),
) -> None:
    """Monte Carlo virtual trials: P(success) with a 95% interval, exposure/response plots, per-trial table."""
    from clinical_sim.design import load_design
    from clinical_sim.plots import plot_exposure, plot_response
    from clinical_sim.simulate import simulate_trials

    design = load_design(design_path)
    if n_trials or seed is not None:
        design = design.updated(trial={**({"n_trials": n_trials} if n_trials else {}),
                                       **({"seed": seed} if seed is not None else {})})
    typical, values = _compound_pk(compound, admet_model, design)
    out.mkdir(parents=True, exist_ok=True)
    design.to_toml(out / "design.toml")
    _write_config(out, "simulate", compound=compound, admet_model=admet_model, design=design_path,
                  pk_typical=typical.as_dict(), admet_predictions=values)
    with _spinner(f"{design.trial.n_trials} virtual trials x {design.trial.n_per_arm} patients per arm"):
        result = simulate_trials(design, typical)
    result.trials.to_csv(out / "trials.csv", index=False)
    result.patients.to_csv(out / "patients.csv", index=False)
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2, default=float) + "\n")
    plot_exposure(result.patients, design, out / "exposure.png")
    plot_response(result.patients, design, out / "response.png")
    s = result.summary
    t = Table(title=f"virtual trials -> {out}")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_row("P(success)", f"{s['p_success']:.3f} [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]")
    t.add_row("efficacy power", f"{s['power_efficacy']:.3f}")
    t.add_row("P(safety acceptable)", f"{s['p_safe']:.3f}")
    t.add_row("AE rate active / placebo", f"{s['mean_ae_rate_active']:.3f} / {s['mean_ae_rate_placebo']:.3f}")
    t.add_row("median Cavg,ss (mg/L)", f"{s['median_cavg_mg_l']:.3g}")
    t.add_row("typical CL (L/h), V (L), F", f"{typical.cl_l_h:.3g}, {typical.v_l:.3g}, {typical.f:.2f}")
    console.print(t)


@trial_app.command("optimize")
def optimize_cmd(
    compound: str = typer.Option(..., "--compound", help="Compound SMILES."),
    out: Path = typer.Option(..., "--out", help="Output folder (holds study.db; reruns resume it)."),
    trials: int = typer.Option(40, "--trials", min=1, help="Designs to evaluate in this run."),
    admet_model: Path | None = typer.Option(None, "--admet-model", help="ADMET bundle: PK typical values (default: the shipped base model, unless the design's [pk] "
                                      "gives cl_l_h, v_l, ka_h and f)."),
    design_path: Path | None = typer.Option(None, "--design", help="Base design TOML with an [optimize] section."),
    seed: int = typer.Option(0, "--seed", help="Sampler seed."),
) -> None:
    """Multi-objective Optuna study: max P(success), min sample size, AE-rate constraint -> Pareto front."""
    from clinical_sim.design import load_design
    from clinical_sim.optimize import optimize_design
    from clinical_sim.plots import plot_pareto

    design = load_design(design_path)
    typical, values = _compound_pk(compound, admet_model, design)
    _write_config(out, "optimize", compound=compound, admet_model=admet_model, design=design_path,
                  trials=trials, seed=seed, pk_typical=typical.as_dict(), admet_predictions=values,
                  search_space=design.optimize.model_dump())
    with Progress(TextColumn("[bold]designs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("designs", total=trials)
        result = optimize_design(design, typical, trials, out, seed=seed,
                                 callbacks=[lambda study, t: bar.advance(task)])
    result.trials.to_csv(out / "designs.csv", index=False)
    result.pareto.to_csv(out / "pareto.csv", index=False)
    result.chosen_design.to_toml(out / "chosen_design.toml")
    (out / "chosen.json").write_text(json.dumps(result.chosen, indent=2) + "\n")
    plot_pareto(result.trials, result.pareto, result.chosen, out / "pareto.png")
    t = Table(title=f"Pareto front ({len(result.trials)} designs) -> {out}")
    for col in ("dose mg", "every h", "n/arm", "CrCL min", "age max", "P(success)", "AE rate"):
        t.add_column(col, justify="right")
    for _, r in result.pareto.iterrows():
        t.add_row(f"{r['dose_mg']:.3g}", f"{r['interval_h']:g}", str(int(r["n_per_arm"])),
                  f"{r['crcl_min_ml_min']:.0f}", f"{r['age_max']:.0f}", f"{r['p_success']:.3f}", f"{r['ae_rate']:.3f}")
    console.print(t)
    c = result.chosen
    console.print(f"chosen: {c['dose_mg']:.3g} mg every {c['interval_h']:g} h, n={c['n_per_arm']}/arm, "
                  f"P(success)={c['p_success']:.3f} -> {out / 'chosen_design.toml'}")
