"""Fixed points of the variance and correlation maps by bracketing and Brent's method (numba,
private). THEORY.md §2–3: iterating the maps near the EOC needs ~1e5 steps; solving needs ~30
evaluations.

The q-map F_q is increasing, so iteration from q⁰ converges monotonically to the nearest fixed point
in the direction of F_q(q⁰) − q⁰: we bracket exactly that root by stepping from q⁰ and refine it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._gauss import e1, pair

_MODE_Q = 0
_MODE_C = 1
_MODE_EOC = 2
_QMAX = 1e12
_QMIN = 1e-250


@njit(cache=True)
def _g(mode, x, phi, p, sw, sb, px, ps, pk, A, T, tol):
    """The function whose root is sought: F_q(x) − x (mode 0); F_c(x; q*) − x (mode 1, with q*,
    F_q(q*) and the series tolerance in ``tol``, the Hermite coefficients ``A`` of φ at q*);
    H(x) − σ_b² (mode 2, the parametric EOC)."""
    if mode == _MODE_Q:
        return sb * sb + sw * sw * e1(phi, p, 0, 0, 0, x, px, ps) - x
    if mode == _MODE_EOC:
        return _eoc_h(phi, p, x, px, ps) - sb * sb
    q, den, atol = tol[0], tol[1], tol[2]
    num = sb * sb + sw * sw * pair(phi, p, 0, 0, q, q, x, A, T, A, T, px, ps, pk, atol)
    return num / den - x


@njit(cache=True)
def _brent(mode, a, fa, b, fb, phi, p, sw, sb, px, ps, pk, A, T, tol):
    """Brent's method on [a, b] with fa·fb ≤ 0, to the last bits of the root."""
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    c, fc = a, fa
    d = e = b - a
    for _ in range(200):
        if fb * fc > 0.0:
            c, fc = a, fa
            d = e = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        xtol = 2.0 * 2.2e-16 * abs(b) + 1e-300
        m = 0.5 * (c - b)
        if abs(m) <= xtol or fb == 0.0:
            return b
        if abs(e) >= xtol and abs(fa) > abs(fb):
            s = fb / fa
            if a == c:
                pp = 2.0 * m * s
                qq = 1.0 - s
            else:
                qa = fa / fc
                r = fb / fc
                pp = s * (2.0 * m * qa * (qa - r) - (b - a) * (r - 1.0))
                qq = (qa - 1.0) * (r - 1.0) * (s - 1.0)
            if pp > 0.0:
                qq = -qq
            else:
                pp = -pp
            if 2.0 * pp < min(3.0 * m * qq - abs(xtol * qq), abs(e * qq)):
                e = d
                d = pp / qq
            else:
                d = m
                e = m
        else:
            d = m
            e = m
        a, fa = b, fb
        if abs(d) > xtol:
            b += d
        else:
            b += xtol if m > 0.0 else -xtol
        fb = _g(mode, b, phi, p, sw, sb, px, ps, pk, A, T, tol)
    return b


@njit(cache=True)
def qstar(phi, p, sw, sb, q0, px, ps):
    """The fixed point of F_q reached by iterating from q0; +inf when q^l → ∞."""
    dummy = np.zeros(1)
    tol = np.zeros(3)
    pk = np.zeros(px.size, dtype=np.bool_)
    g0 = _g(_MODE_Q, q0, phi, p, sw, sb, px, ps, pk, dummy, 0.0, tol)
    if g0 == 0.0:
        return q0
    if g0 > 0.0:
        lo, glo = q0, g0
        k = 0
        while True:
            hi = max(lo * (1.25 if k < 60 else 10.0), sb * sb, 1e-300)
            ghi = _g(_MODE_Q, hi, phi, p, sw, sb, px, ps, pk, dummy, 0.0, tol)
            if ghi <= 0.0:
                break
            if hi > _QMAX:
                return math.inf
            lo, glo = hi, ghi
            k += 1
    else:
        hi, ghi = q0, g0
        k = 0
        while True:
            lo = hi / (1.25 if k < 60 else 10.0)
            if lo <= sb * sb:
                lo = sb * sb
            glo = _g(_MODE_Q, lo, phi, p, sw, sb, px, ps, pk, dummy, 0.0, tol)
            if glo >= 0.0:
                break
            if lo < _QMIN:
                return 0.0
            hi, ghi = lo, glo
            k += 1
    return _brent(_MODE_Q, lo, glo, hi, ghi, phi, p, sw, sb, px, ps, pk, dummy, 0.0, tol)


