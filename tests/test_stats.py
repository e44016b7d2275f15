"""Paired differences and t-intervals (meanfield.stats) against hand computations and scipy."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from meanfield._validate import INPUT_ERRORS
from meanfield.stats import holm, mean_ci, paired_comparisons, paired_difference, trained_counts


def test_paired_difference_by_hand():
    # differences 1, 2, 3, 6: mean 3, sd √(14/3), t_{0.975, 3} = 3.182446305284263
    iv = paired_difference([1.5, 2.0, 4.0, 6.5], [0.5, 0.0, 1.0, 0.5])
    half = 3.182446305284263 * math.sqrt(14 / 3) / 2
    assert iv.n == 4 and iv.mean == pytest.approx(3.0, abs=1e-15)
    assert iv.sd == pytest.approx(math.sqrt(14 / 3), rel=1e-14)
    assert (iv.low, iv.high) == pytest.approx((3 - half, 3 + half), rel=1e-12)


def test_clear_follows_the_interval():
    iv = paired_difference([1.5, 2.0, 4.0, 6.5], [0.5, 0.0, 1.0, 0.5])
    assert iv.low < 0 < iv.high and not iv.clear
    assert paired_difference([1.0, 1.1, 0.9], [0.0, 0.0, 0.0]).clear
    assert paired_difference([0.0, 0.0, 0.0], [1.0, 1.1, 0.9]).clear


def test_against_scipy_ttest_rel():
    rng = np.random.default_rng(0)
    for n, conf in ((3, 0.95), (5, 0.9), (12, 0.99)):
        a = rng.normal(0.8, 0.05, n)
        b = a - rng.normal(0.02, 0.03, n)
        iv = paired_difference(a, b, confidence=conf)
        ref = st.ttest_rel(a, b).confidence_interval(conf)
        assert (iv.low, iv.high) == pytest.approx((ref.low, ref.high), rel=1e-12)
        assert iv.mean == pytest.approx(np.mean(a - b), rel=1e-12)


def test_mean_ci_small_samples():
    assert mean_ci([0.7]).n == 1 and math.isnan(mean_ci([0.7]).low)
    assert mean_ci([]).n == 0 and math.isnan(mean_ci([]).mean)
    iv = mean_ci([0.1, 0.1, 0.1])
    assert (iv.low, iv.high) == pytest.approx((0.1, 0.1), abs=1e-15)


def test_paired_comparisons_pairs_on_seed_and_cell():
    rows = []
    for depth in (20, 30):
        for seed in range(3):
            for method, base in (("snip", 0.7), ("random", 0.8)):
                rows.append(dict(method=method, depth=depth, seed=seed,
                                 test_accuracy=base + 0.01 * seed + (0.1 if depth == 30 else 0)))
    rows.append(dict(method="snip", depth=20, seed=9, test_accuracy=0.0))  # no partner: left out
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=1)  # order does not matter
    out = paired_comparisons(df, {"method": "random"}, {"method": "snip"},
                             match=["depth", "seed"], by=["depth"])
    assert list(out.depth) == [20, 30] and list(out.n) == [3, 3]
    np.testing.assert_allclose(out["mean"], [0.1, 0.1], atol=1e-12)
    assert out.clear.all()  # differences all exactly 0.1: sd 0, interval a point
    pooled = paired_comparisons(df, {"method": "random"}, {"method": "snip"},
                                match=["depth", "seed"])
    # the unit is the seed: 6 pairs, 3 independent replicates
    assert pooled.n.iloc[0] == 3 and pooled.pairs.iloc[0] == 6


def test_paired_comparisons_matches_paired_difference():
    rng = np.random.default_rng(2)
    acc_a, acc_b = rng.uniform(0.5, 0.9, 5), rng.uniform(0.5, 0.9, 5)
    df = pd.DataFrame({"arm": ["a"] * 5 + ["b"] * 5, "seed": list(range(5)) * 2,
                       "test_accuracy": np.r_[acc_a, acc_b]})
    out = paired_comparisons(df, {"arm": "a"}, {"arm": "b"}, match=["seed"])
    iv = paired_difference(acc_a, acc_b)
    assert (out.ci_low.iloc[0], out.ci_high.iloc[0]) == pytest.approx((iv.low, iv.high), rel=1e-12)


def test_the_p_value_is_the_t_test_s():
    rng = np.random.default_rng(3)
    for n in (2, 3, 10):
        x = rng.normal(0.01, 0.02, n)
        assert mean_ci(x).p == pytest.approx(st.ttest_1samp(x, 0.0).pvalue, rel=1e-10)
    assert mean_ci([0.1, 0.1]).p == 0.0 and mean_ci([0.0, 0.0]).p == 1.0


def test_seed_level_pooling_averages_the_cells_of_a_seed_first():
    """Over cells, the interval is the one-sample t-interval of the per-seed mean differences
    (computed here by hand with scipy), not of the pooled pairs."""
    rng = np.random.default_rng(4)
    rows = []
    for seed in range(4):
        shift = rng.normal(0, 0.05)            # a seed effect shared by the seed's cells
        for cell in range(5):
            base = rng.uniform(0.5, 0.9)
            rows += [dict(arm="a", cell=cell, seed=seed, test_accuracy=base + shift),
                     dict(arm="b", cell=cell, seed=seed, test_accuracy=base)]
    df = pd.DataFrame(rows)
    out = paired_comparisons(df, {"arm": "a"}, {"arm": "b"}, match=["cell", "seed"]).iloc[0]
    per_seed = (df[df.arm == "a"].groupby("seed").test_accuracy.mean()
                - df[df.arm == "b"].groupby("seed").test_accuracy.mean()).to_numpy()
    ref = st.ttest_1samp(per_seed, 0.0)
    ci = ref.confidence_interval(0.95)
    assert (out.n, out.pairs) == (4, 20)
    assert (out.ci_low, out.ci_high, out.p) == pytest.approx((ci.low, ci.high, ref.pvalue), rel=1e-10)


def test_seed_level_intervals_cover_where_pooled_ones_do_not():
    """The reason for the seed as unit: 3 seeds × 12 cells whose differences share a seed effect
    as large as the noise (SD 1 each, true difference 0). Over 400 simulated studies (fixed
    seed) the seed-level 95 % interval covers 0 at 95 % ± 3.5 binomial SE (0.011); the interval
    that pools the 36 pairs as independent covers far less (about half the time)."""
    rng = np.random.default_rng(5)
    cells, seeds, studies = 12, 3, 400
    cover_seed = cover_pooled = 0
    for _ in range(studies):
        diff = rng.normal(0, 1, (seeds, 1)) + rng.normal(0, 1, (seeds, cells))
        df = pd.DataFrame({"seed": np.repeat(np.arange(seeds), cells),
                           "cell": np.tile(np.arange(cells), seeds), "arm": "a",
                           "test_accuracy": diff.ravel()})
        df = pd.concat([df, df.assign(arm="b", test_accuracy=0.0)])
        out = paired_comparisons(df, {"arm": "a"}, {"arm": "b"}, match=["cell", "seed"]).iloc[0]
        cover_seed += out.ci_low <= 0 <= out.ci_high
        pooled = mean_ci(diff.ravel())
        cover_pooled += pooled.low <= 0 <= pooled.high
    se = math.sqrt(0.95 * 0.05 / studies)
    assert abs(cover_seed / studies - 0.95) <= 3.5 * se
    assert cover_pooled / studies < 0.75


def test_holm_by_hand_and_by_its_definition():
    # m = 4: sorted 0.005, 0.01, 0.03, 0.04 -> 4·0.005, 3·0.01, 2·0.03, 1·0.04, running maximum
    np.testing.assert_allclose(holm([0.03, 0.005, 0.04, 0.01]), [0.06, 0.02, 0.06, 0.03],
                               rtol=1e-15)
    np.testing.assert_array_equal(holm([0.5, float("nan"), 0.9]), [1.0, np.nan, 1.0])
    rng = np.random.default_rng(6)
    for _ in range(200):
        p = rng.uniform(0, 0.1, rng.integers(1, 9))
        alpha = 0.05
        # the step-down procedure as Holm states it: reject H_(1), H_(2), … while
        # p_(k) <= alpha / (m - k + 1); stop at the first that is not rejected
        rejected, m = set(), p.size
        for k, i in enumerate(np.argsort(p)):
            if p[i] > alpha / (m - k):
                break
            rejected.add(int(i))
        assert set(np.flatnonzero(holm(p) <= alpha).tolist()) == rejected


def test_trained_counts_exact_mcnemar_by_hand():
    # 10 seeds: both train at 2, A only at 7, B only at 1, neither at 0:
    # p = 2 · P(Bin(8, 1/2) <= 1) = 2 · 9 / 256
    a = [0.9] * 9 + [0.1]
    b = [0.9, 0.9] + [0.1] * 7 + [0.9]
    r = trained_counts(a, b, threshold=0.5)
    assert (r.n, r.a, r.b, r.only_a, r.only_b) == (10, 9, 3, 7, 1)
    assert r.p == pytest.approx(18 / 256, rel=1e-12)
    assert trained_counts([0.9, 0.1], [0.9, 0.1], 0.5).p == 1.0


@pytest.mark.parametrize("call, needle", [
    (lambda: paired_difference([1, 2], [1, 2, 3]), r"`a` and `b`: must pair up, got 2 and 3"),
    (lambda: paired_difference([1, float("nan")], [1, 2]), r"`a` == \[1.0, nan\]: must be finite"),
    (lambda: mean_ci([1, 2], confidence=1.0), r"`confidence` == 1.0: must be a number in \(0, 1\)"),
    (lambda: mean_ci([1, 2], confidence="95%"), r"`confidence` == '95%'"),
    (lambda: paired_comparisons(pd.DataFrame({"arm": ["a", "a"], "seed": [0, 0], "test_accuracy": [1, 2]}),
                                {"arm": "a"}, {"arm": "a"}, match=["seed"]), r"several rows share"),
    (lambda: paired_comparisons(pd.DataFrame({"arm": ["a"], "seed": [0], "test_accuracy": [1]}),
                                {"method": "a"}, {"arm": "a"}, match=["seed"]), r"column 'method'"),
    (lambda: paired_comparisons(pd.DataFrame({"arm": ["a"], "seed": [0], "test_accuracy": [1]}),
                                {"arm": "a"}, {"arm": "b"}, match=["seed"], by=["depth"]),
     r"`by` == \['depth'\]"),
    (lambda: paired_comparisons(pd.DataFrame({"arm": ["a"], "seed": [0], "test_accuracy": [1]}),
                                {"arm": "a"}, {"arm": "b"}, match=["seed"], unit="run"),
     r"`unit` == 'run'"),
    (lambda: holm([0.5, 1.5]), r"`p` == \[0.5, 1.5\]: must be probabilities"),
    (lambda: trained_counts([0.9], [0.8], threshold="half"), r"`threshold` == 'half'"),
    (lambda: trained_counts([0.9], [0.8, 0.1], threshold=0.5), r"must pair up"),
])
def test_bad_inputs(call, needle):
    with pytest.raises(INPUT_ERRORS, match=needle):
        call()
