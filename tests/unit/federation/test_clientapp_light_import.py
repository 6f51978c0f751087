"""The ClientApp module imports no heavy library: on the Deployment Engine every message starts a fresh
``flwr-clientapp`` process that imports it, and the SecAgg+ key, share and unmask stages and the
audit need none of torch / pandas / RDKit / scikit-learn / SciPy (they are imported by the handlers
that train or score). A fresh interpreter, so what other tests imported does not count."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "pandas", "rdkit", "sklearn", "scipy", "lightgbm", "xgboost", "prefect", "ray")


def _imported_after(statement: str) -> list[str]:
    code = (f"import json, sys; {statement}; "
            f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_client_app_pulls_in_no_heavy_library():
    assert _imported_after("import federation.client_app") == []

