"""Endpoints as tasks: task specs and the wide label matrix a multitask model trains on.

The long table (one row per compound x endpoint measurement, ``pipelines.catalog.LONG_COLUMNS``)
becomes a :class:`TaskData`: one row per molecule, one column per endpoint, ``NaN`` where a
molecule was not measured, and a censor matrix recording ``<`` / ``>`` qualifiers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from admet.transforms import check_transform, forward
from pipelines.errors import InputError

log = logging.getLogger(__name__)

REGRESSION = "regression"
CLASSIFICATION = "classification"
TASK_TYPES = (REGRESSION, CLASSIFICATION)

#: relation text -> censor code (-1: true value below the number, +1: above it, 0: exact)
CENSOR_CODES: dict[str, int] = {"=": 0, "<": -1, "<=": -1, ">": 1, ">=": 1, "~": 0, "": 0}


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One endpoint the model predicts."""

    name: str
    """Endpoint name (column name in wide tables, ``endpoint`` in long tables)."""
    task_type: str = REGRESSION
    """``regression`` or ``classification`` (0/1 labels; the model predicts P(class 1))."""
    unit: str = ""
    """Unit of the regression value (e.g. ``log10(mL/min/kg)``), ``binary`` for classification."""
    direction: str = ""
    """Which way is desirable: ``higher``, ``lower`` or ``context``; empty when unknown."""
    transform: str = "none"
    """Value transform the model learns on (``admet.transforms``): ``none`` or ``log10``. Labels in a
    :class:`TaskData` are on the transformed scale; a bundle's predictions are transformed back to ``unit``."""

    def __post_init__(self) -> None:
        check_transform(self.transform)
        if self.task_type not in TASK_TYPES:
            raise InputError(
                f"task {self.name!r}: task type must be one of {TASK_TYPES}, got {self.task_type!r}"
            )
        if not self.name:
            raise InputError("a task needs a non-empty endpoint name")

    @property
    def is_classification(self) -> bool:
        return self.task_type == CLASSIFICATION

    def to_dict(self) -> dict:
        return {"name": self.name, "task_type": self.task_type, "unit": self.unit,
                "direction": self.direction, "transform": self.transform}

    @classmethod
    def from_dict(cls, data: dict) -> "TaskSpec":
        return cls(name=str(data["name"]), task_type=str(data["task_type"]),
                   unit=str(data.get("unit", "")), direction=str(data.get("direction", "")),
                   transform=str(data.get("transform", "none")))


@dataclass(slots=True)
class TaskData:
    """Molecules x endpoints label matrix, ready for featurization and training."""

    smiles: list[str]
    """One (standardized where available) SMILES per molecule row."""
    inchikeys: list[str]
    """Identity key per row (InChIKey when known, otherwise the SMILES itself)."""
    Y: np.ndarray
    """float64 (n, T) labels; NaN = not measured."""
    censor: np.ndarray
    """int8 (n, T): -1 for ``<`` (true value below Y), 0 exact, +1 for ``>``."""
    tasks: list[TaskSpec]
    """The T endpoints, in column order."""
    split: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    """Per-row ``train`` / ``valid`` / ``test`` from the input, or ``""`` where not given."""

    def __post_init__(self) -> None:
        n = len(self.smiles)
        if self.Y.shape != (n, len(self.tasks)) or self.censor.shape != self.Y.shape:
            raise ValueError(
                f"TaskData shapes disagree: {n} molecules, {len(self.tasks)} tasks, "
                f"Y {self.Y.shape}, censor {self.censor.shape}"
            )
        if len(self.split) == 0:
            self.split = np.array([""] * n, dtype=object)

    def __len__(self) -> int:
        return len(self.smiles)

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def is_classification(self) -> np.ndarray:
        return np.array([t.is_classification for t in self.tasks], dtype=bool)

    def subset(self, rows: np.ndarray) -> "TaskData":
        """Rows selected by a boolean mask or an index array (labels filtered with the molecules)."""
        idx = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        return TaskData(
            smiles=[self.smiles[i] for i in idx],
            inchikeys=[self.inchikeys[i] for i in idx],
            Y=self.Y[idx], censor=self.censor[idx], tasks=list(self.tasks),
            split=np.asarray(self.split, dtype=object)[idx],
        )

    def select_tasks(self, names: list[str]) -> "TaskData":
        """Only some endpoints; molecules left without any label are dropped."""
        cols = [self.task_names.index(n) for n in names]
        keep = ~np.all(np.isnan(self.Y[:, cols]), axis=1)
        sub = self.subset(keep)
        return TaskData(sub.smiles, sub.inchikeys, sub.Y[:, cols], sub.censor[:, cols],
                        [self.tasks[c] for c in cols], sub.split)


