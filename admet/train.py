"""Training the multitask network: target scaling, the epoch loop, early stopping, prediction.

``train_epochs`` is the loop federation reuses round by round (with a FedProx proximal term
when ``cfg.proximal_mu > 0`` and the global parameters are given); ``fit_mtnn`` adds target
scaling and early stopping on a validation split for centralized training.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from admet.losses import masked_multitask_loss, pos_weights
from admet.model import MultitaskNet
from admet.tasks import TaskSpec

log = logging.getLogger(__name__)
#: Training progress events (one DEBUG record per epoch or boosting round, with ``step``,
#: ``steps`` and ``unit`` attributes); the CLI draws its bar from them. Silent unless enabled.
progress_log = logging.getLogger("admet.progress")


@dataclass(slots=True)
class TrainConfig:
    """Optimisation settings for one training run (validated at construction)."""

    epochs: int = 100
    """Maximum number of epochs (early stopping may end sooner)."""
    lr: float = 1e-3
    """Adam learning rate."""
    batch_size: int = 128
    weight_decay: float = 1e-5
    """AdamW decoupled weight decay."""
    patience: int = 10
    """Early stopping: epochs without validation improvement before stopping (0 = never stop)."""
    seed: int = 0
    proximal_mu: float = 0.0
    """FedProx: weight of ``mu/2 * ||w - w_global||^2`` (0 = plain training)."""
    class_weighting: bool = True
    """Weight positives by n_neg/n_pos per classification task."""
    grad_clip: float = 10.0
    """Max gradient norm (0 = no clipping)."""
    valid_fraction: float = 0.1
    """Held out for early stopping when ``fit_mtnn`` gets no validation set."""

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if self.lr <= 0 or self.weight_decay < 0 or self.proximal_mu < 0 or self.patience < 0:
            raise ValueError("lr must be > 0; weight_decay, proximal_mu, patience >= 0")
        if not 0 <= self.valid_fraction < 1:
            raise ValueError("valid_fraction must be in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class TargetScaler:
    """Per-task standardisation of regression targets; classification columns pass through."""

    mean: np.ndarray
    std: np.ndarray
    is_classification: np.ndarray

    @classmethod
    def fit(cls, Y: np.ndarray, is_classification: Sequence[bool]) -> "TargetScaler":
        Y = np.asarray(Y, dtype=float)
        obs = ~np.isnan(Y)
        s = np.where(obs, Y, 0.0).sum(0)
        ss = np.where(obs, Y**2, 0.0).sum(0)
        return cls.from_moments(s, ss, obs.sum(0), is_classification)

    @classmethod
    def from_moments(cls, total: np.ndarray, total_sq: np.ndarray, count: np.ndarray,
                     is_classification: Sequence[bool]) -> "TargetScaler":
        """From per-task sums, sums of squares and counts (summed across partners)."""
        total, total_sq = np.asarray(total, float), np.asarray(total_sq, float)
        count = np.asarray(count, float)
        cls_mask = np.asarray(is_classification, dtype=bool)
        n = np.maximum(count, 1.0)
        mean = total / n
        var = np.maximum(total_sq / n - mean**2, 0.0)
        std = np.sqrt(var)
        std = np.where((std < 1e-8) | (count < 2), 1.0, std)
        mean = np.where(cls_mask, 0.0, mean)
        std = np.where(cls_mask, 1.0, std)
        return cls(mean=mean, std=std, is_classification=cls_mask)

    def transform(self, Y: np.ndarray) -> np.ndarray:
        return (np.asarray(Y, dtype=float) - self.mean) / self.std

    def inverse(self, Z: np.ndarray) -> np.ndarray:
        return np.asarray(Z, dtype=float) * self.std + self.mean

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(),
                "is_classification": self.is_classification.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "TargetScaler":
        return cls(np.asarray(d["mean"], float), np.asarray(d["std"], float),
                   np.asarray(d["is_classification"], bool))


@dataclass(slots=True)
class FitResult:
    """A trained network with its target scaler and training history."""

    model: MultitaskNet
    target_scaler: TargetScaler
    best_epoch: int
    history: list[dict] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed torch and numpy (CPU training is then bit-for-bit repeatable)."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def _tensors(X, Y, censor):
    return (torch.as_tensor(np.asarray(X, dtype=np.float32)),
            torch.as_tensor(np.asarray(Y, dtype=np.float32)),
            torch.as_tensor(np.asarray(censor, dtype=np.int8)))


def _run_epoch(model, opt, Xt, Yt, Ct, cfg, gen, pos_w, global_t) -> float:
    model.train()
    n = Xt.shape[0]
    order = torch.randperm(n, generator=gen)
    is_cls = model.is_classification
    total, batches = 0.0, 0
    for start in range(0, n, cfg.batch_size):
        idx = order[start:start + cfg.batch_size]
        if len(idx) < 2 and n > 1:
            continue  # a lone sample gives a noisy step; its data is seen next epoch
        opt.zero_grad()
        loss = masked_multitask_loss(model(Xt[idx]), Yt[idx], Ct[idx], is_cls, pos_w)
        if global_t is not None and cfg.proximal_mu > 0:
            prox = sum(((p - g) ** 2).sum() for p, g in zip(model.parameters(), global_t))
            loss = loss + 0.5 * cfg.proximal_mu * prox
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        total += float(loss.detach())
        batches += 1
    return total / max(batches, 1)


def _optimizer(model: MultitaskNet, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def train_epochs(
    model: MultitaskNet,
    X: np.ndarray,
    Y: np.ndarray,
    censor: np.ndarray,
    cfg: TrainConfig,
    epochs: int,
    global_params: Sequence[np.ndarray] | None = None,
    pos_weight: np.ndarray | None = None,
) -> float:
    """Train ``model`` in place for ``epochs`` epochs; returns the last epoch's mean loss.

    ``X`` is the scaled feature matrix and ``Y`` the targets in model space (regression
    targets already transformed by a :class:`TargetScaler`; NaN = missing). With
    ``cfg.proximal_mu > 0`` and ``global_params`` (``model.all_arrays()`` order) a FedProx
    proximal term pulls the weights towards the global model. ``pos_weight`` defaults to the
    class balance of ``Y`` when ``cfg.class_weighting``.
    """
    if len(X) == 0:
        raise ValueError("train_epochs got no training rows")
    seed_everything(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    Xt, Yt, Ct = _tensors(X, Y, censor)
    pw = _pos_weight(Y, model, cfg, pos_weight)
    global_t = None
    if global_params is not None and cfg.proximal_mu > 0:
        global_t = [torch.as_tensor(np.asarray(a), dtype=p.dtype)
                    for a, p in zip(_param_order(model, global_params), model.parameters())]
    opt = _optimizer(model, cfg)
    loss = float("nan")
    for _ in range(epochs):
        loss = _run_epoch(model, opt, Xt, Yt, Ct, cfg, gen, pw, global_t)
    return loss


def _param_order(model: MultitaskNet, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Map ``all_arrays()``-ordered arrays onto ``model.parameters()`` order (no buffers here)."""
    names = list(model.trunk.state_dict()) + list(model.heads.state_dict())
    full = ["trunk." + n for n in model.trunk.state_dict()] + ["heads." + n for n in model.heads.state_dict()]
    if len(arrays) != len(names):
        raise ValueError(f"global_params: expected {len(names)} arrays, got {len(arrays)}")
    by_name = dict(zip(full, arrays))
    return [by_name[n] for n, _ in model.named_parameters()]


