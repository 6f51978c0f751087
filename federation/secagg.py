"""Secure aggregation (SecAgg+) mode, on Flower's legacy API (the only place flwr 1.42 has it).

Server: a Message-API ``ServerApp`` runs the statistics stage and a ``setup`` query (the
consortium scaling, stored in each partner's node state), then Flower's legacy
``DefaultWorkflow`` with ``SecAggPlusWorkflow`` as the fit workflow, then the ``report`` query.
The legacy strategy only ever receives the unmasked *aggregate* (the workflow hands it one
result), so per-partner update checks cannot run in this mode: SecAgg+ bounds each value by its
``clipping_range`` instead. Client: one ``ClientApp`` routes queries to the Message-API handlers
(``federation.client_app``) and training to a legacy ``NumPyClient`` wrapped by
``secaggplus_mod``.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.client import NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server import LegacyContext, ServerConfig
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.serverapp import Grid, ServerApp

from federation import modelio, task
from federation.client_app import HEADS_STATE, NodeSettings, make_client_app, resolve_node
from federation.config import FederatedConfig
from federation.server_app import finish_run, query_all, setup_run
from federation.strategy import RoundLog

log = logging.getLogger(__name__)

SETUP_STATE = "fed-setup"
MAX_WEIGHT = 1e6


class RoutingClientApp(ClientApp):
    """Queries to the Message-API app, everything else to the legacy SecAgg+ app."""

    def __init__(self, query_app: ClientApp, legacy_app: ClientApp) -> None:
        super().__init__()
        self.query_app, self.legacy_app = query_app, legacy_app

    def __call__(self, message: Message, context: Context) -> Message:
        if message.metadata.message_type == MessageType.QUERY:
            cfg = message.content.config_records.get("config")
            if cfg is not None and str(cfg.get("stage", "")) == "setup":
                context.state[SETUP_STATE] = ConfigRecord(dict(cfg))
                return Message(content=RecordDict(), reply_to=message)
            return self.query_app(message, context)
        return self.legacy_app(message, context)


class PartnerClient(NumPyClient):
    """Legacy client: local training on the trunk (parameters arrive as a list in key order)."""

    def __init__(self, context: Context, settings: NodeSettings) -> None:
        self.context, self.settings = context, settings

    def fit(self, parameters, config):
        import torch

        from federation.client_app import _train_config

        torch.set_num_threads(self.settings.torch_threads)
        setup = self.context.state[SETUP_STATE]
        node = resolve_node(self.context, self.settings)
        data = task.load_partner(node.data_path, node.partner, str(setup["featurizer"]), node.cache_dir,
                                 node.work_dir, seed=int(setup["seed"]))
        scaling = task.ConsortiumScaling.from_config(setup)
        model = task.build_model(scaling.n_features, scaling.tasks, tuple(int(h) for h in setup["hidden"]),
                                 float(setup["dropout"]), int(setup["seed"]))
        keys = modelio.trunk_keys(model)
        modelio.load_arrays(model, dict(zip(keys, parameters)))
        if HEADS_STATE in self.context.state:
            modelio.load_record(model, self.context.state[HEADS_STATE])
        round_cfg = ConfigRecord({**dict(setup), "global-round": int(config.get("server_round", 0))})
        tcfg = _train_config(round_cfg, node.partner)
        loss = task.train_partner(model, data, scaling, tcfg, int(setup["local-epochs"]))
        heads = modelio.heads_record(model)
        self.context.state[HEADS_STATE] = heads
        modelio.save_heads(node.work_dir, heads, str(setup.get("run-token", "")))
        return model.trunk_arrays(), int(len(data.rows("train"))), {"train-loss": float(loss)}


class CheckpointingFedAvg(LegacyFedAvg):
    """Legacy FedAvg that checkpoints each round's aggregate and keeps a round log."""

    def __init__(self, keys: list[str], setup, cfg: FederatedConfig, progress=None, **kw) -> None:
        super().__init__(**kw)
        self.keys, self.setup, self.cfg, self.progress = keys, setup, cfg, progress
        self.rounds: list[RoundLog] = []
        self.model_bytes = 0
        self.t_last = time.perf_counter()
        self.round_seconds: list[float] = []
        self.distinct_updates_seen: list[int] = []

    def aggregate_fit(self, server_round, results, failures):
        # Evidence for the report: under SecAgg+ every result carries the same (aggregate) arrays.
        self.distinct_updates_seen.append(len({b"".join(r.parameters.tensors) for _, r in results}))
        params, metrics = super().aggregate_fit(server_round, results, failures)
        rnd = self.setup.offset + server_round
        n = len(self.setup.partner_of)
        log_entry = RoundLog(round=rnd, bytes_down=self.model_bytes * n, bytes_up=self.model_bytes * n,
                             n_replies=len(results), accepted=["<aggregate only>"] if results else [],
                             failed=[str(f) for f in failures])
        losses = [r.metrics.get("train-loss") for _, r in results if r.metrics]
        log_entry.train_loss = float(np.mean(losses)) if losses else float("nan")
        self.rounds.append(log_entry)
        if params is not None:
            arrays = dict(zip(self.keys, parameters_to_ndarrays(params)))
            self.setup.checkpointer.save(rnd, arrays, {"strategy": self.cfg.strategy, "secagg": True,
                                                       "run-token": self.setup.round_config["run-token"]})
        self.round_seconds.append(time.perf_counter() - self.t_last)
        self.t_last = time.perf_counter()
        if self.progress is not None:
            self.progress("federated rounds (SecAgg+)", rnd, self.cfg.rounds)
        return params, metrics


