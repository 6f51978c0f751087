"""The query stages of a run, shared by both server modes (``server_app.run_server`` and
``secagg.run_secagg_server``): the stage names, the statistics stage, the run setup, the report stage.

Read with ``server_app.py``. Each stage is its own Flower message type ``query.<stage>`` and the
ClientApp registers one handler per stage (``@app.query("stats")`` ...), so Flower routes them:
- ``Stage.STATS``: every partner returns its endpoint list (names, task types, the catalog's value
  transforms) and its training-row count; the server forms the union task list and the scaling from
  public data (``task.public_scaling``). Only the older ``--scaling moments`` mode also collects summed
  feature / label moments (``task.consortium_scaling``);
- ``Stage.SETUP`` (SecAgg+ mode only): the round settings are stored in each node's state, because
  Flower's legacy SecAgg+ training messages carry only the arrays and a round number;
- ``Stage.REPORT``: each partner scores global trunk + its own heads on its own test rows and writes
  its own bundle.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from federation import modelio, task
from federation.checkpoint import Checkpointer
from federation.config import SECAGG_MIN_PARTNERS, FederatedConfig
from federation.metered_grid import MeteredGrid
from federation.stage_names import Stage
from federation.strategy import numpy_to_record, partner_in_error, record_to_numpy
from pipelines.errors import InputError

log = logging.getLogger(__name__)

RESULT_FILE = "federation_result.json"
GLOBAL_MODEL_FILE = "global_model.npz"
NODE_WAIT_S = 120.0
#: Stats-reply record of a partner's accepted / rejected counts (only when it opted in).
SHARED_COUNTS = "shared-counts"


def base_config(cfg: FederatedConfig) -> dict:
    """Settings every partner needs, as ConfigRecord values."""
    return {"featurizer": cfg.featurizer, "seed": int(cfg.seed), "local-epochs": int(cfg.local_epochs),
            "lr": float(cfg.lr), "batch-size": int(cfg.batch_size), "weight-decay": float(cfg.weight_decay),
            "hidden": [int(h) for h in cfg.hidden], "dropout": float(cfg.dropout), "heads": cfg.heads,
            "head-finetune-epochs": int(cfg.head_finetune_epochs), "scaling": cfg.scaling,
            "target-scaling": target_scaling(cfg), "catalog-sha256": cfg.catalog_sha256 or "",
            "approved-context": bool(cfg.approved_context)}


def target_scaling(cfg: FederatedConfig) -> str:
    """``partner``: each partner scales its own targets (public scaling, private heads); else ``consortium``."""
    return "partner" if cfg.scaling == "public" and cfg.heads == "private" else "consortium"


def settle_heads(cfg: FederatedConfig, tasks: list[task.TaskSpec]) -> None:
    """Once the consortium's task list is known: shared heads on the public target scale need one public
    scale per regression endpoint. Where the embedded data lacks one, a default (``heads=auto``) run
    falls back to private heads (each partner scales its own targets; ``cfg`` is changed in place and
    ``heads_note`` says why); shared heads the operator asked for stop with one :class:`InputError`."""
    if cfg.heads != "shared" or cfg.scaling != "public":
        return
    missing = task.missing_public_target_scale(tasks)
    if not missing:
        return
    if not cfg.heads_auto:
        task.check_public_target_scale(tasks)  # raises, naming the endpoints and the two ways out
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    cfg.heads = "private"
    cfg.heads_note = (f"default fell back to private heads: no public target scale for {shown} "
                      "(each partner scales its own targets)")
    log.warning("heads: %s", cfg.heads_note)


def catalog_units() -> dict[str, str]:
    """Canonical unit per endpoint of the consortium catalog (the server's; nodes send no unit strings)."""
    from pipelines.catalog import load_catalog

    try:
        catalog = load_catalog()
    except InputError:
        return {}
    return dict(zip(catalog["endpoint"].astype(str), catalog["unit"].astype(str)))


def wait_for_nodes(grid: Grid, expected: int, minimum: int, timeout: float = NODE_WAIT_S,
                   grace: float = 60.0) -> list[int]:
    """The connected nodes: all ``expected`` of them, or, once ``minimum`` (the quorum) are connected,
    whoever connected within ``grace`` more seconds (at most ``timeout`` in all)."""
    start = time.monotonic()
    quorum_at = None
    while True:
        nodes = sorted(grid.get_node_ids())
        now = time.monotonic()
        if len(nodes) >= expected or now - start > timeout:
            break
        if len(nodes) >= minimum:
            quorum_at = quorum_at if quorum_at is not None else now
            if now - quorum_at >= grace:
                break
        time.sleep(0.5)
    if len(nodes) < minimum:
        raise InputError(f"only {len(nodes)} of {expected} registered partner node(s) connected; "
                         f"the run needs {minimum}")
    if len(nodes) < expected:
        log.warning("%d of %d registered partner(s) connected; going on with the quorum (%d needed)",
                    len(nodes), expected, minimum)
    return nodes


def unnamed(node_id: int) -> str:
    """How a node that never told its partner id is listed (the report never shows bare node ids)."""
    return f"unidentified partner (node id {node_id})"


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
    """Stage 1: partner names, union task list and the scaling (public data; summed moments only
    under ``--scaling moments``)."""
    replies = query_all(grid, nodes, Stage.STATS, base_config(cfg), timeout=cfg.round_timeout)
    partner_of: dict[int, str] = {}
    contributions, per_partner_tasks, n_train = [], [], {}
    failed = []
    shared_counts: dict[str, dict[str, int]] = {}
    units_of = catalog_units() if cfg.scaling != "moments" else {}
    answered = {msg.metadata.src_node_id for msg in replies}
    failed.extend(unnamed(n) for n in nodes if n not in answered)
    for msg in replies:
        if msg.has_error():
            failed.append(partner_in_error(msg.error.reason) or unnamed(msg.metadata.src_node_id))
            log.warning("stats: %s failed: %s", failed[-1], msg.error.reason)
            continue
        info = msg.content["partner"]
        partner = str(info["partner-id"])
        partner_of[msg.metadata.src_node_id] = partner
        sent_units = list(info["task-units"]) if "task-units" in info else None
        units = sent_units or [units_of.get(str(n), "") for n in info["task-names"]]
        transforms = list(info["task-transforms"]) if "task-transforms" in info else ["none"] * len(units)
        tasks = [task.TaskSpec(n, t, u, transform=f if t == "regression" else "none")
                 for n, t, u, f in zip(info["task-names"], info["task-types"], units, transforms)]
        per_partner_tasks.append(tasks)
        moments = record_to_numpy(msg.content["moments"]) if "moments" in msg.content.array_records else {}
        contributions.append(([t.name for t in tasks], moments))
        n_train[partner] = int(msg.content["metrics"]["num-examples"])
        if SHARED_COUNTS in msg.content.config_records:  # the partner opted in (node start --share-counts)
            shared_counts[partner] = {k: int(v) for k, v in msg.content[SHARED_COUNTS].items()}
    if len(contributions) < 2:
        raise InputError(f"federated statistics need at least 2 partners; got {len(contributions)} (failed: {failed})")
    tasks = task.union_tasks(per_partner_tasks)
    settle_heads(cfg, tasks)  # before any round config is built from cfg
    if cfg.scaling == "moments":
        n_features = len(contributions[0][1]["feature-sum"])
        scaling = task.consortium_scaling(n_features, tasks, contributions)
    else:
        scaler = task.public_feature_scaler(cfg.featurizer, cfg.cache_dir)
        # Shared heads: one target scale per endpoint, from public data the operator holds (the
        # embedded catalog); private heads: each partner's own. No label statistic leaves a node.
        target = task.public_target_scaler(tasks) if cfg.heads == "shared" else None
        scaling = task.public_scaling(scaler, tasks, target)
    log.info("stats: %d partners, %d endpoints, %d features (%s scaling)", len(partner_of), len(tasks),
             scaling.n_features, cfg.scaling)
    return partner_of, scaling, n_train, failed, shared_counts


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
    history: list[dict]
    """Round log of the rounds done before a resume (from the checkpoint), so the report keeps them."""
    history_rejections: list[dict]
    """Rejections of those rounds."""
    accountant_state: dict | None = None
    """DP: the privacy accountant's state at the checkpoint (a resumed run keeps spending from it)."""
    shared_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    """Data-preparation counts of the partners that opted in (``node start --share-counts``)."""


def resume_arrays(saved: dict[str, np.ndarray], fresh: dict[str, np.ndarray], heads: str) -> dict[str, np.ndarray]:
    """The global arrays a resumed run starts from. The trunk must be the checkpoint's, key for key and
    shape for shape. Under shared heads the partners who answer the resumed run's statistics stage may
    measure other endpoints than before (a site that crashed holds the only labels of one): the heads
    of endpoints still in the task list come from the checkpoint, those new to it start fresh, and
    those no partner measures any more are dropped (logged). Private heads: the global model is the
    trunk alone, so it must match exactly."""
    if list(saved) == list(fresh) and all(saved[k].shape == fresh[k].shape for k in fresh):
        return saved
    trunk = [k for k in fresh if k.startswith(modelio.TRUNK_PREFIX)]
    same_trunk = ([k for k in saved if k.startswith(modelio.TRUNK_PREFIX)] == trunk
                  and all(saved[k].shape == fresh[k].shape for k in trunk))
    if heads != "shared" or not same_trunk:
        raise InputError("checkpoint does not match this run's model (different tasks or architecture)")
    kept = [k for k in fresh if k in saved and saved[k].shape == fresh[k].shape]
    dropped = sorted(k for k in saved if k not in fresh)
    log.info("resume: shared heads of the checkpoint kept for %d array(s); %d new head array(s) start fresh, "
             "%d dropped (endpoints no answering partner measures)", len(kept) - len(trunk),
             len(fresh) - len(kept), len(dropped))
    return {k: saved[k] if k in kept else fresh[k] for k in fresh}


def setup_run(grid: Grid, cfg: FederatedConfig) -> RunSetup:
    """Wait for partners, run the statistics stage, build (or resume) the global model."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    minimum = cfg.minimum_partners
    if isinstance(grid, MeteredGrid):
        grid.quorum, grid.grace = minimum, cfg.quorum_grace
    nodes = wait_for_nodes(grid, cfg.n_partners, minimum, grace=cfg.quorum_grace)
    partner_of, scaling, n_train, stats_failed, shared_counts = collect_stats(grid, nodes, cfg)
    if len(partner_of) < minimum:
        raise InputError(f"only {len(partner_of)} partner(s) answered the statistics stage; the run needs "
                         f"{minimum} (missing: {', '.join(stats_failed) or 'none named'})")
    if cfg.secagg and len(partner_of) < SECAGG_MIN_PARTNERS:
        if not cfg.secagg_allow_two:
            raise InputError(f"SecAgg+ with {len(partner_of)} partners: each could subtract its own update from "
                             f"the sum and recover the other's; refused (needs >= {SECAGG_MIN_PARTNERS}; "
                             "override: --secagg-allow-two)")
        log.warning("SECAGG+ WITH %d PARTNERS (operator override): the sum reveals each partner's update to the "
                    "other; secure aggregation protects nothing here", len(partner_of))
    model = task.build_model(scaling.n_features, scaling.tasks, cfg.hidden, cfg.dropout, cfg.seed)
    arrays = modelio.model_arrays(model, include_heads=cfg.heads == "shared")
    checkpointer = Checkpointer(out / "checkpoints")
    offset = 0
    # Private heads saved by the nodes carry this token: a fresh run never starts from another
    # run's heads left in a node folder; a resumed run keeps the token of the run it continues.
    run_token = uuid.uuid4().hex
    history: list[dict] = []
    history_rejections: list[dict] = []
    accountant_state = None
    if cfg.resume:
        ckpt = checkpointer.latest()
        if ckpt is not None:
            arrays, offset = resume_arrays(ckpt.arrays, arrays, cfg.heads), ckpt.round
            run_token = str(ckpt.meta.get("run-token", run_token))
            history = [r for r in ckpt.meta.get("round_log", []) if int(r.get("round", 0)) <= offset]
            history_rejections = [r for r in ckpt.meta.get("rejections", []) if int(r.get("round", 0)) <= offset]
            accountant_state = ckpt.meta.get("dp_accountant")
            log.info("resuming from checkpoint round %d", offset)
    return RunSetup(partner_of, scaling, n_train, stats_failed, arrays, offset, min(minimum, len(partner_of)),
                    checkpointer, {**base_config(cfg), **scaling.to_config(), "run-token": run_token},
                    history, history_rejections, accountant_state, shared_counts)


def finish_run(grid: Grid, cfg: FederatedConfig, setup: RunSetup, final_arrays: dict[str, np.ndarray],
               round_log: list[dict], rejections: list[dict], timing: dict, secagg: bool = False,
               model_round: int | None = None) -> dict:
    """Save the global arrays, let every partner score the final model, write the outcome.

    ``model_round``: the round ``final_arrays`` come from when it is not the last one
    (``keep_best_round``); each partner then pairs them with the private heads it trained in that round."""
    out = Path(cfg.out_dir)
    np.savez(out / GLOBAL_MODEL_FILE, keys=np.array(list(final_arrays)),
             **{f"a{i:04d}": v for i, v in enumerate(final_arrays.values())})
    report_cfg = {**setup.round_config, "global-round": cfg.rounds, "proximal-mu": 0.0}
    if model_round:
        report_cfg["heads-round"] = int(model_round)
    replies = []
    if cfg.final_report:
        replies = query_all(grid, sorted(setup.partner_of), Stage.REPORT, report_cfg,
                            arrays=numpy_to_record(final_arrays), timeout=cfg.round_timeout)
    partners = {}
    for msg in replies:
        name = setup.partner_of.get(msg.metadata.src_node_id, unnamed(msg.metadata.src_node_id))
        if msg.has_error():
            log.warning("report: %s failed: %s", name, msg.error.reason)
            continue
        partners[name] = {k: float(v) for k, v in msg.content["metrics"].items()}
    for name in sorted(set(setup.partner_of.values()) - set(partners)) if cfg.final_report else []:
        log.warning("report: no scores from %s", name)
    outcome = {
        "strategy": cfg.strategy, "heads": cfg.heads, "heads_note": cfg.heads_note, "rounds": cfg.rounds,
        "resumed_from": setup.offset,
        "tasks": [t.to_dict() for t in setup.scaling.tasks], "partners": partners, "n_train": setup.n_train,
        "partner_of_node": {str(k): v for k, v in setup.partner_of.items()},
        "stats_failed": setup.stats_failed, "round_log": [*setup.history, *round_log], "rejections": rejections,
        "model_bytes": int(sum(np.asarray(v).nbytes for v in final_arrays.values())),
        "n_parameters_sent": int(sum(np.asarray(v).size for v in final_arrays.values())),
        "dp": {"clipping_norm": cfg.dp_clip, "noise_multiplier": cfg.dp_noise} if cfg.dp else None,
        "secagg": secagg, **timing, "scaling": setup.scaling.to_config(), "scaling_mode": cfg.scaling,
        "quorum": {"registered": cfg.n_partners, "needed": setup.minimum, "answered_stats": len(setup.partner_of)},
        "secagg_two_partner_override": bool(secagg and len(setup.partner_of) < SECAGG_MIN_PARTNERS),
        "traffic": list(grid.exchanges) if isinstance(grid, MeteredGrid) else None,
        "preparation_counts": setup.shared_counts,
    }
    (out / RESULT_FILE).write_text(json.dumps(outcome, indent=2, default=float))
    if cfg.heads == "shared":
        from federation.bundles import write_bundle

        full = task.build_model(setup.scaling.n_features, setup.scaling.tasks, cfg.hidden, cfg.dropout, cfg.seed)
        modelio.load_arrays(full, final_arrays)
        write_bundle(full, setup.scaling, out / "global_bundle", cfg.featurizer,
                     data_tasks=[t.name for t in setup.scaling.tasks], metrics={},
                     info={"strategy": cfg.strategy, "rounds": cfg.rounds},
                     approved_context=cfg.approved_context and cfg.final_report, cache_dir=cfg.cache_dir)
    return outcome
