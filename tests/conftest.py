"""Session-wide fixtures shared by all test folders.

``prefect_harness`` is opt-in by name: only tests that run Prefect flows start the temporary
Prefect API (one per session), the others never pay for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API (own SQLite database) for the whole test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    """A fresh run folder (what a CLI command's ``--out`` points at) under pytest's tmp_path."""
    folder = tmp_path / "run"
    folder.mkdir()
    return folder
