"""The ADMET app on the Deployment Engine when a site crashes: three SuperNodes start a 2-round
run with ``min_partners=2``; partner_02 is SIGKILLed right after round 1's checkpoint. The run
finishes with the other two, the report names partner_02, the round-2 checkpoint is intact, and a
resumed 3-round run continues from it (one more round, not three).

Flower only marks a silent SuperNode offline when its heartbeat expires (about a minute), so this
test spends most of its time waiting for that; the fixture-app test in test_deployment.py checks
the same infrastructure faster with a short round timeout.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from _deployment_harness import make_consortium

from federation.config import FederatedConfig
from federation.deployment.admet_run import run_admet_on_consortium
from federation.partners import prepare_partners

pytestmark = pytest.mark.slow

PARTNERS = ["partner_00", "partner_01", "partner_02"]


def test_crashed_site_is_named_and_the_run_resumes_from_its_checkpoint(tmp_path):
    partners_dir = prepare_partners(FederatedConfig(out_dir=tmp_path / "partition", n_partners=3,
                                                    max_rows=300, seed=1))
    cons = make_consortium(tmp_path / "consortium", PARTNERS)
    try:
        for p in PARTNERS:
            cons.start_node(p, partners_dir / p)
        cons.wait_online(PARTNERS)
        out = tmp_path / "out"
        latest = out / "checkpoints" / "latest.json"

        def crash_after_round_one() -> None:
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                if latest.exists() and json.loads(latest.read_text())["round"] >= 1:
                    cons.nodes["partner_02"].kill_hard()
                    return
                time.sleep(0.2)

        killer = threading.Thread(target=crash_after_round_one, daemon=True)
        killer.start()
        # approved-drug context off: each node would featurize the ~2,600 drugs (~16 s CPU); it is
        # checked on the deployment path by test_deployment_admet.py
        base = dict(out_dir=out, n_partners=3, local_epochs=1, hidden=(32,), min_partners=2,
                    baselines=False, seed=1, approved_context=False)
        first = run_admet_on_consortium(cons.run_dir, FederatedConfig(rounds=2, **base), timeout=900)
        killer.join(timeout=5)
        assert not cons.nodes["partner_02"].alive()
        assert first.outcome.completed, first.outcome.status
        rounds = first.report["round_log"]
        assert sorted(rounds[0]["accepted"]) == PARTNERS
        assert sorted(rounds[1]["accepted"]) == ["partner_00", "partner_01"]
        assert first.report["deployment"]["missing_partners"] == ["partner_02"]
        # (federation.report's own failed_partners names the SuperLink's error reply "node-1", not
        # the partner: Flower's unavailability errors come from the SuperLink's node id.)

        pointer = json.loads(latest.read_text())
        assert pointer["round"] == 2
        with np.load(out / "checkpoints" / pointer["file"]) as z:
            assert all(np.isfinite(z[f"a{i:04d}"]).all() for i in range(len(pointer["keys"])))

        resumed = run_admet_on_consortium(cons.run_dir, FederatedConfig(rounds=3, resume=True, **base),
                                          timeout=900)
        assert resumed.outcome.completed, resumed.outcome.status
        assert resumed.report["resumed_from"] == 2
        # the resumed run keeps the earlier rounds' history and adds round 3
        assert [r["round"] for r in resumed.report["round_log"]] == [1, 2, 3]
        assert sorted(resumed.report["round_log"][0]["accepted"]) == PARTNERS
        assert sorted(resumed.report["round_log"][-1]["accepted"]) == ["partner_00", "partner_01"]
        assert json.loads(latest.read_text())["round"] == 3
        # the default heads (shared, plain mode) travelled: the checkpoint holds the heads of the
        # endpoints the two remaining partners measure
        assert first.report["heads"] == resumed.report["heads"] == "shared"
        assert any(k.startswith("head.") for k in json.loads(latest.read_text())["keys"])
    finally:
        leftovers = cons.close()
        assert not leftovers, f"processes left running: {leftovers}"
