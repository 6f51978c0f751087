"""Label matrix from long tables; feature scaling (robust and federated)."""

import numpy as np
import pandas as pd
import pytest

from admet.features import FeatureScaler, feature_moments
from admet.tasks import infer_task_types, task_data_from_long
from pipelines.errors import InputError


def _long(rows):
    return pd.DataFrame(rows, columns=["smiles", "endpoint", "relation", "value", "split"])


def test_pivot_aggregates_replicates_with_the_stated_rules():
    df = _long([
        ("CCO", "logS", "=", 1.0, "train"), ("CCO", "logS", "=", 3.0, "train"),   # mean of exact
        ("CCO", "logS", "<", 0.5, "train"),                                        # exact wins over censored
        ("CCN", "logS", "<", 2.0, "train"), ("CCN", "logS", "<", 1.0, "test"),     # only '<': smallest bound
        ("CCC", "logS", ">", 4.0, ""), ("CCC", "logS", ">", 5.0, ""),             # only '>': largest bound
        ("CCO", "tox", "=", 1, "train"), ("CCO", "tox", "=", 0, "train"), ("CCO", "tox", "=", 1, "train"),
        ("CCN", "tox", "=", 0, "train"),
    ])
    td = task_data_from_long(df)
    assert td.task_names == ["logS", "tox"]
    assert [t.task_type for t in td.tasks] == ["regression", "classification"]
    row = {s: i for i, s in enumerate(td.smiles)}
    assert td.Y[row["CCO"], 0] == 2.0 and td.censor[row["CCO"], 0] == 0
    assert td.Y[row["CCN"], 0] == 1.0 and td.censor[row["CCN"], 0] == -1
    assert td.Y[row["CCC"], 0] == 5.0 and td.censor[row["CCC"], 0] == 1
    assert td.Y[row["CCO"], 1] == 1.0 and td.Y[row["CCN"], 1] == 0.0
    assert np.isnan(td.Y[row["CCC"], 1])
    assert td.split[row["CCN"]] == "test"  # any test row puts the molecule in test (no leakage)
    sub = td.select_tasks(["tox"])
    assert len(sub) == 2 and sub.task_names == ["tox"]


def test_task_types_inferred_and_overridable_and_bad_input_is_clear():
    df = _long([("CCO", "a", "=", 1, ""), ("CCN", "a", "=", 0, ""), ("CCO", "b", "=", 0.5, "")])
    assert infer_task_types(df) == {"a": "classification", "b": "regression"}
    td = task_data_from_long(df, task_types={"a": "regression"})
    assert td.tasks[0].task_type == "regression"
    with pytest.raises(InputError, match="non-0/1"):
        task_data_from_long(df, task_types={"b": "classification"})
    with pytest.raises(InputError, match="unknown relation"):
        task_data_from_long(_long([("CCO", "a", "~>", 1, "")]))
    with pytest.raises(InputError, match="missing column"):
        task_data_from_long(pd.DataFrame({"smiles": ["C"]}))
    with pytest.raises(InputError, match="no rows"):
        task_data_from_long(_long([]))


def test_robust_scaler_known_values_nan_imputation_and_clipping():
    X = np.array([[1, 0], [2, 0], [3, 0], [4, 0], [5, 100]], dtype=np.float32)
    sc = FeatureScaler.fit(X, clip=3.0)
    np.testing.assert_allclose(sc.center, [3, 0])
    assert sc.scale[0] == pytest.approx(2.0)         # IQR of 1..5
    assert sc.scale[1] == pytest.approx(40.0)        # IQR 0 -> std fallback
    out = sc.transform(np.array([[np.nan, 1000], [7, -1000]], dtype=np.float32))
    np.testing.assert_allclose(out, [[0.0, 3.0], [2.0, -3.0]])
    with pytest.raises(InputError, match="featurizer mismatch"):
        sc.transform(np.zeros((1, 3)))


def test_scaler_from_federated_moments_matches_pooled_mean_and_std():
    rng = np.random.default_rng(0)
    parts = [rng.normal(i, 1 + i, size=(50 + 10 * i, 4)) for i in range(3)]
    parts[1][3, 2] = np.nan
    moments = [feature_moments(p) for p in parts]
    s, ss, n = (sum(m[k] for m in moments) for k in range(3))
    sc = FeatureScaler.from_moments(s, ss, n)
    pooled = np.vstack(parts)
    np.testing.assert_allclose(sc.center, np.nanmean(pooled, 0), rtol=1e-5)
    np.testing.assert_allclose(sc.scale, np.nanstd(pooled, 0), rtol=1e-5)
