"""Featurizer registry, spec parsing, shapes and NaN rows for invalid input."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.catalog import load_embedded
from pipelines.errors import InputError
from pipelines.featurize import (
    FeatureMatrix,
    available_featurizers,
    featurize_smiles,
    get_featurizer,
    parse_spec,
)
from pipelines.featurize.fingerprints import MorganCountFeaturizer

RDKIT_FEATURIZERS = {"morgan_count": 2048, "morgan_bits": 2048, "maccs": 167, "rdkit2d": 217,
                     "rdkit2d_fast": 112}
BAD_INPUTS = ["", "   ", "C1CC", "not a molecule", None, 3.5, "C(C)(C)(C)(C)C", "c1ccccc"]


@pytest.fixture(scope="module")
def embedded_smiles() -> list[str]:
    smiles = load_embedded(["solubility"])["smiles"].drop_duplicates()
    return smiles.iloc[:40].tolist()


def test_registry_lists_every_required_featurizer():
    names = available_featurizers()
    for required in ["morgan_count", "morgan_bits", "rdkit2d", "maccs",
                     "dc_circular", "dc_rdkit_descriptors", "dc_molgraphconv"]:
        assert required in names
    assert names == sorted(names)


def test_unknown_featurizer_is_a_clear_input_error():
    with pytest.raises(InputError, match="unknown featurizer 'ecfp99'.*morgan_count"):
        get_featurizer("ecfp99")


@pytest.mark.parametrize(
    ("spec", "message"),
    [("", "empty"), ("morgan_count++rdkit2d", "empty name"), ("maccs+maccs", "more than once"),
     ("morgan_count+nope", "unknown featurizer")],
)
def test_bad_specs_are_rejected(spec, message):
    with pytest.raises(InputError, match=message):
        parse_spec(spec)


def test_spec_parsing_keeps_order():
    assert parse_spec(" rdkit2d + morgan_count ") == ("rdkit2d", "morgan_count")


def test_config_identifies_the_output():
    default, wider = MorganCountFeaturizer(), MorganCountFeaturizer(radius=3, n_bits=1024)
    assert default.config()["params"] == {"radius": 2, "n_bits": 2048}
    assert default.config_hash() == MorganCountFeaturizer().config_hash()
    assert default.config_hash() != wider.config_hash()
    assert "rdkit" in default.config()["versions"]


@pytest.mark.parametrize("name", sorted(RDKIT_FEATURIZERS))
def test_shapes_and_dtype(name, embedded_smiles):
    fm = featurize_smiles(embedded_smiles, spec=name, n_jobs=1)
    assert isinstance(fm, FeatureMatrix)
    assert fm.X.shape == (len(embedded_smiles), RDKIT_FEATURIZERS[name])
    assert fm.X.dtype == np.float32 and fm.valid.dtype == bool
    assert fm.valid.all()
    assert len(fm.feature_names) == fm.X.shape[1]
    assert fm.config["featurizers"][0]["name"] == name
    # real features, not zero rows
    assert (np.nansum(np.abs(fm.X), axis=1) > 0).all()


def test_combined_spec_concatenates_columns_in_order(embedded_smiles):
    combined = featurize_smiles(embedded_smiles[:10], spec="maccs+morgan_bits", n_jobs=1)
    maccs = featurize_smiles(embedded_smiles[:10], spec="maccs", n_jobs=1)
    bits = featurize_smiles(embedded_smiles[:10], spec="morgan_bits", n_jobs=1)
    np.testing.assert_array_equal(combined.X, np.hstack([maccs.X, bits.X]))
    assert combined.feature_names[0] == "maccs:maccs_0"
    assert combined.config["n_features"] == 167 + 2048


def test_invalid_molecules_give_nan_rows_aligned_with_input(embedded_smiles):
    good = embedded_smiles[:4]
    mixed = [good[0], *BAD_INPUTS[:4], good[1], *BAD_INPUTS[4:], good[2], good[3]]
    fm = featurize_smiles(mixed, spec="morgan_count+rdkit2d", n_jobs=1)
    expected_valid = [isinstance(s, str) and s in good for s in mixed]
    assert fm.valid.tolist() == expected_valid
    assert np.isnan(fm.X[~fm.valid]).all()
    reference = featurize_smiles(good, spec="morgan_count+rdkit2d", n_jobs=1)
    np.testing.assert_array_equal(fm.X[fm.valid], reference.X)


def test_a_single_string_is_not_a_list():
    with pytest.raises(InputError, match="single string"):
        featurize_smiles("CCO", spec="maccs")


def test_empty_input_gives_an_empty_matrix():
    fm = featurize_smiles([], spec="morgan_count+maccs", n_jobs=1)
    assert fm.X.shape == (0, 2048 + 167)
    assert fm.valid.shape == (0,)
