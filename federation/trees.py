"""Federated gradient-boosted trees, one xgboost model per endpoint, with Flower's ``FedXgbBagging``.

``federated_trees(cfg, partners_dir) -> FederatedTreesResult``: for every endpoint of the partition,
the partners that measure it grow one xgboost model together, on the same features as the federated
NN (``task.PartnerData.X``, train rows); the number of rounds is chosen on their valid rows. Each
partner then predicts its own valid and test rows with the final model; the predictions are written
to its node-local folder (``<work dir>/trees/<token>/``), never into a message, and read back here
(in a simulation this process stands in for every partner).

The protocol is Flower's xgboost bagging (``flwr.serverapp.strategy.FedXgbBagging``, the Message API,
as in Flower's ``xgboost-quickstart``), not a copy of it:
- round r: the server sends the global model (xgboost JSON; empty in round 1) to the partners that
  measure the endpoint (a partner without it, or with fewer than ``min_train_labels`` train labels,
  is not asked: the strategy runs on a grid view holding only those nodes). Each partner adds one
  tree fitted to the global model's gradients on its own train rows and sends back that tree alone;
  ``FedXgbBagging`` appends every partner's tree to the global model. A partner's tree is shrunk by
  ``eta * n_partner / n_endpoint`` (its share of the endpoint's train labels) so that one round's
  trees together take about one step of ``eta``: summing k unshrunk trees fitted to the same
  residual overshoots k-fold;
- each train reply also carries the partner's valid loss (sum, count) of the model it received,
  i.e. of the previous round's model, so no extra evaluate round is needed except after the last
  round; the server stops after ``patience`` rounds without improvement and cuts the model at the
  best round (``Booster[0:n]``). Test rows are never read before the final prediction.
- censored labels are used as their bound (as ``admet.members.LGBMMember`` does); classification
  uses ``binary:logistic`` without class weights: the rounds are chosen on the valid log loss, which
  class weights would distort (measured: on hERG, 66 % positives, weighted trees never improved the
  valid log loss over p = 0.5 and the run stopped at round 0), and AUROC, the score, needs no prior.

What leaves a node (``docs/PRIVACY.md``, "Federated trees"): its endpoint names / types and per-endpoint
train-label counts; per round one tree (split features, split thresholds that are values from
the partner's own feature columns, leaf values, gain and hessian sums per node) and its valid loss
sum and count. Trees never go through SecAgg+ or DP: ``federated_trees`` refuses a config with
either. The ServerApp / ClientApp here run over the project's transports (``federation.inprocess``
or Flower's Simulation Engine, as ``federation.run.simulate``); their settings travel in the
ServerApp's factory, not the run config, so there is no Deployment Engine manifest for them yet.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedXgbBagging

from federation import node, task
from federation import partners as partners_mod
from federation.config import TREE_PATIENCE, TREE_ROUNDS, TREES_PROTECTED_MESSAGE, FederatedConfig
from federation.grids import DelegatingGrid
from federation.metered_grid import MeteredGrid
from federation.mods import audit_mod, error_reply_mod
from federation.stages import wait_for_nodes
from pipelines.errors import InputError

log = logging.getLogger(__name__)

TREES_DIR = "trees"
RESULT_FILE = "trees_result.json"
ENDPOINTS_STAGE = "trees_endpoints"
PREDICT_STAGE = "trees_predict"
NUM_EXAMPLES = "num-examples"
VALID_SUM, VALID_N = "valid-loss-sum", "valid-n"
N_TRAIN_PREFIX = "n-train:"
#: Regression starts from 0 and classification from p = 0.5 (logit 0): a fixed base score, so the
#: first partner's label mean is not written into the global model (xgboost would estimate it).
BASE_SCORE = {"regression": 0.0, "classification": 0.5}


@dataclass(frozen=True, slots=True)
class TreeSettings:
    """xgboost and round settings of the federated trees (the same for every endpoint)."""

    rounds: int = TREE_ROUNDS
    """Most federated rounds per endpoint (each adds one tree per participating partner)."""
    patience: int = TREE_PATIENCE
    """Stop after this many rounds without a better weighted valid loss."""
    eta: float = 0.3
    """Step per round; each partner's tree is shrunk by ``eta * n_partner / n_endpoint``."""
    max_depth: int = 4
    min_child_weight: float = 3.0
    """Smallest hessian sum in a leaf (squared error: rows per leaf)."""
    subsample: float = 0.8
    colsample_bynode: float = 0.5
    max_bin: int = 64
    reg_lambda: float = 1.0
    min_train_labels: int = 5
    """A partner trains an endpoint only with at least this many train labels (it still gets predictions)."""
    seed: int = 0

    def to_config(self) -> dict:
        return {k.replace("_", "-"): v for k, v in asdict(self).items()}

    @classmethod
    def from_config(cls, cfg: FederatedConfig) -> "TreeSettings":
        """The settings a run config asks for (``tree_rounds``, ``tree_patience``; the rest as here)."""
        return cls(rounds=int(cfg.tree_rounds), patience=int(cfg.tree_patience), seed=int(cfg.seed))


