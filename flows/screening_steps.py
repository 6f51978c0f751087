"""The screening pipeline as plain functions (no Prefect): the flow wraps exactly these.

library -> read -> validate -> featurize chunks -> predict chunks (bundle) -> score and rank ->
ranked table + rejects. Every input row ends up either ranked or rejected with a reason.

The ranked table starts ``rank, row, input, smiles, inchikey, duplicate_of`` (the row of the first
input with the same InChIKey), then the input's own columns (IDs, names, SDF properties), the
scores, the physicochemical columns (``pipelines.physchem``) and the predictions; ``columns.json``
in the run folder (and the Parquet schema metadata) says what each column means (``admet.columns``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from flows.desirability import DesirabilityProfile, expected_score, load_profile, score_predictions
from pipelines.errors import InputError

log = logging.getLogger(__name__)

#: Reject reason for a molecule that passed validation but could not be featurized.
FEATURIZATION_FAILED = "featurization_failed"


@dataclass(slots=True)
class ScreeningConfig:
    """Inputs of one screening run (validated once, written next to the outputs)."""

    library: Path
    """CSV / TSV / SDF / .smi / Parquet file (``.gz`` fine) of the compounds to screen."""
    bundle_dir: Path
    """A saved admet model bundle."""
    out_dir: Path
    """Run folder for the ranked table, rejects, plots and report."""
    profile: Path | None = None
    """Desirability profile (TOML); None: the shipped default."""
    smiles_col: str | None = None
    chunk_size: int = 1000
    top_n: int = 25
    use_cache: bool = True
    """Reuse featurized chunks with the same content (Prefect cache by input hash)."""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.library = Path(self.library)
        self.bundle_dir = Path(self.bundle_dir)
        self.out_dir = Path(self.out_dir)
        self.profile = Path(self.profile) if self.profile else None
        if not self.library.is_file():
            raise InputError(f"screening library not found: {self.library}")
        if not self.bundle_dir.is_dir():
            raise InputError(f"model bundle folder not found: {self.bundle_dir}")
        if self.chunk_size < 1 or self.top_n < 1:
            raise InputError("chunk size and top-N must be >= 1")

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass(slots=True)
class ScreeningResult:
    """What a screening run produced."""

    ranked: pd.DataFrame
    rejects: pd.DataFrame
    n_input: int
    files: dict[str, Path]
    endpoints: list[str]
    id_columns: list[str] = field(default_factory=list)
    """The input's own columns carried into ``ranked`` (IDs, names, SDF properties)."""

    def summary(self) -> dict:
        reasons = self.rejects["reason"].value_counts().to_dict() if len(self.rejects) else {}
        return {"n_input": self.n_input, "n_ranked": len(self.ranked), "n_rejected": len(self.rejects),
                "rejects_by_reason": {str(k): int(v) for k, v in reasons.items()},
                "endpoints": self.endpoints,
                "best_score": float(self.ranked["score"].max()) if len(self.ranked) else None}


# --- reading and validation ---------------------------------------------------------------

def read_library(path: Path, smiles_col: str | None = None) -> pd.DataFrame:
    from pipelines.readers import read_molecules

    frame = read_molecules(path, smiles_col=smiles_col)
    if len(frame) == 0:
        raise InputError(f"screening library {path} holds no molecules")
    log.info("read %d records from %s", len(frame), path)
    return frame


def validate_library(frame: pd.DataFrame):
    from pipelines.validate import validate_molecules

    result = validate_molecules(frame, smiles_col="input")
    log.info("validated: %d accepted, %d rejected", len(result.accepted), len(result.rejected))
    return result


def chunk_bounds(n: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, n)) for start in range(0, n, size)]


# --- model bundle: featurize and predict --------------------------------------------------

_BUNDLE_LOCK = threading.Lock()


def cached_bundle(bundle_dir: str):
    """The loaded bundle, once per process (predict tasks on Prefect's thread pool share it;
    tasks on Dask workers each load their own)."""
    with _BUNDLE_LOCK:
        return _load_bundle_once(bundle_dir)


@functools.lru_cache(maxsize=4)
def _load_bundle_once(bundle_dir: str):
    from admet.bundle import load_bundle

    return load_bundle(Path(bundle_dir))


def content_hash(smiles: list[str], spec: str) -> str:
    digest = hashlib.sha256(spec.encode())
    for s in smiles:
        digest.update(b"\0" + s.encode())
    return digest.hexdigest()


def bundle_featurizer_spec(bundle_dir: Path) -> str:
    return cached_bundle(str(bundle_dir)).featurizer_spec


