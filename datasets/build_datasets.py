"""Maintainer tool: (re)build the vendored datasets from the consortium's shared data folder.

Not used at run time. Run once, from the repository root:

    .venv/bin/python datasets/build_datasets.py --shared ../shared/data

Writes compressed long tables (``compound_id, smiles, endpoint, relation, value, unit, source, split``),
``datasets/catalog.csv`` (one row per endpoint, for every source) and the TDC data card + NOTICE.

Rows RDKit rejects stay in the tables (as in the Biogen and HINT builds): the pipeline rejects them with a
reason when they are used, so ``accepted + rejected == input`` holds against the vendored files.

One endpoint per assay: the HINT copies of TDC sets (``bioavailability``, ``bbb``, ``cyp2c19_inhib``) are
merged into the TDC endpoint by standardized InChIKey (``merge_hint_copies``) and their names become
catalog aliases.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the spec module beside this script
sys.path.insert(0, str(HERE.parent))  # the project's standardizer, for the InChIKey merge

from tdc_spec import TDC_CITATION, TDC_SETS, TdcSet  # noqa: E402

LONG = ["compound_id", "smiles", "endpoint", "relation", "value", "unit", "source", "split"]
CATALOG_COLUMNS = ["endpoint", "dataset", "task_type", "unit", "count", "description", "better", "file", "transform",
                   "licence", "source", "metric", "split_kind", "aliases"]
BIOGEN_PAPER = "Fang C. et al., J. Chem. Inf. Model. 63, 3263-3274 (2023)"
# HINT endpoint -> original paper (the data card lists them)
HINT_PAPERS = {
    "clearance_lt12": "eDrug3D: Pihan E. et al., Bioinformatics 28, 1540-1541 (2012)",
    "toxcast_clean": "US EPA ToxCast: Richard A. M. et al., Chem. Res. Toxicol. 29, 1225-1251 (2016)",
}

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


def _clean_id(value: object) -> str:
    """TDC ``drug_id`` as text: PubChem ids read as floats (``644510.0``) lose the ``.0``."""
    if pd.isna(value):
        return ""
    text = str(value).strip()
    return text[:-2] if text.endswith(".0") and text[:-2].isdigit() else text


def build_tdc_set(shared: Path, spec: TdcSet) -> pd.DataFrame:
    """One set's rows, values and split verbatim (``split`` empty where TDC has none)."""
    part = pd.read_csv(shared / "tdc_admet" / spec.folder / "data.csv", dtype={"split": str})
    part = part[part[spec.column].notna()].reset_index(drop=True)  # wide files: assay not measured
    ids = part["drug_id"].map(_clean_id) if "drug_id" in part else pd.Series([""] * len(part))
    fallback = pd.Series([f"{spec.folder}-{i:05d}" for i in range(len(part))])
    return pd.DataFrame({
        "compound_id": ids.where(ids != "", fallback).to_numpy(),
        "smiles": part["smiles"].to_numpy(),
        "endpoint": spec.endpoint,
        "relation": "=",
        "value": part[spec.column].astype(float).to_numpy(),
        "unit": spec.unit,
        "source": "tdc_admet",
        "split": part["split"].fillna("").astype(str).to_numpy() if "split" in part else "",
    })


def merge_hint_copies(tdc: pd.DataFrame, hint: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Fold HINT's copies of TDC sets into the TDC endpoint, one endpoint per assay.

    Rule: TDC's rows are kept verbatim (values and official split). A HINT row whose standardized
    InChIKey shares its first block (the connectivity layer: stereo and protonation ignored, because 859 of
    HINT's BBB molecules are stereo variants of TDC's) with a molecule of the TDC endpoint is dropped (TDC's
    label wins); any other HINT row is appended to
    the TDC endpoint with ``source = hint_admet`` and an empty split (HINT's random train/valid is not
    carried, so no HINT molecule can sit in a training fold while its TDC copy is in ``test``).
    Returns (tdc with the appended rows, hint without the copies, per-alias counts).
    """
    from rdkit import RDLogger

    from pipelines.standardize import standardize_many

    RDLogger.DisableLog("rdApp.*")

    def keys(smiles: pd.Series) -> list[str | None]:
        return [s.inchikey[:14] if s.ok else None for s in standardize_many(smiles.tolist(), with_inchikey=True)]

    appended, counts = [], {}
    for spec in TDC_SETS:
        for alias in spec.aliases:
            copy = hint[hint["endpoint"] == alias]
            ours = set(keys(tdc.loc[tdc["endpoint"] == spec.endpoint, "smiles"])) - {None}
            theirs = keys(copy["smiles"])
            new = copy[[k is None or k not in ours for k in theirs]].copy()
            new["endpoint"], new["unit"], new["source"], new["split"] = spec.endpoint, spec.unit, "hint_admet", ""
            appended.append(new)
            counts[alias] = {"into": spec.endpoint, "hint_rows": len(copy), "appended": len(new),
                             "dropped_as_duplicate": len(copy) - len(new)}
    aliases = [a for spec in TDC_SETS for a in spec.aliases]
    merged = pd.concat([tdc, *appended], ignore_index=True).loc[:, LONG]
    return merged, hint[~hint["endpoint"].isin(aliases)].reset_index(drop=True), counts


def catalog_rows(name: str, df: pd.DataFrame) -> list[dict]:
    """Catalog rows of one vendored table, in the order its endpoints first appear."""
    specs = {s.endpoint: s for s in TDC_SETS}
    rows = []
    for ep, group in df.groupby("endpoint", sort=False):
        base = {"endpoint": ep, "dataset": name, "count": len(group), "file": f"{name}/{name}.csv.gz"}
        if name == "biogen_adme":
            _col, _stem, unit, meaning, better = BIOGEN[ep]
            base.update(task_type="regression", unit=unit, description=meaning, better=better, transform="none",
                        licence="MIT (Biogen)", source=BIOGEN_PAPER, metric="", split_kind="biogen_fixed",
                        aliases="")
        elif name == "hint_admet":
            _f, _c, meaning, better = HINT[ep]
            base.update(task_type="classification", unit="binary", description=meaning, better=better,
                        transform="none", licence="MIT (trialbench)", source=HINT_PAPERS[ep], metric="",
                        split_kind="upstream_random", aliases="")
        else:
            s = specs[ep]
            base.update(task_type=s.task_type, unit=s.unit, description=s.description, better=s.better,
                        transform=s.transform, licence=s.licence, source=s.source, metric=s.metric,
                        split_kind=s.split_kind, aliases=";".join(s.aliases))
        rows.append(base)
    return rows


def main() -> None:
    from tdc_card import write_datacard, write_notice

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared" / "data")
    args = ap.parse_args()
    tdc = pd.concat([build_tdc_set(args.shared, spec) for spec in TDC_SETS], ignore_index=True)
    tdc, hint, merged = merge_hint_copies(tdc, build_hint(args.shared))
    catalog = []
    for name, df in (("biogen_adme", build_biogen(args.shared)), ("hint_admet", hint), ("tdc_admet", tdc)):
        out = HERE / name
        out.mkdir(exist_ok=True)
        df.to_csv(out / f"{name}.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
        catalog += catalog_rows(name, df)
    pd.DataFrame(catalog, columns=CATALOG_COLUMNS).to_csv(HERE / "catalog.csv", index=False)
    write_datacard(HERE / "tdc_admet" / "DATACARD.md", tdc, merged, TDC_CITATION)
    write_notice(HERE / "tdc_admet" / "NOTICE", TDC_CITATION)
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