def _pos_weight(Y, model, cfg, given) -> torch.Tensor | None:
    if given is not None:
        return torch.as_tensor(np.asarray(given, dtype=np.float32))
    if not cfg.class_weighting:
        return None
    return pos_weights(Y, model.is_classification.numpy())


@torch.no_grad()
def evaluate_loss(model: MultitaskNet, X: np.ndarray, Y: np.ndarray, censor: np.ndarray,
                  pos_weight: np.ndarray | torch.Tensor | None = None) -> float:
    """Masked loss on data in model space (eval mode, no dropout)."""
    model.eval()
    Xt, Yt, Ct = _tensors(X, Y, censor)
    pw = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32)
    return float(masked_multitask_loss(model(Xt), Yt, Ct, model.is_classification, pw))


@torch.no_grad()
def predict_raw(model: MultitaskNet, X: np.ndarray, target_scaler: TargetScaler | None = None,
                batch_size: int = 4096) -> np.ndarray:
    """(n, T) predictions: regression in original units (if a scaler is given), P(class 1)."""
    model.eval()
    outs = []
    Xf = np.asarray(X, dtype=np.float32)
    for start in range(0, len(Xf), batch_size):
        outs.append(model(torch.from_numpy(Xf[start:start + batch_size])).numpy())
    Z = np.concatenate(outs, 0).astype(float) if outs else np.zeros((0, len(model.tasks)))
    cls = model.is_classification.numpy()
    out = Z.copy()
    if target_scaler is not None:
        out = target_scaler.inverse(Z)
    out[:, cls] = 1.0 / (1.0 + np.exp(-Z[:, cls]))
    return out


