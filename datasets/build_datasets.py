"""Maintainer tool: (re)build the vendored datasets from the consortium's shared data folder.

Not used at run time. Run once, from the repository root:

    .venv/bin/python datasets/build_datasets.py --shared ../shared/data

Writes compressed long tables (``compound_id, smiles, endpoint, relation, value, unit, source, split``)
and ``datasets/catalog.csv``.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent

# endpoint id -> (column in the Biogen public set, per-endpoint split file stem, unit, meaning, direction)
BIOGEN = {
    "HLM_CLint": ("LOG HLM_CLint (mL/min/kg)", "HLM", "log10(mL/min/kg)",
                  "human liver microsome intrinsic clearance", "lower"),
    "RLM_CLint": ("LOG RLM_CLint (mL/min/kg)", "RLM", "log10(mL/min/kg)",
                  "rat liver microsome intrinsic clearance", "lower"),
    "MDR1_ER": ("LOG MDR1-MDCK ER (B-A/A-B)", "MDR1_ER", "log10(ratio)",
                "MDR1-MDCK efflux ratio (B-A/A-B); high = P-gp substrate", "lower"),
    "solubility": ("LOG SOLUBILITY PH 6.8 (ug/mL)", "Sol", "log10(ug/mL)",
                   "kinetic solubility at pH 6.8", "higher"),
    "hPPB": ("LOG PLASMA PROTEIN BINDING (HUMAN) (% unbound)", "hPPB", "log10(% unbound)",
             "human plasma protein binding, fraction unbound", "higher"),
    "rPPB": ("LOG PLASMA PROTEIN BINDING (RAT) (% unbound)", "rPPB", "log10(% unbound)",
             "rat plasma protein binding, fraction unbound", "higher"),
}

# endpoint id -> (file, label column, meaning of 1, direction)
HINT = {
    "bioavailability": ("hint_admet_absorption_bioavailability_F.csv", "bioavailability_F",
                        "orally bioavailable (F >= 20%, Ma et al.)", "higher"),
    "bbb": ("hint_admet_distribution_bbb.csv", "bbb",
            "penetrates the blood-brain barrier (BBBP)", "context"),
    "cyp2c19_inhib": ("hint_admet_metabolism_cyp2c19_inhib.csv", "cyp2c19_inhib",
                      "inhibits CYP2C19 (Veith et al.)", "lower"),
    "clearance_lt12": ("hint_admet_excretion_clearance_lt12.csv", "clearance_lt12",
                       "clearance below 12 mL/min/kg (eDrug3D)", "higher"),
    "toxcast_clean": ("hint_admet_toxicity_toxcast_all_negative.csv", "toxcast_all_negative",
                      "negative in every measured ToxCast assay", "higher"),
}


def build_biogen(shared: Path) -> pd.DataFrame:
    """The paper's per-endpoint train/test files are authoritative (values and split).

    Compound ids come from the public set, matched by InChIKey (tautomers and stereo notation
    differ between the files, so SMILES strings do not match); unmatched rows get a stable id.
    """
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    src = shared / "biogen_adme"
    pub = pd.read_csv(src / "ADME_public_set_3521.csv")

    def key(smi: str) -> str:
        mol = Chem.MolFromSmiles(smi)
        return Chem.MolToInchiKey(mol) if mol is not None else ""

    id_of = dict(zip(pub["SMILES"].map(key), pub["Internal ID"]))
    rows = []
    for ep, (_col, stem, unit, _meaning, _dir) in BIOGEN.items():
        for split in ("train", "test"):
            part = pd.read_csv(src / f"ADME_{stem}_{split}.csv")
            for i, (smi, val) in enumerate(zip(part["smiles"], part["activity"])):
                cid = id_of.get(key(smi), f"biogen-{stem}-{split}-{i:04d}")
                rows.append((cid, smi, ep, "=", float(val), unit, "biogen_adme", split))
    return pd.DataFrame(rows, columns=["compound_id", "smiles", "endpoint", "relation", "value", "unit",
                                       "source", "split"])


def build_hint(shared: Path) -> pd.DataFrame:
    src = shared / "hint_admet"
    frames = []
    for ep, (fname, col, _meaning, _dir) in HINT.items():
        part = pd.read_csv(src / fname)
        frames.append(pd.DataFrame({
            "compound_id": [f"{ep}-{i:05d}" for i in range(len(part))],
            "smiles": part["smiles"],
            "endpoint": ep,
            "relation": "=",
            "value": part[col].astype(float),
            "unit": "binary",
            "source": "hint_admet",
            "split": part["split"].astype(str),
        }))
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared" / "data")
    args = ap.parse_args()
    catalog = []
    for name, df, meta in (("biogen_adme", build_biogen(args.shared), BIOGEN),
                           ("hint_admet", build_hint(args.shared), HINT)):
        out = HERE / name
        out.mkdir(exist_ok=True)
        df.to_csv(out / f"{name}.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
        for ep, group in df.groupby("endpoint", sort=False):
            m = meta[ep]
            regression = name == "biogen_adme"
            catalog.append({
                "endpoint": ep,
                "dataset": name,
                "task_type": "regression" if regression else "classification",
                "unit": m[2] if regression else "binary",
                "count": len(group),
                "description": m[3] if regression else m[2],
                "better": m[4] if regression else m[3],
                "file": f"{name}/{name}.csv.gz",
            })
    pd.DataFrame(catalog).to_csv(HERE / "catalog.csv", index=False)
    # A small drug-like screening library (MOSES test set, MIT), first 10,000 molecules.
    moses = args.shared / "moses_100k.smi.gz"
    lib = HERE / "moses_sample"
    lib.mkdir(exist_ok=True)
    with gzip.open(moses, "rt") as fh:
        lines = [next(fh) for _ in range(10_000)]
    with gzip.GzipFile(lib / "moses_10k.smi.gz", "wb", mtime=0) as fh:
        fh.write("".join(lines).encode())
    shutil.copy(args.shared / "biogen_adme" / "LICENSE", HERE / "biogen_adme" / "LICENSE")


if __name__ == "__main__":
    main()
