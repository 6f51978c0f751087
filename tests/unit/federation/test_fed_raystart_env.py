"""Starting Ray leaves this process's PYTHONPATH as it was.

start_ray exports sys.path as PYTHONPATH so the raylet's workers import the project; it used to
leave it set, so every later subprocess (the ``fedadmet`` console script in the CLI tests) got
pytest's sys.path, and bench/flows.py on it shadowed the flows package ("'flows' is not a package").
"""

from __future__ import annotations

import os

import pytest

from federation.raystart import start_ray, stop_ray


@pytest.mark.parametrize("before", [None, "/nonexistent/extra"])
def test_start_ray_restores_pythonpath(monkeypatch, before):
    if before is None:
        monkeypatch.delenv("PYTHONPATH", raising=False)
    else:
        monkeypatch.setenv("PYTHONPATH", before)
    try:
        start_ray(num_cpus=1, attempts=2)
        assert os.environ.get("PYTHONPATH") == before
    finally:
        stop_ray()
