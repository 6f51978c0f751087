"""The partner's one ClientApp (``app``, Flower Message API): moves arrays and metrics in and out of messages.

Read after ``task.py`` (what a partner does with its data) and ``node.py`` (where the node's data
and folders are, from ``context.run_config`` / ``context.node_config``); then ``server_app.py``.

One handler per message type, routed by Flower:
- ``query.stats``: the partner's endpoint list and training-row count (summed feature / label moments
  only under the older ``--scaling moments``); ``query.setup`` (SecAgg+ mode): the round settings kept in the node's state;
  ``query.report``: the partner scores global trunk + own heads on its own test rows and writes its
  bundle (``federation.stages.Stage`` names the stages);
- ``train``: local epochs; replies with the trunk (the whole model in shared-heads mode). Mods, in
  order: ``secagg_train_mod`` (a SecAgg+ protocol message goes to Flower's ``secaggplus_mod`` and the
  legacy client instead), Flower's ``fixedclipping_mod`` when the server's DP wrapper sent a clipping
  norm, and, for robustness experiments only, ``sign_flip_mod`` for the run config's poison partners;
- ``evaluate``: validation loss.
Every reply passes ``audit_mod`` (a description of what leaves the node, never values); an exception
becomes an error reply without local paths (``error_reply_mod``), audited like any reply. Private
heads stay in the node's state between rounds and in a file under the node's work folder.
"""

from __future__ import annotations

import logging

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod

from federation import node
from federation.mods import audit_mod, error_reply_mod, sign_flip_mod
from federation.secagg import secagg_train_mod
from federation.stage_names import Stage
from pipelines import mute_rdkit_log

# torch, pandas, RDKit and the model code are imported where a handler needs them: on the Deployment
# Engine every message starts a fresh flwr-clientapp process, and the SecAgg+ key / share / unmask
# stages and the audit need none of them (docs/FEDERATION.md, Transport).

log = logging.getLogger(__name__)

CLIPPING_NORM_KEY = "clipping_norm"


def _quiet_rdkit(msg: Message, context: Context, call_next):
    """A ClientApp runs in its own process (Ray worker, flwr-clientapp), which never ran the CLI's
    configure(): mute RDKit's per-molecule log there before the partner's data is parsed."""
    mute_rdkit_log()
    return call_next(msg, context)


app = ClientApp(mods=[_quiet_rdkit, audit_mod, error_reply_mod])


def _dp_clip_when_asked(msg: Message, context: Context, call_next):
    """Flower's ``fixedclipping_mod`` when the server's DP wrapper sent a clipping norm."""
    cfg = msg.content.config_records.get("config")
    if cfg is not None and CLIPPING_NORM_KEY in cfg:
        return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)


def _config(msg: Message) -> ConfigRecord:
    return msg.content["config"]


@app.query(Stage.STATS.value)
def stats(msg: Message, context: Context) -> Message:
    from federation import modelio, task
    from federation.strategy import NUM_EXAMPLES

    cfg = _config(msg)
    where = node.resolve_node(context)
    data = node.load_data(where, cfg)
    partner = {"partner-id": where.partner, "task-names": data.task_names,
               "task-types": [t.task_type for t in data.tasks],
               "task-transforms": [t.transform for t in data.tasks]}  # the catalog's, same on every node
    metrics = {NUM_EXAMPLES: int(len(data.rows("train")))}
    content = RecordDict()
    if str(cfg.get("scaling", "moments")) == "moments":  # the older mode: every moment, unit strings
        content["moments"] = modelio.moments_record(task.local_moments(data))
        partner["task-units"] = [t.unit for t in data.tasks]
        metrics["n-invalid"] = int(data.n_invalid)
    content["partner"] = ConfigRecord(partner)
    content["metrics"] = MetricRecord(metrics)
    if int(context.node_config.get("share-counts", 0) or 0):  # node start --share-counts (off by default)
        content["shared-counts"] = ConfigRecord(preparation_counts(where))
    return Message(content=content, reply_to=msg)


