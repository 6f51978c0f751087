"""Model families behind one interface: a *member* is fitted on (X, Y, censor) and predicts (n, T).

``mtnn``: :class:`admet.model.MultitaskNet` (all tasks in one network, censored loss).
``lgbm``: LightGBM, one booster per endpoint on the same features (censored values used as
their bound, the usual gradient-boosting approximation). ``dc``: DeepChem multitask networks
(``admet.dc_member``), one per task type. ``blend``: one ``mtnn`` and one ``lgbm`` member trained
with the same seed on the same rows, predictions averaged with equal weight (the configuration
that beats the peers in ``bench/admet_quality.py``), or with a weight per endpoint (the federated
blend's bundle, ``federation.blend_bundle``). Predictions are in original units for
regression and P(class 1) for classification. An ensemble holds several members of one family.

Families are a registry (``MEMBERS``, the shape ``pipelines.registry`` gives featurizers and
federated strategies): adding one is one class with ``@MEMBERS.register("name")`` (``fit`` / ``load``
classmethods, ``predict`` / ``save``). ``dc`` registers itself when first asked for (DeepChem is
imported only then).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from admet.config import ModelConfig
from admet.model import MultitaskNet
from admet.tasks import TaskSpec
from admet.train import TargetScaler, fit_mtnn, predict_raw, progress_log
from pipelines.registry import Registry

log = logging.getLogger(__name__)

FAMILIES = ("mtnn", "lgbm", "dc", "blend")
#: LightGBM early stopping (only when ``fit`` is given validation rows): rounds without improvement.
LGBM_EARLY_STOPPING_ROUNDS = 50
#: Fewest labelled validation rows of an endpoint for LightGBM to stop early on them.
LGBM_MIN_VALID = 5
MEMBERS: Registry = Registry("model family")


class Member(Protocol):
    family: str

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def save(self, folder: Path) -> None: ...


@MEMBERS.register("mtnn")
class MTNNMember:
    """A trained :class:`MultitaskNet` with its target scaler."""

    family = "mtnn"

    def __init__(self, model: MultitaskNet, target_scaler: TargetScaler, best_epoch: int = 0) -> None:
        self.model = model
        self.target_scaler = target_scaler
        self.best_epoch = best_epoch
        self.history: list[dict] = []

    @classmethod
    def fit(cls, X, Y, censor, tasks, cfg: ModelConfig, seed: int, valid: tuple | None = None) -> "MTNNMember":
        """``valid`` = (X, Y, censor) of the rows early stopping watches (default: ``cfg.valid_fraction``
        of the training rows, held out at random)."""
        Xv, Yv, Cv = valid if valid is not None else (None, None, None)
        res = fit_mtnn(X, Y, censor, tasks, cfg.train_config(seed), hidden=cfg.hidden,
                       dropout=cfg.dropout, input_dropout=cfg.input_dropout,
                       X_valid=Xv, Y_valid=Yv, censor_valid=Cv)
        member = cls(res.model, res.target_scaler, res.best_epoch)
        member.history = res.history
        return member

    def predict(self, X: np.ndarray) -> np.ndarray:
        return predict_raw(self.model, X, self.target_scaler)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.model.state_dict(), folder / "weights.pt")
        (folder / "member.json").write_text(json.dumps({
            "family": self.family, "architecture": self.model.architecture(),
            "target_scaler": self.target_scaler.to_dict(), "best_epoch": self.best_epoch}, indent=1))

    @classmethod
    def load(cls, folder: Path) -> "MTNNMember":
        meta = json.loads((folder / "member.json").read_text())
        model = MultitaskNet.from_architecture(meta["architecture"])
        state = torch.load(folder / "weights.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        model.eval()
        return cls(model, TargetScaler.from_dict(meta["target_scaler"]), meta.get("best_epoch", 0))


def _report_round(env) -> None:
    """LightGBM callback: one ``admet.progress`` event per boosting round."""
    progress_log.debug("round %d/%d", env.iteration + 1, env.end_iteration,
                       extra={"step": env.iteration + 1, "steps": env.end_iteration, "unit": "round"})


@MEMBERS.register("lgbm")
class LGBMMember:
    """One LightGBM booster per endpoint (regressor or binary classifier)."""

    family = "lgbm"

    def __init__(self, tasks: Sequence[TaskSpec], boosters: list) -> None:
        self.tasks = list(tasks)
        self.boosters = boosters  # lightgbm.Booster or None per task (None: no labels)
        self.best_iterations: list[int | None] = []

    @classmethod
    def fit(cls, X, Y, censor, tasks, cfg: ModelConfig, seed: int, valid: tuple | None = None,
            rounds: Sequence[int | None] | None = None) -> "LGBMMember":
        """``valid`` = (X, Y, censor): per endpoint, boosting stops early on its labelled rows there
        (``LGBM_EARLY_STOPPING_ROUNDS`` rounds without improvement; at least ``LGBM_MIN_VALID`` labels,
        both classes for classification); without it all ``cfg.lgbm_n_estimators`` rounds are kept.
        ``rounds`` (instead of ``valid``): per endpoint, exactly that many boosting rounds (a refit with
        rounds found earlier); None = no model for that endpoint."""
        if rounds is not None and (valid is not None or len(rounds) != len(tasks)):
            raise ValueError("rounds: one entry per task, and not together with valid")
        import lightgbm as lgb

        boosters = []
        best_iterations: list[int | None] = []
        rng = np.random.default_rng(seed)
        for j, task in enumerate(tasks):
            rows = np.flatnonzero(~np.isnan(Y[:, j]))
            if rounds is not None and rounds[j] is None:
                boosters.append(None)
                best_iterations.append(None)
                continue
            if len(rows) < 5:
                log.warning("lgbm: endpoint %s has %d labels; no model", task.name, len(rows))
                boosters.append(None)
                best_iterations.append(None)
                continue
            n_rounds = cfg.lgbm_n_estimators if rounds is None else max(int(rounds[j]), 1)
            params = dict(n_estimators=n_rounds, learning_rate=cfg.lgbm_learning_rate,
                          num_leaves=cfg.lgbm_num_leaves, min_child_samples=cfg.lgbm_min_child_samples,
                          subsample=cfg.lgbm_subsample, subsample_freq=1,
                          colsample_bytree=cfg.lgbm_colsample, random_state=int(rng.integers(2**31)),
                          deterministic=True, force_row_wise=True, n_jobs=2, verbose=-1)
            y = Y[rows, j]
            if task.is_classification:
                pos, neg = float((y == 1).sum()), float((y == 0).sum())
                if pos == 0 or neg == 0:
                    log.warning("lgbm: endpoint %s has a single class; no model", task.name)
                    boosters.append(None)
                    best_iterations.append(None)
                    continue
                if cfg.class_weighting:
                    params["scale_pos_weight"] = neg / pos
                est = lgb.LGBMClassifier(**params)
            else:
                est = lgb.LGBMRegressor(**params)
            fit_kw, callbacks = {}, [_report_round]
            if valid is not None:
                yv_all = np.asarray(valid[1], dtype=float)[:, j]
                vrows = np.flatnonzero(~np.isnan(yv_all))
                yv = yv_all[vrows]
                if len(vrows) >= LGBM_MIN_VALID and (not task.is_classification or len(np.unique(yv)) == 2):
                    fit_kw.update(eval_X=np.asarray(valid[0])[vrows], eval_y=yv)
                    callbacks.append(lgb.early_stopping(LGBM_EARLY_STOPPING_ROUNDS, first_metric_only=True,
                                                        verbose=False))
            est.fit(X[rows], y, callbacks=callbacks, **fit_kw)
            booster = est.booster_
            if fit_kw and est.best_iteration_:
                # keep only the trees up to the best validation round (what predict would use anyway)
                booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=est.best_iteration_))
            best_iterations.append(booster.current_iteration())
            boosters.append(booster)
        member = cls(tasks, boosters)
        member.best_iterations = best_iterations
        return member

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = np.full((len(X), len(self.tasks)), np.nan)
        if len(X) == 0:
            return out
        for j, booster in enumerate(self.boosters):
            if booster is not None:
                out[:, j] = booster.predict(X, num_threads=1)
        return out

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        files = []
        for j, booster in enumerate(self.boosters):
            if booster is None:
                files.append(None)
                continue
            name = f"task_{j:03d}.txt"
            booster.save_model(str(folder / name))
            files.append(name)
        (folder / "member.json").write_text(json.dumps(
            {"family": self.family, "tasks": [t.to_dict() for t in self.tasks], "files": files}, indent=1))

    @classmethod
    def load(cls, folder: Path) -> "LGBMMember":
        import lightgbm as lgb

        meta = json.loads((folder / "member.json").read_text())
        boosters = [None if f is None else _load_booster(lgb, folder / f) for f in meta["files"]]
        return cls([TaskSpec.from_dict(t) for t in meta["tasks"]], boosters)


def _load_booster(lgb, path: Path):
    """A booster from LightGBM's text model, or from its gzip (``admet.shipped.pack_bundle`` stores the
    shipped model's boosters gzipped: the same text, about 2.6x smaller)."""
    if path.suffix == ".gz":
        import gzip

        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return lgb.Booster(model_str=fh.read())
    return lgb.Booster(model_file=str(path))


