"""A consortium on Flower's Deployment Engine: start the SuperLink, register partners, run, stop.

The operator's side::

    creds = generate_credentials(dir, partners)              # once (``fedadmet certs``)
    state = start_consortium(ConsortiumSpec(run_dir, dir))   # SuperLink + partner registration
    outcome = run_federation(run_dir, app_dir, run_config)   # ``flwr run`` + log stream + status
    stop_consortium(run_dir)                                 # SuperLink and its children

A partner's side is one call, :func:`federation.deployment.nodes.start_supernode`
(``fedadmet node start``). Everything lives in ``run_dir``; ``consortium.json`` there records the
SuperLink's address and pid so later commands (and other shells) find it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from federation.deployment.certs import ConsortiumCredentials, load_credentials
from federation.deployment.control import ControlClient, ControlError, write_connection
from federation.deployment.nodes import ConsortiumState, SuperLinkSpec, start_superlink
from federation.deployment.processes import (
    ManagedProcess,
    flower_processes_under,
    stop_tree,
)
from pipelines.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConsortiumSpec:
    """Operator settings for ``consortium start``."""

    run_dir: Path
    credentials_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    partners: tuple[str, ...] | None = None
    """Partners whose public keys are registered (None: every partner in the credentials)."""
    node_auth: bool = True
    operator_port: int = 0
    """Port of the operator-only Control API listener on 127.0.0.1 (0: a free one)."""
    lock_control: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "run_dir", Path(self.run_dir).resolve())
        object.__setattr__(self, "credentials_dir", Path(self.credentials_dir).resolve())
        if not 0 <= self.port < 65536:
            raise InputError(f"port must be in 0..65535, got {self.port}")


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a submitted run ended, and where its outputs are."""

    run_id: int
    status: str
    """Flower's final status: ``finished:completed`` / ``finished:failed`` / ``finished:stopped``."""
    out_dir: Path
    report: dict | None
    """The ServerApp's ``report.json`` if it wrote one."""

    @property
    def completed(self) -> bool:
        return self.status == "finished:completed"


def superlink_running(state: ConsortiumState) -> bool:
    """True if ``state.superlink_pid`` is still *our* SuperLink (not a reused pid)."""
    try:
        cmd = psutil.Process(state.superlink_pid).cmdline()
    except psutil.Error:
        return False
    port = state.superlink_address.rsplit(":", 1)[-1]
    launched = any("flower-superlink" in part or "federation.deployment.locked_superlink" in part for part in cmd)
    return launched and port in cmd


def operator_home(run_dir: Path) -> Path:
    return Path(run_dir) / "operator"


def register_partners(client: ControlClient, creds: ConsortiumCredentials,
                      partners: tuple[str, ...] | None, known: dict[str, int] | None = None) -> dict[str, int]:
    """Register each partner's public key; a key registered before keeps its node id."""
    known = dict(known or {})
    wanted = partners if partners is not None else tuple(k.partner for k in creds.partners)
    for partner in wanted:
        if partner in known:
            continue
        key = creds.partner(partner)
        known[partner] = client.register_node(key.public_key, partner)
        log.info("registered %s as SuperNode %d", partner, known[partner])
    return known


