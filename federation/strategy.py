"""The server's strategy: FedAvg's sampling and messaging, with our own checks and aggregation.

Read after ``server_app.py``. Strategies are a registry (``STRATEGIES``, the shape
``pipelines.registry`` gives every pluggable part): one small ``AggregationRule`` class per name
says how accepted updates are combined; adding a strategy is one class here.

``FederatedStrategy`` extends Flower's message-API ``FedAvg``:
- every reply is checked (``federation.aggregation.validate_updates``): wrong keys or shapes,
  non-finite values and norm outliers are rejected, the partner is named in the log and in
  ``rejections`` (which the report lists); the round goes on with the rest;
- aggregation by config: weighted mean (FedAvg / FedProx), FedAdam server step, coordinate-wise
  median (FedMedian) or trimmed mean; in shared-heads mode a task head is weighted by each
  partner's label count for that task (a partner without the task does not dilute it);
- FedProx's proximal weight and the consortium scaling travel in the round's config;
- partners that did not answer are recorded; the server loop fills in each round's measured
  bytes (``federation.metered_grid``); ``on_evaluate`` hears each round's validation loss.

Checkpointing lives in ``federation.checkpoint`` and runs from the server loop's per-round hook,
so it stores what the round finally produced (after DP noise, when on).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Bulyan, FedAvg, FedMedian, FedTrimmedAvg, Krum, MultiKrum

from federation.aggregation import AdamServerOptimizer, Rejection, aggregate, validate_updates
from pipelines.registry import Registry

log = logging.getLogger(__name__)

_ERROR_PARTNER = re.compile(r"^\[([^\]]+)\]")


def partner_in_error(reason: str) -> str | None:
    """The partner id a node put in its error reply (``[partner] ...``, ``federation.mods.error_reply_mod``)."""
    match = _ERROR_PARTNER.match(reason or "")
    return match.group(1) if match else None


NUM_EXAMPLES = "num-examples"
TASK_COUNT_PREFIX = "n."
HEAD_PREFIX = "head."


class AggregationRule:
    """How one strategy combines the accepted updates of a round."""

    name: str = ""
    method: str = "mean"
    """``mean`` (weighted), ``median`` (coordinate-wise) or ``trimmed`` (``federation.aggregation``)."""
    proximal: bool = False
    """Clients add FedProx's proximal term (weight ``proximal_mu``)."""
    server_adam: bool = False
    """The aggregate is a pseudo-gradient for a server-side Adam step (FedAdam)."""
    sums_only: bool = True
    """The rule needs only the (weighted) sum of updates, so it can run under SecAgg+."""

    def flower(self, n_updates: int, trim_fraction: float, robust_f: int):
        """Flower's own strategy whose ``aggregate_train`` combines the accepted replies (robust rules);
        ``None``: our ``federation.aggregation.aggregate`` (``method``)."""
        return None


STRATEGIES: Registry[AggregationRule] = Registry("strategy")


@STRATEGIES.register("fedavg")
class FedAvgRule(AggregationRule):
    """FedAvg: mean of the updates weighted by training rows."""


@STRATEGIES.register("fedprox")
class FedProxRule(AggregationRule):
    """FedProx: FedAvg's mean; clients train with a proximal term towards the global model."""

    proximal = True


@STRATEGIES.register("fedadam")
class FedAdamRule(AggregationRule):
    """FedAdam (Reddi et al. 2021): the weighted mean drives a server-side Adam step."""

    server_adam = True
    sums_only = False


@STRATEGIES.register("fedmedian")
class FedMedianRule(AggregationRule):
    """Coordinate-wise median of the updates: Flower's ``FedMedian``."""

    method = "median"
    sums_only = False

    def flower(self, n_updates, trim_fraction, robust_f):
        return FedMedian()


@STRATEGIES.register("trimmed")
class TrimmedMeanRule(AggregationRule):
    """Coordinate-wise mean after dropping the ``trim_fraction`` largest and smallest values: Flower's
    ``FedTrimmedAvg`` (``beta = trim_fraction``)."""

    method = "trimmed"
    sums_only = False

    def flower(self, n_updates, trim_fraction, robust_f):
        return FedTrimmedAvg(beta=trim_fraction)


