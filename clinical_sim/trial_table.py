"""Read trial tables in the TOP/HINT format and parse their list-valued columns robustly.

Columns: ``nctid, status, why_stop, label, phase, diseases, icdcodes, drugs, smiless, criteria``.
List-valued columns come as Python-literal text (``"['a', 'b']"``), sometimes nested one level deep
as a list of list-texts (HINT's ``icdcodes``: ``["['C79.81', 'D24.1']"]``). Every row is kept: a row
whose fields cannot be used gets ``usable=False`` and a ``problem`` that names what is wrong.

``status`` and ``why_stop`` describe the outcome itself; they are read for reporting only and are never
model features (they would leak the label).
"""

from __future__ import annotations

import ast
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines.errors import InputError

log = logging.getLogger(__name__)

#: Columns of the TOP/HINT trial table.
TRIAL_COLUMNS: tuple[str, ...] = (
    "nctid", "status", "why_stop", "label", "phase", "diseases", "icdcodes", "drugs", "smiless", "criteria",
)
#: Columns a table must have to be read at all (others are filled with empty values).
REQUIRED_COLUMNS: tuple[str, ...] = ("nctid", "phase", "smiless")
#: List-valued columns and the parsed column each becomes.
LIST_COLUMNS: dict[str, str] = {
    "diseases": "disease_list", "icdcodes": "icd_list", "drugs": "drug_list", "smiless": "smiles_list",
}

_PHASE_RE = re.compile(r"phase\s*(iv|iii|ii|i|[1-4])\b", re.IGNORECASE)
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4}


@dataclass(slots=True)
class TrialTable:
    """A parsed trial table: every input row, in order.

    ``trials`` has the original columns plus ``row`` (0-based input record), ``disease_list``,
    ``icd_list``, ``drug_list``, ``smiles_list`` (Python lists), ``phase_num`` (float, e.g. 1.5 for
    'phase 1/phase 2'), ``usable`` (bool) and ``problem`` (empty when usable).
    """

    trials: pd.DataFrame

    @property
    def problems(self) -> pd.DataFrame:
        """The rows that cannot be used: ``row, nctid, problem``."""
        bad = self.trials.loc[~self.trials["usable"], ["row", "nctid", "problem"]]
        return bad.reset_index(drop=True)

    @property
    def usable(self) -> pd.DataFrame:
        """The usable rows (a view of ``trials``)."""
        return self.trials.loc[self.trials["usable"]]


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in {"", "nan", "none", "[]", "null"}


def parse_list(value: object) -> tuple[list[str], str]:
    """Parse one list-valued cell into a flat list of non-empty strings.

    Returns ``(items, problem)``; ``problem`` is empty when the text parsed cleanly. Missing cells give
    ``([], "")``. Text that is not a Python literal falls back to splitting on ``,``/``;``/``|`` after
    stripping brackets and quotes, and reports ``"not a list literal"``.
    """
    if isinstance(value, (list, tuple)):
        items: list[str] = []
        for element in value:
            if isinstance(element, (list, tuple)) or (isinstance(element, str) and element.strip().startswith("[")):
                items.extend(parse_list(element)[0])
            elif element is not None and str(element).strip():
                items.append(str(element).strip())
        return items, ""
    if _is_missing(value):
        return [], ""
    text = str(value).strip()
    if not text.startswith("["):
        return [text], ""  # a single bare item
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        stripped = text.strip("[]")
        parts = [p.strip().strip("'\"").strip() for p in re.split(r"[,;|]", stripped)]
        return [p for p in parts if p], "not a list literal"
    if isinstance(parsed, str):
        return ([parsed.strip()] if parsed.strip() else []), ""
    if not isinstance(parsed, (list, tuple)):
        return [str(parsed)], ""
    items = []
    for element in parsed:
        if isinstance(element, str) and element.strip().startswith("["):
            sub, problem = parse_list(element)
            if problem:
                return items + sub, problem
            items.extend(sub)
        elif isinstance(element, (list, tuple)):
            sub, _ = parse_list(list(element))
            items.extend(sub)
        elif element is not None and str(element).strip():
            items.append(str(element).strip())
    return items, ""


