"""Where a partner node is and what it holds: the ClientApp's side of the run config and node config.

Read after ``task.py``. A ClientApp learns everything from Flower's ``Context``:
- ``context.run_config``: the run's ``FederatedConfig`` (one schema, ``federation.config``);
- ``context.node_config``: on the Deployment Engine a SuperNode names its own ``data-path`` (a
  partner folder or its ``data.csv``), optional ``partner-id``, ``work-dir`` (node-local state:
  private heads file, the partner's bundle), ``cache-dir``, ``audit-dir`` and how it prepares its
  table (``catalog``, ``endpoint-map``, ``fold-secret-file``: ``fedadmet node start`` sets them). Paths in the run
  config (which are the operator's) are then ignored. In simulation Flower gives ``partition-id``,
  which picks ``partner_XX`` under the run config's ``partners-dir``, and the node's folders are
  ``<out-dir>/nodes/<partner>``, ``<cache-dir>`` and ``<out-dir>/audit``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flwr.app import ConfigRecord, Context, Message

from federation.config import FederatedConfig
from pipelines.errors import InputError
from pipelines.node_settings import NodeDataSettings

if TYPE_CHECKING:
    from admet.train import TrainConfig
    from federation import task

# torch, pandas, RDKit and the model code are imported where a handler needs them: on the Deployment
# Engine every message starts a fresh flwr-clientapp process, and the SecAgg+ key / share / unmask
# stages and the audit need none of them (docs/FEDERATION.md, Transport).

log = logging.getLogger(__name__)

HEADS_STATE = "private-heads"
SETUP_STATE = "fed-setup"
TORCH_THREADS = 1


@dataclass(frozen=True, slots=True)
class Node:
    """One partner node: who it is and its node-local folders."""

    partner: str
    data_path: Path
    work_dir: Path
    """Node-local state: private heads, the partner's bundle, cached arrays."""
    cache_dir: Path
    """Feature cache."""
    audit_dir: Path | None
    """Where a description of every reply is appended (``None``: no audit log)."""
    config: FederatedConfig
    data_settings: NodeDataSettings | None = None
    """How this node prepares its table (consortium catalog, mapping file, fold secret); None: a
    simulated partner (the partition's ``catalog.json``, the public simulation fold key)."""
    private_heads_only: bool = False
    """``node start --private-heads-only``: the partner's heads never leave it; a message of a
    shared-heads run is refused (an audited error reply)."""


@functools.lru_cache(maxsize=8)
def _parse(items: tuple) -> FederatedConfig:
    return FederatedConfig.from_run_config(dict(items))


def run_config_of(context: Context) -> FederatedConfig:
    """The run's config, parsed once per distinct run config."""
    return _parse(tuple(sorted(context.run_config.items())))


def resolve_node(context: Context) -> Node:
    """Which partner this node is, where its data and its node-local folders are."""
    cfg = run_config_of(context)
    nc = context.node_config
    if "data-path" in nc:  # a SuperNode on the Deployment Engine
        data_path = Path(str(nc["data-path"]))
        folder = data_path if data_path.is_dir() else data_path.parent
        partner = str(nc.get("partner-id", folder.name))
        work = Path(str(nc.get("work-dir", folder / ".fedadmet_node")))
        cache = Path(str(nc.get("cache-dir", work / "feature_cache")))
        audit = Path(str(nc["audit-dir"])) if nc.get("audit-dir") else None
        settings = NodeDataSettings(
            catalog_path=Path(str(nc["catalog"])) if nc.get("catalog") else None,
            endpoint_map_path=Path(str(nc["endpoint-map"])) if nc.get("endpoint-map") else None,
            fold_secret_path=Path(str(nc["fold-secret-file"])) if nc.get("fold-secret-file") else None,
        )
        only_private = bool(int(nc.get("private-heads-only", 0) or 0))
        return Node(partner, data_path, work, cache, audit, cfg, settings, only_private)
    if cfg.partners_dir is None:
        raise InputError("no partner data: set node config data-path (or partners-dir in the run config)")
    from federation import task

    folders = sorted(p for p in cfg.partners_dir.iterdir() if (p / task.DATA_FILE).exists())
    index = int(nc["partition-id"])
    if index >= len(folders):
        raise InputError(f"partition {index} has no partner folder under {cfg.partners_dir}")
    partner = folders[index].name
    audit = Path(cfg.out_dir) / "audit" if cfg.audit else None
    return Node(partner, folders[index], Path(cfg.out_dir) / "nodes" / partner, Path(cfg.cache_dir), audit, cfg)


def node_catalog_sha256(node: Node) -> str:
    """Content SHA-256 of the catalog this node prepares its table with (``task.prepare_partner``'s
    choice: the node's ``catalog`` file, else the embedded catalog; a simulated partner: its
    partition's ``catalog.json`` when there is one)."""
    from pipelines.catalog import EndpointCatalog
    from pipelines.partner_data import CONSORTIUM_CATALOG

    settings = node.data_settings
    if settings is None:
        folder = node.data_path if node.data_path.is_dir() else node.data_path.parent
        published = folder.parent / CONSORTIUM_CATALOG
        path = published if published.is_file() else None
    else:
        path = settings.catalog_path
    return (EndpointCatalog.read(path) if path else EndpointCatalog.embedded()).sha256


