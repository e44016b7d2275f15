"""The fixed points behind phase diagrams, against references written here: q*, χ₁ and F_q'(q*)
from the activation's fixed-point table against the direct solve; c* and χ_c at every stage of
the series (few coefficients, many, and Newton on the quadrature near the EOC) against
independent two-dimensional integrals; phase_diagram's chunked (progress-bar) path against the
plain one."""

import math
import warnings

import numpy as np
import pytest
from conftest import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial.legendre import leggauss
from scipy.integrate import IntegrationWarning, quad
from scipy.optimize import brentq
from scipy.special import ndtr

import meanfield as mf
from meanfield.activations import get_activation
from meanfield.theory import _expect, _qtable, _solve

# ------------------------------------------------------------------------------------------------
# The table of V, D, S in log q
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tanh", "elu:0.5", "silu", "hard_tanh"])
def test_table_interpolates_the_quadrature(name):
    """Chebyshev panels against the direct quadrature at 200 log-uniform q in [1e-10, 1e12]:
    the table's own split criterion is 1e-14 of a panel's largest value, and the quadrature's
    values are themselves known to a few 1e-16."""
    act = get_activation(name)
    px, ps, _ = act._points
    edges, coef = mf.theory.fixed._table(act)
    q = np.exp(np.random.default_rng(7).uniform(math.log(1e-10), math.log(1e12), 200))
    exact = np.array([_qtable.three(act.kernel, act.param, x, px, ps)[:3] for x in q])
    table = np.array([_qtable.evaluate(x, edges, coef) for x in q])
    assert_close(table, exact, 3e-14, atol=1e-300)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(["tanh", "gelu", "silu", "sigmoid", "elu", "hard_tanh"]),
       sw=st.floats(0.3, 4.0), sb=st.floats(0.01, 2.0))
