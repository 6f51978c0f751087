"""Plain-Python entry point of a simulated federated run (the CLI and the Prefect flows wrap it).

``run_federated(FederatedConfig) -> FederatedResult``: partition (or reuse) the partners' data,
warm the feature cache, run Flower's Simulation Engine (Ray backend, one CPU per ClientApp),
train the best-solo and pooled references (``federation.baselines``), with ``federated_trees`` grow
federated xgboost per endpoint on the same partners and engine (``federation.trees``), blend each
partner's federated net with its private trees (and the federated trees: a fourth option) per endpoint
(``federation.blend``), package each partner's blend as a bundle in its
node folder (``federation.blend_bundle``), and write the report.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp

from federation import partners as partners_mod
from federation import report as report_mod
from federation import task
from federation.config import FederatedConfig
from federation.stages import RESULT_FILE, settle_heads
from pipelines import RUNTIME_DEFAULTS

log = logging.getLogger(__name__)


@dataclass(slots=True)
class FederatedResult:
    """What a run produced."""

    out_dir: Path
    report: dict
    report_paths: dict[str, Path] = field(default_factory=dict)
    bundle_dir: Path | None = None
    """The global model bundle (shared heads), else ``None``: partners hold their bundles."""
    partner_bundles: dict[str, Path] = field(default_factory=dict)
    """Each partner's own bundle (global trunk + its heads), in its node-local folder."""
    blend_bundles: dict[str, Path] = field(default_factory=dict)
    """Each partner's blended bundle (federated net + its private trees per endpoint,
    ``federation.blend_bundle``), in its node-local folder; only with references (``baselines``)."""
    seconds: float = 0.0

    def partner_table(self):
        """Per-partner primary metric: columns partner, local (= best solo), federated (the blend where it
        was computed, else the net), pooled, n_train, n_test, best_solo, federated_nn, federated_blend."""
        import pandas as pd

        cols = ("partner", "local", "federated", "pooled", "n_train", "n_test", "best_solo", "federated_nn",
                "federated_blend")
        return pd.DataFrame([{c: p.get(c) for c in cols} for p in self.report["partners"]], columns=list(cols))


def flower_environment(out_dir: Path) -> None:
    """Flower and Ray stay offline and keep their files in the run folder."""
    os.environ["FLWR_HOME"] = str(Path(out_dir) / "flwr_home")
    # Ray's workers inherit this process's environment: the runtime defaults (offline, quiet,
    # passive OpenMP threads) go in where unset, whether or not the caller ran configure()
    for key, value in RUNTIME_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    Path(os.environ["FLWR_HOME"]).mkdir(parents=True, exist_ok=True)


def load_all_partners(cfg: FederatedConfig, partners_dir: Path) -> list[task.PartnerData]:
    """Every partner's data through the same code the ClientApps run (fills the shared caches)."""
    out = []
    for folder in partners_mod.partner_folders(partners_dir):
        out.append(task.load_partner(folder, folder.name, cfg.featurizer, cfg.cache_dir,
                                     node_work_dir(cfg, folder.name), seed=cfg.seed))
    return out


def node_work_dir(cfg: FederatedConfig, partner: str) -> Path:
    """A simulated partner's node-local folder (the layout of ``federation.node.resolve_node``)."""
    return Path(cfg.out_dir) / "nodes" / partner


def warm_feature_cache(cfg: FederatedConfig, partners_dir: Path) -> None:
    """Featurize every partner's molecules once with both cores, so ClientApps read the cache; with the
    approved-drug context (``approved_context`` and the final report) the approved drugs too (kept for
    this process as well, where the blended bundles are written)."""
    import pandas as pd

    smiles = []
    for folder in partners_mod.partner_folders(partners_dir):
        smiles.extend(task.read_partner_table(folder)["smiles"].astype(str).tolist())
    from pipelines.featurize import featurize_smiles

    unique = list(pd.unique(pd.Series(smiles)))
    if unique:
        featurize_smiles(unique, spec=cfg.featurizer, n_jobs=cfg.num_cpus, cache_dir=cfg.cache_dir)
    if cfg.approved_context and cfg.final_report:
        from admet.approved import approved_features, standardized_approved_smiles
        from admet.features import FeatureSet

        if cfg.engine == "ray":  # ClientApps in Ray workers read the drugs' features from the run's cache
            featurize_smiles(list(standardized_approved_smiles()), spec=cfg.featurizer, n_jobs=cfg.num_cpus,
                             cache_dir=cfg.cache_dir)
        approved_features(FeatureSet(spec=cfg.featurizer, n_jobs=cfg.num_cpus, cache_dir=cfg.cache_dir))


def run_config_for(cfg: FederatedConfig, partners_dir: Path) -> dict:
    """The run config both apps read: the run's config, with the partition folder actually used."""
    return {**cfg.to_run_config(), "partners-dir": str(partners_dir)}


