"""meanfield against independent high-precision references computed here with mpmath.

docs/theory.md, Numerics promises Gaussian expectations to ~1e-12 relative (absolute near zero) for
q ∈ [1e-6, 1e4], c ∈ [−1, 1], smooth or kinked φ. Every reference below is computed in this file
with mpmath, from the textbook definition of each activation, and shares no code with
meanfield (whose expectations use a graded composite Gauss–Legendre rule and Mehler's series):

* one-dimensional expectations E[g(√q Z)]: ``mp.quad`` at 30 digits on [−13, 13] (the Gaussian
  mass outside is < 1e-37), split at the kinks of φ mapped to z = x/√q and around z = 0 at
  multiples of the feature width 1/√q;
* two-dimensional expectations E[φ(u₁) φ(u₂)] as the nested integral
  ∫ φ(√q₁ z₁) ψ(z₁) ϕ(z₁) dz₁ with ψ(z₁) = E[φ(√q₂ (c z₁ + s Z₂))], s = √((1−c)(1+c)):
  - for ELU, hard-tanh and GELU ψ has a closed form (Gaussian integrals of x₊, eˣ and xΦ(x),
    checked against a 1-D quadrature in ``test_reference_inner_closed_forms``), so only the outer
    integral is numerical (30 digits);
  - for tanh and SiLU ψ is itself an ``mp.quad`` (20 digits, split at the inner feature point
    z₂ = (0 − c z₁)/s); this is slow, so only a few such cases are used, and cached;
  - at c = ±1 (s = 0) ψ(z₁) = φ(±√q₂ z₁) exactly; at c = 0 the expectation factorises;
* the closed forms of docs/theory.md, Numerics (ReLU, erf), evaluated in mpmath;
* fixed points by ``mp.findroot`` on the mpmath maps; c* of tanh (chaotic, c* ≈ 0.07) by
  ``mp.findroot`` on Mehler's series with mpmath Hermite coefficients, confirmed by one Newton step
  on the nested-integral c-map (the correction must be < 1e-13).

Run with ``-s`` to see the largest error observed per category.
"""

from __future__ import annotations

import functools
import math
import os
from collections import defaultdict

import mpmath as mp
import numpy as np
import pytest

import meanfield as mf
from meanfield.theory import _gauss

RTOL = 1e-12        # promised relative accuracy
ATOL = 1e-14        # absolute accuracy, in units of the natural scale of the quantity, near zero
L30 = 13            # half-width of the z-domain at 30 digits (e^{-13²/2} ≈ 2e-37)
L20 = 10            # half-width of the z-domain at 20 digits (e^{-10²/2} ≈ 2e-22)

Q_1D = (1e-6, 0.01, 0.76, 3.0, 100.0, 1e4)
Q_2D = (0.01, 0.76, 3.0, 100.0)
C_2D = (-1.0, -0.999, -0.5, 0.0, 0.3, 0.9, 0.999, 0.9999999, 1.0)
SW, SB = 1.5, 0.3   # σ_w, σ_b used where a map needs them

# ---------------------------------------------------------------------------------------------
# error bookkeeping (printed at the end of the module with -s)

_RECORD = defaultdict(list)   # category -> [(relative error, error / scale, passed, test id)]


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print("\n\nlargest errors per category: relative (over |ref| > 1e-6 scale), absolute/scale;"
          " all checks, then passing checks only")
    for cat in sorted(_RECORD):
        rows = _RECORD[cat]
        worst = max(rows, key=lambda r: r[0])
        ok = [r for r in rows if r[2]]
        line = (f"  {cat:28s} n={len(rows):4d}  rel {worst[0]:.2e} abs {max(r[1] for r in rows):.2e}"
                f"  | passing: rel {max((r[0] for r in ok), default=0):.2e}"
                f" abs {max((r[1] for r in ok), default=0):.2e}")
        if not worst[2]:
            line += f"  (worst: {worst[3]})"
        print(line)


def check(category, got, ref, scale=None, rtol=RTOL, atol=ATOL):
    """Assert |got − ref| <= rtol |ref| + atol · scale (scale defaults to |ref|) and record it."""
    got = float(got)
    ref = float(ref)
    scale = abs(ref) if scale is None else float(abs(scale))
    err = abs(got - ref)
    bound = rtol * abs(ref) + atol * scale
    rel = err / abs(ref) if abs(ref) > 1e-6 * scale and ref != 0.0 else 0.0
    test_id = os.environ.get("PYTEST_CURRENT_TEST", "?").split("::")[-1].split(" ")[0]
    _RECORD[category].append((rel, err / scale if scale > 0.0 else err, err <= bound, test_id))
    assert err <= bound, (
        f"{category}: got {got!r}, reference {ref!r}: error {err:.3e} "
        f"(relative {err / abs(ref) if ref else math.inf:.3e}) > bound {bound:.3e}"
    )


