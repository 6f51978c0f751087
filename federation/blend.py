"""The federated blend: per partner and endpoint, the federated net, the partner's private trees, or both.

On each partner's node, after the federated run:

- **federated NN**: the partner's own bundle (global trunk + its heads; ``modelio.report_metrics``
  writes it in the node-local folder) predicts the partner's ``valid`` and ``test`` rows;
- **private trees**: the LightGBM part of the partner's best-solo model (``federation.baselines``),
  trained on the partner's own rows only; nothing about it leaves the node;
- **equal blend**: the mean of the two (the net alone where LightGBM has no model, as
  ``admet.members.BlendMember`` does);
- **federated trees** (optional): per-partner predictions from a federated tree ensemble, when the
  caller passes them (``extra``).

Per endpoint the option with the best primary metric on the partner's **valid** rows is chosen
(``choose``); test labels are never read for the choice. Where the valid rows cannot score an endpoint
(fewer than ``scoring.MIN_TEST`` labels, one class) the equal blend is taken, the default family's
rule. Ties go to the earlier option in ``PREFERENCE``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from admet.tasks import TaskSpec
from federation import scoring, task

log = logging.getLogger(__name__)

FED_NN, PRIVATE_TREES, EQUAL_BLEND, FED_TREES = "federated_nn", "private_trees", "equal_blend", "federated_trees"
#: Order of preference on ties (and the fallback first).
PREFERENCE = (EQUAL_BLEND, FED_NN, PRIVATE_TREES, FED_TREES)
FALLBACK = EQUAL_BLEND
BLEND_FILE = "federated_blend.json"
TREE_PREDICTIONS_FILE = "private_trees_predictions.npz"


def equal_blend(nn: np.ndarray, trees: np.ndarray) -> np.ndarray:
    """``(nn + trees) / 2``; the net alone where the trees are NaN (no model for that endpoint)."""
    nn, trees = np.asarray(nn, float), np.asarray(trees, float)
    return np.where(np.isnan(trees), nn, 0.5 * (nn + trees))


def candidates(nn: np.ndarray, trees: np.ndarray, extra: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every option's (n, T) predictions for one fold; trees NaN columns fall back to the net."""
    trees = np.asarray(trees, float)
    out = {FED_NN: np.asarray(nn, float), PRIVATE_TREES: np.where(np.isnan(trees), nn, trees),
           EQUAL_BLEND: equal_blend(nn, trees)}
    for name, pred in (extra or {}).items():
        pred = np.asarray(pred, float)
        out[name] = np.where(np.isnan(pred), nn, pred)
    return out


def choose(valid: dict[str, np.ndarray], Y_valid: np.ndarray, tasks: list[TaskSpec]) -> dict[str, dict]:
    """Per endpoint ``{"choice": option, "valid": {option: score}}`` from the valid fold only."""
    per_option = {name: scoring.endpoint_scores(pred, Y_valid, tasks) for name, pred in valid.items()}
    order = [o for o in PREFERENCE if o in valid] + [o for o in valid if o not in PREFERENCE]
    out = {}
    for t in tasks:
        scores = {o: per_option[o][t.name]["value"] for o in order if t.name in per_option[o]}
        if scores:
            best = max(scores.values())
            pick = next(o for o in order if o in scores and scores[o] == best)
        else:
            pick = FALLBACK if FALLBACK in valid else order[0]
        out[t.name] = {"choice": pick, "valid": scores}
    return out


def apply(test: dict[str, np.ndarray], choice: dict[str, dict], tasks: list[TaskSpec]) -> np.ndarray:
    """The blend's (n, T) predictions: column j from the option chosen for endpoint j."""
    first = next(iter(test.values()))
    out = np.full(first.shape, np.nan)
    for j, t in enumerate(tasks):
        out[:, j] = test[choice[t.name]["choice"]][:, j]
    return out


def federated_nn_predictions(bundle_dir: Path, data: task.PartnerData) -> dict[str, np.ndarray]:
    """The partner's federated model (its node bundle) on its valid and test rows, its own task order."""
    from admet.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    cols = [bundle.task_names.index(n) for n in data.task_names]
    out = {}
    for fold in ("valid", "test"):
        X = bundle.features.scaler.transform(data.X[data.rows(fold)])
        mean, _ = bundle.ensemble.predict(X)
        out[fold] = mean[:, cols]
    return out


