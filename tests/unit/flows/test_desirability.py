"""Desirability profiles: TOML parsing, range scoring, combination, expected desirability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flows.desirability import (
    DEFAULT_PROFILE,
    DesirabilityProfile,
    EndpointRule,
    expected_desirability,
    load_profile,
    score_predictions,
)
from pipelines.catalog import load_catalog
from pipelines.errors import InputError


def test_default_profile_covers_only_catalog_endpoints():
    profile = load_profile()
    assert set(profile.endpoints) <= set(load_catalog()["endpoint"])
    assert len(profile.endpoints) >= 5
    assert load_profile(DEFAULT_PROFILE) == profile


def test_range_rule_ramps_linearly_outside_the_range():
    rule = EndpointRule(low=1.0, high=2.0, soft=0.5)
    d = rule.desirability(np.array([0.0, 0.75, 1.0, 1.5, 2.0, 2.25, 3.0, np.nan]))
    np.testing.assert_allclose(d[:7], [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0])
    assert np.isnan(d[7])


def test_score_is_weighted_mean_and_ranks_the_obvious_order():
    profile = DesirabilityProfile(
        endpoints={"a": EndpointRule(high=1.0, soft=1.0, weight=3.0), "b": EndpointRule(low=0.0, soft=1.0, weight=1.0)}
    )
    preds = pd.DataFrame({"a": [0.0, 1.5, 5.0, np.nan], "b": [1.0, 1.0, -5.0, -0.5], "other": [9, 9, 9, 9]})
    scored = score_predictions(preds, profile)
    np.testing.assert_allclose(scored["d_a"][:3], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(scored["score"], [1.0, (3 * 0.5 + 1) / 4, 0.0, 0.5])


def test_geometric_combination_is_zero_when_one_endpoint_fails():
    profile = DesirabilityProfile(
        combine="geometric",
        endpoints={"a": EndpointRule(high=1.0, soft=1.0), "b": EndpointRule(low=0.0, soft=1.0)},
    )
    scored = score_predictions(pd.DataFrame({"a": [0.0, 9.0], "b": [0.5, 0.5]}), profile)
    assert scored["score"][0] == pytest.approx(1.0)
    assert scored["score"][1] < 0.01


def test_profile_without_common_endpoint_is_an_input_error():
    with pytest.raises(InputError, match="no endpoint in common"):
        score_predictions(pd.DataFrame({"x": [1.0]}), load_profile())


@pytest.mark.parametrize(
    "text, problem",
    [
        ("name = 'x'\n[endpoints.a]\nlow = 2\nhigh = 1\n", "above high"),
        ("name = 'x'\n[endpoints.a]\nweight = 1\n", "at least one of low / high"),
        ("name = 'x'\nendpoints = {}\n", "no endpoints"),
        ("name = 'x\n", "not valid TOML"),
        ("name = 'x'\n[endpoints.a]\nlow = 1\nsoft = -1\n", "soft"),
    ],
)
def test_bad_profiles_name_the_problem(tmp_path, text, problem):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=problem):
        load_profile(path)


def test_missing_profile_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_profile(tmp_path / "nope.toml")


def test_expected_desirability_matches_monte_carlo_and_point_value():
    rule = EndpointRule(low=0.0, high=1.0, soft=0.5)
    mean = np.array([0.5, 1.2, -3.0, 1.0])
    std = np.array([0.0, 0.3, 0.1, 0.4])
    expected = expected_desirability(rule, mean, std)
    assert expected[0] == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    draws = mean[:, None] + std[:, None] * rng.standard_normal((4, 200_000))
    mc = rule.desirability(draws.ravel()).reshape(draws.shape).mean(axis=1)
    np.testing.assert_allclose(expected, mc, atol=5e-3)


def test_expected_score_breaks_ties_by_distance_from_the_edge():
    from flows.desirability import expected_score

    profile = DesirabilityProfile(endpoints={"a": EndpointRule(high=1.0, soft=1.0)})
    preds = pd.DataFrame({"a": [0.0, 0.9, 0.9], "a_std": [0.3, 0.3, 0.0]})
    plain = score_predictions(preds, profile)["score"].to_numpy()
    expected = expected_score(preds, profile)
    np.testing.assert_allclose(plain, [1.0, 1.0, 1.0])
    assert expected[0] > expected[1] and expected[2] == pytest.approx(1.0)


def test_a_one_member_model_gets_its_spread_from_the_conformal_interval():
    from scipy.stats import norm

    from flows.desirability import expected_score, predictive_sigma

    # std 0 (one member) but a 90% interval of width 2 * 1.645 * 0.5 -> sigma 0.5; a wider ensemble spread wins
    preds = pd.DataFrame({"a": [0.9, 0.9, 0.9], "a_std": [0.0, 0.8, np.nan],
                          "a_lower": [0.9 - 1.645 * 0.5, 0.9 - 1.645 * 0.5, np.nan],
                          "a_upper": [0.9 + 1.645 * 0.5, 0.9 + 1.645 * 0.5, np.nan]})
    sigma = predictive_sigma(preds, "a", coverage=0.9)
    np.testing.assert_allclose(sigma, [0.5 * 1.645 / norm.ppf(0.95), 0.8, 0.0], rtol=1e-6)
    profile = DesirabilityProfile(endpoints={"a": EndpointRule(high=1.0, soft=1.0)})
    expected = expected_score(preds, profile)
    assert expected[2] == pytest.approx(1.0) and expected[0] < 1.0 and expected[1] < expected[0]
    # a 50% interval of the same width implies a larger sigma than a 90% one
    assert predictive_sigma(preds, "a", coverage=0.5)[0] > sigma[0]
