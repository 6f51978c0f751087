"""The TDC ADMET Benchmark Group protocol: the 22 sets, TDC's train/valid scaffold split, its metrics.

Benchmark-only code (not part of the fedadmet package). What is reproduced from TDC
(``tdc/benchmark_group/base_group.py`` and ``tdc/utils/split.py`` of mims-harvard/TDC, read for
this; no TDC code is imported or copied):

- ``get_train_valid_split(seed)`` splits the official ``train_val`` rows with fractions
  (0.875, 0.125, 0.0) by Bemis-Murcko scaffold (``MurckoScaffoldSmiles``, chirality ignored).
  Scaffold groups are kept in order of first appearance, split into "big" groups (larger than
  half the valid or the test size) and the rest, each list shuffled with Python's
  ``random.Random(seed)``, big first; a group goes to train while train has room, else to valid.
  With a test fraction of 0 the test size is 0 or 1, so in practice every group counts as "big"
  and the order is one seeded shuffle of all groups.
- Leaderboard metrics: MAE and Spearman on the raw labels, AUROC (``roc_auc_score``) and AUPRC
  (``average_precision_score``); each seed's value rounded to 3 decimals, then mean and population
  std (``np.std``) over seeds 1..5, as ``evaluate_many`` does.

``pipelines.split.scaffold_split`` is not reused: it joins groups by InChIKey as well, puts big
groups first largest-first and uses numpy's generator, so its folds differ from TDC's.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
SHARED_TDC = REPO.parent / "shared" / "data" / "tdc_admet"
VENDORED_TDC = REPO / "datasets" / "tdc_admet"
TRAIN_VALID_FRACTIONS = (0.875, 0.125, 0.0)
SEEDS = (1, 2, 3, 4, 5)


@dataclass(frozen=True, slots=True)
class TDCSet:
    """One benchmark of the ADMET group."""

    key: str
    """Folder name under the data directory (lower case)."""
    tdc_name: str
    """TDC's name for the benchmark."""
    task: str
    """``regression`` or ``classification``."""
    metric: str
    """Leaderboard metric: ``mae``, ``spearman``, ``auroc`` or ``auprc``."""
    log10: bool = False
    """Train on log10(label) (the leaderboard methods do for these); scored on the raw labels."""

    @property
    def higher_is_better(self) -> bool:
        return self.metric != "mae"


TDC_SETS: tuple[TDCSet, ...] = (
    TDCSet("caco2_wang", "Caco2_Wang", "regression", "mae"),
    TDCSet("hia_hou", "HIA_Hou", "classification", "auroc"),
    TDCSet("pgp_broccatelli", "Pgp_Broccatelli", "classification", "auroc"),
    TDCSet("bioavailability_ma", "Bioavailability_Ma", "classification", "auroc"),
    TDCSet("lipophilicity_astrazeneca", "Lipophilicity_AstraZeneca", "regression", "mae"),
    TDCSet("solubility_aqsoldb", "Solubility_AqSolDB", "regression", "mae"),
    TDCSet("bbb_martins", "BBB_Martins", "classification", "auroc"),
    TDCSet("ppbr_az", "PPBR_AZ", "regression", "mae"),
    TDCSet("vdss_lombardo", "VDss_Lombardo", "regression", "spearman", log10=True),
    TDCSet("cyp2c9_veith", "CYP2C9_Veith", "classification", "auprc"),
    TDCSet("cyp2d6_veith", "CYP2D6_Veith", "classification", "auprc"),
    TDCSet("cyp3a4_veith", "CYP3A4_Veith", "classification", "auprc"),
    TDCSet("cyp2c9_substrate_carbonmangels", "CYP2C9_Substrate_CarbonMangels", "classification", "auprc"),
    TDCSet("cyp2d6_substrate_carbonmangels", "CYP2D6_Substrate_CarbonMangels", "classification", "auprc"),
    TDCSet("cyp3a4_substrate_carbonmangels", "CYP3A4_Substrate_CarbonMangels", "classification", "auroc"),
    TDCSet("half_life_obach", "Half_Life_Obach", "regression", "spearman", log10=True),
    TDCSet("clearance_hepatocyte_az", "Clearance_Hepatocyte_AZ", "regression", "spearman", log10=True),
    TDCSet("clearance_microsome_az", "Clearance_Microsome_AZ", "regression", "spearman", log10=True),
    TDCSet("ld50_zhu", "LD50_Zhu", "regression", "mae"),
    TDCSet("herg", "hERG", "classification", "auroc"),
    TDCSet("ames", "AMES", "classification", "auroc"),
    TDCSet("dili", "DILI", "classification", "auroc"),
)
BY_KEY = {s.key: s for s in TDC_SETS}


