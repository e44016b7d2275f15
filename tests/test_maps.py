"""The public maps against closed forms (docs/theory.md, Numerics), identities of the theory (§2) and the
measured behaviour of `propagate` (depth scales, EOC rates)."""

import math
import warnings

import mpmath as mp
import numpy as np
import pytest
from conftest import SQRT2, assert_close

import meanfield as mf

C_GRID = np.array([-1.0, -0.999999, -0.9, -0.5, 0.0, 0.3, 0.7, 0.99, 0.999999, 1.0])


def relu_cmap(c):
    """docs/theory.md §2's ReLU correlation map on the EOC, in mpmath (40 digits: no cancellation)."""
    mp.mp.dps = 40
    return np.array([float((mp.sqrt(1 - mp.mpf(x) ** 2) + (mp.pi - mp.acos(x)) * x) / mp.pi)
                     for x in np.atleast_1d(c)])


# --- closed forms -----------------------------------------------------------------------------


@pytest.mark.parametrize("q", [1e-6, 0.3, 1.0, 50.0, 1e4])
def test_q_map_closed_forms(q):
    sw, sb = 1.3, 0.2
    assert_close(mf.q_map("relu", q, sw, sb), sb**2 + sw**2 * q / 2, 1e-15)
    assert_close(mf.q_map("linear", q, sw, sb), sb**2 + sw**2 * q, 1e-15)
    assert_close(mf.q_map("leaky_relu:0.2", q, sw, sb), sb**2 + sw**2 * 1.04 * q / 2, 1e-15)
    ref = sb**2 + sw**2 * (2 / np.pi) * np.arcsin(2 * q / (1 + 2 * q))
    assert_close(mf.q_map("erf", q, sw, sb), ref, 1e-14)


def test_relu_c_map_closed_form_on_eoc():
    # on the ReLU EOC (σ_w = √2, σ_b = 0) F_c is docs/theory.md §2's closed form, for every q
    for q in (0.01, 1.0, 100.0):
        assert_close(mf.c_map("relu", C_GRID, SQRT2, 0.0, q=q), relu_cmap(C_GRID), 1e-14)


def test_erf_cov_map_closed_form():
    qa, qb, cov = 0.7, 2.5, -0.9
    sw, sb = 1.7, 0.4
    na, nb, ncov = mf.cov_map("erf", qa, qb, cov, sw, sb)
    ref = sb**2 + sw**2 * (2 / np.pi) * np.arcsin(2 * cov / np.sqrt((1 + 2 * qa) * (1 + 2 * qb)))
    assert_close(ncov, ref, 1e-14)
    assert_close(na, mf.q_map("erf", qa, sw, sb), 0)
    assert_close(nb, mf.q_map("erf", qb, sw, sb), 0)


def test_cov_map_tanh_agrees_with_c_map_on_the_diagonal():
    q, c, sw, sb = 1.3, 0.42, 1.6, 0.25
    _, _, cov = mf.cov_map("tanh", q, q, c * q, sw, sb)
    assert_close(cov / mf.q_map("tanh", q, sw, sb), mf.c_map("tanh", c, sw, sb, q=q), 1e-14)


def test_relu_fixed_point_and_no_fixed_point():
    assert_close(mf.q_star("relu", 1.2, 0.5), 0.25 / (1 - 1.44 / 2), 1e-15)
    with pytest.warns(mf.NoFixedPointWarning, match="sigma_w=1.5"):
        q = mf.q_star("relu", [1.0, 1.5], 0.5)
    assert np.isinf(q[1]) and np.isfinite(q[0])
    with pytest.warns(mf.NoFixedPointWarning):
        assert math.isnan(mf.chi_1("relu", 1.5, 0.5))


def test_linear_and_relu_chi():
    assert_close(mf.chi_1("relu", 1.2, 0.3), 0.72, 1e-15)
    assert_close(mf.chi_1("linear", 0.9, 0.3), 0.81, 1e-15)
    xi_q, xi_c = mf.depth_scales("relu", 1.2, 0.3)
    assert_close([xi_q, xi_c], [-1 / math.log(0.72)] * 2, 1e-14)


def test_erf_chaotic_c_star_and_chi_c_closed_form():
    # odd φ, σ_b = 0: c* = 0 and χ_c = σ_w² E[φ']² = σ_w² (4/π) / (1 + 2q*)
    sw = 3.0
    q = mf.q_star("erf", sw, 0.0)
    assert_close(q, sw**2 * (2 / np.pi) * np.arcsin(2 * q / (1 + 2 * q)), 1e-14)
    assert mf.c_star("erf", sw, 0.0) == 0.0
    assert_close(mf.chi_c("erf", sw, 0.0), sw**2 * (4 / np.pi) / (1 + 2 * q), 1e-13)


# --- identities -------------------------------------------------------------------------------


@pytest.mark.parametrize("act", ["tanh", "erf", "elu", "silu", "gelu", "softplus", "sigmoid",
                                 "hard_tanh", "selu", "relu", "leaky_relu:0.1"])
def test_c_equals_one_is_fixed_and_q_star_is_fixed(act):
    sw, sb = 1.1, 0.3
    q = mf.q_star(act, sw, sb)
    assert_close(mf.q_map(act, q, sw, sb), q, 2e-15)
    assert_close(mf.c_map(act, 1.0, sw, sb), 1.0, 1e-15)


