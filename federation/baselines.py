"""The two references every federated result is judged against, each trained the careful way.

- **best solo** (the report's ``local`` / ``best_solo``): what a partner would train alone with this
  project's default recipe (``admet.config.CLI_DEFAULTS``: the ``blend`` family, a multitask net plus
  LightGBM per endpoint, averaged; ensemble size ``solo_ensemble``) on its own ``train`` rows, both
  parts early-stopped on its own ``valid`` rows (the net on its validation loss, each LightGBM booster
  on its endpoint's validation labels), features robust-scaled on its own training rows;
- **pooled**: the same recipe on all partners' ``train`` rows together (early stopping on all
  partners' ``valid`` rows), the centralized upper reference, scored on each partner's own test rows.

Both are scored exactly like the federated model (``federation.scoring``, the partner's ``test`` rows).
Beside its best solo model each partner also fits the federated blend's *private trees*
(``federation.blend.fit_private_trees``: the same LightGBM settings, early-stopped on an inner scaffold
split of its train rows, so the blend can be chosen fairly on the valid rows the best-solo model stopped
on); their predictions on the partner's valid and test rows are kept in :class:`SoloFit` (arrays, not
written to the report), their fitting time apart from the best-solo time (``blend_trees_seconds``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from admet.config import ModelConfig
from admet.ensemble import Ensemble
from admet.features import FeatureScaler
from admet.members import BlendMember
from admet.tasks import TaskSpec
from federation import scoring, task
from federation.blend import INNER_VALID_FRACTION, fit_private_net, fit_private_trees
from federation.config import FederatedConfig

log = logging.getLogger(__name__)

#: The family of the reference models: the default of ``fedadmet admet train``.
SOLO_FAMILY = "blend"


@dataclass(slots=True)
class SoloModel:
    """An ``admet.ensemble.Ensemble`` of ``blend`` members with the feature scaler fit on its training rows."""

    scaler: FeatureScaler
    ensemble: Ensemble

    @property
    def members(self) -> list[BlendMember]:
        return self.ensemble.members

    def _scaled(self, X_raw: np.ndarray) -> np.ndarray:
        return self.scaler.transform(X_raw)

    def predict(self, X_raw: np.ndarray) -> np.ndarray:
        """The blend (net + LightGBM, equal weight), mean over members: (n, T)."""
        return self.ensemble.predict(self._scaled(X_raw))[0]

    def predict_parts(self, X_raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(net, trees) predictions, each the mean over members; trees NaN where LightGBM has no model."""
        Xs = self._scaled(X_raw)
        net = np.mean([m.net.predict(Xs) for m in self.members], axis=0)
        with np.errstate(all="ignore"):
            trees = np.mean([m.gbm.predict(Xs) for m in self.members], axis=0)
        return net, trees

    @property
    def best_epochs(self) -> list[int]:
        return [int(m.net.best_epoch) for m in self.members]

    @property
    def tree_rounds(self) -> list[list[int | None]]:
        return [list(m.gbm.best_iterations) for m in self.members]


@dataclass(slots=True)
class SoloFit:
    """One partner's reference scores and the private trees' predictions it lends the blend."""

    scores: dict
    """``{"metric": x, "endpoints": {ep: score}, "best_epochs": [...], "tree_rounds": [...]}``"""
    trees: dict[str, np.ndarray] = field(default_factory=dict)
    """fold (``valid`` / ``test``) -> (n_fold, T_own) predictions of the blend's private trees
    (``federation.blend.PrivateTrees``, never fitted or stopped on ``valid``), partner's task order."""
    model: SoloModel | None = None
    solo_trees: dict[str, np.ndarray] = field(default_factory=dict)
    """The same folds from the best-solo model's own LightGBM (early-stopped on ``valid``; diagnostics only)."""
    private_trees: object | None = None
    """The ``federation.blend.PrivateTrees`` model (kept: a node-local bundle can package it)."""
    tree_seconds: float = 0.0
    """Wall time of fitting and predicting the private trees."""
    private_net: object | None = None
    """The ``federation.blend.PrivateNet`` (with ``FederatedConfig.blend_private_net``), else None."""
    nets: dict[str, np.ndarray] = field(default_factory=dict)
    """fold -> the private net's predictions (empty without it)."""
    net_seconds: float = 0.0
    """Wall time of fitting and predicting the private net."""


