"""Held-out metrics as TDC reports them: MAE/Spearman/Pearson/R2 and AUROC/AUPRC."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import average_precision_score, r2_score, roc_auc_score

from admet.tasks import CLASSIFICATION, TaskSpec

log = logging.getLogger(__name__)

REGRESSION_METRICS = ("mae", "spearman", "pearson", "r2")
CLASSIFICATION_METRICS = ("auroc", "auprc")


def primary_metric(task_type: str) -> str:
    """The headline metric (higher is better): Spearman for regression, AUROC for classification."""
    return "auroc" if task_type == CLASSIFICATION else "spearman"


def regression_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    y, p = _finite_pairs(y, p)
    out = {"n": int(len(y))}
    if len(y) < 2:
        return out | {k: math.nan for k in REGRESSION_METRICS}
    constant = np.std(y) == 0 or np.std(p) == 0
    out["mae"] = float(np.mean(np.abs(y - p)))
    out["spearman"] = math.nan if constant else float(stats.spearmanr(y, p).statistic)
    out["pearson"] = math.nan if constant else float(stats.pearsonr(y, p).statistic)
    out["r2"] = float(r2_score(y, p))
    return out


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    y, p = _finite_pairs(y, p)
    out = {"n": int(len(y))}
    if len(np.unique(y)) < 2:
        return out | {k: math.nan for k in CLASSIFICATION_METRICS}
    out["auroc"] = float(roc_auc_score(y, p))
    out["auprc"] = float(average_precision_score(y, p))
    return out


def task_metrics(Y: np.ndarray, P: np.ndarray, tasks: Sequence[TaskSpec],
                 censor: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """Per endpoint metrics on the observed (and, for regression, uncensored) labels."""
    out: dict[str, dict[str, float]] = {}
    for j, task in enumerate(tasks):
        mask = ~np.isnan(Y[:, j])
        if censor is not None and not task.is_classification:
            mask &= censor[:, j] == 0
        fn = classification_metrics if task.is_classification else regression_metrics
        out[task.name] = fn(Y[mask, j], P[mask, j])
    return out


def _finite_pairs(y, p) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y, float), np.asarray(p, float)
    ok = np.isfinite(y) & np.isfinite(p)
    return y[ok], p[ok]
