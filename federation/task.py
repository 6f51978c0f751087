"""What a partner does with its own data, with no Flower types: load, featurize, split, scale, train, score.

Read ``federation/`` in this order: ``task.py`` (this) -> ``node.py`` -> ``client_app.py`` ->
``server_app.py`` (-> ``stages.py``) -> ``strategy.py`` (-> ``aggregation.py``) -> ``secagg.py``.

A partner folder holds ``data.csv`` (the K-MELLODDY-style long table). ``load_partner`` turns it into
a feature matrix and a label matrix for the partner's own endpoints, split by scaffold into
train / valid / test, and caches the arrays in the partner's node-local work folder.
Scaling (``ConsortiumScaling``): by default features are scaled by ``public_feature_scaler`` (fit on
public molecules, nothing from a partner) and, with private heads, each partner scales its own targets
(``partner_targets``); with shared heads the target scale is fit on the embedded public data
(``public_target_scaler``). ``local_moments`` gives the sums, sums of squares and counts of the older
``moments`` mode only. Rows never leave the partner.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from admet.features import FeatureScaler, feature_moments
from admet.model import MultitaskNet
from admet.tasks import TaskSpec, task_data_from_long
from admet.train import TargetScaler, TrainConfig, predict_raw, seed_everything, train_epochs
from pipelines.errors import InputError

log = logging.getLogger(__name__)

DATA_FILE = "data.csv"
#: Scaled features are clipped to this many standard deviations (descriptor tails are long).
FEATURE_CLIP = 6.0
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


@dataclass(slots=True)
class PartnerData:
    """One partner's featurized data (own endpoints only)."""

    partner: str
    X: np.ndarray
    """float32 (n, d) raw (unscaled) features of the valid molecules."""
    Y: np.ndarray
    """float (n, T_own) labels on the model scale (the catalog unit, log10 where the catalog's
    transform says so), NaN = not measured."""
    censor: np.ndarray
    """int8 (n, T_own)."""
    tasks: list[TaskSpec]
    split: np.ndarray
    """``train`` / ``valid`` / ``test`` per row (scaffold split inside the partner)."""
    n_invalid: int = 0
    """Molecules dropped because featurization failed."""
    smiles: np.ndarray | None = None
    """SMILES per row (stays on the partner; used for its own bundle's applicability domain)."""

    def rows(self, fold: str) -> np.ndarray:
        return np.flatnonzero(self.split == fold)

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]


@dataclass(slots=True)
class ConsortiumScaling:
    """The consortium's feature and target scaling and its task list (with the catalog's value transforms),
    as the server sends it to every node."""

    features: FeatureScaler
    """Mean / std from the summed moments, clipped to +/- ``FEATURE_CLIP``."""
    tasks: list[TaskSpec]
    """Union of all partners' endpoints, in model column order."""
    target: TargetScaler

    @property
    def n_features(self) -> int:
        return len(self.features.center)

    def scale_features(self, X: np.ndarray) -> np.ndarray:
        return self.features.transform(X)

    def to_config(self) -> dict:
        """Flat lists and strings (what a Flower ``ConfigRecord`` can carry)."""
        return {
            "feature-mean": [float(v) for v in self.features.center],
            "feature-std": [float(v) for v in self.features.scale],
            "task-names": [t.name for t in self.tasks],
            "task-types": [t.task_type for t in self.tasks],
            "task-units": [t.unit for t in self.tasks],
            "task-transforms": [t.transform for t in self.tasks],
            "target-mean": [float(v) for v in self.target.mean],
            "target-std": [float(v) for v in self.target.std],
        }

    @classmethod
    def from_config(cls, cfg) -> "ConsortiumScaling":
        names = list(cfg["task-names"])
        transforms = list(cfg["task-transforms"]) if "task-transforms" in cfg else ["none"] * len(names)
        tasks = [TaskSpec(n, t, u, transform=f)
                 for n, t, u, f in zip(names, cfg["task-types"], cfg["task-units"], transforms, strict=True)]
        is_cls = np.array([t.is_classification for t in tasks], dtype=bool)
        target = TargetScaler(np.asarray(cfg["target-mean"], float), np.asarray(cfg["target-std"], float), is_cls)
        features = FeatureScaler(np.asarray(cfg["feature-mean"], np.float32),
                                 np.asarray(cfg["feature-std"], np.float32), clip=FEATURE_CLIP)
        return cls(features, tasks, target)


