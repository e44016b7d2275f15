"""The prediction wing at the edges of its inputs (issue 21, the wings; findings of a fuzzing):
where the maths has a limit the functions return it, checked against an independent
computation; where float64 or the method has no answer they refuse with an ``InputError`` that
names the parameters. Each test covers a class of inputs, not one call.
"""

import math
import warnings

import numpy as np
import pytest

import meanfield as mf
from meanfield._validate import InputError
from meanfield.prediction import _moments as SM
from meanfield.prediction import (
    critical_sparsity_distribution,
    fit_bound_constant,
    layer_gradient_scales,
    ordered_phase_bound,
    predict_critical_sparsity,
    predict_kept_per_layer,
)
from tests._timeouts import time_limit as _time_limit

SMALL = dict(batch=8, classes=3)




def _lgs(act, width, depth, sw, sb, **kw):
    return layer_gradient_scales(act, width, depth, sw, sb, **kw)


def _wide(act, width, depth, sw, sb, **kw):
    return predict_critical_sparsity(act, width, depth, sw, sb, finite_width=False, **kw)


def _finite(act, width, depth, sw, sb, **kw):
    return predict_critical_sparsity(act, width, depth, sw, sb, **kw)


def _dist(act, width, depth, sw, sb, **kw):
    return critical_sparsity_distribution(act, width, depth, sw, sb, finite_width=False, **kw)


def _kept(act, width, depth, sw, sb, **kw):
    return predict_kept_per_layer(act, width, depth, sw, sb, 0.5, finite_width=False, **kw)


EVERY = [_lgs, _wide, _finite, _dist, _kept]
WIDE = [_lgs, _wide, _dist, _kept]      # no N × N arrays: any width passes the memory check


# ---------------------------------------------------------------------------------------------
# no bias: c^l = 0 (odd φ) and q* = 0 (ordered)


