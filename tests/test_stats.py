"""Paired differences and t-intervals (meanfield.stats) against hand computations and scipy."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from meanfield._validate import INPUT_ERRORS
from meanfield.stats import mean_ci, paired_comparisons, paired_difference


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
    assert pooled.n.iloc[0] == 6


def test_paired_comparisons_matches_paired_difference():
    rng = np.random.default_rng(2)
    acc_a, acc_b = rng.uniform(0.5, 0.9, 5), rng.uniform(0.5, 0.9, 5)
    df = pd.DataFrame({"arm": ["a"] * 5 + ["b"] * 5, "seed": list(range(5)) * 2,
                       "test_accuracy": np.r_[acc_a, acc_b]})
    out = paired_comparisons(df, {"arm": "a"}, {"arm": "b"}, match=["seed"])
    iv = paired_difference(acc_a, acc_b)
    assert (out.ci_low.iloc[0], out.ci_high.iloc[0]) == pytest.approx((iv.low, iv.high), rel=1e-12)


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
])
def test_bad_inputs(call, needle):
    with pytest.raises(INPUT_ERRORS, match=needle):
        call()