def run_apps(cfg: FederatedConfig, server_app, client_app, n_nodes: int, run_config: dict, grid=None) -> None:
    """Run a ServerApp / ClientApp pair on ``cfg.engine`` with ``n_nodes`` simulated nodes.

    ``ray``: Flower's Simulation Engine (its Python API takes no run config, so ``with_run_config``
    puts it into each app's ``Context``, as ``flwr run`` would). ``inprocess``: the fallback transport
    (``federation.inprocess``), where ``grid`` may be a ``SequentialGrid`` of the caller's (e.g. one
    that records messages)."""
    if cfg.engine == "inprocess":
        from federation.inprocess import run_inprocess

        run_inprocess(server_app, client_app, n_nodes, run_config, grid=grid)
        return
    from flwr.simulation import run_simulation

    from federation.raystart import start_ray, stop_ray

    backend = {"init_args": {"num_cpus": cfg.num_cpus, "num_gpus": 0, "include_dashboard": False,
                             "log_to_driver": False, "object_store_memory": 300 * 1024**2},
               "client_resources": {"num_cpus": 1, "num_gpus": 0.0}}
    server, client = with_run_config(server_app, client_app, run_config)
    try:
        start_ray(cfg.num_cpus)
        run_simulation(server_app=server, client_app=client, num_supernodes=n_nodes, backend_config=backend)
    finally:
        stop_ray()


def simulate(cfg: FederatedConfig, partners_dir: Path, progress=None) -> dict:
    """Run the project's one ServerApp / ClientApp; returns the server's outcome (``federation_result.json``).

    ``engine="ray"``: Flower's Simulation Engine. Its Python API (``run_simulation``) takes no run
    config, so ``with_run_config`` puts it into each app's ``Context``, as ``flwr run`` would.
    ``engine="inprocess"``: the fallback transport (``federation.inprocess``), same apps.
    """
    from federation.client_app import app as client_app
    from federation.server_app import make_server_app

    n_nodes = len(partners_mod.partner_folders(partners_dir))
    result_path = Path(cfg.out_dir) / RESULT_FILE
    result_path.unlink(missing_ok=True)
    run_apps(cfg, make_server_app(progress), client_app, n_nodes, run_config_for(cfg, partners_dir))
    if not result_path.exists():
        raise RuntimeError(f"the simulation ended without a result ({result_path}); see the log above")
    return json.loads(result_path.read_text())


class _RunConfigClientApp(ClientApp):
    """The project's ClientApp, called with the run config in the node's ``Context``."""

    def __init__(self, inner: ClientApp, run_config: dict) -> None:
        super().__init__()
        self.inner, self.run_config = inner, dict(run_config)

    def __call__(self, message, context):
        # Flower's simulation checks that a ClientApp hands back its Context with the run config
        # unchanged, so the run config is put in for the call only.
        original = context.run_config
        context.run_config = dict(self.run_config)
        try:
            return self.inner(message, context)
        finally:
            context.run_config = original


def with_run_config(server_app: ServerApp, client_app: ClientApp, run_config: dict) -> tuple[ServerApp, ClientApp]:
    """The same two apps, each handed ``run_config`` in its ``Context`` (only for ``run_simulation``)."""
    server = ServerApp()

    @server.main()
    def main(grid, context) -> None:
        context.run_config = dict(run_config)
        server_app(grid, context)

    return server, _RunConfigClientApp(client_app, run_config)


def _federated_trees(cfg: FederatedConfig, partners_dir: Path, partners: list[task.PartnerData], progress=None):
    """``federation.trees.federated_trees`` on the run's partners and engine; returns (the result, the
    blend's ``extra``: partner -> {FED_TREES: fold -> (n_fold, T_own)})."""
    from federation import blend
    from federation.trees import TreeSettings, federated_trees

    trees = federated_trees(cfg, partners_dir, TreeSettings.from_config(cfg), progress)
    extra = {d.partner: {blend.FED_TREES: blend.federated_tree_option(trees.predictions.get(d.partner, {}), d)}
             for d in partners}
    return trees, extra


def federated_trees_summary(trees, blend_results: dict[str, dict], cfg: FederatedConfig) -> dict:
    """The report's ``federated_trees`` section: settings, per endpoint who trained / rounds / trees /
    bytes, the totals, and how many partner-endpoints the blend gave to the federated trees."""
    from dataclasses import asdict

    from federation.blend import FED_TREES
    from federation.trees import TreeSettings

    chosen = sum(c == FED_TREES for r in blend_results.values() for c in r["choice"].values())
    total = sum(len(r["choice"]) for r in blend_results.values())
    return {"settings": asdict(TreeSettings.from_config(cfg)), "seconds": trees.seconds, "bytes_down": trees.bytes_down, "bytes_up": trees.bytes_up,
            "endpoints": {name: {k: info.get(k) for k in ("task_type", "partners", "holders", "rounds_run",
                                                           "best_round", "n_trees")}
                          for name, info in trees.endpoints.items()},
            "blend_chose_federated_trees": chosen, "blend_partner_endpoints": total,
            "test_metric_federated_trees_only": {p: r["test_by_option"].get(FED_TREES, {}).get("metric")
                                                 for p, r in blend_results.items()}}


