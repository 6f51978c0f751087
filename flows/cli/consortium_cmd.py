"""``fedadmet certs``, ``fedadmet consortium start|run|stop|add-partner``, ``fedadmet node start`` (and
``node blend``, ``flows.cli.node_blend_cmd``):
federated training across real sites with Flower's Deployment Engine (TLS + SuperNode auth).

The operator runs ``certs`` once, ships ``ca.crt`` and ``partners/<id>/node.key`` to each partner,
starts the SuperLink with ``consortium start`` and submits runs with ``consortium run``. Each
partner runs ``node start`` next to its private data. See docs/JOIN_CONSORTIUM.md.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from flows.cli.errors import CommandGroup
from pipelines.errors import InputError

console = Console()
consortium_app = typer.Typer(cls=CommandGroup, help="Operate a consortium's SuperLink (TLS, SuperNode authentication).",
                             no_args_is_help=True)
node_app = typer.Typer(cls=CommandGroup, help="Run this partner's SuperNode next to its private data.", no_args_is_help=True)

ROUND_PATTERN = re.compile(r"\[ROUND (\d+)(?:/(\d+))?\]")  # Flower's round banner (legacy: no total)


def certs(
    out: Path = typer.Option(..., "--out", help="Folder for the CA, SuperLink certificate and partner keys."),
    partners: int = typer.Option(20, "--partners", min=1, help="Number of partners (ids partner_00..)."),
    partner_ids: str | None = typer.Option(None, "--partner-ids", help="Comma-separated partner ids (overrides --partners)."),
    host: list[str] = typer.Option(["127.0.0.1", "localhost"], "--host",
                                   help="SuperLink host names / IPs for the certificate (repeat)."),
    days: int = typer.Option(365, "--days", help="Validity in days."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing credentials."),
) -> None:
    """Create the consortium CA, the SuperLink TLS certificate and one key pair per partner."""
    from federation.deployment.certs import generate_credentials, public_key_fingerprint

    ids = [p.strip() for p in partner_ids.split(",") if p.strip()] if partner_ids else \
        [f"partner_{i:02d}" for i in range(partners)]
    creds = generate_credentials(out, ids, hosts=tuple(host), days=days, overwrite=overwrite)
    table = Table(title=f"consortium credentials in {out}")
    for col in ("partner", "private key (send to partner only)", "public key fingerprint"):
        table.add_column(col)
    for key in creds.partners:
        table.add_row(key.partner, str(key.private_key), public_key_fingerprint(key.public_key))
    console.print(table)
    console.print(f"CA certificate and fold secret (every partner gets both): {creds.ca_cert}, "
                  f"{creds.out_dir / 'fold.key'}\n"
                  f"SuperLink certificate for {', '.join(creds.hosts)}: {creds.server_cert}")


@consortium_app.command("start")
def consortium_start(
    certs_dir: Path = typer.Option(..., "--certs", help="Folder written by `fedadmet certs`."),
    run_dir: Path = typer.Option(Path("runs/consortium"), "--run-dir", help="SuperLink state, logs, connection."),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address (0.0.0.0 to accept other machines)."),
    port: int = typer.Option(9093, "--port", help="HTTPS port for partners: Fleet API only (0: any free port)."),
    operator_port: int = typer.Option(0, "--operator-port",
                                      help="Port of the operator-only Control API on 127.0.0.1 (0: any free port)."),
    partner: list[str] | None = typer.Option(None, "--partner", help="Register only these partners (repeat)."),
    foreground: bool = typer.Option(False, "--foreground", help="Stay attached; Ctrl-C stops the SuperLink."),
) -> None:
    """Start ``flower-superlink`` with TLS and SuperNode authentication; register partner keys."""
    from federation.deployment.consortium import ConsortiumSpec, start_consortium

    spec = ConsortiumSpec(run_dir=run_dir, credentials_dir=certs_dir, host=host, port=port,
                          operator_port=operator_port, partners=tuple(partner) if partner else None)
    with console.status("starting the SuperLink and registering partner keys..."):
        proc, state = start_consortium(spec)
    table = Table(title=f"SuperLink {state.superlink_address} (pid {state.superlink_pid})")
    table.add_column("partner")
    table.add_column("SuperNode id")
    for name, node_id in sorted(state.node_ids.items()):
        table.add_row(name, str(node_id))
    console.print(table)
    console.print(f"partners connect to {state.superlink_address} (Fleet API only); the Control API "
                  f"answers on {state.operator_address} (this machine only)")
    console.print(f"log: {proc.log_path}\nstop with: fedadmet consortium stop --run-dir {run_dir}")
    if foreground:
        try:
            while proc.alive():
                time.sleep(1.0)
            console.print(f"[red]the SuperLink exited[/red]: {proc.exit_reason()}")
            raise typer.Exit(1)
        except KeyboardInterrupt:
            proc.stop()
            console.print("SuperLink stopped")


@consortium_app.command("add-partner")
def consortium_add_partner(
    partner: str = typer.Option(..., "--partner", help="Partner id."),
    public_key: Path = typer.Option(..., "--public-key", help="The partner's node.pub (OpenSSH EC key)."),
    run_dir: Path = typer.Option(Path("runs/consortium"), "--run-dir"),
) -> None:
    """Register one more partner's public key at the running SuperLink."""
    from federation.deployment.certs import public_key_fingerprint
    from federation.deployment.consortium import register_partner

    fingerprint = public_key_fingerprint(public_key)
    node_id = register_partner(run_dir, partner, public_key)
    console.print(f"registered {partner} as SuperNode {node_id} (key {fingerprint})")


