"""Masked multitask loss: censored regression and missing labels, with known values."""

import math

import numpy as np
import torch

from admet.losses import masked_multitask_loss, pos_weights

NAN = float("nan")


def _loss(pred, y, censor, is_cls, **kw):
    return masked_multitask_loss(torch.tensor(pred, dtype=torch.float32), torch.tensor(y, dtype=torch.float32),
                                 torch.tensor(censor), torch.tensor(is_cls), **kw)


def test_censored_regression_counts_only_the_wrong_side():
    # label 2.0; predictions 1.0 (below) and 3.0 (above); '<' = true value below 2, '>' = above
    cases = [  # (pred, censor, expected loss)
        (1.0, -1, 0.0),   # '<2', predicted 1: consistent -> no loss
        (3.0, -1, 1.0),   # '<2', predicted 3: wrong side by 1 -> 1
        (1.0, 1, 1.0),    # '>2', predicted 1: wrong side by 1 -> 1
        (3.0, 1, 0.0),    # '>2', predicted 3: consistent -> no loss
        (1.0, 0, 1.0),    # exact: squared error
        (4.0, 0, 4.0),
    ]
    for pred, c, expected in cases:
        got = float(_loss([[pred]], [[2.0]], [[c]], [False]))
        assert math.isclose(got, expected, abs_tol=1e-6), (pred, c, got)
    # mean over the observed entries of a batch
    batch = float(_loss([[1.0], [3.0], [1.0], [4.0]], [[2.0]] * 4, [[-1], [-1], [1], [0]], [False]))
    assert math.isclose(batch, (0 + 1 + 1 + 4) / 4, abs_tol=1e-6)


def test_classification_bce_with_pos_weight_known_values():
    got = float(_loss([[0.0]], [[1.0]], [[0]], [True]))
    assert math.isclose(got, math.log(2), rel_tol=1e-6)
    got = float(_loss([[0.0]], [[1.0]], [[0]], [True], pos_weight=torch.tensor([3.0])))
    assert math.isclose(got, 3 * math.log(2), rel_tol=1e-6)
    got = float(_loss([[0.0]], [[0.0]], [[0]], [True], pos_weight=torch.tensor([3.0])))
    assert math.isclose(got, math.log(2), rel_tol=1e-6)  # negatives are not re-weighted


def test_missing_labels_contribute_no_loss_and_no_gradient():
    pred = torch.tensor([[0.5, 2.0], [1.0, -3.0], [7.0, 0.2]], requires_grad=True)
    y = torch.tensor([[1.0, NAN], [NAN, 1.0], [NAN, NAN]])
    censor = torch.zeros(3, 2, dtype=torch.int8)
    loss = masked_multitask_loss(pred, y, censor, torch.tensor([False, True]))
    loss.backward()
    grad = pred.grad.numpy()
    missing = np.isnan(y.numpy())
    assert np.all(grad[missing] == 0.0)
    assert np.all(grad[~missing] != 0.0)
    # the value equals the loss over the two observed entries only
    expected = ((0.5 - 1.0) ** 2 + float(torch.nn.functional.softplus(torch.tensor(3.0)))) / 2
    assert math.isclose(loss.item(), expected, rel_tol=1e-5)
    # a batch with no labels at all: zero loss, finite gradient
    empty = torch.full((2, 2), NAN)
    p2 = torch.zeros(2, 2, requires_grad=True)
    l2 = masked_multitask_loss(p2, empty, torch.zeros(2, 2, dtype=torch.int8), torch.tensor([False, True]))
    l2.backward()
    assert l2.item() == 0.0 and torch.all(p2.grad == 0)


def test_pos_weights_is_negatives_over_positives():
    Y = np.array([[1, 0.3], [0, 1.2], [0, NAN], [0, 2.0], [NAN, 0.1]])
    w = pos_weights(Y, [True, False]).numpy()
    assert w[0] == 3.0 and w[1] == 1.0
