"""Shared pieces of the deployment tests: a running consortium on 127.0.0.1 that the test owns.

Every process started here is stopped by the fixture's finalizer, and the finalizer fails the test
if any process started from the run folder is still alive afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from federation.deployment.app_guard import app_hash
from federation.deployment.certs import ConsortiumCredentials, generate_credentials
from federation.deployment.consortium import ConsortiumSpec, start_consortium, stop_consortium
from federation.deployment.control import ControlClient
from federation.deployment.nodes import ConsortiumState, SuperNodeSpec, start_supernode
from federation.deployment.processes import ManagedProcess, flower_processes_under

FIXTURE_APP = Path(__file__).parent / "deploy_fixture_app"


def fixture_app_hash() -> str:
    return app_hash(FIXTURE_APP)


@dataclass
class Consortium:
    run_dir: Path
    creds: ConsortiumCredentials
    superlink: ManagedProcess
    state: ConsortiumState
    nodes: dict[str, ManagedProcess] = field(default_factory=dict)

    @property
    def control(self) -> ControlClient:
        return ControlClient(Path(self.state.flwr_home))

    def start_node(self, partner: str, data_path: Path, key: Path | None = None,
                   **kwargs) -> ManagedProcess:
        # nodes run only approved apps: the tests' fixture app is approved besides the consortium's
        kwargs.setdefault("extra_approved", (fixture_app_hash(),))
        spec = SuperNodeSpec(
            partner=partner, superlink=self.state.superlink_address, ca_cert=self.creds.ca_cert,
            private_key=key if key is not None else self.creds.partner(partner).private_key,
            data_path=data_path, run_dir=self.run_dir, **kwargs,
        )
        proc = start_supernode(spec)
        self.nodes[partner] = proc
        return proc

    def online_node_ids(self) -> set[int]:
        return {int(n["node-id"]) for n in self.control.list_nodes() if n["status"] == "online"}

    def wait_online(self, partners: list[str], timeout: float = 90.0) -> None:
        wanted = {self.state.node_ids[p] for p in partners}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if wanted <= self.online_node_ids():
                return
            for p in partners:
                if (reason := self.nodes[p].exit_reason()) is not None:
                    raise RuntimeError(reason)
            time.sleep(1.0)
        raise TimeoutError(f"SuperNodes {partners} not all online after {timeout}s")

    def close(self) -> list[str]:
        """Stop everything; return descriptions of processes that survived (should be none)."""
        for proc in self.nodes.values():
            proc.stop()
        self.superlink.stop()
        stop_consortium(self.run_dir)
        time.sleep(0.5)
        return [f"{p.pid} {' '.join(p.cmdline())}" for p in flower_processes_under(self.run_dir)
                if p.is_running()]


def make_consortium(run_dir: Path, partners: list[str]) -> Consortium:
    creds = generate_credentials(run_dir / "certs", partners)
    registered = tuple(p for p in partners if not p.startswith("rogue"))
    superlink, state = start_consortium(ConsortiumSpec(run_dir, run_dir / "certs", partners=registered))
    return Consortium(run_dir=run_dir, creds=creds, superlink=superlink, state=state)
