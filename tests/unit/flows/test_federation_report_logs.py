"""The federated run's per-round lines reach the flow run's logs, also when they are logged in a
thread the Prefect run context does not reach (Flower's simulation runs the ServerApp in a thread
of its own). Checked on a real temporary Prefect API: the records are read back from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

_PROBE = r"""
import json, logging, threading, time
from flows.logs import send_project_logs_to_prefect, thread_logs_to_run
send_project_logs_to_prefect()
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler
from prefect.testing.utilities import prefect_test_harness

log = logging.getLogger("federation.strategy")

def in_thread(message):  # like Flower's ServerApp thread: a plain thread, no Prefect context
    t = threading.Thread(target=log.info, args=(message,))
    t.start()
    t.join()

@task
def federated_run():
    in_thread("round 1: before the context manager")
    with thread_logs_to_run():
        in_thread("round 2: aggregated 3 update(s) (mean), rejected 0, failed 0")
        log.info("task thread: inside")
    in_thread("round 3: after the context manager")

@flow
def fed():
    federated_run()
    in_thread("flow: thread without the context manager")
    with thread_logs_to_run():
        in_thread("flow: thread with the context manager")

with prefect_test_harness(server_startup_timeout=300):
    state = fed(return_state=True)
    flow_run_id = state.state_details.flow_run_id
    found = {}
    for _ in range(60):
        with get_client(sync_client=True) as client:
            logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        found = {l.message: str(l.task_run_id) if l.task_run_id else None for l in logs}
        if "flow: thread with the context manager" in found and "task thread: inside" in found:
            break
        time.sleep(1)
    print("RESULT=" + json.dumps({"messages": found, "handlers": sum(
        isinstance(h, APILogHandler) for h in logging.getLogger("federation").handlers)}))
"""


@pytest.mark.slow
def test_thread_lines_inside_the_context_manager_reach_the_flow_run():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_LOGGING")}
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT="))[7:])
    messages = doc["messages"]
    assert doc["handlers"] == 1  # the filter was removed again with the context manager, the handler kept
    # the per-round line from the plain thread is in the run, attached to the task run it belongs to
    round_line = "round 2: aggregated 3 update(s) (mean), rejected 0, failed 0"
    assert round_line in messages
    assert messages[round_line] is not None and messages[round_line] == messages["task thread: inside"]
    assert "flow: thread with the context manager" in messages
    assert messages["flow: thread with the context manager"] is None  # flow level: no task run
    # without it (Prefect's own behaviour) such lines are dropped
    for dropped in ("round 1: before the context manager", "round 3: after the context manager",
                    "flow: thread without the context manager"):
        assert dropped not in messages
