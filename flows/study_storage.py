"""Find the Optuna studies a run folder holds (SQLite files written by the tuning, lab and trial-design
studies) so that one command can open them in optuna-dashboard."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import InputError

log = logging.getLogger(__name__)

SUFFIXES = (".db", ".sqlite", ".sqlite3")


@dataclass(frozen=True, slots=True)
class StudyStorage:
    """One SQLite file with Optuna's schema, and the studies in it."""

    path: Path
    studies: tuple[str, ...]

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path.resolve()}"


def _study_names(path: Path) -> tuple[str, ...] | None:
    """Study names in an Optuna SQLite file; None when the file is not an Optuna storage."""
    try:
        con = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        rows = con.execute("SELECT study_name FROM studies ORDER BY study_id").fetchall()
    except sqlite3.DatabaseError:
        return None
    finally:
        con.close()
    return tuple(r[0] for r in rows)


def find_storages(run_dir: Path) -> list[StudyStorage]:
    """Every Optuna SQLite storage under ``run_dir`` (or ``run_dir`` itself if it is one), sorted by path."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise InputError(f"run folder not found: {run_dir}")
    files = [run_dir] if run_dir.is_file() else sorted(p for p in run_dir.rglob("*") if p.suffix in SUFFIXES
                                                        and p.is_file())
    found = []
    for path in files:
        names = _study_names(path)
        if names is not None:
            found.append(StudyStorage(path, names))
    return found


def pick_storage(run_dir: Path, study: str | None = None) -> StudyStorage:
    """The one storage to open: the only one, or the one holding ``study``; an InputError listing the
    choices otherwise."""
    found = find_storages(run_dir)
    if study is not None:
        found = [s for s in found if study in s.studies]
    if len(found) == 1:
        return found[0]
    if not found:
        what = f"a study named {study!r}" if study else "an Optuna study (SQLite storage)"
        raise InputError(f"no {what} under {run_dir}; run `fedadmet tune`, `fedadmet lab` or `fedadmet demo` first")
    listing = "; ".join(f"{s.path} ({', '.join(s.studies)})" for s in found)
    raise InputError(f"{len(found)} study storages under {run_dir}: {listing}. Pass one file, or --study NAME")
