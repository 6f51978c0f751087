"""Update validation and aggregation rules on arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from federation.aggregation import AdamServerOptimizer, aggregate, robust_z, trimmed_mean, validate_updates


def _honest(rng, reference, n, spread=0.05):
    return [(f"partner_{i:02d}", {k: v + spread * rng.standard_normal(v.shape).astype(v.dtype)
                                  for k, v in reference.items()}) for i in range(n)]


@pytest.fixture
def reference():
    rng = np.random.default_rng(0)
    return {"trunk.0": rng.standard_normal((8, 4)).astype(np.float32),
            "trunk.1": rng.standard_normal(4).astype(np.float32)}


def test_nan_update_is_rejected_and_partner_named(reference):
    rng = np.random.default_rng(1)
    updates = _honest(rng, reference, 5)
    updates[3][1]["trunk.1"][2] = np.nan
    outcome = validate_updates(4, reference, updates)
    assert [r.partner for r in outcome.rejections] == ["partner_03"]
    assert outcome.rejections[0].reason.startswith("non_finite")
    assert outcome.rejections[0].round == 4
    assert 3 not in outcome.accepted and len(outcome.accepted) == 4


def test_wrong_shape_and_keys_are_rejected(reference):
    rng = np.random.default_rng(2)
    updates = _honest(rng, reference, 5)
    updates[0][1]["trunk.0"] = np.zeros((4, 8), np.float32)
    del updates[1][1]["trunk.1"]
    outcome = validate_updates(1, reference, updates)
    reasons = {r.partner: r.reason for r in outcome.rejections}
    assert reasons["partner_00"].startswith("wrong_shape")
    assert reasons["partner_01"].startswith("wrong_keys")
    assert sorted(outcome.accepted) == [2, 3, 4]


def test_norm_outliers_rejected_honest_kept(reference):
    rng = np.random.default_rng(3)
    updates = _honest(rng, reference, 10)
    for i in (7, 9):  # sign-flipped and scaled around the reference
        updates[i] = (updates[i][0], {k: reference[k] - 5 * (v - reference[k]) for k, v in updates[i][1].items()})
    outcome = validate_updates(2, reference, updates)
    assert sorted(r.partner for r in outcome.rejections) == ["partner_07", "partner_09"]
    assert all(r.reason.startswith("norm_outlier") for r in outcome.rejections)
    assert sorted(outcome.accepted) == [0, 1, 2, 3, 4, 5, 6, 8]
    off = validate_updates(2, reference, updates, check_norms=False)
    assert off.rejections == [] and len(off.accepted) == 10


def test_norm_check_needs_enough_updates(reference):
    rng = np.random.default_rng(4)
    updates = _honest(rng, reference, 3)
    updates[0] = (updates[0][0], {k: v * 100 for k, v in updates[0][1].items()})
    assert len(validate_updates(1, reference, updates, min_for_norm_check=4).accepted) == 3


def test_weighted_mean_median_trimmed_known_answers():
    ups = [{"w": np.array([1.0, 10.0])}, {"w": np.array([2.0, 20.0])}, {"w": np.array([3.0, 300.0])}]
    mean = aggregate(ups, [1, 1, 2], method="mean")["w"]
    np.testing.assert_allclose(mean, [(1 + 2 + 6) / 4, (10 + 20 + 600) / 4])
    np.testing.assert_allclose(aggregate(ups, method="median")["w"], [2.0, 20.0])
    stack = np.array([[1.0], [2.0], [3.0], [4.0], [100.0]])
    np.testing.assert_allclose(trimmed_mean(stack, 0.2), [3.0])
    np.testing.assert_allclose(trimmed_mean(stack, 0.0), [22.0])


def test_key_weights_let_owners_decide_a_head():
    ups = [{"trunk.0": np.array([0.0]), "head.a.bias": np.array([5.0])},
           {"trunk.0": np.array([2.0]), "head.a.bias": np.array([-99.0])}]
    out = aggregate(ups, [1, 1], method="mean", key_weights={"head.a.bias": [10.0, 0.0]})
    np.testing.assert_allclose(out["trunk.0"], [1.0])
    np.testing.assert_allclose(out["head.a.bias"], [5.0])


def test_robust_z_flags_only_the_outlier():
    z = robust_z(np.array([1.0, 1.1, 0.9, 1.05, 0.95, 8.0]))
    assert z[-1] > 10 and np.all(np.abs(z[:-1]) < 2)


def test_fedadam_moves_towards_the_aggregate():
    opt = AdamServerOptimizer(eta=0.1, beta_1=0.0, beta_2=0.0, tau=1e-9)
    cur = {"w": np.array([0.0, 0.0], np.float32)}
    new = opt.step(cur, {"w": np.array([1.0, -3.0], np.float32)})
    np.testing.assert_allclose(new["w"], [0.1, -0.1], rtol=1e-5)


#: Round 3 of the 20-partner catalog run (bench/results/federation_best_solo_full_s4.json): each partner's
#: update norm and its training compounds. partner_14 is honest (the largest partner), not an attacker.
CATALOG_ROUND_3 = {
    "partner_00": (5.57, 905), "partner_01": (11.0, 4370), "partner_02": (6.57, 1349), "partner_03": (7.78, 1873),
    "partner_04": (2.54, 310), "partner_05": (7.63, 2011), "partner_06": (5.3, 865), "partner_07": (1.6, 120),
    "partner_08": (7.46, 1795), "partner_09": (6.92, 1497), "partner_10": (7.74, 1805), "partner_11": (12.89, 6238),
    "partner_12": (4.58, 702), "partner_13": (12.13, 5344), "partner_14": (16.85, 10125), "partner_15": (1.67, 126),
    "partner_16": (1.5, 84), "partner_17": (3.33, 300), "partner_18": (4.29, 603), "partner_19": (5.69, 986),
}


def _scaled_updates(norms: dict[str, float]):
    """Updates of exactly the given norms (one direction each) around a zero reference."""
    rng = np.random.default_rng(7)
    reference = {"w": np.zeros(16)}
    updates = []
    for partner, norm in norms.items():
        direction = rng.standard_normal(16)
        updates.append((partner, {"w": direction / np.linalg.norm(direction) * norm}))
    return reference, updates


def test_norm_check_scales_by_local_steps_so_the_largest_honest_partner_passes():
    norms = {p: n for p, (n, _) in CATALOG_ROUND_3.items()}
    steps = [np.ceil(size / 64) for _, size in CATALOG_ROUND_3.values()]
    reference, updates = _scaled_updates(norms)
    raw = validate_updates(3, reference, updates)
    assert [r.partner for r in raw.rejections] == ["partner_14"]  # the unscaled check rejected it
    scaled = validate_updates(3, reference, updates, steps=steps)
    assert scaled.rejections == [] and len(scaled.accepted) == 20
    # an attacker scaling its update x5 is still caught, a mid-sized one and the largest one alike
    for attacker in ("partner_08", "partner_14"):
        poisoned = {**norms, attacker: 5 * norms[attacker]}
        reference, updates = _scaled_updates(poisoned)
        outcome = validate_updates(3, reference, updates, steps=steps)
        assert [r.partner for r in outcome.rejections] == [attacker]
        assert "sqrt(local steps)" in outcome.rejections[0].reason