def secagg_parameters(n: int) -> tuple[int, int]:
    """(num_shares, reconstruction_threshold) for ``n`` partners: shares to all, 2/3 to rebuild."""
    shares = max(3, n)
    return shares, max(2, math.ceil(2 * shares / 3))


def run_secagg_server(grid: Grid, context: Context, cfg: FederatedConfig, progress=None) -> dict:
    t0 = time.perf_counter()
    setup = setup_run(grid, cfg)
    keys = list(setup.arrays)
    if cfg.heads != "private" or any(not k.startswith(modelio.TRUNK_PREFIX) for k in keys):
        raise ValueError("SecAgg+ mode supports private heads (the trunk is what is summed)")
    query_all(grid, sorted(setup.partner_of), {**setup.round_config, "stage": "setup"})
    n = len(setup.partner_of)
    strategy = CheckpointingFedAvg(
        keys, setup, cfg, progress, fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=setup.minimum,
        min_available_clients=setup.minimum,
        initial_parameters=ndarrays_to_parameters([setup.arrays[k] for k in keys]),
        on_fit_config_fn=lambda rnd: {"server_round": setup.offset + rnd})
    strategy.model_bytes = int(sum(np.asarray(v).nbytes for v in setup.arrays.values()))
    remaining = max(cfg.rounds - setup.offset, 0)
    shares, threshold = secagg_parameters(n)
    legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=remaining), strategy=strategy)
    t_train = time.perf_counter()
    if remaining > 0:
        workflow = DefaultWorkflow(fit_workflow=SecAggPlusWorkflow(num_shares=shares, reconstruction_threshold=threshold,
                                                                   max_weight=MAX_WEIGHT))
        workflow(grid, legacy)
    train_seconds = time.perf_counter() - t_train
    final = setup.arrays
    if remaining > 0 and "parameters" in legacy.state.array_records:
        record = legacy.state.array_records["parameters"]
        final = dict(zip(keys, record.to_numpy_ndarrays()))
    timing = {"train_seconds": train_seconds, "round_seconds": strategy.round_seconds,
              "secagg_params": {"num_shares": shares, "reconstruction_threshold": threshold},
              "secagg_distinct_updates_seen_by_server": strategy.distinct_updates_seen}
    outcome = finish_run(grid, cfg, setup, final, [r.to_dict() for r in strategy.rounds], [], timing, secagg=True)
    outcome["server_seconds"] = time.perf_counter() - t0
    return outcome


def make_secagg_apps(cfg: FederatedConfig, settings: NodeSettings, progress=None) -> tuple[ServerApp, ClientApp]:
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        import json
        from pathlib import Path

        from federation.server_app import RESULT_FILE

        outcome = run_secagg_server(grid, context, cfg, progress)
        (Path(cfg.out_dir) / RESULT_FILE).write_text(json.dumps(outcome, indent=2, default=float))

    legacy = ClientApp(client_fn=lambda context: PartnerClient(context, settings).to_client(), mods=[secaggplus_mod])
    return server, RoutingClientApp(make_client_app(settings), legacy)