# ---------------------------------------------------------------------------------------------
# activations in mpmath, from their textbook definitions

SELU_LAMBDA = "1.0507009873554804934193349852946"
SELU_ALPHA = "1.6732632423543772848170429916717"


def _Phi(x):
    return mp.erfc(-x / mp.sqrt(2)) / 2


def _pdf(x):
    return mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)


def _sig(x):
    return 1 / (1 + mp.exp(-x))


def _leaky(slope):
    a = mp.mpf(slope)
    return (lambda x: x if x > 0 else a * x), (lambda x: mp.mpf(1) if x > 0 else a)


def _elu(alpha, lam="1"):
    a, lam = mp.mpf(alpha), mp.mpf(lam)
    return ((lambda x: lam * x if x > 0 else lam * a * mp.expm1(x)),
            (lambda x: lam if x > 0 else lam * a * mp.exp(x)))


def _hard_tanh():
    return ((lambda x: mp.mpf(1) if x >= 1 else (mp.mpf(-1) if x <= -1 else x)),
            (lambda x: mp.mpf(1) if -1 < x < 1 else mp.mpf(0)))


# name: (factory of (φ, φ'), kinks of φ, smooth features at 0 of width ~1, parity (+1, −1, 0))
MP_ACTS = {
    "tanh": (lambda: (mp.tanh, lambda x: mp.sech(x) ** 2), (), True, -1),
    "erf": (lambda: (mp.erf, lambda x: 2 / mp.sqrt(mp.pi) * mp.exp(-x * x)), (), True, -1),
    "relu": (lambda: _leaky(0), (0.0,), False, 0),
    "leaky_relu": (lambda: _leaky("0.01"), (0.0,), False, 0),
    "leaky_relu:0.1": (lambda: _leaky("0.1"), (0.0,), False, 0),
    "elu": (lambda: _elu(1), (0.0,), True, 0),
    "elu:0.5": (lambda: _elu("0.5"), (0.0,), True, 0),
    "selu": (lambda: _elu(SELU_ALPHA, SELU_LAMBDA), (0.0,), True, 0),
    "gelu": (lambda: ((lambda x: x * _Phi(x)), (lambda x: _Phi(x) + x * _pdf(x))), (), True, 0),
    "silu": (lambda: ((lambda x: x * _sig(x)), (lambda x: _sig(x) * (1 + x * (1 - _sig(x))))),
             (), True, 0),
    "softplus": (lambda: ((lambda x: mp.log1p(mp.exp(x))), _sig), (), True, 0),
    "sigmoid": (lambda: (_sig, lambda x: _sig(x) * (1 - _sig(x))), (), True, 0),
    "hard_tanh": (_hard_tanh, (-1.0, 1.0), False, -1),
    "linear": (lambda: ((lambda x: x), (lambda x: mp.mpf(1))), (), False, -1),
}
ALL_NAMES = tuple(MP_ACTS)


def _mp_act(name, k):
    """(φ^(k), kinks, smooth, parity of φ^(k)) in mpmath."""
    make, kinks, smooth, parity = MP_ACTS[name]
    return make()[k], kinks, smooth, (parity if k == 0 else -parity)


def _points(lo, hi, *groups):
    """Sorted distinct split points within [lo, hi], with lo and hi."""
    pts = {mp.mpf(lo), mp.mpf(hi)}
    for group in groups:
        pts.update(mp.mpf(p) for p in group if lo < p < hi)
    return sorted(pts)


def _around(z0, w, mults):
    return [z0] + [z0 + j * w for j in mults] + [z0 - j * w for j in mults]


def _quad(f, pts):
    return mp.quad(f, pts, method="gauss-legendre")


# ---------------------------------------------------------------------------------------------
# one-dimensional references (30 digits)

def _split_1d(r, kinks, smooth, L=L30):
    groups = [[-6, -3, -1, 0, 1, 3, 6], [mp.mpf(k) / r for k in kinks]]
    if smooth:
        groups.append(_around(mp.mpf(0), 1 / r, (0.25, 1, 4, 16)))
    return _points(-L, L, *groups)


@functools.cache
def ref_e1(name, a, b, q, m=0):
    """E[Z^m φ^(a)(√q Z) φ^(b)(√q Z)] (a, b ∈ {0, 1}) to 30 digits, as an mpf."""
    with mp.workdps(30):
        fa, kinks, smooth, _ = _mp_act(name, a)
        fb = _mp_act(name, b)[0]
        r = mp.sqrt(mp.mpf(q))
        val = _quad(lambda z: z ** m * fa(r * z) * fb(r * z) * mp.exp(-z * z / 2),
                    _split_1d(r, kinks, smooth))
        return +(val / mp.sqrt(2 * mp.pi))


