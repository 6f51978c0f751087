"""Ensembles of k members (different seeds, optionally bootstrap resamples): mean and spread."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from admet.config import ModelConfig
from admet.members import Member, fit_member, load_member
from admet.tasks import TaskSpec

log = logging.getLogger(__name__)


class Ensemble:
    """k fitted members of one family; ``predict`` gives the member mean and standard deviation."""

    def __init__(self, members: Sequence[Member], tasks: Sequence[TaskSpec]) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = list(members)
        self.tasks = list(tasks)

    @property
    def family(self) -> str:
        return self.members[0].family

    @classmethod
    def fit(cls, X: np.ndarray, Y: np.ndarray, censor: np.ndarray, tasks: Sequence[TaskSpec],
            cfg: ModelConfig, progress: Callable[[int, int], None] | None = None,
            valid: tuple | None = None) -> "Ensemble":
        """Member i uses seed ``cfg.seed + i``; with ``cfg.bootstrap`` it trains on a resample.
        ``valid`` = (X, Y, censor): rows every member stops early on (``admet.members.fit_member``)."""
        members = []
        for i in range(cfg.ensemble):
            seed = cfg.seed + i
            rows = np.arange(len(X))
            if cfg.bootstrap and cfg.ensemble > 1:
                rows = np.sort(np.random.default_rng(seed).integers(0, len(X), len(X)))
            log.info("training %s member %d/%d (seed %d, %d rows)", cfg.model, i + 1, cfg.ensemble,
                     seed, len(rows))
            members.append(fit_member(cfg.model, X[rows], Y[rows], censor[rows], tasks, cfg, seed, valid=valid))
            if progress is not None:
                progress(i + 1, cfg.ensemble)
        return cls(members, tasks)

    def predict_members(self, X: np.ndarray) -> np.ndarray:
        """(k, n, T) member predictions."""
        return np.stack([m.predict(X) for m in self.members])

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) over members, each (n, T); std is 0 for a single member."""
        P = self.predict_members(X)
        mean = P.mean(axis=0)
        std = P.std(axis=0, ddof=1) if len(self.members) > 1 else np.zeros_like(mean)
        return mean, std

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for i, m in enumerate(self.members):
            m.save(folder / f"member_{i:02d}")

    @classmethod
    def load(cls, folder: Path, tasks: Sequence[TaskSpec], n_members: int) -> "Ensemble":
        members = []
        for i in range(n_members):
            sub = folder / f"member_{i:02d}"
            if not sub.is_dir():
                raise FileNotFoundError(f"ensemble member folder missing: {sub}")
            members.append(load_member(sub))
        return cls(members, tasks)