def start_consortium(spec: ConsortiumSpec, startup_timeout: float = 60.0) -> tuple[ManagedProcess, ConsortiumState]:
    """Start the SuperLink (TLS, node authentication), register partner keys, write ``consortium.json``.

    The SuperLink runs in its own session, so it outlives the calling process; stop it with
    :func:`stop_consortium` (or ``ManagedProcess.stop`` when the caller owns it, as tests do)."""
    run_dir = spec.run_dir
    existing = run_dir / "consortium.json"
    if existing.exists():
        state = ConsortiumState.read(run_dir)
        if superlink_running(state):
            raise InputError(
                f"a consortium is already running from {run_dir} (SuperLink pid {state.superlink_pid} "
                f"at {state.superlink_address}); stop it first with `fedadmet consortium stop`"
            )
    creds = load_credentials(spec.credentials_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    proc, address, operator = start_superlink(
        SuperLinkSpec(run_dir, creds, host=spec.host, port=spec.port, node_auth=spec.node_auth,
                      operator_port=spec.operator_port, lock_control=spec.lock_control),
        startup_timeout=startup_timeout,
    )
    try:
        home = operator_home(run_dir)
        write_connection(home, operator, creds.ca_cert)
        previous = _previous_node_ids(run_dir)
        node_ids = register_partners(ControlClient(home), creds, spec.partners, previous) if spec.node_auth else {}
        state = ConsortiumState(
            superlink_address=address, superlink_pid=proc.pid, ca_cert=str(creds.ca_cert),
            credentials_dir=str(spec.credentials_dir), flwr_home=str(home), node_ids=node_ids,
            operator_address=operator,
        )
        state.write(run_dir)
    except BaseException:
        proc.stop()
        raise
    return proc, state


def _previous_node_ids(run_dir: Path) -> dict[str, int]:
    """Node ids from an earlier start on the same state database (keys stay registered there)."""
    path = run_dir / "consortium.json"
    if not path.exists():
        return {}
    return {k: int(v) for k, v in json.loads(path.read_text()).get("node_ids", {}).items()}


def register_partner(run_dir: Path, partner: str, public_key: Path) -> int:
    """Register one more partner's public key at a running consortium (``consortium add-partner``)."""
    state = ConsortiumState.read(run_dir)
    client = ControlClient(Path(state.flwr_home))
    if partner in state.node_ids:
        raise InputError(f"{partner} is already registered as SuperNode {state.node_ids[partner]}")
    node_id = client.register_node(Path(public_key), partner)
    updated = dataclasses.replace(state, node_ids={**state.node_ids, partner: node_id})
    updated.write(Path(run_dir))
    return node_id


def wait_for_nodes(run_dir: Path, n_online: int, timeout: float) -> list[dict]:
    """Block until at least ``n_online`` SuperNodes are online at the SuperLink."""
    client = ControlClient(Path(ConsortiumState.read(run_dir).flwr_home))
    deadline = time.monotonic() + timeout
    nodes: list[dict] = []
    while time.monotonic() < deadline:
        nodes = [n for n in client.list_nodes() if n.get("status") == "online"]
        if len(nodes) >= n_online:
            return nodes
        time.sleep(1.0)
    raise TimeoutError(f"only {len(nodes)} of {n_online} SuperNodes came online within {timeout:.0f}s")


def run_federation(run_dir: Path, app_dir: Path, run_config: dict[str, object], out_dir: Path,
                   timeout: float = 3600.0, on_line: Callable[[str], None] | None = None,
                   out_key: str | None = "out-dir") -> RunOutcome:
    """Submit the Flower app in ``app_dir`` to the running consortium, follow it, read its report.

    ``run_config`` overrides keys of the app's ``[tool.flwr.app.config]``; the output folder is
    passed as ``out_key`` (the ServerApp runs on the SuperLink's machine and writes there); with
    ``out_key=None`` the run config already says where the outputs go."""
    state = ConsortiumState.read(run_dir)
    if not superlink_running(state):
        raise InputError(f"the SuperLink of {run_dir} (pid {state.superlink_pid}) is not running")
    app_dir = Path(app_dir).resolve()
    if not (app_dir / "pyproject.toml").is_file():
        raise InputError(f"{app_dir} is not a Flower app (no pyproject.toml)")
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    client = ControlClient(Path(state.flwr_home))
    config = {**run_config, **({out_key: str(out_dir)} if out_key else {})}
    (out_dir / "deployment_run_config.json").write_text(json.dumps(
        {"app": str(app_dir), "superlink": state.superlink_address, "run_config": config},
        indent=2, default=str))
    run_id = client.submit(app_dir, config)
    log.info("submitted run %d to %s", run_id, state.superlink_address)
    try:
        status = client.wait(run_id, timeout=timeout, on_line=on_line, alive=lambda: superlink_running(state))
    except ControlError as exc:
        if not superlink_running(state):  # one line for the operator, not flwr's output or a traceback
            raise InputError(superlink_gone_message(run_dir, state, run_id)) from exc
        client.stop_run(run_id)
        raise
    report_path = out_dir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    log.info("run %d ended: %s", run_id, status)
    return RunOutcome(run_id=run_id, status=status, out_dir=out_dir, report=report)


def superlink_gone_message(run_dir: Path, state: ConsortiumState, run_id: int) -> str:
    """What the operator reads when the SuperLink died under a run (``consortium run`` exits 2)."""
    log_file = Path(run_dir) / "superlink" / "superlink.log"
    return (f"the SuperLink (pid {state.superlink_pid} at {state.superlink_address}) stopped during run {run_id}; "
            f"its log: {log_file}. Restart it with `fedadmet consortium start --certs {state.credentials_dir} "
            f"--run-dir {run_dir} --port {state.superlink_address.rsplit(':', 1)[-1]}` and continue with "
            "`fedadmet consortium run --resume` (same --out)")


def stop_consortium(run_dir: Path, grace: float = 5.0) -> int:
    """Stop the SuperLink of ``run_dir`` and every Flower process started from that folder
    (SuperNodes started there too). Returns how many processes were stopped."""
    run_dir = Path(run_dir).resolve()
    stopped = 0
    if (run_dir / "consortium.json").exists():
        state = ConsortiumState.read(run_dir)
        stopped += stop_tree(state.superlink_pid, grace=grace) if superlink_running(state) else 0
    for proc in flower_processes_under(run_dir):
        stopped += stop_tree(proc.pid, grace=grace)
    log.info("stopped %d process(es) of the consortium in %s", stopped, run_dir)
    return stopped


@dataclass(frozen=True, slots=True)
class ConsortiumStatus:
    """``fedadmet consortium status``: the SuperLink, each registered partner's node, recent runs."""

    state: ConsortiumState
    running: bool
    nodes: dict[str, str]
    """partner -> Flower's node status (``online``, ``offline``, ``registered``) or ``unknown``."""
    runs: list[dict]


def consortium_status(run_dir: Path) -> ConsortiumStatus:
    """What the operator's Control API says about the consortium of ``run_dir`` (read only)."""
    state = ConsortiumState.read(run_dir)
    if not superlink_running(state):
        return ConsortiumStatus(state, False, {p: "unknown" for p in state.node_ids}, [])
    client = ControlClient(Path(state.flwr_home), timeout=60)
    by_id = {str(n.get("node-id")): str(n.get("status", "?")) for n in client.list_nodes()}
    nodes = {p: by_id.get(str(i), "unknown") for p, i in sorted(state.node_ids.items())}
    return ConsortiumStatus(state, True, nodes, client.list_runs())