@functools.cache
def ref_mean(name, k, q):
    """E[φ^(k)(√q Z)] to 30 digits."""
    with mp.workdps(30):
        f, kinks, smooth, _ = _mp_act(name, k)
        r = mp.sqrt(mp.mpf(q))
        val = _quad(lambda z: f(r * z) * mp.exp(-z * z / 2), _split_1d(r, kinks, smooth))
        return +(val / mp.sqrt(2 * mp.pi))


# ---------------------------------------------------------------------------------------------
# two-dimensional references

def _R(m, s):
    """E[(m + sZ)₊] = m Φ(m/s) + s ϕ(m/s)."""
    return m * _Phi(m / s) + s * _pdf(m / s)


def inner_closed(name, m, s):
    """ψ = E[φ(m + sZ)] in closed form (s > 0) for ELU (α = 1), hard-tanh and GELU."""
    if name == "elu":
        # x₊ + (eˣ − 1) 1{x < 0};  E[e^{m+sZ} 1{Z < −m/s}] = e^{m + s²/2} Φ(−m/s − s)
        return _R(m, s) + mp.exp(m + s * s / 2) * _Phi(-m / s - s) - _Phi(-m / s)
    if name == "hard_tanh":
        # clip(x, −1, 1) = x − (x − 1)₊ + (−1 − x)₊
        return m - _R(m - 1, s) + _R(-1 - m, s)
    if name == "gelu":
        # E[Φ(m + sZ)] = Φ(m/t), E[Z Φ(m + sZ)] = s ϕ(m/t)/t, t = √(1 + s²)
        t = mp.sqrt(1 + s * s)
        return m * _Phi(m / t) + s * s * _pdf(m / t) / t
    raise KeyError(name)


CLOSED_INNER = ("elu", "hard_tanh", "gelu")


def _outer_points(r1, r2, c, s, kinks, smooth, L):
    """Splits of the outer integral: features of φ(r₁ z₁) and of ψ(z₁) = h(r₂ c z₁), h = φ
    smoothed over a Gaussian of s.d. r₂ s (a kink of φ becomes a feature of width s/|c| in z₁)."""
    groups = [[mp.mpf(k) / r1 for k in kinks]]
    if smooth:
        groups.append(_around(mp.mpf(0), 1 / r1, (0.5, 2, 8)))
    if c != 0:
        for k in kinks:
            z0 = mp.mpf(k) / (r2 * c)
            groups.append(_around(z0, s / abs(c), (1, 4, 16)) if s > 0 else [z0])
        if smooth:
            w = max(mp.mpf(1), r2 * s) / (r2 * abs(c))
            groups.append(_around(mp.mpf(0), w, (0.5, 2, 8)))
    return _points(-L, L, *groups)


@functools.cache
def ref_e2(name, a, b, q1, q2, c):
    """E[φ^(a)(u₁) φ^(b)(u₂)], u₁ = √q₁ Z₁, u₂ = √q₂ (c Z₁ + √(1−c²) Z₂), as an mpf."""
    if c == 0.0:
        return ref_mean(name, a, q1) * ref_mean(name, b, q2)
    fa, kinks, smooth, par_a = _mp_act(name, a)
    fb, _, _, par_b = _mp_act(name, b)
    closed = name in CLOSED_INNER and b == 0
    nested = not closed and abs(c) != 1.0
    L = L20 if nested else L30
    with mp.workdps(20 if nested else 30):
        q1, q2, c = mp.mpf(q1), mp.mpf(q2), mp.mpf(c)
        r1, r2 = mp.sqrt(q1), mp.sqrt(q2)
        s = mp.sqrt((1 - c) * (1 + c))
        if s == 0:
            def psi(z1):
                return fb(r2 * c * z1)
        elif closed:
            def psi(z1):
                return inner_closed(name, r2 * c * z1, r2 * s)
        else:
            w = 1 / (r2 * s)
            feats = [mp.mpf(k) for k in kinks] + ([mp.mpf(0)] if smooth else [])

            def psi(z1):
                m = c * z1
                groups = []
                for x0 in feats:   # φ^(b)(r₂ (m + s z₂)) has its feature at z₂ = (x0/r₂ − m)/s
                    z0 = (x0 / r2 - m) / s
                    groups.append(_around(z0, w, (2,)) if smooth else [z0])
                val = _quad(lambda z2: fb(r2 * (m + s * z2)) * mp.exp(-z2 * z2 / 2),
                            _points(-L, L, *groups))
                return val / mp.sqrt(2 * mp.pi)

        pts = _outer_points(r1, r2, c, s, kinks, smooth, L)

        def outer(z1):
            return fa(r1 * z1) * psi(z1) * mp.exp(-z1 * z1 / 2)

        if par_a * par_b == 1 and par_a != 0:
            # φ^(a) and φ^(b) of the same parity: the outer integrand is even in z₁
            pts = [mp.mpf(0)] + [p for p in pts if p > 0]
            val = 2 * _quad(outer, pts)
        else:
            val = _quad(outer, pts)
        return +(val / mp.sqrt(2 * mp.pi))


