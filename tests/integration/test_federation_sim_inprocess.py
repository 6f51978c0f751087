"""The real ServerApp / ClientApp logic and the real SecAgg+ protocol, messages passed in process.

``federation.local_grid.SequentialGrid`` stands in for Flower's transport only (it copies each
message, as the wire would, and calls the destination node's ClientApp with its persistent Context);
everything else is the project's Flower code with real featurization and torch training.
It complements ``test_federation_sim.py`` (Ray backend), which is slower to start.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Context, RecordDict

from admet.bundle import load_bundle
from federation import partners as partners_mod
from federation import report as report_mod
from federation.client_app import NodeSettings, make_client_app
from federation.config import FederatedConfig
from federation.local_grid import SequentialGrid
from federation.run import warm_feature_cache
from federation.secagg import make_secagg_apps, run_secagg_server
from federation.server_app import run_server

pytestmark = pytest.mark.slow

SLICE = dict(n_partners=4, rounds=2, local_epochs=1, hidden=(64,), endpoints=("HLM_CLint", "RLM_CLint", "solubility"),
             max_rows=1500, alpha=1.0, seed=0)


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    out = tmp_path_factory.mktemp("fed_inproc")
    cfg = FederatedConfig(out_dir=out / "base", **SLICE)
    partners_dir = partners_mod.prepare_partners(cfg)
    warm_feature_cache(cfg, partners_dir)
    return out, partners_dir, cfg.cache_dir


def _settings(out: Path, partners_dir: Path, cache: Path, **kw) -> NodeSettings:
    return NodeSettings(partners_dir=partners_dir, work_root=out / "nodes", cache_dir=cache, audit_dir=out / "audit", **kw)


def test_message_api_round_trip_with_a_nan_partner(consortium):
    root, partners_dir, cache = consortium
    out = root / "shared"
    cfg = FederatedConfig(out_dir=out, partners_dir=partners_dir, cache_dir=cache, heads="shared",
                          poison_partners=("partner_01",), poison_scale=float("nan"), **SLICE)
    app = make_client_app(_settings(out, partners_dir, cache, poison_partners=cfg.poison_partners,
                                    poison_scale=cfg.poison_scale))
    outcome = run_server(SequentialGrid(app, 4), cfg)
    rep = report_mod.build_report(outcome)
    assert [r["partner"] for r in rep["rejections"]] == ["partner_01", "partner_01"]
    assert all(r["reason"].startswith("non_finite") for r in rep["rejections"])
    assert {p["partner"] for p in rep["partners"]} == {f"partner_0{i}" for i in range(4)}
    assert len(list((out / "checkpoints").glob("round_*.npz"))) == 2
    bundle = load_bundle(out / "global_bundle")
    preds = bundle.predict_smiles(["CCOc1ccc2nc(S(N)(=O)=O)sc2c1", "not a smiles"])
    assert preds.loc[0, "status"] == "ok" and np.isfinite(preds.loc[0, "solubility"])
    assert preds.loc[1, "status"] == "rejected"
    # heads travel in shared mode: every train reply holds trunk + head arrays, still nothing else
    for line in (out / "audit" / "partner_00.jsonl").read_text().splitlines():
        msg = json.loads(line)
        if msg["message_type"] == "train":
            (arrays,) = msg["arrays"].values()
            assert any(k.startswith("head.") for k in arrays) and any(k.startswith("trunk.") for k in arrays)


def test_resume_continues_from_the_checkpoint(consortium):
    root, partners_dir, cache = consortium
    out = root / "resume"
    first = FederatedConfig(out_dir=out, partners_dir=partners_dir, cache_dir=cache, **{**SLICE, "rounds": 1})
    run_server(SequentialGrid(make_client_app(_settings(out, partners_dir, cache)), 4), first)
    again = FederatedConfig(out_dir=out, partners_dir=partners_dir, cache_dir=cache, resume=True, **SLICE)
    outcome = run_server(SequentialGrid(make_client_app(_settings(out, partners_dir, cache)), 4), again)
    assert outcome["resumed_from"] == 1
    assert [r["round"] for r in outcome["round_log"]] == [2]
    assert sorted(p.name for p in (out / "checkpoints").glob("round_*.npz")) == ["round_001.npz", "round_002.npz"]


def test_secagg_server_only_sees_the_aggregate(consortium):
    root, partners_dir, cache = consortium
    out = root / "secagg"
    cfg = FederatedConfig(out_dir=out, partners_dir=partners_dir, cache_dir=cache, secagg=True, **SLICE)
    _, client = make_secagg_apps(cfg, _settings(out, partners_dir, cache))
    context = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={})
    outcome = run_secagg_server(SequentialGrid(client, 4), context, cfg)
    assert outcome["secagg"] is True
    assert outcome["secagg_distinct_updates_seen_by_server"] == [1, 1]  # every result = the aggregate
    assert [r["round"] for r in outcome["round_log"]] == [1, 2]
    assert len(outcome["partners"]) == 4
    assert all(np.isfinite(p["metric"]) or np.isnan(p["metric"]) for p in outcome["partners"].values())
    with np.load(out / "global_model.npz") as z:
        assert all(k.startswith("trunk.") for k in z["keys"])


def test_dp_clips_every_update_and_reports_the_parameters(consortium):
    root, partners_dir, cache = consortium
    out = root / "dp"
    cfg = FederatedConfig(out_dir=out, partners_dir=partners_dir, cache_dir=cache, dp_clip=0.5, dp_noise=0.2, **SLICE)
    outcome = run_server(SequentialGrid(make_client_app(_settings(out, partners_dir, cache)), 4), cfg)
    norms = [n for r in outcome["round_log"] for n in r["norms"].values()]
    assert len(norms) == 8 and max(norms) <= 0.5 * (1 + 1e-4)  # what reached the server was clipped
    rep = report_mod.build_report(outcome)
    assert rep["privacy"]["differential_privacy"] == {"clipping_norm": 0.5, "noise_multiplier": 0.2}
    with np.load(out / "global_model.npz") as z:
        assert all(np.all(np.isfinite(z[f"a{i:04d}"])) for i in range(len(z["keys"])))
