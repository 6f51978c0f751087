"""The consortium's real ADMET app (federation.server_app / client_app) on the Deployment Engine:
one SuperLink (TLS + SuperNode authentication) and three SuperNodes on 127.0.0.1, each pointed at
its own partner folder of a small slice of the embedded catalog; 2 rounds; the report is written.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from _deployment_harness import make_consortium
from flwr.app import Array

from federation.config import FederatedConfig
from federation.deployment.admet_run import run_admet_on_consortium
from federation.partners import prepare_partners

pytestmark = pytest.mark.slow

PARTNERS = ["partner_00", "partner_01", "partner_02"]


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    """A consortium with three SuperNodes; each node logs what leaves it under ``audit/``."""
    root = tmp_path_factory.mktemp("admet_deploy")
    # ~150-190 molecules per partner (300 catalog rows gave 15-40 since the catalog holds many endpoints,
    # too few test rows for any score)
    partners_dir = prepare_partners(FederatedConfig(out_dir=root / "partition", n_partners=3, max_rows=1200,
                                                    endpoints=("HLM_CLint", "RLM_CLint", "solubility"), seed=0))
    cons = make_consortium(root / "consortium", PARTNERS)
    try:
        for p in PARTNERS:
            cons.start_node(p, partners_dir / p, extra_node_config=(("audit-dir", str(root / "audit")),),
                            share_counts=(p == PARTNERS[0]))  # one partner opts in to sharing its counts
        cons.wait_online(PARTNERS)
        yield cons, root
    finally:
        leftovers = cons.close()
        assert not leftovers, f"processes left running: {leftovers}"


@pytest.fixture(scope="module")
def admet_run(nodes):
    cons, root = nodes
    # MELLODDY mode, asked for: this module checks that only the trunk travels (the plain default is
    # shared heads; test_deployment_admet_dropout.py runs the default on the same engine)
    cfg = FederatedConfig(out_dir=root / "out", n_partners=3, rounds=2, local_epochs=1, hidden=(32,),
                          min_partners=3, baselines=False, seed=0, heads="private")
    lines: list[str] = []
    result = run_admet_on_consortium(cons.run_dir, cfg, timeout=900, on_line=lines.append)
    return result, cons, lines


@pytest.fixture(scope="module")
def secagg_run(nodes):
    cons, root = nodes
    cfg = FederatedConfig(out_dir=root / "out_secagg", n_partners=3, rounds=1, local_epochs=1, hidden=(32,),
                          min_partners=3, baselines=False, seed=0, secagg=True)
    result = run_admet_on_consortium(cons.run_dir, cfg, timeout=900)
    return result, root / "audit"


def test_two_rounds_of_the_admet_app_complete(admet_run):
    result, _, lines = admet_run
    assert result.outcome.completed, result.outcome.status
    report = result.report
    assert report["rounds"] == 2
    assert [r["round"] for r in report["round_log"]] == [1, 2]
    for rnd in report["round_log"]:
        assert sorted(rnd["accepted"]) == PARTNERS
        assert rnd["failed"] == [] and rnd["rejected"] == []
    assert report["deployment"]["missing_partners"] == []
    assert report["deployment"]["registered_partners"] == PARTNERS
    assert any("ServerApp" in line or "ROUND" in line for line in lines), "no progress was streamed"


def test_report_has_the_stable_keys_and_per_partner_scores(admet_run):
    result, _, _ = admet_run
    on_disk = json.loads((result.outcome.out_dir / "report.json").read_text())
    assert on_disk["deployment"]["run_id"] == result.outcome.run_id
    for key in ("strategy", "rounds", "bytes_per_round", "partners"):
        assert key in on_disk
    assert [p["partner"] for p in on_disk["partners"]] == PARTNERS
    scored = 0
    for row in on_disk["partners"]:
        assert {"partner", "metric", "local", "federated", "pooled", "n_train", "n_test", "endpoints"} <= set(row)
        assert row["n_train"] > 0
        if row["federated"] is not None:
            assert -1.0 <= row["federated"] <= 1.0 and math.isfinite(row["federated"])
            scored += 1
    assert scored >= 1
    assert (result.outcome.out_dir / "report.md").exists()


def test_only_the_trunk_travels_and_heads_stay_on_the_nodes(admet_run):
    result, cons, _ = admet_run
    report = result.report
    latest = json.loads((result.outcome.out_dir / "checkpoints" / "latest.json").read_text())
    # private-heads mode: the global model (what the server holds and sends) is the trunk only
    assert latest["keys"] and not any("head" in k for k in latest["keys"]), latest["keys"]
    with np.load(result.outcome.out_dir / "checkpoints" / latest["file"]) as z:
        wire = sum(len(Array(np.ascontiguousarray(z[f"a{i:04d}"])).data) for i in range(len(latest["keys"])))
    n = len(PARTNERS)
    for rnd in report["round_log"]:  # measured message sizes: the trunk up once, down twice (train, evaluate)
        assert n * wire < rnd["bytes_up"] < 1.2 * n * wire + 200_000
        assert rnd["bytes_down"] > 2 * n * wire
    # What each node actually sent (its audit of outgoing replies): trunk arrays and scalars only.
    with np.load(result.outcome.out_dir / "checkpoints" / latest["file"]) as z:
        shapes = {k: list(z[f"a{i:04d}"].shape) for i, k in enumerate(latest["keys"])}
    audit = cons.run_dir.parent / "audit"
    for p in PARTNERS:
        entries = [json.loads(line) for line in (audit / f"{p}.jsonl").read_text().splitlines()]
        train = [e for e in entries if e["message_type"] == "train" and e["run_id"] == result.outcome.run_id]
        assert len(train) == 2, f"{p}: expected one training reply per round"
        for e in train:
            sent = {k: v["shape"] for rec in e["arrays"].values() for k, v in rec.items()}
            assert sent == shapes, f"{p} sent {sorted(sent)}"
            assert all(t in ("int", "float") for rec in e["metrics"].values() for t in rec.values())
    for p in PARTNERS:
        heads = cons.run_dir / "nodes" / p / "work" / "private_heads.npz"
        assert heads.exists(), f"{p} kept no private heads on its node"
        with np.load(heads) as z:
            names = [str(k) for k in z["keys"]]
            arrays = [z[f"a{i:04d}"] for i in range(len(names))]
        assert names and all(n.startswith("head") for n in names), names
        assert all(np.isfinite(a).all() for a in arrays)


def test_server_checkpoint_of_the_last_round_is_intact(admet_run):
    result, _, _ = admet_run
    folder = result.outcome.out_dir / "checkpoints"
    latest = json.loads((folder / "latest.json").read_text())
    assert latest["round"] == 2
    with np.load(folder / latest["file"]) as z:
        arrays = [z[f"a{i:04d}"] for i in range(len(latest["keys"]))]
    assert sum(a.nbytes for a in arrays) == result.report["model_bytes"]
    assert all(np.isfinite(a).all() for a in arrays)


QUANTIZATION_RANGE = 2**22  # Flower's SecAgg+ default: unmasked quantized values lie in [0, 2**22)


def test_secagg_partners_only_send_masked_vectors(secagg_run):
    """With SecAgg+ on, no partner's training reply holds a model array: what leaves each node
    is the trunk quantized and masked over [0, 2**32), so the server can only recover the sum."""
    result, audit = secagg_run
    assert result.outcome.completed, result.outcome.status
    assert result.report["privacy"]["secure_aggregation"] is True
    assert result.report["deployment"]["missing_partners"] == []
    latest = json.loads((result.outcome.out_dir / "checkpoints" / "latest.json").read_text())
    with np.load(result.outcome.out_dir / "checkpoints" / latest["file"]) as z:
        trunk = [z[f"a{i:04d}"] for i in range(len(latest["keys"]))]
    assert latest["round"] == 1 and all(np.isfinite(a).all() for a in trunk)
    for p in PARTNERS:
        entries = [json.loads(line) for line in (audit / f"{p}.jsonl").read_text().splitlines()]
        entries = [e for e in entries if e["run_id"] == result.outcome.run_id]  # one log per node, all runs
        train = [e for e in entries if e["message_type"] == "train"]
        assert train, f"{p} logged no training replies"
        # Flower's legacy FitRes keeps an ArrayRecord name, but SecAgg+ leaves it without arrays
        assert all(not rec for e in train for rec in e["arrays"].values()), f"{p} sent model arrays in the clear"
        uploads = [e["masked_upload"] for e in train if "masked_upload" in e]
        assert len(uploads) == 1, f"{p}: expected one masked upload in one round, got {len(uploads)}"
        vectors = uploads[0]
        # the first masked vector carries the weight factor, then one vector per trunk array
        assert [v["shape"] for v in vectors[-len(trunk):]] == [list(a.shape) for a in trunk]
        for v in vectors[-len(trunk):]:
            assert "int" in v["dtype"], v
            assert v["min"] >= 0 and v["max"] >= QUANTIZATION_RANGE, f"{p}: vector not masked: {v}"


def test_the_grid_sees_every_message_on_the_deployment_engine(admet_run, secagg_run):
    """MeteredGrid on the real transport: a plain round is one train and one evaluate exchange, a
    SecAgg+ round its four protocol stages, each with one message per partner each way; the bytes
    of the round log are exactly those exchanges' bytes."""
    from flwr.common.secure_aggregation.secaggplus_constants import Stage as SecAggStage

    n = len(PARTNERS)
    plain = json.loads((admet_run[0].outcome.out_dir / "federation_result.json").read_text())
    secagg = json.loads((secagg_run[0].outcome.out_dir / "federation_result.json").read_text())
    stages = [f"train:{s}" for s in SecAggStage.all()]
    assert [e["kind"] for e in plain["traffic"]] == ["query.stats", *["train", "evaluate"] * 2, "query.report"]
    assert [e["kind"] for e in secagg["traffic"]] == ["query.stats", "query.setup", *stages, "query.report"]
    for entry in plain["traffic"] + secagg["traffic"]:
        assert (entry["messages_down"], entry["messages_up"], entry["errors_up"]) == (n, n, 0), entry
    rounds = [plain["traffic"][1:3], plain["traffic"][3:5], secagg["traffic"][2:6]]
    for rnd, exchanges in zip(plain["round_log"] + secagg["round_log"], rounds, strict=True):
        assert rnd["bytes_down"] == sum(e["bytes_down"] for e in exchanges)
        assert rnd["bytes_up"] == sum(e["bytes_up"] for e in exchanges)
    assert secagg["round_log"][0]["bytes_up"] > 1.5 * plain["round_log"][0]["bytes_up"]
    # node start --share-counts on partner_00 only: its preparation counts reach the server, nobody else's
    for outcome in (plain, secagg):
        assert list(outcome["preparation_counts"]) == [PARTNERS[0]]
        counts = outcome["preparation_counts"][PARTNERS[0]]
        assert counts["n-input"] == counts["n-accepted"] + counts["n-rejected"] > 0


