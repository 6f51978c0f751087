"""Readers: every format, gzip by magic bytes, K-MELLODDY, wide tables, and unusable files."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.catalog import LONG_COLUMNS
from pipelines.errors import InputError
from pipelines.kmelloddy import KMELLODDY_COLUMNS
from pipelines.readers import detect_smiles_column, read_long_table, read_molecules, write_kmelloddy

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_csv_reader_keeps_every_record_and_column():
    table = read_molecules(FIXTURES / "bad_smiles.csv")
    assert list(table.columns) == ["row", "input", "compound_id", "note"]
    assert table["row"].tolist() == list(range(19))
    assert table.loc[2, "input"] == ""          # an empty cell stays an empty string
    assert table.loc[3, "input"] == "   "


def test_tsv_and_gzip_detected_by_magic_bytes(tmp_path):
    frame = pd.DataFrame({"name": ["a", "b"], "Canonical_SMILES": ["CCO", "c1ccccc1"]})
    tsv = tmp_path / "mols.tsv"
    frame.to_csv(tsv, sep="\t", index=False)
    # gzip content under a name that does not say so
    disguised = tmp_path / "mols_compressed.tsv"
    with tsv.open("rb") as src, gzip.open(disguised, "wb") as dst:
        shutil.copyfileobj(src, dst)
    for path in (tsv, disguised):
        table = read_molecules(path)
        assert table["input"].tolist() == ["CCO", "c1ccccc1"]
        assert table["name"].tolist() == ["a", "b"]


def test_parquet_reader(tmp_path):
    path = tmp_path / "mols.parquet"
    pd.DataFrame({"smiles": ["CCO", "CCN"], "pIC50": [5.1, 6.2]}).to_parquet(path)
    table = read_molecules(path)
    assert table["input"].tolist() == ["CCO", "CCN"]
    assert table["pIC50"].tolist() == [5.1, 6.2]


def test_smi_reader_with_ids_and_blank_line():
    table = read_molecules(FIXTURES / "molecules.smi")
    assert table["input"].tolist() == ["CCO", "c1ccccc1", "", "not_a_smiles", "CC(=O)O"]
    assert table["id"].tolist() == ["ethanol", "benzene", "", "junk", "acetic acid"]


def test_sdf_reader_properties_and_unreadable_record():
    table = read_molecules(FIXTURES / "molecules.sdf")
    assert len(table) == 5  # the broken record is kept, in place
    assert table["name"].tolist() == ["aspirin", "caffeine", "broken record", "benzoate Na", "pentavalent"]
    assert table["vendor_id"].tolist() == ["V-001", "V-002", "V-004", "V-003", "V-005"]
    assert table.loc[0, "solubility"] == "1.2"
    assert table["_reject"].tolist() == ["", "", "unparsable", "", ""]


def test_smiles_column_by_name_content_and_override():
    by_name = pd.DataFrame({"ID": ["1"], "SMILES_Structure_Parent": ["CCO"], "SMILES_Salt": ["CCO.Cl"]})
    assert detect_smiles_column(by_name) == "SMILES_Structure_Parent"
    by_content = pd.DataFrame({"label": ["x", "y", "z"], "structure_text": ["CCO", "c1ccccc1", "CC(=O)O"]})
    assert detect_smiles_column(by_content) == "structure_text"
    assert detect_smiles_column(by_content, "label") == "label"
    with pytest.raises(InputError, match="'nope' not found"):
        detect_smiles_column(by_content, "nope")
    with pytest.raises(InputError, match="no SMILES column"):
        detect_smiles_column(pd.DataFrame({"a": ["hello world", "foo bar"], "b": ["1", "2"]}))


@pytest.mark.parametrize(
    ("name", "message"),
    [("empty.csv", "empty"), ("blank_lines.csv", "empty"), ("binary.csv", "binary"),
     ("does_not_exist.csv", "no such file")],
)
def test_unusable_files_raise_input_error_naming_the_problem(name, message):
    with pytest.raises(InputError, match=message):
        read_molecules(FIXTURES / name)


def test_corrupt_gzip_and_header_only(tmp_path):
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00garbage-not-deflate")
    with pytest.raises(InputError, match="gzip"):
        read_molecules(broken)
    header_only = tmp_path / "header.csv"
    header_only.write_text("smiles,name\n")
    with pytest.raises(InputError, match="no data rows"):
        read_molecules(header_only)


def test_kmelloddy_sample_reads_exactly():
    long = read_long_table(FIXTURES / "k_melloddy_sample.csv")
    assert len(long) == 193
    assert list(long.columns[:2]) == ["row", "input"]
    assert set(LONG_COLUMNS) <= set(long.columns)
    endpoints = set(long["endpoint"])
    assert {"ClogP", "PPB|Human", "Metabolic stability I|Human|T1/2", "CYP2C19||IC50", "Ames||TA98_S9+"} <= endpoints
    assert long.loc[long["compound_id"] == "CHEMBL374478", "smiles"].iloc[0].startswith("CO[C@H]1/C=C/")


def test_kmelloddy_missing_columns_are_named():
    with pytest.raises(InputError, match="Test_Type") as info:
        read_long_table(FIXTURES / "kmelloddy_missing_columns.csv")
    assert "Measurement_Relation" in str(info.value)


def test_kmelloddy_round_trip(tmp_path):
    long = read_long_table(FIXTURES / "k_melloddy_sample.csv")
    path = write_kmelloddy(long, tmp_path / "out.csv")
    written = pd.read_csv(path, nrows=0)
    assert tuple(written.columns[:12]) == KMELLODDY_COLUMNS
    again = read_long_table(path)
    for column in ("compound_id", "smiles", "endpoint", "unit"):
        assert again[column].tolist() == long[column].tolist()
    assert again["value"].astype(str).tolist() == long["value"].astype(str).tolist()


def test_wide_table_to_long():
    long = read_long_table(FIXTURES / "wide.csv")
    measured = long[long["endpoint"] != ""]
    assert sorted(zip(measured["compound_id"], measured["endpoint"], strict=True)) == [
        ("w1", "HLM_CLint"), ("w1", "solubility"), ("w2", "HLM_CLint"), ("w3", "solubility"),
        ("w4", "solubility")]
    # a record without any measurement is still accounted for
    assert long.loc[long["endpoint"] == "", "compound_id"].tolist() == ["w5"]
    assert set(long["split"]) == {"train", "test"}


def test_wide_table_text_column_is_named(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("smiles,solubility,comment\nCCO,1.0,looks fine\nCCN,2.0,ok\n")
    with pytest.raises(InputError, match="comment"):
        read_long_table(path)


def test_long_format_missing_columns(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("compound_id,endpoint,value\nc1,solubility,1.0\n")
    with pytest.raises(InputError, match="SMILES|smiles"):
        read_long_table(path)


def test_sdf_stereo_survives(tmp_path):
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mols = [Chem.MolFromSmiles(s) for s in ("C[C@H](N)C(=O)O", "C/C=C/C(=O)O")]
    path = tmp_path / "stereo.sdf"
    with Chem.SDWriter(str(path)) as writer:
        for mol in mols:
            AllChem.Compute2DCoords(mol)
            writer.write(mol)
    table = read_molecules(path)
    assert table["input"].tolist() == ["C[C@H](N)C(=O)O", "C/C=C/C(=O)O"]


def test_byte_order_mark_and_semicolon_csv(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffSMILES;name\nCCO;ethanol\nCCN;ethylamine\n".encode("utf-8"))
    table = read_molecules(path)
    assert table["input"].tolist() == ["CCO", "CCN"]
    assert table["name"].tolist() == ["ethanol", "ethylamine"]


_text_lines = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30), max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(st.binary(max_size=300), _text_lines.map(lambda ls: "\n".join(ls).encode("utf-8"))),
       suffix=st.sampled_from([".csv", ".tsv", ".smi", ".sdf", ".parquet", ".txt", ".csv.gz"]),
       long=st.booleans())
def test_property_any_file_reads_or_raises_input_error(tmp_path_factory, content, suffix, long):
    path = tmp_path_factory.mktemp("fuzz") / f"input{suffix}"
    path.write_bytes(gzip.compress(content) if suffix.endswith(".gz") else content)
    try:
        table = read_long_table(path) if long else read_molecules(path)
    except InputError:
        return
    assert len(table) > 0
    assert {"row", "input"} <= set(table.columns)
