"""Which model the demo screens with: the shipped base model or the demo's federated model, measured.

Both are scored on the same rows, ones neither model trained on: the partners' own ``valid`` rows
(the split the federation used, read back through ``federation.run.load_all_partners``) whose
molecule (InChIKey) the shipped model's training run kept out of training (its ``valid`` or ``test``
fold, from ``split.npz``). A choice between models is made on validation rows, never on the partners'
test rows, which stay for reporting. Per
endpoint of the demo panel that both models predict, with at least ``MIN_ROWS`` such rows (and both
classes for a classification endpoint): AUROC for classification, Spearman for regression (both
"higher is better" and unit-free, so they average across endpoints). The federated model screens
when its mean over those endpoints is at least the shipped model's (issue 11: "or the federated
model when that is at least as good"); otherwise the shipped one does. No comparable rows, or no
shipped model, leaves the federated model, with the reason recorded.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

MIN_ROWS = 10


def heldout_rows(fed_config: dict, partners_dir: Path, endpoints, base_heldout_keys: set[str],
                 fold: str = "valid") -> pd.DataFrame:
    """``smiles, inchikey, endpoint, y`` of partner ``fold`` rows whose molecule the shipped model held out too."""
    from rdkit import Chem

    from federation.config import FederatedConfig
    from federation.run import load_all_partners

    partners = load_all_partners(FederatedConfig.from_dict(fed_config), Path(partners_dir))
    rows = []
    for p in partners:
        held = p.rows(fold)
        for j, task in enumerate(p.tasks):
            if task.name not in endpoints:
                continue
            for i in held:
                if np.isfinite(p.Y[i, j]) and p.censor[i, j] == 0:
                    rows.append((str(p.smiles[i]), task.name, float(p.Y[i, j])))
    frame = pd.DataFrame(rows, columns=["smiles", "endpoint", "y"])
    keys = {}
    for s in frame["smiles"].unique():
        mol = Chem.MolFromSmiles(s)
        keys[s] = Chem.MolToInchiKey(mol) if mol is not None else ""
    frame["inchikey"] = frame["smiles"].map(keys)
    frame = frame[frame["inchikey"].isin(base_heldout_keys)]
    # a molecule measured by two partners: one row per (molecule, endpoint), labels averaged
    return frame.groupby(["inchikey", "endpoint"], as_index=False).agg(smiles=("smiles", "first"), y=("y", "mean"))


def _score(y: np.ndarray, p: np.ndarray, classification: bool) -> float | None:
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    ok = np.isfinite(p)
    y, p = y[ok], p[ok]
    if len(y) < MIN_ROWS:
        return None
    if classification:
        return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None
    rho = spearmanr(y, p).statistic
    return float(rho) if np.isfinite(rho) else None


def compare(rows: pd.DataFrame, federated, base) -> pd.DataFrame:
    """Per endpoint: rows, metric, federated and shipped scores (loaded bundles, same rows)."""
    smiles = rows["smiles"].unique().tolist()
    preds = {}
    for label, bundle in (("federated", federated), ("shipped", base)):
        frame = bundle.predict_smiles(smiles)
        frame.index = smiles
        preds[label] = frame
    kinds = {t.name: t.is_classification for t in base.tasks}
    out = []
    for endpoint, group in rows.groupby("endpoint"):
        if endpoint not in federated.task_names or endpoint not in base.task_names:
            continue
        y = group["y"].to_numpy(float)
        cls = kinds[endpoint]
        scores = {label: _score(y, preds[label].loc[group["smiles"], endpoint].to_numpy(float), cls)
                  for label in preds}
        out.append({"endpoint": endpoint, "rows": len(group), "metric": "AUROC" if cls else "Spearman",
                    "federated": scores["federated"], "shipped": scores["shipped"]})
    return pd.DataFrame(out, columns=["endpoint", "rows", "metric", "federated", "shipped"])


def choose(table: pd.DataFrame) -> dict:
    """The rule of the module docstring on a :func:`compare` table."""
    both = table.dropna(subset=["federated", "shipped"]) if len(table) else table
    if both.empty:
        return {"chosen": "federated", "reason": "no endpoint with enough rows held out by both models",
                "n_endpoints": 0}
    fed, base = float(both["federated"].mean()), float(both["shipped"].mean())
    chosen = "federated" if fed >= base else "shipped"
    return {"chosen": chosen, "n_endpoints": len(both), "n_rows": int(both["rows"].sum()),
            "federated_mean": fed, "shipped_mean": base,
            "reason": f"mean AUROC/Spearman over {len(both)} endpoints on {int(both['rows'].sum())} partner validation rows held out "
                      f"by both: federated {fed:.3f} vs shipped {base:.3f}"}


def choose_screening_model(out_dir: Path, fed_bundle: Path, base_model: Path | None, endpoints) -> tuple[Path, dict]:
    """(bundle to screen with, the choice record); writes ``screening_model.json`` in ``out_dir``."""
    from admet import shipped
    from pipelines.errors import InputError

    out_dir = Path(out_dir)
    record: dict = {"federated_model": str(fed_bundle), "rule": "federated if its mean >= shipped's"}
    chosen = Path(fed_bundle)
    try:
        base_dir = Path(base_model) if base_model is not None else shipped.shipped_model_dir()
        if base_model is None:
            shipped.check_shipped(base_dir)
        record["shipped_model"] = str(base_dir)
        valid_keys, test_keys = shipped.read_heldout(base_dir, "valid"), shipped.read_heldout(base_dir, "test")
        if valid_keys is None or test_keys is None:
            raise InputError(f"{base_dir} has no split.npz: its held-out molecules are unknown")
        from admet.bundle import load_bundle

        fed_file = out_dir / "federated" / "config.json"  # the resolved run config
        if not fed_file.is_file():
            raise InputError(f"no federated run config at {fed_file}")
        fed_config = json.loads(fed_file.read_text())
        rows = heldout_rows(fed_config, Path(fed_config["partners_dir"]), set(endpoints), valid_keys | test_keys)
        table = compare(rows, load_bundle(fed_bundle), load_bundle(base_dir))
        record.update(choose(table))
        record["table"] = table.to_dict("records")
        if record["chosen"] == "shipped":
            chosen = base_dir
    except InputError as exc:
        log.warning("demo screening model: the federated model screens (%s)", exc)
        record.update({"chosen": "federated", "reason": f"no comparison: {exc}"})
    record["screening_model"] = str(chosen)
    (out_dir / "screening_model.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    return chosen, record