def read_partner_table(data_dir: Path) -> pd.DataFrame:
    """The partner's long table (``data.csv`` in its folder, or the file itself)."""
    path = Path(data_dir)
    if path.is_dir():
        path = path / DATA_FILE
    if not path.exists():
        raise InputError(f"partner data not found: {path}")
    from pipelines.readers import read_long_table

    table = read_long_table(path)
    missing = {"smiles", "endpoint", "value"} - set(table.columns)
    if missing:
        raise InputError(f"partner table {path} lacks column(s) {sorted(missing)}")
    return table


def featurize(smiles: list[str], spec: str, cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """(X float32, valid bool) via the pipelines featurizer registry (with its on-disk cache)."""
    from pipelines.featurize import featurize_smiles

    fm = featurize_smiles(list(smiles), spec=spec, n_jobs=1, cache_dir=cache_dir)
    return np.asarray(fm.X, dtype=np.float32), np.asarray(fm.valid, dtype=bool)


def split_partner(smiles: list[str], seed: int) -> np.ndarray:
    """Scaffold split inside the partner (train / valid / test)."""
    from pipelines.split import scaffold_split

    return np.asarray(scaffold_split(list(smiles), fractions=SPLIT_FRACTIONS, seed=seed), dtype=object)


def prepare_partner(data_dir: Path, partner: str, work_dir: Path | None,
                    settings=None):
    """The partner's table prepared as every node prepares it (``pipelines.partner_data.prepare_node_data``:
    validate against the consortium catalog, convert units, aggregate replicates, keyed scaffold folds),
    cached under ``work_dir/prepared``. In a simulation the catalog is the partition's ``catalog.json``
    (next to the partner folders) when there is one."""
    from pipelines.partner_data import CONSORTIUM_CATALOG, NodeDataSettings, prepare_node_data

    if settings is None:
        folder = Path(data_dir) if Path(data_dir).is_dir() else Path(data_dir).parent
        published = folder.parent / CONSORTIUM_CATALOG
        settings = NodeDataSettings(catalog_path=published if published.is_file() else None)
    out = Path(work_dir) / "prepared" if work_dir else Path(data_dir if Path(data_dir).is_dir()
                                                             else Path(data_dir).parent) / ".fedadmet_prepared"
    prep = prepare_node_data(data_dir, out, settings)
    if not prep.usable:
        raise InputError(f"{partner}: no usable rows after preparation "
                         f"(rejected: {prep.summary.get('rejected_by_reason', {})})")
    return prep


def load_partner(data_dir: Path, partner: str, featurizer: str, cache_dir: Path | None,
                 work_dir: Path | None = None, seed: int = 0, settings=None) -> PartnerData:
    """Featurized data of one partner, prepared (:func:`prepare_partner`) and split by the keyed
    scaffold folds; arrays cached in ``work_dir`` keyed by the prepared table's content hash.
    ``seed`` is kept for the cache key (the folds do not depend on it)."""
    prep = prepare_partner(data_dir, partner, work_dir, settings)
    table = prep.prepared
    digest = hashlib.sha256(pd.util.hash_pandas_object(table, index=False).values.tobytes())
    digest.update(f"{featurizer}|{seed}|keyed-folds|catalog-transforms".encode())
    key = digest.hexdigest()[:16]
    cache = Path(work_dir) / f"partner_arrays_{key}.npz" if work_dir else None
    if cache is not None and cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return PartnerData(partner, z["X"], z["Y"], z["censor"],
                               [TaskSpec.from_dict(t) for t in meta["tasks"]],
                               z["split"].astype(object), meta["n_invalid"], z["smiles"].astype(object))
    types = {str(k): str(v) for k, v in prep.summary.get("task_types", {}).items()}
    units = dict(zip(table["endpoint"].astype(str), table["unit"].astype(str), strict=True))
    # The catalog's value transforms (log10 for VDss, half-life, clearances): the partner trains on the
    # model scale the rest of the project uses (``admet.fit``), and every metric here is a rank or
    # AUROC, which the transform leaves unchanged.
    transforms = {str(k): str(v) for k, v in prep.summary.get("transforms", {}).items()}
    td = task_data_from_long(table, task_types=types, units=units, transforms=transforms)
    fold_of = dict(zip(table["inchikey"].astype(str), table["fold"].astype(str)))
    td.split = np.asarray([fold_of[k] for k in td.inchikeys], dtype=object)
    X, valid = featurize(td.smiles, featurizer, cache_dir)
    n_invalid = int((~valid).sum())
    if n_invalid:
        log.warning("%s: %d molecule(s) could not be featurized and are left out", partner, n_invalid)
    td = td.subset(valid)
    X = X[valid]
    if len(td) < 10:
        raise InputError(f"{partner}: only {len(td)} usable molecules; a partner needs at least 10")
    split = np.asarray(td.split, dtype=object)
    empty = [f for f in ("train", "valid", "test") if not (split == f).any()]
    if empty:
        log.warning("%s: the consortium's keyed folds leave no %s rows here", partner, " / ".join(empty))
    data = PartnerData(partner, X, td.Y, td.censor, list(td.tasks), split, n_invalid,
                       np.asarray(td.smiles, dtype=object))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"tasks": [t.to_dict() for t in data.tasks], "n_invalid": n_invalid})
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, X=X, Y=data.Y, censor=data.censor, split=split.astype(str), meta=np.array(meta),
                 smiles=np.asarray(td.smiles, dtype=str))
        tmp.replace(cache)
    return data