@dataclass(slots=True)
class FederatedTreesResult:
    """Per-partner predictions and per-endpoint round history of one ``federated_trees`` call."""

    predictions: dict[str, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)
    """partner -> endpoint -> {"valid": (len(rows("valid")),), "test": (len(rows("test")),)}: original
    units for regression, probability of class 1 for classification; rows in ``PartnerData.rows`` order."""
    endpoints: dict[str, dict] = field(default_factory=dict)
    """endpoint -> task_type, partners (trained), holders (predicted), rounds_run, best_round, n_trees,
    valid_loss (per round, index = round; round 0 = base score), bytes_down / bytes_up per round."""
    bytes_down: int = 0
    bytes_up: int = 0
    seconds: float = 0.0
    token: str = ""
    """The run's token: each node keeps the final model per endpoint at ``model_path(work, token, endpoint)``."""


# ---------------------------------------------------------------------------------------------------
# What a partner does (no Flower types)
# ---------------------------------------------------------------------------------------------------

def endpoint_rows(data: task.PartnerData, endpoint: str, fold: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, y, rows) of ``fold`` with a label for ``endpoint`` (censored labels as their bound);
    X with non-finite values as NaN (xgboost's missing value)."""
    j = data.task_names.index(endpoint)
    rows = data.rows(fold)
    rows = rows[~np.isnan(data.Y[rows, j])]
    return finite(data.X[rows]), data.Y[rows, j].astype(np.float64), rows


def finite(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    return np.where(np.isfinite(X), X, np.nan)


def xgb_params(cfg, task_type: str, eta: float, seed: int) -> dict:
    """xgboost parameters from a tree config record (``TreeSettings.to_config`` keys)."""
    params = {"eta": float(eta), "max_depth": int(cfg["max-depth"]), "min_child_weight": float(cfg["min-child-weight"]),
              "subsample": float(cfg["subsample"]), "colsample_bynode": float(cfg["colsample-bynode"]),
              "max_bin": int(cfg["max-bin"]), "lambda": float(cfg["reg-lambda"]), "tree_method": "hist",
              "base_score": BASE_SCORE[task_type], "nthread": 1, "seed": int(seed) % (2**31), "verbosity": 0}
    params["objective"] = "binary:logistic" if task_type == "classification" else "reg:squarederror"
    return params


def load_booster(raw: bytes, params: dict | None = None):
    """An xgboost Booster from its JSON bytes (``None`` for the empty model of round 1)."""
    import xgboost as xgb

    if not raw:
        return None
    bst = xgb.Booster()
    bst.load_model(bytearray(raw))
    if params:
        bst.set_param(params)
    return bst


def predict_raw(bst, X: np.ndarray, task_type: str) -> np.ndarray:
    """Predictions (probability for classification); the base score alone when ``bst`` is None."""
    import xgboost as xgb

    if bst is None:
        return np.full(len(X), BASE_SCORE[task_type], dtype=np.float64)
    if len(X) == 0:
        return np.zeros(0)
    return np.asarray(bst.predict(xgb.DMatrix(X, nthread=1)), dtype=np.float64)


def loss_sum(pred: np.ndarray, y: np.ndarray, task_type: str) -> float:
    """Summed squared error (regression) or log loss (classification)."""
    if task_type == "classification":
        p = np.clip(pred, 1e-7, 1 - 1e-7)
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).sum())
    return float(((pred - y) ** 2).sum())


