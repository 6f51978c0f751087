"""Sparse text model: logistic regression on TF-IDF of the inclusion and exclusion criteria.

Eligibility text carries most of the signal in trial-outcome data; a linear model on the full sparse
TF-IDF (unigrams + bigrams, inclusion and exclusion as separate vocabularies) uses it better than a
few SVD components inside the tree model. Its out-of-fold logit is stacked with the tree model's
(``clinical_sim.outcome_model``).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from clinical_sim.criteria import split_criteria

log = logging.getLogger(__name__)

TEXT_FIELDS: tuple[str, ...] = ("inclusion", "exclusion")


def criteria_texts(trials: pd.DataFrame) -> dict[str, list[str]]:
    parts = [split_criteria(t) for t in trials["criteria"].tolist()]
    return {"inclusion": [p.inclusion.lower() for p in parts], "exclusion": [p.exclusion.lower() for p in parts]}


class CriteriaTextModel:
    """TF-IDF (per field) + L2 logistic regression; ``decision`` gives the logit."""

    def __init__(self, C: float = 1.0, ngram_max: int = 2, min_df: int = 2, max_features: int = 30000) -> None:
        self.C = C
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.max_features = max_features
        self._vectorizers: dict[str, TfidfVectorizer] = {}
        self._model: LogisticRegression | None = None

    def _matrix(self, texts: dict[str, list[str]], fit: bool) -> csr_matrix:
        blocks = []
        for field in TEXT_FIELDS:
            if fit:
                vec = TfidfVectorizer(min_df=self.min_df, ngram_range=(1, self.ngram_max), sublinear_tf=True,
                                      max_features=self.max_features)
                try:
                    blocks.append(vec.fit_transform(texts[field]))
                except ValueError:  # empty vocabulary
                    continue
                self._vectorizers[field] = vec
            elif field in self._vectorizers:
                blocks.append(self._vectorizers[field].transform(texts[field]))
        if not blocks:
            return csr_matrix((len(texts[TEXT_FIELDS[0]]), 1))
        return hstack(blocks).tocsr()

    def fit(self, trials: pd.DataFrame, y: np.ndarray) -> "CriteriaTextModel":
        self._vectorizers = {}
        X = self._matrix(criteria_texts(trials), fit=True)
        self._model = LogisticRegression(C=self.C, max_iter=3000).fit(X, np.asarray(y, dtype=int))
        return self

    def decision(self, trials: pd.DataFrame) -> np.ndarray:
        if self._model is None:
            raise RuntimeError("CriteriaTextModel used before fit")
        return self._model.decision_function(self._matrix(criteria_texts(trials), fit=False))

    def top_terms(self, k: int = 10) -> tuple[list[str], list[str]]:
        """The ``k`` terms pushing most towards success and towards failure."""
        names = [f"{f}:{t}" for f in TEXT_FIELDS if f in self._vectorizers
                 for t in self._vectorizers[f].get_feature_names_out()]
        coef = self._model.coef_[0]
        order = np.argsort(coef)
        return [names[i] for i in order[::-1][:k]], [names[i] for i in order[:k]]


def select_c(trials: pd.DataFrame, y: np.ndarray, grid: tuple[float, ...] = (0.3, 1.0, 3.0), folds: int = 5,
             seed: int = 0) -> float:
    """Regularisation strength with the best out-of-fold ROC-AUC on the training trials (ties: smaller C)."""
    y = np.asarray(y, dtype=int)
    n_splits = max(2, min(folds, int(np.bincount(y, minlength=2).min())))
    splits = list(StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    best_c, best_auc = grid[0], -np.inf
    for c in grid:
        oof = np.zeros(len(y))
        for tr, va in splits:
            oof[va] = CriteriaTextModel(C=c).fit(trials.iloc[tr], y[tr]).decision(trials.iloc[va])
        auc = roc_auc_score(y, oof)
        log.debug("criteria text model C=%g: out-of-fold ROC-AUC %.4f", c, auc)
        if auc > best_auc + 1e-4:
            best_c, best_auc = c, auc
    log.info("criteria text model: C=%g (out-of-fold ROC-AUC %.3f)", best_c, best_auc)
    return best_c
