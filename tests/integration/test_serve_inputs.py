"""``fedadmet serve --dask-address``: options that would be ignored, or an address where no Dask
scheduler answers, fail with one ``error:`` line (exit 2) before Prefect starts; the deployment
carries the address in its parameters (built here without a server)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_RUN = r"""
import json, sys
from typer.testing import CliRunner
from flows.cli import app
r = CliRunner().invoke(app, json.loads(sys.argv[1]))
print(json.dumps({"code": r.exit_code, "out": r.output, "prefect": "prefect" in sys.modules}))
"""


def _serve(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", _RUN, json.dumps(["serve", *args])], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


def test_dask_address_without_a_watched_folder_is_an_error(tmp_path, two_partner_dirs):
    res = _serve("--partners-dir", str(two_partner_dirs), "--dask-address", "tcp://127.0.0.1:8786")
    assert res["code"] == 2 and not res["prefect"]
    lines = [line for line in res["out"].splitlines() if line.strip()]
    assert lines == ["error: --dask-address runs the watched folder's screening on a cluster: add --watch"]


def test_dask_address_where_no_scheduler_answers_fails_before_prefect(tmp_path, tiny_bundle):
    (tmp_path / "inbox").mkdir()
    address = f"tcp://127.0.0.1:{_closed_port()}"
    res = _serve("--watch", str(tmp_path / "inbox"), "--model", str(tiny_bundle), "--dask-address", address)
    assert res["code"] == 2 and not res["prefect"]
    assert res["out"].startswith(f"error: --dask-address {address}: no Dask scheduler answers there")
    assert "Traceback" not in res["out"]


def test_watched_folder_deployment_carries_the_dask_address(tmp_path, tiny_bundle):
    from flows.serve import ServeSettings, deployments
    from pipelines.errors import InputError

    plain, on_cluster = (deployments(ServeSettings(watch_dir=tmp_path, bundle_dir=tiny_bundle, screen_out=tmp_path,
                                                   dask_address=address))[0]
                         for address in (None, "tcp://10.0.0.5:8786"))
    assert "dask_address" not in plain.parameters and "dask" not in plain.tags
    assert on_cluster.parameters["dask_address"] == "tcp://10.0.0.5:8786" and "dask" in on_cluster.tags
    with pytest.raises(InputError, match="add --watch"):
        ServeSettings(partners_dir=tmp_path, federated_out=tmp_path, dask_address="tcp://10.0.0.5:8786")


@pytest.fixture
def two_partner_dirs(tmp_path) -> Path:
    from pipelines.catalog import load_embedded
    from pipelines.partition import partition_partners, write_partition

    long_df = load_embedded(["solubility"])
    keep = long_df["compound_id"].drop_duplicates().head(60)
    write_partition(partition_partners(long_df[long_df["compound_id"].isin(keep)], n_partners=2, seed=0),
                    tmp_path / "partners")
    return tmp_path / "partners"


def test_watched_folder_without_a_model_uses_the_shipped_model(tmp_path, monkeypatch):
    # no --model: the shipped base model is checked and named (it was an error before); the command then stops
    # at the missing server, still before Prefect is imported
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    (tmp_path / "inbox").mkdir()
    res = _serve("--watch", str(tmp_path / "inbox"))
    assert res["code"] == 2 and not res["prefect"]
    assert "watched folder screens with the shipped base model" in res["out"]
    assert "models/fedadmet-base-" in res["out"].replace("\n", "")
    assert res["out"].splitlines()[-1].startswith("error: PREFECT_API_URL is not set")
