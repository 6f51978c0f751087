"""Partners train on the catalog's value transform, and shared heads take their target scale from
public data: the embedded catalog's training-side rows, on the model scale, nothing from a partner."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from admet.tasks import TaskSpec
from federation import partners as partners_mod
from federation import task
from federation.config import FederatedConfig
from federation.run import load_all_partners, node_work_dir
from federation.stages import RESULT_FILE
from pipelines.catalog import datasets_dir, load_catalog
from pipelines.errors import InputError


def _embedded_rows(endpoint: str) -> pd.DataFrame:
    """The endpoint's rows read straight from its vendored file (not through ``load_embedded``)."""
    catalog = load_catalog().set_index("endpoint")
    frame = pd.read_csv(datasets_dir() / catalog.loc[endpoint, "file"], dtype={"split": str})
    return frame[frame["endpoint"] == endpoint]


def _unscaled_assay_table(tmp_path):
    """A consortium assay the embedded data does not measure (``my_assay``, uM) on 240 public molecules."""
    caco = _embedded_rows("Caco2_Wang").head(240)
    table = pd.DataFrame({"smiles": caco["smiles"].to_numpy(), "endpoint": "my_assay",
                          "value": np.linspace(1.0, 50.0, len(caco)), "unit": "uM"})
    path = tmp_path / "custom.csv"
    table.to_csv(path, index=False)
    return path


def test_public_target_scale_is_the_log_scale_of_the_public_training_rows():
    tasks = [TaskSpec("VDss_Lombardo", "regression", "L/kg", transform="log10"),
             TaskSpec("AMES", "classification", "binary"), TaskSpec("Caco2_Wang", "regression")]
    scale = task.public_target_scaler(tasks)
    vdss = _embedded_rows("VDss_Lombardo")
    train_side = np.log10(vdss.loc[vdss["split"].fillna("") != "test", "value"].astype(float))
    assert len(train_side) < len(vdss)  # the official test rows exist and are left out
    assert scale.mean[0] == pytest.approx(train_side.mean(), rel=1e-9)
    assert scale.std[0] == pytest.approx(train_side.std(ddof=0), rel=1e-9)
    raw = vdss["value"].astype(float)
    assert abs(scale.mean[0] - raw.mean()) > 1.0  # on the log scale, not the unit's
    assert (scale.mean[1], scale.std[1]) == (0.0, 1.0)  # classification passes through
    caco = _embedded_rows("Caco2_Wang")
    assert scale.mean[2] == pytest.approx(caco.loc[caco["split"] != "test", "value"].astype(float).mean())


def test_public_target_scale_refuses_an_endpoint_without_public_data():
    with pytest.raises(InputError, match=r"'my_assay'.*--heads private"):
        task.public_target_scaler([TaskSpec("my_assay", "regression", "uM")])
    # a classification endpoint needs no scale, public data or not
    assert task.public_target_scaler([TaskSpec("my_flag", "classification")]).std.tolist() == [1.0]


def test_partner_labels_are_on_the_catalog_transform(tmp_path):
    cfg = FederatedConfig(out_dir=tmp_path / "run", n_partners=2, endpoints=("VDss_Lombardo", "Caco2_Wang"),
                          max_rows=400, seed=0, engine="inprocess", baselines=False)
    partners_dir = partners_mod.prepare_partners(cfg)
    for data in load_all_partners(cfg, partners_dir):
        spec = {t.name: t for t in data.tasks}
        assert spec["VDss_Lombardo"].transform == "log10" and spec["Caco2_Wang"].transform == "none"
        # the node's own prepared table (catalog unit, replicates merged), matched by SMILES
        prepared = pd.read_csv(node_work_dir(cfg, data.partner) / "prepared" / "prepared.csv")
        for name in ("VDss_Lombardo", "Caco2_Wang"):
            rows = prepared[prepared["endpoint"] == name]
            value_of = dict(zip(rows["smiles"], rows["value"].astype(float)))
            col = data.Y[:, data.task_names.index(name)]
            have = ~np.isnan(col)
            assert have.sum() >= 20
            want = np.array([value_of[smi] for smi in data.smiles[have]])
            want = np.log10(want) if name == "VDss_Lombardo" else want
            np.testing.assert_allclose(col[have], want, rtol=1e-9)