def federated_trees_markdown(section: dict) -> str:
    """The report.md section of :func:`federated_trees_summary`."""
    s = section["settings"]
    lines = ["", "## Federated trees (Flower's FedXgbBagging, a fourth blend option)", "",
             f"At most {s['rounds']} rounds per endpoint, patience {s['patience']}; {section['seconds']:.1f} s, "
             f"{section['bytes_down']} bytes down, {section['bytes_up']} bytes up (trees in the clear, "
             "docs/PRIVACY.md). The blend chose them for "
             f"{section['blend_chose_federated_trees']} of {section['blend_partner_endpoints']} partner-endpoints.",
             "", "| endpoint | type | partners trained | rounds run | best round | trees |", "|---|---|---|---|---|---|"]
    for name, e in sorted(section["endpoints"].items()):
        lines.append(f"| {name} | {e['task_type']} | {len(e['partners'] or [])} | {e['rounds_run']} | "
                     f"{e['best_round']} | {e['n_trees']} |")
    return "\n".join(lines) + "\n"


def run_federated(config: FederatedConfig, progress=None) -> FederatedResult:
    """Partition, federate, compare with best solo and pooled, blend, report (see module docstring).

    ``progress(stage, done, total)`` (optional) hears about stages and rounds (the CLI's bar).
    """
    t0 = time.perf_counter()
    tell = progress or (lambda stage, done, total: None)
    cfg = config
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg.write(out / "config.json")
    flower_environment(out)
    tell("partition", 0, 1)
    partners_dir = partners_mod.prepare_partners(cfg)
    tell("featurize", 0, 1)
    warm_feature_cache(cfg, partners_dir)
    torch.set_num_threads(1)
    partners = load_all_partners(cfg, partners_dir)
    # An endpoint with no public target scale: a default run falls back to private heads, shared heads
    # the operator asked for stop here with one clear error (before any round).
    settle_heads(cfg, task.union_tasks([p.tasks for p in partners]))
    cfg.write(out / "config.json")
    tell("federated rounds", 0, cfg.rounds)
    outcome = simulate(cfg, partners_dir, progress)
    local = pooled = blend = references = fed_trees = None
    blend_bundles: dict[str, Path] = {}
    timing = {"federated_wall_seconds": outcome.get("server_seconds")}
    if cfg.baselines:
        from federation.baselines import run_baselines, solo_config
        from federation.blend import federated_blend
        from federation.blend_bundle import write_simulated_bundles

        tell("best-solo and pooled references", 0, 1)
        base = run_baselines(cfg, partners, ensemble=cfg.solo_ensemble)
        local, pooled, references = base.local, base.pooled, base.recipe
        timing.update({"local_all_partners_seconds": base.local_seconds, "pooled_seconds": base.pooled_seconds,
                       "blend_trees_seconds": base.blend_trees_seconds, "blend_net_seconds": base.blend_net_seconds})
        extra = None
        if cfg.federated_trees:
            fed_trees, extra = _federated_trees(cfg, partners_dir, partners, progress)
            timing["federated_trees_seconds"] = fed_trees.seconds
        tell("federated blend (private trees)", 0, 1)
        t_blend = time.perf_counter()
        blend = federated_blend(partners, {p.partner: node_work_dir(cfg, p.partner) / "bundle" for p in partners},
                                {k: v.trees for k, v in base.solo.items()}, extra, fallback=cfg.blend_fallback,
                                nets={k: v.nets for k, v in base.solo.items() if v.nets} or None,
                                rule=cfg.blend_rule)
        timing["blend_seconds"] = time.perf_counter() - t_blend
        tell("blended bundles (node-local)", 0, 1)
        t_pack = time.perf_counter()
        blend_bundles = write_simulated_bundles(
            partners, blend, {k: v.private_trees for k, v in base.solo.items()},
            {p.partner: node_work_dir(cfg, p.partner) for p in partners}, solo_config(cfg, cfg.solo_ensemble),
            fed_trees, private_nets={k: v.private_net for k, v in base.solo.items() if v.private_net is not None})
        timing["blend_bundle_seconds"] = time.perf_counter() - t_pack
    tell("report", 0, 1)
    rep = report_mod.build_report(outcome, local, pooled, timing, blend=blend, references=references)
    rep["engine"] = cfg.engine
    if blend is not None:
        rep["blend_rule"] = cfg.blend_rule
    if fed_trees is not None:
        rep["federated_trees"] = federated_trees_summary(fed_trees, blend or {}, cfg)
    paths = report_mod.write_report(rep, out)
    if fed_trees is not None and paths.get("md"):
        with open(paths["md"], "a", encoding="utf-8") as fh:
            fh.write(federated_trees_markdown(rep["federated_trees"]))
    bundle = out / "global_bundle" if (out / "global_bundle").exists() else None
    partner_bundles = {p.partner: node_work_dir(cfg, p.partner) / "bundle" for p in partners
                       if (node_work_dir(cfg, p.partner) / "bundle").exists()}
    return FederatedResult(out_dir=out, report=rep, report_paths=paths, bundle_dir=bundle,
                           partner_bundles=partner_bundles, blend_bundles=blend_bundles,
                           seconds=time.perf_counter() - t0)