@dataclass(slots=True)
class BaselineResult:
    local: dict[str, dict] = field(default_factory=dict)
    """partner -> best-solo ``{"metric": x, "endpoints": {ep: score}, ...}``"""
    pooled: dict[str, dict] = field(default_factory=dict)
    local_seconds: float = 0.0
    """Best solo of all partners in turn (the private trees' time not included)."""
    pooled_seconds: float = 0.0
    blend_trees_seconds: float = 0.0
    """The blend's private trees of all partners in turn."""
    blend_net_seconds: float = 0.0
    """The blend's private nets of all partners in turn (0 without them)."""
    solo: dict[str, SoloFit] = field(default_factory=dict)
    """partner -> its best-solo fit (scores + private-tree predictions for ``federation.blend``)."""
    recipe: dict = field(default_factory=dict)
    """How both references were trained (written to the report)."""


def solo_config(cfg: FederatedConfig, ensemble: int | None = None) -> ModelConfig:
    """``ModelConfig.cli_default`` (the ``fedadmet admet train`` recipe) on the run's featurizer and seed."""
    return ModelConfig.cli_default(featurizer=cfg.featurizer, seed=cfg.seed, ensemble=ensemble)


def fit_solo(X_train: np.ndarray, Y_train: np.ndarray, C_train: np.ndarray, tasks: list[TaskSpec],
             mcfg: ModelConfig, valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> SoloModel:
    """``mcfg.ensemble`` blend members (seeds ``mcfg.seed + i``), early-stopped on ``valid`` (raw X, Y, censor).

    Without validation rows (``valid`` None or empty) the net falls back to the default recipe's
    random ``valid_fraction`` hold-out and LightGBM keeps all its rounds.
    """
    scaler = FeatureScaler.fit(X_train, clip=mcfg.feature_clip)
    Xs = scaler.transform(X_train)
    v = None
    if valid is not None and len(valid[0]) and np.isfinite(valid[1]).any():
        v = (scaler.transform(valid[0]), np.asarray(valid[1], float), np.asarray(valid[2], np.int8))
    return SoloModel(scaler, Ensemble.fit(Xs, Y_train, C_train, tasks, mcfg, valid=v))


def _score(pred: np.ndarray, Y: np.ndarray, tasks: list[TaskSpec], own: list[str]) -> dict:
    eps = scoring.endpoint_scores(pred, Y, tasks, only=own)
    return {"metric": scoring.partner_metric(eps), "endpoints": {k: v["value"] for k, v in eps.items()}}


def _fold(data: task.PartnerData, fold: str, Y: np.ndarray, C: np.ndarray):
    rows = data.rows(fold)
    return data.X[rows], Y[rows], C[rows]


def best_solo(mcfg: ModelConfig, data: task.PartnerData, keep_model: bool = False,
              private_trees: bool = True, private_net: bool = False) -> SoloFit:
    """The partner's best solo model on its own endpoints, scored on its own test rows; with
    ``private_trees`` also the blend's private trees (``federation.blend.fit_private_trees``), with
    ``private_net`` its private net (``federation.blend.fit_private_net``)."""
    X_tr, Y_tr, C_tr = _fold(data, "train", data.Y, data.censor)
    model = fit_solo(X_tr, Y_tr, C_tr, data.tasks, mcfg, _fold(data, "valid", data.Y, data.censor))
    test = data.rows("test")
    scores = _score(model.predict(data.X[test]), data.Y[test], data.tasks, data.task_names)
    scores.update(best_epochs=model.best_epochs, tree_rounds=model.tree_rounds)
    solo_trees = {fold: model.predict_parts(data.X[data.rows(fold)])[1] for fold in ("valid", "test")}
    fit = SoloFit(scores, {}, model if keep_model else None, solo_trees)
    if private_trees:
        t0 = time.perf_counter()
        fit.private_trees = fit_private_trees(data, mcfg)
        fit.trees = fit.private_trees.fold_predictions(data)
        fit.tree_seconds = time.perf_counter() - t0
    if private_net:
        t0 = time.perf_counter()
        fit.private_net = fit_private_net(data, mcfg)
        fit.nets = fit.private_net.fold_predictions(data)
        fit.net_seconds = time.perf_counter() - t0
    return fit


def local_best_solo(mcfg: ModelConfig, partners: list[task.PartnerData],
                    keep_models: bool = False, private_net: bool = False) -> tuple[dict[str, SoloFit], float]:
    t0 = time.perf_counter()
    out = {}
    for data in partners:
        out[data.partner] = best_solo(mcfg, data, keep_models, private_net=private_net)
        log.info("best solo %s: %.3f (net best epochs %s)", data.partner, out[data.partner].scores["metric"],
                 out[data.partner].scores["best_epochs"])
    return out, time.perf_counter() - t0 - sum(f.tree_seconds + f.net_seconds for f in out.values())


def pooled(mcfg: ModelConfig, partners: list[task.PartnerData]) -> tuple[dict[str, dict], float]:
    """The same recipe on every partner's train rows (valid: every partner's valid rows), per partner scores."""
    t0 = time.perf_counter()
    tasks = task.union_tasks([p.tasks for p in partners])
    folds: dict[str, list] = {"train": [], "valid": []}
    for data in partners:
        Y, C = task.align(data, tasks)
        for fold in folds:
            folds[fold].append(_fold(data, fold, Y, C))
    stacked = {f: tuple(np.concatenate([part[i] for part in parts]) for i in range(3)) for f, parts in folds.items()}
    model = fit_solo(*stacked["train"], tasks, mcfg, stacked["valid"])
    out = {}
    for data in partners:
        Y, _ = task.align(data, tasks)
        test = data.rows("test")
        out[data.partner] = _score(model.predict(data.X[test]), Y[test], tasks, data.task_names)
    log.info("pooled: net best epochs %s", model.best_epochs)
    return out, time.perf_counter() - t0


def recipe(mcfg: ModelConfig) -> dict:
    return {"family": mcfg.model, "ensemble": mcfg.ensemble, "hidden": list(mcfg.hidden),
            "max_epochs": mcfg.epochs, "patience": mcfg.patience,
            "lgbm_n_estimators": mcfg.lgbm_n_estimators, "featurizer": mcfg.featurizer,
            "early_stopping": "each partner's own valid rows (pooled: all partners' valid rows); "
                              "net on validation loss, LightGBM per endpoint on its validation labels",
            "scored_on": "each partner's own test rows (federation.scoring)"}


def run_baselines(cfg: FederatedConfig, partners: list[task.PartnerData],
                  ensemble: int | None = None) -> BaselineResult:
    """Best solo per partner and pooled, with the default recipe (``ensemble`` overrides its size)."""
    mcfg = solo_config(cfg, ensemble)
    solo, t_local = local_best_solo(mcfg, partners, private_net=cfg.blend_private_net)
    pool, t_pool = pooled(mcfg, partners) if cfg.pooled_reference else ({}, 0.0)
    rec = recipe(mcfg) | {"blend_private_trees": {
        "family": "lgbm", "ensemble": mcfg.ensemble, "lgbm_n_estimators": mcfg.lgbm_n_estimators,
        "fit_on": f"{1 - INNER_VALID_FRACTION:.0%} of the partner's train rows (whole scaffold groups) for the "
                  "choice on valid; then refit on all its train rows with the rounds found (the kept trees)",
        "early_stopping": f"the other {INNER_VALID_FRACTION:.0%} of its train rows (inner scaffold split); "
                          "never the valid rows the blend is chosen on"}}
    if cfg.blend_private_net:
        rec["blend_private_net"] = {
            "family": "mtnn", "ensemble": mcfg.ensemble, "hidden": list(mcfg.hidden),
            "fit_on": f"{1 - INNER_VALID_FRACTION:.0%} of the partner's train rows (the trees' inner split); no refit",
            "early_stopping": f"the other {INNER_VALID_FRACTION:.0%} of its train rows; never the valid rows"}
    return BaselineResult(local={k: v.scores for k, v in solo.items()}, pooled=pool, local_seconds=t_local,
                          pooled_seconds=t_pool, blend_trees_seconds=sum(f.tree_seconds for f in solo.values()),
                          blend_net_seconds=sum(f.net_seconds for f in solo.values()),
                          solo=solo, recipe=rec)
