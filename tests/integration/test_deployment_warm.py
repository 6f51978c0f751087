"""The warm ClientApp launcher (``node start --warm-clientapp``) on real processes on 127.0.0.1.

Three SuperNodes with ``warm_clientapp=True`` behind the app guard; partner_02 approves only the
consortium app. The tests' linear-regression fixture app (known answer: y = x @ W_TRUE) must train to
W_TRUE on the two approving nodes with every message's ClientApp forked from the node's pre-imported
launcher, and partner_02 must still refuse the app (audited, no ClientApp started for that run): the
launcher sits after the guard, not around it. Every process (zygotes and their forks included) is
gone after the consortium stops.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from _deployment_harness import FIXTURE_APP, fixture_app_hash, make_consortium

from federation.deployment.consortium import run_federation
from federation.deployment.warm_clientapp import SOCKET_ENV

pytestmark = pytest.mark.slow

W_TRUE = np.array([1.0, -2.0, 0.5, 3.0])
PARTNERS = ["partner_00", "partner_01", "partner_02"]
FORKED = "handed to forked process"
READY = "warm ClientApp launcher ready"


def _data(folder: Path, seed: int, n: int = 60) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=seed * 0.3, size=(n, len(W_TRUE)))
    path = folder / f"data_{seed}.csv"
    np.savetxt(path, np.c_[x, x @ W_TRUE + 0.01 * rng.normal(size=n)], delimiter=",", header="x1,x2,x3,x4,y",
               comments="")
    return path


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("warm")
    cons = make_consortium(run_dir, PARTNERS)
    try:
        for i, p in enumerate(PARTNERS):
            extra = {} if p != "partner_02" else {"extra_approved": ()}
            cons.start_node(p, _data(run_dir, i), warm_clientapp=True, **extra)
        cons.wait_online(PARTNERS)
        deadline = time.monotonic() + 180  # the launchers import torch & co. once; until then the shim falls back
        while time.monotonic() < deadline and not all(
                READY in cons.nodes[p].log_path.read_text(errors="replace") for p in PARTNERS):
            time.sleep(1.0)
        yield cons
    finally:
        leftovers = cons.close()
        assert not leftovers, f"processes left running: {leftovers}"


def test_warm_nodes_train_to_the_known_answer_and_the_guard_still_refuses(consortium, tmp_path):
    cons = consortium
    for p in PARTNERS:
        assert SOCKET_ENV in cons.nodes[p].env
        assert Path(cons.nodes[p].env["PATH"].split(":")[0], "flwr-clientapp").is_file()
    outcome = run_federation(cons.run_dir, FIXTURE_APP, {"num-server-rounds": 2, "min-nodes": 2, "local-steps": 30,
                                                         "round-timeout": 60.0},
                             out_dir=tmp_path / "out", timeout=300)
    assert outcome.completed, outcome.status
    report = outcome.report
    assert [h["partners"] for h in report["history"]] == [PARTNERS[:2], PARTNERS[:2]]
    assert np.allclose(report["weights"], W_TRUE, atol=0.05), report["weights"]
    for p in PARTNERS[:2]:  # every message of theirs ran in a fork of the pre-imported launcher
        log = cons.nodes[p].log_path.read_text(errors="replace")
        assert READY in log
        assert log.count(FORKED) >= 2, log[-3000:]
    refusing = cons.nodes["partner_02"]
    audit = cons.run_dir / "nodes" / "partner_02" / "audit" / "partner_02.jsonl"
    refused = [r for r in map(json.loads, audit.read_text().splitlines()) if r.get("event") == "refused_app"]
    assert refused and refused[0]["run_id"] == outcome.run_id and refused[0]["fab_hash"] == fixture_app_hash()
    assert FORKED not in refusing.log_path.read_text(errors="replace")  # no ClientApp ever started there
    assert refusing.alive()
