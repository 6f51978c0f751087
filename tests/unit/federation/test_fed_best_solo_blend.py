"""Issue 10 §5: the best-solo reference stops early on the partner's own valid rows, the federated
blend chooses per endpoint on valid rows only (never test), the blend column is the expected one, and
the report carries best solo / federated NN / federated blend / pooled."""

from __future__ import annotations

import math

import numpy as np
import pytest

from admet.config import ModelConfig
from admet.tasks import TaskSpec
from federation import baselines, blend
from federation import report as report_mod
from federation.task import PartnerData

REG = TaskSpec("y", "regression", "u")
CLS = TaskSpec("c", "classification", "binary")


def _partner(n: int = 300, seed: int = 0, flip_valid: bool = False) -> PartnerData:
    """A linear regression target on 20 features plus a classification endpoint from its sign;
    ``flip_valid`` negates the valid fold's regression labels (a valid fold that disagrees with train)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 20)).astype(np.float32)
    w = rng.standard_normal(20)
    y = X @ w + 0.1 * rng.standard_normal(n)
    split = np.array(["train"] * int(0.6 * n) + ["valid"] * int(0.2 * n) + ["test"] * (n - int(0.6 * n) - int(0.2 * n)),
                     dtype=object)
    if flip_valid:
        y = np.where(split == "valid", -y, y)
    Y = np.column_stack([y, (X[:, 0] > 0).astype(float)])
    return PartnerData("p", X, Y, np.zeros(Y.shape, np.int8), [REG, CLS], split)


SMALL = ModelConfig.build(model="blend", hidden=(16,), epochs=80, patience=5, lgbm_n_estimators=300,
                          lgbm_min_child_samples=5, ensemble=1, seed=0)


def test_best_solo_stops_early_on_the_partners_valid_rows():
    good = baselines.best_solo(SMALL, _partner())
    bad = baselines.best_solo(SMALL, _partner(flip_valid=True))
    assert good.model is None  # models are not kept unless asked
    # the valid fold drives both parts: a valid fold with negated labels stops the net and the
    # regression booster almost at once; the agreeing one trains much longer (and still stops early)
    assert good.scores["best_epochs"][0] > bad.scores["best_epochs"][0]
    assert good.scores["tree_rounds"][0][0] > 5 * bad.scores["tree_rounds"][0][0]
    assert good.scores["tree_rounds"][0][0] < SMALL.lgbm_n_estimators
    assert good.scores["endpoints"]["y"] > 0.8
    assert set(good.trees) == {"valid", "test"} and good.trees["test"].shape == (60, 2)


def test_best_solo_net_weights_are_its_minimum_validation_loss_epoch():
    fit = baselines.best_solo(SMALL, _partner(seed=3, flip_valid=True), keep_model=True)
    member = fit.model.members[0].net
    losses = [h["valid_loss"] for h in member.history]
    assert member.best_epoch == int(np.argmin(losses)) + 1
    assert len(losses) == member.best_epoch + SMALL.patience < SMALL.epochs  # stopped `patience` epochs later
    # the weights kept are the best epoch's: their loss on the valid rows is the minimum seen
    from admet.losses import pos_weights
    from admet.train import evaluate_loss

    data = _partner(seed=3, flip_valid=True)
    v = data.rows("valid")
    Xv = fit.model.scaler.transform(data.X[v])
    Yv = member.target_scaler.transform(data.Y[v])
    pw = pos_weights(data.Y[data.rows("train")], member.model.is_classification.numpy())  # as fit_mtnn weighs
    assert evaluate_loss(member.model, Xv, Yv, data.censor[v], pw) == pytest.approx(min(losses), rel=1e-4, abs=1e-3)


def test_equal_blend_of_known_columns_falls_back_to_the_net():
    nn = np.array([[1.0, 0.2], [3.0, 0.4]])
    trees = np.array([[3.0, np.nan], [5.0, np.nan]])
    assert np.allclose(blend.equal_blend(nn, trees), [[2.0, 0.2], [4.0, 0.4]])
    cands = blend.candidates(nn, trees)
    choice = {"y": {"choice": blend.PRIVATE_TREES}, "c": {"choice": blend.EQUAL_BLEND}}
    assert np.allclose(blend.apply(cands, choice, [REG, CLS]), [[3.0, 0.2], [5.0, 0.4]])


def _fixed_predictions(data: PartnerData, seed: int = 0):
    """A net that is good on the regression endpoint and trees that are good on the classification one."""
    rng = np.random.default_rng(seed)
    out_nn, out_tr = {}, {}
    for fold in ("valid", "test"):
        Y = data.Y[data.rows(fold)]
        noise = rng.standard_normal(Y.shape)
        out_nn[fold] = np.column_stack([Y[:, 0] + 0.1 * noise[:, 0], rng.random(len(Y))])
        out_tr[fold] = np.column_stack([rng.standard_normal(len(Y)), 0.8 * Y[:, 1] + 0.1 * rng.random(len(Y))])
    return out_nn, out_tr


def test_choice_is_made_on_valid_and_never_reads_test_labels():
    data = _partner()
    nn, trees = _fixed_predictions(data)
    res = blend.blend_partner(data, nn, trees, rule="endpoint")
    assert res["choice"]["y"] in (blend.FED_NN, blend.EQUAL_BLEND)
    assert res["choice"]["c"] in (blend.PRIVATE_TREES, blend.EQUAL_BLEND)
    assert res["valid_scores"]["y"][blend.FED_NN] > res["valid_scores"]["y"][blend.PRIVATE_TREES]
    # permuting (and flipping) the test labels leaves the choice as it was; the test score moves
    shuffled = _partner()
    test = shuffled.rows("test")
    shuffled.Y[test] = shuffled.Y[test][np.random.default_rng(9).permutation(len(test))]
    shuffled.Y[test, 1] = 1 - shuffled.Y[test, 1]
    res2 = blend.blend_partner(shuffled, nn, trees, rule="endpoint")
    assert res2["choice"] == res["choice"] and res2["valid_scores"] == res["valid_scores"]
    assert res2["metric"] < res["metric"] - 0.3
    # swapping what is good on the valid fold does change the choice (the rule can fail)
    swapped = blend.blend_partner(data, trees, nn, rule="endpoint")
    assert swapped["valid_scores"]["y"][blend.PRIVATE_TREES] > swapped["valid_scores"]["y"][blend.FED_NN]
    assert swapped["choice"]["y"] != blend.FED_NN and swapped["choice"]["c"] != blend.PRIVATE_TREES


def test_the_default_rule_takes_the_equal_blend_everywhere_and_keeps_the_valid_scores():
    """The default rule (``equal``) makes no choice: every endpoint gets the mean of net and trees, even
    where the valid rows clearly favour one part; the valid scores are still computed for the report."""
    data = _partner()
    nn, trees = _fixed_predictions(data)
    res = blend.blend_partner(data, nn, trees)
    chosen = blend.blend_partner(data, nn, trees, rule="endpoint")
    assert blend.DEFAULT_BLEND_RULE == "equal"
    assert res["choice"] == {"y": blend.EQUAL_BLEND, "c": blend.EQUAL_BLEND}
    assert res["chosen_by"] == {"y": "rule", "c": "rule"} and res["valid_scores"] == chosen["valid_scores"]
    assert res["metric"] == res["test_by_option"][blend.EQUAL_BLEND]["metric"]
    # the valid rows favour the net on y (noise for trees): the per-endpoint rule takes it, and on test the
    # equal blend of a good and a noise column is worse there; the two rules really differ
    assert chosen["choice"]["y"] == blend.FED_NN and res["endpoints"]["y"] < chosen["endpoints"]["y"]
    # under the equal rule the extra options (private net, federated trees) have no place; an unknown rule fails
    with pytest.raises(ValueError, match="rule 'endpoint'"):
        blend.blend_partner(data, nn, trees, net=trees)
    with pytest.raises(ValueError, match="blend rule"):
        blend.blend_partner(data, nn, trees, rule="best")


def test_endpoint_the_valid_fold_cannot_score_falls_back_to_the_federated_nn():
    data = _partner()
    data.Y[data.rows("valid"), 1] = np.nan  # no valid labels for the classification endpoint
    nn, trees = _fixed_predictions(data)
    res = blend.blend_partner(data, nn, trees, rule="endpoint")
    assert res["choice"]["c"] == blend.FALLBACK == blend.FED_NN and res["valid_scores"]["c"] == {}
    assert res["chosen_by"] == {"y": "valid", "c": "nn"}
    # the scorable endpoint is still chosen on valid; the old rule is still there by name
    eq = blend.blend_partner(data, nn, trees, default=blend.RULE_OPTION["equal"], rule="endpoint")
    assert eq["choice"]["c"] == blend.EQUAL_BLEND and eq["chosen_by"]["c"] == "equal"
    assert eq["choice"]["y"] == res["choice"]["y"]


def test_report_has_best_solo_nn_blend_and_pooled_per_partner_and_endpoint():
    outcome = {"strategy": "fedavg", "heads": "private", "rounds": 2, "round_log": [],
               "tasks": [{"name": "y", "task_type": "regression"}, {"name": "c", "task_type": "classification"}],
               "partners": {"p0": {"metric": 0.60, "n-train": 40, "n-test": 9, "test.y": 0.5, "test.c": 0.7},
                            "p1": {"metric": 0.40, "n-train": 30, "n-test": 7, "test.y": 0.4}}}
    local = {"p0": {"metric": 0.55, "endpoints": {"y": 0.45, "c": 0.65}}, "p1": {"metric": 0.5, "endpoints": {"y": 0.5}}}
    pooled = {"p0": {"metric": 0.75, "endpoints": {"y": 0.7, "c": 0.8}}, "p1": {"metric": 0.6, "endpoints": {"y": 0.6}}}
    mixed = {"p0": {"metric": 0.65, "endpoints": {"y": 0.5, "c": 0.8}, "choice": {"y": "federated_nn", "c": "private_trees"}}}
    rep = report_mod.build_report(outcome, local, pooled, blend=mixed, references={"family": "blend"})
    p0, p1 = rep["partners"]
    assert (p0["best_solo"], p0["federated_nn"], p0["federated_blend"], p0["pooled"]) == (0.55, 0.60, 0.65, 0.75)
    assert p0["federated"] == 0.65 and p0["endpoints"]["c"]["blend_choice"] == "private_trees"
    assert p1["federated_blend"] is None and p1["federated"] == 0.40  # no blend: the net is the federated model
    assert p0["gap_closed"] == pytest.approx((0.65 - 0.55) / (0.75 - 0.55))
    s = rep["summary"]
    assert (s["n_improved"], s["n_scored"], s["nn"]["n_improved"]) == (1, 2, 1)
    assert s["median_relative_improvement"] == pytest.approx(np.median([0.1 / 0.55, -0.1 / 0.5]))
    ep = rep["per_endpoint"]["y"]
    assert ep["n_partners"] == 2 and ep["best_solo"] == pytest.approx(0.475) and ep["federated_blend"] == 0.5
    assert ep["choices"] == {"federated_nn": 1} and rep["references"] == {"family": "blend"}
    md = report_mod.markdown(rep)
    assert "| best solo | federated NN | federated blend | pooled |" in md
    assert not math.isnan(rep["summary"]["median_gap_closed"])


def test_pooled_reference_off_trains_no_pooled_model_and_leaves_its_columns_empty(tmp_path):
    from federation.config import FederatedConfig

    partners = [PartnerData(f"p{i}", *(lambda d: (d.X, d.Y, d.censor, d.tasks, d.split))(_partner(seed=i)))
                for i in range(2)]
    small = dict(out_dir=tmp_path, n_partners=2, hidden=(16,), solo_ensemble=1)
    off = baselines.run_baselines(FederatedConfig(**small, pooled_reference=False), partners, ensemble=1)
    assert off.pooled == {} and off.pooled_seconds == 0.0 and set(off.local) == {"p0", "p1"}
    on = baselines.run_baselines(FederatedConfig(**small), partners, ensemble=1)
    assert set(on.pooled) == {"p0", "p1"} and on.pooled_seconds > 0
    outcome = {"strategy": "fedavg", "heads": "private", "rounds": 1, "round_log": [],
               "tasks": [{"name": "y", "task_type": "regression"}, {"name": "c", "task_type": "classification"}],
               "partners": {p: {"metric": 0.6, "n-train": 180, "n-test": 60} for p in ("p0", "p1")}}
    rep = report_mod.build_report(outcome, off.local, off.pooled)
    assert all(p["pooled"] is None and p["gap_closed"] is None for p in rep["partners"])
    assert rep["summary"]["n_scored"] == 2  # best solo and federated are still compared
