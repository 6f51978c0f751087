"""The consortium's one ServerApp (``app``), configured only by ``context.run_config``.

Read after ``task.py`` -> ``node.py`` -> ``client_app.py``; then ``stages.py`` (the query stages),
``strategy.py`` (checks and aggregation) and, for secure aggregation, ``secagg.py``.

``app`` parses the run config once (``FederatedConfig.from_run_config``) and runs one of two modes:
- default: ``run_server``. Stage ``stats`` (consortium scaling), then the training rounds via
  ``FederatedStrategy.start`` on Flower's Message API (wrapped in Flower's client-side fixed-clipping
  DP strategy with Flower's RDP accountant when DP is on, ``federation.dp``), a checkpoint after every
  round (arrays, round log, rejections, the accountant's state), then stage ``report``;
- ``secagg = true``: ``secagg.run_secagg_server``. Same stages, but training rounds run Flower's
  SecAgg+ protocol, which flwr 1.42 only has on its legacy API (``DefaultWorkflow`` +
  ``SecAggPlusWorkflow``); the Message-API strategy cannot sit behind it. It is a mode of this app
  (one manifest, one ClientApp), not a second app.
The same app object serves Flower's Simulation Engine (``federation.run``), the Deployment
Engine (``federation/flower_app/pyproject.toml``), federated tuning (``flows.federated_tuning``)
and the in-process fallback (``federation.inprocess``). Every message goes through a
``MeteredGrid``, so the bytes per round in the result are measured. The outcome
(``federation_result.json``, ``global_model.npz``) is written to the run folder;
``federation.report`` turns it into the report.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.exception import PrivacyBudgetExhausted

from federation.config import FederatedConfig
from federation.dp import ACCOUNTING, AccountedClientSideDP
from federation.metered_grid import MeteredGrid
from federation.stages import RESULT_FILE, finish_run, resume_arrays, setup_run
from federation.strategy import make_strategy, numpy_to_record, record_to_numpy

log = logging.getLogger(__name__)

#: ``progress(stage, done, total)``: told about each finished round (the CLI's bar).
Progress = Callable[[str, int, int], None]
#: ``on_evaluate(round, valid_loss)``: the federated validation loss after each round (tuning prunes here).
OnEvaluate = Callable[[int, float], None]


def run_server(grid: Grid, cfg: FederatedConfig, progress: Progress | None = None,
               on_evaluate: OnEvaluate | None = None) -> dict:
    """The Message-API mode: the whole server side of a run; returns (and writes) the federation result."""
    t0 = time.perf_counter()
    grid = grid if isinstance(grid, MeteredGrid) else MeteredGrid(grid)
    setup = setup_run(grid, cfg)
    offset = setup.offset
    remaining = max(cfg.rounds - offset, 0)
    strategy = make_strategy(cfg, partner_of=setup.partner_of, round_config=setup.round_config,
                             round_offset=offset, min_nodes=setup.minimum, on_evaluate=on_evaluate)
    runner = strategy
    if cfg.dp:
        runner = AccountedClientSideDP(strategy, noise_multiplier=float(cfg.dp_noise), clipping_norm=float(cfg.dp_clip),
                                       num_sampled_clients=len(setup.partner_of), delta=cfg.dp_delta,
                                       epsilon_max=cfg.dp_epsilon_max, accountant_state=setup.accountant_state)
    round_times: list[float] = []
    last = [time.perf_counter()]
    seen = [grid.totals()]
    latest = [numpy_to_record(setup.arrays)]
    token = setup.round_config["run-token"]
    best = _earlier_best(setup, cfg, token)

    def keep_if_best(server_round: int, record: ArrayRecord) -> None:
        """``keep_best_round``: remember (and checkpoint) the round of lowest federated valid loss."""
        loss = strategy.rounds[-1].valid_loss if strategy.rounds else float("nan")
        if not cfg.keep_best_round or not math.isfinite(loss) or (best[0] is not None and loss >= best[1]):
            return
        best[:] = [record, loss, server_round]
        setup.checkpointer.save_best(server_round, record_to_numpy(record), {"valid_loss": loss, "run-token": token})

    def after_round(server_round: int, record: ArrayRecord):
        """Runs after each round's train and evaluate phases (and once before round 1)."""
        (down, up), (down0, up0) = grid.totals(), seen[0]
        seen[0] = (down, up)
        latest[0] = record
        if server_round > 0:
            if strategy.rounds:
                strategy.rounds[-1].bytes_down, strategy.rounds[-1].bytes_up = down - down0, up - up0
            meta = {"strategy": cfg.strategy, "heads": cfg.heads, "run-token": setup.round_config["run-token"],
                    "round_log": [*setup.history, *(r.to_dict() for r in strategy.rounds)],
                    "rejections": [*setup.history_rejections, *(r.to_dict() for r in strategy.rejections)]}
            if isinstance(runner, AccountedClientSideDP):
                meta["dp_accountant"] = runner.state()
            setup.checkpointer.save(offset + server_round, record_to_numpy(record), meta)
            keep_if_best(offset + server_round, record)
            round_times.append(time.perf_counter() - last[0])
            if progress is not None:
                answered = strategy.rounds[-1].n_replies if strategy.rounds else 0
                progress(f"federated rounds ({answered}/{len(setup.partner_of)} partners answered)",
                         offset + server_round, cfg.rounds)
        last[0] = time.perf_counter()
        return None

    final = numpy_to_record(setup.arrays)
    t_train = time.perf_counter()
    stopped = None
    if remaining > 0:
        try:
            result = runner.start(grid=grid, initial_arrays=numpy_to_record(setup.arrays), num_rounds=remaining,
                                  timeout=cfg.round_timeout, train_config=ConfigRecord(),
                                  evaluate_config=ConfigRecord(), evaluate_fn=after_round)
            if result.arrays is not None and len(result.arrays) > 0:
                final = result.arrays
        except PrivacyBudgetExhausted as exc:  # --dp-epsilon-max: the last model within the budget
            log.warning("DP budget: %s", exc)
            final = latest[0]
            stopped = {**runner.stopped, "before_round": offset + runner.stopped["before_round"]}
    train_seconds = time.perf_counter() - t_train
    last_round = offset + len(round_times)
    selected = {"rule": "last round", "round": last_round}
    if cfg.keep_best_round:
        selected = {"rule": "lowest federated valid loss", "round": last_round, "valid_loss": None}
        if best[0] is not None:
            final = best[0]
            selected.update(round=best[2], valid_loss=best[1])
    timing = {"train_seconds": train_seconds, "round_seconds": round_times}
    outcome = finish_run(grid, cfg, setup, record_to_numpy(final), [r.to_dict() for r in strategy.rounds],
                         [*setup.history_rejections, *(r.to_dict() for r in strategy.rejections)], timing,
                         model_round=selected["round"] if selected["round"] != last_round else None)
    if cfg.dp:
        epsilon, delta = runner.spent()
        outcome["dp"].update({"delta": delta, "epsilon": epsilon, "epsilon_max": cfg.dp_epsilon_max,
                              "accounting": ACCOUNTING, "stopped_by_budget": stopped,
                              "rounds_released": runner.privacy.num_releases if runner.privacy else 0,
                              "norm_check": "off under DP (clipping bounds every update)"})
        (Path(cfg.out_dir) / RESULT_FILE).write_text(json.dumps(outcome, indent=2, default=float))
    outcome["selected_round"] = selected
    outcome["server_seconds"] = time.perf_counter() - t0
    (Path(cfg.out_dir) / RESULT_FILE).write_text(json.dumps(outcome, indent=2, default=float))
    log.info("the run's model: round %s (%s)", selected["round"], selected["rule"])
    log.info("federated run finished: %d rounds in %.1fs", remaining, train_seconds)
    return outcome


