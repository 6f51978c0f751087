"""Per-molecule difficulty signals from a fitted ensemble, and the calibrated model-space prediction.

The *component spread* is the standard deviation over every prediction that goes into the
ensemble mean: each member, and for a ``blend`` member its network and LightGBM parts separately.
A ``blend x1`` bundle therefore has a non-zero spread (how much its two parts disagree) where the
member standard deviation ``E_std`` is 0. ``admet.conformal.ConformalRegressor`` turns it, together
with the applicability domain's similarities, into an interval width.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


def member_components(member, X: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """(the member's prediction, its component predictions): a blend's parts (``BlendMember.components``:
    its per-endpoint weights), else itself."""
    if getattr(member, "family", "") == "blend" and hasattr(member, "components"):
        return member.components(X)
    p = member.predict(X)
    return p, [p]


def predict_with_spread(ensemble, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, std, spread), each (n, T): mean and std exactly as ``Ensemble.predict`` (std over
    members, ddof 1, 0 for one member); spread = std over all components (ddof 0)."""
    preds, comps = [], []
    for m in ensemble.members:
        p, c = member_components(m, X)
        preds.append(p)
        comps.extend(c)
    P = np.stack(preds)
    mean = P.mean(axis=0)
    std = P.std(axis=0, ddof=1) if len(preds) > 1 else np.zeros_like(mean)
    C = np.stack(comps)
    spread = C.std(axis=0) if len(comps) > 1 else np.zeros_like(mean)
    return mean, std, spread


@dataclass(slots=True)
class CalibratedPrediction:
    """Model-space predictions of one batch (regression on the task's model scale, e.g. log10)."""

    mean: np.ndarray
    """(n, T): regression mean; calibrated P(class 1) for classification."""
    raw: np.ndarray
    """(n, T): the ensemble mean before probability calibration."""
    std: np.ndarray
    """(n, T): member standard deviation (``E_std``)."""
    spread: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    domain: object
    """``admet.domain.DomainResult`` of the batch."""


def calibrated_predict(ensemble, tasks, conformal: dict, calibrators: dict, domain, X: np.ndarray,
                       smiles, bits=None) -> CalibratedPrediction:
    """Ensemble + domain + conformal intervals + probability calibration on scaled features ``X``."""
    from admet.domain import assess_without_domain

    mean, std, spread = predict_with_spread(ensemble, X)
    dom = domain.assess(smiles, bits) if domain is not None else assess_without_domain(smiles, bits)
    n, T = mean.shape
    out = mean.copy()
    lower, upper = np.full((n, T), np.nan), np.full((n, T), np.nan)
    for j, task in enumerate(tasks):
        if task.is_classification:
            cal = calibrators.get(task.name)
            if cal is not None:
                out[:, j] = cal.transform(mean[:, j])
            continue
        conf = conformal.get(task.name)
        if conf is None:
            continue
        # bundles from before the component spread was used normalised by the member std
        s = std[:, j] if conf.method == "normalized" else spread[:, j]
        lower[:, j], upper[:, j] = conf.interval(mean[:, j], s, dom.similarity, dom.knn_similarity)
    return CalibratedPrediction(out, mean, std, spread, lower, upper, dom)