def infer_task_types(long_df: pd.DataFrame) -> dict[str, str]:
    """Per endpoint: ``classification`` when every value is 0 or 1, else ``regression``."""
    _require(long_df, ("endpoint", "value"))
    types: dict[str, str] = {}
    for endpoint, values in long_df.groupby("endpoint", sort=False)["value"]:
        numeric = pd.to_numeric(values, errors="coerce").dropna()
        binary = len(numeric) > 0 and bool(numeric.isin([0.0, 1.0]).all())
        types[str(endpoint)] = CLASSIFICATION if binary else REGRESSION
    return types


def task_data_from_long(
    long_df: pd.DataFrame,
    task_types: dict[str, str] | None = None,
    units: dict[str, str] | None = None,
    directions: dict[str, str] | None = None,
    transforms: dict[str, str] | None = None,
) -> TaskData:
    """Pivot a long table into a :class:`TaskData` (one row per molecule).

    Molecules are keyed by the ``inchikey`` column when present (a validated table), else by
    the SMILES text. Replicates are aggregated per molecule x endpoint with a stated rule:
    exact values win over censored ones (mean of the exact values); only ``<`` values -> the
    smallest bound; only ``>`` values -> the largest; mixed ``<`` and ``>`` -> the mean, exact.
    Classification replicates take the majority label (ties -> 1). A molecule's split is
    ``test`` if any of its rows says test, else ``valid``, else ``train`` (no leakage).
    ``transforms`` (endpoint -> ``log10``, regression only) puts those labels on the model's scale after
    aggregation (replicates are averaged in the table's unit); the task spec records it.
    """
    _require(long_df, ("smiles", "endpoint", "value"))
    if len(long_df) == 0:
        raise InputError("the training table has no rows")
    df = long_df.copy()
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    bad = df["value"].isna()
    if bad.any():
        log.warning("dropping %d rows with a non-numeric value", int(bad.sum()))
        df = df[~bad]
    rel = df["relation"].fillna("=").astype(str).str.strip() if "relation" in df else "="
    df["censor"] = pd.Series(rel, index=df.index).map(CENSOR_CODES)
    unknown = df["censor"].isna()
    if unknown.any():
        raise InputError(
            f"unknown relation(s) {sorted(set(pd.Series(rel)[unknown.values]))}; use =, <, >"
        )
    df["key"] = df["inchikey"].astype(str) if "inchikey" in df else df["smiles"].astype(str)
    inferred = infer_task_types(df)
    types = {**inferred, **(task_types or {})}
    unit_of = dict(units or {})
    if "unit" in df:
        for ep, unit in df.groupby("endpoint", sort=False)["unit"].first().items():
            unit_of.setdefault(str(ep), "" if pd.isna(unit) else str(unit))
    endpoints = [str(e) for e in pd.unique(df["endpoint"])]
    transform_of = {e: check_transform(t) for e, t in (transforms or {}).items()}
    tasks = [TaskSpec(e, types[e], unit_of.get(e, ""), (directions or {}).get(e, ""),
                      transform_of.get(e, "none") if types[e] == REGRESSION else "none")
             for e in endpoints]
    for t in tasks:
        if t.is_classification:
            vals = df.loc[df["endpoint"] == t.name, "value"]
            if not vals.isin([0.0, 1.0]).all():
                raise InputError(f"endpoint {t.name!r} is set to classification but has non-0/1 values")

    keys = list(pd.unique(df["key"]))
    row_of = pd.Series(np.arange(len(keys)), index=keys)
    col_of = {t.name: j for j, t in enumerate(tasks)}
    Y = np.full((len(keys), len(tasks)), np.nan)
    C = np.zeros((len(keys), len(tasks)), dtype=np.int8)
    agg = _aggregate_groups(df, {t.name for t in tasks if t.is_classification})
    rows = row_of.loc[agg["key"]].to_numpy()
    cols = agg["endpoint"].map(col_of).to_numpy()
    Y[rows, cols] = agg["value"].to_numpy(float)
    C[rows, cols] = agg["censor"].to_numpy(np.int8)
    for j, t in enumerate(tasks):
        if t.transform != "none":
            Y[:, j] = forward(Y[:, j], t.transform, t.name)
            C[np.isnan(Y[:, j]), j] = 0
    first = df.drop_duplicates("key").set_index("key")
    smiles = [str(first.at[k, "smiles"]) for k in keys]
    split = np.array([""] * len(keys), dtype=object)
    if "split" in df:
        s = df["split"].fillna("").astype(str).str.lower().str.strip()
        rank = s.map({"test": 3, "valid": 2, "val": 2, "validation": 2, "train": 1}).fillna(0)
        best = rank.groupby(df["key"]).max()
        names = {3: "test", 2: "valid", 1: "train", 0: ""}
        split = np.array([names[int(best[k])] for k in keys], dtype=object)
    n_censored = int((C != 0).sum())
    log.info("task data: %d molecules x %d endpoints, %d labels (%d censored)",
             len(keys), len(tasks), int((~np.isnan(Y)).sum()), n_censored)
    return TaskData(smiles=smiles, inchikeys=[str(k) for k in keys], Y=Y, censor=C,
                    tasks=tasks, split=split)


