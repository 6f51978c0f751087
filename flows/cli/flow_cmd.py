"""``fedadmet demo | screen | tune | lab | server | serve``: the orchestration commands."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from pipelines.errors import InputError

console = Console()


def _progress() -> Progress:
    """A bar with totals, elapsed time and ETA (rich estimates it from the rate so far)."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                    transient=False)


def _print_frame(title: str, frame, max_rows: int = 25) -> None:
    table = Table(title=title, show_lines=False)
    for col in frame.columns:
        table.add_column(str(col))
    for _, row in frame.head(max_rows).iterrows():
        table.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.tolist()])
    console.print(table)


#: Endpoint columns the terminal's top table shows at most (a 47-endpoint model does not fit a terminal).
TERMINAL_ENDPOINTS = 8
TERMINAL_SMILES = 32


def _cell(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def terminal_top(frame, result, width: int = 10_000) -> tuple:
    """The top table cut to what a terminal of ``width`` characters can show: rank, the input's first
    ID column, SMILES (cut to ``TERMINAL_SMILES`` characters), scores, then the endpoints that drive
    the score (those with a ``d_<endpoint>`` column; the first ones when none does), as many as fit, at
    most ``TERMINAL_ENDPOINTS``. Values print with 3 significant digits. Returns the frame (strings)
    and how many endpoint columns were left out; every column stays in ``ranked.csv``, the Parquet
    file and the top-compounds artifact."""
    endpoints = [e for e in result.endpoints if e in frame.columns]
    scored = [e for e in endpoints if f"d_{e}" in result.ranked.columns] or endpoints
    ids = [c for c in getattr(result, "id_columns", []) if c in frame.columns][:1]
    base = [c for c in ("rank", *ids, "smiles", "score", "score_expected", "n_out_of_domain") if c in frame.columns]
    out = frame.loc[:, [*base, *scored]].astype(object).map(_cell)
    if "smiles" in out.columns:
        out["smiles"] = [v if len(v) <= TERMINAL_SMILES else v[:TERMINAL_SMILES - 1] + "\u2026"
                         for v in out["smiles"]]

    def cost(col: str) -> int:  # rich's default padding and border: 3 characters per column
        return max([len(str(col)), *(len(v) for v in out[col])]) + 3

    used, shown = 1 + sum(cost(c) for c in base), []
    for e in scored[:TERMINAL_ENDPOINTS]:
        if shown and used + cost(e) > width:
            break
        shown.append(e)
        used += cost(e)
    return out.loc[:, [*base, *shown]], len(endpoints) - len(shown)


def _dashboard_hint() -> str:
    api = os.environ.get("PREFECT_API_URL")
    if api:
        return f"dashboard: {api.removesuffix('/api')} (runs reported to this server)"
    return ("dashboard: runs are in the local Prefect database; start the UI with `fedadmet server` "
            "and open http://127.0.0.1:4200")


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run folder."),
    partners: int = typer.Option(20, help="Number of federated partners."),
    rounds: int = typer.Option(3, help="Federated rounds."),
    local_epochs: int = typer.Option(1, help="Local epochs per round."),
    library: Path | None = typer.Option(None, help="Screening library (default: bundled 10k MOSES sample)."),
    top: int = typer.Option(25, help="Compounds in the top table."),
    no_baselines: bool = typer.Option(False, "--no-baselines", help="Skip the best-solo / pooled references."),
    endpoints: str | None = typer.Option(None, help="Comma-separated embedded endpoints (default: the demo's "
                                         "11-endpoint ADMET panel, flows.demo.DEMO_ENDPOINTS)."),
    featurizer: str = typer.Option("morgan_count", help="Featurizer spec (morgan_count+rdkit2d: stronger, slower)."),
    base_model: Path | None = typer.Option(None, "--base-model", help="Pretrained bundle the federated model is "
                                           "measured against for screening (default: the shipped base model)."),
) -> None:
    """The main job: embedded data -> partners -> federated training -> screening -> experiment loop ->
    clinical module -> report (one Prefect flow; each stage publishes its artifacts)."""
    from flows.cli import checks

    if library is not None:  # before Prefect starts
        checks.molecule_library(library, "--library")
    if base_model is not None:
        checks.model_bundle(base_model, "--base-model")
    from flows.demo import STAGES, DemoConfig, run_demo

    chosen = tuple(e.strip() for e in endpoints.split(",") if e.strip()) if endpoints else None
    cfg = DemoConfig(out_dir=out, n_partners=partners, rounds=rounds, local_epochs=local_epochs, library=library,
                     top_n=top, baselines=not no_baselines, endpoints=chosen, featurizer=featurizer,
                     base_model=base_model)
    t0 = time.perf_counter()
    with _progress() as progress:
        bar = progress.add_task("demo", total=len(STAGES))

        def on_stage(stage: str, status: str) -> None:
            if status == "start":
                progress.update(bar, description=f"demo: {stage}")
            else:
                progress.advance(bar)
                progress.console.print(f"  stage [bold]{stage}[/bold]: {status}")

        result = run_demo(cfg, on_stage=on_stage)
    if result.manifest is not None:
        compact = [c for c in ("partner", "n_rows", "n_compounds", "n_endpoints") if c in result.manifest.columns]
        _print_frame(f"{cfg.n_partners} partners (per-endpoint counts in the report)",
                     result.manifest[compact] if compact else result.manifest)
    if result.partner_table is not None:
        table = result.partner_table.dropna(axis=1, how="all")  # the demo trains no pooled reference
        title = "best solo vs federated" + (" vs pooled" if "pooled" in table.columns else "")
        _print_frame(f"{title} (mean primary metric per partner)", table)
    if result.model_choice:
        console.print(f"screening model: {result.model_choice['chosen']} ({result.model_choice['reason']})")
    if result.screening_summary:
        s = result.screening_summary
        console.print(f"screening: {s['n_input']} in, {s['n_ranked']} ranked, {s['n_rejected']} rejected")
    if result.lab_summary:
        s = result.lab_summary
        console.print(f"experiment loop: next {s['proposed']} of {s['candidates']} screened compounds proposed "
                      f"({s['acquisition']}, objective {s['endpoint']})")
    if result.clinical_summary:
        d = result.clinical_summary["suggested_design"]
        console.print(f"clinical: best virtual-trial P(success) {result.clinical_summary['best_p_success']:.3f}; "
                      + (f"suggested {d['dose_mg']:.3g} mg every {d['interval_h']:g} h, n={d['n_per_arm']}/arm"
                         if "dose_mg" in d else d.get("note", "no design suggested")))
    console.print("outputs per stage:")
    for stage, info in result.stages.items():
        where = Path(info["outputs"]).resolve() if info.get("outputs") else info.get("reason", "")
        console.print(f"  {stage:<10} {info['status']:<8} {info.get('seconds', '')!s:>6} s  {where}")
    console.print(f"demo finished in {time.perf_counter() - t0:.0f} s")
    console.print(f"report: {result.report.resolve() if result.report else '(none)'}")
    console.print(_dashboard_hint())
    if any(info["status"] == "failed" for info in result.stages.values()):
        raise typer.Exit(code=1)