def preparation_counts(where: node.Node) -> dict[str, int]:
    """What a partner shares when it opts in: how many rows of its table were accepted / rejected, per
    rejection reason (from its node-local ``prepared/summary.json``; no rows, no SMILES, no values)."""
    import json

    summary = json.loads((where.work_dir / "prepared" / "summary.json").read_text())
    counts = {"n-input": int(summary["n_input"]), "n-accepted": int(summary["n_accepted"]),
              "n-rejected": int(summary["n_rejected"])}
    counts.update({f"rejected.{reason}": int(n) for reason, n in summary.get("rejected_by_reason", {}).items()})
    return counts


def _scaling_for(scaling, data, cfg: ConfigRecord):
    """The round's scaling as this partner uses it: its own target scaler under ``target-scaling = partner``."""
    from federation import task

    if str(cfg.get("target-scaling", "consortium")) == "partner":
        return task.partner_targets(scaling, data)
    return scaling


@app.query(Stage.SETUP.value)
def setup(msg: Message, context: Context) -> Message:
    context.state[node.SETUP_STATE] = ConfigRecord(dict(_config(msg)))
    return Message(content=RecordDict(), reply_to=msg)


@app.query(Stage.REPORT.value)
def report(msg: Message, context: Context) -> Message:
    from federation import modelio, task

    cfg = _config(msg)
    where = node.resolve_node(context)
    data = node.load_data(where, cfg)
    model, scaling = node.consortium_model(msg, context, cfg, where)
    scaling = _scaling_for(scaling, data, cfg)
    finetune = int(cfg.get("head-finetune-epochs", 0))
    if str(cfg["heads"]) != "shared" and finetune > 0:
        task.finetune_heads(model, data, scaling, node.train_config(cfg, data.partner), finetune)
    metrics = modelio.report_metrics(model, data, scaling, where.work_dir, cfg, where.cache_dir)
    return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)


@app.train(mods=[secagg_train_mod, _dp_clip_when_asked, sign_flip_mod])
def train(msg: Message, context: Context) -> Message:
    from federation import modelio, task
    from federation.strategy import NUM_EXAMPLES, TASK_COUNT_PREFIX

    cfg = _config(msg)
    where = node.resolve_node(context)
    data = node.load_data(where, cfg)
    model, scaling = node.consortium_model(msg, context, cfg, where)
    scaling = _scaling_for(scaling, data, cfg)
    global_arrays = model.all_arrays() if float(cfg.get("proximal-mu", 0.0)) > 0 else None
    loss = task.train_partner(model, data, scaling, node.train_config(cfg, data.partner), int(cfg["local-epochs"]),
                              global_params=global_arrays)
    shared = str(cfg["heads"]) == "shared"
    if not shared:
        node.keep_private_heads(model, context, where, cfg)
    out = modelio.model_record(model, include_heads=shared)
    metrics = {NUM_EXAMPLES: int(len(data.rows("train"))), "train-loss": float(loss)}
    if shared:
        counts = np.sum(~np.isnan(data.Y[data.rows("train")]), axis=0)
        metrics.update({TASK_COUNT_PREFIX + n: int(c) for n, c in zip(data.task_names, counts)})
    return Message(content=RecordDict({"arrays": out, "metrics": MetricRecord(metrics)}), reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    from federation import modelio
    from federation.strategy import NUM_EXAMPLES

    cfg = _config(msg)
    where = node.resolve_node(context)
    data = node.load_data(where, cfg)
    model, scaling = node.consortium_model(msg, context, cfg, where)
    scaling = _scaling_for(scaling, data, cfg)
    loss = modelio.validation_loss(model, data, scaling)
    metrics = {NUM_EXAMPLES: int(len(data.rows("valid"))), "valid-loss": float(loss)}
    return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)
