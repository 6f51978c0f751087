"""Reading a library is one concern: ``pipelines`` streams and reads whole files from one checked
``Source``; one prediction run inspects its input once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import pipelines.sources as sources
from pipelines.errors import InputError
from pipelines.library_stream import iter_library
from pipelines.readers import read_molecules

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture
def inspections(monkeypatch) -> list[Path]:
    """Paths inspected (every inspection reads the file's head once)."""
    seen: list[Path] = []
    real = sources._read_head

    def counting(path: Path):
        seen.append(Path(path))
        return real(path)

    monkeypatch.setattr(sources, "_read_head", counting)
    return seen


@pytest.mark.parametrize("name", ["molecules.sdf", "molecules.smi", "bad_smiles.csv"])
def test_streamed_chunks_equal_the_whole_file_read_with_one_inspection(name, inspections):
    path = FIXTURES / name
    source = sources.inspect_source(path)
    whole = read_molecules(source)
    chunks = list(iter_library(source, chunk_size=3))
    assert inspections == [path]  # the Source is passed down, never inspected again
    streamed = pd.concat(chunks, ignore_index=True)
    assert streamed["row"].tolist() == whole["row"].tolist() == list(range(len(whole)))
    assert streamed["input"].tolist() == whole["input"].tolist()
    assert len(chunks) > 1


def test_a_path_is_inspected_once_and_a_wrong_format_is_refused(inspections):
    path = FIXTURES / "molecules.smi"
    assert len(list(iter_library(path, chunk_size=2))) >= 1
    assert inspections == [path]
    with pytest.raises(InputError, match="inspected as smi"):
        read_molecules(sources.inspect_source(path), fmt="csv")


def test_one_prediction_run_inspects_its_input_once(tiny_bundle, inspections, tmp_path):
    from admet.predict import predict_file

    for name in ("molecules.sdf", "bad_smiles.csv"):
        inspections.clear()
        summary = predict_file(tiny_bundle, FIXTURES / name, tmp_path / f"{name}.csv", chunk_size=4, n_jobs=1)
        assert summary.n_rows > 0
        assert inspections == [FIXTURES / name]


def test_admet_predict_command_inspects_its_input_once(tiny_bundle, inspections, tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    library = FIXTURES / "molecules.sdf"
    res = CliRunner().invoke(app, ["admet", "predict", str(library), "--model", str(tiny_bundle), "--out",
                                   str(tmp_path / "out.csv"), "--n-jobs", "1", "--chunk-size", "2"])
    assert res.exit_code == 0, res.output
    assert inspections == [library]  # the command's input check hands its Source to predict_file
