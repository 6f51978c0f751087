"""``fedadmet serve`` against a real ``prefect server`` (one per module) with the served process as
the worker that executes the runs, and a real Dask cluster (``dask scheduler`` + two ``dask worker``
processes) on loopback:

- both deployments are registered with their interval schedules, and the watched-folder
  deployment carries the Dask address in its parameters;
- a run of the watched-folder deployment (asked for through the API) is executed by the served
  process, its screening chunks run on the cluster's workers (the workers' own task records) and
  its output equals the in-process screening row for row;
- the server's scheduler service (not the test) creates a run of the federated-round deployment,
  and that run completes: one round checkpointed, its per-round line in the flow run's logs.

Everything started here is stopped by PID.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from flows.prefect_server import free_port, start_server

ROOT = Path(__file__).resolve().parents[2]
CHUNK = 4
ROUND_EVERY = 30  # seconds: the first scheduled round is due about this long after serving starts
#: Prefect 3.7.7's scheduler service cannot insert scheduled runs with SQLAlchemy 2.1 (its bulk
#: INSERT hits a hybrid property: "Can't evaluate bulk DML statement; please supply a bulk_dml
#: decorated function"), so no schedule ever fires; with SQLAlchemy 2.0.x it does.
SCHEDULER_BROKEN = "Can't evaluate bulk DML statement"


def _sqlalchemy_2_1() -> bool:
    import sqlalchemy

    return tuple(int(x) for x in sqlalchemy.__version__.split(".")[:2]) >= (2, 1)


#: Prefect's server answers 503 for errors a client may retry (its SQLite database locked while the
#: scheduler and the served process write), and Prefect's own client retries 429/502/503 with
#: backoff; this helper does the same, so a busy CI machine does not fail the test (CI saw one 503).
RETRY_CODES = (429, 502, 503)


def _api(url: str, body: dict, attempts: int = 6) -> list[dict] | dict:
    for attempt in range(attempts):
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code not in RETRY_CODES or attempt == attempts - 1:
                raise
            time.sleep(float(exc.headers.get("Retry-After") or 2 ** attempt))
    raise AssertionError("unreachable")


def _wait(what, check, served: subprocess.Popen, log: Path, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert served.poll() is None, log.read_text()[-3000:]
        found = check()
        if found:
            return found
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def two_partners(tmp_path_factory) -> Path:
    from pipelines.catalog import load_embedded
    from pipelines.partition import partition_partners, write_partition

    long_df = load_embedded(["solubility"])
    keep = long_df["compound_id"].drop_duplicates().head(200)
    partition = partition_partners(long_df[long_df["compound_id"].isin(keep)], n_partners=2, seed=0)
    out = tmp_path_factory.mktemp("partition") / "partners"
    write_partition(partition, out)
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_library, tiny_bundle, two_partners):
    """The server, the Dask cluster and ``fedadmet serve`` with both deployments (started once)."""
    from flows.dask_cluster import start_cluster

    tmp = tmp_path_factory.mktemp("serve")
    mp = pytest.MonkeyPatch()
    # the server's scheduler service creates the scheduled runs every 2 s instead of 60 s
    mp.setenv("PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS", "2")
    server = start_server(port=free_port(), prefect_home=tmp / "prefect_home", log_path=tmp / "server.log")
    cluster = proc = None
    try:
        cluster = start_cluster(free_port(), n_workers=2, log_dir=tmp / "dask_logs")
        server.wait_ready(timeout=240)
        watch = tmp / "inbox"
        watch.mkdir()
        shutil.copy(tiny_library, watch / "library.csv")
        env = dict(server.env, PREFECT_API_URL=server.api_url, PREFECT_RUNNER_POLL_FREQUENCY="2")
        log = tmp / "serve.log"
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("fedadmet")), "serve", "--watch", str(watch), "--model",
             str(tiny_bundle), "--screen-out", str(tmp / "screened"), "--screen-every", "86400",
             "--dask-address", cluster.address, "--partners-dir", str(two_partners),
             "--federated-out", str(tmp / "federation"), "--round-every", str(ROUND_EVERY), "--limit", "1"],
            cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115

        def registered():
            found = {d["name"]: d for d in _api(f"{server.api_url}/deployments/filter", {})}
            return found if {"watched-folder", "scheduled-round"} <= set(found) else None

        deployments = _wait("the deployments", registered, proc, log, timeout=300)
        yield {"server": server, "cluster": cluster, "proc": proc, "log": log, "tmp": tmp,
               "deployments": deployments}
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        if cluster is not None:
            cluster.stop()
        server.stop()
        mp.undo()


def _runs(server, deployment: dict) -> list[dict]:
    return _api(f"{server.api_url}/flow_runs/filter", {"deployments": {"id": {"any_": [deployment["id"]]}}})


@pytest.mark.slow
def test_deployments_are_registered_with_their_schedules_and_the_dask_address(served):
    deployments = served["deployments"]
    intervals = {name: [s["schedule"].get("interval") for s in d["schedules"]] for name, d in deployments.items()}
    assert intervals["watched-folder"] == [86400.0] and intervals["scheduled-round"] == [float(ROUND_EVERY)]
    assert deployments["watched-folder"]["parameters"]["dask_address"] == served["cluster"].address
    assert "dask_address" not in deployments["scheduled-round"]["parameters"]


@pytest.mark.slow
def test_watched_folder_deployment_runs_its_screening_chunks_on_the_dask_workers(served, tiny_library,
                                                                                  tiny_bundle, tmp_path):
    from flows.dask_cluster import worker_task_records
    from flows.screening_steps import FEATURIZATION_FAILED, ScreeningConfig, chunk_bounds, screen_plain

    server, cluster, proc, log = served["server"], served["cluster"], served["proc"], served["log"]
    assert not any(worker_task_records(cluster.address).values())
    deployment = served["deployments"]["watched-folder"]
    # the run's chunk size comes from the deployment's parameters plus this run's own value
    run = _api(f"{server.api_url}/deployments/{deployment['id']}/create_flow_run",
               {"parameters": {"chunk_size": CHUNK}})
    assert run["parameters"]["dask_address"] == cluster.address and run["parameters"]["chunk_size"] == CHUNK

    def finished():
        states = {r["id"]: r["state_type"] for r in _runs(server, deployment)}
        assert states.get(run["id"]) not in ("FAILED", "CRASHED"), log.read_text()[-3000:]
        return states.get(run["id"]) == "COMPLETED"

    _wait("the watched-folder run", finished, proc, log, timeout=600)
    out = served["tmp"] / "screened" / "library.csv"
    assert json.loads((out / "summary.json").read_text())["n_input"] == 14

    plain = screen_plain(ScreeningConfig(library=tiny_library, bundle_dir=tiny_bundle, out_dir=tmp_path / "plain",
                                         chunk_size=CHUNK, top_n=25, use_cache=False))
    accepted = len(plain.ranked) + int((plain.rejects["reason"] == FEATURIZATION_FAILED).sum())
    n_chunks = len(chunk_bounds(accepted, CHUNK))
    assert n_chunks == 3
    records = worker_task_records(cluster.address)
    executed = [key for keys in records.values() for key in keys]
    # every featurize and predict chunk of the served run ran on a cluster worker, none twice
    assert sum(k.startswith("predict_task-") for k in executed) == n_chunks
    assert sum(k.startswith("_featurize-") for k in executed) == n_chunks
    assert len(executed) == len(set(executed))
    pd.testing.assert_frame_equal(pd.read_csv(out / "ranked.csv"), pd.read_csv(plain.files["ranked_csv"]),
                                  check_exact=False, rtol=1e-6)
    pd.testing.assert_frame_equal(pd.read_csv(out / "rejects.csv"), pd.read_csv(plain.files["rejects_csv"]))


@pytest.mark.slow
@pytest.mark.xfail(_sqlalchemy_2_1(), strict=True, reason="Prefect 3.7.7's scheduler service fails on SQLAlchemy "
                   "2.1 (no scheduled run is ever created); needs SQLAlchemy 2.0.x pinned")
def test_scheduler_fired_federated_round_completes(served):
    from flows.serve import rounds_done

    server, proc, log = served["server"], served["proc"], served["log"]
    deployment = served["deployments"]["scheduled-round"]

    def completed_run():
        server_log = server.log_path.read_text(errors="replace")
        assert SCHEDULER_BROKEN not in server_log, "the Prefect server's scheduler service fails: " + SCHEDULER_BROKEN
        done = [r for r in _runs(server, deployment) if r["state_type"] == "COMPLETED"]
        return min(done, key=lambda r: r["expected_start_time"]) if done else None

    run = _wait("a scheduled federated round", completed_run, proc, log, timeout=600)
    # the server's scheduler service made this run from the interval schedule; nobody asked for it
    assert run["auto_scheduled"] is True
    assert run["tags"] and "flow:federated-round" in run["tags"]
    assert rounds_done(served["tmp"] / "federation") >= 1
    n = run["parameters"].get("rounds")  # not a parameter: the round number comes from the checkpoints
    assert n is None

    def round_lines():
        logs = _api(f"{server.api_url}/logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}})
        messages = [entry["message"] for entry in logs]
        # the server side's per-round lines (strategy and the run's report) are in the flow run's logs
        aggregated = [m for m in messages if re.match(r"round \d+: aggregated 2 update\(s\)", m)]
        reported = [m for m in messages if re.match(r"round \d+: mean train loss [0-9.e-]+, 2 replies", m)]
        return (aggregated, reported) if aggregated and reported else None

    _wait("the round's log lines in the flow run", round_lines, proc, log, timeout=60)
    assert (served["tmp"] / "federation" / "partners_table.csv").exists()
