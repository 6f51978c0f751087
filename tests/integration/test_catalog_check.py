"""A node trains only under the catalog the run was published with, and shares its preparation counts
only when it opts in (issue 10 §2).

The project's real ClientApp, called as Flower calls it (``federation.inprocess.SequentialGrid``), as
a Deployment-Engine node: node config ``data-path`` (a partner folder cut from the embedded catalog),
``catalog`` (the node's catalog.json) and ``audit-dir``. The run config carries the operator's
catalog SHA-256 (``FederatedConfig.catalog_sha256``, sent in every stage's config). A node whose
catalog differs (one unit changed) answers with an error naming both hashes, the reply is in its
audit log, and it prepares nothing; the same node with the operator's catalog answers normally.
"""

from __future__ import annotations

import json

import pytest
from flwr.app import ConfigRecord, Context, Message, RecordDict

from federation.client_app import app as client_app
from federation.config import FederatedConfig
from federation.inprocess import FIRST_NODE_ID, SequentialGrid
from federation.partners import prepare_partners
from federation.stage_names import Stage
from federation.stages import base_config
from pipelines.catalog import EndpointCatalog


@pytest.fixture(scope="module")
def partner(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalog_check")
    partners_dir = prepare_partners(FederatedConfig(out_dir=root / "partition", n_partners=2, max_rows=400,
                                                    endpoints=("HLM_CLint", "solubility"), seed=0))
    return root, sorted(p for p in partners_dir.iterdir() if p.is_dir())[0]


def _stats(root, folder, catalog_path, name, heads="auto", **extra):
    published = EndpointCatalog.embedded()
    cfg = FederatedConfig(out_dir=root / f"out_{name}", n_partners=2, catalog_sha256=published.sha256, heads=heads)
    grid = SequentialGrid(client_app, 1, cfg.to_run_config())
    node_config = {"data-path": str(folder), "partner-id": folder.name, "work-dir": str(root / f"work_{name}"),
                   "audit-dir": str(root / f"audit_{name}"), "catalog": str(catalog_path), **extra}
    grid.contexts[FIRST_NODE_ID] = Context(run_id=1, node_id=FIRST_NODE_ID, node_config=node_config,
                                           state=RecordDict(), run_config=cfg.to_run_config())
    msg = Message(content=RecordDict({"config": ConfigRecord(base_config(cfg))}), dst_node_id=FIRST_NODE_ID,
                  message_type=Stage.STATS.message_type)
    [reply] = grid.send_and_receive([msg])
    audit = [json.loads(line) for line in (root / f"audit_{name}" / f"{folder.name}.jsonl").read_text().splitlines()]
    return reply, audit, published


def test_a_node_with_another_catalog_refuses_and_audits_it(partner):
    root, folder = partner
    doc = EndpointCatalog.embedded().to_json()
    doc["endpoints"][0]["unit"] = "furlongs/fortnight"
    other = root / "other_catalog.json"
    other.write_text(json.dumps(doc))
    reply, audit, published = _stats(root, folder, other, "other")
    assert reply.has_error()
    reason = reply.error.reason
    assert "catalog" in reason and published.sha256[:16] in reason
    assert EndpointCatalog.read(other).sha256[:16] in reason
    assert "/" not in reason.replace("node start --catalog", "")  # no local paths leave the node
    assert audit[-1]["message_type"] == "query.stats" and "catalog" in audit[-1]["error"]
    assert not (root / "work_other" / "prepared").exists()  # nothing was prepared, nothing trained


def test_the_same_node_with_the_published_catalog_answers(partner):
    root, folder = partner
    same = EndpointCatalog.embedded().write(root / "catalog.json")
    reply, audit, _ = _stats(root, folder, same, "same")
    assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
    assert reply.content["metrics"]["num-examples"] > 0
    assert "error" not in audit[-1]
    assert "shared-counts" not in reply.content.config_records  # counts leave only when the partner opts in


def test_a_partner_that_opts_in_sends_its_preparation_counts_and_nothing_more(partner):
    root, folder = partner
    same = EndpointCatalog.embedded().write(root / "catalog.json")
    reply, audit, _ = _stats(root, folder, same, "counts", **{"share-counts": 1})
    assert not reply.has_error()
    counts = dict(reply.content["shared-counts"])
    summary = json.loads((root / "work_counts" / "prepared" / "summary.json").read_text())
    assert counts["n-input"] == summary["n_input"] == counts["n-accepted"] + counts["n-rejected"]
    assert {k: v for k, v in counts.items() if k.startswith("rejected.")} == {
        f"rejected.{r}": n for r, n in summary["rejected_by_reason"].items()}
    assert all(isinstance(v, int) for v in counts.values())
    assert audit[-1]["configs"]["shared-counts"] == {k: "int" for k in counts}  # audited like every field


def test_a_private_heads_only_node_refuses_a_shared_heads_run_and_audits_it(partner):
    """``node start --private-heads-only``: the default plain run (shared heads) is refused before the
    node prepares anything; the same node answers a private-heads run."""
    root, folder = partner
    same = EndpointCatalog.embedded().write(root / "catalog.json")
    reply, audit, _ = _stats(root, folder, same, "only_private", **{"private-heads-only": 1})
    assert reply.has_error() and "--private-heads-only" in reply.error.reason
    assert "--heads private" in reply.error.reason and "/" not in reply.error.reason.replace("--", "")
    assert audit[-1]["message_type"] == "query.stats" and "shared heads" in audit[-1]["error"]
    assert not (root / "work_only_private" / "prepared").exists()
    reply, audit, _ = _stats(root, folder, same, "only_private_ok", heads="private", **{"private-heads-only": 1})
    assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
    assert reply.content["metrics"]["num-examples"] > 0
