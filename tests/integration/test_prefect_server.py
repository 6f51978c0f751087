"""A real ``prefect server start`` on 127.0.0.1: the screening flow reports to it, and the run,
its task runs and its artifacts are read back through Prefect's API."""

from __future__ import annotations

import asyncio
import json
import os

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


async def _read_back(api_url: str, flow_run_id: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}):
        async with get_client() as client:
            run = await client.read_flow_run(flow_run_id)
            flow = await client.read_flow(run.flow_id)
            tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
            arts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
    return run, flow, tasks, arts


def test_screening_run_is_readable_through_the_server_api(live_screening_run):
    live = live_screening_run
    run, flow, tasks, arts = asyncio.run(_read_back(live["server"].api_url, live["flow_run_id"]))

    assert flow.name == "screening"
    assert run.state.is_completed()
    assert run.parameters["library"].endswith("library.csv")

    names = sorted(t.name for t in tasks)
    assert all(t.state.is_completed() for t in tasks), [(t.name, t.state.type) for t in tasks]
    # 12 accepted molecules in chunks of 5 -> 3 featurize + 3 predict tasks, named by chunk
    assert [n for n in names if n.startswith("featurize-chunk-")] == [f"featurize-chunk-{i}" for i in range(3)]
    assert [n for n in names if n.startswith("predict-chunk-")] == [f"predict-chunk-{i}" for i in range(3)]
    assert {"read-library", "validate-molecules", "score-rank-write", "publish-report"} <= set(names)

    by_key = {a.key: a for a in arts if a.key}
    assert {"screening-summary", "screening-top-compounds", "screening-rejects",
            "screening-score-distribution", "screening-endpoint-histograms"} <= set(by_key)
    assert by_key["screening-top-compounds"].type == "table"
    # plots are Markdown artifacts embedding the PNG (an image artifact prints its whole data URL)
    assert by_key["screening-score-distribution"].type == "markdown"
    assert "](data:image/png;base64," in by_key["screening-score-distribution"].data

    # the artifact table is the run's ranked table: same SMILES, same order
    ranked = pd.read_csv(live["out_dir"] / "ranked.csv")
    table = by_key["screening-top-compounds"].data
    rows = table if isinstance(table, list) else json.loads(table)
    assert [r["smiles"] for r in rows] == ranked["smiles"].head(5).tolist()
    rejects = by_key["screening-rejects"].data
    rejects = rejects if isinstance(rejects, list) else json.loads(rejects)
    assert sum(r["count"] for r in rejects) == 2

    s = live["summary"]
    assert (s["n_input"], s["n_ranked"], s["n_rejected"]) == (14, 12, 2)
    assert os.environ.get("PREFECT_API_URL") != live["server"].api_url  # the test process stayed ephemeral


def test_serve_exposes_deployments_that_run_with_ui_parameters(live_screening_run, tiny_library, tiny_bundle,
                                                               tmp_path):
    """``fedadmet serve`` against the server: both deployments appear; a run triggered through the
    API with parameters (what the UI's custom run does) completes and writes the ranked table."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    live = live_screening_run
    serve = subprocess.Popen([str(Path(sys.executable).with_name("fedadmet")), "serve"], env=live["env"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        with temporary_settings({PREFECT_API_URL: live["server"].api_url}):
            names: set[str] = set()
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and len(names) < 2:
                with get_client(sync_client=True) as client:
                    names = {d.name for d in client.read_deployments()}
                time.sleep(2)
            assert {"screening", "federated-training"} <= names
            out = tmp_path / "from_ui"
            run = run_deployment("screening/screening", timeout=400, parameters={
                "library": str(tiny_library), "bundle_dir": str(tiny_bundle), "out_dir": str(out),
                "chunk_size": 6, "use_cache": False})
            assert run.state.is_completed(), run.state
        assert len(pd.read_csv(out / "ranked.csv")) == 12
    finally:
        os.killpg(serve.pid, 15)
        serve.wait(timeout=60)