def test_a_partner_blends_its_federated_model_on_its_node(admet_run, tmp_path):
    """After the deployment run, ``fedadmet node blend`` on one node's work folder (its federated bundle
    and prepared table, as the ClientApp left them) writes a blended bundle that predicts SMILES."""
    from typer.testing import CliRunner

    from admet.bundle import load_bundle
    from federation.blend_bundle import BUNDLE_DIR, SUMMARY_FILE
    from flows.cli import app

    _, cons, _ = admet_run
    partner = PARTNERS[1]
    work = cons.run_dir / "nodes" / partner / "work"
    data = cons.run_dir.parent / "partition" / "partners" / partner
    res = CliRunner().invoke(app, ["node", "blend", "--data", str(data), "--work", str(work), "--ensemble", "1"])
    assert res.exit_code == 0, res.output
    bundle = load_bundle(work / BUNDLE_DIR)
    summary = json.loads((work / BUNDLE_DIR / SUMMARY_FILE).read_text())
    assert bundle.info["partner"] == partner and set(summary["endpoints"]) == set(bundle.task_names)
    assert set(bundle.task_names) <= set(load_bundle(work / "bundle").task_names)
    pred = bundle.predict_smiles(["CCOc1ccc(CC(=O)N2CCN(C)CC2)cc1", "c1ccccc1O"])
    assert (pred["status"] == "ok").all() and np.isfinite(pred[bundle.task_names].to_numpy(float)).all()


def test_each_nodes_bundle_has_the_approved_drug_context(admet_run):
    """The bundle a node writes after the run predicts the approved drugs with its own model on the node
    (run config ``approved-context``, default on): predictions carry a finite ``E_pct_approved``."""
    from admet.bundle import load_bundle

    result, cons, _ = admet_run
    assert result.outcome.completed, result.outcome.status
    for p in PARTNERS:
        folder = cons.run_dir / "nodes" / p / "work" / "bundle"
        assert (folder / "approved.npz").is_file(), p
        bundle = load_bundle(folder)
        assert bundle.approved.n_drugs > 2000
        got = bundle.predict_smiles(["CCOc1ccc2nc(S(N)(=O)=O)sc2c1", "CC(=O)Nc1ccc(O)cc1"])
        for name in bundle.approved.sorted_predictions:
            pct = got[f"{name}_pct_approved"].to_numpy(float)
            assert np.isfinite(pct).all() and ((pct >= 0) & (pct <= 100)).all(), (p, name)