def resolve_sets(text: str | None) -> list[TDCSet]:
    """``caco2_wang,herg`` (folder or TDC names, any case) -> sets; None/empty -> all 22."""
    if not text:
        return list(TDC_SETS)
    lookup = {s.key: s for s in TDC_SETS} | {s.tdc_name.lower(): s for s in TDC_SETS}
    out, unknown = [], []
    for name in (n.strip().lower() for n in text.split(",") if n.strip()):
        (out.append(lookup[name]) if name in lookup else unknown.append(name))
    if unknown:
        raise ValueError(f"unknown TDC set(s) {unknown}; known: {[s.key for s in TDC_SETS]}")
    return out


def default_data_dir() -> Path:
    """The vendored copy when it holds the sets as ``<set>/data.csv``, else the shared folder."""
    if (VENDORED_TDC / TDC_SETS[0].key / "data.csv").is_file():
        return VENDORED_TDC
    return SHARED_TDC


def load_set(s: TDCSet, data_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train_val, test) frames with columns ``smiles``, ``label``, in the file's row order."""
    path = Path(data_dir or default_data_dir()) / s.key / "data.csv"
    if not path.is_file():
        raise FileNotFoundError(f"TDC set file missing: {path}")
    df = pd.read_csv(path)
    missing = {"smiles", "label", "split"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    parts = {}
    for name in ("train_val", "test"):
        part = df[df["split"] == name][["smiles", "label"]].reset_index(drop=True)
        if part.empty:
            raise ValueError(f"{path}: no '{name}' rows in the split column")
        parts[name] = part
    return parts["train_val"], parts["test"]


def _tdc_scaffold(smiles: str) -> str | None:
    from rdkit import Chem, RDLogger
    from rdkit.Chem.Scaffolds import MurckoScaffold

    RDLogger.DisableLog("rdApp.*")
    try:
        return MurckoScaffold.MurckoScaffoldSmiles(mol=Chem.MolFromSmiles(smiles), includeChirality=False)
    except Exception:  # noqa: BLE001 - TDC leaves molecules RDKit cannot process out of both folds
        return None


def tdc_scaffold_split(smiles: Sequence[str], seed: int,
                       fractions: Sequence[float] = TRAIN_VALID_FRACTIONS) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, valid) of TDC's ``create_scaffold_split`` with a zero test fraction."""
    if len(fractions) != 3 or fractions[2] != 0:
        raise ValueError("only the benchmark group's train/valid split (test fraction 0) is reproduced")
    groups: dict[str, list[int]] = {}
    n_bad = 0
    for i, smi in enumerate(smiles):
        scaf = _tdc_scaffold(smi)
        if scaf is None:
            n_bad += 1
            continue
        groups.setdefault(scaf, []).append(i)
    n = len(smiles) - n_bad
    train_size, valid_size = int(n * fractions[0]), int(n * fractions[1])
    test_size = n - train_size - valid_size
    big, small = [], []
    for members in groups.values():
        (big if len(members) > valid_size / 2 or len(members) > test_size / 2 else small).append(members)
    rng = random.Random(seed)
    rng.shuffle(big)
    rng.shuffle(small)
    train: list[int] = []
    valid: list[int] = []
    for members in big + small:
        (train if len(train) + len(members) <= train_size else valid).extend(members)
    return np.asarray(sorted(train), dtype=int), np.asarray(sorted(valid), dtype=int)


def score(metric: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The leaderboard metric (raw labels; probabilities or scores for classification)."""
    from scipy.stats import spearmanr
    from sklearn.metrics import average_precision_score, roc_auc_score

    y, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    if not np.isfinite(p).all():
        raise ValueError(f"{int((~np.isfinite(p)).sum())} non-finite predictions")
    if metric == "mae":
        return float(np.mean(np.abs(y - p)))
    if metric == "spearman":
        return float(spearmanr(y, p)[0])
    if metric == "auroc":
        return float(roc_auc_score(y, p))
    if metric == "auprc":
        return float(average_precision_score(y, p))
    if metric == "pearson":
        return float(np.corrcoef(y, p)[0, 1])
    raise ValueError(f"unknown metric {metric!r}")


def leaderboard_summary(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population std of per-seed values rounded to 3 decimals (TDC's ``evaluate_many``)."""
    v = np.round(np.asarray(values, float), 3)
    return float(np.mean(v)), float(np.std(v))
