"""The demo's choice of screening model (flows.demo_model_choice): the rule, and real scoring."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from flows import demo_model_choice as choice


def test_rule_prefers_federated_only_when_at_least_as_good():
    table = pd.DataFrame([
        {"endpoint": "a", "rows": 40, "metric": "AUROC", "federated": 0.70, "shipped": 0.80},
        {"endpoint": "b", "rows": 30, "metric": "Spearman", "federated": 0.45, "shipped": 0.40},
        {"endpoint": "c", "rows": 5, "metric": "AUROC", "federated": None, "shipped": 0.99},  # too few rows
    ])
    got = choice.choose(table)
    assert got["chosen"] == "shipped" and got["n_endpoints"] == 2 and got["n_rows"] == 70
    assert np.isclose(got["federated_mean"], 0.575) and np.isclose(got["shipped_mean"], 0.60)
    tie = table.assign(federated=[0.80, 0.40, None])
    assert choice.choose(tie)["chosen"] == "federated"  # "at least as good"
    assert choice.choose(table.iloc[2:])["chosen"] == "federated"
    assert "no endpoint" in choice.choose(table.iloc[2:])["reason"]


def test_compare_scores_both_models_on_the_same_rows(tiny_bundle):
    from admet.bundle import load_bundle
    from pipelines.catalog import load_embedded

    bundle = load_bundle(tiny_bundle)
    rows = load_embedded(["solubility"]).drop_duplicates("smiles").tail(40)
    frame = pd.DataFrame({"smiles": rows["smiles"], "endpoint": "solubility", "y": rows["value"].astype(float)})
    table = choice.compare(frame, bundle, bundle)
    assert table["endpoint"].tolist() == ["solubility"] and table["rows"].tolist() == [40]
    assert table["metric"].tolist() == ["Spearman"]
    assert table["federated"].iloc[0] == table["shipped"].iloc[0]  # the same model on the same rows
    assert -1 <= table["shipped"].iloc[0] <= 1


def test_no_shipped_split_leaves_the_federated_model(tiny_bundle, tmp_path):
    chosen, record = choice.choose_screening_model(tmp_path, tiny_bundle, tiny_bundle, ("solubility",))
    assert chosen == tiny_bundle and record["chosen"] == "federated"
    assert record["reason"].startswith("no comparison") and "federated run config" in record["reason"]
    assert json.loads((tmp_path / "screening_model.json").read_text())["screening_model"] == str(tiny_bundle)
