"""The main job (``fedadmet demo``): embedded data -> 20 partners -> federated training -> screening -> report.

One parent Prefect flow ("fedadmet-demo") with the federated-training and screening flows as
subflows, so the dashboard shows the whole job as one tree. A stage is skipped only when its
input is absent (no partner data, no federated model); a failure of any stage fails the job,
except Ray not starting on a busy machine, which is reported as that stage's failure.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from prefect import flow

from flows import artifacts, run_names
from pipelines.errors import InputError

log = logging.getLogger(__name__)

STAGES = ("data", "federation", "screening", "lab", "clinical", "report")
#: The demo's ADMET panel: what the default desirability profile scores and the clinical PK link reads
#: (the embedded Biogen, TDC and HINT sets; 38,755 measurements). The 35 other embedded TDC endpoints
#: would multiply the data ~5x and break the 10-minute budget; ``--endpoints`` picks any set.
DEMO_ENDPOINTS = ("HLM_CLint", "RLM_CLint", "MDR1_ER", "solubility", "hPPB", "rPPB", "Bioavailability_Ma",
                  "BBB_Martins", "CYP2C19_Veith", "clearance_lt12", "toxcast_clean")


@dataclass(slots=True)
class DemoConfig:
    """Settings of the main job (defaults: what ``make demo`` runs, sized for 2 cores / 10 minutes)."""

    out_dir: Path = Path("runs/demo")
    n_partners: int = 20
    rounds: int = 3
    local_epochs: int = 1
    hidden: tuple[int, ...] = (256,)
    alpha: float = 0.5
    seed: int = 0
    endpoints: tuple[str, ...] | None = None
    """Embedded endpoints to train on (None: :data:`DEMO_ENDPOINTS`)."""
    library: Path | None = None
    """Screening library (default: the bundled 10k MOSES sample)."""
    top_n: int = 25
    baselines: bool = True
    solo_ensemble: int = 1
    """Members of the best-solo and pooled references: 1 here (``fedadmet admet train``'s default is 2),
    which keeps the 20 partners' references inside the demo's 10-minute budget."""
    pooled_reference: bool = False
    """The pooled reference is left out of the demo (140 s of its 10-minute budget); ``fedadmet federate``
    and ``bench/federation.py`` train it."""
    num_cpus: int = 2
    featurizer: str = "morgan_count"
    """Morgan counts keep the 27k-compound featurization inside the 10-minute budget on 2 cores;
    ``--featurizer morgan_count+rdkit2d`` gives the stronger (slower) project default."""
    lab_endpoint: str = "solubility"
    """What the experiment loop optimizes (embedded labels are its oracle)."""
    lab_trials: int = 4
    """Optuna trials tuning the acquisition settings."""
    lab_pool: int = 300
    """Measured compounds the loop's surrogate learns from (and the tuning campaigns run on)."""
    lab_candidates: int = 500
    """Best-ranked screened compounds the next batch is chosen from."""
    clinical_top: int = 3
    """Top screened candidates that get virtual trials."""
    clinical_designs: int = 12
    """Designs the trial-design study evaluates for the most promising candidate."""
    base_model: Path | None = None
    """The pretrained model the federated one is measured against for screening (None: the shipped
    base model, ``admet.shipped``); the better of the two on rows both held out screens
    (``flows.demo_model_choice``). Without one, the federated model screens."""

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        self.endpoints = tuple(self.endpoints) if self.endpoints else DEMO_ENDPOINTS
        if self.library is None:
            from pipelines.catalog import screening_library_path

            self.library = screening_library_path()
        self.library = Path(self.library)
        if self.n_partners < 2 or self.rounds < 1 or self.local_epochs < 1:
            raise InputError("the demo needs >= 2 partners, >= 1 round and >= 1 local epoch")

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass
class DemoResult:
    out_dir: Path
    stages: dict[str, dict] = field(default_factory=dict)
    """stage -> {"status": done/skipped, "seconds": s, ...details}"""
    manifest: pd.DataFrame | None = None
    partner_table: pd.DataFrame | None = None
    screening_summary: dict | None = None
    model_choice: dict | None = None
    """Which model screened and why (``flows.demo_model_choice``)."""
    lab_summary: dict | None = None
    clinical_summary: dict | None = None
    report: Path | None = None
    wall_seconds: float = 0.0


def run_demo(cfg: DemoConfig, on_stage: Callable[[str, str], None] | None = None) -> DemoResult:
    """Run the main job as one Prefect flow; ``on_stage(stage, status)`` reports progress."""
    notify = on_stage or (lambda stage, status: None)
    result = DemoResult(out_dir=cfg.out_dir)

    @flow(name="fedadmet-demo", description="Main job: embedded data -> partners -> federated training -> "
          "screening -> experiment loop -> clinical module -> report",
          flow_run_name=run_names.namer(lambda p: f"demo {p.get('n_partners')} partners, "
                                                  f"{run_names.label(p.get('library'))}, {p.get('featurizer')}"))
    def fedadmet_demo(out_dir: str, n_partners: int, rounds: int, library: str, featurizer: str,
                      lab_endpoint: str) -> dict:
        t0 = time.perf_counter()
        run_names.tag_run(run_names.standard_tags("fedadmet-demo", partners=f"embedded-{n_partners}",
                                                  library=run_names.label(library), model=featurizer))
        cfg.out_dir.mkdir(parents=True, exist_ok=True)
        (cfg.out_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        _stage(result, "data", notify, lambda: _data_stage(cfg, result))
        _after(result, "federation", "data", notify, lambda: _federation_stage(cfg, result), "no partner data")
        bundle = result.stages.get("federation", {}).get("bundle_dir")
        _after(result, "screening", "federation", notify, lambda: _screening_stage(cfg, result, Path(bundle)),
               "no federated model")
        _after(result, "lab", "screening", notify, lambda: _lab_stage(cfg, result), "no screened library")
        _after(result, "clinical", "screening", notify,
               lambda: _clinical_stage(cfg, result, Path(result.stages["screening"].get("model", bundle))),
               "no screened library")
        result.wall_seconds = time.perf_counter() - t0
        _stage(result, "report", notify, lambda: _report_stage(cfg, result))
        return {k: v["status"] for k, v in result.stages.items()}

    fedadmet_demo(str(cfg.out_dir), cfg.n_partners, cfg.rounds, str(cfg.library), cfg.featurizer,
                  cfg.lab_endpoint)
    return result


def _after(result: DemoResult, name: str, needs: str, notify, body: Callable[[], dict], reason: str) -> None:
    """Run stage ``name`` if stage ``needs`` is done, else record it as skipped with ``reason``."""
    if result.stages.get(needs, {}).get("status") == "done":
        _stage(result, name, notify, body)
    else:
        result.stages[name] = {"status": "skipped", "reason": reason}
        notify(name, "skipped")


def _stage(result: DemoResult, name: str, notify, body: Callable[[], dict]) -> None:
    notify(name, "start")
    t0 = time.perf_counter()
    try:
        details = body()
        status = "done"
    except RuntimeError as exc:
        if type(exc).__name__ != "RayStartError":
            raise
        # the machine could not start Flower's Ray backend: report it, keep the rest of the job
        log.error("demo stage %s failed: %s", name, exc)
        details, status = {"reason": str(exc)}, "failed"
    result.stages[name] = {"status": status, "seconds": round(time.perf_counter() - t0, 1), **details}
    notify(name, status)


def _data_stage(cfg: DemoConfig, result: DemoResult) -> dict:
    from flows.federated_flow import partition_task

    manifest = partition_task(cfg.out_dir / "partners", cfg.n_partners, cfg.alpha, cfg.seed, cfg.endpoints)
    result.manifest = manifest
    artifacts.publish_table("demo-partners", manifest, f"{cfg.n_partners} partners: partition manifest")
    return {"outputs": str(cfg.out_dir / "partners")}


def _federation_stage(cfg: DemoConfig, result: DemoResult) -> dict:
    from flows.federated_flow import federated_training_flow

    out = federated_training_flow(out_dir=str(cfg.out_dir), partners_dir=str(cfg.out_dir / "partners"),
                                  n_partners=cfg.n_partners, rounds=cfg.rounds, local_epochs=cfg.local_epochs,
                                  hidden=cfg.hidden, seed=cfg.seed, baselines=cfg.baselines,
                                  num_cpus=cfg.num_cpus, featurizer=cfg.featurizer,
                                  solo_ensemble=cfg.solo_ensemble, pooled_reference=cfg.pooled_reference)
    table_path = Path(out["partner_table"])
    if table_path.exists():
        result.partner_table = pd.read_csv(table_path)
    return {"outputs": str(cfg.out_dir / "federated"), "bundle_dir": out["bundle_dir"],
            "partner_table": str(table_path)}


def _screening_stage(cfg: DemoConfig, result: DemoResult, bundle: Path) -> dict:
    from flows.demo_model_choice import choose_screening_model
    from flows.screening import screening_flow

    chosen, choice = choose_screening_model(cfg.out_dir, bundle, cfg.base_model, cfg.endpoints)
    result.model_choice = choice
    artifacts.publish_markdown("demo-screening-model", _choice_markdown(choice), "Which model screens")
    summary = screening_flow(library=str(cfg.library), bundle_dir=str(chosen),
                             out_dir=str(cfg.out_dir / "screening"), top_n=cfg.top_n)
    result.screening_summary = summary
    return {"outputs": str(cfg.out_dir / "screening"), "ranked": str(cfg.out_dir / "screening" / "ranked.csv"),
            "model": str(chosen), "model_choice": choice["chosen"]}


def _choice_markdown(choice: dict) -> str:
    lines = ["## Screening model", "",
             f"**{choice['chosen']}** model screens (`{choice['screening_model']}`): {choice['reason']}. "
             "Rule: the federated model screens when its mean held-out score is at least the shipped base "
             "model's, on partner test rows whose molecules the shipped model's training run also held out "
             "(AUROC for classification, Spearman for regression; `screening_model.json`)."]
    if choice.get("table"):
        lines += ["", artifacts.frame_to_markdown(pd.DataFrame(choice["table"]))]
    return "\n".join(lines)


def _lab_stage(cfg: DemoConfig, result: DemoResult) -> dict:
    from flows.demo_stages import experiment_loop_flow

    summary = experiment_loop_flow(out_dir=str(cfg.out_dir / "lab"), ranked_csv=result.stages["screening"]["ranked"],
                                   endpoint=cfg.lab_endpoint, n_trials=cfg.lab_trials, pool_size=cfg.lab_pool,
                                   n_candidates=cfg.lab_candidates, featurizer=cfg.featurizer, seed=cfg.seed)
    result.lab_summary = summary
    return {"outputs": str(cfg.out_dir / "lab"), "proposed": summary["proposed"]}


def _clinical_stage(cfg: DemoConfig, result: DemoResult, bundle: Path) -> dict:
    from flows.demo_stages import clinical_flow

    summary = clinical_flow(out_dir=str(cfg.out_dir / "clinical"), ranked_csv=result.stages["screening"]["ranked"],
                            bundle_dir=str(bundle), top_k=cfg.clinical_top, designs=cfg.clinical_designs,
                            seed=cfg.seed)
    result.clinical_summary = summary
    return {"outputs": str(cfg.out_dir / "clinical")}


def _report_stage(cfg: DemoConfig, result: DemoResult) -> dict:
    lines = ["# fedadmet demo report", "",
             f"Wall time (before this report): {result.wall_seconds:.0f} s", "", "## Stages", "",
             artifacts.frame_to_markdown(pd.DataFrame(
                 [{"stage": k, "status": v["status"], "seconds": v.get("seconds"), "outputs": v.get("outputs", ""),
                   "note": v.get("reason", "")} for k, v in result.stages.items()]))]
    if result.manifest is not None:
        lines += ["", "## Partners", "", artifacts.frame_to_markdown(result.manifest)]
    if result.partner_table is not None:
        lines += ["", "## Federated training (per partner)", "", artifacts.frame_to_markdown(result.partner_table),
                  "", "![partners](federated/plots/partners.png)"]
    if result.model_choice is not None:
        lines += ["", _choice_markdown(result.model_choice)]
    if result.screening_summary is not None:
        s = result.screening_summary
        lines += ["", "## Screening", "",
                  f"{s['n_input']} molecules in, {s['n_ranked']} ranked, {s['n_rejected']} rejected; "
                  f"best score {s.get('best_score')}.", "",
                  "Ranked table: `screening/ranked.csv`; full report: `screening/report.md`.", "",
                  "![scores](screening/plots/score_distribution.png)"]
    if result.lab_summary is not None:
        s = result.lab_summary
        lines += ["", "## Experiment loop", "",
                  f"Acquisition ({s['acquisition']}, batch {s['batch_size']}) tuned by Optuna on {s['pool_measured']} "
                  f"measured compounds ({s['endpoint']}); next batch of {s['proposed']} proposed from "
                  f"{s['candidates']} screened candidates: `lab/proposed_batch.csv`. Study: `lab/optuna.db`."]
    if result.clinical_summary is not None:
        s = result.clinical_summary
        lines += ["", "## Clinical module", "",
                  f"Best virtual-trial P(success) {artifacts.significant(s['best_p_success'])}; "
                  "per candidate: `clinical/virtual_trials.csv`; suggested design: `clinical/suggested_design.json`.",
                  "", "```json", json.dumps(s["suggested_design"], indent=2, default=float), "```"]
    report = cfg.out_dir / "report.md"
    report.write_text("\n".join(lines) + "\n")
    result.report = report
    artifacts.publish_markdown("demo-report", "\n".join(lines), "fedadmet demo report")
    return {"outputs": str(report)}