def _earlier_best(setup, cfg: FederatedConfig, token: str) -> list:
    """``[record, valid loss, round]`` of this run's best round before a resume (``[None, inf, 0]``: none)."""
    earlier = setup.checkpointer.best() if cfg.keep_best_round and setup.offset > 0 else None
    if earlier is None or earlier.meta.get("run-token") != token or earlier.round > setup.offset:
        return [None, math.inf, 0]
    arrays = resume_arrays(earlier.arrays, setup.arrays, cfg.heads)  # shared heads: the task list may differ
    return [numpy_to_record(arrays), float(earlier.meta["valid_loss"]), earlier.round]


def make_server_app(progress: Progress | None = None, on_evaluate: OnEvaluate | None = None) -> ServerApp:
    """The ServerApp; ``progress`` / ``on_evaluate`` are optional observers (not configuration)."""
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        cfg = FederatedConfig.from_run_config(context.run_config)
        if cfg.secagg:
            from federation.secagg import run_secagg_server

            outcome = run_secagg_server(MeteredGrid(grid), context, cfg, progress)
            (Path(cfg.out_dir) / RESULT_FILE).write_text(json.dumps(outcome, indent=2, default=float))
        else:
            run_server(grid, cfg, progress, on_evaluate)

    return server


#: For ``flwr run`` / a SuperLink (``federation/flower_app/pyproject.toml``) and every simulation.
app = make_server_app()