def _e1_num(name, a, b, q, m=0):
    act = mf.get_activation(name)
    px, ps, _ = act._points
    return _gauss.e1(act.kernel, act.param, a, b, m, q, px, ps)


def _e2_num(name, a, b, q1, q2, c):
    act = mf.get_activation(name)
    px, ps, pk = act._points
    return _gauss.e2(act.kernel, act.param, (a, b), (q1, q2, c), (px, ps, pk))


# ---------------------------------------------------------------------------------------------
# 0. the references themselves

def test_reference_1d_matches_closed_forms():
    """The 1-D mpmath quadrature reproduces the closed forms of docs/theory.md, Numerics."""
    with mp.workdps(30):
        for q in (1e-6, 3.0, 1e4):
            qm = mp.mpf(q)
            assert abs(ref_e1("relu", 0, 0, q) - qm / 2) <= mp.mpf(10) ** -26 * qm
            assert abs(ref_e1("linear", 0, 0, q) - qm) <= mp.mpf(10) ** -26 * qm
            erf2 = 2 / mp.pi * mp.asin(2 * qm / (1 + 2 * qm))
            assert abs(ref_e1("erf", 0, 0, q) - erf2) <= mp.mpf(10) ** -26 * erf2
            derf2 = 4 / mp.pi / mp.sqrt(1 + 4 * qm)
            assert abs(ref_e1("erf", 1, 1, q) - derf2) <= mp.mpf(10) ** -26 * derf2


def test_reference_inner_closed_forms():
    """ψ(m, s) = E[φ(m + sZ)] in closed form agrees with a direct mp.quad."""
    with mp.workdps(30):
        for name in CLOSED_INNER:
            f = _mp_act(name, 0)[0]
            kinks = MP_ACTS[name][1]
            for m, s in ((0.3, 0.05), (-0.9, 1.7), (1.1, 0.02), (-2.5, 3.0), (0.0, 10.0)):
                m, s = mp.mpf(m), mp.mpf(s)
                pts = _points(-L30, L30, [(k - m) / s for k in kinks], _around(-m / s, 1 / s, (1, 4)))
                direct = _quad(lambda z, f=f, m=m, s=s: f(m + s * z) * mp.exp(-z * z / 2),
                               pts) / mp.sqrt(2 * mp.pi)
                closed = inner_closed(name, m, s)
                assert abs(direct - closed) <= mp.mpf(10) ** -25 * (1 + abs(closed)), (name, m, s)


# ---------------------------------------------------------------------------------------------
# 1. one-dimensional expectations, every built-in activation

@pytest.mark.parametrize("q", Q_1D)
@pytest.mark.parametrize("name", ALL_NAMES)
def test_e1_phi2(name, q):
    """E[φ(√q Z)²] by the numerical path (_gauss.e1), also for activations with closed forms."""
    check("1d E[phi^2] (e1)", _e1_num(name, 0, 0, q), ref_e1(name, 0, 0, q))


@pytest.mark.parametrize("q", Q_1D)
@pytest.mark.parametrize("name", ALL_NAMES)
def test_e1_dphi2(name, q):
    """E[φ'(√q Z)²] by the numerical path (_gauss.e1)."""
    check("1d E[phi'^2] (e1)", _e1_num(name, 1, 1, q), ref_e1(name, 1, 1, q))


@pytest.mark.parametrize("q", Q_1D)
@pytest.mark.parametrize("name", ALL_NAMES)
def test_q_map(name, q):
    """Public q_map = σ_b² + σ_w² E[φ(√q Z)²] (closed forms where meanfield has them)."""
    with mp.workdps(30):
        ref = mp.mpf(SB) ** 2 + mp.mpf(SW) ** 2 * ref_e1(name, 0, 0, q)
    check("1d q_map", mf.q_map(name, q, SW, SB), ref)


@pytest.mark.parametrize("name", ["tanh", "erf", "elu", "gelu", "softplus", "hard_tanh"])
def test_q_map_broadcasts_over_q(name):
    """q_map on an array of q agrees elementwise with the references."""
    got = mf.q_map(name, np.array(Q_1D), SW, SB)
    for g, q in zip(got, Q_1D):
        with mp.workdps(30):
            ref = mp.mpf(SB) ** 2 + mp.mpf(SW) ** 2 * ref_e1(name, 0, 0, q)
        check("1d q_map", g, ref)


