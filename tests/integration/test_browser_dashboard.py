"""A real headless Chromium opens the Prefect dashboard: the flow run page and the artifact page.

Debian's ``chromium`` is driven directly (``--dump-dom`` / ``--screenshot``); screenshots are
saved under the test's output folder (its ``tmp_path``/screenshots). Skipped, with the reason, when Chromium is not installed.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def _chromium(url: str, profile: Path, *extra: str, budget_ms: int = 15000) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _dom(url: str, profile: Path) -> str:
    proc = _chromium(url, profile, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _screenshot(url: str, profile: Path, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = _chromium(url, profile, f"--screenshot={path}", "--window-size=1400,1000")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert path.exists() and path.stat().st_size > 5000, "screenshot missing or blank"
    return path


async def _artifact_id(api_url: str, flow_run_id: str, key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}):
        async with get_client() as client:
            arts = await client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), key=ArtifactFilterKey(any_=[key])))
    assert arts, f"artifact {key} not found"
    return str(arts[0].id)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed "
                    "(apt-get install chromium chromium-driver; .ci/run does this)")
def test_dashboard_shows_the_flow_run_and_the_artifact_table(live_screening_run, tmp_path):
    live = live_screening_run
    ui, run_id = live["server"].ui_url, live["flow_run_id"]
    top_smiles = pd.read_csv(live["out_dir"] / "ranked.csv")["smiles"].iloc[0]

    run_url = f"{ui}/runs/flow-run/{run_id}"
    run_dom = _dom(run_url, tmp_path / "profile-run")
    assert "screening" in run_dom
    assert "Completed" in run_dom
    _screenshot(run_url, tmp_path / "profile-run-shot", tmp_path / "screenshots" / "flow_run.png")

    artifact_id = asyncio.run(_artifact_id(live["server"].api_url, run_id, "screening-top-compounds"))
    art_url = f"{ui}/artifacts/artifact/{artifact_id}"
    art_dom = _dom(art_url, tmp_path / "profile-art")
    assert "screening-top-compounds" in art_dom
    assert top_smiles in art_dom, "the top compound's SMILES (artifact table text) is not on the page"
    _screenshot(art_url, tmp_path / "profile-art-shot", tmp_path / "screenshots" / "artifact_table.png")
