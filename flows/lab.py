"""The autonomous-lab loop: pick the next compounds to measure, measure, retrain, repeat.

A pool of compounds whose labels are hidden; an oracle reveals the real (held-out) label of a
compound when the loop "measures" it. Each round an ensemble surrogate (a random forest: each
tree is a member, their spread is the uncertainty) is refitted on everything measured so far
and an acquisition function (expected improvement, upper confidence bound, greedy or random)
picks the next batch. The objective is either one endpoint (signed so that higher is better) or
the desirability score of a profile (expected desirability under the ensemble's spread).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import norm

from flows.desirability import DesirabilityProfile, expected_desirability
from pipelines.errors import InputError

log = logging.getLogger(__name__)

Acquisition = Literal["ei", "ucb", "greedy", "random"]


@dataclass(slots=True)
class LabSettings:
    """Acquisition settings of one campaign (what Optuna tunes)."""

    acquisition: Acquisition = "ei"
    batch_size: int = 20
    n_initial: int = 40
    budget: int = 400
    """Total measurements, initial batch included."""
    kappa: float = 1.0
    """UCB exploration weight."""
    xi: float = 0.01
    """EI improvement margin, in units of the objective's spread."""
    n_trees: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if self.acquisition not in ("ei", "ucb", "greedy", "random"):
            raise InputError(f"acquisition {self.acquisition!r} is not one of ei, ucb, greedy, random")
        if min(self.batch_size, self.n_initial, self.budget, self.n_trees) < 1:
            raise InputError("batch size, initial batch, budget and trees must be >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LabPool:
    """Candidates: features, and the hidden truth the oracle reveals (higher is better)."""

    smiles: list[str]
    X: np.ndarray
    truth: np.ndarray
    """Objective value per compound (signed so that higher is better)."""
    labels: pd.DataFrame
    """Measured endpoint values per compound (what the surrogate learns)."""
    objective: "LabObjective"

    def __post_init__(self) -> None:
        n = len(self.smiles)
        if self.X.shape[0] != n or len(self.truth) != n or len(self.labels) != n:
            raise ValueError("pool arrays disagree in length")
        if n < 10:
            raise InputError(f"the lab pool needs at least 10 compounds, got {n}")

    def top_mask(self, fraction: float = 0.1) -> np.ndarray:
        """The top ``fraction`` of the pool by true objective (ties at the cut included)."""
        cut = np.quantile(self.truth, 1 - fraction)
        return self.truth >= cut


@dataclass(frozen=True)
class LabObjective:
    """What the campaign maximizes: one endpoint (signed) or a desirability profile."""

    endpoints: tuple[str, ...]
    sign: float = 1.0
    profile: DesirabilityProfile | None = None

    def truth(self, labels: pd.DataFrame) -> np.ndarray:
        if self.profile is None:
            return self.sign * labels[self.endpoints[0]].to_numpy(float)
        from flows.desirability import score_predictions

        return score_predictions(labels[list(self.endpoints)], self.profile)["score"].to_numpy(float)

    def predictive(self, mean: dict[str, np.ndarray], std: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and spread of the objective from per-endpoint predictive means / spreads."""
        if self.profile is None:
            e = self.endpoints[0]
            return self.sign * mean[e], std[e]
        rules = self.profile.endpoints
        w = np.array([rules[e].weight for e in self.endpoints])
        ed = np.stack([expected_desirability(rules[e], mean[e], std[e]) for e in self.endpoints], axis=1)
        mu = ed @ w / w.sum()
        # spread: desirability's local slope times the endpoint's spread, combined in quadrature
        slopes = np.stack([_slope(rules[e], mean[e]) * std[e] for e in self.endpoints], axis=1)
        sigma = np.sqrt(((slopes * w) ** 2).sum(axis=1)) / w.sum()
        return mu, sigma


def _slope(rule, x: np.ndarray) -> np.ndarray:
    outside = np.zeros_like(x, dtype=bool)
    if rule.low is not None:
        outside |= (x < rule.low) & (x > rule.low - rule.soft)
    if rule.high is not None:
        outside |= (x > rule.high) & (x < rule.high + rule.soft)
    return outside / rule.soft


def build_pool(long_df: pd.DataFrame, objective: LabObjective, spec: str = "morgan_count+rdkit2d",
               max_compounds: int | None = None, seed: int = 0) -> LabPool:
    """Compounds measured on every objective endpoint, featurized; labels kept for the oracle."""
    from admet.tasks import task_data_from_long
    from pipelines.featurize import featurize_smiles

    sub = long_df[long_df["endpoint"].isin(objective.endpoints)]
    missing = sorted(set(objective.endpoints) - set(sub["endpoint"]))
    if missing:
        raise InputError(f"no measurements for lab endpoint(s) {missing}")
    td = task_data_from_long(sub).select_tasks(list(objective.endpoints))
    complete = ~np.isnan(td.Y).any(axis=1)
    td = td.subset(complete)
    if max_compounds is not None and len(td) > max_compounds:
        rng = np.random.default_rng(seed)
        td = td.subset(np.sort(rng.choice(len(td), size=max_compounds, replace=False)))
    fm = featurize_smiles(td.smiles, spec=spec)
    ok = np.asarray(fm.valid, dtype=bool)
    labels = pd.DataFrame(td.Y[ok], columns=td.task_names)
    smiles = [s for s, v in zip(td.smiles, ok) if v]
    X = np.nan_to_num(np.asarray(fm.X, dtype=np.float32)[ok])
    return LabPool(smiles=smiles, X=X, truth=objective.truth(labels), labels=labels, objective=objective)


def fit_predict(X_train: np.ndarray, labels: pd.DataFrame, X_pool: np.ndarray, endpoints: tuple[str, ...],
                n_trees: int, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-endpoint ensemble mean and spread (std over the forest's trees) on the pool."""
    from sklearn.ensemble import RandomForestRegressor

    mean, std = {}, {}
    for e in endpoints:
        forest = RandomForestRegressor(n_estimators=n_trees, max_features=0.3, min_samples_leaf=1,
                                       random_state=seed, n_jobs=1)
        forest.fit(X_train, labels[e].to_numpy(float))
        per_tree = np.stack([t.predict(X_pool) for t in forest.estimators_], axis=0)
        mean[e], std[e] = per_tree.mean(axis=0), per_tree.std(axis=0)
    return mean, std


def acquisition_scores(kind: str, mu: np.ndarray, sigma: np.ndarray, best: float, settings: LabSettings,
                       rng: np.random.Generator) -> np.ndarray:
    """Higher = measure sooner."""
    if kind == "random":
        return rng.random(len(mu))
    if kind == "greedy":
        return mu
    if kind == "ucb":
        return mu + settings.kappa * sigma
    sigma = np.maximum(sigma, 1e-9)
    improvement = mu - best - settings.xi * float(np.std(mu) or 1.0)
    z = improvement / sigma
    return improvement * norm.cdf(z) + sigma * norm.pdf(z)


@dataclass
class Campaign:
    """The order in which compounds were measured, and the discovery curve."""

    settings: LabSettings
    order: list[int] = field(default_factory=list)
    found: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    """found[k] = top-10% compounds among the first k+1 measurements."""
    n_top: int = 0

    def measurements_to_find(self, fraction: float) -> int | None:
        """Measurements needed to find ``fraction`` of the top compounds (None: not within budget)."""
        need = int(np.ceil(fraction * self.n_top))
        hit = np.flatnonzero(self.found >= need)
        return int(hit[0]) + 1 if len(hit) else None

    def auc(self) -> float:
        """Mean fraction of top compounds found over the budget (1 = all found immediately)."""
        return float(np.mean(self.found) / max(self.n_top, 1))


def run_campaign(pool: LabPool, settings: LabSettings, top_fraction: float = 0.1,
                 on_round=None) -> Campaign:
    """Measure ``settings.budget`` compounds from the pool, batch by batch."""
    rng = np.random.default_rng(settings.seed)
    n = len(pool.smiles)
    budget = min(settings.budget, n)
    top = pool.top_mask(top_fraction)
    measured = list(rng.choice(n, size=min(settings.n_initial, budget), replace=False))
    round_no = 0
    while len(measured) < budget:
        remaining = np.setdiff1d(np.arange(n), measured)
        k = min(settings.batch_size, budget - len(measured))
        if settings.acquisition == "random":
            pick = rng.choice(remaining, size=k, replace=False)
        else:
            mean, std = fit_predict(pool.X[measured], pool.labels.iloc[measured], pool.X[remaining],
                                    pool.objective.endpoints, settings.n_trees, settings.seed + round_no)
            mu, sigma = pool.objective.predictive(mean, std)
            best = float(np.max(pool.truth[measured]))
            scores = acquisition_scores(settings.acquisition, mu, sigma, best, settings, rng)
            pick = remaining[np.argsort(-scores, kind="stable")[:k]]
        measured.extend(int(i) for i in pick)
        round_no += 1
        if on_round is not None:
            on_round(round_no, len(measured), int(top[measured].sum()))
    found = np.cumsum(top[np.asarray(measured)])
    return Campaign(settings=settings, order=[int(i) for i in measured], found=found, n_top=int(top.sum()))


def propose_batch(pool: LabPool, candidates_X: np.ndarray, settings: LabSettings, k: int | None = None
                  ) -> pd.DataFrame:
    """The next ``k`` (default: the settings' batch size) compounds to measure among unmeasured candidates.

    The surrogate is fitted on every measured compound of ``pool`` (its labels are what the lab
    has measured so far); the acquisition settings rank the candidates. Returns one row per
    candidate, best first: ``candidate`` (row in ``candidates_X``), ``rank``, predicted
    objective mean and spread, acquisition score, and ``proposed`` (True for the batch).
    """
    if candidates_X.ndim != 2 or candidates_X.shape[1] != pool.X.shape[1]:
        raise InputError(f"candidate features have shape {candidates_X.shape}; the pool's have {pool.X.shape}")
    if len(candidates_X) == 0:
        raise InputError("no candidate compounds to propose from")
    k = min(k or settings.batch_size, len(candidates_X))
    rng = np.random.default_rng(settings.seed)
    mean, std = fit_predict(pool.X, pool.labels, candidates_X, pool.objective.endpoints, settings.n_trees,
                            settings.seed)
    mu, sigma = pool.objective.predictive(mean, std)
    scores = acquisition_scores(settings.acquisition, mu, sigma, float(np.max(pool.truth)), settings, rng)
    order = np.argsort(-scores, kind="stable")
    frame = pd.DataFrame({"candidate": order, "rank": np.arange(1, len(order) + 1),
                          "predicted_objective": mu[order], "objective_spread": sigma[order],
                          "acquisition": scores[order]})
    frame["proposed"] = frame["rank"] <= k
    log.info("proposed %d of %d candidates (%s; best measured objective %.3g)", k, len(order),
             settings.acquisition, float(np.max(pool.truth)))
    return frame
