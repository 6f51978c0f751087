"""``fedadmet screen --dask-address`` on a real Dask cluster: a ``dask scheduler`` and two
``dask worker`` processes on loopback (issue 13 §3, issue 12 §3).

The proof that Dask ran the chunks comes from the workers themselves: each worker's own
transition log (``executing -> memory``) read back with ``Client.run``. The ranked output must
equal the in-process run row for row.
"""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.dask_cluster import start_cluster, worker_task_records
from flows.prefect_server import free_port
from flows.screening_steps import FEATURIZATION_FAILED, ScreeningConfig, chunk_bounds, screen_plain

CHUNK = 4


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    cluster = start_cluster(free_port(), n_workers=2, log_dir=tmp_path_factory.mktemp("dask_logs"))
    try:
        yield cluster
    finally:
        cluster.stop()
        assert all(p.poll() is not None for p in (cluster.scheduler, *cluster.workers))


@pytest.mark.slow
def test_screen_with_only_a_dask_address_runs_every_chunk_on_the_cluster_workers(
        prefect_harness, dask_cluster, tiny_library, tiny_bundle, tmp_path):
    from flows.cli import app

    before = worker_task_records(dask_cluster.address)
    assert sorted(before) == ["worker-0", "worker-1"] and not any(before.values())

    out = tmp_path / "cluster"
    result = CliRunner().invoke(app, ["screen", str(tiny_library), "--model", str(tiny_bundle), "--out", str(out),
                                      "--chunk-size", str(CHUNK), "--top", "5", "--no-cache",
                                      "--dask-address", dask_cluster.address])
    assert result.exit_code == 0, result.output

    plain = screen_plain(ScreeningConfig(library=tiny_library, bundle_dir=tiny_bundle, out_dir=tmp_path / "plain",
                                         chunk_size=CHUNK, top_n=5, use_cache=False))
    accepted = len(plain.ranked) + int((plain.rejects["reason"] == FEATURIZATION_FAILED).sum())
    n_chunks = len(chunk_bounds(accepted, CHUNK))
    assert n_chunks == 3
    records = worker_task_records(dask_cluster.address)
    executed = [key for keys in records.values() for key in keys]
    # every featurize and predict chunk of the run was executed by a cluster worker, none twice
    assert sum(k.startswith("predict_task-") for k in executed) == n_chunks
    assert sum(k.startswith("_featurize-") for k in executed) == n_chunks
    assert len(executed) == len(set(executed))

    cluster_ranked = pd.read_csv(out / "ranked.csv")
    plain_ranked = pd.read_csv(plain.files["ranked_csv"])
    pd.testing.assert_frame_equal(cluster_ranked, plain_ranked, check_exact=False, rtol=1e-6)
    pd.testing.assert_frame_equal(pd.read_csv(out / "rejects.csv"), pd.read_csv(plain.files["rejects_csv"]))