def phase_number(text: object) -> float:
    """'phase 1' -> 1.0, 'phase 1/phase 2' -> 1.5, 'early phase 1' -> 0.5; NaN when no phase is named."""
    if _is_missing(text):
        return float("nan")
    s = str(text).lower()
    found = [_ROMAN.get(m.lower()) or int(m) for m in _PHASE_RE.findall(s)]
    if not found:
        return float("nan")
    value = sum(found) / len(found)
    if "early" in s and value == 1:
        return 0.5
    return float(value)


def parse_trials(frame: pd.DataFrame, require_label: bool = False) -> TrialTable:
    """Parse a trial DataFrame already in memory (see module docstring)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"trial table lacks required column(s) {missing}; the TOP/HINT format has {list(TRIAL_COLUMNS)}"
        )
    out = frame.copy().reset_index(drop=True)
    for col in TRIAL_COLUMNS:
        if col not in out.columns:
            out[col] = pd.NA
    out.insert(0, "row", range(len(out)))
    problems: list[list[str]] = [[] for _ in range(len(out))]
    for source, target in LIST_COLUMNS.items():
        parsed_col = []
        for i, value in enumerate(out[source].tolist()):
            items, problem = parse_list(value)
            if problem:
                problems[i].append(f"{source}: {problem}")
            parsed_col.append(items)
        out[target] = pd.Series(parsed_col, index=out.index, dtype=object)
    out["icd_list"] = [[c.upper().replace(" ", "") for c in codes] for codes in out["icd_list"]]
    out["phase_num"] = [phase_number(v) for v in out["phase"].tolist()]
    out["criteria"] = out["criteria"].astype(object).where(out["criteria"].notna(), "")
    labels = pd.to_numeric(out["label"], errors="coerce")
    for i in range(len(out)):
        if _is_missing(out.at[i, "nctid"]):
            problems[i].append("nctid: missing")
        if not out.at[i, "smiles_list"]:
            problems[i].append("smiless: no drug SMILES")
        if math.isnan(out.at[i, "phase_num"]):
            problems[i].append(f"phase: not understood ({out.at[i, 'phase']!r})")
        if require_label and (math.isnan(labels.iat[i]) or labels.iat[i] not in (0, 1)):
            problems[i].append(f"label: not 0/1 ({out.at[i, 'label']!r})")
    out["label"] = labels.where(labels.isin([0, 1]))
    out["nctid"] = out["nctid"].astype(object).where(out["nctid"].notna(), "")
    out["nctid"] = [str(v) for v in out["nctid"]]
    # a fallback-parsed list is still used, but said; unusable only for blocking problems
    blocking = [[p for p in ps if "not a list literal" not in p] for ps in problems]
    out["usable"] = [not b for b in blocking]
    out["problem"] = ["; ".join(ps) for ps in problems]
    n_bad = int((~out["usable"]).sum())
    if n_bad:
        log.warning("%d of %d trial rows are not usable (kept, with a reason)", n_bad, len(out))
    return TrialTable(trials=out)


def read_trials(path: str | Path, require_label: bool = False) -> TrialTable:
    """Read a TOP/HINT trial table (CSV/TSV, ``.gz`` transparently, or Parquet) into a :class:`TrialTable`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"trial table not found: {path}")
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            frame = pd.read_parquet(path)
        else:
            sep = "\t" if ".tsv" in name else ","
            frame = pd.read_csv(path, sep=sep, dtype={"nctid": str}, keep_default_na=True)
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as exc:
        raise InputError(f"cannot read trial table {path}: {exc}") from exc
    if frame.empty:
        raise InputError(f"trial table {path} has no rows")
    return parse_trials(frame, require_label=require_label)