def test_tanh_eoc_chi_is_one(tanh_eoc_03):
    sw, q = tanh_eoc_03
    assert_close(mf.q_star("tanh", sw, 0.3), q, 1e-13)
    assert_close(mf.chi_1("tanh", sw, 0.3), 1.0, 1e-13)
    xi_q, xi_c = mf.depth_scales("tanh", sw, 0.3)
    assert math.isfinite(xi_q)
    # χ_c rounds to 1 ± 1e-16 on the EOC: ξ_c is huge or infinite, never an error
    assert xi_c > 1e12


def test_chaotic_tanh_c_star_is_a_stable_fixed_point():
    sw, sb = 3.0, 0.3
    cs = mf.c_star("tanh", sw, sb)
    assert 0.0 < cs < 1.0
    assert_close(mf.c_map("tanh", cs, sw, sb), cs, 1e-14)
    chic = mf.chi_c("tanh", sw, sb)
    assert 0.0 < chic < 1.0 < mf.chi_1("tanh", sw, sb)
    # χ_c is the slope of F_c at c* (central difference, error O(h²) ≈ 1e-10)
    h = 1e-5
    slope = (mf.c_map("tanh", cs + h, sw, sb) - mf.c_map("tanh", cs - h, sw, sb)) / (2 * h)
    assert_close(slope, chic, 1e-8)


def test_q_star_depends_on_q0_when_the_q_map_has_two_fixed_points():
    # SiLU at σ_b = 0.3, σ_w on the parametric EOC (docs/theory.md §3): from q⁰ = 1 the iteration goes to
    # the stable q ≈ 0.3618; from above the upper fixed point q ≈ 1.3996 it diverges
    sw, sb = 1.5756, 0.3
    q_low = mf.q_star("silu", sw, sb, q0=1.0)
    assert abs(q_low - 0.3618) < 2e-3
    assert_close(mf.q_map("silu", q_low, sw, sb), q_low, 1e-14)
    q_mid = mf.q_star("silu", sw, sb, q0=1.3)
    assert_close(q_mid, q_low, 1e-12)
    with pytest.warns(mf.NoFixedPointWarning):
        assert np.isinf(mf.q_star("silu", sw, sb, q0=1.5))


# --- propagate ---------------------------------------------------------------------------------


def test_propagate_shape_and_first_layers():
    q, c = mf.propagate("tanh", [[0.5], [2.0]], np.linspace(-0.5, 0.5, 3), 1.4, 0.2, 4)
    assert q.shape == c.shape == (5, 2, 3)
    assert_close(q[0], np.broadcast_to([[0.5], [2.0]], (2, 3)), 0)
    assert_close(q[1], mf.q_map("tanh", q[0], 1.4, 0.2), 1e-15)
    assert_close(c[1], mf.c_map("tanh", c[0], 1.4, 0.2, q=q[0]), 1e-15)
    q0, c0 = mf.propagate("tanh", 1.0, 0.2, 1.4, 0.2, 0)
    assert q0.shape == (1,) and c0[0] == 0.2


def _decay_rate(x, x_star, lo, hi):
    """Geometric decay rate of |x^l − x*| fitted over layers lo..hi."""
    d = np.abs(x[lo:hi] - x_star)
    return float(np.exp(np.polyfit(np.arange(lo, hi), np.log(d), 1)[0]))


@pytest.mark.parametrize("sw", [0.8, 3.0])
def test_depth_scales_match_the_decay_of_propagate(sw):
    act, sb = "tanh", 0.3
    qs = mf.q_star(act, sw, sb)
    xi_q, xi_c = mf.depth_scales(act, sw, sb)
    # fit where the distance to the fixed point is ~1e-6: the linearisation is good to ~1e-5 and
    # rounding (1e-16) is far below
    lo_q, lo_c = int(12 * xi_q), int(12 * xi_c)
    q, _ = mf.propagate(act, qs + 0.05, 0.5, sw, sb, lo_q + 6)
    rate_q = _decay_rate(q, qs, lo_q, lo_q + 5)
    assert_close(-1 / math.log(rate_q), xi_q, 1e-4)
    cs = mf.c_star(act, sw, sb)
    _, c = mf.propagate(act, qs, 0.5, sw, sb, lo_c + 6)
    rate_c = _decay_rate(c, cs, lo_c, lo_c + 5)
    assert_close(-1 / math.log(rate_c), xi_c, 1e-4)


@pytest.mark.slow
def test_tanh_eoc_rate_matches_propagate(tanh_eoc_03):
    sw, q = tanh_eoc_03
    beta = mf.eoc_rate("tanh", sw, 0.3)
    assert_close(beta, 4.2827, 2e-5)  # docs/theory.md, Numerics
    _, c = mf.propagate("tanh", q, 0.0, sw, 0.3, 10_000)
    dev = [abs(l * (1 - c[l]) / beta - 1) for l in (1_000, 10_000)]
    # 1 − c^l ~ β/l with a logarithmic correction: 1.2 % at l = 10³ (docs/theory.md), shrinking
    assert dev[1] < 3e-3 and dev[1] < dev[0] < 2e-2


def test_relu_eoc_rate_matches_propagate():
    beta = mf.eoc_rate("relu", SQRT2, 0.0)
    assert_close(beta, 9 * math.pi**2 / 2, 1e-15)
    _, c = mf.propagate("relu", 1.0, 0.0, SQRT2, 0.0, 5_000)
    dev = [abs(l**2 * (1 - c[l]) / beta - 1) for l in (500, 5_000)]
    assert dev[1] < 1e-2 and dev[1] < dev[0]


def test_eoc_rate_refuses_points_off_the_eoc():
    with pytest.raises(ValueError, match="not on the EOC"):
        mf.eoc_rate("tanh", 2.0, 0.3)


def test_no_warning_on_ordinary_points():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mf.chi_c("tanh", [0.5, 1.0, 3.0], 0.3)
