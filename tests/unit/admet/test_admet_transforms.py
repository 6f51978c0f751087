"""Catalog value transforms: log10 labels at training, predictions back in the catalog's unit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from admet.tasks import TaskSpec, task_data_from_long
from admet.transforms import forward, inverse, inverse_std
from pipelines.catalog import load_catalog, load_embedded
from pipelines.errors import InputError


def test_catalog_names_log10_for_the_wide_range_pk_endpoints():
    cat = load_catalog().set_index("endpoint")
    logged = set(cat.index[cat["transform"] == "log10"])
    assert logged == {"VDss_Lombardo", "Half_Life_Obach", "Clearance_Hepatocyte_AZ", "Clearance_Microsome_AZ"}
    assert cat.loc["VDss_Lombardo", "unit"] == "L/kg" and cat.loc["Half_Life_Obach", "unit"] == "h"


def test_forward_and_inverse_known_values():
    np.testing.assert_allclose(forward(np.array([0.01, 1.0, 700.0]), "log10"), [-2.0, 0.0, np.log10(700.0)])
    np.testing.assert_allclose(inverse(np.array([-2.0, 0.0, 1.5]), "log10"), [0.01, 1.0, 10 ** 1.5])
    # delta method: d(10^x)/dx = ln(10) * 10^x
    np.testing.assert_allclose(inverse_std(np.array([1.0]), np.array([0.1]), "log10"), [np.log(10) * 10 * 0.1])
    assert np.isnan(forward(np.array([0.0, -1.0]), "log10")).all()  # undefined: label left out
    np.testing.assert_array_equal(forward(np.array([-3.0, 2.0]), "none"), [-3.0, 2.0])
    with pytest.raises(InputError, match="transform"):
        forward(np.array([1.0]), "sqrt")


def test_task_data_puts_transformed_labels_and_bounds_on_the_log_scale():
    long = pd.DataFrame({
        "smiles": ["CCO", "CCN", "CCC", "CCO"],
        "endpoint": ["VDss_Lombardo", "VDss_Lombardo", "VDss_Lombardo", "logd"],
        "relation": ["=", ">", "=", "="],
        "value": [10.0, 100.0, 0.0, 2.5],
    })
    td = task_data_from_long(long, transforms={"VDss_Lombardo": "log10"})
    vdss, logd = td.tasks
    assert (vdss.transform, logd.transform) == ("log10", "none")
    j = td.task_names.index("VDss_Lombardo")
    np.testing.assert_allclose(td.Y[:2, j], [1.0, 2.0])       # 10 L/kg -> 1, bound 100 -> 2
    assert td.censor[1, j] == 1                               # '>' kept on the bound
    assert np.isnan(td.Y[2, j]) and td.censor[2, j] == 0      # 0 L/kg has no log: left out
    assert td.Y[0, td.task_names.index("logd")] == 2.5        # untouched
    assert TaskSpec.from_dict(vdss.to_dict()).transform == "log10"
    assert TaskSpec.from_dict({"name": "x", "task_type": "regression"}).transform == "none"  # older bundles


@pytest.mark.slow
def test_bundle_trained_on_log10_predicts_in_litres_per_kg(tmp_path):
    """A real bundle on a VDss_Lombardo slice: outputs are 10**(model scale), in L/kg, and survive save/load."""
    from admet.bundle import load_bundle
    from admet.config import ModelConfig
    from admet.fit import prepare_task_data, train_bundle

    long = load_embedded(["VDss_Lombardo"])
    long = long[long["split"] == "train_val"].head(240)
    td = prepare_task_data(long)
    assert td.tasks[0].transform == "log10"
    assert np.nanmax(td.Y) < 3.0                              # labels are log10(L/kg) (raw max is 700)
    cfg = ModelConfig.build(model="mtnn", featurizer="morgan_count", hidden=(32,), epochs=6, patience=0,
                            ensemble=2, batch_size=64, seed=0)
    bundle = train_bundle(td, cfg, with_context=False)
    smiles = td.smiles[:40]
    out = bundle.predict_smiles(smiles)
    X_raw, valid = bundle.features.featurize(smiles)
    mu, sd = bundle.ensemble.predict(bundle.features.transform_matrix(X_raw[valid]))
    got = out.loc[out["status"] == "ok"]
    np.testing.assert_allclose(got["VDss_Lombardo"].to_numpy(float), 10 ** mu[:, 0], rtol=1e-6)
    np.testing.assert_allclose(got["VDss_Lombardo_std"].to_numpy(float),
                               np.log(10) * 10 ** mu[:, 0] * sd[:, 0], rtol=1e-6)
    lo, hi = got["VDss_Lombardo_lower"].to_numpy(float), got["VDss_Lombardo_upper"].to_numpy(float)
    assert (lo > 0).all() and (lo <= got["VDss_Lombardo"]).all() and (got["VDss_Lombardo"] <= hi).all()
    raw = long["value"].to_numpy(float)
    assert np.median(raw) / 10 < got["VDss_Lombardo"].median() < np.median(raw) * 10  # L/kg, not log10
    folder = bundle.save(tmp_path / "bundle")
    assert json.loads((folder / "bundle.json").read_text())["tasks"][0]["transform"] == "log10"
    again = load_bundle(folder).predict_smiles(smiles)
    np.testing.assert_allclose(again["VDss_Lombardo"].to_numpy(float), out["VDss_Lombardo"].to_numpy(float))