# ---------------------------------------------------------------------------------------------
# 2. two-dimensional expectations

# closed-form inner integral: every (q, c) of the grid
GRID_CLOSED = [(n, q, c) for n in CLOSED_INNER for q in Q_2D for c in C_2D]
# nested mp.quad (slow): a few cases, plus c = ±1, 0 (one-dimensional references)
GRID_NESTED = (
    [("tanh", 0.76, 0.3), ("tanh", 100.0, 0.9), ("tanh", 0.01, 0.999), ("tanh", 3.0, 0.9999999),
     ("tanh", 3.0, -0.999), ("silu", 3.0, 0.9), ("silu", 3.0, -0.9999999)]
    + [(n, q, c) for n in ("tanh", "silu") for q in Q_2D for c in (-1.0, 0.0, 1.0)]
)
GRID_2D = GRID_CLOSED + GRID_NESTED


def _ids(case):
    return "-".join(str(v) for v in case)


@pytest.mark.parametrize("case", GRID_2D, ids=_ids)
def test_e2_numerical(case):
    """_gauss.e2 (nested graded quadrature) against the mpmath nested integral."""
    name, q, c = case
    ref = ref_e2(name, 0, 0, q, q, c)
    check("2d E[phi phi] (e2)", _e2_num(name, 0, 0, q, q, c), ref, scale=ref_e1(name, 0, 0, q))


@pytest.mark.parametrize("case", GRID_2D, ids=_ids)
def test_c_map_given_q(case):
    """Public c_map(c; q) = (σ_b² + σ_w² E[φ(u₁)φ(u₂)]) / F_q(q) (Mehler series or quadrature)."""
    name, q, c = case
    with mp.workdps(30):
        den = mp.mpf(SB) ** 2 + mp.mpf(SW) ** 2 * ref_e1(name, 0, 0, q)
        ref = (mp.mpf(SB) ** 2 + mp.mpf(SW) ** 2 * ref_e2(name, 0, 0, q, q, c)) / den
    check("2d c_map", mf.c_map(name, c, SW, SB, q=q), ref, scale=1.0)


COV_CASES = [
    ("tanh", 0.5, 2.0, 0.6),
    ("elu", 0.3, 5.0, -1.1),
    ("elu", 4.0, 0.01, 0.19),
    ("hard_tanh", 1.0, 9.0, 2.0),
    ("hard_tanh", 20.0, 0.5, -3.1),
    ("gelu", 0.2, 50.0, 3.0),
]


@pytest.mark.parametrize("case", COV_CASES, ids=_ids)
def test_cov_map_unequal_variances(case):
    """cov_map with q_a ≠ q_b against the nested mpmath integral with r₁ ≠ r₂."""
    name, qa, qb, cov = case
    c = cov / math.sqrt(qa * qb)
    ea = ref_e1(name, 0, 0, qa)
    eb = ref_e1(name, 0, 0, qb)
    with mp.workdps(30):
        ref_cov = mp.mpf(SB) ** 2 + mp.mpf(SW) ** 2 * ref_e2(name, 0, 0, qa, qb, c)
        scale = mp.mpf(SW) ** 2 * mp.sqrt(ea * eb)
        qa_new = mp.mpf(SB) ** 2 + mp.mpf(SW) ** 2 * ea
        qb_new = mp.mpf(SB) ** 2 + mp.mpf(SW) ** 2 * eb
    got = mf.cov_map(name, qa, qb, cov, SW, SB)
    check("2d cov_map", got[0], qa_new)
    check("2d cov_map", got[1], qb_new)
    # the reference uses the same double c = cov/√(q_a q_b) that meanfield computes
    check("2d cov_map", got[2], ref_cov, scale=scale)
    check("2d E[phi phi] (e2)", _e2_num(name, 0, 0, qa, qb, c),
          ref_e2(name, 0, 0, qa, qb, c), scale=mp.sqrt(ea * eb))


ERF_COV = [(1e-6, 1e-4, 5e-6), (0.3, 5.0, -1.1), (4.0, 0.01, 0.19), (100.0, 1e4, 999.0),
           (2.0, 2.0, -2.0), (0.7, 3.0, 1.449137674618944)]


