"""Central differential privacy with an epsilon budget: Flower's DP wrapper plus Flower's RDP accountant.

Read with ``server_app.py``. ``AccountedClientSideDP`` is Flower's
``DifferentialPrivacyClientSideFixedClipping`` (partners clip their update to L2 norm ``C`` with
Flower's ``fixedclipping_mod``; the server adds Gaussian noise of standard deviation ``z * C / n`` to
the unweighted mean of ``n`` sampled partners) with the accounting done here, by Flower's own
``RdpAccountant`` (``flwr.serverapp.RdpAccountant``, on Google's ``dp-accounting``). Flower's wrapper
can account by itself only around an unmodified ``FedAvg.aggregate_train``; ours validates updates
first, so the wrapper runs without its accountant and this class composes the events.

What is accounted: one Gaussian release per round that produced a noisy aggregate, partner-level
(the neighbouring relation is adding or removing one whole partner's data), no sampling
amplification (every partner is asked every round). The noise is calibrated to the updates actually
aggregated: the unweighted mean of ``k`` clipped updates gets noise of standard deviation
``z * C / k`` (Flower's ``compute_stdv`` and ``add_gaussian_noise_inplace``), so every release has
noise multiplier ``z`` on the sum, also in a round where a partner is missing or failed (Flower's
wrapper divides by the number asked, which would weaken such a round, and skips a round with any
error reply, which would stop every round while one node is down). Before each
round the accountant checks the release against ``epsilon_max``; a round that would exceed it is not
started (``PrivacyBudgetExhausted``, Flower's exception) and the run ends with the last model.
Not covered: the statistics, evaluation and report stages (see ``docs/PRIVACY.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.exception import PrivacyBudgetExhausted
from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping
from flwr.supercore.differential_privacy import add_gaussian_noise_inplace, compute_stdv
from flwr.supercore.privacy_accounting import (
    GaussianPrivacyEvent,
    NeighboringRelation,
    PrivacyConfig,
    SamplingMethod,
)
from flwr.supercore.privacy_accounting.rdp_accountant import RdpAccountant

log = logging.getLogger(__name__)

ACCOUNTING = "rdp (flwr RdpAccountant), partner-level, add-or-remove-one partner, no sampling amplification"


def make_accountant(n_partners: int, delta: float, state: dict | None = None) -> RdpAccountant:
    """Flower's RDP accountant for ``n_partners`` asked every round; ``state``: a checkpointed one."""
    config = PrivacyConfig(target_delta=float(delta), population_size=int(n_partners),
                           neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
                           sampling_method=SamplingMethod.NO_AMPLIFICATION)
    accountant = RdpAccountant(config)
    if state:
        accountant.load_state_dict(state)
    return accountant


def round_event(noise_multiplier: float, n_partners: int) -> GaussianPrivacyEvent:
    """One round's release: the mean of clipped updates with noise ``z * C / k`` (multiplier ``z``)."""
    return GaussianPrivacyEvent(noise_multiplier=float(noise_multiplier), sample_size=n_partners,
                                population_size=n_partners)


class AccountedClientSideDP(DifferentialPrivacyClientSideFixedClipping):
    """Flower's client-side fixed-clipping DP wrapper, accounted per round with Flower's RDP accountant."""

    def __init__(self, strategy, *, noise_multiplier: float, clipping_norm: float, num_sampled_clients: int,
                 delta: float, epsilon_max: float | None = None, accountant_state: dict | None = None) -> None:
        super().__init__(strategy, noise_multiplier=noise_multiplier, clipping_norm=clipping_norm,
                         num_sampled_clients=num_sampled_clients)
        self.delta = float(delta)
        self.epsilon_max = epsilon_max
        self.privacy = make_accountant(num_sampled_clients, delta, accountant_state) if noise_multiplier > 0 else None
        self.stopped: dict | None = None

    def spent(self) -> tuple[float, float]:
        """(epsilon, delta) spent so far; epsilon is infinite without noise, 0 before any release."""
        if self.privacy is None:
            return float("inf"), self.delta
        if self.privacy.num_releases == 0:
            return 0.0, self.delta
        return float(self.privacy.get_epsilon(self.delta)), self.delta

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        if self.epsilon_max is not None and self.privacy is not None:
            event = round_event(self.noise_multiplier, self.num_sampled_clients)
            if self.privacy.would_exceed(event, max_epsilon=float(self.epsilon_max)):
                epsilon, delta = self.spent()
                self.stopped = {"before_round": server_round, "epsilon": epsilon, "delta": delta,
                                "epsilon_max": float(self.epsilon_max)}
                raise PrivacyBudgetExhausted(
                    f"round {server_round} would take epsilon above {self.epsilon_max} at delta {delta:g} "
                    f"(spent so far: {epsilon:.4g}); stopping with the last model")
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int,
                        replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        # Flower's wrapper skips the whole round when any reply is an error (a dead node would then
        # stop every DP round); ours names the failed partner and aggregates the rest, with the noise
        # calibrated to how many were aggregated.
        replies = list(replies)
        arrays, metrics = self.strategy.aggregate_train(server_round, replies)
        rounds = getattr(self.strategy, "rounds", [])
        if arrays is not None:
            aggregated = max(1, int(metrics["n-accepted"]) if metrics is not None and "n-accepted" in metrics
                             else len(rounds[-1].accepted) if rounds else 1)
            arrays = self._noisy(arrays, aggregated)
            if self.privacy is not None:
                self.privacy.compose(round_event(self.noise_multiplier, self.num_sampled_clients))
        epsilon, delta = self.spent()
        if rounds:
            rounds[-1].epsilon, rounds[-1].delta = epsilon, delta
        log.info("round %d: privacy spent epsilon=%.4g at delta=%g", server_round, epsilon, delta)
        return arrays, metrics

    def _noisy(self, arrays: ArrayRecord, aggregated: int) -> ArrayRecord:
        """Gaussian noise of std ``z * C / aggregated`` on the mean (Flower's DP functions)."""
        values = arrays.to_numpy_ndarrays()
        add_gaussian_noise_inplace(values, compute_stdv(self.noise_multiplier, self.clipping_norm, aggregated))
        return ArrayRecord({k: Array(np.asarray(v)) for k, v in zip(arrays.keys(), values, strict=True)})

    def state(self) -> dict | None:
        return self.privacy.state_dict() if self.privacy is not None else None
