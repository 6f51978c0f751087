"""Deployment Engine, real processes on 127.0.0.1: one ``flower-superlink`` with TLS and SuperNode
authentication, three ``flower-supernode`` partners, a tiny linear-regression Flower app.

Known answer: every partner's rows follow y = x @ W_TRUE (+ small noise), so FedAvg must land on
W_TRUE. The fixture app is small on purpose; the ADMET app runs in test_deployment_admet.py.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from _deployment_harness import FIXTURE_APP, Consortium, make_consortium

from federation.deployment.consortium import run_federation

pytestmark = pytest.mark.slow

W_TRUE = np.array([1.0, -2.0, 0.5, 3.0])
PARTNERS = ["partner_00", "partner_01", "partner_02"]


def _write_partner_data(folder: Path, seed: int, n: int = 60) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=seed * 0.3, size=(n, len(W_TRUE)))  # partners differ in their x range
    y = x @ W_TRUE + 0.01 * rng.normal(size=n)
    path = folder / f"data_{seed}.csv"
    np.savetxt(path, np.c_[x, y], delimiter=",", header="x1,x2,x3,x4,y", comments="")
    return path


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("consortium")
    cons = make_consortium(run_dir, [*PARTNERS, "rogue_99"])
    try:
        data = {p: _write_partner_data(run_dir, i) for i, p in enumerate(PARTNERS)}
        cons.data = data  # type: ignore[attr-defined]
        for p in PARTNERS:
            cons.start_node(p, data[p])
        cons.wait_online(PARTNERS)
        yield cons
    finally:
        leftovers = cons.close()
        assert not leftovers, f"processes left running: {leftovers}"


def _fresh_nodes(cons: Consortium) -> None:
    """Restart any partner node a previous test killed."""
    for p in PARTNERS:
        if not cons.nodes[p].alive():
            cons.nodes[p].stop()
            cons.start_node(p, cons.data[p])  # type: ignore[attr-defined]
    cons.wait_online(PARTNERS)


def test_superlink_speaks_only_verified_tls(consortium: Consortium, tmp_path: Path):
    host, port = consortium.state.superlink_address.split(":")
    # Verified against the consortium CA: fine.
    ctx = ssl.create_default_context(cafile=str(consortium.creds.ca_cert))
    with urllib.request.urlopen(f"https://{host}:{port}/health", context=ctx, timeout=5) as resp:
        assert resp.status == 200
    # Plain HTTP is not served.
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(f"http://{host}:{port}/health", timeout=5)
    # A client trusting only the system CAs rejects the consortium's self-made certificate.
    with pytest.raises(urllib.error.URLError) as err:
        urllib.request.urlopen(f"https://{host}:{port}/health",
                               context=ssl.create_default_context(), timeout=5)
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)


def test_two_rounds_complete_over_tls_with_node_auth(consortium: Consortium, tmp_path: Path):
    _fresh_nodes(consortium)
    outcome = run_federation(consortium.run_dir, FIXTURE_APP,
                             {"num-server-rounds": 2, "min-nodes": 3, "local-steps": 30},
                             out_dir=tmp_path / "out", timeout=240)
    assert outcome.completed, outcome.status
    report = outcome.report
    assert report["rounds"] == 2
    assert [h["partners"] for h in report["history"]] == [PARTNERS, PARTNERS]
    assert report["missing_partners"] == []
    assert np.allclose(report["weights"], W_TRUE, atol=0.05), report["weights"]
    # The resolved submission is written next to the outputs.
    written = json.loads((tmp_path / "out" / "deployment_run_config.json").read_text())
    assert written["run_config"]["num-server-rounds"] == 2


def test_unregistered_node_is_refused(consortium: Consortium):
    """A SuperNode signing with a key the operator never registered cannot join."""
    before = consortium.online_node_ids()
    rogue_key = consortium.creds.partner("rogue_99").private_key
    rogue = consortium.start_node("rogue_99", consortium.data["partner_00"], key=rogue_key,  # type: ignore[attr-defined]
                                  max_retries=1)
    deadline = time.monotonic() + 60
    while rogue.alive() and time.monotonic() < deadline:
        time.sleep(0.5)
    log_text = rogue.log_path.read_text(errors="replace")
    rogue.stop()
    assert rogue.popen.returncode not in (None, 0), "the rogue SuperNode kept running"
    assert "rogue_99" not in consortium.state.node_ids
    assert consortium.online_node_ids() == before
    assert "Failed to activate SuperNode" in log_text, log_text[-2000:]
    superlink_log = consortium.superlink.log_path.read_text(errors="replace")
    assert "No SuperNode found with the given public key" in superlink_log


def test_dropout_mid_run_then_resume_from_checkpoint(consortium: Consortium, tmp_path: Path):
    _fresh_nodes(consortium)
    out = tmp_path / "out"
    outcome = None
    # The ServerApp pauses after round 1's checkpoint; partner_02 crashes (SIGKILL) then.
    import threading

    def kill_after_round_one() -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if (out / "checkpoint.npz").exists():
                consortium.nodes["partner_02"].kill_hard()
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_after_round_one, daemon=True)
    killer.start()
    outcome = run_federation(
        consortium.run_dir, FIXTURE_APP,
        {"num-server-rounds": 2, "min-nodes": 2, "round-timeout": 20.0, "round-pause": 4.0},
        out_dir=out, timeout=240,
    )
    killer.join(timeout=5)
    assert not consortium.nodes["partner_02"].alive()
    assert outcome.completed, outcome.status
    report = outcome.report
    assert report["rounds"] == 2
    assert report["history"][0]["partners"] == PARTNERS
    assert report["history"][1]["partners"] == ["partner_00", "partner_01"]
    assert report["missing_partners"] == ["partner_02"]

    # The checkpoint is intact: round 2, finite weights equal to the report's.
    with np.load(out / "checkpoint.npz") as ckpt:
        assert int(ckpt["round"]) == 2
        w2 = ckpt["w"].copy()
    assert np.all(np.isfinite(w2)) and np.allclose(w2, report["weights"])

    # Resume: the run continues at round 3 from the checkpoint, with the two remaining partners.
    resumed = run_federation(
        consortium.run_dir, FIXTURE_APP,
        {"num-server-rounds": 3, "min-nodes": 2, "round-timeout": 20.0, "resume": True},
        out_dir=out, timeout=240,
    )
    assert resumed.completed, resumed.status
    rounds = [h["round"] for h in resumed.report["history"]]
    assert rounds == [1, 2, 3]
    assert resumed.report["history"][2]["partners"] == ["partner_00", "partner_01"]
    with np.load(out / "checkpoint.npz") as ckpt:
        assert int(ckpt["round"]) == 3