def featurize_chunk(smiles: list[str], spec: str):
    """:class:`admet.prediction_inputs.PredictionInputs` of one chunk (each molecule parsed once: features,
    valid mask, domain inputs, physchem; rows align with ``smiles``)."""
    from admet.prediction_inputs import featurize_for_prediction

    return featurize_for_prediction(list(smiles), spec)


def predict_chunk(bundle_dir: Path, smiles: list[str], features) -> pd.DataFrame:
    """The physicochemical columns and the bundle's per-endpoint predictions (mean, std, interval,
    domain) of one featurized chunk (``featurize_chunk``'s result); NaN on invalid rows."""
    from pipelines.physchem import PHYSCHEM_COLUMNS

    bundle = cached_bundle(str(bundle_dir))
    preds = bundle.predict_inputs(list(smiles), features)
    return pd.concat([pd.DataFrame(features.physchem, columns=list(PHYSCHEM_COLUMNS)), preds], axis=1)


# --- ranking and outputs -------------------------------------------------------------------

def count_out_of_domain(in_domain: pd.DataFrame) -> pd.Series:
    """Endpoints whose applicability domain a row is outside of; NA (unknown) when any endpoint's
    domain flag is unknown (a bundle without domain data), so unknown never counts as inside."""
    flags = in_domain.astype("boolean")
    out = (~flags).fillna(False).astype(int).sum(axis=1).astype("Int64")
    out[flags.isna().any(axis=1)] = pd.NA
    return out


def domain_counts(ranked: pd.DataFrame) -> dict[str, int]:
    """Rows inside every endpoint's applicability domain, outside at least one, and unknown."""
    n_out = ranked["n_out_of_domain"].astype("Int64")
    return {"inside": int((n_out == 0).sum()), "outside": int((n_out > 0).sum()), "unknown": int(n_out.isna().sum())}


def with_duplicates(accepted: pd.DataFrame) -> pd.DataFrame:
    """``duplicate_of`` after ``inchikey``: the row of the first accepted input with the same InChIKey
    (NA for a first occurrence)."""
    if "inchikey" not in accepted.columns or "duplicate_of" in accepted.columns:
        return accepted
    first = accepted.groupby("inchikey", sort=False)["row"].transform("min")
    dup = pd.array(np.where(first.to_numpy() != accepted["row"].to_numpy(), first.to_numpy(), -1), dtype="Int64")
    dup[dup == -1] = pd.NA
    out = accepted.copy()
    out.insert(list(out.columns).index("inchikey") + 1, "duplicate_of", dup)
    return out


def domain_reason_counts(ranked: pd.DataFrame) -> dict[str, int]:
    """Molecules per applicability-domain reason (``ad_flags``: ``low_similarity``, ``range:<descriptor>``,
    ``peptide``, ...), most frequent first; empty without the column."""
    if "ad_flags" not in ranked:
        return {}
    tokens = ranked["ad_flags"].dropna().astype(str).str.split(";").explode()
    tokens = tokens[tokens != ""]
    return {str(k): int(v) for k, v in tokens.value_counts().items()}


