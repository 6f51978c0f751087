"""Launch ``flower-superlink`` (TLS + SuperNode authentication) and ``flower-supernode`` processes.

Flower 1.42 serves the Fleet, Control and Runtime APIs of the SuperLink over one HTTPS port
(``--host``/``--port``). Each SuperNode also binds a local Runtime API port (``--port``) that its
ClientApp subprocesses talk to, so every SuperNode on one machine needs its own port.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from federation.deployment.app_guard import consortium_app_hash, read_approved, write_approved
from federation.deployment.certs import PARTNER_ID_PATTERN, ConsortiumCredentials
from federation.deployment.processes import (
    ManagedProcess,
    flower_env,
    flower_executable,
    free_port,
    wait_until,
)
from pipelines.errors import InputError
from pipelines.partner_data import NodeDataSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SuperLinkSpec:
    """Where and how the consortium's SuperLink runs."""

    run_dir: Path
    """Folder for the SuperLink's FLWR_HOME, state database and log."""
    credentials: ConsortiumCredentials
    host: str = "127.0.0.1"
    """Address the HTTPS API binds to (0.0.0.0 to accept partners from other machines)."""
    port: int = 0
    """HTTPS port for Fleet + Control + Runtime APIs; 0 picks a free one."""
    node_auth: bool = True
    """Only registered SuperNode public keys may connect."""
    operator_port: int = 0
    """Port of the operator-only listener on 127.0.0.1 (Control + Runtime API); 0 picks a free one."""
    lock_control: bool = True
    """Serve the Control/Runtime API on the operator listener only (``locked_superlink``); False runs
    plain ``flower-superlink`` (every API on the public port: anyone with ``ca.crt`` can submit runs)."""

    @property
    def client_host(self) -> str:
        """Host that local clients (the CLI, tests) use to reach the SuperLink."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host


@dataclass(frozen=True, slots=True)
class SuperNodeSpec:
    """One partner's SuperNode."""

    partner: str
    superlink: str
    """SuperLink address as host:port."""
    ca_cert: Path
    """CA certificate that signed the SuperLink's TLS certificate."""
    private_key: Path | None
    """The partner's OpenSSH EC private key (None: no node authentication)."""
    data_path: Path
    """The partner's private table; handed to the ClientApp as node config ``data-path``."""
    run_dir: Path
    """Folder for this node's FLWR_HOME and log."""
    extra_node_config: tuple[tuple[str, str | int | float], ...] = ()
    runtime_port: int = 0
    """Local port of the node's Runtime API on 127.0.0.1 (0: a free one)."""
    max_retries: int | None = None
    """How often to retry connecting before giving up (None: forever)."""
    data_settings: NodeDataSettings | None = None
    """Consortium catalog, endpoint mapping and fold secret the ClientApp prepares the table with."""
    audit_dir: Path | None = None
    """The node's audit log folder (None: ``<run_dir>/nodes/<partner>/audit``)."""
    approved_apps: Path | None = None
    """A file of further FAB hashes this node runs (the consortium app's hash is always approved)."""
    extra_approved: tuple[str, ...] = ()
    """More approved FAB hashes (tests approve their fixture app this way)."""
    private_heads_only: bool = False
    """Refuse shared-heads runs: this partner's heads never leave its node (``node start --private-heads-only``)."""
    share_counts: bool = False
    """Send the consortium this node's accepted / rejected row counts per reason (stats stage; off by default)."""
    warm_clientapp: bool = False
    """Run each message's ``flwr-clientapp`` as a fork of a pre-imported process
    (``federation.deployment.warm_clientapp``) instead of a fresh interpreter."""


def _https_ok(url: str, ca_cert: Path, timeout: float = 1.0) -> bool:
    ctx = ssl.create_default_context(cafile=str(ca_cert))
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:  # noqa: S310
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def superlink_healthy(address: str, ca_cert: Path) -> bool:
    """True when the SuperLink answers ``/health`` over TLS verified against ``ca_cert``."""
    return _https_ok(f"https://{address}/health", ca_cert)


def start_superlink(spec: SuperLinkSpec, startup_timeout: float = 60.0) -> tuple[ManagedProcess, str, str]:
    """Start the SuperLink with TLS (and node authentication) and wait until healthy.

    Returns the process, the public address ``host:port`` (partners' Fleet API) and the operator's
    address (Control API; the same as the public one when ``lock_control`` is off)."""
    creds = spec.credentials
    port = spec.port or free_port(spec.client_host)
    home = spec.run_dir / "superlink"
    operator_port = spec.operator_port or free_port("127.0.0.1")
    launcher = ([sys.executable, "-m", "federation.deployment.locked_superlink", "--operator-port",
                 str(operator_port), "--"] if spec.lock_control else [flower_executable("flower-superlink")])
    command = [
        *launcher,
        "--ssl-ca-certfile", str(creds.ca_cert),
        "--ssl-certfile", str(creds.server_cert),
        "--ssl-keyfile", str(creds.server_key),
        "--isolation", "subprocess",
        "--database", str(home / "state.db"),
        "--host", spec.host,
        "--port", str(port),
        "--disable-runtime-dependency-installation",
    ]
    if spec.node_auth:
        command.append("--enable-supernode-auth")
    proc = ManagedProcess("superlink", command, home / "superlink.log", env=flower_env(home / "flwr-home"))
    proc.start(cwd=home)
    address = f"{spec.client_host}:{port}"
    try:
        wait_until(lambda: superlink_healthy(address, creds.ca_cert), startup_timeout,
                   f"the SuperLink at {address}", abort=proc.exit_reason)
    except (TimeoutError, RuntimeError):
        proc.stop()
        raise
    operator = f"127.0.0.1:{operator_port}" if spec.lock_control else address
    if spec.lock_control:
        wait_until(lambda: superlink_healthy(operator, creds.ca_cert), startup_timeout,
                   f"the SuperLink's operator listener at {operator}", abort=proc.exit_reason)
    log.info("SuperLink ready at %s (TLS%s; Control API %s)", address,
             ", node authentication" if spec.node_auth else "",
             f"on {operator} only" if spec.lock_control else "on the public port")
    return proc, address, operator


