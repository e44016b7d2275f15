"""The Edge of Chaos (docs/theory.md §3): EOC points against mpmath and closed forms, phases on both sides,
the phase-diagram table against the core functions, fixed points of the q-map."""

import math
import warnings

import mpmath as mp
import numpy as np
import pytest
from conftest import assert_close, tanh_eoc

import meanfield as mf


def elu_eoc(sigma_b):
    """(σ_w, q*) on the ELU (α = 1) EOC by mpmath, splitting the integrals at the kink."""
    mp.mp.dps = 30

    def moments(q):
        r = mp.sqrt(q)
        pdf = lambda z: mp.exp(-z * z / 2) / mp.sqrt(2 * mp.pi)  # noqa: E731
        phi = lambda x: x if x > 0 else mp.expm1(x)  # noqa: E731
        dphi = lambda x: 1 if x > 0 else mp.exp(x)  # noqa: E731
        e2 = mp.quad(lambda z: phi(r * z) ** 2 * pdf(z), [-mp.inf, -3, 0, 3, mp.inf])
        d2 = mp.quad(lambda z: dphi(r * z) ** 2 * pdf(z), [-mp.inf, -3, 0, 3, mp.inf])
        return e2, d2

    q = mp.findroot(lambda q: q - moments(q)[0] / moments(q)[1] - mp.mpf(sigma_b) ** 2, 1.0)
    return float(mp.sqrt(1 / moments(q)[1])), float(q)


def erf_eoc_sigma_b2(q):
    """σ_b² on the erf EOC as a function of q* (docs/theory.md, Numerics's closed forms)."""
    sw2 = math.pi * math.sqrt(1 + 4 * q) / 4
    return q - sw2 * (2 / math.pi) * math.asin(2 * q / (1 + 2 * q)), math.sqrt(sw2)


@pytest.mark.parametrize("sb", [0.1, 0.3, 1.0, 2.0])
def test_tanh_eoc_against_mpmath(sb):
    sw_ref, q_ref = tanh_eoc(sb)
    sw, q = mf.eoc("tanh", sb)
    assert_close([sw, q], [sw_ref, q_ref], 1e-12)
    assert_close(mf.chi_1("tanh", sw, sb), 1.0, 1e-12)
    assert_close(mf.q_map("tanh", q, sw, sb), q, 1e-14)


@pytest.mark.parametrize("sb", [0.2, 1.0])
def test_elu_eoc_against_mpmath(sb):
    sw_ref, q_ref = elu_eoc(sb)
    sw, q = mf.eoc("elu", sb)
    assert_close([sw, q], [sw_ref, q_ref], 1e-12)
    assert_close(mf.chi_1("elu", sw, sb), 1.0, 1e-12)


@pytest.mark.parametrize("q", [0.05, 0.7, 4.0])
def test_erf_eoc_against_closed_form(q):
    sb2, sw_ref = erf_eoc_sigma_b2(q)
    sw, qs = mf.eoc("erf", math.sqrt(sb2))
    assert_close([sw, qs], [sw_ref, q], 1e-12)


def test_eoc_at_zero_bias_and_vectorised():
    assert mf.eoc("tanh", 0.0) == (1.0, 0.0)
    sw, q = mf.eoc("tanh", np.array([[0.0, 0.5], [1.0, 1.5]]))
    assert sw.shape == q.shape == (2, 2)
    assert np.all(np.diff(sw.ravel()) > 0) and np.all(np.diff(q.ravel()) > 0)


def test_relu_like_eoc_points():
    assert mf.eoc("relu", 0.0) == (math.sqrt(2.0), 1.0)
    assert_close(mf.eoc("leaky_relu:0.2", 0.0)[0], math.sqrt(2 / 1.04), 1e-15)
    with pytest.raises(ValueError, match=r"`sigma_b` == 0\.3: relu has a single EOC point"):
        mf.eoc("relu", [0.0, 0.3])
    assert mf.phase("relu", math.sqrt(2.0), 0.0) == "eoc"


