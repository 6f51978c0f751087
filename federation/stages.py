"""The query stages of a run, shared by both server modes (``server_app.run_server`` and
``secagg.run_secagg_server``): the stage names, the statistics stage, the run setup, the report stage.

Read with ``server_app.py``. Each stage is its own Flower message type ``query.<stage>`` and the
ClientApp registers one handler per stage (``@app.query("stats")`` ...), so Flower routes them:
- ``Stage.STATS``: every partner returns summed feature / label moments and its endpoint list; the
  server forms the union task list and the consortium scaling (``task.consortium_scaling``);
- ``Stage.SETUP`` (SecAgg+ mode only): the round settings are stored in each node's state, because
  Flower's legacy SecAgg+ training messages carry only the arrays and a round number;
- ``Stage.REPORT``: each partner scores global trunk + its own heads on its own test rows and writes
  its own bundle.
"""

from __future__ import annotations

import enum
import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp import Grid

from federation import modelio, task
from federation.checkpoint import Checkpointer
from federation.config import FederatedConfig
from federation.strategy import numpy_to_record, record_to_numpy
from pipelines.errors import InputError

log = logging.getLogger(__name__)

RESULT_FILE = "federation_result.json"
GLOBAL_MODEL_FILE = "global_model.npz"
NODE_WAIT_S = 120.0


class Stage(str, enum.Enum):
    """A query stage; the Flower message type is ``query.<value>``."""

    STATS = "stats"
    SETUP = "setup"
    REPORT = "report"

    @property
    def message_type(self) -> str:
        return f"{MessageType.QUERY}.{self.value}"


def base_config(cfg: FederatedConfig) -> dict:
    """Settings every partner needs, as ConfigRecord values."""
    return {"featurizer": cfg.featurizer, "seed": int(cfg.seed), "local-epochs": int(cfg.local_epochs),
            "lr": float(cfg.lr), "batch-size": int(cfg.batch_size), "weight-decay": float(cfg.weight_decay),
            "hidden": [int(h) for h in cfg.hidden], "dropout": float(cfg.dropout), "heads": cfg.heads,
            "head-finetune-epochs": int(cfg.head_finetune_epochs)}


def wait_for_nodes(grid: Grid, minimum: int, timeout: float = NODE_WAIT_S) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= minimum or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if len(nodes) < minimum:
        raise InputError(f"only {len(nodes)} partner node(s) connected; the run needs {minimum}")
    return nodes


def query_all(grid: Grid, nodes: list[int], stage: Stage, config: dict, arrays: ArrayRecord | None = None,
              timeout: float = 3600) -> list[Message]:
    """Send one stage's query to every node; the replies that came back in time."""
    messages = []
    for node in nodes:
        content = RecordDict({"config": ConfigRecord(dict(config))})
        if arrays is not None:
            content["arrays"] = arrays
        messages.append(Message(content=content, message_type=stage.message_type, dst_node_id=node))
    return list(grid.send_and_receive(messages, timeout=timeout))


def collect_stats(grid: Grid, nodes: list[int], cfg: FederatedConfig):
    """Stage 1: partner names, union task list and consortium scaling from summed moments."""
    replies = query_all(grid, nodes, Stage.STATS, base_config(cfg), timeout=cfg.round_timeout)
    partner_of: dict[int, str] = {}
    contributions, per_partner_tasks, n_train = [], [], {}
    failed = []
    for msg in replies:
        if msg.has_error():
            failed.append(f"node-{msg.metadata.src_node_id}")
            log.warning("stats: node %s failed: %s", msg.metadata.src_node_id, msg.error.reason)
            continue
        info = msg.content["partner"]
        partner = str(info["partner-id"])
        partner_of[msg.metadata.src_node_id] = partner
        tasks = [task.TaskSpec(n, t, u) for n, t, u in zip(info["task-names"], info["task-types"], info["task-units"])]
        per_partner_tasks.append(tasks)
        moments = record_to_numpy(msg.content["moments"])
        contributions.append(([t.name for t in tasks], moments))
        n_train[partner] = int(msg.content["metrics"]["num-examples"])
    if len(contributions) < 2:
        raise InputError(f"federated statistics need at least 2 partners; got {len(contributions)} (failed: {failed})")
    tasks = task.union_tasks(per_partner_tasks)
    n_features = len(contributions[0][1]["feature-sum"])
    scaling = task.consortium_scaling(n_features, tasks, contributions)
    log.info("stats: %d partners, %d endpoints, %d features", len(partner_of), len(tasks), n_features)
    return partner_of, scaling, n_train, failed


