"""``fedadmet admet predict``/``predict_file``: stable columns, row accounting, resume, bad inputs;
``train`` and ``evaluate`` from the command line on a small real table."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from admet.bundle import output_columns
from admet.predict import predict_file
from flows.cli import app
from pipelines.errors import InputError

runner = CliRunner()


def _columns(tasks):
    from pipelines.physchem import PHYSCHEM_COLUMNS

    return (["row", "input", "smiles", "status", "reason", "inchikey", "duplicate_of", *PHYSCHEM_COLUMNS]
            + output_columns(tasks))


def test_predict_cli_columns_and_row_accounting(tiny_bundle, tiny_library, tmp_path):
    out = tmp_path / "pred.csv"
    res = runner.invoke(app, ["admet", "predict", "--model", str(tiny_bundle), str(tiny_library), "--out", str(out),
                              "--n-jobs", "1", "--chunk-size", "5"])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out, keep_default_na=False, na_values=[""])
    tasks = json.loads((tiny_bundle / "bundle.json").read_text())["tasks"]
    assert list(df.columns) == _columns([t["name"] for t in tasks])
    n_input = len(tiny_library.read_text().strip().splitlines()) - 1
    assert len(df) == n_input and df["row"].tolist() == list(range(n_input))
    assert df["status"].value_counts().to_dict() == {"ok": n_input - 2, "rejected": 2}
    assert df.loc[df.status == "rejected", "reason"].tolist() == ["unparsable", "metal_only"]
    assert (out.parent / "pred.csv.run.json").exists()
    assert not (out.parent / "pred.csv.parts").exists()


def test_predict_resumes_after_interruption(tiny_bundle, tiny_library, tmp_path):
    clean = tmp_path / "clean.parquet"
    predict_file(tiny_bundle, tiny_library, clean, chunk_size=4, n_jobs=1)
    out = tmp_path / "resumed.parquet"
    calls = []

    def interrupt(done, seconds):
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_file(tiny_bundle, tiny_library, out, chunk_size=4, n_jobs=1, progress=interrupt)
    parts = sorted(p.name for p in (tmp_path / "resumed.parquet.parts").glob("part_*.parquet"))
    assert parts == ["part_000000.parquet", "part_000001.parquet"] and not out.exists()
    summary = predict_file(tiny_bundle, tiny_library, out, chunk_size=4, n_jobs=1)
    assert summary.n_chunks_resumed == 2 and summary.n_chunks == 4
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(clean))


def test_predict_bad_inputs_give_clear_errors(tiny_bundle, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("smiles\n")
    res = runner.invoke(app, ["admet", "predict", "--model", str(tiny_bundle), str(empty), "--out",
                              str(tmp_path / "o.csv"), "--n-jobs", "1"])
    assert res.exit_code == 2 and "no molecules" in res.output
    binary = tmp_path / "lib.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    empty.with_name("ok.smi").write_text("CCO\n")
    res = runner.invoke(app, ["admet", "predict", "--model", str(tiny_bundle), str(binary), "--out",
                              str(tmp_path / "o.csv")])
    assert res.exit_code == 2 and "binary" in res.output
    res = runner.invoke(app, ["admet", "predict", "--model", str(tiny_bundle), str(empty.with_name("ok.smi")),
                              "--out", str(tmp_path / "o.xlsx")])
    assert res.exit_code == 2 and ".parquet" in res.output
    res = runner.invoke(app, ["admet", "predict", "--model", str(tmp_path / "nope"), str(empty.with_name("ok.smi")),
                              "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 2 and "not found" in res.output
    with pytest.raises(InputError, match="no such file"):
        predict_file(tiny_bundle, tmp_path / "missing.csv", tmp_path / "o.csv")


def _wide_table(path, n=90):
    from pipelines.catalog import load_embedded

    long_df = load_embedded(["solubility", "hPPB"])
    wide = long_df.pivot_table(index="smiles", columns="endpoint", values="value", aggfunc="mean").reset_index()
    wide = wide.head(n).copy()
    wide["flag"] = (wide["solubility"].fillna(0) > 1.2).astype(float)
    wide.loc[3, "smiles"] = "C1CC("  # one bad row: rejected, not fatal
    wide.to_csv(path, index=False)
    return path


def test_train_cli_with_config_json_writes_bundle_and_metrics(tmp_path):
    data = _wide_table(tmp_path / "wide.csv")
    cfg = tmp_path / "best_params.json"
    cfg.write_text(json.dumps({"featurizer": "morgan_count", "trunk_width": 32, "trunk_depth": 1, "epochs": 4,
                               "patience": 0, "ensemble": 2, "dropout": 0.1, "lr": 0.003}))
    out = tmp_path / "model"
    res = runner.invoke(app, ["admet", "train", "--data", str(data), "--config", str(cfg), "--out", str(out),
                              "--task-types", "flag=classification", "--n-jobs", "1"])
    assert res.exit_code == 0, res.output
    for name in ("bundle.json", "metrics.json", "model_card.md", "config.json", "train_run.json"):
        assert (out / name).exists(), name
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["hidden"] == [32] and resolved["ensemble"] == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) == {"hPPB", "solubility", "flag"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"trunk_widht": 10}))
    res = runner.invoke(app, ["admet", "train", "--data", str(data), "--config", str(bad), "--out", str(out)])
    assert res.exit_code == 2 and "trunk_widht" in res.output
    res = runner.invoke(app, ["admet", "train", "--data", str(data), "--endpoints", "nope", "--out", str(out)])
    assert res.exit_code == 2 and "nope" in res.output


def test_evaluate_cli_two_seeds_markdown_and_json(tmp_path):
    data = _wide_table(tmp_path / "wide.csv", n=120)
    out = tmp_path / "eval"
    res = runner.invoke(app, ["admet", "evaluate", "--data", str(data), "--seeds", "2", "--model", "lgbm",
                              "--featurizer", "morgan_count", "--out", str(out), "--n-jobs", "1"])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "evaluation.json").read_text())
    assert [s["seed"] for s in doc["per_seed"]] == [0, 1]
    summary = pd.DataFrame(doc["summary"])
    assert set(summary["endpoint"]) == {"solubility", "hPPB", "flag"}
    spearman = summary[(summary.endpoint == "solubility") & (summary.metric == "spearman")]
    assert np.isfinite(spearman["mean"]).all() and spearman["n_seeds"].iloc[0] == 2
    md = (out / "evaluation.md").read_text()
    assert "+/-" in md and "auroc" in md


def test_train_cli_blend_bundle_predicts_from_the_command_line(tmp_path, tiny_library):
    data = _wide_table(tmp_path / "wide.csv")
    cfg = tmp_path / "small.json"
    cfg.write_text(json.dumps({"featurizer": "morgan_count", "trunk_width": 32, "trunk_depth": 1, "epochs": 4,
                               "patience": 0, "ensemble": 2, "lgbm_n_estimators": 30}))
    out = tmp_path / "blend"
    res = runner.invoke(app, ["admet", "train", "--data", str(data), "--config", str(cfg), "--model", "blend",
                              "--out", str(out), "--task-types", "flag=classification", "--n-jobs", "1"])
    assert res.exit_code == 0, res.output
    bundle = json.loads((out / "bundle.json").read_text())
    assert bundle["model"] == "blend" and "lightgbm" in bundle["versions"] and "torch" in bundle["versions"]
    assert json.loads((out / "config.json").read_text())["model"] == "blend"
    for i in range(2):
        assert (out / "ensemble" / f"member_{i:02d}" / "mtnn" / "weights.pt").exists()
        assert (out / "ensemble" / f"member_{i:02d}" / "lgbm" / "member.json").exists()
    assert "Blend:" in (out / "model_card.md").read_text()
    pred = tmp_path / "pred.csv"
    res = runner.invoke(app, ["admet", "predict", "--model", str(out), str(tiny_library), "--out", str(pred),
                              "--n-jobs", "1"])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(pred)
    ok = df[df.status == "ok"]
    assert len(ok) == len(df) - 2 and np.isfinite(ok["solubility"]).all()
    res = runner.invoke(app, ["admet", "train", "--data", str(data), "--model", "blender", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "blend" in res.output
