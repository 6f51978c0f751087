"""Hyperparameters of an ADMET model, validated once at the edge (CLI / tuning JSON).

The tuning flow writes this schema as JSON (``--config best_params.json``); unknown keys are
an error, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from admet.train import TrainConfig
from pipelines.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_FEATURIZER = "morgan_count+rdkit2d"

#: What ``fedadmet admet train`` / ``evaluate`` use when neither ``--model`` nor ``--config`` is given
#: (``ModelConfig.cli_default``): chosen by mean rank on valid folds, never test, over the 22 TDC
#: ADMET group sets and Biogen's six endpoints (``bench/default_choice.py``,
#: ``bench/results/default_choice.json``). The field defaults of ``ModelConfig`` stay the multitask
#: net recipe that federation, tuning and the clinical model build on.
CLI_DEFAULTS: dict[str, object] = {"model": "blend", "ensemble": 2}


class ModelConfig(BaseModel):
    """Everything that defines how a model is built and trained (not which data)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Literal["mtnn", "lgbm", "dc", "blend"] = "mtnn"
    featurizer: str = DEFAULT_FEATURIZER
    feature_clip: float = Field(6.0, gt=0, description="robust-scaled features clipped to +/- this")
    # network (mtnn, dc, blend)
    hidden: tuple[int, ...] = Field((1024, 512), description="trunk widths, one per layer")
    trunk_width: int | None = Field(None, gt=0, description="alternative to hidden: width x depth")
    trunk_depth: int | None = Field(None, gt=0, le=8)
    dropout: float = Field(0.2, ge=0, lt=1)
    input_dropout: float = Field(0.0, ge=0, lt=1)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(128, ge=2)
    weight_decay: float = Field(1e-5, ge=0)
    epochs: int = Field(100, ge=1)
    patience: int = Field(10, ge=0)
    class_weighting: bool = True
    # lightgbm (lgbm, blend)
    lgbm_n_estimators: int = Field(500, ge=1)
    lgbm_learning_rate: float = Field(0.05, gt=0)
    lgbm_num_leaves: int = Field(31, ge=2)
    lgbm_min_child_samples: int = Field(20, ge=1)
    lgbm_subsample: float = Field(0.8, gt=0, le=1)
    lgbm_colsample: float = Field(0.5, gt=0, le=1)
    # uncertainty and domain
    ensemble: int = Field(5, ge=1, le=50)
    bootstrap: bool = False
    coverage: float = Field(0.9, gt=0, lt=1)
    calibration_fraction: float = Field(0.1, ge=0, lt=0.5)
    valid_fraction: float = Field(0.1, ge=0, lt=0.5)
    ad_percentile: float = Field(5.0, ge=0, le=50)
    ad_max_reference: int = Field(20000, ge=100)
    seed: int = 0

    @model_validator(mode="after")
    def _hidden_from_width_depth(self) -> "ModelConfig":
        if (self.trunk_width is None) != (self.trunk_depth is None):
            raise ValueError("trunk_width and trunk_depth go together")
        if self.trunk_width is not None:
            object.__setattr__(self, "hidden", tuple([self.trunk_width] * self.trunk_depth))
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError("hidden needs at least one positive width")
        return self

    def train_config(self, seed: int | None = None) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                           weight_decay=self.weight_decay, patience=self.patience,
                           seed=self.seed if seed is None else seed,
                           class_weighting=self.class_weighting,
                           valid_fraction=self.valid_fraction)

    def to_json_dict(self) -> dict:
        return json.loads(self.model_dump_json())

    @classmethod
    def from_json(cls, path: str | Path, **overrides) -> "ModelConfig":
        """Read a hyperparameter JSON (e.g. the tuning flow's ``best_params.json``)."""
        p = Path(path)
        if not p.is_file():
            raise InputError(f"config file not found: {p}")
        try:
            data = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"config file {p} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InputError(f"config file {p} must hold a JSON object of hyperparameters")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.build(**data)

    @classmethod
    def cli_default(cls, **overrides) -> "ModelConfig":
        """``CLI_DEFAULTS`` with the given (non-None) options on top."""
        return cls.build(**{**CLI_DEFAULTS, **{k: v for k, v in overrides.items() if v is not None}})

    @classmethod
    def build(cls, **values) -> "ModelConfig":
        """Construct from keyword values, turning validation problems into an InputError."""
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()
            )
            raise InputError(f"invalid model config: {problems}") from None
