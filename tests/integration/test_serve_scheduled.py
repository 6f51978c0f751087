"""``fedadmet serve`` against a real ``prefect server``: both deployments are registered with their
interval schedules, and a run of the watched-folder deployment is executed by the served process
(it screens the file dropped in the folder). The federated-round deployment is not run here.
Everything started here is stopped by PID."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from flows.prefect_server import free_port, start_server

ROOT = Path(__file__).resolve().parents[2]


def _api(url: str, body: dict) -> list[dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def two_partners(tmp_path) -> Path:
    from pipelines.catalog import load_embedded
    from pipelines.partition import partition_partners, write_partition

    long_df = load_embedded(["solubility"])
    keep = long_df["compound_id"].drop_duplicates().head(200)
    partition = partition_partners(long_df[long_df["compound_id"].isin(keep)], n_partners=2, seed=0)
    write_partition(partition, tmp_path / "partners")
    return tmp_path / "partners"


@pytest.mark.slow
def test_served_deployments_run_the_watched_folder_on_schedule(tmp_path, monkeypatch, tiny_library, tiny_bundle,
                                                               two_partners):
    home = tmp_path / "prefect_home"
    # the server's scheduler service creates the scheduled runs every 2 s instead of 60 s
    monkeypatch.setenv("PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS", "2")
    server = start_server(port=free_port(), prefect_home=home, log_path=tmp_path / "server.log")
    served = None
    try:
        server.wait_ready(timeout=240)
        watch = tmp_path / "inbox"
        watch.mkdir()
        shutil.copy(tiny_library, watch / "library.csv")
        out = tmp_path / "screened"
        env = dict(server.env, PREFECT_API_URL=server.api_url, PREFECT_RUNNER_POLL_FREQUENCY="2")
        served = subprocess.Popen(
            [str(Path(sys.executable).with_name("fedadmet")), "serve", "--watch", str(watch), "--model",
             str(tiny_bundle), "--screen-out", str(out), "--screen-every", "3", "--partners-dir",
             str(two_partners), "--federated-out", str(tmp_path / "federation"), "--round-every", "86400"],
            cwd=ROOT, env=env, stdout=open(tmp_path / "serve.log", "wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        deployments: dict = {}
        while "watched-folder" not in deployments and time.monotonic() < deadline:
            assert served.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(1)
            deployments = {d["name"]: d for d in _api(f"{server.api_url}/deployments/filter", {})}
        # the schedule's own runs come from the server's scheduler service, whose timing on a loaded
        # machine is not this test's business; one run is also asked for now, and the served process
        # (not this test) must pick it up and execute it
        _api(f"{server.api_url}/deployments/{deployments['watched-folder']['id']}/create_flow_run", {})
        done = out / "library.csv" / "summary.json"
        deadline = time.monotonic() + 420
        while not done.exists() and time.monotonic() < deadline:
            assert served.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(1)
        assert done.exists(), (tmp_path / "serve.log").read_text()[-3000:]
        assert json.loads(done.read_text())["n_input"] == 14

        deployments = {d["name"]: d for d in _api(f"{server.api_url}/deployments/filter", {})}
        assert {"watched-folder", "scheduled-round"} <= set(deployments)
        intervals = {name: [s["schedule"].get("interval") for s in d["schedules"]]
                     for name, d in deployments.items()}
        assert intervals["watched-folder"] == [3.0] and intervals["scheduled-round"] == [86400.0]
        deadline = time.monotonic() + 180  # the screening subflow wrote its files; the parent finishes next
        states: list[str] = []
        while "COMPLETED" not in states and time.monotonic() < deadline:
            runs = _api(f"{server.api_url}/flow_runs/filter",
                        {"deployments": {"id": {"any_": [deployments["watched-folder"]["id"]]}}})
            states = [r["state_type"] for r in runs]
            time.sleep(1)
        assert "COMPLETED" in states, states

        served.send_signal(signal.SIGTERM)
        served.wait(timeout=60)
        served = None
    finally:
        if served is not None and served.poll() is None:
            served.kill()
            served.wait(timeout=30)
        server.stop()