def check_catalog(node: Node, cfg: ConfigRecord) -> None:
    """Refuse (an error reply, audited; no training) when the run's catalog is not this node's."""
    expected = str(cfg.get("catalog-sha256", "") or "")
    if not expected:
        return
    mine = node_catalog_sha256(node)
    if mine != expected:
        raise InputError(f"{node.partner}: this node's endpoint catalog (sha256 {mine[:16]}) is not the one the "
                         f"run was published with (sha256 {expected[:16]}); not training. Start the node with "
                         "the operator's catalog.json (node start --catalog)")


def check_heads(node: Node, cfg: ConfigRecord) -> None:
    """Refuse (an error reply, audited; nothing prepared or sent) a shared-heads message on a node
    started with ``--private-heads-only``."""
    if node.private_heads_only and str(cfg.get("heads", "private")) == "shared":
        raise InputError(f"{node.partner}: this node keeps its heads private (node start --private-heads-only) "
                         "and the run uses shared heads; not taking part. The operator can run with "
                         "--heads private")


def load_data(node: Node, cfg: ConfigRecord) -> task.PartnerData:
    """The partner's featurized data (cached in its work folder), once the run's catalog and head mode
    are checked."""
    check_catalog(node, cfg)
    check_heads(node, cfg)
    import torch

    from federation import task

    torch.set_num_threads(TORCH_THREADS)
    return task.load_partner(node.data_path, node.partner, str(cfg["featurizer"]), node.cache_dir,
                             node.work_dir, seed=int(cfg["seed"]), settings=node.data_settings)


def consortium_model(msg: Message, context: Context, cfg: ConfigRecord, node: Node):
    """The consortium model as this partner sees it: global arrays from the message + own heads."""
    from federation import modelio, task

    scaling = task.ConsortiumScaling.from_config(cfg)
    model = task.build_model(scaling.n_features, scaling.tasks, tuple(int(h) for h in cfg["hidden"]),
                             float(cfg["dropout"]), int(cfg["seed"]))
    arrays = next(iter(msg.content.array_records.values()))
    modelio.load_record(model, arrays)
    if str(cfg["heads"]) != "shared":
        load_private_heads(model, context, node, cfg)
    return model, scaling


def load_private_heads(model, context: Context, node: Node, cfg: ConfigRecord) -> None:
    """This run's private heads: from the node state, else from the node's heads file (same run token).

    Only heads of the model's current task list are taken: a resumed run whose partner set changed
    (a partner dropped out) has a different union of endpoints, so a saved head may have no task
    any more (left out) and a task may have no saved head yet (it keeps its fresh initialisation)."""
    from federation import modelio

    token = str(cfg.get("run-token", ""))

    def kept(server_round: int):  # 0: the newest
        key = f"{HEADS_STATE}@{server_round}" if server_round else HEADS_STATE
        if key in context.state:
            return context.state[key]
        return modelio.load_heads(node.work_dir, token, server_round=server_round or None)

    wanted = int(cfg.get("heads-round", 0) or 0)  # the report of a run whose model is an earlier round's
    heads = kept(wanted)
    if heads is None and wanted:
        log.warning("%s: no private heads kept for round %d; using the newest", node.partner, wanted)
        heads = kept(0)
    if heads is None:
        return
    saved = {k: a.numpy() for k, a in heads.items()}
    current = dict(zip(modelio.head_keys(model), model.head_arrays()))
    dropped = sorted(set(saved) - set(current))
    if dropped:
        log.info("%s: %d saved head array(s) have no task in this run's task list: %s", node.partner,
                 len(dropped), dropped[:4])
    modelio.load_arrays(model, {k: saved[k] if k in saved and saved[k].shape == v.shape else v
                                for k, v in current.items()})


def keep_private_heads(model, context: Context, node: Node, cfg: ConfigRecord) -> None:
    from federation import modelio

    heads = modelio.heads_record(model)
    server_round = int(cfg.get("global-round", 0) or 0)
    context.state[HEADS_STATE] = heads
    if server_round:
        context.state[f"{HEADS_STATE}@{server_round}"] = heads
    modelio.save_heads(node.work_dir, heads, str(cfg.get("run-token", "")), server_round=server_round or None)


def train_config(cfg: ConfigRecord, partner: str) -> TrainConfig:
    """Local training settings of one round (seed differs per round and partner)."""
    from admet.train import TrainConfig

    seed = int(cfg["seed"]) * 7919 + int(cfg.get("global-round", 0)) * 104729 + sum(map(ord, partner))
    return TrainConfig(epochs=max(1, int(cfg["local-epochs"])), lr=float(cfg["lr"]),
                       batch_size=int(cfg["batch-size"]), weight_decay=float(cfg["weight-decay"]),
                       patience=0, seed=seed % (2**31), proximal_mu=float(cfg.get("proximal-mu", 0.0)))