@pytest.mark.parametrize("act", ["tanh", "erf", "linear"])
@pytest.mark.parametrize("sw", [0.5, 1.0, 2.0])
def test_without_a_bias_the_gradient_scales_take_their_limit(act, sw):
    """σ_b = 0 and an odd φ: c¹ = σ_b²/q¹ = 0 and F_c(0) = σ_w² E[φ(u)]² / q = 0, so the two
    inputs' pre-activations are independent at every layer, their logits too, and
    O = Cov(p_k(b), p_k(b')) = 0 (docs/critical_sparsity.md eq. (8)). Then q̃^l_o = k_o t_l f_l O
    = 0 at every layer (eq. (9)) and eq. (10) leaves Var(∂ℒ/∂W) = q̃ K_d / B. Ordered (σ_w = 0.5,
    q* = 0), the EOC of tanh at σ_b = 0 (σ_w = 1) and chaotic. The Monte Carlo estimate of O is
    noise around 0, and its negative draws made ``q_grad_offdiag`` NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = layer_gradient_scales(act, 50, 6, sw, 0.0, batch=32)
    assert not df.drop(columns="chi").isna().to_numpy().any()
    # 0 up to the float noise of the c map (c^l ~ 1e-33 for tanh instead of 0)
    assert ((df.q_grad_offdiag >= 0) & (df.q_grad_offdiag <= 1e-30 * df.q_grad)).all()
    np.testing.assert_allclose(df.grad_var, df.grad_var_single / 32, rtol=1e-12)


@pytest.mark.parametrize("sw", [0.5, 2.0])
def test_no_bias_is_the_limit_of_a_small_bias(sw):
    """The columns at σ_b = 0 are the limit σ_b → 0⁺ of the same network with a bias (computed
    independently: c¹ > 0, every expectation at its own q and c)."""
    cols = ["q", "act_sq", "chi", "q_grad", "grad_var", "score_scale"]
    at0 = layer_gradient_scales("tanh", 50, 6, sw, 0.0)[cols].to_numpy()
    gaps = []
    for sb in [1e-4, 1e-5, 1e-6, 1e-7]:
        near = layer_gradient_scales("tanh", 50, 6, sw, sb)
        gaps.append(np.nanmax(np.abs(near[cols].to_numpy() / at0 - 1)))   # chi: nan at L + 1
        assert ((near.q_grad_offdiag >= 0) & (near.q_grad_offdiag <= 1e-6 * near.q_grad)).all()
    assert all(b < a / 5 for a, b in zip(gaps, gaps[1:])) and gaps[-1] < 1e-9, gaps


def test_the_readout_covariance_is_never_negative():
    """O = Cov(p_k(b), p_k(b')) = Σ_{n≠0} c^{|n|} a_n² >= 0 for c ∈ [0, 1] (Mehler), and 0 at
    c = 0; the fixed-seed estimate is noise around 0 for small c."""
    for q in [1e-6, 0.1, 2.0]:
        for c in [0.0, 1e-30, 1e-6, 1e-3]:
            for classes in [2, 10, 100]:
                D, O = SM.readout_moments(q, c, classes)
                assert O >= 0.0 and D > 0.0
        assert SM.readout_moments(q, 0.0, 10)[1] == 0.0


@pytest.mark.parametrize("fn", [_wide, _finite, _dist, _kept])
def test_predictions_without_a_bias_are_fractions(fn):
    """The ordered phase without a bias (q* = 0: q^l decays geometrically) within float64's
    range: the predictions are finite fractions."""
    out = fn("tanh", 60, 12, 0.5, 0.0, **SMALL)
    values = np.asarray(out["mean"] if isinstance(out, dict) else
                        out.kept_fraction if hasattr(out, "kept_fraction") else out)
    assert np.all(np.isfinite(values)) and np.all((values >= 0) & (values <= 1))


@pytest.mark.parametrize("fn", EVERY)
@pytest.mark.parametrize("act,sw,sb,depth,names", [
    ("tanh", 0.5, 0.0, 600, ("`depth`", "`sigma_b`")),     # q* = 0: q^l ~ 4^-l underflows
    ("tanh", 0.5, 1e-170, 600, ("`depth`", "`sigma_b`")),  # q* ≈ σ_b² / (1 − χ) underflows
    ("relu", 10.0, 0.3, 400, ("`depth`", "`sigma_w`")),    # q^l ~ 50^l overflows
])
def test_a_forward_variance_float64_cannot_hold_is_refused(fn, act, sw, sb, depth, names):
    with pytest.raises(InputError) as info:
        fn(act, 20, depth, sw, sb, **SMALL)
    for name in names:
        assert name in str(info.value)


@pytest.mark.parametrize("fn", [_wide, _finite, _dist, _kept])
def test_a_linear_net_whose_variance_is_near_float64s_top_is_predicted(fn):
    """q^l = 2.25^l reaches 1e246 at depth 700: the correlation map's quotient is taken without
    overflow there (c^l stays 0, the linear map's), so the predictions are finite fractions."""
    out = fn("linear", 20, 700, 1.5, 0.0, **SMALL)
    values = np.asarray(out["mean"] if isinstance(out, dict) else
                        out.kept_fraction if hasattr(out, "kept_fraction") else out)
    assert np.all(np.isfinite(values)) and np.all((values >= 0) & (values <= 1))


@pytest.mark.parametrize("fn", WIDE)
def test_gradients_that_vanish_in_float64_are_refused(fn):
    """E[φ'(y)²] = 0 in float64: a flat activation, or tanh at q ~ 1e300 (σ_w = 1e150), where
    the quadrature underflows. No layer below has a gradient: refused, naming the arguments."""
    flat = mf.Activation(lambda x: 1.0 + 0.0 * x, lambda x: 0.0 * x, name="flat")
    for act, sw in [(flat, 1.0), ("tanh", 1e150)]:
        with pytest.raises(InputError, match=r"`activation`.*`sigma_w`.*`depth`"):
            fn(act, 20, 4, sw, 0.3, **SMALL)


# ---------------------------------------------------------------------------------------------
# huge widths and depths


@pytest.mark.parametrize("fn", [_lgs, _kept])
def test_weight_counts_do_not_overflow(fn):
    """n_l = fan_in · fan_out is an int64 column: exact up to 2^63 − 1 (width 2^31 gives 2^62),
    refused beyond (width 2^32 made 2^64, which wrapped to 0)."""
    df = fn("tanh", 2 ** 31, 2, 1.0, 0.3)
    assert df.n_weights.tolist() == [2 ** 62, 2 ** 62, 2 ** 31 * 10]
    with pytest.raises(InputError, match="`width` == 4294967296"):
        fn("tanh", 2 ** 32, 2, 1.0, 0.3)


@pytest.mark.parametrize("fn", [_wide, _dist])
def test_the_critical_sparsity_refuses_widths_beyond_its_resolution(fn):
    """The score laws' tails are exact to ~3e-16, and the largest of n scores needs them to ~1/n:
    beyond 2^40 scores a layer (width 2^20) E[s_cr] is refused (at width 2^31 it came out −inf,
    at 2^28 −3e7); at 2^20 it is the continuation of the smaller widths."""
    with pytest.raises(InputError, match="`width` == 1048577"):
        fn("tanh", 2 ** 20 + 1, 2, 0.8, 0.3)
    s = [float(np.asarray(fn("tanh", 2 ** e, 20, 0.8, 0.3)["mean"] if fn is _dist
                          else fn("tanh", 2 ** e, 20, 0.8, 0.3))) for e in (14, 17, 20)]
    assert s[0] < s[1] < s[2] < 1.0
    # s_cr grows about linearly in log N here: the last step extends the first
    assert abs((s[2] - s[1]) - (s[1] - s[0])) < 0.01


@pytest.mark.parametrize("fn", EVERY)
def test_depth_beyond_its_bound_is_refused(fn):
    with pytest.raises(InputError, match="`depth`"):
        fn("tanh", 20, 100_001, 1.0, 0.3, **SMALL)


def test_many_depths_share_the_budget_of_one():
    """Each distinct depth is a prediction of its own, at a cost proportional to it: a list of
    depths gets the budget of one deep prediction (np.arange(1, 10**5 + 1) was accepted, and
    would have run for weeks); repeated depths are computed once."""
    for depth in ([100_000, 99_999], np.arange(1, 500), list(range(1000, 101_000, 1000))):
        with _time_limit(60), pytest.raises(InputError, match=r"`depth` == .*add up to"):
            predict_critical_sparsity("tanh", 20, depth, 1.0, 0.3, finite_width=False)
    once = predict_critical_sparsity("tanh", 20, [3, 7], 1.0, 0.3, finite_width=False)
    again = predict_critical_sparsity("tanh", 20, [[7, 3, 7], [3, 3, 7]], 1.0, 0.3,
                                      finite_width=False)
    np.testing.assert_array_equal(again, once[[[1, 0, 1], [0, 0, 1]]])


def test_the_bound_refuses_sizes_whose_rate_overflows():
    """log(L N²)/L + 1/√(L N²) with L N² beyond float64 (inf, and nan in the fit) is refused,
    naming the sizes; a Python int beyond float range (OverflowError before) too."""
    for width, depth in [(1e200, 10), (10, 1e307)]:
        with pytest.raises(InputError, match=r"`width`.*`depth`"):
            ordered_phase_bound(width, depth)
    with pytest.raises(InputError, match="`width`"):
        fit_bound_constant([1, 2], [0.5, 0.4], 10 ** 400)
    with pytest.raises(InputError, match="`width`"):
        fit_bound_constant([1, 2], [0.5, 0.4], 10 ** 200)
    with pytest.raises(InputError, match="`depths`"):
        fit_bound_constant([1e308, 2], [0.5, 0.4], 10)
    # the largest sizes it takes still give the rate
    big = ordered_phase_bound(1e150, 1e3)
    assert math.isfinite(big) and big > 0


# ---------------------------------------------------------------------------------------------
# errors from inside the wing


def test_a_draw_without_an_answer_is_an_input_error():
    """hard_tanh with σ_b = 1e5: q ≈ 1e10 and c ≈ 1, so φ'(y) = 1{|y| < 1} is nonzero only for a
    shared Gaussian within ~1e-5 of 0: E[φ'²] > 0 passes the check, but at every quasi-random
    point the conditional E[φ'²] underflows and a layer's scores are all exactly zero. Refused
    with the arguments named, as an InputError (not a bare ValueError)."""
    with pytest.raises(InputError, match=r"`activation` == 'hard_tanh'.*`sigma_b` == 100000"):
        predict_critical_sparsity("hard_tanh", 20, 3, 1.0, 1e5, finite_width=False, **SMALL)