def grow_one_tree(global_raw: bytes, X: np.ndarray, y: np.ndarray, task_type: str, params: dict) -> bytes:
    """One tree fitted to the global model's gradients on these rows, as a one-tree xgboost JSON model."""
    import xgboost as xgb

    dtrain = xgb.DMatrix(X, label=y, nthread=1)
    bst = load_booster(global_raw, params)
    if bst is None:
        bst = xgb.train(params, dtrain, num_boost_round=1)
    else:
        n = bst.num_boosted_rounds()
        bst.update(dtrain, n)
        bst = bst[n:n + 1]
    return bytes(bst.save_raw("json"))


# ---------------------------------------------------------------------------------------------------
# ClientApp: moves trees and metrics in and out of messages
# ---------------------------------------------------------------------------------------------------

def _quiet_rdkit(msg: Message, context: Context, call_next):
    from pipelines import mute_rdkit_log

    mute_rdkit_log()
    return call_next(msg, context)


trees_client_app = ClientApp(mods=[_quiet_rdkit, audit_mod, error_reply_mod])


def _bytes_of(record: ArrayRecord) -> bytes:
    return next(iter(record.values())).numpy().tobytes()


def _record_of(raw: bytes) -> ArrayRecord:
    return ArrayRecord([np.frombuffer(raw, dtype=np.uint8)])


@trees_client_app.query(ENDPOINTS_STAGE)
def endpoints(msg: Message, context: Context) -> Message:
    cfg = msg.content["config"]
    data = node.load_data(node.resolve_node(context), cfg)
    tr = data.rows("train")
    counts = {N_TRAIN_PREFIX + name: int((~np.isnan(data.Y[tr, j])).sum()) for j, name in enumerate(data.task_names)}
    partner = ConfigRecord({"partner-id": data.partner, "task-names": data.task_names,
                            "task-types": [t.task_type for t in data.tasks]})
    return Message(RecordDict({"partner": partner, "metrics": MetricRecord(counts)}), reply_to=msg)


def _valid_stats(bst, data: task.PartnerData, endpoint: str, task_type: str) -> tuple[float, int]:
    Xv, yv, _ = endpoint_rows(data, endpoint, "valid")
    if len(yv) == 0:
        return 0.0, 0
    return loss_sum(predict_raw(bst, Xv, task_type), yv, task_type), int(len(yv))


@trees_client_app.train()
def train(msg: Message, context: Context) -> Message:
    cfg = msg.content["config"]
    data = node.load_data(node.resolve_node(context), cfg)
    endpoint, task_type = str(cfg["endpoint"]), str(cfg["task-type"])
    X, y, _ = endpoint_rows(data, endpoint, "train")
    seed = int(cfg["seed"]) * 7919 + int(cfg["server-round"]) * 104729 + sum(map(ord, data.partner))
    params = xgb_params(cfg, task_type, float(cfg["eta"]) * len(y) / max(float(cfg["n-endpoint"]), 1.0), seed)
    global_raw = _bytes_of(msg.content["arrays"])
    v_sum, v_n = _valid_stats(load_booster(global_raw), data, endpoint, task_type)
    tree = grow_one_tree(global_raw, X, y, task_type, params)
    metrics = MetricRecord({NUM_EXAMPLES: int(len(y)), VALID_SUM: v_sum, VALID_N: v_n})
    return Message(RecordDict({"arrays": _record_of(tree), "metrics": metrics}), reply_to=msg)


@trees_client_app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    cfg = msg.content["config"]
    data = node.load_data(node.resolve_node(context), cfg)
    v_sum, v_n = _valid_stats(load_booster(_bytes_of(msg.content["arrays"])), data, str(cfg["endpoint"]),
                              str(cfg["task-type"]))
    metrics = MetricRecord({NUM_EXAMPLES: v_n, VALID_SUM: v_sum, VALID_N: v_n})
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)


def predictions_path(work_dir: Path, token: str, endpoint: str) -> Path:
    safe = (endpoint if re.fullmatch(r"[A-Za-z0-9_.+-]+", endpoint)
            else "ep_" + hashlib.sha256(endpoint.encode()).hexdigest()[:16])
    return Path(work_dir) / TREES_DIR / token / f"{safe}.npz"


