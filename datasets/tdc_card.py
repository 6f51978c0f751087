"""Writes ``tdc_admet/DATACARD.md`` and ``tdc_admet/NOTICE`` from the specs in ``tdc_spec.py`` (maintainer build)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tdc_spec import AZ_LICENCE, TDC_SETS, TOX21_LICENCE

HEADER = """# Data card: TDC ADMET and Tox sets (`tdc_admet`)

| | |
|---|---|
| File | `tdc_admet.csv.gz`: the project long table (`compound_id, smiles, endpoint, relation, value, unit, source, split`), {rows:,} rows, {n} endpoints |
| Provenance | Therapeutics Data Commons (TDC): the 22 sets of the **TDC ADMET Benchmark Group** with TDC's official `train_val` / `test` split, read from ersilia-os/lazy-qsar@3c94682 (`benchmark/data/admet_group`); CYP1A2 / CYP2C19 (Veith), skin reaction and carcinogens from TDC's raw files via ersilia-os/zeroshot-xgboost@c333347; Tox21 (12 assays) and ClinTox from chemprop/chemprop@b83635b (`data/tox21.csv`, `data/clintox.csv`). Exact paths and row counts: `../shared/data/tdc_admet/manifest.json` at build time. |
| Licence | CC BY 4.0 as distributed by TDC, except: the AstraZeneca sets (Lipophilicity, PPBR, both clearances) are a ChEMBL deposition under **CC BY-SA 3.0** (share-alike: a redistributed modified copy must keep that licence); Tox21 is US-government work (public domain). Rows with `source = hint_admet` come from the HINT/trialbench files (MIT). Cite TDC and each set's paper: `NOTICE`. |
| Built by | `datasets/build_datasets.py` (specs in `datasets/tdc_spec.py`); `compound_id` is TDC's `drug_id` (PubChem ids without the trailing `.0`), else `<folder>-<row>`. |
| Split | `split` = TDC's `train_val` / `test`, verbatim, for the 22 benchmark sets (`split_kind = official` in `catalog.csv`); empty for the others (`none`: the project's scaffold split applies). TDC builds validation folds from `train_val` at run time (scaffold split, seeds 1..5, 0.875 / 0.125). |

## What the build does and does not do

- Values are stored as TDC ships them, in the unit below. Where `transform = log10`, training uses log10 of the value
  and predictions are transformed back, so a model's output is in the unit below (a back-transformed mean is the
  geometric mean / median of the predictive distribution; intervals map exactly).
- Nothing is filtered: rows RDKit rejects stay in the table (RDKit 2026.9 rejects 2 AqSolDB and 8 Tox21 SMILES) and the
  pipeline rejects them with a reason when they are used. Duplicated SMILES (PPBR_AZ: several species without a
  species column; Clearance_Hepatocyte_AZ) are kept; the pipeline aggregates replicates.
- Tox21 and ClinTox are MoleculeNet wide files: one long row per measured (non-empty) assay cell. ClinTox's
  `CT_TOX` column is the endpoint `ClinTox` (as ADMET-AI names it); `FDA_APPROVED` is **not** vendored: it is not an
  ADMET measurement (approval status, nearly the complement of `CT_TOX`).
- **One endpoint per assay.** HINT's copies of three TDC sets are merged by the connectivity block (first 14
  characters) of the standardized InChIKey (the project's `pipelines.standardize`; stereo is ignored because most of
  HINT's extra BBB molecules are stereo variants of TDC's): TDC's rows win; a HINT molecule TDC does not have is appended to the TDC endpoint with
  `source = hint_admet` and an empty split (HINT's random split is dropped, so no molecule can be in the training
  fold of one copy and the test fold of the other). The HINT names resolve to the TDC endpoint as catalog aliases.

| HINT name (alias) | into | HINT rows | appended (new molecules) | dropped (TDC has the molecule) |
|---|---|---|---|---|
{merge_rows}

## Endpoints

`rows` counts long-table rows (train_val / test where the split is official). `better`: which way is desirable
(`context`: depends on the project, e.g. BBB penetration for CNS drugs). `metric`: the TDC leaderboard's.

| endpoint | task | unit | transform | better | metric | split | rows | 1 share | source | licence |
|---|---|---|---|---|---|---|---|---|---|---|
{endpoint_rows}
"""


def write_datacard(path: Path, tdc: pd.DataFrame, merged: dict, citation: str) -> None:
    merge_rows = "\n".join(f"| `{alias}` | `{m['into']}` | {m['hint_rows']:,} | {m['appended']:,} | "
                           f"{m['dropped_as_duplicate']:,} |" for alias, m in merged.items())
    lines = []
    for spec in TDC_SETS:
        rows = tdc[tdc["endpoint"] == spec.endpoint]
        count = f"{len(rows):,}"
        if spec.split_kind == "official":
            tv, te = int((rows["split"] == "train_val").sum()), int((rows["split"] == "test").sum())
            count += f" ({tv:,} / {te:,})"
        extra = int((rows["source"] == "hint_admet").sum())
        if extra:
            count += f", {extra:,} from HINT"
        share = f"{rows['value'].mean():.0%}" if spec.task_type == "classification" else ""
        task = "class." if spec.task_type == "classification" else "regr."
        lines.append(f"| `{spec.endpoint}` | {task} | {spec.unit} | {spec.transform} | {spec.better} | "
                     f"{spec.metric or '-'} | {spec.split_kind} | {count} | {share} | {spec.source} | "
                     f"{spec.licence} |")
    path.write_text(HEADER.format(rows=len(tdc), n=len(TDC_SETS), merge_rows=merge_rows,
                                  endpoint_rows="\n".join(lines)))


def write_notice(path: Path, citation: str) -> None:
    papers: dict[str, list[str]] = {}
    for spec in TDC_SETS:
        papers.setdefault(spec.source, []).append(spec.endpoint)
    cited = "\n".join(f"- {', '.join(eps)}: {paper}" for paper, eps in papers.items())
    az = ", ".join(s.endpoint for s in TDC_SETS if s.licence == AZ_LICENCE)
    tox = ", ".join(s.endpoint for s in TDC_SETS if s.licence == TOX21_LICENCE)
    path.write_text(f"""NOTICE: datasets/tdc_admet/tdc_admet.csv.gz

This file redistributes public ADMET and toxicity data sets collected and distributed by Therapeutics Data
Commons (TDC) under the Creative Commons Attribution 4.0 International licence (CC BY 4.0). Please cite TDC:

  {citation}

and the original publication of each endpoint you use:

{cited}

AstraZeneca sets ({az}): the measurements were deposited by AstraZeneca in ChEMBL and are distributed under
the Creative Commons Attribution-ShareAlike 3.0 Unported licence (CC BY-SA 3.0). Share-alike: if you
redistribute these rows, modified or not, keep this attribution and the CC BY-SA 3.0 licence for them.

Tox21 ({tox}): produced by the US Tox21 programme (NIH NCATS, US EPA, NTP); US-government work in the public
domain. Read here from the MoleculeNet file shipped with chemprop (MIT licence).

ClinTox: MoleculeNet file shipped with chemprop (MIT licence); original data Gayvert et al. (2016).

Rows with source = hint_admet (appended to BBB_Martins and CYP2C19_Veith, molecules TDC does not have) come
from the HINT pre-training files distributed by trialbench (MIT licence, see ../hint_admet/LICENSE).

Changes made: wide files (Tox21, ClinTox) reshaped to one row per measurement; ClinTox's FDA_APPROVED column
dropped; TDC drug ids normalised (PubChem ids without a trailing ".0"). Values, SMILES and TDC's official
train_val/test split are unchanged.
""")