@consortium_app.command("run")
def consortium_run(
    out: Path = typer.Option(..., "--out", help="Run folder for the report, checkpoints, config."),
    run_dir: Path = typer.Option(Path("runs/consortium"), "--run-dir", help="Folder of `consortium start`."),
    rounds: int = typer.Option(5, "--rounds", min=1),
    local_epochs: int = typer.Option(2, "--local-epochs", min=1),
    strategy: str = typer.Option("fedavg", "--strategy", help="fedavg | fedprox | fedadam | fedmedian | trimmed | krum | multikrum | bulyan"),
    heads: str = typer.Option("auto", "--heads", help="auto (default: shared heads, the whole net averaged; private under --secagg / DP or when an endpoint has no public target scale) | private (MELLODDY: only the trunk travels) | shared"),
    hidden: str = typer.Option("512", "--hidden", help="Trunk layer widths, comma-separated."),
    min_partners: int | None = typer.Option(None, "--min-partners", help="Fewest partners the run and each round need (default: the --quorum share of the registered)."),
    quorum: float = typer.Option(2 / 3, "--quorum", help="Share of the registered partners the run and each round need without --min-partners."),
    secagg: bool = typer.Option(False, "--secagg", help="Secure aggregation (SecAgg+, legacy API path; needs >= 3 partners)."),
    secagg_allow_two: bool = typer.Option(False, "--secagg-allow-two", help="Run SecAgg+ with 2 partners anyway (each can then recover the other's update; warns)."),
    dp_clip: float | None = typer.Option(None, "--dp-clip"),
    dp_noise: float | None = typer.Option(None, "--dp-noise"),
    dp_delta: float = typer.Option(1e-5, "--dp-delta", help="DP: delta at which epsilon is reported (partner-level)."),
    dp_epsilon_max: float | None = typer.Option(None, "--dp-epsilon-max", help="DP: stop before a round could take epsilon above this."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in --out."),
    app_dir: Path | None = typer.Option(None, "--app", help="Flower app folder (default: this project)."),
    timeout: float = typer.Option(3 * 3600, "--timeout", help="Seconds before the run is stopped."),
    catalog: Path | None = typer.Option(None, "--catalog", help="The catalog.json published to the partners "
                                        "(default: the embedded catalog); its SHA-256 goes with the run and "
                                        "every node refuses to train on another catalog."),
) -> None:
    """Submit a federated ADMET run to the consortium, stream its progress, write the report."""
    from federation.config import FederatedConfig
    from federation.deployment.admet_run import run_admet_on_consortium
    from federation.deployment.nodes import ConsortiumState

    state = ConsortiumState.read(run_dir)
    n_registered = len(state.node_ids)
    if n_registered < 2:
        raise InputError(f"only {n_registered} partner(s) registered at {state.superlink_address}; need >= 2")
    try:
        widths = tuple(int(h) for h in hidden.split(",") if h.strip())
    except ValueError as exc:
        raise InputError(f"--hidden must be comma-separated integers, got {hidden!r}") from exc
    cfg = FederatedConfig(out_dir=out, n_partners=n_registered, rounds=rounds, local_epochs=local_epochs,
                          strategy=strategy, heads=heads, hidden=widths, min_partners=min_partners, secagg=secagg,
                          dp_clip=dp_clip, dp_noise=dp_noise, resume=resume, baselines=False, quorum=quorum,
                          secagg_allow_two=secagg_allow_two, dp_delta=dp_delta, dp_epsilon_max=dp_epsilon_max,
                          catalog_sha256=_catalog_sha256(catalog))
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} rounds"), TimeElapsedColumn(),
                  console=console) as progress:
        bar = progress.add_task(f"run on {state.superlink_address}", total=rounds)

        def on_line(line: str) -> None:
            clean = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
            if not clean:
                return
            match = ROUND_PATTERN.search(clean)
            if match:
                progress.update(bar, completed=int(match.group(1)) - 1,
                                description=f"round {match.group(1)}/{match.group(2) or rounds}")
            progress.console.print(f"[dim]{clean}[/dim]")

        result = run_admet_on_consortium(run_dir, cfg, app_dir=app_dir, timeout=timeout, on_line=on_line)
        progress.update(bar, completed=rounds)
    dep = result.report["deployment"]
    colour = "green" if result.outcome.completed else "red"
    console.print(f"run {dep['run_id']}: [{colour}]{dep['status']}[/{colour}]")
    if dep["missing_partners"]:
        console.print(f"[yellow]partners missing in some round: {', '.join(dep['missing_partners'])}[/yellow]")
    table = Table(title="federated model, each partner's own test split")
    for col in ("partner", "metric", "federated", "n_train", "n_test"):
        table.add_column(col)
    for row in result.report["partners"]:
        fed = row["federated"]
        table.add_row(row["partner"], row["metric"], "n/a" if fed is None else f"{fed:.3f}",
                      str(row["n_train"]), str(row["n_test"]))
    console.print(table)
    console.print(f"report: {result.paths['json']}")
    if not result.outcome.completed:
        raise typer.Exit(1)


