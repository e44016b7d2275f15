"""Hypothesis properties of the maps (docs/theory.md §2): positivity and monotonicity of F_q, c = 1 fixed
at q*, the slope of F_c at c = 1 equal to χ₁, F_c increasing and bounded, odd symmetry, χ₁ = 1 on the
EOC."""

import warnings

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import meanfield as mf
from meanfield.theory import _expect

# activations with |φ| non-decreasing in |x| (F_q increasing) and monotone φ (F_c increasing)
MONOTONE = ["tanh", "erf", "relu", "leaky_relu:0.2", "elu", "selu", "hard_tanh", "linear", "sigmoid",
            "softplus"]
SMOOTH = ["tanh", "erf", "gelu", "silu", "softplus", "sigmoid"]
ALL = MONOTONE + ["gelu", "silu"]
ODD = ["tanh", "erf", "hard_tanh", "linear"]

sigma_w = st.floats(0.3, 3.0)
sigma_b = st.floats(0.0, 1.5)
q_values = st.floats(1e-6, 1e4)
corr = st.floats(-1.0, 1.0)
SETTINGS = settings(max_examples=25, deadline=None)


@SETTINGS
@given(act=st.sampled_from(MONOTONE[:-2]), q=q_values, dq=st.floats(1e-3, 10.0), sw=sigma_w,
       sb=sigma_b)
def test_q_map_positive_and_increasing(act, q, dq, sw, sb):
    lo, hi = mf.q_map(act, [q, q * (1 + dq)], sw, sb)
    assert lo > 0.0
    assert hi >= lo * (1 - 1e-15)


@SETTINGS
@given(act=st.sampled_from([a for a in ALL if a != "linear"]), sw=st.floats(0.3, 1.34),
       sb=st.floats(0.05, 1.5))
def test_c_one_is_a_fixed_point_at_q_star(act, sw, sb):
    # (the linear map has a finite q* only for σ_w < 1; every other one here has one for
    # σ_w < √2/λ, and SELU's λ = 1.0507 puts that at 1.346)
    assert abs(mf.c_map(act, 1.0, sw, sb) - 1.0) <= 1e-15


@SETTINGS
@given(act=st.sampled_from(SMOOTH), sw=st.floats(0.5, 2.5), sb=st.floats(0.05, 1.0))
def test_slope_of_c_map_at_one_is_chi_1(act, sw, sb):
    # one-sided Richardson difference at c = 1: error O(h²) + rounding 1e-16/h
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mf.NoFixedPointWarning)
        assume(np.isfinite(mf.q_star(act, sw, sb)))  # SiLU, GELU, softplus grow: q^l → ∞ for large σ_w
    chi = mf.chi_1(act, sw, sb)
    h = 2e-4 / (1.0 + mf.q_star(act, sw, sb))  # F_c's higher derivatives grow with q*
    d = [(1.0 - mf.c_map(act, 1.0 - k, sw, sb)) / k for k in (h, h / 2)]
    slope = 2 * d[1] - d[0]  # d(h) = χ₁ − F''(1) h/2 + O(h²)
    assert abs(slope - chi) <= 1e-6 * max(chi, 1e-3)


@SETTINGS
@given(act=st.sampled_from(MONOTONE), q=st.floats(1e-3, 100.0), sw=sigma_w, sb=sigma_b,
       c=st.lists(corr, min_size=2, max_size=6))
def test_c_map_increasing_and_bounded(act, q, sw, sb, c):
    c = np.sort(np.array(c))
    f = mf.c_map(act, c, sw, sb, q=q)
    assert np.all(np.abs(f) <= 1.0 + 1e-15)
    assert np.all(np.diff(f) >= -1e-15)


@SETTINGS
@given(act=st.sampled_from(ALL), q=st.floats(1e-3, 100.0), sw=sigma_w, sb=sigma_b, c=corr)
def test_c_map_bounded_for_every_activation(act, q, sw, sb, c):
    assert abs(mf.c_map(act, c, sw, sb, q=q)) <= 1.0 + 1e-15


@SETTINGS
@given(act=st.sampled_from(ODD), q=st.floats(1e-3, 100.0), sw=sigma_w, c=corr)
def test_odd_activation_without_bias_is_odd_in_c(act, q, sw, c):
    plus, minus = mf.c_map(act, [c, -c], sw, 0.0, q=q)
    assert abs(plus + minus) <= 4e-15  # a few ulps: c and −c go through different rules


@SETTINGS
@given(act=st.sampled_from(["tanh", "erf", "elu"]), q=st.floats(0.05, 20.0))
def test_chi_1_is_one_on_the_parametric_eoc(act, q):
    # docs/theory.md §3: σ_w² = 1/E[φ'²], σ_b² = q − σ_w² E[φ²]; where σ_b² >= 0 the point is on the EOC
    a = mf.get_activation(act)
    qa = np.array([q])
    sw2 = 1.0 / _expect.diag(a, 1, 1, 0, qa)[0]
    sb2 = q - sw2 * _expect.diag(a, 0, 0, 0, qa)[0]
    if sb2 < 0.0 or (act == "elu" and sw2 > 2.0):
        return
    sw, sb = np.sqrt(sw2), np.sqrt(sb2)
    if abs(mf.q_star(act, sw, sb) - q) > 1e-9 * q:  # another fixed point is reached from q⁰ = 1
        return
    assert abs(mf.chi_1(act, sw, sb) - 1.0) <= 1e-12
