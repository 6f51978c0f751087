"""Worker processes of the one pool factory start with RDKit's per-molecule log muted.

A forkserver (used whenever the parent has threads, e.g. inside a Prefect flow) or spawned worker
does not inherit the parent's RDKit log state, so without the pool initializer every bad SMILES in a
library printed its parse/valence message to the terminal.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

PROBE = "from rdkit import rdBase\n\n\ndef status(_):\n    return rdBase.LogStatus()\n"

RUNNER = textwrap.dedent(
    """
    import sys, threading
    sys.path.insert(0, sys.argv[1])
    from rdkit import rdBase
    from pipelines.procs import process_pool
    import pool_status_probe

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()  # a second live thread makes process_pool use forkserver: no inherited RDKit state
    try:
        assert "rdApp.error:enabled" in rdBase.LogStatus()  # this process never muted RDKit
        with process_pool(1, preload="rdkit") as pool:
            print(pool.submit(pool_status_probe.status, None).result())
    finally:
        stop.set()
        thread.join()
    """
)


def test_forkserver_pool_workers_have_rdkit_warnings_and_errors_disabled(tmp_path: Path):
    (tmp_path / "pool_status_probe.py").write_text(PROBE)
    done = subprocess.run([sys.executable, "-c", RUNNER, str(tmp_path)], capture_output=True, text=True,
                          timeout=180, env={"PYTHONPATH": str(tmp_path), **__import__("os").environ})
    assert done.returncode == 0, done.stderr
    assert "rdApp.error:disabled" in done.stdout and "rdApp.warning:disabled" in done.stdout, done.stdout