def _catalog_sha256(catalog: Path | None) -> str:
    from pipelines.catalog import EndpointCatalog

    if catalog is not None and not catalog.is_file():
        raise InputError(f"--catalog file not found: {catalog}")
    return (EndpointCatalog.read(catalog) if catalog else EndpointCatalog.embedded()).sha256


@consortium_app.command("status")
def consortium_status_cmd(
    run_dir: Path = typer.Option(Path("runs/consortium"), "--run-dir", help="Folder of `consortium start`."),
) -> None:
    """The SuperLink (running or not, its public and operator addresses), each partner's node, recent runs."""
    from federation.deployment.consortium import consortium_status

    st = consortium_status(run_dir)
    colour = "green" if st.running else "red"
    console.print(f"SuperLink {st.state.superlink_address} (pid {st.state.superlink_pid}): "
                  f"[{colour}]{'running' if st.running else 'not running'}[/{colour}]; Control API on "
                  f"{st.state.operator_address or st.state.superlink_address} (operator only)")
    nodes = Table(title="partners")
    for col in ("partner", "SuperNode id", "status"):
        nodes.add_column(col)
    for partner, status in st.nodes.items():
        nodes.add_row(partner, str(st.state.node_ids[partner]), status)
    console.print(nodes)
    if st.runs:
        runs = Table(title="runs")
        for col in ("run id", "app", "status", "elapsed"):
            runs.add_column(col)
        for run in st.runs:
            runs.add_row(str(run.get("run-id", "")), str(run.get("app", run.get("fab-id", ""))),
                         str(run.get("status", "")), str(run.get("elapsed", "")))
        console.print(runs)
    if not st.running:
        raise typer.Exit(1)


@consortium_app.command("catalog")
def consortium_catalog(
    out: Path = typer.Option(..., "--out", help="catalog.json to publish to every partner (with ca.crt)."),
) -> None:
    """Write the consortium's endpoint catalog (names, canonical units, task type, transform, aliases)."""
    from pipelines.catalog import EndpointCatalog

    catalog = EndpointCatalog.embedded()
    catalog.write(out)
    console.print(f"wrote {out}: {len(catalog.endpoints)} endpoints, {len(catalog.aliases)} aliases "
                  f"(sha256 {catalog.sha256[:16]}; partners see it in their node check summary)")


@consortium_app.command("stop")
def consortium_stop(
    run_dir: Path = typer.Option(Path("runs/consortium"), "--run-dir"),
) -> None:
    """Stop the SuperLink of ``--run-dir`` and every Flower process started from that folder."""
    from federation.deployment.consortium import stop_consortium

    n = stop_consortium(run_dir)
    console.print(f"stopped {n} process(es)")


def _node_settings(catalog: Path | None, endpoint_map: Path | None, fold_secret: Path | None):
    from pipelines.partner_data import NodeDataSettings

    for path, flag in ((catalog, "--catalog"), (endpoint_map, "--endpoint-map"), (fold_secret, "--fold-secret")):
        if path is not None and not path.is_file():
            raise InputError(f"{flag} file not found: {path}")
    return NodeDataSettings(catalog_path=catalog.resolve() if catalog else None,
                            endpoint_map_path=endpoint_map.resolve() if endpoint_map else None,
                            fold_secret_path=fold_secret.resolve() if fold_secret else None)