@STRATEGIES.register("krum")
class KrumRule(AggregationRule):
    """Krum (Blanchard et al. 2017): the one update closest to its ``n - f - 2`` nearest; Flower's ``Krum``."""

    method = "krum"
    sums_only = False

    def flower(self, n_updates, trim_fraction, robust_f):
        return Krum(num_malicious_nodes=robust_f)


@STRATEGIES.register("multikrum")
class MultiKrumRule(AggregationRule):
    """MultiKrum: the weighted mean of the ``n - f`` best Krum-scored updates; Flower's ``MultiKrum``."""

    method = "multikrum"
    sums_only = False

    def flower(self, n_updates, trim_fraction, robust_f):
        return MultiKrum(num_malicious_nodes=robust_f, num_nodes_to_select=max(1, n_updates - robust_f))


@STRATEGIES.register("bulyan")
class BulyanRule(AggregationRule):
    """Bulyan (El Mhamdi et al. 2018): Krum selection then a coordinate-wise trimmed mean around the
    median; Flower's ``Bulyan``. Needs ``>= 4 f + 3`` accepted updates, else the round keeps the model."""

    method = "bulyan"
    sums_only = False

    def flower(self, n_updates, trim_fraction, robust_f):
        return Bulyan(num_malicious_nodes=robust_f)


@dataclass(slots=True)
class RoundLog:
    """What happened in one training round."""

    round: int
    bytes_down: int = 0
    bytes_up: int = 0
    n_replies: int = 0
    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    norms: dict[str, float] = field(default_factory=dict)
    train_loss: float = float("nan")
    valid_loss: float = float("nan")
    epsilon: float | None = None
    """DP: cumulative epsilon after this round (Flower's RDP accountant); ``None`` without DP."""
    delta: float | None = None

    def to_dict(self) -> dict:
        return {"round": self.round, "bytes_down": self.bytes_down, "bytes_up": self.bytes_up,
                "bytes": self.bytes_down + self.bytes_up, "n_replies": self.n_replies,
                "accepted": self.accepted, "rejected": self.rejected, "failed": self.failed,
                "norms": self.norms, "train_loss": self.train_loss, "valid_loss": self.valid_loss,
                "epsilon": self.epsilon, "delta": self.delta}


def record_to_numpy(record: ArrayRecord) -> dict[str, np.ndarray]:
    return {k: a.numpy() for k, a in record.items()}


def numpy_to_record(arrays: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})


