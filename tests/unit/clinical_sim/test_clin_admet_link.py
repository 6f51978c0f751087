"""The ADMET link with a real (small) admet bundle trained on embedded data."""

import numpy as np
import pytest
from clin_synthetic import make_trials

from clinical_sim.admet_link import compound_pk, load_admet, pk_from_admet, predict_drugs
from clinical_sim.features import FeatureConfig, TrialFeaturizer
from clinical_sim.trial_table import parse_trials
from pipelines.errors import InputError

ENDPOINTS = ["HLM_CLint", "hPPB", "bioavailability", "toxcast_clean"]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    from admet.config import ModelConfig
    from admet.fit import prepare_task_data, train_bundle
    from pipelines.catalog import load_embedded

    long = load_embedded(ENDPOINTS)
    long = long.sample(frac=1.0, random_state=0).groupby("endpoint").head(150)
    td = prepare_task_data(long)
    cfg = ModelConfig(model="lgbm", ensemble=1, lgbm_n_estimators=40)
    bundle = train_bundle(td, cfg, n_jobs=1, with_context=False)
    out = tmp_path_factory.mktemp("admet_bundle")
    bundle.save(out)
    return out


@pytest.mark.slow
def test_pk_and_features_from_a_real_bundle(bundle_dir):
    predictor = load_admet(bundle_dir)
    pk, values = compound_pk(predictor, "CC(=O)Nc1ccc(O)cc1")
    from pipelines.catalog import resolve_endpoints

    assert set(resolve_endpoints(ENDPOINTS)) <= set(values)  # "bioavailability" is Bioavailability_Ma's alias
    assert pk.f != pk_from_admet({k: v for k, v in values.items() if k != "Bioavailability_Ma"}).f
    assert pk.cl_l_h > 0 and pk.v_l > 0 and 0 < pk.f <= 1 and 0 <= pk.tox_risk <= 1
    with pytest.raises(InputError, match="cannot be parsed"):
        compound_pk(predictor, "not a smiles")
    table = predict_drugs(predictor, ["CCO", "not a smiles", "CCO"])
    assert list(table.index) == ["CCO", "not a smiles"]
    assert np.isnan(table.loc["not a smiles", "hPPB"]) and np.isfinite(table.loc["CCO", "hPPB"])

    trials = parse_trials(make_trials(40, seed=3), require_label=True).usable
    feat = TrialFeaturizer(FeatureConfig(fp_bits=16, text_components=2, disease_components=0), admet=predictor)
    X = feat.fit_transform(trials, trials["label"].to_numpy().astype(int))
    admet_cols = [c for c in X.columns if c.startswith("admet_")]
    assert any("pk_log_cl_l_h" in c for c in admet_cols) and any("toxcast_clean" in c for c in admet_cols)
    assert np.isfinite(X[admet_cols].to_numpy()).mean() > 0.9
    np.testing.assert_allclose(feat.transform(trials)[admet_cols].to_numpy(), X[admet_cols].to_numpy())


def test_missing_bundle_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_admet(tmp_path / "nope")