def local_moments(data: PartnerData) -> dict[str, np.ndarray]:
    """Sums / sums of squares / counts of the training rows: features and each endpoint's labels."""
    tr = data.rows("train")
    total, total_sq, count = feature_moments(data.X[tr])
    Y = data.Y[tr]
    obs = ~np.isnan(Y)
    return {
        "feature-sum": total, "feature-sumsq": total_sq, "feature-count": count,
        "target-sum": np.where(obs, Y, 0.0).sum(0), "target-sumsq": np.where(obs, Y * Y, 0.0).sum(0),
        "target-count": obs.sum(0).astype(np.float64),
    }


def consortium_scaling(n_features: int, tasks: list[TaskSpec],
                       contributions: list[tuple[list[str], dict[str, np.ndarray]]]) -> ConsortiumScaling:
    """Combine the partners' moments: ``contributions`` = [(partner's endpoint names, moments)]."""
    names = [t.name for t in tasks]
    fs, fss, fc = np.zeros(n_features), np.zeros(n_features), np.zeros(n_features)
    ts, tss, tc = np.zeros(len(tasks)), np.zeros(len(tasks)), np.zeros(len(tasks))
    for own, m in contributions:
        fs += m["feature-sum"]
        fss += m["feature-sumsq"]
        fc += m["feature-count"]
        cols = [names.index(n) for n in own]
        ts[cols] += m["target-sum"]
        tss[cols] += m["target-sumsq"]
        tc[cols] += m["target-count"]
    is_cls = [t.is_classification for t in tasks]
    return ConsortiumScaling(FeatureScaler.from_moments(fs, fss, fc, clip=FEATURE_CLIP), list(tasks),
                             TargetScaler.from_moments(ts, tss, tc, is_cls))


#: Molecules of the public reference set (MOSES, shipped with the package) the feature scaling is fit on.
PUBLIC_REFERENCE_SIZE = 1000