@pytest.mark.parametrize("case", ERF_COV, ids=_ids)
def test_cov_map_erf_closed_form(case):
    """erf: E[erf(u_a) erf(u_b)] = (2/π) arcsin(2Σ/√((1+2q_a)(1+2q_b))), public and e2."""
    qa, qb, cov = case
    with mp.workdps(30):
        qa_, qb_, cov_ = mp.mpf(qa), mp.mpf(qb), mp.mpf(cov)
        E = 2 / mp.pi * mp.asin(2 * cov_ / mp.sqrt((1 + 2 * qa_) * (1 + 2 * qb_)))
        ea = 2 / mp.pi * mp.asin(2 * qa_ / (1 + 2 * qa_))
        eb = 2 / mp.pi * mp.asin(2 * qb_ / (1 + 2 * qb_))
        scale = mp.sqrt(ea * eb)
        ref_cov = mp.mpf(SB) ** 2 + mp.mpf(SW) ** 2 * E
        qa_new = mp.mpf(SB) ** 2 + mp.mpf(SW) ** 2 * ea
        qb_new = mp.mpf(SB) ** 2 + mp.mpf(SW) ** 2 * eb
    got = mf.cov_map("erf", qa, qb, cov, SW, SB)
    check("2d cov_map", got[0], qa_new)
    check("2d cov_map", got[1], qb_new)
    check("2d cov_map", got[2], ref_cov, scale=mp.mpf(SW) ** 2 * scale)
    c = min(1.0, max(-1.0, cov / math.sqrt(qa * qb)))   # as cov_map clips it
    check("2d E[phi phi] (e2)", _e2_num("erf", 0, 0, qa, qb, c), E, scale=scale)


# ---------------------------------------------------------------------------------------------
# 3. closed forms (docs/theory.md, Numerics) against the numerical path

C_GRID = (-1.0, -0.9999999, -0.999, -0.9, -0.5, -0.1, 0.0, 0.2, 0.5, 0.9, 0.999, 0.9999999, 1.0)
Q_CLOSED = (1e-6, 0.01, 1.0, 100.0, 1e4)


def _relu_closed(k, q1, q2, c):
    c = mp.mpf(c)
    if k == 0:
        return mp.sqrt(mp.mpf(q1) * mp.mpf(q2)) / (2 * mp.pi) * (
            mp.sqrt((1 - c) * (1 + c)) + (mp.pi - mp.acos(c)) * c)
    return (mp.pi - mp.acos(c)) / (2 * mp.pi)


def _erf_closed(k, q1, q2, c):
    q1, q2, c = mp.mpf(q1), mp.mpf(q2), mp.mpf(c)
    d = (1 + 2 * q1) * (1 + 2 * q2)
    if k == 0:
        return 2 / mp.pi * mp.asin(2 * c * mp.sqrt(q1 * q2) / mp.sqrt(d))
    return 4 / mp.pi / mp.sqrt(d - 4 * q1 * q2 * c * c)


CLOSED = {"relu": _relu_closed, "erf": _erf_closed}


@pytest.mark.parametrize("k", [0, 1])
@pytest.mark.parametrize("q", Q_CLOSED)
@pytest.mark.parametrize("name", ["relu", "erf"])
def test_closed_form_vs_e2(name, q, k):
    """E[φ^(k)(u₁) φ^(k)(u₂)]: relu (q/2π)(√(1−c²) + (π − arccos c)c) and (π − arccos c)/2π,
    erf (2/π) arcsin(2cq/(1+2q)) and (4/π)/√((1+2q)² − 4q²c²), vs _gauss.e2, c ∈ [−1, 1]."""
    with mp.workdps(30):
        scale = CLOSED[name](k, q, q, 1.0)
        for c in C_GRID:
            ref = CLOSED[name](k, q, q, c)
            check(f"closed form vs e2 ({name})", _e2_num(name, k, k, q, q, c), ref, scale=scale)


@pytest.mark.parametrize("name", ["relu", "erf"])
def test_closed_form_vs_e2_unequal_q(name):
    with mp.workdps(30):
        for q1, q2 in ((0.01, 100.0), (3.0, 0.2), (1e-6, 1.0), (1e4, 0.5)):
            scale = mp.sqrt(CLOSED[name](0, q1, q1, 1.0) * CLOSED[name](0, q2, q2, 1.0))
            for c in (-1.0, -0.999, -0.3, 0.6, 0.9999999, 1.0):
                ref = CLOSED[name](0, q1, q2, c)
                check(f"closed form vs e2 ({name})", _e2_num(name, 0, 0, q1, q2, c), ref,
                      scale=scale)


@pytest.mark.parametrize("name", ["relu", "erf"])
def test_closed_form_c_map(name):
    """The public c_map (closed-form path) against the mpmath closed forms."""
    cs = np.array(C_GRID)
    for q in (0.01, 1.0, 100.0):
        got = mf.c_map(name, cs, SW, SB, q=q)
        with mp.workdps(30):
            den = mp.mpf(SB) ** 2 + mp.mpf(SW) ** 2 * CLOSED[name](0, q, q, 1.0)
            for g, c in zip(got, C_GRID):
                ref = (mp.mpf(SB) ** 2 + mp.mpf(SW) ** 2 * CLOSED[name](0, q, q, c)) / den
                check("2d c_map", g, ref, scale=1.0)