@dataclass(slots=True)
class RunSetup:
    """What the server knows after the statistics stage."""

    partner_of: dict[int, str]
    scaling: task.ConsortiumScaling
    n_train: dict[str, int]
    stats_failed: list[str]
    arrays: dict[str, np.ndarray]
    """Starting global arrays (fresh or from the checkpoint)."""
    offset: int
    """Rounds already done (resume)."""
    minimum: int
    checkpointer: Checkpointer
    round_config: dict


def setup_run(grid: Grid, cfg: FederatedConfig) -> RunSetup:
    """Wait for partners, run the statistics stage, build (or resume) the global model."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    minimum = cfg.min_partners or cfg.n_partners
    nodes = wait_for_nodes(grid, minimum)
    partner_of, scaling, n_train, stats_failed = collect_stats(grid, nodes, cfg)
    model = task.build_model(scaling.n_features, scaling.tasks, cfg.hidden, cfg.dropout, cfg.seed)
    arrays = modelio.model_arrays(model, include_heads=cfg.heads == "shared")
    checkpointer = Checkpointer(out / "checkpoints")
    offset = 0
    # Private heads saved by the nodes carry this token: a fresh run never starts from another
    # run's heads left in a node folder; a resumed run keeps the token of the run it continues.
    run_token = uuid.uuid4().hex
    if cfg.resume:
        ckpt = checkpointer.latest()
        if ckpt is not None:
            if list(ckpt.arrays) != list(arrays):
                raise InputError("checkpoint does not match this run's model (different tasks or architecture)")
            arrays, offset = ckpt.arrays, ckpt.round
            run_token = str(ckpt.meta.get("run-token", run_token))
            log.info("resuming from checkpoint round %d", offset)
    return RunSetup(partner_of, scaling, n_train, stats_failed, arrays, offset, min(minimum, len(partner_of)),
                    checkpointer, {**base_config(cfg), **scaling.to_config(), "run-token": run_token})


def finish_run(grid: Grid, cfg: FederatedConfig, setup: RunSetup, final_arrays: dict[str, np.ndarray],
               round_log: list[dict], rejections: list[dict], timing: dict, secagg: bool = False) -> dict:
    """Save the global arrays, let every partner score the final model, write the outcome."""
    out = Path(cfg.out_dir)
    np.savez(out / GLOBAL_MODEL_FILE, keys=np.array(list(final_arrays)),
             **{f"a{i:04d}": v for i, v in enumerate(final_arrays.values())})
    report_cfg = {**setup.round_config, "global-round": cfg.rounds, "proximal-mu": 0.0}
    replies = []
    if cfg.final_report:
        replies = query_all(grid, sorted(setup.partner_of), Stage.REPORT, report_cfg,
                            arrays=numpy_to_record(final_arrays), timeout=cfg.round_timeout)
    partners = {}
    for msg in replies:
        name = setup.partner_of.get(msg.metadata.src_node_id, f"node-{msg.metadata.src_node_id}")
        if msg.has_error():
            log.warning("report: %s failed: %s", name, msg.error.reason)
            continue
        partners[name] = {k: float(v) for k, v in msg.content["metrics"].items()}
    for name in sorted(set(setup.partner_of.values()) - set(partners)) if cfg.final_report else []:
        log.warning("report: no scores from %s", name)
    outcome = {
        "strategy": cfg.strategy, "heads": cfg.heads, "rounds": cfg.rounds, "resumed_from": setup.offset,
        "tasks": [t.to_dict() for t in setup.scaling.tasks], "partners": partners, "n_train": setup.n_train,
        "partner_of_node": {str(k): v for k, v in setup.partner_of.items()},
        "stats_failed": setup.stats_failed, "round_log": round_log, "rejections": rejections,
        "model_bytes": int(sum(np.asarray(v).nbytes for v in final_arrays.values())),
        "n_parameters_sent": int(sum(np.asarray(v).size for v in final_arrays.values())),
        "dp": {"clipping_norm": cfg.dp_clip, "noise_multiplier": cfg.dp_noise} if cfg.dp else None,
        "secagg": secagg, **timing, "scaling": setup.scaling.to_config(),
    }
    (out / RESULT_FILE).write_text(json.dumps(outcome, indent=2, default=float))
    if cfg.heads == "shared":
        from federation.bundles import write_bundle

        full = task.build_model(setup.scaling.n_features, setup.scaling.tasks, cfg.hidden, cfg.dropout, cfg.seed)
        modelio.load_arrays(full, final_arrays)
        write_bundle(full, setup.scaling, out / "global_bundle", cfg.featurizer,
                     data_tasks=[t.name for t in setup.scaling.tasks], metrics={},
                     info={"strategy": cfg.strategy, "rounds": cfg.rounds})
    return outcome
