"""Plain-Python entry point of a simulated federated run (the CLI and the Prefect flows wrap it).

``run_federated(FederatedConfig) -> FederatedResult``: partition (or reuse) the partners' data,
warm the feature cache, run Flower's Simulation Engine (Ray backend, one CPU per ClientApp),
train the local-only and pooled references, and write the report.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from federation import partners as partners_mod
from federation import report as report_mod
from federation import task
from federation.config import FederatedConfig
from federation.server_app import RESULT_FILE

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
    seconds: float = 0.0

    def partner_table(self):
        """Per-partner primary metric: columns partner, local, federated, pooled, n_train, n_test."""
        import pandas as pd

        cols = ("partner", "local", "federated", "pooled", "n_train", "n_test")
        return pd.DataFrame([{c: p.get(c) for c in cols} for p in self.report["partners"]], columns=list(cols))


def flower_environment(out_dir: Path) -> None:
    """Flower and Ray stay offline and keep their files in the run folder."""
    os.environ["FLWR_HOME"] = str(Path(out_dir) / "flwr_home")
    os.environ.setdefault("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", "1")
    os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    Path(os.environ["FLWR_HOME"]).mkdir(parents=True, exist_ok=True)


def load_all_partners(cfg: FederatedConfig, partners_dir: Path) -> list[task.PartnerData]:
    """Every partner's data through the same code the ClientApps run (fills the shared caches)."""
    from federation.client_app import NodeSettings  # noqa: F401  (same node-local layout)

    out = []
    for folder in partners_mod.partner_folders(partners_dir):
        out.append(task.load_partner(folder, folder.name, cfg.featurizer, cfg.cache_dir,
                                     node_work_dir(cfg, folder.name), seed=cfg.seed))
    return out


def node_work_dir(cfg: FederatedConfig, partner: str) -> Path:
    return Path(cfg.out_dir) / "nodes" / partner


def warm_feature_cache(cfg: FederatedConfig, partners_dir: Path) -> None:
    """Featurize every partner's molecules once with both cores, so ClientApps read the cache."""
    import pandas as pd

    smiles = []
    for folder in partners_mod.partner_folders(partners_dir):
        smiles.extend(task.read_partner_table(folder)["smiles"].astype(str).tolist())
    unique = list(pd.unique(pd.Series(smiles)))
    if unique:
        from pipelines.featurize import featurize_smiles

        featurize_smiles(unique, spec=cfg.featurizer, n_jobs=cfg.num_cpus, cache_dir=cfg.cache_dir)


def simulate(cfg: FederatedConfig, partners_dir: Path, progress=None) -> dict:
    """Run the Flower simulation; returns the server's outcome (``federation_result.json``)."""
    from flwr.simulation import run_simulation

    from federation.client_app import NodeSettings, make_client_app
    from federation.server_app import make_server_app

    n_nodes = len(partners_mod.partner_folders(partners_dir))
    settings = NodeSettings(partners_dir=partners_dir, work_root=Path(cfg.out_dir) / "nodes",
                            cache_dir=cfg.cache_dir,
                            audit_dir=Path(cfg.out_dir) / "audit" if cfg.extra.get("audit", True) else None,
                            poison_partners=cfg.poison_partners, poison_scale=cfg.poison_scale)
    if cfg.secagg:
        from federation.secagg import make_secagg_apps

        server_app, client_app = make_secagg_apps(cfg, settings, progress)
    else:
        server_app, client_app = make_server_app(cfg, progress), make_client_app(settings)
    result_path = Path(cfg.out_dir) / RESULT_FILE
    result_path.unlink(missing_ok=True)
    if cfg.engine == "inprocess":
        _simulate_inprocess(cfg, settings, n_nodes, progress)
    else:
        backend = {"init_args": {"num_cpus": cfg.num_cpus, "num_gpus": 0, "include_dashboard": False,
                                 "log_to_driver": False, "object_store_memory": 300 * 1024**2},
                   "client_resources": {"num_cpus": 1, "num_gpus": 0.0}}
        from federation.raystart import start_ray, stop_ray

        try:
            start_ray(cfg.num_cpus)
            run_simulation(server_app=server_app, client_app=client_app, num_supernodes=n_nodes,
                           backend_config=backend)
        finally:
            stop_ray()
    if not result_path.exists():
        raise RuntimeError(f"the simulation ended without a result ({result_path}); see the log above")
    return json.loads(result_path.read_text())


def _simulate_inprocess(cfg: FederatedConfig, settings, n_nodes: int, progress) -> None:
    """The same ServerApp / ClientApp logic over ``federation.local_grid.SequentialGrid``."""
    from federation.client_app import make_client_app
    from federation.local_grid import SequentialGrid

    log.warning("engine 'inprocess': Flower apps over a sequential in-process transport (no Ray)")
    if cfg.secagg:
        from federation.secagg import make_secagg_apps, run_secagg_server

        _, client_app = make_secagg_apps(cfg, settings)
        grid = SequentialGrid(client_app, n_nodes)
        outcome = run_secagg_server(grid, grid.server_context(), cfg, progress)
        (Path(cfg.out_dir) / RESULT_FILE).write_text(json.dumps(outcome, indent=2, default=float))
    else:
        from federation.server_app import run_server

        run_server(SequentialGrid(make_client_app(settings), n_nodes), cfg, progress)


def run_federated(config: FederatedConfig, progress=None) -> FederatedResult:
    """Partition, federate, compare with local-only and pooled, report (see module docstring).

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
    tell("federated rounds", 0, cfg.rounds)
    outcome = simulate(cfg, partners_dir, progress)
    local = pooled = None
    timing = {"federated_wall_seconds": outcome.get("server_seconds")}
    if cfg.baselines:
        from federation.baselines import run_baselines

        tell("local-only and pooled references", 0, 1)
        base = run_baselines(cfg, partners)
        local, pooled = base.local, base.pooled
        timing.update({"local_all_partners_seconds": base.local_seconds, "pooled_seconds": base.pooled_seconds})
    tell("report", 0, 1)
    rep = report_mod.build_report(outcome, local, pooled, timing)
    rep["engine"] = cfg.engine
    paths = report_mod.write_report(rep, out)
    bundle = out / "global_bundle" if (out / "global_bundle").exists() else None
    partner_bundles = {p.partner: node_work_dir(cfg, p.partner) / "bundle" for p in partners
                       if (node_work_dir(cfg, p.partner) / "bundle").exists()}
    return FederatedResult(out_dir=out, report=rep, report_paths=paths, bundle_dir=bundle,
                           partner_bundles=partner_bundles, seconds=time.perf_counter() - t0)
