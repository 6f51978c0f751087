"""A real headless Chromium opens the dashboards an analyst uses: the Prefect flow-run page (run name,
the project's own log line), the screening and federated runs' artifacts, and optuna-dashboard on a
run folder's study (``fedadmet dashboard optuna RUN_DIR``).

Debian's ``chromium`` is driven directly (``--dump-dom`` / ``--screenshot``); screenshots are saved
under the test's output folder (its ``tmp_path``/screenshots). Without Chromium the tests skip, except
under ``CI=true``, where a missing browser is a failure (``.ci/run`` installs it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _chromium_present():
    if CHROMIUM is None:
        message = "Debian chromium is not installed (apt-get install chromium chromium-driver; .ci/run does this)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)


def _chromium(url: str, profile: Path, *extra: str, budget_ms: int = 15000) -> subprocess.CompletedProcess:
    # a window size is needed: without one, virtualised lists (the flow-run log) render no rows
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", "--window-size=1400,1000", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _dom(url: str, profile: Path) -> str:
    proc = _chromium(url, profile, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _screenshot(url: str, profile: Path, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = _chromium(url, profile, f"--screenshot={path}")
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


def test_dashboard_shows_the_flow_run_and_the_artifact_table(live_screening_run, tmp_path):
    live = live_screening_run
    ui, run_id = live["server"].ui_url, live["flow_run_id"]
    top_smiles = pd.read_csv(live["out_dir"] / "ranked.csv")["smiles"].iloc[0]

    run_url = f"{ui}/runs/flow-run/{run_id}"
    run_dom = _dom(run_url, tmp_path / "profile-run")
    assert "screening" in run_dom
    assert "Completed" in run_dom
    assert "screen library with tiny_bundle" in run_dom, "the run is not named after its library and model"
    # the project's own log line (logger pipelines.validate), not only Prefect's
    assert "validated 14 rows: 12 accepted, 2 rejected" in run_dom
    _screenshot(run_url, tmp_path / "profile-run-shot", tmp_path / "screenshots" / "flow_run.png")

    artifact_id = asyncio.run(_artifact_id(live["server"].api_url, run_id, "screening-top-compounds"))
    art_url = f"{ui}/artifacts/artifact/{artifact_id}"
    art_dom = _dom(art_url, tmp_path / "profile-art")
    assert "screening-top-compounds" in art_dom
    assert top_smiles in art_dom, "the top compound's SMILES (artifact table text) is not on the page"
    _screenshot(art_url, tmp_path / "profile-art-shot", tmp_path / "screenshots" / "artifact_table.png")

    plot_id = asyncio.run(_artifact_id(live["server"].api_url, run_id, "screening-score-distribution"))
    plot_dom = _dom(f"{ui}/artifacts/artifact/{plot_id}", tmp_path / "profile-plot")
    assert '<img src="data:image/png;base64,' in plot_dom, "the plot is not shown"
    assert "Image URL" not in plot_dom, "the page prints the image's whole data URL"


_FEDERATE_SCRIPT = """
import json, sys

import pipelines
from flows.logs import send_project_logs_to_prefect

if __name__ == "__main__":
    pipelines.configure()
    send_project_logs_to_prefect()
    from flows.federated_flow import federated_training_flow

    state = federated_training_flow(out_dir=sys.argv[1], n_partners=3, rounds=1, local_epochs=1, hidden=(32,),
                                    endpoints=("solubility", "HLM_CLint"), baselines=False, num_cpus=1,
                                    featurizer="morgan_count", return_state=True)
    print("FLOW_RUN_ID=" + str(state.state_details.flow_run_id))
    state.result()
"""


@pytest.fixture(scope="module")
def live_federated_run(live_screening_run, tmp_path_factory):
    """A 3-partner, 1-round federated training flow reported to the live server (Flower + Ray, for real)."""
    base = tmp_path_factory.mktemp("fed_live")
    script = base / "federate.py"
    script.write_text(_FEDERATE_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(base / "run")], capture_output=True, text=True,
                          env=live_screening_run["env"], timeout=900, cwd=REPO)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    run_id = next(line.split("=", 1)[1] for line in proc.stdout.splitlines() if line.startswith("FLOW_RUN_ID="))
    return {"flow_run_id": run_id, "out_dir": base / "run"}


def test_federated_run_shows_its_partner_table(live_screening_run, live_federated_run, tmp_path):
    server, run_id = live_screening_run["server"], live_federated_run["flow_run_id"]
    table = pd.read_csv(live_federated_run["out_dir"] / "federated" / "partners_table.csv")
    assert table["partner"].tolist() == ["partner_00", "partner_01", "partner_02"]

    art_id = asyncio.run(_artifact_id(server.api_url, run_id, "federation-partners"))
    url = f"{server.ui_url}/artifacts/artifact/{art_id}"
    dom = _dom(url, tmp_path / "profile-fed")
    assert "federation-partners" in dom
    for text in ("partner_00", "partner_01", "partner_02", "n_train", "federated", "status"):
        assert text in dom, f"{text!r} is not on the partner-table page"
    assert str(int(table.loc[0, "n_train"])) in dom
    _screenshot(url, tmp_path / "profile-fed-shot", tmp_path / "screenshots" / "federation_partners.png")
    for key in ("federation-rounds", "federation-rejected-updates"):
        asyncio.run(_artifact_id(server.api_url, run_id, key))

    run_dom = _dom(f"{server.ui_url}/runs/flow-run/{run_id}", tmp_path / "profile-fed-run")
    assert "federated fedavg" in run_dom and "flow:federated-training" in run_dom


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "dashboard exited"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout:.0f}s")


def test_optuna_dashboard_opens_a_run_folders_study(tmp_path):
    from clinical_sim.admet_link import PKTypical
    from clinical_sim.design import load_design
    from clinical_sim.optimize import optimize_design
    from flows.prefect_server import free_port

    run = tmp_path / "trial_run"
    optimize_design(load_design(None).updated(optimize={"trials_per_design": 20}),
                    PKTypical(cl_l_h=10.0, v_l=80.0, ka_h=1.0, f=0.6), 3, run / "design", seed=0)
    port = free_port()
    exe = Path(sys.executable).with_name("fedadmet")
    proc = subprocess.Popen([str(exe), "dashboard", "optuna", str(run), "--port", str(port), "--host", "127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    try:
        _wait_http(f"http://127.0.0.1:{port}/dashboard", proc)
        home = _dom(f"http://127.0.0.1:{port}/dashboard", tmp_path / "profile-optuna")
        assert "trial_design" in home
        study = _dom(f"http://127.0.0.1:{port}/dashboard/studies/1", tmp_path / "profile-optuna-study")
        assert "p_success" in study and "total_patients" in study, "objective names are not shown"
        assert "Objective 0" not in study
        _screenshot(f"http://127.0.0.1:{port}/dashboard/studies/1", tmp_path / "profile-optuna-shot",
                    tmp_path / "screenshots" / "optuna_study.png")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