def model_path(work_dir: Path, token: str, endpoint: str) -> Path:
    """Where a node keeps the final federated model of ``endpoint`` (xgboost JSON; empty: the base score)."""
    return predictions_path(work_dir, token, endpoint).with_suffix(".json")


def node_models(work_dir: Path, token: str, endpoints: list[str]) -> dict[str, bytes]:
    """endpoint -> the final model's bytes, for the endpoints this node received a model of."""
    out = {}
    for name in endpoints:
        path = model_path(work_dir, token, name)
        if path.is_file():
            out[name] = path.read_bytes()
    return out


@trees_client_app.query(PREDICT_STAGE)
def predict(msg: Message, context: Context) -> Message:
    """The final model's predictions for every valid and test row, written to the node's own folder."""
    cfg = msg.content["config"]
    where = node.resolve_node(context)
    data = node.load_data(where, cfg)
    endpoint, task_type = str(cfg["endpoint"]), str(cfg["task-type"])
    bst = load_booster(_bytes_of(msg.content["arrays"]))
    out = {fold: predict_raw(bst, finite(data.X[data.rows(fold)]), task_type) for fold in ("valid", "test")}
    path = predictions_path(where.work_dir, str(cfg["token"]), endpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    # the model itself stays on the node too, so its blended bundle can carry it (federation.blend_bundle)
    model_path(where.work_dir, str(cfg["token"]), endpoint).write_bytes(_bytes_of(msg.content["arrays"]))
    return Message(RecordDict({"metrics": MetricRecord({"n-valid": len(out["valid"]), "n-test": len(out["test"])})}),
                   reply_to=msg)


# ---------------------------------------------------------------------------------------------------
# ServerApp: Flower's FedXgbBagging per endpoint, on the nodes that measure it
# ---------------------------------------------------------------------------------------------------

class NodeSubset(DelegatingGrid):
    """A view of a grid that lists only ``node_ids`` (so the strategy samples only those)."""

    def __init__(self, inner: Grid, node_ids: list[int]) -> None:
        super().__init__(inner)
        self.node_ids = list(node_ids)

    def get_node_ids(self):
        return list(self.node_ids)


def summed_metrics(contents: list[RecordDict], weighted_by_key: str) -> MetricRecord:
    """Sums (not averages) of every metric across replies: valid losses are sums and counts."""
    total: dict[str, float] = {}
    for content in contents:
        for rec in content.metric_records.values():
            for k, v in rec.items():
                total[k] = total.get(k, 0.0) + float(v)
    return MetricRecord(total)


class ValidatedXgbBagging(FedXgbBagging):
    """Flower's ``FedXgbBagging``, plus the valid loss per round and early stopping on it.

    The train replies of round r carry the valid loss of round r-1's model; the evaluate phase runs
    only after the last round. Once stopped, later rounds send no message."""

    def __init__(self, *, num_rounds: int, patience: int, **kw) -> None:
        super().__init__(**kw)
        self.num_rounds, self.patience = num_rounds, patience
        self.valid_loss: dict[int, float] = {}
        self.n_trees: dict[int, int] = {0: 0}
        self.stopped_after: int | None = None

    def _record_loss(self, server_round: int, metrics: MetricRecord | None) -> None:
        if metrics is not None and float(metrics.get(VALID_N, 0.0)) > 0:
            self.valid_loss[server_round] = float(metrics[VALID_SUM]) / float(metrics[VALID_N])
        if self.valid_loss:
            best = self.best_round()
            if server_round - best >= self.patience and self.stopped_after is None:
                self.stopped_after = server_round + 1  # this round's trees are already in
                log.info("trees: no better valid loss for %d rounds; stopping (best round %d)", self.patience, best)

    def best_round(self) -> int:
        if not self.valid_loss:
            return max(self.n_trees)
        return min(self.valid_loss, key=lambda r: (self.valid_loss[r], r))

    def configure_train(self, server_round, arrays, config, grid):
        if self.stopped_after is not None:
            return []
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round, replies):
        replies = list(replies)
        arrays, metrics = super().aggregate_train(server_round, replies)
        if arrays is not None:
            self.n_trees[server_round] = count_trees(self.current_bst)
            self._record_loss(server_round - 1, metrics)
        return arrays, metrics

    def configure_evaluate(self, server_round, arrays, config, grid):
        if self.stopped_after is not None or server_round < self.num_rounds:
            return []
        return super().configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round, replies):
        metrics = super().aggregate_evaluate(server_round, replies)
        self._record_loss(server_round, metrics)
        return metrics