def test_federate_with_shared_heads_refuses_an_unscaled_endpoint_before_any_round(tmp_path):
    """A consortium assay the embedded data does not measure: one error line, exit 2, no round run."""
    from typer.testing import CliRunner

    from flows.cli import app

    path = _unscaled_assay_table(tmp_path)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["federate", "--data", str(path), "--partners", "2", "--rounds", "1",
                                      "--heads", "shared", "--engine", "inprocess", "--no-baselines",
                                      "--min-endpoint-rows", "0", "--no-approved-context", "--out", str(out)])
    text = result.stdout + (result.stderr or "")
    assert result.exit_code == 2, text
    assert "my_assay" in text and "--heads private" in text and "Traceback" not in text
    assert (out / "partners").is_dir() and not list(out.rglob(RESULT_FILE))  # partitioned, never federated


@pytest.mark.parametrize("heads", ["private", "shared"])
def test_a_federated_bundle_predicts_a_log_trained_endpoint_in_the_catalog_unit(tmp_path, heads):
    """The node's bundle knows VDss was trained on log10 and gives L/kg back (10 ** the model scale)."""
    from admet.bundle import load_bundle
    from federation.run import run_federated

    cfg = FederatedConfig(out_dir=tmp_path / heads, n_partners=2, rounds=1, local_epochs=1, hidden=(32,),
                          endpoints=("VDss_Lombardo", "Caco2_Wang"), max_rows=400, seed=0, engine="inprocess",
                          baselines=False, heads=heads, approved_context=False, min_endpoint_rows=0)
    run_federated(cfg)
    data = load_all_partners(cfg, cfg.out_dir / "partners")[0]
    bundle = load_bundle(node_work_dir(cfg, data.partner) / "bundle")
    spec = {t.name: t for t in bundle.tasks}
    assert spec["VDss_Lombardo"].transform == "log10" and spec["Caco2_Wang"].transform == "none"
    X = data.X[data.rows("train")][:20]
    smiles = list(data.smiles[data.rows("train")][:20])
    unit = bundle.predict_features(X, smiles)
    model = bundle.predict_model_space(X, smiles).mean
    j = bundle.task_names.index("VDss_Lombardo")
    np.testing.assert_allclose(unit["VDss_Lombardo"].to_numpy(float), 10.0 ** model[:, j], rtol=1e-6)
    assert (unit["VDss_Lombardo"] > 0).all()
    k = bundle.task_names.index("Caco2_Wang")
    np.testing.assert_allclose(unit["Caco2_Wang"].to_numpy(float), model[:, k], rtol=1e-9)


def test_a_default_federation_falls_back_to_private_heads_for_an_unscaled_endpoint(tmp_path):
    """The same consortium assay under the default heads: the run goes on with private heads (each
    partner scales its own targets), and the report says why."""
    import json

    from typer.testing import CliRunner

    from flows.cli import app

    path = _unscaled_assay_table(tmp_path)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["federate", "--data", str(path), "--partners", "2", "--rounds", "1",
                                      "--hidden", "32", "--engine", "inprocess", "--no-baselines",
                                      "--min-endpoint-rows", "0", "--no-approved-context", "--out", str(out)])
    assert result.exit_code == 0, result.stdout + (result.stderr or "")
    outcome = json.loads(next(out.rglob(RESULT_FILE)).read_text())
    assert outcome["heads"] == "private"
    assert "my_assay" in outcome["heads_note"] and "fell back" in outcome["heads_note"]
    assert json.loads((out / "config.json").read_text())["heads"] == "private"
    assert "my_assay" in (out / "report.md").read_text()


def test_default_heads_follow_the_privacy_mode_and_the_strategy():
    """auto: shared in plain FedAvg; private under SecAgg+, DP, or a robust (non-mean) rule; an explicit
    choice is kept (and SecAgg+ with explicit shared heads is refused, not silently changed)."""
    from federation import stages

    def heads(**kw):
        return FederatedConfig(out_dir="run", **kw).heads

    assert heads() == "shared" and heads(strategy="fedprox") == "shared"
    assert heads(secagg=True) == "private" and heads(dp_clip=1.0, dp_noise=0.5) == "private"
    assert heads(strategy="fedmedian") == "private" and heads(strategy="krum") == "private"
    assert heads(heads="private") == "private"
    with pytest.raises(InputError, match="SecAgg"):
        FederatedConfig(out_dir="run", heads="shared", secagg=True)
    # the fallback only applies to the default: explicit shared heads keep the one clear error
    unscaled = [TaskSpec("my_assay", "regression", "uM"), TaskSpec("Caco2_Wang", "regression")]
    explicit = FederatedConfig(out_dir="run", heads="shared")
    with pytest.raises(InputError, match="my_assay"):
        stages.settle_heads(explicit, unscaled)
    default = FederatedConfig(out_dir="run")
    stages.settle_heads(default, unscaled[1:])
    assert default.heads == "shared"
    stages.settle_heads(default, unscaled)
    assert default.heads == "private" and "my_assay" in default.heads_note
