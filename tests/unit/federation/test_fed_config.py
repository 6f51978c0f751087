"""The one run-config schema: ``FederatedConfig`` <-> Flower's ``run_config``, and the app manifest."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from federation.config import FederatedConfig, run_config_key
from federation.deployment.admet_run import project_app_dir
from pipelines.errors import InputError


def test_run_config_round_trip_keeps_every_field(tmp_path):
    cfg = FederatedConfig(out_dir=tmp_path, hidden=(64, 32), endpoints=("solubility", "bbb"), dp_clip=0.5,
                          dp_noise=0.1, min_partners=3, poison_partners=("partner_01",), strategy="fedprox",
                          validate_norms=False, max_rows=100)
    rc = cfg.to_run_config()
    assert all(isinstance(v, (str, int, float, bool)) for v in rc.values())
    assert FederatedConfig.from_run_config(rc).to_dict() == cfg.to_dict()


def test_the_manifest_lists_every_key_with_the_schema_default():
    manifest = tomllib.loads((project_app_dir() / "pyproject.toml").read_text())
    app = manifest["tool"]["flwr"]["app"]
    assert app["components"] == {"serverapp": "federation.server_app:app", "clientapp": "federation.client_app:app"}
    config = app["config"]
    fields = dataclasses.fields(FederatedConfig)
    assert list(config) == [run_config_key(f.name) for f in fields]
    defaults = FederatedConfig.from_run_config({**config, "out-dir": "run"})
    assert defaults.to_dict() == FederatedConfig(out_dir=Path("run")).to_dict()


def test_bad_run_config_fails_once_with_a_clear_error():
    with pytest.raises(InputError, match="unknown run-config key"):
        FederatedConfig.from_run_config({"out-dir": "x", "num-server-rounds": 3})
    with pytest.raises(InputError, match="out-dir"):
        FederatedConfig.from_run_config({"rounds": 3})
    with pytest.raises(InputError, match="rounds"):
        FederatedConfig.from_run_config({"out-dir": "x", "rounds": "three"})
    with pytest.raises(InputError, match="strategy"):
        FederatedConfig.from_run_config({"out-dir": "x", "strategy": "byzantine"})


def test_secagg_with_shared_heads_is_refused_up_front(tmp_path):
    from federation.config import FederatedConfig

    with pytest.raises(InputError, match="needs --heads private"):
        FederatedConfig(out_dir=tmp_path, heads="shared", secagg=True, n_partners=5)
    FederatedConfig(out_dir=tmp_path, heads="private", secagg=True, n_partners=5)  # the supported combination
