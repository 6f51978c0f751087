"""TDC-style evaluation: scaffold split, several seeds, held-out metrics as mean +/- std.

Features are computed once; each seed re-splits (unless the table fixes the split with a
``split`` column, in which case seeds only vary model initialisation) and trains a fresh
model. The result is a per-endpoint table (Markdown + JSON).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from admet.config import ModelConfig
from admet.features import FeatureSet
from admet.fit import featurize_task_data, fit_fold, resolve_split
from admet.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from admet.tasks import TaskData

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Evaluation:
    """Per-seed metrics and their summary."""

    per_seed: list[dict] = field(default_factory=list)
    """One entry per seed: ``{"seed", "split", "test": {endpoint: {metric: value}}, "coverage"}``."""
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    """One row per endpoint x metric: mean, std, n_seeds."""
    config: dict = field(default_factory=dict)

    def to_markdown(self) -> str:
        if self.summary.empty:
            return "_no held-out results_\n"
        wide = {}
        for (endpoint, task_type), grp in self.summary.groupby(["endpoint", "task_type"], sort=False):
            row = {"endpoint": endpoint, "type": task_type, "n_test": int(grp["n_test"].iloc[0])}
            for _, r in grp.iterrows():
                row[r["metric"]] = f"{r['mean']:.3f} +/- {r['std']:.3f}" if math.isfinite(r["mean"]) else "n/a"
            wide[endpoint] = row
        table = pd.DataFrame(list(wide.values())).fillna("")
        cols = ["endpoint", "type", "n_test"] + [m for m in REGRESSION_METRICS + CLASSIFICATION_METRICS
                                                 if m in table.columns]
        table = table[cols]
        header = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
        body = "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in table.to_numpy())
        seeds = len(self.per_seed)
        return (f"Held-out test metrics, mean +/- std over {seeds} seed(s) "
                f"({self.per_seed[0]['split'] if self.per_seed else ''}).\n\n" + header + body)

    def to_json(self) -> dict:
        return {"config": self.config, "per_seed": self.per_seed,
                "summary": json.loads(self.summary.to_json(orient="records"))}

    def write(self, out_dir: Path) -> dict[str, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        files = {"markdown": out_dir / "evaluation.md", "json": out_dir / "evaluation.json"}
        files["markdown"].write_text(self.to_markdown())
        files["json"].write_text(json.dumps(self.to_json(), indent=2, default=_nan_none))
        return files


def _nan_none(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return None


def evaluate_tdc(td: TaskData, cfg: ModelConfig, seeds: int = 5, split_method: str = "scaffold",
                 n_jobs: int | None = None, cache_dir=None,
                 progress: Callable[[int, int], None] | None = None,
                 ignore_table_split: bool = False) -> Evaluation:
    """Train and test ``seeds`` times; summarise held-out metrics per endpoint."""
    if seeds < 1:
        raise ValueError("seeds must be >= 1")
    features = FeatureSet(spec=cfg.featurizer, clip=cfg.feature_clip, n_jobs=n_jobs, cache_dir=cache_dir)
    td, X_raw = featurize_task_data(td, features)
    per_seed = []
    for k in range(seeds):
        seed = cfg.seed + k
        split, how = resolve_split(td, split_method, seed, ignore_table_split=ignore_table_split)
        if not np.any(split == "test"):
            from pipelines.errors import InputError

            raise InputError("the split has no test molecules; nothing to evaluate on")
        run_cfg = cfg.model_copy(update={"seed": seed})
        fold = fit_fold(X_raw, td, split, run_cfg, FeatureSet(cfg.featurizer, cfg.feature_clip))
        per_seed.append({"seed": seed, "split": how, "test": fold.metrics.get("test", {}),
                         "coverage": fold.metrics.get("coverage", {}),
                         "n_molecules": fold.metrics.get("n_molecules", {})})
        log.info("seed %d done (%d/%d)", seed, k + 1, seeds)
        if progress is not None:
            progress(k + 1, seeds)
    rows = []
    for task in td.tasks:
        names = CLASSIFICATION_METRICS if task.is_classification else REGRESSION_METRICS
        for metric in names:
            vals = np.array([s["test"].get(task.name, {}).get(metric, np.nan) for s in per_seed], float)
            finite = vals[np.isfinite(vals)]
            rows.append({"endpoint": task.name, "task_type": task.task_type, "metric": metric,
                         "mean": float(finite.mean()) if len(finite) else math.nan,
                         "std": float(finite.std(ddof=0)) if len(finite) else math.nan,
                         "n_seeds": int(len(finite)),
                         "n_test": int(np.mean([s["test"].get(task.name, {}).get("n", 0) for s in per_seed]))})
    return Evaluation(per_seed=per_seed, summary=pd.DataFrame(rows), config=cfg.to_json_dict())