def blend_partner(data: task.PartnerData, nn: dict[str, np.ndarray], trees: dict[str, np.ndarray],
                  extra: dict[str, dict[str, np.ndarray]] | None = None) -> dict:
    """Choose on valid, score on test. ``nn`` / ``trees``: fold -> (n_fold, T_own) predictions;
    ``extra``: option name -> fold -> predictions (e.g. federated trees)."""
    extra = extra or {}
    valid = candidates(nn["valid"], trees["valid"], {k: v["valid"] for k, v in extra.items()})
    test = candidates(nn["test"], trees["test"], {k: v["test"] for k, v in extra.items()})
    choice = choose(valid, data.Y[data.rows("valid")], data.tasks)
    Y_test = data.Y[data.rows("test")]
    blended = scoring.endpoint_scores(apply(test, choice, data.tasks), Y_test, data.tasks)
    by_option = {name: scoring.endpoint_scores(pred, Y_test, data.tasks) for name, pred in test.items()}
    return {"metric": scoring.partner_metric(blended),
            "endpoints": {k: v["value"] for k, v in blended.items()},
            "choice": {k: v["choice"] for k, v in choice.items()},
            "valid_scores": {k: v["valid"] for k, v in choice.items()},
            "test_by_option": {name: {"metric": scoring.partner_metric(s),
                                      "endpoints": {k: v["value"] for k, v in s.items()}}
                               for name, s in by_option.items()}}


def federated_blend(partners: list[task.PartnerData], bundle_dirs: dict[str, Path], trees: dict[str, dict],
                    extra: dict[str, dict[str, dict[str, np.ndarray]]] | None = None,
                    write_choice: bool = True) -> dict[str, dict]:
    """Per partner :func:`blend_partner`; partners without a bundle or private trees are left out.

    ``trees``: partner -> fold -> private-tree predictions; ``extra``: partner -> option -> fold -> predictions.
    With ``write_choice`` the per-endpoint choice and valid scores go to ``BLEND_FILE`` next to the
    partner's bundle (its node-local folder).
    """
    out = {}
    for data in partners:
        folder = bundle_dirs.get(data.partner)
        if folder is None or not Path(folder).is_dir() or data.partner not in trees:
            log.warning("%s: no federated bundle or private trees; no federated blend", data.partner)
            continue
        res = blend_partner(data, federated_nn_predictions(folder, data), trees[data.partner],
                            (extra or {}).get(data.partner))
        out[data.partner] = res
        if write_choice:
            record = {"rule": "per endpoint, best primary metric on the partner's valid rows", "choice": res["choice"],
                      "valid_scores": res["valid_scores"]}
            (Path(folder).parent / BLEND_FILE).write_text(json.dumps(record, indent=1))
            save_private_tree_predictions(Path(folder).parent, data, trees[data.partner])
        log.info("federated blend %s: %.3f (%s)", data.partner, res["metric"], res["choice"])
    return out


def save_private_tree_predictions(node_dir: Path, data: task.PartnerData, trees: dict[str, np.ndarray]) -> Path:
    """The private trees' valid / test predictions in the partner's node folder (they stay there), so a
    later step can blend another option in without retraining (``bench/federation.py --modes fedtrees``)."""
    path = Path(node_dir) / TREE_PREDICTIONS_FILE
    np.savez(path, tasks=np.array(data.task_names), valid=trees["valid"], test=trees["test"])
    return path


def load_private_tree_predictions(node_dir: Path, data: task.PartnerData) -> dict[str, np.ndarray]:
    with np.load(Path(node_dir) / TREE_PREDICTIONS_FILE, allow_pickle=False) as z:
        if [str(t) for t in z["tasks"]] != data.task_names:
            raise ValueError(f"{data.partner}: saved private-tree predictions are for other endpoints")
        return {"valid": z["valid"], "test": z["test"]}


def federated_tree_option(per_endpoint: dict[str, dict[str, np.ndarray]], data: task.PartnerData) -> dict[str, np.ndarray]:
    """``federation.trees`` predictions of one partner (endpoint -> fold -> (n_fold,)) as fold -> (n_fold, T_own);
    endpoints without federated trees are NaN (the option falls back to the net there)."""
    out = {}
    for fold in ("valid", "test"):
        n = len(data.rows(fold))
        out[fold] = np.column_stack([np.asarray(per_endpoint[name][fold], float) if name in per_endpoint
                                     else np.full(n, np.nan) for name in data.task_names]).reshape(n, len(data.tasks))
    return out
