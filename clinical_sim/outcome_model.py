"""Trial-outcome model: seed-averaged LightGBM on the trial features, stacked with a criteria-text
logistic regression, with calibrated probabilities.

Stacking + calibration: out-of-fold predictions (stratified K-fold on the training trials) of the seed
ensemble and of the text model give two logits per training trial; a logistic regression on those two
logits is both the blend and the Platt calibration. The final ensemble and text model are refit on all
rows. ``explain`` gives the top contributing tree features (LightGBM's per-row SHAP values, averaged
over seeds) plus the text model's logit.
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
from clinical_sim.text_model import CriteriaTextModel, select_c
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
    text_model: bool = True
    """Stack the criteria-text logistic regression with the trees."""
    text_c: float | None = None
    """Text-model regularisation; None selects it from (0.3, 1, 3) by out-of-fold ROC-AUC on the training trials."""
    seed: int = 0
    """Base seed of the boosters (``seed * 1000 + i``) and the calibration folds (``17 + seed``); 0 keeps
    the original seeds. Repeated runs with other seeds measure seed-to-seed variation."""
    n_jobs: int = 1
    """LightGBM threads (1: OpenMP spin-waiting makes more threads slower on a busy 2-core machine)."""
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
        self.text: CriteriaTextModel | None = None
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
                subsample=c.subsample, subsample_freq=1, reg_lambda=c.reg_lambda,
                random_state=c.seed * 1000 + seed,
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
        use_text = self.config.text_model
        text_c = self.config.text_c
        if use_text and text_c is None:
            text_c = select_c(trials, yi)
        self.text_c = text_c
        oof = np.zeros((len(yi), 2 if use_text else 1))
        for tr, va in StratifiedKFold(n_splits, shuffle=True, random_state=17 + self.config.seed).split(X, yi):
            oof[va, 0] = _logit(self._raw(self._ensemble(X.iloc[tr], yi[tr]), X.iloc[va]))
            if use_text:
                text = CriteriaTextModel(C=text_c).fit(trials.iloc[tr], yi[tr])
                oof[va, 1] = text.decision(trials.iloc[va])
        self.calibrator = LogisticRegression(C=1e4).fit(oof, yi)
        self.boosters = self._ensemble(X, yi)
        self.text = CriteriaTextModel(C=text_c).fit(trials, yi) if use_text else None
        stacked = self.calibrator.predict_proba(oof)[:, 1]
        self.n_train = len(yi)
        self.base_rate = float(yi.mean())
        from sklearn.metrics import average_precision_score, roc_auc_score
        self.metrics = {"oof_roc_auc": float(roc_auc_score(yi, stacked)),
                        "oof_pr_auc": float(average_precision_score(yi, stacked)),
                        "oof_roc_auc_trees": float(roc_auc_score(yi, oof[:, 0])), "n_train": len(yi),
                        "base_rate": self.base_rate, "text_c": text_c, "stack_weights": self.calibrator.coef_[0].tolist()}
        log.info("trained on %d trials: out-of-fold ROC-AUC %.3f, PR-AUC %.3f", len(yi),
                 self.metrics["oof_roc_auc"], self.metrics["oof_pr_auc"])
        return self

    def predict_proba(self, trials: pd.DataFrame) -> np.ndarray:
        """Calibrated P(success) per trial row."""
        if not self.boosters:
            raise RuntimeError("model is not trained")
        return self.calibrator.predict_proba(self._stack_inputs(trials))[:, 1]

    def _stack_inputs(self, trials: pd.DataFrame) -> np.ndarray:
        X = self.featurizer.transform(trials)
        cols = [_logit(self._raw(self.boosters, X))]
        if self.text is not None:
            cols.append(self.text.decision(trials))
        return np.column_stack(cols)

    def explain(self, trials: pd.DataFrame, top: int = 3) -> list[str]:
        """Per row, the ``top`` features with the largest |SHAP| (``name:+0.12``), averaged over seeds."""
        X = self.featurizer.transform(trials)
        contrib = np.mean([m.predict(X, pred_contrib=True) for m in self.boosters], axis=0)[:, :-1]
        names = np.array(self.featurizer.feature_names)
        text = self.text.decision(trials) if self.text is not None else None
        out = []
        for k, row in enumerate(contrib):
            idx = np.argsort(-np.abs(row))[:top]
            parts = [f"{names[i]}:{row[i]:+.3f}" for i in idx]
            if text is not None:
                parts.append(f"criteria_text_logit:{text[k]:+.3f}")
            out.append("; ".join(parts))
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
