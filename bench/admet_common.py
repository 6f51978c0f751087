"""Shared pieces of the ADMET benchmarks (benchmark-only; not part of the fedadmet package).

Data: the Biogen ADME fixed splits. Peers: a MapLight-style LightGBM (its own RDKit featurization,
independent of ``pipelines``) and Chemprop v2 run as a subprocess in its own venv, with predictions
cached under ``bench/results/peer_cache/`` keyed by a hash of the data and the peer's settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pipelines  # noqa: E402

# only the benchmark scripts import this module: they are entry points and get the CLI's runtime
# defaults (offline, quiet, passive OpenMP threads) before anything heavy loads
pipelines.configure()
RESULTS = REPO / "bench" / "results"
PEER_CACHE = RESULTS / "peer_cache"
FEATURE_CACHE = REPO / ".fedadmet-cache" / "bench"
SHARED_DATA = Path(os.environ.get("FEDADMET_SHARED_DATA", REPO.parent / "shared" / "data"))
BIOGEN_DIR = SHARED_DATA / "biogen_adme"
PEERS_DIR = Path(os.environ.get("FEDADMET_PEERS_DIR", "/work/peers"))

#: Biogen endpoint file stem -> short display name.
BIOGEN_ENDPOINTS: dict[str, str] = {
    "HLM": "HLM", "RLM": "RLM", "MDR1_ER": "MDR1-ER", "Sol": "Sol", "hPPB": "hPPB", "rPPB": "rPPB",
}

#: Pearson r measured earlier on this machine (issue 3), for context only; the scripts re-run the peers.
REFERENCE_PEARSON = {
    "lgbm_peer": {"HLM": 0.687, "RLM": 0.715, "MDR1_ER": 0.787, "Sol": 0.592, "hPPB": 0.795, "rPPB": 0.721},
    "chemprop": {"HLM": 0.664, "RLM": 0.723, "MDR1_ER": 0.795, "Sol": 0.617, "hPPB": 0.792, "rPPB": 0.667},
}


# --------------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Split:
    """One Biogen endpoint's fixed split."""

    endpoint: str
    train: pd.DataFrame  # smiles, activity
    test: pd.DataFrame  # smiles, activity

    @property
    def data_hash(self) -> str:
        h = hashlib.sha256()
        for frame in (self.train, self.test):
            h.update(frame.to_csv(index=False).encode())
        return h.hexdigest()[:16]


def load_biogen(endpoint: str, quick: bool = False, seed: int = 0) -> Split:
    """The fixed train/test split of one endpoint; ``quick`` subsamples to 400/150 rows."""
    paths = {part: BIOGEN_DIR / f"ADME_{endpoint}_{part}.csv" for part in ("train", "test")}
    for path in paths.values():
        if not path.exists():
            raise FileNotFoundError(f"Biogen split file missing: {path}")
    train, test = (pd.read_csv(paths[p]) for p in ("train", "test"))
    if quick:
        train = train.sample(n=min(400, len(train)), random_state=seed).reset_index(drop=True)
        test = test.sample(n=min(150, len(test)), random_state=seed).reset_index(drop=True)
    return Split(endpoint, train, test)


# -------------------------------------------------------------------------------------- metrics
def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    ok = np.isfinite(y_true) & np.isfinite(y_pred)
    yt, yp = y_true[ok], y_pred[ok]
    from scipy.stats import pearsonr, spearmanr

    return {
        "pearson": float(pearsonr(yt, yp)[0]),
        "spearman": float(spearmanr(yt, yp)[0]),
        "mae": float(np.mean(np.abs(yt - yp))),
        "r2": float(1 - np.sum((yt - yp) ** 2) / np.sum((yt - yt.mean()) ** 2)),
        "n": int(ok.sum()),
        "n_missing_pred": int((~np.isfinite(y_pred)).sum()),
    }


