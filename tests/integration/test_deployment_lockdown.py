"""The control plane is the operator's, and a node runs only apps it approved: real processes on 127.0.0.1.

A partner holds what every partner holds (``ca.crt``, its registered ``node.key``, the SuperLink's
public address). With it, Flower's own CLI cannot list nodes, register a key, submit a run or stop one:
the public listener answers only the Fleet API (``federation.deployment.locked_superlink``). The
operator's CLI, on the loopback listener, can. A node started with the default allow-list (only the
consortium app) refuses the tests' fixture app: an ``INVALID_FAB`` error reply, a ``refused_app`` line
in its audit log, and no ClientApp of that run ever answers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from _deployment_harness import FIXTURE_APP, fixture_app_hash, make_consortium

from federation.deployment.app_guard import consortium_app_hash
from federation.deployment.control import CONNECTION, ControlClient, ControlError, write_connection
from federation.deployment.nodes import node_audit_dir

pytestmark = pytest.mark.slow

PARTNERS = ["partner_00", "partner_01"]


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("lockdown")
    cons = make_consortium(run_dir, [*PARTNERS, "rogue_99"])
    try:
        x = np.random.default_rng(0).normal(size=(20, 4))
        data = run_dir / "data.csv"
        np.savetxt(data, np.c_[x, x.sum(1)], delimiter=",", header="x1,x2,x3,x4,y", comments="")
        cons.data = data  # type: ignore[attr-defined]
        yield cons
    finally:
        leftovers = cons.close()
        assert not leftovers, f"processes left running: {leftovers}"


def _partner_cli(cons, home: Path) -> ControlClient:
    """Flower's CLI configured as a partner could: the public address and ca.crt."""
    write_connection(home, cons.state.superlink_address, cons.creds.ca_cert)
    return ControlClient(home, timeout=60)


def test_a_partner_credential_cannot_use_the_control_api(consortium, tmp_path):
    cons = consortium
    assert cons.state.operator_address != cons.state.superlink_address
    partner = _partner_cli(cons, tmp_path / "partner_home")
    with pytest.raises(ControlError):
        partner.list_nodes()
    with pytest.raises(ControlError):
        partner.register_node(cons.creds.partner("rogue_99").public_key, "rogue_99")
    with pytest.raises(ControlError):
        partner.submit(FIXTURE_APP, {"out-dir": str(tmp_path / "out"), "min-nodes": 1})
    with pytest.raises(ControlError):
        partner._run("stop", "1", CONNECTION)  # noqa: SLF001 - flwr stop, checked
    with pytest.raises(ControlError):
        partner._json(partner._run("ls", CONNECTION, "--format", "json"))  # noqa: SLF001
    # nothing happened: the operator (loopback listener) still sees only the two registered partners
    operator = cons.control
    names = {n.get("name", "") for n in operator.list_nodes()}
    assert "rogue_99" not in names and len(operator.list_nodes()) == len(PARTNERS)
    log = (cons.run_dir / "superlink" / "superlink.log").read_text(errors="replace")
    assert "refused /v1/control/" in log


def test_the_node_refuses_an_unapproved_app_and_audits_it(consortium, tmp_path):
    cons = consortium
    node = cons.start_node("partner_00", cons.data, extra_approved=())  # default list: the consortium app only
    cons.wait_online(["partner_00"])
    approved = (cons.run_dir / "nodes" / "partner_00" / "approved_apps.txt").read_text()
    assert consortium_app_hash() in approved and fixture_app_hash() not in approved
    out = tmp_path / "run"
    run_id = cons.control.submit(FIXTURE_APP, {"out-dir": str(out), "min-nodes": 1, "num-server-rounds": 1,
                                               "round-timeout": 20.0})
    audit = node_audit_dir(node_spec_dir(cons, "partner_00")) / "partner_00.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not audit.exists():
        time.sleep(1.0)
    assert audit.exists(), node.tail()
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    refused = [r for r in records if r.get("event") == "refused_app"]
    assert refused and refused[0]["run_id"] == run_id
    assert refused[0]["fab_hash"] == fixture_app_hash()
    assert refused[0]["reply"]["code"] == "INVALID_FAB" and "/" not in refused[0]["reply"]["reason"]
    status = cons.control.wait(run_id, timeout=120)
    assert status.startswith("finished")
    assert "refused run" in node.tail(200)
    report = out / "report.json"
    if report.exists():  # the fixture ServerApp got no training reply from the refusing node
        assert all(not r.get("partners") for r in json.loads(report.read_text()).get("history", []))
    assert node.alive()  # refusing is not crashing


def node_spec_dir(cons, partner: str):
    """A SuperNodeSpec-like object for ``node_audit_dir`` (the harness starts nodes with defaults)."""
    from federation.deployment.nodes import SuperNodeSpec

    return SuperNodeSpec(partner=partner, superlink="", ca_cert=cons.creds.ca_cert, private_key=None,
                         data_path=cons.data, run_dir=cons.run_dir)