@njit(cache=True)
def cstar(phi, p, sw, sb, q, den, A, T, atol, px, ps, pk, allow_quad):
    """The stable fixed point c* < 1 of F_c(·; q) in the chaotic phase (χ₁ > 1): F_c(0) ≥ 0 and
    F_c(c) < c just below 1, so a root lies in [0, 1). The bracket is first sought at the largest
    c where Mehler's series is proven accurate (|c|^N T <= atol), so that Brent's steps use the
    series; only a c* beyond it costs quadratures, and returns -1 unless ``allow_quad``."""
    tol = np.array([q, den, atol])
    g0 = _g(_MODE_C, 0.0, phi, p, sw, sb, px, ps, pk, A, T, tol)
    if g0 <= 0.0:
        return 0.0
    # 0.999: at c_ok itself the bound must hold despite rounding
    c_ok = min(0.999 * (atol / T) ** (1.0 / A.size), 1.0 - 1e-3) if T > 0.0 else 1.0 - 1e-3
    lo, glo = 0.0, g0
    hi = max(c_ok, 0.5)
    ghi = _g(_MODE_C, hi, phi, p, sw, sb, px, ps, pk, A, T, tol)
    if ghi >= 0.0 and not allow_quad:
        return -1.0
    k = 1
    while ghi >= 0.0 and k < 52:
        lo, glo = hi, ghi
        k += 1
        hi = 1.0 - (1.0 - lo) * 0.5
        ghi = _g(_MODE_C, hi, phi, p, sw, sb, px, ps, pk, A, T, tol)
    if ghi >= 0.0:
        return 1.0
    return _brent(_MODE_C, lo, glo, hi, ghi, phi, p, sw, sb, px, ps, pk, A, T, tol)


@njit(cache=True, parallel=True)
def qstar_many(phi, p, sw, sb, q0, px, ps, out):
    """``qstar`` over flat arrays."""
    for i in prange(sw.size):
        out[i] = qstar(phi, p, sw[i], sb[i], q0[i], px, ps)


@njit(cache=True)
def _eoc_h(phi, p, q, px, ps):
    """H(q) = q − E[φ(√q Z)²] / E[φ'(√q Z)²]: the σ_b² of the EOC point with q* = q (THEORY.md §3)."""
    return q - e1(phi, p, 0, 0, 0, q, px, ps) / e1(phi, p, 1, 1, 0, q, px, ps)


@njit(cache=True)
def eoc_q(phi, p, sb, px, ps):
    """The smallest q with H(q) = σ_b² (nan if none below 1e8): scan a geometric grid upwards from
    1e-12 for the first sign change, then Brent."""
    dummy = np.zeros(1)
    tol = np.zeros(3)
    pk = np.zeros(px.size, dtype=np.bool_)
    if sb == 0.0 and phi(0.0, p, 0) == 0.0:
        return 0.0
    lo = 1e-12
    glo = _g(_MODE_EOC, lo, phi, p, 1.0, sb, px, ps, pk, dummy, 0.0, tol)
    if glo >= 0.0:
        return lo if glo == 0.0 else math.nan
    while lo < 1e8:
        hi = lo * 1.5
        ghi = _g(_MODE_EOC, hi, phi, p, 1.0, sb, px, ps, pk, dummy, 0.0, tol)
        if ghi >= 0.0:
            return _brent(_MODE_EOC, lo, glo, hi, ghi, phi, p, 1.0, sb, px, ps, pk, dummy, 0.0, tol)
        lo, glo = hi, ghi
    return math.nan


@njit(cache=True, parallel=True)
def eoc_q_many(phi, p, sb, px, ps, out):
    """``eoc_q`` over a flat array of σ_b."""
    for i in prange(sb.size):
        out[i] = eoc_q(phi, p, sb[i], px, ps)


@njit(cache=True, parallel=True)
def cstar_many(phi, p, sw, sb, q, den, coef, nused, norm2, tails, rtol, px, ps, pk, allow_quad,
               out):
    """``cstar`` over flat arrays, row i of the coefficient table belonging to point i."""
    for i in prange(sw.size):
        out[i] = cstar(phi, p, sw[i], sb[i], q[i], den[i], coef[i, :nused[i]], tails[i],
                       rtol * norm2[i], px, ps, pk, allow_quad)