def count_trees(raw: bytes | None) -> int:
    if not raw:
        return 0
    model = json.loads(bytearray(raw))["learner"]["gradient_booster"]["model"]
    return int(model["gbtree_model_param"]["num_trees"])


def cut_model(raw: bytes, n_trees: int) -> bytes:
    """The first ``n_trees`` iterations of a bagged model (one tree per iteration)."""
    bst = load_booster(raw)
    if bst is None or n_trees <= 0:
        return b""
    return bytes(bst[0:n_trees].save_raw("json"))


def _query(grid: Grid, nodes: list[int], stage: str, config: dict, arrays: ArrayRecord | None,
           timeout: float) -> list[Message]:
    messages = []
    for dst in nodes:
        content = RecordDict({"config": ConfigRecord(dict(config))})
        if arrays is not None:
            content["arrays"] = arrays
        messages.append(Message(content=content, message_type=f"query.{stage}", dst_node_id=dst))
    replies = list(grid.send_and_receive(messages, timeout=timeout))
    for r in replies:
        if r.has_error():
            log.warning("trees: %s failed on node %s: %s", stage, r.metadata.src_node_id, r.error.reason)
    return [r for r in replies if not r.has_error()]


def run_trees_server(grid: Grid, cfg: FederatedConfig, settings: TreeSettings, token: str,
                     progress=None) -> dict:
    """The server side: endpoint query, bagging per endpoint, final predictions; returns the outcome."""
    t0 = time.perf_counter()
    grid = grid if isinstance(grid, MeteredGrid) else MeteredGrid(grid)
    base = {"featurizer": cfg.featurizer, "seed": int(cfg.seed), "token": token}
    # the simulation's nodes register after the ServerApp starts: wait for them as the NN app does
    expected = len(partners_mod.partner_folders(cfg.partners_dir)) if cfg.partners_dir else cfg.n_partners
    nodes = wait_for_nodes(grid, expected, min(expected, cfg.minimum_partners), grace=cfg.quorum_grace)
    replies = _query(grid, nodes, ENDPOINTS_STAGE, base, None, cfg.round_timeout)
    partner_of, holders, counts, types = {}, {}, {}, {}
    for r in replies:
        src = r.metadata.src_node_id
        p = r.content["partner"]
        partner_of[src] = str(p["partner-id"])
        for name, ttype in zip(p["task-names"], p["task-types"], strict=True):
            holders.setdefault(name, []).append(src)
            types[name] = str(ttype)
            counts[(name, src)] = int(r.content["metrics"].get(N_TRAIN_PREFIX + name, 0))
    outcome = {"partners": {str(k): v for k, v in partner_of.items()}, "settings": asdict(settings),
               "token": token, "endpoints": {}}
    names = sorted(holders)
    for i, name in enumerate(names):
        outcome["endpoints"][name] = _one_endpoint(grid, name, types[name], holders[name], counts, partner_of,
                                                   settings, base, cfg.round_timeout)
        if progress is not None:
            progress("federated trees", i + 1, len(names))
    outcome["bytes_down"], outcome["bytes_up"] = grid.totals()
    outcome["server_seconds"] = time.perf_counter() - t0
    out = Path(cfg.out_dir) / TREES_DIR
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULT_FILE).write_text(json.dumps(outcome, indent=1, default=float))
    return outcome