# ------------------------------------------------------------------ peer featurization (MapLight-ish)
def _peer_features_uncached(smiles: list[str]) -> np.ndarray:
    from rdkit import Chem, RDLogger
    from rdkit.Chem import Descriptors, rdFingerprintGenerator

    RDLogger.DisableLog("rdApp.*")
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    names = [n for n, _ in Descriptors.descList]
    rows = []
    for smi in smiles:
        mol = Chem.MolFromSmiles(smi)
        if mol is None:
            rows.append(np.full(2048 + len(names), np.nan, np.float32))
            continue
        fp = gen.GetCountFingerprintAsNumPy(mol).astype(np.float32)
        desc = Descriptors.CalcMolDescriptors(mol, missingVal=np.nan)
        d = np.array([desc[n] for n in names], dtype=np.float64)
        d = np.clip(np.nan_to_num(d, nan=np.nan, posinf=1e6, neginf=-1e6), -1e6, 1e6).astype(np.float32)
        rows.append(np.concatenate([fp, d]))
    return np.vstack(rows)


def biogen_smiles() -> list[str]:
    """Every distinct SMILES of the Biogen fixed splits (sorted)."""
    out: set[str] = set()
    for ep in BIOGEN_ENDPOINTS:
        for part in ("train", "test"):
            out.update(pd.read_csv(BIOGEN_DIR / f"ADME_{ep}_{part}.csv")["smiles"])
    return sorted(out)


def peer_features(smiles: list[str]) -> np.ndarray:
    """Morgan counts (r=2, 2048) + all RDKit 2D descriptors; Biogen molecules come from a disk cache."""
    path = FEATURE_CACHE / "peerfeat_biogen.npz"
    if not path.exists():
        allsmi = biogen_smiles()
        log.info("featurizing %d Biogen molecules for the LightGBM peer (cached at %s)", len(allsmi), path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, smiles=np.array(allsmi, dtype=object), X=_peer_features_uncached(allsmi))
    with np.load(path, allow_pickle=True) as z:
        index = {s: i for i, s in enumerate(z["smiles"])}
        X = z["X"]
    missing = [s for s in smiles if s not in index]
    extra = _peer_features_uncached(missing) if missing else None
    extra_index = {s: i for i, s in enumerate(missing)}
    rows = [X[index[s]] if s in index else extra[extra_index[s]] for s in smiles]
    return np.vstack(rows)


def lgbm_peer_predict(split: Split, seed: int = 0, n_jobs: int = 2, n_estimators: int = 1000,
                      learning_rate: float = 0.03, use_cache: bool = True) -> np.ndarray:
    """MapLight-style gradient boosting: LightGBM on Morgan counts + RDKit 2D, fixed sensible settings.

    Predictions are cached under ``PEER_CACHE`` keyed by the data hash and the settings.
    """
    import lightgbm as lgb

    cache = PEER_CACHE / f"lgbm_peer_{split.endpoint}_{split.data_hash}_n{n_estimators}_lr{learning_rate}_s{seed}.json"
    if use_cache and cache.exists():
        return np.asarray(json.loads(cache.read_text())["pred"], float)

    Xtr = peer_features(split.train["smiles"].tolist())
    Xte = peer_features(split.test["smiles"].tolist())
    model = lgb.LGBMRegressor(
        n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=31, subsample=0.8, subsample_freq=1,
        colsample_bytree=0.5, random_state=seed, n_jobs=n_jobs, verbose=-1,
    )
    model.fit(Xtr, split.train["activity"].to_numpy())
    pred = model.predict(Xte)
    if use_cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"endpoint": split.endpoint, "data_hash": split.data_hash,
                                     "n_estimators": n_estimators, "learning_rate": learning_rate,
                                     "seed": seed, "pred": [float(v) for v in pred]}))
    return pred


# ------------------------------------------------------------------------------- Chemprop peer
CHEMPROP_EPOCHS = 50


def chemprop_bin() -> Path:
    return PEERS_DIR / "chemprop" / "bin" / "chemprop"


