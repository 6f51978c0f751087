"""The secure-aggregation mode (``secagg = true``) of the one app, on Flower's legacy API.

Why a mode and not the Message-API strategy: flwr 1.42 implements SecAgg+ only as a legacy
workflow (``SecAggPlusWorkflow`` inside ``DefaultWorkflow``, with a legacy ``Strategy``) on the
server and ``secaggplus_mod`` around a legacy ``NumPyClient`` on the node. So the ServerApp
(``server_app.app``) switches to ``run_secagg_server`` and the ClientApp's train handler
(``client_app.app``) hands SecAgg+ messages to ``secagg_train_mod``; stages, config, manifest and
node layout are the same as in the default mode.

Server: stage ``stats``, then stage ``setup`` (the round settings stored in each node's state:
legacy SecAgg+ messages carry only arrays and a round number), then the SecAgg+ rounds, then stage
``report``. The legacy strategy only ever receives the unmasked *aggregate* (the workflow hands it
one result), so per-partner update checks cannot run in this mode: SecAgg+ bounds each value by
its ``clipping_range`` instead, and only ``sums_only`` strategies (FedAvg, FedProx) are allowed.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

import numpy as np
from flwr.app import ConfigRecord, Context, Message
from flwr.client import NumPyClient
from flwr.client.message_handler.message_handler import handle_legacy_message_from_msgtype
from flwr.client.mod import secaggplus_mod
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS
from flwr.server import LegacyContext, ServerConfig
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow

from federation.metered_grid import MeteredGrid

if TYPE_CHECKING:
    from federation.config import FederatedConfig

# The node side runs in a fresh flwr-clientapp process per SecAgg+ message on the Deployment Engine;
# only the masked-vector stage trains, so the model code (torch) is imported there, not here.

log = logging.getLogger(__name__)


def max_weight(n_train: dict[str, int]) -> float:
    """SecAgg+'s ``max_weight``: the largest partner's training rows (known from stage ``stats``).

    Each node multiplies its update by ``num_examples / max_weight`` before quantizing it to
    ``2**22`` levels over ``[-8, 8]``; with the earlier fixed ``1e6`` that factor was ~1e-4 and the
    aggregate came out in steps of ~0.008 (measured in
    ``test_secagg_server_receives_masked_vectors_whose_sum_is_the_true_mean``), as large as the
    trunk's weights. The row counts already leave each node in stage ``stats``."""
    return float(max(max(n_train.values(), default=1), 1))


# -- node side ------------------------------------------------------------------------------------
class PartnerClient(NumPyClient):
    """Legacy client: local training on the trunk (parameters arrive as a list in key order)."""

    def __init__(self, context: Context) -> None:
        self.context = context

    def fit(self, parameters, config):
        from federation import modelio, node, task

        setup = self.context.state[node.SETUP_STATE]
        where = node.resolve_node(self.context)
        data = node.load_data(where, setup)
        scaling = task.ConsortiumScaling.from_config(setup)
        if str(setup.get("target-scaling", "consortium")) == "partner":
            scaling = task.partner_targets(scaling, data)
        model = task.build_model(scaling.n_features, scaling.tasks, tuple(int(h) for h in setup["hidden"]),
                                 float(setup["dropout"]), int(setup["seed"]))
        modelio.load_arrays(model, dict(zip(modelio.trunk_keys(model), parameters)))
        node.load_private_heads(model, self.context, where, setup)
        round_cfg = ConfigRecord({**dict(setup), "global-round": int(config.get("server_round", 0))})
        loss = task.train_partner(model, data, scaling, node.train_config(round_cfg, where.partner),
                                  int(setup["local-epochs"]))
        node.keep_private_heads(model, self.context, where, setup)
        return model.trunk_arrays(), int(len(data.rows("train"))), {"train-loss": float(loss)}


def _legacy_fit(message: Message, context: Context) -> Message:
    return handle_legacy_message_from_msgtype(lambda ctx: PartnerClient(ctx).to_client(), message, context)


def is_secagg_message(message: Message) -> bool:
    """A SecAgg+ protocol message (it carries the protocol's config record)."""
    return RECORD_KEY_CONFIGS in message.content.config_records


def secagg_train_mod(message: Message, context: Context, call_next) -> Message:
    """Train-handler mod: SecAgg+ messages go through Flower's ``secaggplus_mod`` to the legacy
    client (masked upload); every other train message goes on to the Message-API handler."""
    if message.has_content() and is_secagg_message(message):
        return secaggplus_mod(message, context, _legacy_fit)
    return call_next(message, context)


