"""Screening: plain functions vs the Prefect flow (default runner), artifacts, caching,
row accounting, and clear errors. Uses a real small bundle trained in the session fixture."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from flows.runners import RunnerSpec
from flows.screening_steps import ScreeningConfig, screen_plain
from pipelines.errors import InputError


def _cfg(library, bundle, out, **kw) -> ScreeningConfig:
    return ScreeningConfig(library=library, bundle_dir=bundle, out_dir=out, chunk_size=5, top_n=5, **kw)


@pytest.fixture(scope="module")
def plain_result(tiny_library, tiny_bundle, tmp_path_factory):
    return screen_plain(_cfg(tiny_library, tiny_bundle, tmp_path_factory.mktemp("plain"), use_cache=False))


def test_plain_screening_accounts_for_every_row_and_ranks_by_score(plain_result):
    r = plain_result
    assert r.n_input == 14
    assert len(r.ranked) == 12 and len(r.rejects) == 2
    assert sorted(r.rejects["row"]) == [12, 13]
    assert set(r.rejects["reason"]) == {"unparsable", "metal_only"}
    assert sorted(r.ranked["row"].tolist() + r.rejects["row"].tolist()) == list(range(14))
    scores = r.ranked["score"].to_numpy()
    assert np.all(np.diff(scores) <= 1e-12) and np.all((scores >= 0) & (scores <= 1))
    assert r.ranked["rank"].tolist() == list(range(1, 13))
    for e in ("solubility", "HLM_CLint"):
        assert {e, f"{e}_std", f"{e}_in_domain", f"d_{e}"} <= set(r.ranked.columns)
        assert (r.ranked[f"{e}_std"] > 0).all()
    cfg = json.loads(r.files["config"].read_text())
    assert cfg["chunk_size"] == 5 and "profile_resolved" in cfg
    back = pd.read_parquet(r.files["ranked_parquet"])
    assert back["smiles"].tolist() == r.ranked["smiles"].tolist()


def test_flow_matches_plain_and_publishes_artifacts(prefect_harness, plain_result, tiny_library, tiny_bundle,
                                                     tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from flows.screening import screening_flow

    state = screening_flow(library=str(tiny_library), bundle_dir=str(tiny_bundle), out_dir=str(tmp_path),
                           chunk_size=5, top_n=5, use_cache=False, return_state=True)
    assert state.is_completed()
    summary = state.result()
    assert (summary["n_input"], summary["n_ranked"], summary["n_rejected"]) == (14, 12, 2)
    ranked = pd.read_csv(tmp_path / "ranked.csv")
    assert ranked["smiles"].tolist() == plain_result.ranked["smiles"].tolist()
    np.testing.assert_allclose(ranked["score"], plain_result.ranked["score"], rtol=1e-6)
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    keys = {a.key: a for a in arts}
    assert {"screening-summary", "screening-top-compounds", "screening-rejects",
            "screening-score-distribution", "screening-endpoint-histograms"} <= set(keys)
    assert "](data:image/png;base64," in keys["screening-score-distribution"].data  # Markdown embedding the PNG
    assert (tmp_path / "plots" / "endpoint_histograms.png").stat().st_size > 1000
    assert "Rejects by reason" in (tmp_path / "report.md").read_text()


def test_featurized_chunks_are_cached_by_content(prefect_harness, tiny_library, tiny_bundle, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.screening import screening_flow

    def featurize_states(out):
        state = screening_flow(library=str(tiny_library), bundle_dir=str(tiny_bundle), out_dir=str(out),
                               chunk_size=4, top_n=3, use_cache=True, return_state=True)
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
        return sorted(r.state.name for r in runs if r.name.startswith("featurize-chunk"))

    featurize_states(tmp_path / "a")
    second = featurize_states(tmp_path / "b")
    assert second == ["Cached"] * 3
    assert pd.read_csv(tmp_path / "a" / "ranked.csv").equals(pd.read_csv(tmp_path / "b" / "ranked.csv"))


# The Dask runner is tested on a real cluster (scheduler + 2 worker processes, worker-side task
# records): tests/integration/test_screening_dask_cluster.py.


def test_bad_inputs_name_the_problem(tiny_library, tiny_bundle, tmp_path):
    with pytest.raises(InputError, match="library not found"):
        _cfg(tmp_path / "nope.csv", tiny_bundle, tmp_path)
    with pytest.raises(InputError, match="bundle folder not found"):
        _cfg(tiny_library, tmp_path / "nope", tmp_path)
    bad = tmp_path / "p.toml"
    bad.write_text("name = 'x'\n[endpoints.unknown_endpoint]\nlow = 1\n")
    with pytest.raises(InputError, match="no endpoint in common"):
        screen_plain(_cfg(tiny_library, tiny_bundle, tmp_path / "out", profile=bad))
    with pytest.raises(InputError, match="task runner"):
        RunnerSpec(kind="ray")
