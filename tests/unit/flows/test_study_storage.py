"""The dashboard command finds a run's Optuna storage; studies name their objectives."""

from __future__ import annotations

import sqlite3

import optuna
import pytest

from flows.study_storage import find_storages, pick_storage
from flows.tuning import open_study
from pipelines.errors import InputError


def _study(folder, name, metric="validation_loss"):
    study = open_study(folder, name, metric_name=metric)
    study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.2) ** 2, n_trials=2)
    return study


def test_finds_the_only_storage_and_ignores_other_sqlite_files(tmp_path):
    _study(tmp_path / "tune", "admet")
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x INTEGER)")
    (tmp_path / "notes.db").write_text("not a database")
    found = pick_storage(tmp_path)
    assert found.path == (tmp_path / "tune" / "optuna.db") and found.studies == ("admet",)
    assert found.url == f"sqlite:///{(tmp_path / 'tune' / 'optuna.db').resolve()}"
    loaded = optuna.load_study(study_name="admet", storage=found.url)
    assert loaded.metric_names == ["validation_loss"]


def test_several_storages_need_a_study_name(tmp_path):
    _study(tmp_path / "lab", "lab-acquisition", metric="discovery_auc")
    _study(tmp_path / "tune", "admet")
    assert len(find_storages(tmp_path)) == 2
    with pytest.raises(InputError, match="2 study storages"):
        pick_storage(tmp_path)
    assert pick_storage(tmp_path, study="lab-acquisition").path.parent.name == "lab"
    with pytest.raises(InputError, match="no a study named 'nope'|study named 'nope'"):
        pick_storage(tmp_path, study="nope")


def test_missing_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        pick_storage(tmp_path / "absent")
    with pytest.raises(InputError, match="no an Optuna study|Optuna study"):
        pick_storage(tmp_path)


def test_dashboard_command_names_the_storages_it_cannot_choose_between(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    _study(tmp_path / "lab", "lab-acquisition", metric="discovery_auc")
    _study(tmp_path / "tune", "admet")
    exe = Path(sys.executable).with_name("fedadmet")
    out = subprocess.run([str(exe), "dashboard", "optuna", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: 2 study storages"), out.stderr
    assert "lab-acquisition" in lines[0] and "--study NAME" in lines[0]