def _print_preparation(prep, out: Path) -> None:
    s = prep.summary
    table = Table(title=f"node check: {s.get('input_name', 'table')}")
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    table.add_row("input", str(s["n_input"]))
    table.add_row("[green]accepted", str(s["n_accepted"]))
    table.add_row("[red]rejected", str(s["n_rejected"]))
    for reason, count in s["rejected_by_reason"].items():
        table.add_row(f"  {reason}", str(count))
    table.add_row("replicates merged", str(s["n_replicates_merged"]))
    table.add_row("[bold]training rows (compound x endpoint)", str(s["n_prepared"]))
    table.add_row("  censored (< or >)", str(s["n_censored"]))
    for fold, count in s["folds"].items():
        table.add_row(f"  fold {fold}", str(count))
    console.print(table)
    if s["unmapped_endpoints"]:
        console.print("[yellow]endpoints the consortium catalog does not know (skipped; map them with "
                      "--endpoint-map):[/yellow] " + ", ".join(f"{k} ({v})" for k, v in s["unmapped_endpoints"].items()))
    if s["endpoints"]:
        console.print("endpoints kept: " + ", ".join(f"{k} ({v})" for k, v in s["endpoints"].items()))
    console.print(f"wrote {out}/accepted.csv, rejected.csv, prepared.csv, summary.json (these stay on this node)")


_DATA_HELP = "This partner's raw table (K-MELLODDY, long or wide; a folder with data.csv, or the file)."
_CATALOG_HELP = "The consortium's endpoint catalog (catalog.json from the operator; default: the embedded one)."
_MAP_HELP = "CSV partner_endpoint,catalog_endpoint mapping your endpoint names to the catalog's."
_SECRET_HELP = "File with the consortium's fold secret (default: the public simulation key; folds still agree)."


@node_app.command("check")
def node_check(
    data: Path = typer.Option(..., "--data", help=_DATA_HELP),
    out: Path = typer.Option(..., "--out", help="Folder for accepted.csv / rejected.csv / prepared.csv / summary.json."),
    catalog: Path | None = typer.Option(None, "--catalog", help=_CATALOG_HELP),
    endpoint_map: Path | None = typer.Option(None, "--endpoint-map", help=_MAP_HELP),
    fold_secret: Path | None = typer.Option(None, "--fold-secret", help=_SECRET_HELP),
) -> None:
    """Dry run, no network: prepare the table exactly as ``node start`` will (standardize, validate,
    map endpoints, convert units, aggregate replicates, keyed folds) and write the node-local reports."""
    from pipelines.partner_data import prepare_node_data

    settings = _node_settings(catalog, endpoint_map, fold_secret)
    with console.status("preparing the table (standardize, validate, convert, aggregate)..."):
        prep = prepare_node_data(data, out, settings)
    _print_preparation(prep, out)
    if not prep.usable:
        raise InputError(f"nothing usable remains in {data}: {prep.summary['n_rejected']} of "
                         f"{prep.summary['n_input']} rows rejected ({prep.summary['rejected_by_reason']})")


