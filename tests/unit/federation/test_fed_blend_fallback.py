"""The federated blend's consortium fallback (``federation.blend``): an endpoint a partner's own valid
rows cannot score takes the option that won on the other partners' valid rows, never reads test labels,
and is the federated NN where nobody can score the endpoint on valid rows."""

from __future__ import annotations

import numpy as np
import pytest

from admet.tasks import TaskSpec
from federation import blend
from federation.config import FederatedConfig
from federation.task import PartnerData
from pipelines.errors import InputError

REG = TaskSpec("y", "regression", "u")
CLS = TaskSpec("c", "classification", "binary")


def _partner(name: str, seed: int, n: int = 200) -> PartnerData:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4)).astype(np.float32)
    y = X @ rng.standard_normal(4)
    Y = np.column_stack([y, (X[:, 0] > 0).astype(float)])
    split = np.array(["train"] * (n // 2) + ["valid"] * (n // 4) + ["test"] * (n - n // 2 - n // 4), dtype=object)
    Y[split == "valid", 1] = np.nan  # nobody can score "c" on valid rows
    return PartnerData(name, X, Y, np.zeros(Y.shape, np.int8), [REG, CLS], split)


def _predictions(data: PartnerData, seed: int):
    """Trees that track both endpoints, a net that is noise: trees win wherever they can be scored."""
    rng = np.random.default_rng(seed)
    nn, trees = {}, {}
    for fold in ("valid", "test"):
        Y = np.nan_to_num(data.Y[data.rows(fold)])
        nn[fold] = rng.standard_normal(Y.shape)
        trees[fold] = Y + 0.05 * rng.standard_normal(Y.shape)
    return nn, trees


def _consortium():
    partners = [_partner(f"p{i}", i) for i in range(3)]
    partners[2].Y[partners[2].rows("valid"), 0] = np.nan  # p2 cannot score "y" on its valid rows
    preds = {d.partner: _predictions(d, 10 + i) for i, d in enumerate(partners)}
    return partners, {k: v[0] for k, v in preds.items()}, {k: v[1] for k, v in preds.items()}


def test_consortium_fallback_takes_what_won_on_the_other_partners_valid_rows():
    partners, nn, trees = _consortium()
    votes = blend.partner_votes(partners, nn, trees)
    assert votes == {"p0": {"y": blend.PRIVATE_TREES}, "p1": {"y": blend.PRIVATE_TREES}, "p2": {}}
    out, cons = blend.blend_consortium(partners, nn, trees, fallback="consortium", rule="endpoint")
    assert cons["y"] == {"choice": blend.PRIVATE_TREES, "votes": {blend.PRIVATE_TREES: 2}}
    assert out["p2"]["choice"]["y"] == blend.PRIVATE_TREES and out["p2"]["chosen_by"]["y"] == "consortium"
    assert out["p0"]["chosen_by"]["y"] == "valid"
    # the equal rule on the same predictions keeps the old behaviour; the nn rule (default) takes the net
    eq, none = blend.blend_consortium(partners, nn, trees, fallback="equal", rule="endpoint")
    assert none == {} and eq["p2"]["choice"]["y"] == blend.EQUAL_BLEND and eq["p2"]["chosen_by"]["y"] == "equal"
    net, none = blend.blend_consortium(partners, nn, trees, rule="endpoint")
    assert none == {} and net["p2"]["choice"]["y"] == blend.FED_NN and net["p2"]["chosen_by"]["y"] == "nn"
    assert net["p0"]["choice"] == out["p0"]["choice"]  # scorable endpoints: the same valid-row choice
    # the fallback follows the votes: swap the two (the net is now the good one), p2 takes the net
    out2, cons2 = blend.blend_consortium(partners, trees, nn, fallback="consortium", rule="endpoint")
    assert cons2["y"]["votes"] == {blend.FED_NN: 2} and out2["p2"]["choice"]["y"] == blend.FED_NN
    # either way p2 gets the predictor that tracks "y" (the same columns), the equal blend only half of it
    assert out["p2"]["endpoints"]["y"] == out2["p2"]["endpoints"]["y"] > 0.95
    assert out["p2"]["endpoints"]["y"] > eq["p2"]["endpoints"]["y"]
    assert out["p2"]["test_by_option"][blend.FED_NN]["endpoints"]["y"] < 0.5  # the noise net


def test_nobody_can_score_on_valid_gives_the_federated_nn():
    partners, nn, trees = _consortium()
    out, cons = blend.blend_consortium(partners, nn, trees, fallback="consortium", rule="endpoint")
    assert cons["c"] == {"choice": blend.FED_NN, "votes": {}}
    assert all(r["choice"]["c"] == blend.FED_NN and r["chosen_by"]["c"] == "consortium" for r in out.values())


def test_ties_and_counts():
    votes = {"a": {"e": blend.PRIVATE_TREES}, "b": {"e": blend.EQUAL_BLEND}, "c": {"e": blend.EQUAL_BLEND, "f": blend.PRIVATE_TREES},
             "d": {"f": blend.FED_NN}}
    got = blend.consortium_fallback(votes, ["e", "f", "g"])
    assert got["e"]["choice"] == blend.EQUAL_BLEND and got["e"]["votes"] == {blend.PRIVATE_TREES: 1, blend.EQUAL_BLEND: 2}
    assert got["f"]["choice"] == blend.FED_NN  # a 1-1 tie goes to the net (CONSORTIUM_ORDER)
    assert got["g"] == {"choice": blend.FED_NN, "votes": {}}


def test_consortium_choice_never_reads_test_labels():
    partners, nn, trees = _consortium()
    out, cons = blend.blend_consortium(partners, nn, trees, fallback="consortium", rule="endpoint")
    rng = np.random.default_rng(5)
    for d in partners:
        test = d.rows("test")
        d.Y[test] = d.Y[test][rng.permutation(len(test))]
        d.Y[test, 1] = 1 - d.Y[test, 1]
    out2, cons2 = blend.blend_consortium(partners, nn, trees, fallback="consortium", rule="endpoint")
    assert cons2 == cons
    for p in out:
        assert out2[p]["choice"] == out[p]["choice"] and out2[p]["valid_scores"] == out[p]["valid_scores"]
    assert out2["p2"]["endpoints"]["y"] < out["p2"]["endpoints"]["y"] - 0.5  # the test score did move


def test_config_switch_is_validated(tmp_path):
    assert FederatedConfig(out_dir=tmp_path).blend_fallback == "nn" == blend.DEFAULT_FALLBACK_RULE
    assert FederatedConfig(out_dir=tmp_path, blend_fallback="consortium").to_run_config()["blend-fallback"] == "consortium"
    from federation.config import BLEND_FALLBACKS

    assert BLEND_FALLBACKS == blend.FALLBACK_RULES
    with pytest.raises(InputError, match="blend fallback"):
        FederatedConfig(out_dir=tmp_path, blend_fallback="net")
    with pytest.raises(ValueError, match="blend fallback"):
        blend.blend_consortium([], {}, {}, fallback="net")


def test_blend_rule_config_default_and_refusals(tmp_path):
    from federation.config import BLEND_RULES

    assert BLEND_RULES == blend.BLEND_RULES and FederatedConfig(out_dir=tmp_path).blend_rule == blend.DEFAULT_BLEND_RULE
    assert FederatedConfig(out_dir=tmp_path, blend_rule="endpoint").to_run_config()["blend-rule"] == "endpoint"
    with pytest.raises(InputError, match="blend rule"):
        FederatedConfig(out_dir=tmp_path, blend_rule="best")
    with pytest.raises(InputError, match="--blend-rule endpoint"):
        FederatedConfig(out_dir=tmp_path, blend_private_net=True)
    FederatedConfig(out_dir=tmp_path, blend_private_net=True, blend_rule="endpoint")


def test_consortium_fallback_is_not_consulted_under_the_equal_rule():
    partners, nn, trees = _consortium()
    out, cons = blend.blend_consortium(partners, nn, trees, fallback="consortium")
    assert cons == {} and all(set(r["choice"].values()) == {blend.EQUAL_BLEND} for r in out.values())
