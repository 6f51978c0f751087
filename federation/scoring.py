"""Per-endpoint scores on a partner's test rows, and MELLODDY's delta metrics between two models.

Primary metric per endpoint (higher is better, perfect = 1): Spearman for regression, AUROC for
classification. A partner's metric is the mean over its endpoints that can be scored (at least
``MIN_TEST`` labelled test rows; both classes present for classification; for regression, labels that
are not all equal: a rank correlation with a constant target is undefined, and scoring it 0 for every model
gave a partner of the full-catalog run a tie at 0.000 it could not break).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from admet.tasks import TaskSpec

log = logging.getLogger(__name__)

MIN_TEST = 5
PERFECT = 1.0


def primary_metric_name(task: TaskSpec) -> str:
    return "auroc" if task.is_classification else "spearman"


def endpoint_scores(pred: np.ndarray, Y: np.ndarray, tasks: list[TaskSpec],
                    only: list[str] | None = None) -> dict[str, dict]:
    """``{endpoint: {"metric": name, "value": x, "n": m}}`` for every scorable endpoint."""
    out: dict[str, dict] = {}
    for j, task in enumerate(tasks):
        if only is not None and task.name not in only:
            continue
        obs = ~np.isnan(Y[:, j])
        y, p = Y[obs, j], pred[obs, j]
        if len(y) < MIN_TEST:
            continue
        if task.is_classification:
            if len(np.unique(y)) < 2:
                continue
            value = float(roc_auc_score(y, p))
        else:
            if np.std(y) == 0:
                continue
            if np.std(p) == 0:  # a constant prediction ranks nothing
                value = 0.0
            else:
                value = float(spearmanr(y, p).statistic)
        if math.isnan(value):
            continue
        out[task.name] = {"metric": primary_metric_name(task), "value": value, "n": int(len(y))}
    return out


def partner_metric(scores: dict[str, dict]) -> float:
    """Mean primary metric over the scored endpoints (NaN when none)."""
    if not scores:
        return float("nan")
    return float(np.mean([s["value"] for s in scores.values()]))


def deltas(local: float, federated: float, perfect: float = PERFECT) -> dict[str, float]:
    """MELLODDY delta metrics of federated over local-only.

    absolute: ``fed - local``; relative: ``(fed - local) / |local|``; improvement-to-perfect:
    ``(fed - local) / (perfect - local)`` (the share of the remaining headroom closed).
    """
    absolute = federated - local
    relative = absolute / abs(local) if local not in (0.0,) and not math.isnan(local) else float("nan")
    headroom = perfect - local
    to_perfect = absolute / headroom if headroom > 1e-12 else float("nan")
    return {"absolute": absolute, "relative": relative, "improvement_to_perfect": to_perfect}


def gap_closed(local: float, federated: float, pooled: float) -> float:
    """Share of the local -> pooled gap the federated model closes (NaN when pooled is no better)."""
    gap = pooled - local
    if not gap > 1e-9:
        return float("nan")
    return (federated - local) / gap
