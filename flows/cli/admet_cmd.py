"""``fedadmet admet ...``: train a model bundle, evaluate TDC-style, predict a library.

An unusable input (``InputError``) prints one red line and exits 2; rejected molecules are
normal output. Each command writes its resolved settings next to its outputs.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
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

from flows.cli import checks
from flows.cli.errors import CommandGroup
from pipelines.errors import InputError

log = logging.getLogger(__name__)

app = typer.Typer(cls=CommandGroup, help="ADMET/T models: train, evaluate, predict.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
console = Console()
err_console = Console(stderr=True)


def register(root: typer.Typer) -> None:
    """Add the ``admet`` sub-app to the root command line."""
    root.add_typer(app, name="admet")


@contextlib.contextmanager
def _steps(label: str, total: int) -> Iterator:
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done, _total=None: bar.update(task, completed=done)


def _steps_per_member(cfg, n_tasks: int) -> tuple[int, str]:
    """Epochs and/or boosting rounds one ensemble member trains at most (early stopping may end
    an MTNN member sooner; the bar then jumps to the member's end)."""
    rounds = cfg.lgbm_n_estimators * max(n_tasks, 1)
    if cfg.model == "lgbm":
        return rounds, "boosting rounds"
    if cfg.model == "blend":
        return cfg.epochs + rounds, "epochs + boosting rounds"
    return cfg.epochs, "epochs"


@contextlib.contextmanager
def _training_progress(cfg, n_tasks: int) -> Iterator:
    """A bar over members x (epochs or boosting rounds), with ETA. The library reports each epoch
    and round as a DEBUG record on the ``admet.progress`` logger and each finished member through
    ``train_bundle(progress=...)``; this yields that member callback."""
    per, unit = _steps_per_member(cfg, n_tasks)
    events = logging.getLogger("admet.progress")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task(f"member 1/{cfg.ensemble} ({per} {unit} each)", total=cfg.ensemble * per)
        members_done = [0]

        class _Advance(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                ceiling = (members_done[0] + 1) * per
                bar.update(task, completed=min(bar.tasks[task].completed + 1, ceiling))

        handler = _Advance(logging.DEBUG)
        saved = events.level, events.propagate
        events.setLevel(logging.DEBUG)
        events.propagate = False
        events.addHandler(handler)

        def member_finished(done: int, _total: int | None = None) -> None:
            members_done[0] = done
            bar.update(task, completed=done * per,
                       description=f"member {min(done + 1, cfg.ensemble)}/{cfg.ensemble} ({per} {unit} each)")

        try:
            yield member_finished
        finally:
            events.removeHandler(handler)
            events.setLevel(saved[0])
            events.propagate = saved[1]


def _parse_task_types(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    out = {}
    for item in text.split(","):
        name, sep, kind = item.partition("=")
        if not sep or not name.strip() or kind.strip() not in ("regression", "classification"):
            raise InputError(f"--task-types expects E=regression|classification pairs, got {item!r}")
        out[name.strip()] = kind.strip()
    return out


def _endpoints(text: str | None) -> list[str] | None:
    if not text:
        return None
    names = [e.strip() for e in text.split(",") if e.strip()]
    if not names:
        raise InputError("--endpoints is empty")
    return names


def _load_task_data(data: Path | None, endpoints: list[str] | None, task_types: dict[str, str]):
    from admet.fit import prepare_task_data
    from pipelines.catalog import load_embedded
    from pipelines.readers import read_long_table

    if data is None:
        long_df = load_embedded(endpoints)
        source = "embedded catalog"
    else:
        long_df = read_long_table(data)
        source = str(data)
    if len(long_df) == 0:
        raise InputError(f"{source}: no measurements")
    return prepare_task_data(long_df, task_types=task_types, endpoints=endpoints), source


def _check_training_inputs(data: Path | None, config: Path | None) -> None:
    """Before torch loads: the table and the hyperparameter file are there and readable."""
    if data is not None:
        checks.measurement_table(data, "--data")
    if config is not None:
        checks.readable_file(config, "--config")


def _model_config(config: Path | None, **overrides):
    from admet.config import ModelConfig

    overrides = {k: v for k, v in overrides.items() if v is not None}
    if config is not None:
        return ModelConfig.from_json(config, **overrides)
    return ModelConfig.cli_default(**overrides)


def _write_json(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")


# ----------------------------------------------------------------------------- train
@app.command("train")
def train_cmd(
    out: Path = typer.Option(..., "--out", help="Model bundle folder to write."),
    data: Path | None = typer.Option(None, "--data", help="Wide CSV (SMILES + endpoint columns, "
                                     "optional split) or long table; default: the embedded catalog."),
    endpoints: str | None = typer.Option(None, "--endpoints", help="Comma-separated endpoints (default: all)."),
    model: str | None = typer.Option(None, "--model", help="mtnn | lgbm | dc | blend (mtnn + LightGBM, averaged) (default: admet.config.CLI_DEFAULTS, chosen by bench/default_choice.py)."),
    ensemble: int | None = typer.Option(None, "--ensemble", help="Ensemble members (default: admet.config.CLI_DEFAULTS)."),
    split: str = typer.Option("scaffold", "--split", help="scaffold | random (a split column wins)."),
    ignore_split_column: bool = typer.Option(False, "--ignore-split-column",
                                             help="Re-split even when the table has a split column."),
    seed: int | None = typer.Option(None, "--seed", help="Base seed (default 0)."),
    task_types: str | None = typer.Option(None, "--task-types", help="E1=regression,E2=classification"),
    config: Path | None = typer.Option(None, "--config", help="Hyperparameter JSON (admet.config.ModelConfig)."),
    epochs: int | None = typer.Option(None, "--epochs", help="Override the maximum epochs."),
    featurizer: str | None = typer.Option(None, "--featurizer", help="Override the featurizer spec."),
    n_jobs: int | None = typer.Option(None, "--n-jobs", help="Featurization processes (default: all cores)."),
) -> None:
    """Train an ensemble, calibrate it and write a model bundle + metrics.json."""
    _check_training_inputs(data, config)
    from admet.fit import train_bundle

    cfg = _model_config(config, model=model, ensemble=ensemble, seed=seed, epochs=epochs,
                        featurizer=featurizer)
    td, source = _load_task_data(data, _endpoints(endpoints), _parse_task_types(task_types))
    console.print(f"training [bold]{cfg.model}[/] x{cfg.ensemble} on {len(td)} molecules, "
                  f"{len(td.tasks)} endpoint(s) from {source}")
    with _training_progress(cfg, len(td.tasks)) as update:
        bundle = train_bundle(td, cfg, split_method=split, progress=update, n_jobs=n_jobs,
                              ignore_table_split=ignore_split_column)
    bundle.save(out)
    _write_json(out / "train_run.json", {"command": "fedadmet admet train", "data": source,
                                         "endpoints": bundle.task_names, "split": split,
                                         "ignore_split_column": ignore_split_column,
                                         "config": cfg.to_json_dict()})
    _print_metrics(bundle.metrics, f"held-out metrics ({bundle.info.get('split_method')})")
    console.print(f"bundle written to [bold]{out}[/] (model_card.md, metrics.json)")


def _print_metrics(metrics: dict, title: str) -> None:
    test = metrics.get("test", {})
    if not test:
        console.print("[yellow]no test fold: no held-out metrics[/]")
        return
    table = Table(title=title)
    for col in ("endpoint", "n", "MAE", "Spearman", "Pearson", "R2", "AUROC", "AUPRC", "90% cov."):
        table.add_column(col, justify="right" if col != "endpoint" else "left")
    cov = metrics.get("coverage", {})

    def f(v):
        return "" if v is None or v != v else f"{v:.3f}"

    for name, m in test.items():
        table.add_row(name, str(m.get("n", "")), f(m.get("mae")), f(m.get("spearman")), f(m.get("pearson")),
                      f(m.get("r2")), f(m.get("auroc")), f(m.get("auprc")),
                      f(cov.get(name, {}).get("test_coverage")))
    console.print(table)


# ----------------------------------------------------------------------------- evaluate
@app.command("evaluate")
def evaluate_cmd(
    out: Path = typer.Option(..., "--out", help="Folder for evaluation.md / evaluation.json."),
    data: Path | None = typer.Option(None, "--data", help="Table as for train; default: embedded catalog."),
    endpoints: str | None = typer.Option(None, "--endpoints"),
    seeds: int = typer.Option(5, "--seeds", help="Number of seeds (splits) to average."),
    model: str | None = typer.Option(None, "--model", help="mtnn | lgbm | dc | blend"),
    ensemble: int = typer.Option(1, "--ensemble", help="Members per seed (default 1, as TDC)."),
    split: str = typer.Option("scaffold", "--split", help="scaffold | random (a split column wins)."),
    ignore_split_column: bool = typer.Option(False, "--ignore-split-column",
                                             help="Re-split per seed even when the table has a split column."),
    seed: int | None = typer.Option(None, "--seed"),
    task_types: str | None = typer.Option(None, "--task-types"),
    config: Path | None = typer.Option(None, "--config"),
    epochs: int | None = typer.Option(None, "--epochs"),
    featurizer: str | None = typer.Option(None, "--featurizer"),
    n_jobs: int | None = typer.Option(None, "--n-jobs"),
) -> None:
    """TDC-style evaluation: scaffold split x seeds, metrics mean +/- std (Markdown + JSON)."""
    _check_training_inputs(data, config)
    from admet.evaluate import evaluate_tdc

    if seeds < 1:
        raise InputError("--seeds must be >= 1")
    cfg = _model_config(config, model=model, ensemble=ensemble, seed=seed, epochs=epochs,
                        featurizer=featurizer)
    td, source = _load_task_data(data, _endpoints(endpoints), _parse_task_types(task_types))
    with _steps("seeds", seeds) as update:
        result = evaluate_tdc(td, cfg, seeds=seeds, split_method=split, n_jobs=n_jobs, progress=update,
                              ignore_table_split=ignore_split_column)
    files = result.write(out)
    _write_json(out / "config.json", {"command": "fedadmet admet evaluate", "data": source,
                                      "seeds": seeds, "split": split,
                                      "ignore_split_column": ignore_split_column, "config": cfg.to_json_dict()})
    console.print(result.to_markdown())
    console.print(f"written: {files['markdown']}, {files['json']}")


# ----------------------------------------------------------------------------- predict
@app.command("predict")
def predict_cmd(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="Library: CSV/TSV/SMILES/SDF/Parquet (.gz ok)."),
    model_dir: Path | None = typer.Option(None, "--model", "-m", help="Model bundle folder (default: the "
                                          "shipped base model, models/fedadmet-base-<version>; admet.shipped)."),
    out: Path = typer.Option(..., "--out", help="Output .csv, .csv.gz or .parquet."),
    chunk_size: int = typer.Option(5000, "--chunk-size", help="Molecules per chunk (memory bound)."),
    n_jobs: int | None = typer.Option(None, "--n-jobs", help="Worker processes (default: all cores)."),
    smiles_col: str | None = typer.Option(None, "--smiles-col", help="SMILES column (default: detected)."),
) -> None:
    """Predict every molecule (streamed in chunks, resumable): one output row per input row."""
    from admet.shipped import resolve_model_dir

    model_dir, shipped = resolve_model_dir(model_dir)  # torch-free: manifest + checksums of the shipped model
    checks.model_bundle(model_dir, "shipped base model" if shipped else "--model")
    source = checks.molecule_library(input_path, "INPUT", smiles_col)  # inspected once, passed down
    checks.at_least(chunk_size, 1, "--chunk-size")
    from admet.bundle import load_bundle
    from admet.predict import output_format, predict_file

    output_format(out)
    bundle = load_bundle(model_dir)
    with Progress(SpinnerColumn(), TextColumn("[bold]predicting"), TextColumn("{task.completed:,} molecules"),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=err_console,
                  transient=True) as bar:
        task = bar.add_task("predict", total=None, rate="")

        def update(done: int, seconds: float) -> None:
            bar.update(task, completed=done, rate=f"{done / seconds:,.0f} molecules/s" if seconds else "")

        summary = predict_file(model_dir, source, out, chunk_size=chunk_size, n_jobs=n_jobs,
                               smiles_col=smiles_col, progress=update, bundle=bundle)
    _write_json(out.with_name(out.name + ".run.json"),
                {"command": "fedadmet admet predict", "model": str(model_dir), "shipped_model": shipped,
                 "input": str(input_path),
                 "chunk_size": chunk_size, "n_jobs": n_jobs, "smiles_col": smiles_col,
                 "summary": summary.to_dict()})
    resumed = f", {summary.n_chunks_resumed} chunk(s) resumed" if summary.n_chunks_resumed else ""
    console.print(f"{summary.n_rows:,} rows: {summary.n_ok:,} ok, {summary.n_rejected:,} rejected "
                  f"({summary.molecules_per_second:,.0f} molecules/s{resumed}) -> [bold]{out}[/]")


# ----------------------------------------------------------------------------- recalibrate
@app.command("recalibrate")
def recalibrate_cmd(
    model_dir: Path = typer.Argument(..., metavar="BUNDLE", help="Model bundle folder."),
    data: Path | None = typer.Option(None, "--data", help="The training table (default: what train_run.json "
                                     "recorded, e.g. the embedded catalog)."),
    out: Path | None = typer.Option(None, "--out", help="Write the recalibrated bundle here (default: in place)."),
    split_manifest: Path | None = typer.Option(None, "--split-manifest", help="Fold of each training molecule "
                                               "(split.npz format) for a bundle that has none."),
    n_jobs: int | None = typer.Option(None, "--n-jobs", help="Featurization processes (default: all cores)."),
    borrow_test: float = typer.Option(0.0, "--borrow-test", help="For endpoints with < 100 calibration labels, "
                                      "move up to this share of their test molecules (scaffold groups) into "
                                      "calibration; test metrics then use the rest (default 0: folds unchanged)."),
) -> None:
    """Refit conformal intervals, probability calibration and applicability domain of an existing bundle
    on its own calibration rows (found again from the bundle's stored split)."""
    checks.model_bundle(model_dir, "BUNDLE")
    if data is not None:
        checks.measurement_table(data, "--data")
    if split_manifest is not None:
        checks.readable_file(split_manifest, "--split-manifest")
    from admet.recalibrate import recalibrate_bundle

    with Progress(SpinnerColumn(), TextColumn("[bold]recalibrating"), TimeElapsedColumn(), console=err_console,
                  transient=True) as bar:
        bar.add_task("recalibrate", total=None)
        report = recalibrate_bundle(model_dir, out=out, data=data, manifest_path=split_manifest, n_jobs=n_jobs,
                                    borrow_test=borrow_test)
    target = Path(report["out"])
    _write_json(target / "recalibrate_run.json", {"command": "fedadmet admet recalibrate", "bundle": str(model_dir),
                                                  "data": str(data) if data else None, "report": report})
    if report["borrowed_from_test"]["molecules"]:
        console.print(f"[yellow]{report['borrowed_from_test']['molecules']} test molecules moved into calibration "
                      f"(--borrow-test {borrow_test}); test metrics use the rest[/]")
    few = sorted(k for k, n in report["calibration_label_counts"].items() if n < 100)
    console.print(f"calibration rows: {report['split']} ({'exact' if report['exact'] else 'NOT exact'}); "
                  f"folds {report['folds']}")
    if few:
        console.print(f"[yellow]fewer than 100 calibration labels: {', '.join(few)}[/]")
    s = report.get("summary")
    if s:
        console.print(f"test: 90% coverage in 88-92% on {s['coverage_in_target']}/{s['regression_endpoints']} "
                      f"regression endpoints; Spearman(width, |error|) > 0.2 on "
                      f"{s['spearman_width_error_above_0.2']}/{s['spearman_width_error_n']}")
    console.print(f"recalibrated bundle written to [bold]{target}[/] ({report['seconds']} s)")


# ----------------------------------------------------------------------------- pack
@app.command("pack")
def pack_cmd(
    bundle_dir: Path = typer.Argument(..., metavar="BUNDLE", help="A bundle written by `fedadmet admet train` "
                                      "on the embedded catalog."),
    out: Path = typer.Option(..., "--out", help="The shipped folder to write (e.g. models/fedadmet-base-1.1)."),
    split_manifest: Path | None = typer.Option(None, "--split-manifest", help="The training run's folds "
                                               "(split.npz format) for a bundle saved without split.npz."),
) -> None:
    """Turn a trained bundle into the shipped base model: gzipped boosters (lossless, checked),
    the training split, SHIPPED.json manifest and MODEL_CARD.md (admet.shipped.pack_bundle)."""
    checks.model_bundle(bundle_dir, "BUNDLE")
    if out.exists():
        raise InputError(f"--out {out} exists; remove it first (the shipped folder is written whole)")
    if split_manifest is not None and not split_manifest.is_file():
        raise InputError(f"--split-manifest {split_manifest}: file not found")
    from admet.shipped import pack_bundle

    with console.status("packing: checking predictions of the packed bundle..."):
        result = pack_bundle(bundle_dir, out, split_manifest=split_manifest)
    m = result.manifest
    console.print(f"shipped model {m['name']} {m['version']}: {m['model']}, {m['endpoints']} endpoints, "
                  f"{m['size_bytes'] / 1e6:.1f} MB -> [bold]{out}[/] (SHIPPED.json, MODEL_CARD.md)")