def rank_predictions(accepted: pd.DataFrame, predictions: pd.DataFrame, valid: np.ndarray,
                     profile: DesirabilityProfile, endpoints: list[str],
                     coverage: float = 0.9) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scored, ranked table of featurizable molecules + rejects for the rest."""
    accepted = accepted.reset_index(drop=True)
    predictions = predictions.reset_index(drop=True)
    valid = np.asarray(valid, dtype=bool)
    if len(predictions) != len(accepted) or len(valid) != len(accepted):
        raise RuntimeError("predictions do not align with the accepted molecules")
    failed = accepted.loc[~valid, ["row", "input"]].assign(reason=FEATURIZATION_FAILED)
    accepted = with_duplicates(accepted)
    base = accepted.loc[valid].reset_index(drop=True)
    preds = predictions.loc[valid].reset_index(drop=True)
    scores = score_predictions(preds[endpoints], profile)
    scores["score_expected"] = expected_score(preds, profile, coverage)
    domain_cols = [f"{e}_in_domain" for e in endpoints if f"{e}_in_domain" in preds]
    table = pd.concat([base, scores, preds], axis=1)
    if domain_cols:
        table["n_out_of_domain"] = count_out_of_domain(table[domain_cols])
    table = table.sort_values(["score", "score_expected", "row"], ascending=[False, False, True],
                              na_position="last", kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table.reset_index(drop=True), failed.reset_index(drop=True)


def write_outputs(ranked: pd.DataFrame, rejects: pd.DataFrame, out_dir: Path, config: dict,
                  summary: dict, tasks: list | None = None, id_columns: list[str] | None = None
                  ) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from admet.columns import parquet_metadata, write_sidecar

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"ranked_csv": out_dir / "ranked.csv", "ranked_parquet": out_dir / "ranked.parquet",
             "rejects_csv": out_dir / "rejects.csv", "config": out_dir / "config.json",
             "summary": out_dir / "summary.json", "columns": out_dir / "columns.json"}
    tasks, id_columns = tasks or [], id_columns or []
    ranked.to_csv(files["ranked_csv"], index=False)
    table = pa.Table.from_pandas(ranked, preserve_index=False)
    meta = dict(table.schema.metadata or {}) | parquet_metadata(list(ranked.columns), tasks, id_columns)
    pq.write_table(table.replace_schema_metadata(meta), files["ranked_parquet"])
    write_sidecar(files["columns"], list(ranked.columns), tasks, id_columns)
    rejects.to_csv(files["rejects_csv"], index=False)
    files["config"].write_text(json.dumps(config, indent=2, sort_keys=True, default=str))
    files["summary"].write_text(json.dumps(summary, indent=2, sort_keys=True, default=str))
    return files


def all_rejects(validation_rejects: pd.DataFrame, featurization_rejects: pd.DataFrame) -> pd.DataFrame:
    cols = ["row", "input", "reason"]
    frames = [f.loc[:, cols] for f in (validation_rejects, featurization_rejects) if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    out = pd.concat(frames, ignore_index=True)
    out["reason"] = out["reason"].astype(str)
    return out.sort_values("row", kind="stable").reset_index(drop=True)


def screen_plain(cfg: ScreeningConfig) -> ScreeningResult:
    """The whole screening run without Prefect (same functions, same outputs, no artifacts)."""
    profile = load_profile(cfg.profile)
    profile.restricted_to(model_endpoints(cfg.bundle_dir))  # fail before any work
    frame = read_library(cfg.library, cfg.smiles_col)
    validation = validate_library(frame)
    accepted = validation.accepted.reset_index(drop=True)
    spec = bundle_featurizer_spec(cfg.bundle_dir)
    smiles = accepted["smiles"].tolist()
    pred_parts, valid_parts = [], []
    for start, stop in chunk_bounds(len(smiles), cfg.chunk_size):
        features = featurize_chunk(smiles[start:stop], spec)
        pred_parts.append(predict_chunk(cfg.bundle_dir, smiles[start:stop], features))
        valid_parts.append(features.valid)
    return finish(cfg, profile, len(frame), accepted, validation.rejected, pred_parts, valid_parts)


def finish(cfg: ScreeningConfig, profile: DesirabilityProfile, n_input: int, accepted: pd.DataFrame,
           validation_rejects: pd.DataFrame, pred_parts: list[pd.DataFrame],
           valid_parts: list[np.ndarray]) -> ScreeningResult:
    """Rank, check the accounting, write the outputs (shared by the plain path and the flow)."""
    endpoints = model_endpoints(cfg.bundle_dir)
    predictions = pd.concat(pred_parts, ignore_index=True) if pred_parts else pd.DataFrame(columns=endpoints)
    valid = np.concatenate(valid_parts) if valid_parts else np.zeros(0, dtype=bool)
    coverage = float(getattr(cached_bundle(str(cfg.bundle_dir)).config, "coverage", 0.9))
    ranked, failed = rank_predictions(accepted, predictions, valid, profile, endpoints, coverage)
    rejects = all_rejects(validation_rejects, failed)
    if len(ranked) + len(rejects) != n_input:
        raise RuntimeError(f"row accounting broken: {len(ranked)} ranked + {len(rejects)} rejected != {n_input}")
    id_columns = [c for c in accepted.columns if c not in ("row", "input", "smiles", "inchikey", "duplicate_of")]
    result = ScreeningResult(ranked=ranked, rejects=rejects, n_input=n_input, files={}, endpoints=endpoints,
                             id_columns=id_columns)
    result.files = write_outputs(ranked, rejects, cfg.out_dir,
                                 {**cfg.to_dict(), "profile_resolved": profile.model_dump()}, result.summary(),
                                 tasks=list(cached_bundle(str(cfg.bundle_dir)).tasks), id_columns=id_columns)
    return result


def model_endpoints(bundle_dir: Path) -> list[str]:
    return [t.name for t in cached_bundle(str(bundle_dir)).tasks]