def public_reference_smiles(n: int = PUBLIC_REFERENCE_SIZE) -> list[str]:
    """The first ``n`` molecules of the bundled MOSES sample (public, MIT): no partner's structures."""
    import gzip

    from pipelines.catalog import screening_library_path

    with gzip.open(screening_library_path(), "rt", encoding="utf-8") as handle:
        lines = (line.split()[0] for line in handle if line.strip())
        return [next(lines) for _ in range(n)]


def public_feature_scaler(featurizer: str, cache_dir: Path | None) -> FeatureScaler:
    """Robust feature scaling (median / IQR, clipped) fit on the public reference set only.

    What the consortium needs to scale inputs, with nothing from any partner: every node applies the
    same fixed transform, which the server sends in the round config."""
    X, ok = featurize(public_reference_smiles(), featurizer, cache_dir)
    return FeatureScaler.fit(X[ok], clip=FEATURE_CLIP)


def public_scaling(scaler: FeatureScaler, tasks: list[TaskSpec],
                   target: TargetScaler | None = None) -> ConsortiumScaling:
    """Scaling from the public feature scaler and ``target`` (shared heads: :func:`public_target_scaler`),
    or identity placeholders that each partner replaces with its own (private heads, ``partner_targets``)."""
    if target is None:
        zeros = np.zeros(len(tasks))
        target = TargetScaler.from_moments(zeros, zeros, zeros, [t.is_classification for t in tasks])
    return ConsortiumScaling(scaler, list(tasks), target)


#: Embedded rows with these ``split`` values are left out of the public target scale: the shared
#: heads' scale is fit on the public sets' training side only.
PUBLIC_SCALE_EXCLUDED_SPLITS = ("test",)


def missing_public_target_scale(tasks: list[TaskSpec]) -> list[str]:
    """The regression endpoints the embedded data does not measure: no public target scale for shared
    heads. Cheap: reads the catalog only."""
    from pipelines.catalog import load_catalog

    known = set(load_catalog()["endpoint"].astype(str))
    return sorted(t.name for t in tasks if not t.is_classification and t.name not in known)


def check_public_target_scale(tasks: list[TaskSpec]) -> None:
    """:class:`InputError` naming every endpoint of :func:`missing_public_target_scale`."""
    missing = missing_public_target_scale(tasks)
    if missing:
        raise InputError(f"shared heads need a public target scale per endpoint; the embedded data does not "
                         f"measure {missing}: use --heads private (each partner scales its own targets) or "
                         f"--scaling moments (the partners' label sums are summed, unmasked)")


def public_target_scaler(tasks: list[TaskSpec]) -> TargetScaler:
    """One target scale per endpoint for shared heads, fit on public data the operator holds: the
    embedded catalog's exact measurements of that endpoint (its official test rows left out), on the
    model scale (the task's transform). Nothing from any partner.

    A regression endpoint the embedded data does not measure has no public scale: shared heads are
    refused for it with one message (``--heads private`` scales per partner; ``--scaling moments``
    sums the partners' label moments, unmasked)."""
    from admet.transforms import forward
    from pipelines.catalog import load_embedded

    check_public_target_scale(tasks)
    regression = [t for t in tasks if not t.is_classification]
    Y = np.full((1, len(tasks)), np.nan)
    if regression:
        table = load_embedded([t.name for t in regression])
        table = table[~table["split"].isin(PUBLIC_SCALE_EXCLUDED_SPLITS)
                      & table["relation"].fillna("=").astype(str).str.strip().isin(["=", ""])]
        values = {str(e): pd.to_numeric(g["value"], errors="coerce").to_numpy(float)
                  for e, g in table.groupby("endpoint")}
        longest = max((len(v) for v in values.values()), default=1)
        Y = np.full((longest, len(tasks)), np.nan)
        for j, t in enumerate(tasks):
            if t.name in values:
                col = forward(values[t.name], t.transform, t.name)
                Y[:len(col), j] = col
    return TargetScaler.fit(Y, [t.is_classification for t in tasks])


