"""Fixed points of the variance and correlation maps by bracketing and Brent's method (numba,
private). THEORY.md §2–3: iterating the maps near the EOC needs ~1e5 steps; solving needs ~30
evaluations.

The q-map F_q is increasing, so iteration from q⁰ converges monotonically to the nearest fixed point
in the direction of F_q(q⁰) − q⁰: we bracket exactly that root by stepping from q⁰ and refine it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._gauss import e1, pair

_MODE_Q = 0
_MODE_C = 1
_QMAX = 1e12
_QMIN = 1e-250


@njit(cache=True)
def _g(mode, x, phi, p, sw, sb, px, ps, pk, A, T, tol):
    """The function whose root is sought: F_q(x) − x (mode 0) or F_c(x; q*) − x (mode 1, with
    q* in ``tol``'s slot ignored: the c-map uses the Hermite coefficients ``A`` of φ at q*)."""
    if mode == _MODE_Q:
        return sb * sb + sw * sw * e1(phi, p, 0, 0, 0, x, px, ps) - x
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
def cstar(phi, p, sw, sb, q, den, A, T, atol, px, ps, pk):
    """The stable fixed point c* < 1 of F_c(·; q) in the chaotic phase (χ₁ > 1): F_c(0) ≥ 0 and
    F_c(c) < c just below 1, so a root lies in [0, 1)."""
    tol = np.array([q, den, atol])
    g0 = _g(_MODE_C, 0.0, phi, p, sw, sb, px, ps, pk, A, T, tol)
    if g0 <= 0.0:
        return 0.0
    hi = 0.5
    ghi = _g(_MODE_C, hi, phi, p, sw, sb, px, ps, pk, A, T, tol)
    lo, glo = 0.0, g0
    k = 1
    while ghi >= 0.0 and k < 52:
        lo, glo = hi, ghi
        k += 1
        hi = 1.0 - 0.5 ** k
        ghi = _g(_MODE_C, hi, phi, p, sw, sb, px, ps, pk, A, T, tol)
    if ghi >= 0.0:
        return 1.0
    return _brent(_MODE_C, lo, glo, hi, ghi, phi, p, sw, sb, px, ps, pk, A, T, tol)


@njit(cache=True)
def qstar_many(phi, p, sw, sb, q0, px, ps, out):
    """``qstar`` over flat arrays."""
    for i in range(sw.size):
        out[i] = qstar(phi, p, sw[i], sb[i], q0[i], px, ps)
