"""Session-wide fixtures shared by all test folders.

``prefect_harness`` is opt-in by name: only tests that run Prefect flows start the temporary
Prefect API (one per session), the others never pay for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import pipelines


def pytest_configure(config) -> None:
    # The runtime defaults the CLI applies (offline, quiet, passive OpenMP threads) for the tests
    # that call library code directly; importing the packages no longer applies them.
    pipelines.configure()


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API (own SQLite database) for the whole test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):
        yield


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    """A fresh run folder (what a CLI command's ``--out`` points at) under pytest's tmp_path."""
    folder = tmp_path / "run"
    folder.mkdir()
    return folder


# --- a small real model bundle and library (session-wide, built on first use) -----------------

TINY_ENDPOINTS = ("solubility", "HLM_CLint")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A model bundle trained for real (2-member MTNN ensemble, Morgan counts) on ~300 Biogen molecules."""
    from admet.config import ModelConfig
    from admet.fit import prepare_task_data, train_bundle
    from pipelines.catalog import load_embedded

    long_df = load_embedded(list(TINY_ENDPOINTS))
    keep = long_df["compound_id"].drop_duplicates().head(300)
    td = prepare_task_data(long_df[long_df["compound_id"].isin(keep)])
    cfg = ModelConfig.build(featurizer="morgan_count", hidden=(64,), epochs=8, patience=0, ensemble=2,
                            batch_size=64, seed=0)
    bundle = train_bundle(td, cfg, with_context=True)
    folder = tmp_path_factory.mktemp("tiny_bundle") / "bundle"
    bundle.save(folder)
    return folder


def write_tiny_library(path: Path, n: int = 12) -> Path:
    """``n`` real Biogen SMILES (not all in the tiny bundle's training slice) + 2 bad rows."""
    from pipelines.catalog import load_embedded

    smiles = load_embedded(["MDR1_ER"])["smiles"].drop_duplicates().tail(n).tolist()
    rows = ["smiles", *smiles, "C1CC(", "[Fe]"]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_library(tmp_path_factory) -> Path:
    """A CSV of 12 good SMILES + 1 unparsable + 1 metal-only: 14 input rows."""
    return write_tiny_library(tmp_path_factory.mktemp("tiny_library") / "library.csv")


# --- a real Prefect server with one screening run reported to it ---------------------------

_SCREEN_SCRIPT = r"""
import json, sys
import pipelines
pipelines.configure()  # this script is an entry point, like the CLI
from flows.logs import send_project_logs_to_prefect
send_project_logs_to_prefect()  # as the fedadmet CLI entry does: project log lines in the run's logs
from flows.screening import screening_flow
state = screening_flow(library=sys.argv[1], bundle_dir=sys.argv[2], out_dir=sys.argv[3], chunk_size=5,
                       top_n=5, use_cache=False, return_state=True)
print("FLOW_RUN_ID=" + str(state.state_details.flow_run_id))
print("SUMMARY=" + json.dumps(state.result()))
"""


@pytest.fixture(scope="session")
def live_screening_run(tmp_path_factory, tiny_bundle, tiny_library):
    """``prefect server start`` on 127.0.0.1 (free port, own PREFECT_HOME) + a screening flow run
    made by a subprocess with PREFECT_API_URL set. Yields a dict; the server stops afterwards."""
    import json
    import subprocess
    import sys

    from flows.prefect_server import free_port, start_server

    base = tmp_path_factory.mktemp("prefect_live")
    server = start_server(port=free_port(), prefect_home=base / "home", log_path=base / "server.log")
    try:
        server.wait_ready(timeout=180)
        env = dict(server.env, PREFECT_API_URL=server.api_url)
        out = base / "screen_out"
        proc = subprocess.run([sys.executable, "-c", _SCREEN_SCRIPT, str(tiny_library), str(tiny_bundle), str(out)],
                              capture_output=True, text=True, env=env, timeout=600,
                              cwd=Path(__file__).resolve().parents[1])
        assert proc.returncode == 0, proc.stderr[-4000:]
        found = dict(line.split("=", 1) for line in proc.stdout.splitlines() if line.startswith(("FLOW_RUN_ID=", "SUMMARY=")))
        yield {"server": server, "flow_run_id": found["FLOW_RUN_ID"], "summary": json.loads(found["SUMMARY"]),
               "out_dir": out, "env": env}
    finally:
        server.stop()
