"""Outputs a chemist can read: the input's ID columns and SDF properties carried through ``predict`` and
``screen``, duplicates flagged by InChIKey, RDKit physchem columns, and a ``columns.json`` sidecar (and
Parquet schema metadata) describing every column."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from admet.columns import PARQUET_METADATA_KEY
from admet.predict import columns_sidecar_path, predict_file
from pipelines.physchem import PHYSCHEM_COLUMNS, physchem_frame

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"


def test_physchem_known_values():
    frame = physchem_frame([ASPIRIN, "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC(=O)O", None, "C1CC("])
    aspirin = frame.iloc[0]
    assert aspirin["MW"] == pytest.approx(180.159, abs=0.01)
    assert aspirin["TPSA"] == pytest.approx(63.6, abs=0.1)
    assert (aspirin["HBD"], aspirin["HBA"], aspirin["rotatable_bonds"]) == (1, 3, 2)
    assert aspirin["cLogP"] == pytest.approx(1.31, abs=0.01) and 0.5 < aspirin["QED"] < 0.6
    assert aspirin["lipinski_violations"] == 0
    # C40 fatty acid: MW 621 and cLogP ~ 14 break two rules
    assert frame.iloc[1]["lipinski_violations"] == 2
    assert frame.iloc[2:].isna().all().all()


def _library(path: Path) -> Path:
    rows = [("CMP-1", "aspirin", ASPIRIN), ("CMP-2", "ethanol", "CCO"),
            ("CMP-3", "aspirin again", "OC(=O)c1ccccc1OC(C)=O"),          # aspirin drawn differently
            ("CMP-4", "bad", "C1CC("),
            ("CMP-5", "metformin HCl", "CN(C)C(=N)N=C(N)N.Cl"),
            ("CMP-6", "metformin", "CN(C)C(=N)N=C(N)N"),                    # same parent as the salt
            ("CMP-7", "ethanol again", "OCC")]
    pd.DataFrame(rows, columns=["compound_id", "name", "smiles"]).to_csv(path, index=False)
    return path


def test_predict_carries_ids_flags_duplicates_and_describes_columns(tiny_bundle, tmp_path):
    lib = _library(tmp_path / "lib.csv")
    out = tmp_path / "pred.csv"
    predict_file(tiny_bundle, lib, out, chunk_size=2, n_jobs=1)  # duplicates span chunks
    df = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert list(df.columns[:10]) == ["row", "input", "smiles", "status", "reason", "compound_id", "name",
                                     "inchikey", "duplicate_of", "MW"]
    assert df["compound_id"].tolist() == [f"CMP-{i}" for i in range(1, 8)]
    assert df.loc[df.status == "rejected", "compound_id"].tolist() == ["CMP-4"]
    dup = dict(zip(df["compound_id"], df["duplicate_of"], strict=True))
    assert dup["CMP-3"] == 0 and dup["CMP-6"] == 4 and dup["CMP-7"] == 1
    assert np.isnan(dup["CMP-1"]) and np.isnan(dup["CMP-5"]) and np.isnan(dup["CMP-4"])
    text = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert text["duplicate_of"].tolist() == ["", "", "0", "", "", "4", "1"]  # row numbers, not 0.0
    assert df.loc[0, "MW"] == pytest.approx(180.159, abs=0.01)
    assert df.loc[4, "MW"] == pytest.approx(df.loc[5, "MW"])     # the salt's values are the free base's
    assert df.loc[3, list(PHYSCHEM_COLUMNS)].isna().all()
    doc = json.loads(columns_sidecar_path(out).read_text())
    cols = doc["columns"]
    assert list(cols) == list(df.columns)
    assert cols["solubility"]["unit"] == "log10(ug/mL)" and cols["solubility"]["direction"] == "higher"
    assert cols["HLM_CLint"]["direction"] == "lower" and "microsome" in cols["HLM_CLint"]["meaning"]
    assert cols["compound_id"]["meaning"].startswith("carried unchanged from the input")
    assert cols["solubility_lower"]["direction"] == "n/a" and "90%" in cols["solubility_lower"]["meaning"]
    assert cols["MW"]["unit"] == "g/mol" and cols["duplicate_of"]["unit"] == "row"
    assert all(set(v) == {"unit", "meaning", "direction"} for v in cols.values())
    assert all(v["meaning"] for v in cols.values()), [k for k, v in cols.items() if not v["meaning"]]


def test_predict_sdf_properties_and_parquet_metadata(tiny_bundle, tmp_path):
    out = tmp_path / "sdf.parquet"
    predict_file(tiny_bundle, FIXTURES / "molecules.sdf", out, chunk_size=2, n_jobs=1)
    table = pq.read_table(out)
    df = table.to_pandas()
    # the SDF title and properties ride along; 'solubility' clashes with an endpoint column
    assert {"name", "vendor_id", "solubility_input"} <= set(df.columns)
    assert df.loc[0, "name"] == "aspirin" and df.loc[0, "vendor_id"] == "V-001"
    assert df.loc[0, "solubility_input"] == "1.2" and np.isfinite(df.loc[0, "solubility"])
    meta = json.loads(table.schema.metadata[PARQUET_METADATA_KEY])
    assert list(meta["columns"]) == list(df.columns)
    assert meta == json.loads(columns_sidecar_path(out).read_text())


def test_resume_keeps_duplicates_across_the_resumed_boundary(tiny_bundle, tmp_path):
    lib = _library(tmp_path / "lib.csv")
    clean = tmp_path / "clean.parquet"
    predict_file(tiny_bundle, lib, clean, chunk_size=2, n_jobs=1)
    out = tmp_path / "resumed.parquet"

    def interrupt(done, seconds):
        if done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_file(tiny_bundle, lib, out, chunk_size=2, n_jobs=1, progress=interrupt)
    summary = predict_file(tiny_bundle, lib, out, chunk_size=2, n_jobs=1)
    assert summary.n_chunks_resumed == 2
    resumed = pd.read_parquet(out)
    pd.testing.assert_frame_equal(resumed, pd.read_parquet(clean))
    assert resumed["duplicate_of"].tolist()[2] == 0  # first occurrence was in a resumed chunk


def test_screen_carries_ids_into_ranked_top_table_and_sidecar(tiny_bundle, tmp_path):
    from flows.screening import top_table
    from flows.screening_steps import ScreeningConfig, screen_plain

    lib = _library(tmp_path / "lib.csv")
    cfg = ScreeningConfig(library=lib, bundle_dir=tiny_bundle, out_dir=tmp_path / "screen", chunk_size=3,
                          use_cache=False)
    result = screen_plain(cfg)
    assert result.id_columns == ["compound_id", "name"]
    ranked = pd.read_csv(result.files["ranked_csv"])
    assert set(ranked["compound_id"]) == {"CMP-1", "CMP-2", "CMP-3", "CMP-5", "CMP-6", "CMP-7"}
    by_id = ranked.set_index("compound_id")
    assert by_id.loc["CMP-3", "duplicate_of"] == 0 and np.isnan(by_id.loc["CMP-1", "duplicate_of"])
    assert by_id.loc["CMP-1", "MW"] == pytest.approx(180.159, abs=0.01)
    top = top_table(result, 3)
    assert list(top.columns[:5]) == ["rank", "row", "compound_id", "name", "duplicate_of"]
    doc = json.loads(result.files["columns"].read_text())["columns"]
    assert list(doc) == list(ranked.columns)
    assert "weighted" in doc["score"]["meaning"] and "E_std" in doc["score_expected"]["meaning"]
    d_cols = [c for c in ranked.columns if c.startswith("d_")]
    assert d_cols and all(doc[c]["direction"] == "higher" for c in d_cols)
    meta = json.loads(pq.read_table(result.files["ranked_parquet"]).schema.metadata[PARQUET_METADATA_KEY])
    assert meta["columns"] == doc