def _chemprop_cache_path(split: Split, epochs: int, seed: int) -> Path:
    return PEER_CACHE / f"chemprop_{split.endpoint}_{split.data_hash}_e{epochs}_s{seed}.json"


def chemprop_cached(split: Split, epochs: int = CHEMPROP_EPOCHS, seed: int = 0) -> dict | None:
    path = _chemprop_cache_path(split, epochs, seed)
    return json.loads(path.read_text()) if path.exists() else None


def chemprop_run(split: Split, epochs: int = CHEMPROP_EPOCHS, seed: int = 0, threads: int = 2) -> dict:
    """Train Chemprop v2 with its CLI defaults (``--epochs``) and predict the test file; cache the result."""
    cached = chemprop_cached(split, epochs, seed)
    if cached is not None:
        return cached
    exe = chemprop_bin()
    if not exe.exists():
        raise FileNotFoundError(f"chemprop not installed at {exe}; run bash bench/peers/setup.sh")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory(prefix="chemprop_bench_") as tmp:
        tmp = Path(tmp)
        split.train.to_csv(tmp / "train.csv", index=False)
        split.test[["smiles"]].to_csv(tmp / "test.csv", index=False)
        t0 = time.perf_counter()
        train_cmd = [str(exe), "train", "--data-path", str(tmp / "train.csv"), "--task-type", "regression",
                     "--smiles-columns", "smiles", "--target-columns", "activity", "--epochs", str(epochs),
                     "--data-seed", str(seed), "--pytorch-seed", str(seed), "--output-dir", str(tmp / "model"),
                     "--num-workers", "0", "--accelerator", "cpu", "--devices", "1"]
        _run_logged(train_cmd, env, tmp / "train.log")
        t_train = time.perf_counter() - t0
        models = sorted((tmp / "model").rglob("best*.pt"))
        if not models:
            raise RuntimeError(f"chemprop wrote no model under {tmp/'model'}")
        pred_cmd = [str(exe), "predict", "--test-path", str(tmp / "test.csv"), "--smiles-columns", "smiles",
                    "--model-paths", str(models[0]), "--preds-path", str(tmp / "preds.csv"),
                    "--num-workers", "0", "--accelerator", "cpu", "--devices", "1"]
        _run_logged(pred_cmd, env, tmp / "predict.log")
        preds = pd.read_csv(tmp / "preds.csv")
    col = [c for c in preds.columns if c != "smiles"][0]
    result = {
        "endpoint": split.endpoint, "data_hash": split.data_hash, "epochs": epochs, "seed": seed,
        "train_seconds": round(t_train, 1), "threads": threads,
        "command": " ".join(train_cmd[:1] + train_cmd[1:]).replace(str(tmp), "<tmp>"),
        "pred": [float(v) for v in preds[col].to_numpy()],
    }
    path = _chemprop_cache_path(split, epochs, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def _run_logged(cmd: list[str], env: dict, log_path: Path) -> None:
    with open(log_path, "w") as fh:
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = log_path.read_text()[-3000:]
        raise RuntimeError(f"{cmd[0]} {cmd[1]} failed (rc={proc.returncode}):\n{tail}")


# ------------------------------------------------------------------------------------- output
def machine_info() -> dict:
    import psutil

    return {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "load_avg_1m_at_start": os.getloadavg()[0],
        "mem_total_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "note": "2 CPU cores shared with other jobs; timings are noisy",
    }


def write_json(name: str, payload: dict) -> Path:
    """``name`` alone goes to ``bench/results/``; a name with a folder (``bench/results/x.json``,
    ``/tmp/x.json``) is used as given, so ``--out bench/results/x.json`` no longer doubles the folder."""
    path = Path(name) if Path(name).parent != Path(".") else RESULTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float))
    tmp.replace(path)
    return path


def markdown_table(header: list[str], rows: list[list]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