def test_no_eoc_for_softplus_and_unstable_silu_point():
    assert math.isnan(mf.eoc("softplus", 0.5)[0])
    assert len(mf.eoc_curve("softplus", num=5)) == 0
    # docs/theory.md §3: SiLU at σ_b = 0.3 — the parametric EOC point is the unstable upper fixed point
    with pytest.warns(mf.UnstableEOCWarning, match="unstable"):
        sw, q = mf.eoc("silu", 0.3)
    assert abs(sw - 1.5756) < 1e-4 and abs(q - 1.3996) < 1e-4
    assert_close(mf.q_map("silu", q, sw, 0.3), q, 1e-14)
    fps = mf.fixed_points("silu", sw, 0.3)
    assert len(fps) == 2 and fps.stable.tolist() == [True, False]
    assert_close(fps.q.iloc[1], q, 1e-12)
    assert abs(fps.q.iloc[0] - 0.3618) < 1e-3
    assert_close(mf.q_star("silu", sw, 0.3), fps.q.iloc[0], 1e-12)
    curve = mf.eoc_curve("silu", sigma_b=[0.3])
    assert curve.stable.tolist() == [False]


def test_phases_on_both_sides_of_the_curve():
    sb = np.array([0.0, 0.3, 1.0, 2.0])
    sw, _ = mf.eoc("tanh", sb)
    assert (mf.phase("tanh", sw * 0.99, sb) == "ordered").all()
    assert (mf.phase("tanh", sw * 1.01, sb) == "chaotic").all()
    assert (mf.phase("tanh", sw, sb) == "eoc").all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mf.NoFixedPointWarning)
        assert mf.phase("relu", 2.0, 0.1) == "unbounded"


def test_phase_diagram_columns_match_core_functions():
    sw = np.array([0.6, 1.2, 2.5])
    sb = np.array([0.0, 0.4])
    df = mf.phase_diagram("tanh", sw, sb)
    assert list(df.columns) == ["sigma_w", "sigma_b", "q_star", "chi_1", "c_star", "chi_c", "xi_q",
                                "xi_c", "phase"]
    assert len(df) == 6 and df.sigma_w.tolist() == [0.6, 0.6, 1.2, 1.2, 2.5, 2.5]
    W, B = df.sigma_w.to_numpy(), df.sigma_b.to_numpy()
    assert_close(df.q_star, mf.q_star("tanh", W, B), 0)
    assert_close(df.chi_1, mf.chi_1("tanh", W, B), 0)
    assert_close(df.c_star, mf.c_star("tanh", W, B), 0)
    assert_close(df.chi_c, mf.chi_c("tanh", W, B), 0)
    xi_q, xi_c = mf.depth_scales("tanh", W, B)
    assert_close(df.xi_q, xi_q, 0) and np.array_equal(df.xi_c, xi_c)
    assert df.phase.tolist() == mf.phase("tanh", W, B).tolist()


def test_eoc_curve_default_grid_and_speed_independent_shape():
    df = mf.eoc_curve("tanh", num=11)
    assert len(df) == 11 and df.stable.all()
    assert_close(df.sigma_b, np.linspace(0, 2, 11), 0)
    assert_close(mf.chi_1("tanh", df.sigma_w.to_numpy(), df.sigma_b.to_numpy()), 1.0, 1e-12)


def test_eoc_bad_input():
    with pytest.raises(ValueError, match=r"`sigma_b` == -0\.1"):
        mf.eoc("tanh", -0.1)
    with pytest.raises(ValueError, match=r"`num` == 0"):
        mf.eoc_curve("tanh", num=0)
    with pytest.raises(ValueError, match=r"`tol` == -1"):
        mf.phase("tanh", 1.0, 0.1, tol=-1)
    with pytest.raises(ValueError, match=r"`sigma_w` has shape \(2, 2\): must be 1-d"):
        mf.phase_diagram("tanh", np.ones((2, 2)), [0.1])