def _one_endpoint(grid: MeteredGrid, name: str, task_type: str, holders: list[int], counts: dict,
                  partner_of: dict, settings: TreeSettings, base: dict, timeout: float) -> dict:
    trainers = [n for n in holders if counts[(name, n)] >= settings.min_train_labels]
    info = {"task_type": task_type, "partners": [partner_of[n] for n in trainers],
            "holders": [partner_of[n] for n in holders], "rounds_run": 0, "best_round": 0, "n_trees": 0,
            "valid_loss": {}, "bytes_down": [], "bytes_up": []}
    if not trainers:
        log.info("trees: %s has no partner with %d train labels; skipped", name, settings.min_train_labels)
        return info
    k = len(trainers)
    strategy = ValidatedXgbBagging(num_rounds=settings.rounds, patience=settings.patience, fraction_train=1.0,
                                   fraction_evaluate=1.0, min_train_nodes=k, min_evaluate_nodes=k,
                                   min_available_nodes=k, train_metrics_aggr_fn=summed_metrics,
                                   evaluate_metrics_aggr_fn=summed_metrics)
    config = {**base, **settings.to_config(), "endpoint": name, "task-type": task_type,
              "n-endpoint": int(sum(counts[(name, n)] for n in trainers))}
    seen = [grid.totals()]

    def after_round(server_round: int, arrays: ArrayRecord):
        down, up = grid.totals()
        if server_round > 0 and (down, up) != seen[0]:
            info["bytes_down"].append(down - seen[0][0])
            info["bytes_up"].append(up - seen[0][1])
        seen[0] = (down, up)
        return None

    strategy.start(grid=NodeSubset(grid, trainers), initial_arrays=_record_of(b""), num_rounds=settings.rounds,
                   timeout=timeout, train_config=ConfigRecord(dict(config)), evaluate_config=ConfigRecord(dict(config)),
                   evaluate_fn=after_round)
    best = strategy.best_round()
    n_trees = strategy.n_trees.get(best, 0)
    final = cut_model(strategy.current_bst or b"", n_trees)
    info.update({"rounds_run": max(strategy.n_trees), "best_round": best, "n_trees": n_trees,
                 "valid_loss": {str(r): v for r, v in sorted(strategy.valid_loss.items())},
                 "trees_per_round": {str(r): c for r, c in sorted(strategy.n_trees.items())}})
    done = _query(grid, holders, PREDICT_STAGE, config, _record_of(final), timeout)
    info["predicted"] = sorted(partner_of[r.metadata.src_node_id] for r in done)
    return info


def make_trees_server_app(settings: TreeSettings, token: str, progress=None) -> ServerApp:
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        run_trees_server(grid, FederatedConfig.from_run_config(context.run_config), settings, token, progress)

    return server


# ---------------------------------------------------------------------------------------------------
# Plain-Python entry point
# ---------------------------------------------------------------------------------------------------

def refuse_protected_modes(cfg: FederatedConfig) -> None:
    """Trees are not aggregated under SecAgg+ or DP: a config asking for either is refused."""
    if cfg.secagg or cfg.dp_noise is not None or cfg.dp_clip is not None:
        raise InputError(TREES_PROTECTED_MESSAGE)


def federated_trees(cfg: FederatedConfig, partners_dir: Path, settings: TreeSettings | None = None,
                    progress=None, grid=None) -> FederatedTreesResult:
    """Federated xgboost per endpoint over ``partners_dir`` (see module docstring).

    ``progress(stage, done, total)`` hears about each finished endpoint; ``grid`` (in-process engine
    only) is the ``federation.inprocess.SequentialGrid`` to use, e.g. one that records messages."""
    from federation.run import flower_environment, node_work_dir, run_apps, run_config_for

    refuse_protected_modes(cfg)
    settings = settings or TreeSettings.from_config(cfg)
    t0 = time.perf_counter()
    token = uuid.uuid4().hex[:12]
    folders = partners_mod.partner_folders(partners_dir)
    run_config = run_config_for(cfg, partners_dir)
    server = make_trees_server_app(settings, token, progress)
    flower_environment(Path(cfg.out_dir))
    run_apps(cfg, server, trees_client_app, len(folders), run_config, grid=grid)
    path = Path(cfg.out_dir) / TREES_DIR / RESULT_FILE
    outcome = json.loads(path.read_text()) if path.exists() else {}
    if outcome.get("token") != token:
        raise RuntimeError("the federated trees run ended without a result; see the log above")
    result = FederatedTreesResult(endpoints=outcome["endpoints"], bytes_down=int(outcome["bytes_down"]),
                                  bytes_up=int(outcome["bytes_up"]), token=token)
    for name, info in outcome["endpoints"].items():
        for partner in info.get("predicted", []):
            with np.load(predictions_path(node_work_dir(cfg, partner), token, name)) as z:
                result.predictions.setdefault(partner, {})[name] = {"valid": z["valid"], "test": z["test"]}
    result.seconds = time.perf_counter() - t0
    return result