def partner_targets(scaling: ConsortiumScaling, data: PartnerData) -> ConsortiumScaling:
    """The scaling with this partner's own target scaler (its training labels, its own endpoints;
    others identity): private heads are the partner's, so their scale never needs to leave it."""
    Y, _ = align(data, scaling.tasks, strict=False)
    own = TargetScaler.fit(Y[data.rows("train")], [t.is_classification for t in scaling.tasks])
    return ConsortiumScaling(scaling.features, scaling.tasks, own)


def union_tasks(per_partner: list[list[TaskSpec]]) -> list[TaskSpec]:
    """All endpoints seen by any partner, sorted by name; a name with two types or two value
    transforms is an error."""
    seen: dict[str, TaskSpec] = {}
    for tasks in per_partner:
        for t in tasks:
            if t.name in seen and seen[t.name].task_type != t.task_type:
                raise InputError(f"endpoint {t.name!r} is regression at one partner and classification at another")
            if t.name in seen and seen[t.name].transform != t.transform:
                raise InputError(f"endpoint {t.name!r} is trained on {seen[t.name].transform!r} at one partner and "
                                 f"{t.transform!r} at another: the partners prepared with different catalogs")
            seen.setdefault(t.name, t)
    return [seen[n] for n in sorted(seen)]


def align(data: PartnerData, tasks: list[TaskSpec], strict: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The partner's labels placed in the model's (union) task columns; others NaN.

    ``strict``: a partner endpoint missing from ``tasks`` is an error (else it is left out).
    """
    names = [t.name for t in tasks]
    Y = np.full((len(data.Y), len(tasks)), np.nan)
    C = np.zeros((len(data.Y), len(tasks)), dtype=np.int8)
    for j, name in enumerate(data.task_names):
        if name not in names:
            if not strict:
                continue
            raise InputError(f"{data.partner}: endpoint {name!r} is not in the model's task list")
        Y[:, names.index(name)] = data.Y[:, j]
        C[:, names.index(name)] = data.censor[:, j]
    return Y, C


def build_model(n_features: int, tasks: list[TaskSpec], hidden: tuple[int, ...], dropout: float,
                seed: int) -> MultitaskNet:
    """The network every partner and the server start from (same seed -> same initial weights)."""
    seed_everything(seed)
    return MultitaskNet(n_features, tasks, hidden=hidden, dropout=dropout)


def train_partner(model: MultitaskNet, data: PartnerData, scaling: ConsortiumScaling, cfg: TrainConfig,
                  epochs: int, global_params: list[np.ndarray] | None = None) -> float:
    """Local training on the partner's train rows (in place); returns the last epoch's loss."""
    tr = data.rows("train")
    Y, C = align(data, scaling.tasks)
    X = scaling.scale_features(data.X[tr])
    return train_epochs(model, X, scaling.target.transform(Y[tr]), C[tr], cfg, epochs,
                        global_params=global_params)


def finetune_heads(model: MultitaskNet, data: PartnerData, scaling: ConsortiumScaling, cfg: TrainConfig,
                   epochs: int) -> float:
    """Refit the heads on the partner's train rows with the trunk frozen (in place); returns the
    last epoch's loss. Private-heads mode calls this on the final global trunk before reporting."""
    frozen = [p for p in model.trunk.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        return train_partner(model, data, scaling, cfg, epochs)
    finally:
        for p in frozen:
            p.requires_grad_(True)


def predict_partner(model: MultitaskNet, data: PartnerData, scaling: ConsortiumScaling,
                    fold: str) -> tuple[np.ndarray, np.ndarray]:
    """(predictions in original units / probabilities, aligned labels) on one fold."""
    rows = data.rows(fold)
    Y, _ = align(data, scaling.tasks)
    pred = predict_raw(model, scaling.scale_features(data.X[rows]), scaling.target)
    return pred, Y[rows]
