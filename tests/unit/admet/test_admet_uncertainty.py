"""Split-conformal intervals and probability calibration on synthetic cases with known answers;
applicability-domain similarity against RDKit's own Tanimoto."""

import math

import numpy as np
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from admet.conformal import ConformalRegressor, ProbabilityCalibrator, conformal_quantile
from admet.domain import KNN, ApplicabilityDomain, morgan_on_bits


def test_conformal_quantile_is_the_finite_sample_rank():
    scores = np.arange(1, 10, dtype=float)          # n = 9
    assert conformal_quantile(scores, 0.9) == 9.0   # ceil(10 * 0.9) = 9th smallest
    assert conformal_quantile(scores, 0.5) == 5.0   # ceil(10 * 0.5) = 5th
    assert math.isinf(conformal_quantile(scores[:5], 0.9))  # too few for 90%


@pytest.mark.parametrize("method", ["absolute", "normalized", "auto"])
def test_conformal_intervals_cover_at_the_requested_level(method):
    rng = np.random.default_rng(0)

    def draw(n):
        sigma = rng.uniform(0.2, 2.0, n)            # heteroscedastic, and the model knows it
        mu = rng.normal(0, 3, n)
        return mu + rng.normal(0, sigma), mu, sigma

    y_cal, mu_cal, sd_cal = draw(2000)
    conf = ConformalRegressor.fit(y_cal, mu_cal, sd_cal, coverage=0.9, method=method)
    y, mu, sd = draw(50_000)
    lo, hi = conf.interval(mu, sd)
    coverage = np.mean((y >= lo) & (y <= hi))
    assert 0.88 <= coverage <= 0.92, coverage
    if method == "absolute":  # known answer: 90% quantile of |N(0, U(0.2, 2))|
        z = np.abs(rng.normal(0, rng.uniform(0.2, 2.0, 400_000)))
        assert conf.q == pytest.approx(np.quantile(z, 0.9), rel=0.06)
    if method == "auto":  # the spread is informative, so spread-normalised intervals are narrower
        assert conf.method in ("spread", "error_model")
    if method == "normalized":  # the older name of the spread-normalised score
        assert conf.method == "spread"
    assert ConformalRegressor.from_dict(conf.to_dict()) == conf


def test_uncalibrated_when_too_few_labels_gives_nan_interval():
    conf = ConformalRegressor.fit(np.ones(3), np.zeros(3), np.ones(3), coverage=0.9)
    assert not conf.calibrated
    lo, hi = conf.interval(np.zeros(2), np.ones(2))
    assert np.isnan(lo).all() and np.isnan(hi).all()


@pytest.mark.parametrize("n", [300, 3000])
def test_probability_calibration_repairs_overconfident_scores(n):
    rng = np.random.default_rng(1)
    true_p = rng.uniform(0.05, 0.95, n + 20000)
    y = (rng.random(len(true_p)) < true_p).astype(float)
    logit = np.log(true_p / (1 - true_p))
    raw = 1 / (1 + np.exp(-3 * logit))               # overconfident model
    cal = ProbabilityCalibrator.fit(y[:n], raw[:n])
    assert cal.method == "platt"  # strictly monotone at every size (isotonic merged distinct scores)
    p = cal.transform(raw[n:])

    def brier(q):
        return np.mean((q - y[n:]) ** 2)

    assert brier(p) < brier(raw[n:]) - 0.005
    assert np.abs(p - true_p[n:]).mean() < 0.05
    assert ProbabilityCalibrator.fit(np.ones(50), raw[:50]).method == "identity"  # one class


def test_domain_similarity_equals_rdkit_tanimoto_and_flags_outliers():
    train = ["CCOc1ccccc1C(=O)N", "CCN(CC)CCNC(=O)c1ccc(N)cc1", "Cc1ccc(S(=O)(=O)N)cc1", "c1ccc2[nH]ccc2c1",
             "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "O=C(O)c1ccccc1O", "CN1CCC[C@H]1c1cccnc1"]
    cal = ["CCOc1ccccc1C(=O)NC", "Cc1ccc(S(=O)(=O)NC)cc1", "CC(C)Cc1ccc(C(C)C(=O)OC)cc1"]
    ad = ApplicabilityDomain.fit(train, cal, percentile=5)
    queries = ["CCOc1ccccc1C(=O)N", "CCCCCCCCCCCCCCCCCC(=O)O", "not a smiles", "c1ccc2[nH]ccc2c1C"]
    sim = ad.max_similarity(queries)
    _, knn = ad.similarities_bits(morgan_on_bits(queries))
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    ref = [gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in train]
    for q, s, m in zip(queries, sim, knn):
        mol = Chem.MolFromSmiles(q)
        if mol is None:
            assert np.isnan(s) and np.isnan(m)
            continue
        tanimoto = sorted(DataStructs.BulkTanimotoSimilarity(gen.GetFingerprint(mol), ref))
        assert s == pytest.approx(tanimoto[-1], abs=1e-6)
        assert m == pytest.approx(np.mean(tanimoto[-KNN:]), abs=1e-6)  # mean of the KNN nearest
    assert sim[0] == pytest.approx(1.0)
    flags = ad.in_domain(sim)
    assert flags[0] and not flags[1]
    assert 0 < ad.threshold < 1


def test_domain_lookup_is_safe_from_many_threads_on_a_freshly_loaded_domain(tmp_path):
    """Screening's predict tasks share one loaded bundle on a thread pool; the first lookups race
    to unpack the reference (a CI run failed when one thread saw the matrix before its bit counts).
    The race is timing-dependent, so this cannot catch a regression on every run; it does check
    that concurrent first lookups all succeed and agree with a single-threaded lookup."""

    train = ["CCOc1ccccc1C(=O)N", "CCN(CC)CCNC(=O)c1ccc(N)cc1", "Cc1ccc(S(=O)(=O)N)cc1", "c1ccc2[nH]ccc2c1",
             "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "O=C(O)c1ccccc1O", "CN1CCC[C@H]1c1cccnc1"] * 1000
    queries = ["CCOc1ccccc1C(=O)N", "c1ccc2[nH]ccc2c1C", "CCCCCCCCCCCCCCCCCC(=O)O"]
    fitted = ApplicabilityDomain.fit(train, train[:3])
    fitted.save(tmp_path / "domain.npz")
    expected = fitted.max_similarity(queries)
    import sys

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to open the race window
    try:
        _run_domain_threads(tmp_path, queries, expected)
    finally:
        sys.setswitchinterval(old_interval)


def _run_domain_threads(tmp_path, queries, expected):
    import threading
    import time

    for _ in range(5):
        ad = ApplicabilityDomain.load(tmp_path / "domain.npz")
        n_threads = 8
        results: list = [None] * n_threads

        def work(i, ad=ad, results=results):
            try:
                results[i] = ad.max_similarity(queries)
            except Exception as exc:  # noqa: BLE001 - the assertion below names it
                results[i] = exc

        threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
        for t in threads:  # staggered, so some threads arrive while the first is still unpacking
            t.start()
            time.sleep(0.004)
        for t in threads:
            t.join()
        for r in results:
            assert not isinstance(r, Exception), repr(r)
            np.testing.assert_allclose(r, expected)