class XGBEndpointModels:
    """One xgboost model per endpoint, on raw features (non-finite values as xgboost's missing value).

    A part of :class:`BlendMember`, not a family of its own: the federated trees of
    ``federation.trees`` (one bagged model per endpoint, grown by the consortium, kept on the node).
    ``models[j]``: the xgboost JSON of endpoint j, ``b""`` where the federation's model has no tree
    (it predicts its base score, ``constants[j]``), ``None`` where the node has no model (NaN).
    ``predict`` is ``federation.trees.predict_raw`` on the same inputs, bit for bit."""

    FILE = "models.json"

    def __init__(self, task_names: Sequence[str], models: Sequence[bytes | None], constants: Sequence[float | None]):
        if not len(task_names) == len(models) == len(constants):
            raise ValueError("xgboost part: one model and one constant per endpoint")
        self.task_names = list(task_names)
        self.models = [None if m is None else bytes(m) for m in models]
        self.constants = [None if c is None else float(c) for c in constants]
        self._boosters: list | None = None

    def boosters(self) -> list:
        if self._boosters is None:
            import xgboost as xgb

            out = []
            for raw in self.models:
                bst = None
                if raw:
                    bst = xgb.Booster()
                    bst.load_model(bytearray(raw))
                out.append(bst)
            self._boosters = out
        return self._boosters

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(n, T): probability of class 1 (classification) or original units; NaN where no model."""
        import xgboost as xgb

        X = np.asarray(X, dtype=np.float32)
        X = np.where(np.isfinite(X), X, np.nan)
        out = np.full((len(X), len(self.models)), np.nan)
        dm = None
        for j, (bst, raw, const) in enumerate(zip(self.boosters(), self.models, self.constants, strict=True)):
            if bst is not None and len(X):
                dm = dm if dm is not None else xgb.DMatrix(X, nthread=1)
                out[:, j] = np.asarray(bst.predict(dm), dtype=np.float64)
            elif raw is not None and const is not None:
                out[:, j] = const
        return out

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        files = []
        for j, raw in enumerate(self.models):
            name = None
            if raw:
                name = f"endpoint_{j:03d}.json"
                (folder / name).write_bytes(raw)
            files.append(name)
        meta = {"task_names": self.task_names, "files": files, "empty": [m == b"" for m in self.models],
                "constants": self.constants}
        (folder / self.FILE).write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, folder: Path) -> "XGBEndpointModels":
        meta = json.loads((folder / cls.FILE).read_text())
        models = [(folder / f).read_bytes() if f else (b"" if empty else None)
                  for f, empty in zip(meta["files"], meta["empty"], strict=True)]
        return cls(meta["task_names"], models, meta["constants"])


def mix_three(a: np.ndarray, b: np.ndarray, c: np.ndarray, w, v) -> np.ndarray:
    """``w * a + v * c + (1 - w - v) * b`` per column (``w`` / ``v``: scalars or one value per column); a weight
    of exactly 1 gives that part bit for bit; where ``b`` is NaN, ``a`` and ``c`` share its weight in proportion to
    theirs (``a`` alone where both are 0). :meth:`BlendMember.combine3` and the federated blend's private-net
    options (``federation.blend.private_net_options``) both compute with it, so the bundle predicts the option."""
    w, v = np.asarray(w, float), np.asarray(v, float)
    u = 1.0 - w - v
    with np.errstate(invalid="ignore"):
        mixed = w * a + v * c + u * np.where(np.isnan(b), 0.0, b)
        nets = np.where(w + v > 0, (w * a + v * c) / np.where(w + v > 0, w + v, 1.0), a)
    out = np.where(w == 1.0, a, np.where(v == 1.0, c, np.where(np.isclose(u, 1.0), b, mixed)))
    return np.where(np.isnan(b) & (w < 1.0) & (v < 1.0), nets, out)


@MEMBERS.register("blend")
class BlendMember:
    """A multitask network and LightGBM, combined per endpoint: ``w * net + (1 - w) * trees``.

    ``net_weight`` (one value in [0, 1] per endpoint, the network's weight) defaults to 0.5 everywhere:
    the equal-weight mean of the two parts fitted on the same rows (``fit``, the default family). A
    per-endpoint weight of exactly 1 gives the network's prediction and 0 LightGBM's, bit for bit (the
    federated blend's per-endpoint choice, ``federation.blend_bundle``). Where LightGBM has no model for
    an endpoint (fewer than 5 labels, one class) the network's prediction is used alone, so the blend
    never predicts NaN where the network does not.

    ``scalers`` (optional, ``(net's, LightGBM's)`` :class:`admet.features.FeatureScaler`, either may be
    None): each part transforms the member's input with its own scaler first. A bundle of such members
    keeps the identity as its own scaler (``FeatureScaler.identity``), so each part sees exactly the
    features it was trained on (a federated net on the consortium's scaling, private trees on the
    partner's; the scalers clip and impute differently, so one shared scaling would change predictions).

    ``xgb`` (optional, :class:`XGBEndpointModels` on raw features) with ``xgb_endpoints`` (bool per
    endpoint): where True the member predicts exactly the xgboost model (the federated trees chosen by
    the federated blend), the rest of the blend where that model is NaN. Without it nothing changes,
    in memory or in the saved files.

    ``net2`` (optional, a second :class:`MTNNMember` on its own ``net2_scaler``) with ``net2_weight`` (per
    endpoint): the federated blend's private network (``federation.blend.PrivateNet``, the partner's own
    net); the member predicts ``w * net + v * net2 + (1 - w - v) * trees`` (:meth:`combine3`). Without it
    nothing changes, in memory or in the saved files.
    """

    family = "blend"
    PARTS = ("mtnn", "lgbm")
    SCALER_FILES = ("net_scaler.npz", "lgbm_scaler.npz")
    XGB_DIR = "xgb"
    NET2_DIR, NET2_SCALER_FILE = "mtnn_private", "net2_scaler.npz"

    def __init__(self, net: "MTNNMember", gbm: "LGBMMember", net_weight: Sequence[float] | None = None,
                 scalers: tuple | None = None, xgb: "XGBEndpointModels | None" = None,
                 xgb_endpoints: Sequence[bool] | None = None, net2: "MTNNMember | None" = None,
                 net2_weight: Sequence[float] | None = None, net2_scaler=None) -> None:
        self.net = net
        self.gbm = gbm
        if (net2 is None) != (net2_weight is None):
            raise ValueError("a blend's second network needs its weights (net2_weight), and they need the network")
        if net2 is not None and net_weight is None:
            raise ValueError("a blend with a second network needs the first network's weights too")
        self.net2, self.net2_scaler = net2, net2_scaler
        self.net2_weight = None if net2_weight is None else np.asarray(net2_weight, dtype=float)
        if (xgb is None) != (xgb_endpoints is None):
            raise ValueError("a blend's xgboost part needs its endpoints (xgb_endpoints), and they need the part")
        self.xgb = xgb
        self.xgb_endpoints = None if xgb_endpoints is None else np.asarray(xgb_endpoints, dtype=bool)
        if xgb is not None and len(self.xgb_endpoints) != len(xgb.models):
            raise ValueError(f"{len(self.xgb_endpoints)} xgboost flags for {len(xgb.models)} endpoint models")
        self.scalers = tuple(scalers) if scalers is not None else (None, None)
        self.net_weight = None
        if net_weight is not None:
            w = np.asarray(net_weight, dtype=float)
            if w.ndim != 1 or not np.all((w >= 0) & (w <= 1)):
                raise ValueError(f"blend net weights must be one value in [0, 1] per endpoint, got {net_weight!r}")
            self.net_weight = w
        if self.net2_weight is not None:
            v = self.net2_weight
            if v.shape != self.net_weight.shape or not np.all((v >= 0) & (self.net_weight + v <= 1 + 1e-9)):
                raise ValueError("second-network weights must be one value per endpoint, >= 0, with the first "
                                 f"network's weight at most 1, got {net2_weight!r}")

    @classmethod
    def fit(cls, X, Y, censor, tasks, cfg: ModelConfig, seed: int, valid: tuple | None = None) -> "BlendMember":
        """``valid``: the rows both parts stop early on (see :meth:`MTNNMember.fit`, :meth:`LGBMMember.fit`)."""
        return cls(MTNNMember.fit(X, Y, censor, tasks, cfg, seed, valid=valid),
                   LGBMMember.fit(X, Y, censor, tasks, cfg, seed, valid=valid))

    def combine(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The blend of the network's ``a`` and LightGBM's ``b`` (both (n, T)); ``b`` NaN -> ``a``."""
        if self.net_weight is None:
            return np.where(np.isnan(b), a, 0.5 * (a + b))
        w = self.net_weight
        if len(w) != a.shape[1]:
            raise ValueError(f"{len(w)} blend weights for {a.shape[1]} endpoints")
        with np.errstate(invalid="ignore"):
            mixed = np.where(w == 0.5, 0.5 * (a + b), w * a + (1.0 - w) * b)
        out = np.where(w == 1.0, a, np.where(w == 0.0, b, mixed))
        return np.where(np.isnan(b), a, out)

    def combine3(self, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        """With a second network ``c``: per endpoint ``w * a + v * c + (1 - w - v) * b`` (``w`` =
        ``net_weight``, ``v`` = ``net2_weight``); a weight of exactly 1 gives that part bit for bit. Where
        LightGBM has no model (``b`` NaN) the two networks share its weight in proportion to theirs (the
        first network alone where both are 0), so the blend is never NaN where the networks are not."""
        w, v = self.net_weight, self.net2_weight
        if len(w) != a.shape[1]:
            raise ValueError(f"{len(w)} blend weights for {a.shape[1]} endpoints")
        return mix_three(a, b, c, w, v)

    def parts(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(network, LightGBM) predictions, each part on its own scaling of ``X``; LightGBM NaN where
        it has no model for an endpoint."""
        net_scaler, gbm_scaler = self.scalers
        a = self.net.predict(X if net_scaler is None else net_scaler.transform(X))
        b = self.gbm.predict(X if gbm_scaler is None else gbm_scaler.transform(X))
        return a, b

    def _net2(self, X: np.ndarray) -> np.ndarray:
        return self.net2.predict(X if self.net2_scaler is None else self.net2_scaler.transform(X))

    def components(self, X: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """(the blend, its parts): the network and LightGBM, each where its weight is above 0 (the
        other part in its place elsewhere, so an endpoint that uses one part has no spread); where the
        xgboost part is used, it is in both parts' place."""
        a, b = self.parts(X)
        b_used = np.where(np.isnan(b), a, b)
        if self.net2 is not None:
            c = self._net2(X)
            w, v = self.net_weight, self.net2_weight
            blend = self.combine3(a, b, c)
            comps = [np.where(w > 0, a, blend), np.where(v > 0, c, blend), np.where(1.0 - w - v > 1e-9, b_used, blend)]
            if self.xgb is None:
                return blend, comps
            use = self._xgb_used(X)
            return self._with_xgb(blend, use), [self._with_xgb(x, use) for x in comps]
        if self.net_weight is None:
            blend, comps = self.combine(a, b), [a, b_used]
        else:
            w = self.net_weight
            blend, comps = self.combine(a, b), [np.where(w == 0.0, b_used, a), np.where(w == 1.0, a, b_used)]
        if self.xgb is None:
            return blend, comps
        use = self._xgb_used(X)
        return (self._with_xgb(blend, use), [self._with_xgb(c, use) for c in comps])

    def _xgb_used(self, X: np.ndarray) -> np.ndarray:
        """(n, T): the xgboost part's predictions where they replace the blend, NaN elsewhere."""
        cols = np.flatnonzero(self.xgb_endpoints)
        out = np.full((len(X), len(self.xgb_endpoints)), np.nan)
        if len(cols):
            out[:, cols] = self.xgb.predict(X)[:, cols]
        return out

    @staticmethod
    def _with_xgb(pred: np.ndarray, used: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(used), pred, used)

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = self.combine(*self.parts(X)) if self.net2 is None else self.combine3(*self.parts(X), self._net2(X))
        return out if self.xgb is None else self._with_xgb(out, self._xgb_used(X))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.net.save(folder / "mtnn")
        self.gbm.save(folder / "lgbm")
        meta = {"family": self.family, "parts": list(self.PARTS)}
        if self.net_weight is None:
            meta["weights"] = [0.5, 0.5]
        else:
            meta["net_weight"] = [float(v) for v in self.net_weight]
        for scaler, name in zip(self.scalers, self.SCALER_FILES):
            if scaler is not None:
                scaler.save(folder / name)
                meta.setdefault("part_scalers", []).append(name)
        if self.xgb is not None:
            self.xgb.save(folder / self.XGB_DIR)
            meta["xgb_endpoints"] = [bool(v) for v in self.xgb_endpoints]
        if self.net2 is not None:
            self.net2.save(folder / self.NET2_DIR)
            meta["net2_weight"] = [float(v) for v in self.net2_weight]
            if self.net2_scaler is not None:
                self.net2_scaler.save(folder / self.NET2_SCALER_FILE)
                meta["net2_scaler"] = self.NET2_SCALER_FILE
        (folder / "member.json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, folder: Path) -> "BlendMember":
        from admet.features import FeatureScaler

        meta = json.loads((folder / "member.json").read_text())
        scalers = tuple(FeatureScaler.load(folder / name) if name in meta.get("part_scalers", []) else None
                        for name in cls.SCALER_FILES)
        xgb = XGBEndpointModels.load(folder / cls.XGB_DIR) if "xgb_endpoints" in meta else None
        net2 = MTNNMember.load(folder / cls.NET2_DIR) if "net2_weight" in meta else None
        net2_scaler = FeatureScaler.load(folder / meta["net2_scaler"]) if "net2_scaler" in meta else None
        return cls(MTNNMember.load(folder / "mtnn"), LGBMMember.load(folder / "lgbm"), meta.get("net_weight"),
                   scalers, xgb, meta.get("xgb_endpoints"), net2, meta.get("net2_weight"), net2_scaler)


def member_class(family: str) -> type:
    """The registered class of ``family``; unknown names raise ``InputError`` (a ``ValueError``)."""
    if family == "dc" and "dc" not in MEMBERS:
        import admet.dc_member  # noqa: F401  (registers "dc")
    return MEMBERS.get(family)


def fit_member(family: str, X, Y, censor, tasks: Sequence[TaskSpec], cfg: ModelConfig,
               seed: int, valid: tuple | None = None) -> Member:
    """Fit one member of ``family`` (``mtnn``, ``lgbm``, ``dc`` or ``blend``); ``valid`` = (X, Y, censor)
    rows to stop early on (the families that take them; None: each family's own default)."""
    if valid is None:
        return member_class(family).fit(X, Y, censor, tasks, cfg, seed)
    return member_class(family).fit(X, Y, censor, tasks, cfg, seed, valid=valid)


def load_member(folder: Path) -> Member:
    meta = json.loads((folder / "member.json").read_text())
    return member_class(str(meta.get("family"))).load(folder)