def _wait_for_start(proc, timeout: float) -> str | None:
    """Wait until the SuperNode logs its id (it is registered and connected) or dies; the exit reason
    when it died, None otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (reason := proc.exit_reason()) is not None:
            return reason
        if proc.log_path.exists() and "SuperNode ID:" in proc.log_path.read_text(errors="replace"):
            return None
        time.sleep(0.5)
    return proc.exit_reason()


@node_app.command("start")
def node_start(
    data: Path = typer.Option(..., "--data", help=_DATA_HELP),
    superlink: str = typer.Option(..., "--superlink", help="SuperLink address HOST:PORT."),
    partner: str = typer.Option(..., "--partner", help="Partner id (as in the consortium's credentials)."),
    key: Path = typer.Option(..., "--key", help="This partner's node.key (private, OpenSSH EC)."),
    ca: Path = typer.Option(..., "--ca", help="The consortium's ca.crt."),
    run_dir: Path = typer.Option(Path("runs/node"), "--run-dir", help="Node-local folder: logs, private heads, cache."),
    audit_dir: Path | None = typer.Option(None, "--audit-dir",
                                          help="Log the structure of every message leaving this node here (no values)."),
    catalog: Path | None = typer.Option(None, "--catalog", help=_CATALOG_HELP),
    endpoint_map: Path | None = typer.Option(None, "--endpoint-map", help=_MAP_HELP),
    fold_secret: Path | None = typer.Option(None, "--fold-secret", help=_SECRET_HELP),
    approved_apps: Path | None = typer.Option(None, "--approved-apps",
                                              help="File of app (FAB) SHA-256 hashes this node runs, one per line "
                                                   "(default: only this installation's consortium app)."),
    port: int = typer.Option(0, "--port", min=0, max=65535,
                             help="Local port of this node's Runtime API on 127.0.0.1 (0: a free one)."),
    detach: bool = typer.Option(False, "--detach", help="Return once the node is connected; it keeps running."),
    share_counts: bool = typer.Option(False, "--share-counts",
                                      help="Send the consortium this table's accepted / rejected row counts per "
                                           "reason (counts only; off by default; docs/PRIVACY.md)."),
    private_heads_only: bool = typer.Option(False, "--private-heads-only",
                                            help="Keep this partner's task heads on the node whatever the run "
                                                 "asks: a shared-heads run (the plain-mode default) is refused "
                                                 "with an audited error reply (docs/PRIVACY.md)."),
    warm_clientapp: bool = typer.Option(False, "--warm-clientapp",
                                        help="Run each message's ClientApp as a fork of one pre-imported process "
                                             "(no interpreter start and imports per message; see docs/FEDERATION.md, "
                                             "Transport)."),
    startup_timeout: float = typer.Option(30.0, "--startup-timeout",
                                          help="Seconds --detach waits for the node to connect."),
) -> None:
    """Prepare this partner's table (as ``node check``), then start its ``flower-supernode``: TLS to
    the SuperLink, authenticated by ``--key``, running only approved apps."""
    from federation.deployment.nodes import SuperNodeSpec, node_work_dir, start_supernode
    from pipelines.partner_data import prepare_node_data

    if not re.fullmatch(r"[^:\s]+:\d{1,5}", superlink):
        raise InputError(f"--superlink must be HOST:PORT, got {superlink!r}")
    if not ca.is_file():
        raise InputError(f"CA certificate not found: {ca}")
    if not key.is_file():
        raise InputError(f"SuperNode private key not found: {key}")
    settings = _node_settings(catalog, endpoint_map, fold_secret)
    spec = SuperNodeSpec(partner=partner, superlink=superlink, ca_cert=ca.resolve(), private_key=key.resolve(),
                         data_path=data.resolve(), run_dir=run_dir.resolve(), runtime_port=port,
                         data_settings=settings, audit_dir=audit_dir.resolve() if audit_dir else None,
                         approved_apps=approved_apps.resolve() if approved_apps else None,
                         warm_clientapp=warm_clientapp, share_counts=share_counts,
                         private_heads_only=private_heads_only)
    prepared_dir = node_work_dir(spec) / "prepared"
    with console.status("preparing the table (standardize, validate, convert, aggregate)..."):
        prep = prepare_node_data(spec.data_path, prepared_dir, settings)
    s = prep.summary
    if not prep.usable:
        raise InputError(f"not going online: nothing usable remains in {data} ({s['n_rejected']} of {s['n_input']} "
                         f"rows rejected: {s['rejected_by_reason']}); run `fedadmet node check` for the details")
    console.print(f"prepared {s['n_input']} rows: {s['n_accepted']} accepted, {s['n_rejected']} rejected, "
                  f"{s['n_prepared']} training rows ({prepared_dir}, stays on this node)")
    proc = start_supernode(spec)
    console.print(f"SuperNode {partner} started (pid {proc.pid}), log: {proc.log_path}")
    if detach:
        reason = _wait_for_start(proc, startup_timeout)
        if reason is not None:
            console.print(f"[red]SuperNode died on start[/red]: {reason}", markup=False)
            raise typer.Exit(1)
        if not proc.alive():
            raise typer.Exit(1)
        return
    console.print("Ctrl-C stops it")
    position = 0
    try:
        while True:
            if proc.log_path.exists():
                with proc.log_path.open(errors="replace") as handle:
                    handle.seek(position)
                    chunk = handle.read()
                    position = handle.tell()
                for line in chunk.splitlines():
                    console.print(re.sub(r"\x1b\[[0-9;]*m", "", line), markup=False, highlight=False)
            if not proc.alive():
                console.print(f"[red]SuperNode exited[/red] with code {proc.popen.returncode}")
                raise typer.Exit(1)
            time.sleep(1.0)
    except KeyboardInterrupt:
        proc.stop()
        console.print("SuperNode stopped")


def register(app: typer.Typer) -> None:
    from flows.cli.node_blend_cmd import node_blend

    node_app.command("blend")(node_blend)
    app.command("certs")(certs)
    app.add_typer(consortium_app, name="consortium")
    app.add_typer(node_app, name="node")