def screen(
    library: Path = typer.Argument(..., help="CSV / SDF / SMILES / Parquet library."),
    model: Path | None = typer.Option(None, "--model", "-m", help="Model bundle folder (default: the shipped "
                                      "base model, models/fedadmet-base-<version>; admet.shipped)."),
    out: Path = typer.Option(Path("runs/screen"), "--out", help="Run folder."),
    profile: Path | None = typer.Option(None, help="Desirability profile TOML (default profile otherwise)."),
    smiles_col: str | None = typer.Option(None, help="SMILES column of a table."),
    chunk_size: int = typer.Option(1000, help="Molecules per featurize / predict task."),
    top: int = typer.Option(25, help="Compounds in the top table."),
    runner: str | None = typer.Option(None, help="Task runner: default (threads) or dask "
                                      "(a local cluster of --workers, or the cluster at --dask-address)."),
    workers: int | None = typer.Option(None, help="Workers of a local Dask cluster (--runner dask; default 2)."),
    dask_address: str | None = typer.Option(None, help="Existing Dask scheduler tcp://HOST:PORT "
                                            "(selects the Dask runner)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not reuse featurized chunks."),
) -> None:
    """Screen a library: predictions with uncertainty, desirability score, ranking, report."""
    from admet.shipped import resolve_model_dir
    from flows.cli import checks

    # everything a user can get wrong, before Prefect (or a Dask cluster) starts
    checks.molecule_library(library, "LIBRARY", smiles_col)
    model, shipped = resolve_model_dir(model)  # torch-free: manifest + checksums of the shipped model
    endpoints = checks.model_bundle(model, "shipped base model" if shipped else "--model")
    checks.profile_file(profile, endpoints)
    checks.at_least(chunk_size, 1, "--chunk-size")
    checks.at_least(top, 1, "--top")
    spec = checks.task_runner(runner, workers, dask_address)

    from flows.screening import run_screening, top_table
    from flows.screening_steps import ScreeningConfig

    cfg = ScreeningConfig(library=library, bundle_dir=model, out_dir=out, profile=profile, smiles_col=smiles_col,
                          chunk_size=chunk_size, top_n=top, use_cache=not no_cache)
    with _progress() as progress:
        bar = progress.add_task("screening: reading", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(bar, description="screening molecules", completed=done, total=total)

        result = run_screening(cfg, spec, progress=on_progress)
    s = result.summary()
    console.print(f"{s['n_input']} molecules: {s['n_ranked']} ranked, {s['n_rejected']} rejected {s['rejects_by_reason']}")
    shown, left_out = terminal_top(top_table(result, min(top, 10)), result, console.width)
    _print_frame(f"top {min(top, 10)}", shown)
    if left_out:
        console.print(f"({left_out} more endpoint columns in ranked.csv and the report; a wider terminal shows more)")
    console.print(f"ranked: {result.files['ranked_csv'].resolve()}")
    console.print(f"report: {result.files['report'].resolve()}")
    console.print(_dashboard_hint())


def tune(
    out: Path = typer.Option(Path("runs/tune"), "--out", help="Run folder (holds optuna.db)."),
    trials: int = typer.Option(20, help="Trials to add to the study."),
    epochs: int = typer.Option(15, help="Max epochs per trial (centralized)."),
    endpoints: str = typer.Option(",".join(("HLM_CLint", "RLM_CLint", "MDR1_ER", "solubility", "hPPB", "rPPB")),
                                  help="Comma-separated endpoints (centralized)."),
    max_molecules: int | None = typer.Option(None, help="Subsample molecules (centralized)."),
    federated: bool = typer.Option(False, "--federated", help="Each trial is a short federated simulation."),
    partners_dir: Path | None = typer.Option(None, help="Partition folder (federated tuning)."),
    rounds: int = typer.Option(4, help="Rounds per federated trial."),
    study_name: str | None = typer.Option(None, help="Optuna study name."),
    seed: int = typer.Option(0),
) -> None:
    """Optuna study on SQLite in the run folder; best parameters -> best_params.json (admet train --config)."""
    from flows.cli import checks

    checks.at_least(trials, 1, "--trials")
    if partners_dir is not None and not federated:
        raise InputError("--partners-dir is the partition of federated tuning: add --federated")
    if federated and partners_dir is not None:
        checks.partition_folder(partners_dir, "--partners-dir")
    from flows.tuning_flow import tuning_flow

    with console.status(f"tuning: {trials} trials..."):
        summary = tuning_flow(out_dir=str(out), n_trials=trials, max_epochs=epochs,
                              endpoints=tuple(e.strip() for e in endpoints.split(",") if e.strip()),
                              max_molecules=max_molecules, federated=federated,
                              partners_dir=str(partners_dir) if partners_dir else None, rounds=rounds,
                              study_name=study_name, seed=seed)
    console.print(json.dumps(summary, indent=2))
    console.print(f"best config: {Path(summary['best_config']).resolve()} "
                  f"(use: fedadmet admet train --config {summary['best_config']})")


def lab(
    out: Path = typer.Option(Path("runs/lab"), "--out", help="Run folder."),
    tune_endpoint: str = typer.Option("HLM_CLint", help="Endpoint the acquisition settings are tuned on."),
    test_endpoint: str = typer.Option("solubility", help="Held-out endpoint the loop is judged on."),
    trials: int = typer.Option(8, help="Optuna trials for the acquisition settings (0: defaults)."),
    budget: int = typer.Option(400, help="Measurements per campaign."),
    max_compounds: int = typer.Option(1500, help="Pool size cap."),
    seeds: int = typer.Option(3, help="Repeats (seeds) per strategy."),
) -> None:
    """Autonomous-lab loop vs random picking on a held-out endpoint (oracle = real labels)."""
    from flows.lab_flow import lab_flow

    with console.status("autonomous lab..."):
        summary = lab_flow(out_dir=str(out), tune_endpoint=tune_endpoint, test_endpoint=test_endpoint,
                           n_trials=trials, budget=budget, max_compounds=max_compounds,
                           seeds=tuple(range(seeds)))
    console.print(f"measurements to find {summary['fraction_target']:.0%} of the top-10%: model {summary['measurements_model']:.0f}, "
                  f"random {summary['measurements_random']:.0f} (ratio {summary['ratio_random_over_model']:.2f})")
    console.print(f"curve: {(out / 'lab_curve.png').resolve()}")


def server(
    host: str = typer.Option("127.0.0.1", help="Bind address (loopback by default)."),
    port: int = typer.Option(4200, help="Port."),
) -> None:
    """Start the Prefect dashboard (``prefect server start``) and keep it running until Ctrl-C or
    SIGTERM; either stops the server it started (its whole process group) before exiting."""
    from flows.prefect_server import Stopped, start_server, stop_on_signals

    with stop_on_signals():
        srv = start_server(host, port)
        try:
            srv.wait_ready()
            console.print(f"Prefect dashboard: {srv.ui_url}")
            console.print(f"point flows at it with: export PREFECT_API_URL={srv.api_url}")
            code = srv.process.wait()
            console.print(f"[yellow]the Prefect server exited by itself (code {code})[/yellow]")
        except Stopped as stop:
            console.print(f"{stop}: stopping the Prefect server")
        finally:
            srv.stop()


def serve(
    watch: Path | None = typer.Option(None, "--watch", help="Folder of libraries: each new file is screened "
                                      "on the schedule (with --model)."),
    model: Path | None = typer.Option(None, "--model", "-m", help="Model bundle for the watched folder (default: "
                                      "the shipped base model, as for `fedadmet screen`)."),
    screen_out: Path = typer.Option(Path("runs/watched"), "--screen-out", help="Run folder per screened file."),
    screen_every: float = typer.Option(300.0, "--screen-every", help="Seconds between scans of --watch."),
    partners_dir: Path | None = typer.Option(None, "--partners-dir", help="Partition: one more federated "
                                             "round on the schedule."),
    federated_out: Path = typer.Option(Path("runs/scheduled_federation"), "--federated-out",
                                       help="Run folder of the scheduled federation (checkpoints resume)."),
    round_every: float = typer.Option(86400.0, "--round-every", help="Seconds between federated rounds."),
    engine: str = typer.Option("inprocess", "--engine", help="Federation engine: inprocess | ray."),
    dask_address: str | None = typer.Option(None, "--dask-address", help="Existing Dask scheduler "
                                            "tcp://HOST:PORT: the watched folder's screening chunks run on its "
                                            "workers (a parameter of the deployment)."),
    limit: int | None = typer.Option(None, help="Concurrent runs."),
) -> None:
    """Prefect deployments served from this process: scheduled screening of a watched folder and/or a
    scheduled federated round (with --watch / --partners-dir); without them, the screening and
    federated-training flows on demand (trigger them from the UI). Needs a running Prefect server."""
    from datetime import timedelta

    from flows.cli import checks

    scheduled = watch is not None or partners_dir is not None
    if watch is not None:
        if not watch.is_dir():
            raise InputError(f"--watch {watch}: no such folder")
        from admet.shipped import resolve_model_dir

        given = model is not None
        model, shipped = resolve_model_dir(model)  # no --model: the checked shipped base model
        checks.model_bundle(model, "shipped base model" if shipped else "--model")
        if not given:
            console.print(f"watched folder screens with the shipped base model {model}")
    elif model is not None:
        raise InputError("--model applies to the watched folder: add --watch")
    if dask_address is not None:
        if watch is None:
            raise InputError("--dask-address runs the watched folder's screening on a cluster: add --watch")
        dask_address = checks.dask_address(dask_address)
    if partners_dir is not None:
        checks.partition_folder(partners_dir, "--partners-dir")
        if engine not in ("inprocess", "ray"):
            raise InputError(f"--engine must be inprocess or ray, got {engine!r}")
    if not os.environ.get("PREFECT_API_URL"):
        raise InputError("PREFECT_API_URL is not set: served deployments need a running server "
                         "(`fedadmet server`, then export PREFECT_API_URL=http://127.0.0.1:4200/api)")
    from prefect import serve as prefect_serve

    from flows.prefect_server import Stopped, stop_on_signals

    if scheduled:
        from flows.serve import ServeSettings, deployments

        settings = ServeSettings(watch_dir=watch, bundle_dir=model, screen_out=screen_out,
                                 screen_every=timedelta(seconds=screen_every), partners_dir=partners_dir,
                                 federated_out=federated_out, round_every=timedelta(seconds=round_every),
                                 engine=engine, dask_address=dask_address)
        served = deployments(settings)
    else:
        from flows.federated_flow import federated_training_flow
        from flows.screening import screening_flow

        served = [screening_flow.to_deployment(name="screening", description="Screen a library with a model bundle"),
                  federated_training_flow.to_deployment(name="federated-training",
                                                        description="Partition + federated training + per-partner report")]
    console.print("serving: " + ", ".join(f"{d.flow_name}/{d.name}" for d in served))
    with stop_on_signals():
        try:
            prefect_serve(*served, limit=limit)
        except Stopped as stop:
            console.print(f"{stop}: stopped serving")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("screen")(screen)
    app.command("tune")(tune)
    app.command("lab")(lab)
    app.command("server")(server)
    app.command("serve")(serve)