# ---------------------------------------------------------------------------------------------
# 4. fixed points

TANH_POINTS = [(1.5, 0.3), (0.8, 0.3), (3.0, 0.3), (4.0, 2.0)]


@functools.cache
def ref_tanh_qstar(sw, sb):
    """q* of tanh by mp.findroot on q − (σ_b² + σ_w² E[tanh(√q Z)²]) (30 digits)."""
    with mp.workdps(30):
        sw_, sb_ = mp.mpf(sw), mp.mpf(sb)

        def g(q):
            r = mp.sqrt(q)
            e = _quad(lambda z: mp.tanh(r * z) ** 2 * mp.exp(-z * z / 2),
                      _split_1d(r, (), True)) / mp.sqrt(2 * mp.pi)
            return q - sb_ ** 2 - sw_ ** 2 * e

        return mp.findroot(g, 1 + sw_ ** 2)


def _tanh_moments(q):
    """E[tanh'²], E[tanh tanh''] at q (30 digits); tanh'' = −2 tanh sech²."""
    with mp.workdps(30):
        r = mp.sqrt(q)
        pts = _split_1d(r, (), True)
        d2 = _quad(lambda z: mp.sech(r * z) ** 4 * mp.exp(-z * z / 2), pts)
        ff = _quad(lambda z: -2 * (mp.tanh(r * z) * mp.sech(r * z)) ** 2 * mp.exp(-z * z / 2), pts)
        return d2 / mp.sqrt(2 * mp.pi), ff / mp.sqrt(2 * mp.pi)


def test_tanh_qstar_documented_values():
    """The values quoted in the brief for (σ_w, σ_b) = (4, 2)."""
    q = ref_tanh_qstar(4.0, 2.0)
    with mp.workdps(30):
        chi = 16 * _tanh_moments(q)[0]
    assert abs(q - mp.mpf("16.97279758796")) < 1e-11
    assert abs(chi - mp.mpf("2.04652132549")) < 1e-11
    check("fixed point q*", mf.q_star("tanh", 4.0, 2.0), q)
    check("fixed point chi_1", mf.chi_1("tanh", 4.0, 2.0), chi)


@pytest.mark.parametrize("point", TANH_POINTS)
def test_tanh_qstar_chi1_xi_q(point):
    sw, sb = point
    q = ref_tanh_qstar(sw, sb)
    with mp.workdps(30):
        d2, ff = _tanh_moments(q)
        chi = mp.mpf(sw) ** 2 * d2
        slope = mp.mpf(sw) ** 2 * (d2 + ff)          # F_q'(q*)
        xi_q = -1 / mp.log(slope)
    check("fixed point q*", mf.q_star("tanh", sw, sb), q)
    check("fixed point chi_1", mf.chi_1("tanh", sw, sb), chi)
    xi_q_got, xi_c_got = mf.depth_scales("tanh", sw, sb)
    check("fixed point xi", xi_q_got, xi_q)
    if chi < 1:   # ordered phase: c* = 1 and χ_c = χ₁
        assert mf.c_star("tanh", sw, sb) == 1.0
        check("fixed point chi_c", mf.chi_c("tanh", sw, sb), chi)
        with mp.workdps(30):
            check("fixed point xi", xi_c_got, -1 / mp.log(chi))


@pytest.mark.parametrize("point", [(0.5, 0.1), (1.0, 1.0), (1.3, 0.05), (1.4, 2.0)])
def test_relu_qstar_closed_form(point):
    sw, sb = point
    with mp.workdps(30):
        sw_, sb_ = mp.mpf(sw), mp.mpf(sb)
        q = sb_ ** 2 / (1 - sw_ ** 2 / 2)
        chi = sw_ ** 2 / 2
        xi = -1 / mp.log(chi)
    check("fixed point q*", mf.q_star("relu", sw, sb), q)
    check("fixed point chi_1", mf.chi_1("relu", sw, sb), chi)
    xi_q, xi_c = mf.depth_scales("relu", sw, sb)
    check("fixed point xi", xi_q, xi)
    check("fixed point xi", xi_c, xi)


@pytest.mark.parametrize("name, sw, sb", [("erf", 1.2, 0.2), ("erf", 2.5, 0.5),
                                           ("elu", 1.2, 0.3), ("gelu", 1.3, 0.4),
                                           ("sigmoid", 2.0, 0.1)])
