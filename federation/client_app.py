"""The partner's ClientApp (Flower Message API): moves arrays and metrics in and out of messages.

Where the partner's data is:
- deployment (a SuperNode): node config ``data-path`` (a partner folder or its ``data.csv``),
  optional ``partner-id`` and ``work-dir`` (node-local state: private heads file, feature cache,
  the partner's own model bundle);
- simulation: ``partition-id`` picks ``partner_XX`` under the partners folder given to
  ``make_client_app`` (or ``partners-dir`` in the run config, for ``flwr run .``).

Messages: ``query`` with stage ``stats`` (summed moments for the federated scaling) or ``report``
(the partner scores global trunk + own heads on its own test rows and writes its bundle);
``train`` (local epochs, replies with the trunk, or the whole model in shared-heads mode);
``evaluate`` (validation loss). Private heads stay in the node's state between rounds and in a
file under the node's work folder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod

from admet.train import TrainConfig
from federation import modelio, task
from federation.mods import audit_mod, sign_flip_mod
from federation.strategy import NUM_EXAMPLES, TASK_COUNT_PREFIX
from pipelines.errors import InputError

log = logging.getLogger(__name__)

HEADS_STATE = "private-heads"
CLIPPING_NORM_KEY = "clipping_norm"


@dataclass(slots=True)
class NodeSettings:
    """Simulation-side defaults a ClientApp falls back on when the node config says nothing."""

    partners_dir: Path | None = None
    work_root: Path | None = None
    cache_dir: Path | None = None
    audit_dir: Path | None = None
    poison_partners: tuple[str, ...] = ()
    poison_scale: float = 5.0
    torch_threads: int = 1


@dataclass(slots=True)
class Node:
    partner: str
    data_path: Path
    work_dir: Path
    cache_dir: Path


def resolve_node(context: Context, settings: NodeSettings) -> Node:
    """Which partner this node is, where its data and its node-local folder are."""
    nc = context.node_config
    if "data-path" in nc:
        data_path = Path(str(nc["data-path"]))
        folder = data_path if data_path.is_dir() else data_path.parent
        partner = str(nc.get("partner-id", folder.name))
        work = Path(str(nc.get("work-dir", folder / ".fedadmet_node")))
    else:
        root = settings.partners_dir or context.run_config.get("partners-dir")
        if not root:
            raise InputError("no partner data: set node config data-path (or partners-dir in simulation)")
        folders = sorted(p for p in Path(str(root)).iterdir() if (p / task.DATA_FILE).exists())
        index = int(nc["partition-id"])
        if index >= len(folders):
            raise InputError(f"partition {index} has no partner folder under {root}")
        data_path = folders[index]
        partner = data_path.name
        work_root = settings.work_root or Path(str(context.run_config.get("work-root", Path(str(root)) / "_nodes")))
        work = Path(work_root) / partner
    cache = Path(str(nc["cache-dir"])) if "cache-dir" in nc else (settings.cache_dir or work / "feature_cache")
    return Node(partner, data_path, work, Path(cache))


def make_client_app(settings: NodeSettings | None = None) -> ClientApp:
    """A ClientApp bound to ``settings`` (simulation); ``app`` below uses the defaults."""
    settings = settings or NodeSettings()
    app = ClientApp(mods=[audit_mod(settings.audit_dir, lambda ctx: resolve_node(ctx, settings).partner)])
    train_mods = [_dp_clip_when_asked]
    if settings.poison_partners:
        train_mods.append(sign_flip_mod(set(settings.poison_partners), settings.poison_scale,
                                        lambda ctx: resolve_node(ctx, settings).partner))

    def load(context: Context, cfg: ConfigRecord) -> tuple[Node, task.PartnerData]:
        torch.set_num_threads(settings.torch_threads)
        node = resolve_node(context, settings)
        data = task.load_partner(node.data_path, node.partner, str(cfg["featurizer"]), node.cache_dir,
                                 node.work_dir, seed=int(cfg["seed"]))
        return node, data

    @app.query()
    def query(msg: Message, context: Context) -> Message:
        cfg = msg.content["config"]
        stage = str(cfg.get("stage", ""))
        node, data = load(context, cfg)
        if stage == "stats":
            moments = task.local_moments(data)
            content = RecordDict({
                "moments": modelio.moments_record(moments),
                "partner": ConfigRecord({"partner-id": node.partner, "task-names": data.task_names,
                                         "task-types": [t.task_type for t in data.tasks],
                                         "task-units": [t.unit for t in data.tasks]}),
                "metrics": MetricRecord({NUM_EXAMPLES: int(len(data.rows("train"))),
                                         "n-invalid": int(data.n_invalid)}),
            })
            return Message(content=content, reply_to=msg)
        if stage == "report":
            model, scaling = _model_for(msg, context, cfg, node)
            finetune = int(cfg.get("head-finetune-epochs", 0))
            if str(cfg["heads"]) != "shared" and finetune > 0:
                task.finetune_heads(model, data, scaling, _train_config(cfg, data.partner), finetune)
            metrics = modelio.report_metrics(model, data, scaling, node.work_dir, cfg)
            return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)
        raise InputError(f"unknown query stage {stage!r}")

    @app.train(mods=train_mods)
    def train(msg: Message, context: Context) -> Message:
        cfg = msg.content["config"]
        node, data = load(context, cfg)
        model, scaling = _model_for(msg, context, cfg, node)
        global_arrays = model.all_arrays() if float(cfg.get("proximal-mu", 0.0)) > 0 else None
        tcfg = _train_config(cfg, data.partner)
        loss = task.train_partner(model, data, scaling, tcfg, int(cfg["local-epochs"]), global_params=global_arrays)
        shared = str(cfg["heads"]) == "shared"
        if not shared:
            heads = modelio.heads_record(model)
            context.state[HEADS_STATE] = heads
            modelio.save_heads(node.work_dir, heads, str(cfg.get("run-token", "")))
        out = modelio.model_record(model, include_heads=shared)
        metrics = {NUM_EXAMPLES: int(len(data.rows("train"))), "train-loss": float(loss)}
        if shared:
            counts = np.sum(~np.isnan(data.Y[data.rows("train")]), axis=0)
            metrics.update({TASK_COUNT_PREFIX + n: int(c) for n, c in zip(data.task_names, counts)})
        return Message(content=RecordDict({"arrays": out, "metrics": MetricRecord(metrics)}), reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        cfg = msg.content["config"]
        node, data = load(context, cfg)
        model, scaling = _model_for(msg, context, cfg, node)
        loss = modelio.validation_loss(model, data, scaling)
        metrics = {NUM_EXAMPLES: int(len(data.rows("valid"))), "valid-loss": float(loss)}
        return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)

    return app


def _model_for(msg: Message, context: Context, cfg: ConfigRecord, node: Node):
    """The consortium model as this partner sees it: global arrays from the message + own heads."""
    scaling = task.ConsortiumScaling.from_config(cfg)
    model = task.build_model(scaling.n_features, scaling.tasks, tuple(int(h) for h in cfg["hidden"]),
                             float(cfg["dropout"]), int(cfg["seed"]))
    arrays = next(iter(msg.content.array_records.values()))
    modelio.load_record(model, arrays)
    if str(cfg["heads"]) != "shared":
        heads = (context.state[HEADS_STATE] if HEADS_STATE in context.state
                 else modelio.load_heads(node.work_dir, str(cfg.get("run-token", ""))))
        if heads is not None:
            modelio.load_record(model, heads)
    return model, scaling


def _train_config(cfg: ConfigRecord, partner: str) -> TrainConfig:
    seed = int(cfg["seed"]) * 7919 + int(cfg.get("global-round", 0)) * 104729 + sum(map(ord, partner))
    return TrainConfig(epochs=max(1, int(cfg["local-epochs"])), lr=float(cfg["lr"]),
                       batch_size=int(cfg["batch-size"]), weight_decay=float(cfg["weight-decay"]),
                       patience=0, seed=seed % (2**31), proximal_mu=float(cfg.get("proximal-mu", 0.0)))


def _dp_clip_when_asked(msg: Message, context: Context, call_next):
    """Flower's ``fixedclipping_mod`` when the server's DP wrapper sent a clipping norm."""
    cfg = msg.content.config_records.get("config")
    if cfg is not None and CLIPPING_NORM_KEY in cfg:
        return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)


#: For ``flwr run .`` and SuperNodes: settings come from the node config / run config.
app = make_client_app()