# -- server side ----------------------------------------------------------------------------------
class CheckpointingFedAvg(LegacyFedAvg):
    """Legacy FedAvg that checkpoints each round's aggregate and keeps a round log (measured bytes)."""

    def __init__(self, keys: list[str], setup, cfg: FederatedConfig, grid: MeteredGrid, progress=None,
                 **kw) -> None:
        from federation.strategy import RoundLog

        super().__init__(**kw)
        self.keys, self.setup, self.cfg, self.grid, self.progress = keys, setup, cfg, grid, progress
        self.rounds: list = []
        self._round_log = RoundLog
        self.t_last = time.perf_counter()
        self.bytes_seen = grid.totals()
        self.round_seconds: list[float] = []

    def aggregate_fit(self, server_round, results, failures):
        params, metrics = super().aggregate_fit(server_round, results, failures)
        if params is not None:
            # SecAgg+ dequantizes the unmasked sum to float64 and the legacy mean keeps it; back to the
            # model's dtype once, so the next round's arrays, the checkpoints and the final model are
            # what the plain path has (float32: half the bytes on the wire)
            arrays = dict(zip(self.keys, parameters_to_ndarrays(params)))
            arrays = {k: np.asarray(a, dtype=self.setup.arrays[k].dtype) for k, a in arrays.items()}
            params = ndarrays_to_parameters([arrays[k] for k in self.keys])
        rnd = self.setup.offset + server_round
        (down, up), (down0, up0) = self.grid.totals(), self.bytes_seen
        self.bytes_seen = (down, up)
        log_entry = self._round_log(round=rnd, bytes_down=down - down0, bytes_up=up - up0,
                             n_replies=len(results), accepted=["<aggregate only>"] if results else [],
                             failed=[_failure_name(f, self.setup.partner_of) for f in failures])
        losses = [r.metrics.get("train-loss") for _, r in results if r.metrics]
        log_entry.train_loss = float(np.mean(losses)) if losses else float("nan")
        self.rounds.append(log_entry)
        if params is not None:
            self.setup.checkpointer.save(rnd, arrays, {"strategy": self.cfg.strategy, "secagg": True,
                                                       "run-token": self.setup.round_config["run-token"],
                                                       "round_log": [*self.setup.history,
                                                                     *(r.to_dict() for r in self.rounds)]})
        self.round_seconds.append(time.perf_counter() - self.t_last)
        self.t_last = time.perf_counter()
        if self.progress is not None:
            self.progress("federated rounds (SecAgg+)", rnd, self.cfg.rounds)
        return params, metrics


def _failure_name(failure, partner_of: dict[int, str]) -> str:
    """A legacy failure (a (proxy, result) pair or an exception) as a partner id where one is known."""
    proxy = failure[0] if isinstance(failure, tuple) else None
    node_id = getattr(proxy, "node_id", None)
    if node_id is not None and int(node_id) in partner_of:
        return partner_of[int(node_id)]
    return f"unidentified partner ({type(failure).__name__})"


def secagg_parameters(n: int) -> tuple[int, int]:
    """(num_shares, reconstruction_threshold) for ``n`` partners: shares to all, 2/3 to rebuild."""
    shares = max(3, n)
    return shares, max(2, math.ceil(2 * shares / 3))


def run_secagg_server(grid, context: Context, cfg: FederatedConfig, progress=None) -> dict:
    """The SecAgg+ mode: the whole server side of a run; returns the federation result."""
    from federation import modelio
    from federation.stages import Stage, finish_run, query_all, setup_run

    t0 = time.perf_counter()
    grid = grid if isinstance(grid, MeteredGrid) else MeteredGrid(grid)
    setup = setup_run(grid, cfg)
    keys = list(setup.arrays)
    if cfg.heads != "private" or any(not k.startswith(modelio.TRUNK_PREFIX) for k in keys):
        raise ValueError("SecAgg+ mode supports private heads (the trunk is what is summed)")
    query_all(grid, sorted(setup.partner_of), Stage.SETUP, setup.round_config)
    n = len(setup.partner_of)
    strategy = CheckpointingFedAvg(
        keys, setup, cfg, grid, progress, fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=setup.minimum,
        min_available_clients=setup.minimum,
        initial_parameters=ndarrays_to_parameters([setup.arrays[k] for k in keys]),
        on_fit_config_fn=lambda rnd: {"server_round": setup.offset + rnd})
    remaining = max(cfg.rounds - setup.offset, 0)
    shares, threshold = secagg_parameters(n)
    legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=remaining), strategy=strategy)
    t_train = time.perf_counter()
    if remaining > 0:
        workflow = DefaultWorkflow(fit_workflow=SecAggPlusWorkflow(num_shares=shares, reconstruction_threshold=threshold,
                                                                   max_weight=max_weight(setup.n_train)))
        workflow(grid, legacy)
    train_seconds = time.perf_counter() - t_train
    final = setup.arrays
    if remaining > 0 and "parameters" in legacy.state.array_records:
        record = legacy.state.array_records["parameters"]
        final = dict(zip(keys, record.to_numpy_ndarrays()))
    timing = {"train_seconds": train_seconds, "round_seconds": strategy.round_seconds,
              "secagg_params": {"num_shares": shares, "reconstruction_threshold": threshold}}
    outcome = finish_run(grid, cfg, setup, final, [r.to_dict() for r in strategy.rounds], [], timing, secagg=True)
    outcome["server_seconds"] = time.perf_counter() - t0
    return outcome