def fit_mtnn(
    X_train: np.ndarray,
    Y_train: np.ndarray,
    censor_train: np.ndarray,
    tasks: Sequence[TaskSpec],
    cfg: TrainConfig | None = None,
    hidden: Sequence[int] = (1024, 512),
    dropout: float = 0.2,
    X_valid: np.ndarray | None = None,
    Y_valid: np.ndarray | None = None,
    censor_valid: np.ndarray | None = None,
    input_dropout: float = 0.0,
) -> FitResult:
    """Train a :class:`MultitaskNet` with target scaling and early stopping.

    ``Y`` in original units. Without a validation set, ``cfg.valid_fraction`` of the
    training rows (random, seeded) is held out for early stopping. The returned model
    holds the weights of the best validation epoch.
    """
    cfg = cfg or TrainConfig()
    X_train = np.asarray(X_train, dtype=np.float32)
    Y_train = np.asarray(Y_train, dtype=float)
    censor_train = np.asarray(censor_train, dtype=np.int8)
    if X_valid is None and cfg.valid_fraction > 0 and len(X_train) >= 20:
        rng = np.random.default_rng(cfg.seed)
        perm = rng.permutation(len(X_train))
        n_val = max(1, int(round(cfg.valid_fraction * len(X_train))))
        va, tr = perm[:n_val], perm[n_val:]
        X_valid, Y_valid, censor_valid = X_train[va], Y_train[va], censor_train[va]
        X_train, Y_train, censor_train = X_train[tr], Y_train[tr], censor_train[tr]
    is_cls = np.array([t.is_classification for t in tasks], dtype=bool)
    scaler = TargetScaler.fit(Y_train, is_cls)
    seed_everything(cfg.seed)
    model = MultitaskNet(X_train.shape[1], list(tasks), hidden=hidden, dropout=dropout,
                         input_dropout=input_dropout)
    Xt, Yt, Ct = _tensors(X_train, scaler.transform(Y_train), censor_train)
    pw = _pos_weight(Y_train, model, cfg, None)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = _optimizer(model, cfg)
    has_valid = X_valid is not None and len(X_valid) > 0 and np.isfinite(Y_valid).any()
    if has_valid:
        Yv = scaler.transform(Y_valid)
    best_loss, best_epoch, best_state = float("inf"), 0, None
    history: list[dict] = []
    for epoch in range(1, cfg.epochs + 1):
        train_loss = _run_epoch(model, opt, Xt, Yt, Ct, cfg, gen, pw, None)
        progress_log.debug("epoch %d/%d", epoch, cfg.epochs, extra={"step": epoch, "steps": cfg.epochs, "unit": "epoch"})
        row = {"epoch": epoch, "train_loss": train_loss}
        if has_valid:
            val = evaluate_loss(model, X_valid, Yv, censor_valid, pw)
            row["valid_loss"] = val
            if val < best_loss - 1e-6:
                best_loss, best_epoch = val, epoch
                best_state = copy.deepcopy(model.state_dict())
            elif cfg.patience and epoch - best_epoch >= cfg.patience:
                history.append(row)
                log.info("early stop at epoch %d (best %d, valid loss %.4f)", epoch, best_epoch, best_loss)
                break
        history.append(row)
        log.debug("epoch %d %s", epoch, row)
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch = len(history)
    model.eval()
    return FitResult(model=model, target_scaler=scaler, best_epoch=best_epoch, history=history)
