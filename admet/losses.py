"""Masked multitask loss: regression (with censoring) and classification in one objective.

* Missing labels (``NaN``) contribute nothing: neither to the loss nor to any gradient.
* Regression: squared error in scaled target space. A censored label (MELLODDY-style) only
  contributes when the prediction is on the wrong side of it: for ``<`` (censor -1) the
  loss is ``relu(pred - y)**2``, for ``>`` (censor +1) it is ``relu(y - pred)**2``.
* Classification: binary cross-entropy on logits, with ``pos_weight`` per task.
* The result is the (task-weighted) sum over observed labels divided by the number of
  observed labels in the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_multitask_loss(
    pred: torch.Tensor,
    y: torch.Tensor,
    censor: torch.Tensor,
    is_classification: torch.Tensor,
    pos_weight: torch.Tensor | None = None,
    task_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean loss over the observed entries of ``y`` (shape (n, T); NaN = missing).

    Args:
        pred: (n, T) model outputs (scaled values for regression, logits for classification).
        y: (n, T) targets in the same space (scaled regression values, 0/1 labels); NaN missing.
        censor: (n, T) int: -1 ``<``, 0 exact, +1 ``>`` (ignored for classification tasks).
        is_classification: (T,) bool.
        pos_weight: (T,) weight of the positive class per classification task (1 = none).
        task_weight: (T,) weight per task (1 = equal).
    """
    if pred.shape != y.shape or censor.shape != y.shape:
        raise ValueError(f"shapes differ: pred {tuple(pred.shape)}, y {tuple(y.shape)}, "
                         f"censor {tuple(censor.shape)}")
    T = y.shape[1]
    observed = ~torch.isnan(y)
    y0 = torch.where(observed, y, torch.zeros_like(y))
    cls = is_classification.to(torch.bool).reshape(1, T).expand_as(y)
    censor = censor.to(pred.dtype)

    diff = pred - y0
    over = F.relu(diff)      # prediction above the label
    under = F.relu(-diff)    # prediction below the label
    reg = torch.where(censor < 0, over**2, torch.where(censor > 0, under**2, diff**2))

    pw = torch.ones(T, dtype=pred.dtype) if pos_weight is None else pos_weight.to(pred.dtype)
    bce = F.binary_cross_entropy_with_logits(
        pred, y0, pos_weight=pw.reshape(1, T), reduction="none"
    )
    per_entry = torch.where(cls, bce, reg)
    if task_weight is not None:
        per_entry = per_entry * task_weight.to(pred.dtype).reshape(1, T)
    per_entry = torch.where(observed, per_entry, torch.zeros_like(per_entry))
    n_obs = observed.sum()
    return per_entry.sum() / n_obs.clamp(min=1)


def pos_weights(Y, is_classification) -> torch.Tensor:
    """Per-task positive-class weight = n_negative / n_positive (1 where undefined).

    ``Y`` is an (n, T) numpy array of labels (NaN missing); regression tasks get 1.
    """
    import numpy as np

    Y = np.asarray(Y, dtype=float)
    w = np.ones(Y.shape[1])
    for t in np.flatnonzero(np.asarray(is_classification)):
        col = Y[:, t][~np.isnan(Y[:, t])]
        pos, neg = float((col == 1).sum()), float((col == 0).sum())
        if pos > 0 and neg > 0:
            w[t] = neg / pos
    return torch.tensor(w, dtype=torch.float32)
