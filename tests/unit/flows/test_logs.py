"""The project loggers get Prefect's API log handler through PREFECT_LOGGING_EXTRA_LOGGERS."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_PROBE = r"""
import logging, sys
from flows.logs import send_project_logs_to_prefect
if sys.argv[1] == "after":
    from prefect import flow  # Prefect has read its settings and set up logging already
names = send_project_logs_to_prefect()
from prefect import flow  # noqa: F811  (Prefect sets up logging on this import)
from prefect.logging.handlers import APILogHandler
for name in ("pipelines", "admet", "federation", "clinical_sim", "flows", "mine"):
    logger = logging.getLogger(name)
    print(name, any(isinstance(h, APILogHandler) for h in logger.handlers), logger.getEffectiveLevel())
print("names", ",".join(names))
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_project_loggers_get_the_prefect_api_handler(when):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_LOGGING")}
    env["PREFECT_LOGGING_EXTRA_LOGGERS"] = "mine"  # a user's own entry is kept
    out = subprocess.run([sys.executable, "-c", _PROBE, when], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    for name in ("pipelines", "admet", "federation", "clinical_sim", "flows"):
        assert lines[name] == "True 20", (name, lines[name])
    assert lines["mine"].startswith("True")
    assert lines["names"] == "mine,pipelines,admet,federation,clinical_sim,flows"


def test_importing_flows_does_not_attach_anything():
    code = ("import logging, flows, flows.demo\nfrom prefect import flow\n"
            "from prefect.logging.handlers import APILogHandler\n"
            "print(any(isinstance(h, APILogHandler) for h in logging.getLogger('pipelines').handlers))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_LOGGING")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