class FederatedStrategy(FedAvg):
    """FedAvg messaging + validation + configurable aggregation (see module docstring)."""

    def __init__(
        self,
        *,
        strategy: str = "fedavg",
        partner_of: dict[int, str] | None = None,
        round_config: dict | None = None,
        proximal_mu: float = 0.0,
        trim_fraction: float = 0.2,
        server_lr: float = 0.01,
        validate_norms: bool = True,
        norm_z_threshold: float = 3.5,
        uniform_weights: bool = False,
        round_offset: int = 0,
        min_nodes: int = 2,
        robust_f: int = 1,
        on_evaluate=None,
    ) -> None:
        rule = STRATEGIES.get(strategy)
        super().__init__(fraction_train=1.0, fraction_evaluate=1.0, min_train_nodes=min_nodes,
                         min_evaluate_nodes=min_nodes, min_available_nodes=min_nodes)
        self.name = strategy
        self.rule = rule()
        self.method = rule.method
        self.robust_f = robust_f
        self.server_opt = AdamServerOptimizer(eta=server_lr) if rule.server_adam else None
        self.partner_of = dict(partner_of or {})
        self.round_config = dict(round_config or {})
        self.proximal_mu = proximal_mu if rule.proximal else 0.0
        self.on_evaluate = on_evaluate
        self.trim_fraction = trim_fraction
        self.validate_norms = validate_norms
        self.norm_z_threshold = norm_z_threshold
        self.uniform_weights = uniform_weights
        self.round_offset = round_offset
        self.current: dict[str, np.ndarray] | None = None
        self.rejections: list[Rejection] = []
        self.rounds: list[RoundLog] = []

    def summary(self) -> None:
        log.info("strategy %s: aggregation %s, server optimizer %s, norm validation %s (z > %.1f)",
                 self.name, self.method, "adam" if self.server_opt else "none",
                 self.validate_norms, self.norm_z_threshold)

    def partner(self, node_id: int) -> str:
        """The partner id of a node (from the statistics stage)."""
        return self.partner_of.get(node_id, f"unidentified partner (node id {node_id})")

    # -- sending --------------------------------------------------------------------------------
    def _with_round_config(self, server_round: int, config: ConfigRecord) -> ConfigRecord:
        for key, value in self.round_config.items():
            config[key] = value
        config["global-round"] = self.round_offset + server_round
        config["proximal-mu"] = float(self.proximal_mu)
        return config

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        self.current = record_to_numpy(arrays)
        messages = list(super().configure_train(server_round, arrays,
                                                self._with_round_config(server_round, config), grid))
        self._sent = messages  # the grid sets their message ids when it pushes them
        self._sent_to = [m.metadata.dst_node_id for m in messages]
        self.rounds.append(RoundLog(round=self.round_offset + server_round))
        return messages

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                           grid: Grid) -> Iterable[Message]:
        return super().configure_evaluate(server_round, arrays,
                                          self._with_round_config(server_round, config), grid)

    # -- receiving ------------------------------------------------------------------------------
    def aggregate_train(self, server_round: int,
                        replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        rlog = self.rounds[-1] if self.rounds else RoundLog(self.round_offset + server_round)
        global_round = self.round_offset + server_round
        rlog.n_replies = len(replies)
        updates: list[tuple[str, dict[str, np.ndarray]]] = []
        metrics: list[MetricRecord] = []
        messages: list[Message] = []
        for msg in replies:
            partner = self.partner(self._replying_node(msg))
            if msg.has_error():
                partner = partner_in_error(msg.error.reason) or partner
                rlog.failed.append(partner)
                log.warning("round %d: %s failed: %s", global_round, partner, msg.error.reason)
                continue
            content = msg.content
            if len(content.array_records) != 1 or len(content.metric_records) != 1:
                rejection = Rejection(global_round, partner, "malformed: expected one ArrayRecord and one MetricRecord")
                self.rejections.append(rejection)
                rlog.rejected.append(partner)
                log.warning("round %d: rejected update from %s: %s", global_round, partner, rejection.reason)
                continue
            record = next(iter(content.array_records.values()))
            updates.append((partner, record_to_numpy(record)))
            metrics.append(next(iter(content.metric_records.values())))
            messages.append(msg)
        replied = {self._replying_node(msg) for msg in replies}
        for node in getattr(self, "_sent_to", []):
            if node not in replied:
                rlog.failed.append(self.partner(node))
                log.warning("round %d: no reply from %s", global_round, self.partner(node))
        if self.current is None:
            raise RuntimeError("aggregate_train called before configure_train")
        batch = max(int(self.round_config.get("batch-size", 64)), 1)
        steps = [math.ceil(float(m.get(NUM_EXAMPLES, 1.0)) / batch) for m in metrics]
        outcome = validate_updates(global_round, self.current, updates, check_norms=self.validate_norms,
                                   z_threshold=self.norm_z_threshold, steps=steps)
        self.rejections.extend(outcome.rejections)
        rlog.rejected.extend(r.partner for r in outcome.rejections)
        rlog.norms = outcome.norms
        kept = outcome.accepted
        rlog.accepted = [updates[i][0] for i in kept]
        if not kept:
            log.warning("round %d: no acceptable update; the global model stays as it was", global_round)
            return None, None
        arrays = [updates[i][1] for i in kept]
        kept_metrics = [metrics[i] for i in kept]
        weights = [1.0 if self.uniform_weights else float(m.get(NUM_EXAMPLES, 1.0)) for m in kept_metrics]
        key_weights = None if self.uniform_weights else self._head_weights(arrays[0], kept_metrics)
        robust = self.rule.flower(len(kept), self.trim_fraction, self.robust_f)
        if robust is not None:  # Flower's own rule on the replies that passed our checks
            record, _ = robust.aggregate_train(server_round, [messages[i] for i in kept])
            if record is None:
                log.warning("round %d: %s could not aggregate %d update(s); the global model stays as it was",
                            global_round, self.name, len(kept))
                return None, None
            result = record_to_numpy(record)
        else:
            result = aggregate(arrays, weights, method=self.method, trim_fraction=self.trim_fraction,
                               key_weights=key_weights)
        if self.server_opt is not None:
            result = self.server_opt.step(self.current, result)
        losses = [float(m.get("train-loss", np.nan)) for m in kept_metrics]
        rlog.train_loss = float(np.nanmean(losses)) if np.isfinite(losses).any() else float("nan")
        summary = MetricRecord({"train-loss": rlog.train_loss, "n-accepted": len(kept),
                                "n-rejected": len(outcome.rejections), NUM_EXAMPLES: float(sum(weights))})
        log.info("round %d: aggregated %d update(s) (%s), rejected %d, failed %d",
                 global_round, len(kept), self.method, len(outcome.rejections), len(rlog.failed))
        return numpy_to_record(result), summary

    def _replying_node(self, reply: Message) -> int:
        """The node a reply answers for: the destination of the message it replies to (an
        unavailability error comes from the SuperLink's own node id), else its source."""
        sent = {m.metadata.message_id: m.metadata.dst_node_id for m in getattr(self, "_sent", [])
                if m.metadata.message_id}
        return sent.get(reply.metadata.reply_to_message_id, reply.metadata.src_node_id)

    def _head_weights(self, template: dict[str, np.ndarray], metrics: list[MetricRecord]) -> dict[str, list[float]]:
        """Shared heads: ``head.<task>.<param>`` weighted by each partner's label count for ``task``."""
        out: dict[str, list[float]] = {}
        for key in template:
            if not key.startswith(HEAD_PREFIX):
                continue
            task = key[len(HEAD_PREFIX):].rsplit(".", 1)[0]
            out[key] = [float(m.get(TASK_COUNT_PREFIX + task, 0.0)) for m in metrics]
        return out

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        kept = [m for m in replies if not m.has_error() and len(m.content.metric_records) == 1]
        if not kept:
            return None
        records = [next(iter(m.content.metric_records.values())) for m in kept]
        weights = np.array([float(r.get(NUM_EXAMPLES, 1.0)) for r in records])
        values = np.array([float(r.get("valid-loss", np.nan)) for r in records])
        ok = np.isfinite(values) & (weights > 0)
        loss = float(np.average(values[ok], weights=weights[ok])) if ok.any() else float("nan")
        if self.rounds:
            self.rounds[-1].valid_loss = loss
        if self.on_evaluate is not None:
            self.on_evaluate(self.round_offset + server_round, loss)
        return MetricRecord({"valid-loss": loss, NUM_EXAMPLES: float(weights.sum())})


def make_strategy(cfg, *, partner_of: dict[int, str], round_config: dict, round_offset: int, min_nodes: int,
                  on_evaluate=None) -> FederatedStrategy:
    """The run's strategy from its ``FederatedConfig``."""
    return FederatedStrategy(strategy=cfg.strategy, partner_of=partner_of, round_config=round_config,
                             proximal_mu=cfg.proximal_mu, trim_fraction=cfg.trim_fraction,
                             server_lr=cfg.server_lr, validate_norms=cfg.validate_norms and not cfg.dp,
                             norm_z_threshold=cfg.norm_z_threshold, uniform_weights=cfg.dp,
                             round_offset=round_offset, min_nodes=min_nodes, robust_f=cfg.robust_f,
                             on_evaluate=on_evaluate)
