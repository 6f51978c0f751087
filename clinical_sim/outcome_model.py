"""Trial-outcome model: seed-averaged LightGBM on the trial features, with calibrated probabilities.

Calibration: out-of-fold predictions of the seed ensemble (stratified K-fold on the training trials)
fit a Platt scaling (logistic regression on the logit); the final ensemble is refit on all rows.
``predict`` returns ``p_success`` and the top contributing features (LightGBM's per-row SHAP values,
averaged over seeds).
"""

from __future__ import annotations

import json
import logging
import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from clinical_sim.features import FeatureConfig, TrialFeaturizer
from pipelines.errors import InputError

log = logging.getLogger(__name__)

MODEL_FILE = "trial_model.pkl"
META_FILE = "trial_model.json"


@dataclass(slots=True)
class ModelConfig:
    """LightGBM ensemble and calibration settings."""

    n_seeds: int = 5
    n_estimators: int = 400
    learning_rate: float = 0.02
    num_leaves: int = 15
    min_child_samples: int = 15
    colsample_bytree: float = 0.3
    subsample: float = 0.8
    reg_lambda: float = 5.0
    calibration_folds: int = 5
    n_jobs: int = 2
    features: FeatureConfig = field(default_factory=FeatureConfig)

    def as_dict(self) -> dict:
        return asdict(self)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class TrialOutcomeModel:
    """Fit on a parsed trial table with labels; predict calibrated success probabilities."""

    def __init__(self, config: ModelConfig | None = None, admet=None, admet_dir: str | None = None) -> None:
        self.config = config or ModelConfig()
        self.featurizer = TrialFeaturizer(self.config.features, admet=admet)
        self.admet_dir = admet_dir
        self.boosters: list[lgb.LGBMClassifier] = []
        self.calibrator: LogisticRegression | None = None
        self.metrics: dict = {}
        self.n_train = 0
        self.base_rate = float("nan")

    def _ensemble(self, X: pd.DataFrame, y: np.ndarray) -> list[lgb.LGBMClassifier]:
        c = self.config
        models = []
        for seed in range(c.n_seeds):
            model = lgb.LGBMClassifier(
                n_estimators=c.n_estimators, learning_rate=c.learning_rate, num_leaves=c.num_leaves,
                min_child_samples=c.min_child_samples, colsample_bytree=c.colsample_bytree,
                subsample=c.subsample, subsample_freq=1, reg_lambda=c.reg_lambda, random_state=seed,
                n_jobs=c.n_jobs, verbose=-1,
            )
            model.fit(X, y)
            models.append(model)
        return models

    @staticmethod
    def _raw(models: list[lgb.LGBMClassifier], X: pd.DataFrame) -> np.ndarray:
        return np.mean([m.predict_proba(X)[:, 1] for m in models], axis=0)

    def fit(self, trials: pd.DataFrame, labels: np.ndarray) -> "TrialOutcomeModel":
        """Fit features, calibration and the ensemble on usable, labelled trials."""
        y = np.asarray(labels, dtype=float)
        if len(y) < 20 or np.isnan(y).any():
            raise InputError(f"need at least 20 labelled trials to train (got {len(y)}, NaN labels: {np.isnan(y).sum()})")
        if len(np.unique(y)) < 2:
            raise InputError("training labels contain one class only")
        yi = y.astype(int)
        X = self.featurizer.fit_transform(trials, yi)
        n_splits = max(2, min(self.config.calibration_folds, int(np.bincount(yi).min())))
        oof = np.zeros(len(yi))
        for tr, va in StratifiedKFold(n_splits, shuffle=True, random_state=17).split(X, yi):
            oof[va] = self._raw(self._ensemble(X.iloc[tr], yi[tr]), X.iloc[va])
        self.calibrator = LogisticRegression(C=1e4).fit(_logit(oof)[:, None], yi)
        self.boosters = self._ensemble(X, yi)
        self.n_train = len(yi)
        self.base_rate = float(yi.mean())
        from sklearn.metrics import average_precision_score, roc_auc_score
        self.metrics = {"oof_roc_auc": float(roc_auc_score(yi, oof)),
                        "oof_pr_auc": float(average_precision_score(yi, oof)), "n_train": len(yi),
                        "base_rate": self.base_rate}
        log.info("trained on %d trials: out-of-fold ROC-AUC %.3f, PR-AUC %.3f", len(yi),
                 self.metrics["oof_roc_auc"], self.metrics["oof_pr_auc"])
        return self

    def predict_proba(self, trials: pd.DataFrame) -> np.ndarray:
        """Calibrated P(success) per trial row."""
        if not self.boosters:
            raise RuntimeError("model is not trained")
        X = self.featurizer.transform(trials)
        raw = self._raw(self.boosters, X)
        return self.calibrator.predict_proba(_logit(raw)[:, None])[:, 1]

    def explain(self, trials: pd.DataFrame, top: int = 3) -> list[str]:
        """Per row, the ``top`` features with the largest |SHAP| (``name:+0.12``), averaged over seeds."""
        X = self.featurizer.transform(trials)
        contrib = np.mean([m.predict(X, pred_contrib=True) for m in self.boosters], axis=0)[:, :-1]
        names = np.array(self.featurizer.feature_names)
        out = []
        for row in contrib:
            idx = np.argsort(-np.abs(row))[:top]
            out.append("; ".join(f"{names[i]}:{row[i]:+.3f}" for i in idx))
        return out

    # ---- persistence ------------------------------------------------------------------------------
    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / MODEL_FILE, "wb") as fh:
            pickle.dump(self, fh)
        meta = {"config": self.config.as_dict(), "admet_dir": self.admet_dir, "metrics": self.metrics,
                "n_features": len(self.featurizer.feature_names), "lightgbm": lgb.__version__}
        (out / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
        return out

    def __getstate__(self) -> dict:
        return self.__dict__.copy()

    @classmethod
    def load(cls, model_dir: str | Path, admet=None) -> "TrialOutcomeModel":
        path = Path(model_dir) / MODEL_FILE
        if not path.exists():
            raise InputError(f"no trial model in {model_dir} (expected {MODEL_FILE})")
        with open(path, "rb") as fh:
            model = pickle.load(fh)
        if not isinstance(model, cls):
            raise InputError(f"{path} is not a trial-outcome model")
        if admet is not None:
            model.featurizer.admet = admet
        elif model.admet_dir and model.config.features.use_admet:
            from clinical_sim.admet_link import load_admet
            model.featurizer.admet = load_admet(model.admet_dir)
        return model