def _aggregate_groups(df: pd.DataFrame, classification: set[str]) -> pd.DataFrame:
    """One row per (key, endpoint): value and censor code by the rules of ``task_data_from_long``."""
    d = pd.DataFrame({"key": df["key"].to_numpy(), "endpoint": df["endpoint"].astype(str).to_numpy(),
                      "value": df["value"].to_numpy(float), "censor": df["censor"].to_numpy(int)})
    d["exact_value"] = d["value"].where(d["censor"] == 0)
    d["lt_value"] = d["value"].where(d["censor"] < 0)
    d["gt_value"] = d["value"].where(d["censor"] > 0)
    g = d.groupby(["key", "endpoint"], sort=False)
    out = g.agg(exact=("exact_value", "mean"), n_exact=("exact_value", "count"), lt=("lt_value", "min"),
                n_lt=("lt_value", "count"), gt=("gt_value", "max"), n_gt=("gt_value", "count"),
                mean=("value", "mean")).reset_index()
    has_exact = out["n_exact"] > 0
    only_lt = ~has_exact & (out["n_gt"] == 0)
    only_gt = ~has_exact & (out["n_lt"] == 0)
    out["value"] = np.select([has_exact, only_lt, only_gt], [out["exact"], out["lt"], out["gt"]], out["mean"])
    out["censor"] = np.select([has_exact, only_lt, only_gt], [0, -1, 1], 0)
    is_cls = out["endpoint"].isin(classification)
    out.loc[is_cls, "value"] = (out.loc[is_cls, "mean"] >= 0.5).astype(float)  # majority, ties -> 1
    out.loc[is_cls, "censor"] = 0
    return out[["key", "endpoint", "value", "censor"]]


def _require(df: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"table is missing column(s) {missing}; has {list(df.columns)}")