def test_table_fixed_point_equals_direct_solve(name, sw, sb):
    """q* from the table (+ one exact Newton step) against the direct Brent solve on the exact
    quadrature, which shares nothing with it but the quadrature rule: to 1e-13 relative, or, where
    the root is ill-conditioned (F_q' → 1, e.g. GELU at σ_w → √2 with q* ~ 5e3), to the rounding
    of F_q (~1e-15 of q) divided by |1 − F_q'|, the limit of any method; χ₁, F_q'(q*) to 1e-13 of
    their own scale."""
    act = get_activation(name)
    px, ps, _ = act._points
    sw_a, sb_a = np.array([sw]), np.array([sb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mf.NoFixedPointWarning)
        q, chi, fq, _ = mf.theory.fixed._fixed(act, sw_a, sb_a)
    q_direct = np.empty(1)
    _solve.qstar_many(act.kernel, act.param, sw_a, sb_a, np.ones(1), px, ps, q_direct)
    if np.isinf(q_direct[0]):
        assert np.isinf(q[0])
        return
    slope = sw * sw * _expect.diag(act, 0, 1, 1, q_direct) / np.sqrt(q_direct)
    assert_close(q, q_direct, 1e-13 + 1e-14 / abs(1.0 - slope[0]), atol=1e-300)
    assert_close(chi, sw * sw * _expect.diag(act, 1, 1, 0, q_direct), 1e-13)
    assert_close(fq, slope, 1e-13, atol=1e-13)


def test_q_star_zero_below_the_table():
    """σ_b = 0 with φ(0) = 0 and σ_w² E[φ'²] -> σ_w² φ'(0)² < 1 near 0: the iteration goes to 0.
    SELU is kinked at 0, where the limit is the mean of the one-sided squares λ²(1 + α²)/2, not
    the kernel's φ'(0)²: at σ_w = 0.65 the first is 0.89, the second 1.31 (the direct solve
    used to raise there)."""
    lam, alpha = 1.0507009873554805, 1.6732632423543772
    d0 = lam ** 2 * (1 + alpha ** 2) / 2
    assert mf.q_star("tanh", 0.9, 0.0) == 0.0
    assert mf.q_star("selu", 0.65, 0.0) == 0.0
    assert_close(mf.chi_1("selu", 0.65, 0.0), 0.65 ** 2 * d0, 1e-15)
    assert mf.phase("selu", 0.65, 0.0) == "ordered"
    assert mf.c_star("selu", 0.65, 0.0) == 1.0
    assert mf.q_star("selu", 0.72, 0.0) > 0.0          # σ_w² d0 = 1.09 > 1: a positive root


# ------------------------------------------------------------------------------------------------
# c* and χ_c: references from independent two-dimensional integrals
# ------------------------------------------------------------------------------------------------

def _gl_product(f, L=10.0, width=0.25, n=16):
    """E[f(Z₁, Z₂)] by the composite Gauss–Legendre product rule on [−L, L]² (panels of
    ``width``, ``n`` points each): tanh's poles lie ≥ π/(2√q) from the real axis in either
    variable, so each panel is exact to rounding for the q used here."""
    x, w = leggauss(n)
    edges = np.arange(-L, L + width / 2, width)
    z = (0.5 * (edges[:-1] + edges[1:])[:, None] + 0.5 * width * x[None, :]).ravel()
    wz = (np.tile(0.5 * width * w, edges.size - 1) * np.exp(-z * z / 2) / math.sqrt(2 * math.pi))
    return wz @ f(z[:, None], z[None, :]) @ wz


def _tanh_cstar_reference(sw, sb):
    q = mf.q_star("tanh", sw, sb)            # checked against mpmath in test_reference.py

    def pair(c, deriv):
        s = math.sqrt((1 - c) * (1 + c))
        r = math.sqrt(q)
        if deriv:
            return _gl_product(lambda a, b: (1 / np.cosh(r * a) * 1 / np.cosh(r * (c * a + s * b))) ** 2)
        return _gl_product(lambda a, b: np.tanh(r * a) * np.tanh(r * (c * a + s * b)))

    g = lambda c: (sb * sb + sw * sw * pair(c, False)) / q - c  # noqa: E731
    hi = 0.5
    while g(hi) >= 0:
        hi = 1 - (1 - hi) / 2
    cs = brentq(g, 0.0, hi, xtol=1e-15, rtol=8.9e-16)
    return cs, sw * sw * pair(cs, True)


@pytest.fixture(autouse=True)
def _warnings_kept_local():
    with warnings.catch_warnings():
        yield


def _hard_tanh_cstar_reference(sw, sb):
    """hard_tanh = clip(x, −1, 1). q* from the closed form E[clip(√q Z)²] =
    q (2Φ(a) − 1 − 2a φ(a)) + 2(1 − Φ(a)), a = 1/√q; for c ≥ 0 write u_i = √(qc) X + √(q(1−c)) Y_i,
    so E[φ(u₁)φ(u₂)] = E_X[ψ(√(qc) X)²] with ψ(m) = E[clip(m + sY)] in closed form, and likewise
    E[φ'(u₁)φ'(u₂)] with ψ₁(m) = P(|m + sY| < 1); the outer integral by adaptive quad."""
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731

    def V(q):
        a = 1 / math.sqrt(q)
        return q * (2 * ndtr(a) - 1 - 2 * a * pdf(a)) + 2 * (1 - ndtr(a))

    q = brentq(lambda q: sb * sb + sw * sw * V(q) - q, 1e-6, 100.0, xtol=1e-15, rtol=8.9e-16)

    def psi(m, s):
        lo, hi = (-1 - m) / s, (1 - m) / s      # clip(m + sY) = m + sY on lo < Y < hi
        inside = m * (ndtr(hi) - ndtr(lo)) + s * (pdf(lo) - pdf(hi))
        return inside + (1 - ndtr(hi)) - ndtr(lo)

    def psi1(m, s):
        return ndtr((1 - m) / s) - ndtr((-1 - m) / s)

    def pair(c, f):
        a, s = math.sqrt(q * c), math.sqrt(q * (1 - c))
        # ψ is odd and ψ₁ even in m: the integrand is even in x
        # ψ² and ψ₁² change on the scale s/a around x = 1/a, where clip has its kink
        pts = [1 / a + k * s / a for k in (-8, -3, -1, 0, 1, 3, 8)] if a > 0 else None
        return 2 * quad(lambda x: f(a * x, s) ** 2 * pdf(x), 0, 12, points=pts, epsabs=1e-16,
                        epsrel=1e-14, limit=400)[0]

    g = lambda c: (sb * sb + sw * sw * pair(c, psi)) / q - c  # noqa: E731
    warnings.simplefilter("ignore", IntegrationWarning)  # quad's 1e-14 is out of reach near c = 1
    hi = 0.5
    while g(hi) >= 0:
        hi = 1 - (1 - hi) / 2
    cs = brentq(g, 0.0, hi, xtol=1e-15, rtol=8.9e-16)
    return cs, sw * sw * pair(cs, psi1)


# (σ_w, σ_b) reaching every stage: c* ≈ 0.22 (48 coefficients), 0.84 (400), 0.9812 (1000),
# 0.99897 (beyond: Newton on the quadrature, 1/(1 − χ_c) ≈ 320)
TANH_CHAOTIC = [(2.5, 0.5), (2.2, 1.6), (2.329145728643216, 1.829145728643216), (2.33, 2.0)]
# c* ≈ 0.334, 0.987 and 0.99946. Closer to the EOC the check loses its power: at (1.348, 0.788),
# c* = 1 − 1.2e-5, 1/(1 − χ_c) ≈ 1400 turns a rounding of 1e-16 in F_c into 1e-13 in c*, and
# dχ_c/dc ≈ 90 (φ' is a step) that into 1e-11 in χ_c, for the reference as for meanfield
HARD_TANH_CHAOTIC = [(2.0, 0.5), (1.8434343434343434, 1.7373737373737375),
                     (1.808080808080808, 1.8989898989898992)]


@pytest.mark.parametrize("point", TANH_CHAOTIC)
def test_tanh_cstar_chi_c_at_every_stage(point):
    sw, sb = point
    cs, chic = _tanh_cstar_reference(sw, sb)
    assert_close(mf.c_star("tanh", sw, sb), cs, 0, atol=1e-11)
    assert_close(mf.chi_c("tanh", sw, sb), chic, 0, atol=1e-11)


@pytest.mark.parametrize("point", HARD_TANH_CHAOTIC)
def test_hard_tanh_cstar_chi_c(point):
    """A kinked activation: its Hermite coefficients decay slowly, so c* near 1 is found by
    Newton on the quadrature with graded meshes (no Gauss–Hermite shortcut near a kink)."""
    sw, sb = point
    cs, chic = _hard_tanh_cstar_reference(sw, sb)
    assert_close(mf.c_star("hard_tanh", sw, sb), cs, 0, atol=1e-11)
    assert_close(mf.chi_c("hard_tanh", sw, sb), chic, 0, atol=1e-11)


def test_phase_diagram_with_progress_is_the_same_table(capsys):
    """Chunks for the progress bar do not change a number: each point is solved on its own."""
    sw = np.linspace(0.5, 4, 50)
    sb = np.linspace(0, 2, 45)           # 2250 points: two chunks
    a = mf.phase_diagram("tanh", sw, sb)
    b = mf.phase_diagram("tanh", sw, sb, progress=True)
    assert a.equals(b)
    with pytest.raises(TypeError, match="`progress` == 'yes'"):
        mf.phase_diagram("tanh", sw, sb, progress="yes")


def test_activation_with_a_jump_gets_chi_c_by_quadrature():
    """φ = tanh + 0.3 sign jumps at 0, so φ's Hermite coefficients do not give φ' (Stein's lemma
    gains a delta term): χ_c = σ_w² E[φ'(u₁)φ'(u₂)] with the user's φ' = sech². References:
    E[φφ] = E[tanh tanh] + 0.6 E[tanh(u₁) sign(u₂)] + 0.09 (2/π) arcsin c, the middle term a
    one-dimensional quad (E[sign(u₂) | Z₁] = 2Φ(cZ₁/s) − 1), the first and χ_c by the
    Gauss–Legendre product rule."""
    jump = mf.Activation(lambda x: math.tanh(x) + (0.3 if x > 0 else -0.3),
                         lambda x: 1.0 - math.tanh(x) ** 2, kinks=(0.0,), odd=True, name="tanh_jump")
    assert jump.jumps and not get_activation("tanh").jumps
    sw, sb = 2.5, 0.5
    q = mf.q_star(jump, sw, sb)
    r = math.sqrt(q)

    def pair(c):
        s = math.sqrt((1 - c) * (1 + c))
        tt = _gl_product(lambda a, b: np.tanh(r * a) * np.tanh(r * (c * a + s * b)))
        ts = quad(lambda z: math.tanh(r * z) * (2 * ndtr(c * z / s) - 1) * math.exp(-z * z / 2)
                  / math.sqrt(2 * math.pi), -12, 12, points=[0.0], epsabs=1e-16, limit=200)[0]
        return tt + 0.6 * ts + 0.09 * 2 / math.pi * math.asin(c)

    cs = brentq(lambda c: (sb * sb + sw * sw * pair(c)) / q - c, 0.0, 0.99, xtol=1e-15, rtol=8.9e-16)
    s = math.sqrt((1 - cs) * (1 + cs))
    chic = sw * sw * _gl_product(lambda a, b: (np.cosh(r * a) * np.cosh(r * (cs * a + s * b))) ** -2.0)
    assert_close(mf.c_star(jump, sw, sb), cs, 0, atol=1e-11)
    assert_close(mf.chi_c(jump, sw, sb), chic, 0, atol=1e-11)


def test_table_scan_edges_match_the_direct_solve():
    """Cases where the table's scan leaves its range: q⁰ above it (GELU at σ_b = 0 diverges from
    there; the direct solve says inf, not the q* = 0 of the small-q shortcut), and a q* near the
    divergence threshold 1e12 (tanh with σ_b = 9e5: F_q(q) = σ_b² + σ_w² E[tanh²] ≈ 8.1e11)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mf.NoFixedPointWarning)
        assert mf.q_star("gelu", 1.9, 0.0, q0=1e13) == math.inf
    q = mf.q_star("tanh", 1.5, 9e5)
    assert_close(q, 9e5 ** 2 + 1.5 ** 2 * 1.0, 1e-12)   # E[tanh(√q Z)²] = 1 − O(q^-½)
