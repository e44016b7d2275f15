"""The variance map's fixed point from a table (numba kernels, private). docs/theory.md §2 and Numerics.

q*, χ₁ and F_q'(q*) depend on the activation only through three one-dimensional expectations,

    V(q) = E[φ(√q Z)²],   D(q) = E[φ'(√q Z)²],   S(q) = dV/dq = E[Z φ(√q Z) φ'(√q Z)] / √q,

the same for every (σ_w, σ_b). They are analytic in q on Re q > 0 (the Gaussian integral
∫ f(x) e^{−x²/2q} dx / √(2πq) converges there), hence in t = log q on the strip |Im t| < π/2, so a
Chebyshev interpolant in t on panels of width ≤ 1/2 converges geometrically: with 16 points a panel
is accurate to the rounding of its node values. The table is built once per activation from the
exact quadrature of :mod:`meanfield.theory._gauss`, panel by panel, and a panel is split until the last
two Chebyshev coefficients of each function are below ``TAIL`` times its largest value there (the
usual a-posteriori estimate of the interpolation error). A grid of (σ_w, σ_b) then costs a root
solve on polynomials per point instead of ~25 quadratures.

Where q* → 0 (σ_b = 0, φ(0) = 0, σ_w² E[φ'²] < 1 near 0) the answer 0 follows from the
behaviour of F_q at small q; anywhere else outside the table's range of q [1e-12, 4e12], or on a
panel that never met the criterion, the callers fall back to the direct solve of
:mod:`meanfield.theory._solve`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._jit import jit, jit_parallel
from ._gauss import _HMAX, _L, _rule_1d, e1, threads_for

NCHEB = 16                       # Chebyshev points per panel
TAIL = 1e-14                      # split a panel whose last coefficients exceed this (relative)
T_LO, T_HI = math.log(1e-12), math.log(4e12)
_WIDTH0, _WIDTH_MIN = 0.5, 1e-3  # first panel width in t; panels are not split below this
_QMAX = 1e12                     # q^l beyond this counts as divergent, as in _solve.qstar
_STEP = 1.25                     # ratio of the scan from q⁰ for the nearest sign change


@jit
def three(phi, p, q, px, ps):
    """(V, D, S)(q) on one quadrature rule (q > 0), and the scale of S's rounding error,
    E[|Z φ φ'|]/√q: at small q with φ(0) ≠ 0 the integrand of S is odd up to O(√q) and the sum
    cancels, so S is known only to ~1e-16 of that scale."""
    r = math.sqrt(q)
    z, w = _rule_1d(q, px, ps, _L, _HMAX)
    v = d = s = sa = 0.0
    for i in range(z.size):
        x = r * z[i]
        f = phi(x, p, 0)
        g = phi(x, p, 1)
        v += w[i] * f * f
        d += w[i] * g * g
        s += w[i] * z[i] * f * g
        sa += w[i] * abs(z[i] * f * g)
    return v, d, s / r, sa / r


@jit_parallel
def _three_many(phi, p, q, px, ps, out):
    for i in prange(q.size):
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = three(phi, p, q[i], px, ps)


def build(act):
    """``(edges, coef)``: panel edges in t (npan + 1,) and Chebyshev coefficients (npan, 3, NCHEB)
    of (V, D, S) on each panel."""

    px, ps, _ = act._points
    j = np.arange(NCHEB)
    x = np.cos(np.pi * (j + 0.5) / NCHEB)                                   # Chebyshev points
    basis = np.cos(np.pi * np.outer(j, j + 0.5) / NCHEB) * (2.0 / NCHEB)     # values -> coefficients
    basis[0] *= 0.5
    starts = np.arange(T_LO, T_HI, _WIDTH0)
    todo = list(zip(starts, np.minimum(starts + _WIDTH0, T_HI)))
    done = []
    while todo:
        a = np.array([t[0] for t in todo])
        b = np.array([t[1] for t in todo])
        t = 0.5 * (a + b)[:, None] + 0.5 * (b - a)[:, None] * x[None, :]
        vals = np.empty((t.size, 4))
        with threads_for(t.size):
            _three_many(act.kernel, act.param, np.exp(t).ravel(), px, ps, vals)
        vals = vals.reshape(len(todo), NCHEB, 4)
        coef = np.einsum("kj,pjf->pfk", basis, vals[:, :, :3])             # (panels, 3, NCHEB)
        scale = np.abs(vals).max(axis=1)                                     # (panels, 4)
        scale = np.column_stack([scale[:, 0], scale[:, 1], np.maximum(scale[:, 2], scale[:, 3])])
        tail = np.abs(coef[:, :, -2:]).max(axis=2)
        ok = np.all(tail <= TAIL * scale + 1e-300, axis=1)
        # a panel that cannot be split further and still fails is not trusted: nan sends the
        # points that need it to the direct solve
        stuck = ~ok & (b - a < _WIDTH_MIN)
        coef[stuck] = np.nan
        ok |= stuck
        done += [(a[i], b[i], coef[i]) for i in np.flatnonzero(ok)]
        todo = []
        for i in np.flatnonzero(~ok):
            mid = 0.5 * (a[i] + b[i])
            todo += [(a[i], mid), (mid, b[i])]
    done.sort(key=lambda d: d[0])
    edges = np.array([d[0] for d in done] + [done[-1][1]])
    return edges, np.ascontiguousarray(np.stack([d[2] for d in done]))


@jit
def _locate(q, edges):
    """(panel, x): the panel holding log q and where in it, x ∈ [−1, 1]."""
    t = math.log(q)
    lo, hi = 0, edges.size - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if edges[mid] <= t:
            lo = mid
        else:
            hi = mid
    return lo, (2.0 * t - edges[lo] - edges[lo + 1]) / (edges[lo + 1] - edges[lo])


@jit
def _clenshaw(c, x):
    """Σ_k c_k T_k(x)."""
    b1 = b2 = 0.0
    for k in range(c.size - 1, 0, -1):
        b1, b2 = 2.0 * x * b1 - b2 + c[k], b1
    return x * b1 - b2 + c[0]


@jit
def evaluate(q, edges, coef):
    """(V, D, S)(q) from the table, for edges[0] <= log q <= edges[-1]."""
    i, x = _locate(q, edges)
    return _clenshaw(coef[i, 0], x), _clenshaw(coef[i, 1], x), _clenshaw(coef[i, 2], x)


@jit
def _v(q, edges, coef):
    """V(q) alone from the table (the scan for a sign change needs nothing else)."""
    i, x = _locate(q, edges)
    return _clenshaw(coef[i, 0], x)


@jit
def _g(q, sw, sb, edges, coef):
    v, _, s = evaluate(q, edges, coef)
    return sb * sb + sw * sw * v - q, sw * sw * s - 1.0


BELOW = -1.0  # qstar's answer when F_q(q) < q down to the table's smallest q


@jit
def qstar(sw, sb, q0, edges, coef):
    """The fixed point of F_q reached by iterating from q0 (as :func:`meanfield.theory._solve.qstar`):
    scan from q0 in the direct solve's steps towards F_q(q0) − q0 for the first sign change of
    F_q(q) − q, then safeguarded Newton. +inf where q^l → ∞; ``BELOW`` where F_q(q) < q all the
    way down to the table's smallest q; nan where the table cannot answer (q0 or the scan outside
    it, an untrusted panel): the caller then solves directly."""
    q_lo, q_hi = math.exp(edges[0]), math.exp(edges[-1])
    if not q_lo <= q0 <= q_hi:
        return math.nan
    sb2, sw2 = sb * sb, sw * sw
    g0 = sb2 + sw2 * _v(q0, edges, coef) - q0
    if g0 != g0:
        return math.nan
    if g0 == 0.0:
        return q0
    # the steps of the direct solve: 60 of 25 %, then ×10
    k = 0
    if g0 > 0.0:
        lo = q0
        while True:
            hi = max(lo * (_STEP if k < 60 else 10.0), sb2)
            k += 1
            if hi > q_hi:
                return math.nan
            ghi = sb2 + sw2 * _v(hi, edges, coef) - hi
            if ghi != ghi:
                return math.nan
            if ghi <= 0.0:
                break
            if hi > _QMAX:
                return math.inf
            lo = hi
    else:
        hi = q0
        while True:
            lo = max(hi / (_STEP if k < 60 else 10.0), sb2)
            k += 1
            if lo < q_lo:
                return BELOW
            glo = sb2 + sw2 * _v(lo, edges, coef) - lo
            if glo != glo:
                return math.nan
            if glo >= 0.0:
                break
            hi = lo
    # g >= 0 at lo, <= 0 at hi; Newton, bisecting whenever a step leaves the bracket
    x = 0.5 * (lo + hi)
    for _ in range(200):
        g, gp = _g(x, sw, sb, edges, coef)
        if g != g or gp != gp:
            return math.nan
        if g == 0.0:
            return x
        if g > 0.0:
            lo = x
        else:
            hi = x
        step = -g / gp if gp != 0.0 else math.inf
        xn = x + step
        if not lo < xn < hi:
            xn = 0.5 * (lo + hi)
        if abs(xn - x) <= 2.0 * 2.2e-16 * abs(x) or hi - lo <= 2.0 * 2.2e-16 * hi:
            return xn
        x = xn
    return x


@jit_parallel
def fixed_many(phi, p, sw, sb, q0, table, features, out):
    """q*, χ₁ = σ_w² D(q*), F_q'(q*) = σ_w² S(q*) and F_q(q*) for flat arrays, into the columns of
    ``out``; q* = nan where the table does not reach (see :func:`qstar`), F_q(q*) = nan where it
    was not evaluated. The table's root, off by the interpolation error (a few ulps), is polished
    by one Newton step on the exact F_q, so that F_q(q*) = q* holds to rounding.

    ``table`` = (edges, coef) of the table, ``features`` = (px, ps) of φ's quadrature; ``out``
    stays an argument of its own: the loop writes it in parallel, and numba drops such writes to
    an array taken from a tuple (numba issue 5872)."""
    edges, coef = table
    px, ps = features
    phi0 = phi(0.0, p, 0)
    # E[φ'(√q Z)²] as q → 0: φ'(0)², or the mean of the one-sided squares at a kink
    d0 = 0.5 * (phi(-1e-300, p, 1) ** 2 + phi(1e-300, p, 1) ** 2)
    for i in prange(sw.size):
        q = qstar(sw[i], sb[i], q0[i], edges, coef)
        out[i, 3] = math.nan
        if q == BELOW:
            if sb[i] == 0.0 and phi0 == 0.0 and sw[i] * sw[i] * d0 < 1.0:
                # with σ_b = 0 and φ(0) = 0, F_q(q) = σ_w² d0 q + o(q) stays below q down to 0:
                # the iteration reaches 0
                out[i, 0] = 0.0
                out[i, 1] = out[i, 2] = sw[i] * sw[i] * d0
                continue
            q = math.nan  # a root below the table: the direct solve finds it
        if math.isfinite(q) and q > 0.0:
            gp = sw[i] * sw[i] * evaluate(q, edges, coef)[2] - 1.0
            g = sb[i] * sb[i] + sw[i] * sw[i] * e1(phi, p, 0, 0, 0, q, px, ps) - q
            if gp != 0.0 and abs(g / gp) < 1e-9 * q:
                q -= g / gp
                out[i, 3] = q  # F_q(q) = q to second order in the step
        out[i, 0] = q
        if math.isfinite(q):
            _, d, s = evaluate(q, edges, coef)
            out[i, 1] = sw[i] * sw[i] * d
            out[i, 2] = sw[i] * sw[i] * s
        else:
            out[i, 1] = out[i, 2] = math.nan