def test_qstar_other_activations(name, sw, sb):
    """q* (unique fixed point here) by mp.findroot on the 1-D mpmath variance map."""
    with mp.workdps(30):
        sw_, sb_ = mp.mpf(sw), mp.mpf(sb)
        f, kinks, smooth, _ = _mp_act(name, 0)
        df = _mp_act(name, 1)[0]

        def E(g, q):
            if name == "erf":   # closed forms (docs/theory.md, Numerics), verified in the first test
                if g is f:
                    return 2 / mp.pi * mp.asin(2 * q / (1 + 2 * q))
                return 4 / mp.pi / mp.sqrt(1 + 4 * q)
            r = mp.sqrt(q)
            return _quad(lambda z: g(r * z) ** 2 * mp.exp(-z * z / 2),
                         _split_1d(r, kinks, smooth)) / mp.sqrt(2 * mp.pi)

        q = mp.findroot(lambda q: q - sb_ ** 2 - sw_ ** 2 * E(f, q), 1 + sb_ ** 2)
        chi = sw_ ** 2 * E(df, q)
    check("fixed point q*", mf.q_star(name, sw, sb), q)
    check("fixed point chi_1", mf.chi_1(name, sw, sb), chi)


@functools.cache
def ref_tanh_cstar(sw, sb):
    """(q*, c*, χ_c) of tanh in the chaotic phase.

    c* by mp.findroot of F_c(c) − c with F_c from Mehler's series of the mpmath Hermite
    coefficients of tanh(√q* Z) (exact to far below 1e-20 here since c* ≈ 0.07: |c|^N with
    N = 23), then one Newton step on the nested-integral c-map, whose correction must be
    negligible; χ_c = σ_w² E[tanh'(u₁) tanh'(u₂)] by the nested integral."""
    q = ref_tanh_qstar(sw, sb)
    with mp.workdps(30):
        sw_, sb_ = mp.mpf(sw), mp.mpf(sb)
        r = mp.sqrt(q)
        pts = _split_1d(r, (), True)
        N = 23

        def he_coef(n):   # E[tanh(rZ) He_n(Z)] / √n!, He_n by its recurrence
            def f(z):
                h0, h1 = mp.mpf(1), z
                for j in range(1, n):
                    h0, h1 = h1, z * h1 - j * h0
                return mp.tanh(r * z) * h1 * mp.exp(-z * z / 2)
            return _quad(f, pts) / mp.sqrt(2 * mp.pi * mp.factorial(n))

        a2 = {n: he_coef(n) ** 2 for n in range(1, N + 1, 2)}   # tanh is odd

        def fc(c):
            return (sb_ ** 2 + sw_ ** 2 * sum(v * c ** n for n, v in a2.items())) / q

        # F_c(0) − 0 > 0 > F_c(1/2) − 1/2: a bracketing solver
        c_m = mp.findroot(lambda c: fc(c) - c, (mp.mpf(0), mp.mpf("0.5")), solver="anderson")
    qf = float(q)
    e_pair = ref_e2("tanh", 0, 0, qf, qf, float(c_m))
    e_dpair = ref_e2("tanh", 1, 1, qf, qf, float(c_m))
    with mp.workdps(30):
        c_m = mp.mpf(float(c_m))
        # (the nested integrals are at q = float(q*): a relative change of ~1e-16, negligible)
        g = (sb_ ** 2 + sw_ ** 2 * e_pair) / q - c_m
        chi_c = sw_ ** 2 * e_dpair
        c_star = c_m - g / (chi_c - 1)
    return q, c_star, chi_c, c_m


def test_tanh_cstar_chaotic():
    sw, sb = 3.0, 0.3
    q, c_star, chi_c, c_m = ref_tanh_cstar(sw, sb)
    # the Mehler root and the nested-integral root agree (checks the references)
    assert abs(c_star - c_m) < 1e-13
    assert 0 < c_star < 1 and chi_c < 1
    check("fixed point c*", mf.c_star("tanh", sw, sb), c_star, rtol=1e-11)
    check("fixed point chi_c", mf.chi_c("tanh", sw, sb), chi_c, rtol=1e-11)
    with mp.workdps(30):
        d2, ff = _tanh_moments(q)
        xi_q = -1 / mp.log(mp.mpf(sw) ** 2 * (d2 + ff))
        xi_c = -1 / mp.log(chi_c)
    xi_q_got, xi_c_got = mf.depth_scales("tanh", sw, sb)
    check("fixed point xi", xi_q_got, xi_q)
    check("fixed point xi", xi_c_got, xi_c, rtol=1e-11)
    # c_map at q = q* maps c* to itself and 1 to 1
    check("fixed point c*", mf.c_map("tanh", float(c_star), sw, sb), c_star, rtol=1e-11)
    assert mf.c_map("tanh", 1.0, sw, sb) == pytest.approx(1.0, abs=1e-15)