def node_work_dir(spec: SuperNodeSpec) -> Path:
    """The node-local folder the ClientApp keeps private state in (heads, feature cache, bundle)."""
    return (spec.run_dir / "nodes" / spec.partner / "work").resolve()


def node_audit_dir(spec: SuperNodeSpec) -> Path:
    return (spec.audit_dir or spec.run_dir / "nodes" / spec.partner / "audit").resolve()


def _node_config_arg(spec: SuperNodeSpec) -> str:
    """``--node-config`` for the ClientApp: ``partner-id``, ``data-path``, ``work-dir``, ``audit-dir``,
    the data-preparation files (``catalog``, ``endpoint-map``, ``fold-secret-file``) (+ extras)."""
    pairs: list[tuple[str, str | int | float]] = [
        ("partner-id", spec.partner),
        ("data-path", str(spec.data_path.resolve())),
        ("work-dir", str(node_work_dir(spec))),
        ("audit-dir", str(node_audit_dir(spec))),
    ]
    if spec.share_counts:
        pairs.append(("share-counts", 1))
    if spec.private_heads_only:
        pairs.append(("private-heads-only", 1))
    settings = spec.data_settings
    if settings is not None:
        for key, path in (("catalog", settings.catalog_path), ("endpoint-map", settings.endpoint_map_path),
                          ("fold-secret-file", settings.fold_secret_path)):
            if path is not None:
                pairs.append((key, str(Path(path).resolve())))
    extra_keys = {k for k, _ in spec.extra_node_config}
    pairs = [(k, v) for k, v in pairs if k not in extra_keys] + list(spec.extra_node_config)
    parts = []
    for key, value in pairs:
        if isinstance(value, str):
            if '"' in value:
                raise InputError(f"node config value for {key!r} may not contain '\"': {value!r}")
            parts.append(f'{key}="{value}"')
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def start_supernode(spec: SuperNodeSpec) -> ManagedProcess:
    """Start ``flower-supernode`` for one partner (TLS to the SuperLink, signed with its key)."""
    if not PARTNER_ID_PATTERN.match(spec.partner):
        raise InputError(f"invalid partner id {spec.partner!r}")
    if not spec.data_path.exists():
        raise InputError(f"partner data not found: {spec.data_path}")
    if spec.private_key is not None and not spec.private_key.is_file():
        raise InputError(f"SuperNode private key not found: {spec.private_key}")
    if not Path(spec.ca_cert).is_file():
        raise InputError(f"CA certificate not found: {spec.ca_cert}")
    home = spec.run_dir / "nodes" / spec.partner
    approved = [consortium_app_hash(), *spec.extra_approved]
    if spec.approved_apps is not None:
        approved += read_approved(spec.approved_apps)
    approved_file = write_approved(home / "approved_apps.txt", approved)
    command = [
        sys.executable, "-m", "federation.deployment.app_guard",
        "--approved", str(approved_file), "--partner", spec.partner,
        "--audit", str(node_audit_dir(spec) / f"{spec.partner}.jsonl"),
        "--",
        "--superlink", spec.superlink,
        "--root-certificates", str(Path(spec.ca_cert).resolve()),
        "--node-config", _node_config_arg(spec),
        "--isolation", "subprocess",
        "--host", "127.0.0.1",
        "--port", str(spec.runtime_port or free_port()),
    ]
    if spec.private_key is not None:
        command += ["--auth-supernode-private-key", str(Path(spec.private_key).resolve())]
    if spec.max_retries is not None:
        command += ["--max-retries", str(spec.max_retries)]
    env = flower_env(home / "flwr-home")
    if spec.warm_clientapp:
        from federation.deployment.warm_clientapp import SOCKET_ENV, private_socket_path, write_shim

        shim_dir = write_shim(home / "bin").parent
        env.update({SOCKET_ENV: str(private_socket_path()), "PATH": f"{shim_dir}{os.pathsep}{env['PATH']}"})
    proc = ManagedProcess(f"supernode {spec.partner}", command, home / "supernode.log", env=env)
    return proc.start(cwd=home)


@dataclass(frozen=True, slots=True)
class ConsortiumState:
    """What ``consortium start`` leaves behind so ``run``/``stop`` find the SuperLink."""

    superlink_address: str
    superlink_pid: int
    ca_cert: str
    credentials_dir: str
    flwr_home: str
    """FLWR_HOME of the operator's CLI (holds the connection named ``consortium``)."""
    node_ids: dict[str, int]
    """partner -> SuperNode id assigned at registration."""
    operator_address: str = ""
    """Where the operator's CLI reaches the Control API (127.0.0.1 only; empty: the public address)."""

    def write(self, run_dir: Path) -> Path:
        path = run_dir / "consortium.json"
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    @staticmethod
    def read(run_dir: Path) -> ConsortiumState:
        path = Path(run_dir) / "consortium.json"
        if not path.is_file():
            raise InputError(f"no consortium.json in {run_dir}: start one with `fedadmet consortium start`")
        return ConsortiumState(**json.loads(path.read_text()))
