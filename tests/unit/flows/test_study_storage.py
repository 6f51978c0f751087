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
