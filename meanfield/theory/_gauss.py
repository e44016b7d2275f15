"""Exact Gaussian expectations (numba kernels, private). docs/theory.md, Numerics.

Two tools, each with a known error:

* **Graded composite Gauss–Legendre** on z ∈ [−L, L] (L = 9: the Gaussian mass outside is < 1e-18).
  The mesh has an edge at every kink of φ (mapped to z = x/√q) and is graded geometrically around
  every kink and smooth feature of φ: panels start at the feature's width (scale/√q, in z) and double
  away from it up to width 1. On each panel φ is analytic in a Bernstein ellipse of parameter ρ ≳ 4.6
  (the nearest singularity is at least one panel-width away), so 10 nodes give an error ≲ ρ^(−20)
  ≈ 1e-13 of the panel's share, and in practice ~1e-16. The two-dimensional expectation
  E[f(u₁) g(u₂)] with u₁ = √q₁ Z₁, u₂ = √q₂ (c Z₁ + s Z₂), s = √((1−c)(1+c)) (no cancellation as
  c → ±1), is nested: the inner integral over Z₂ (with g's features at (x/√q₂ − c z₁)/s) is done for
  each outer node, the outer mesh is graded around f's features and those of the smoothed inner
  function (a kink of g becomes a feature of width √q₂ s there). At s = 0 the inner integral is
  g(√q₂ c z₁) exactly.

* **Mehler's formula** (the dual activation): with A_n = E[φ^(a)(√q₁ Z) He_n(Z)]/√n! and B_n likewise,
  E[φ^(a)(u₁) φ^(b)(u₂)] = Σ_n A_n B_n cⁿ. The truncation error after N terms is bounded by
  |c|^N √(T_A T_B) (Cauchy–Schwarz) with the tails T = E[(φ^(a))²] − Σ_{n<N} A_n², which we compute.
  The series is used wherever that bound is below the tolerance, else the quadrature.
"""

from __future__ import annotations

import contextlib
import math
from collections import namedtuple

import numba
import numpy as np
from numba import prange

from .._jit import jit, jit_parallel

_L = 9.0          # half-width of the z domain for expectations
_L_COEF = 13.0    # half-width for Hermite coefficients (|He_n(z)/√n!| e^{-z²/2} <= e^{-z²/4})
_HMAX = 1.0       # widest panel (in z)
_HMIN = 1e-14     # narrowest starting panel
# Hermite coefficients are computed with _NCOEF_1 terms first, and with _NCOEF where the Parseval
# tail is not yet negligible; panels narrow enough to resolve He_n's oscillations (frequency √n:
# 10 Gauss–Legendre nodes on a panel of width h integrate e^{i√n z} to ~(e √n h / 40)^20 < 1e-16)
_NCOEF_1, _HMAX_COEF_1 = 128, 0.4
_NCOEF, _HMAX_COEF = 400, 0.2
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

_GL_X, _GL_W = np.polynomial.legendre.leggauss(10)
# Gauss–Hermite for inner integrals whose integrand is analytic in a wide strip: where c → 1 the
# inner variable is scaled by √q (1 − c²)^½ and φ's features are that much wider in it. With 40
# nodes, every singularity at least _GH_STRIP from the real axis and every kink at least _GH_KINK
# away, the rule is exact to rounding: measured against mpmath, a pole at distance 3 costs
# 7e-15 (tanh), 1e-14 (1/(1+x²)), 3e-13 (sech², a φ'), at 4.5 all below 1e-15; a jump of φ' at
# 9 sd costs 1e-7, at 12 sd 3e-16.
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(40)
_GH_W = _GH_W / math.sqrt(2.0 * math.pi)
_GH_STRIP, _GH_KINK = 4.5, 12.0
_MAXEDGES = 4096

# The structures the longer kernels take (built by the ``*_many`` entry points below, which keep
# their callers' signatures; a structure crosses into numba as a plain tuple in its field order
# and is named on entry, as in :mod:`meanfield.nets._layer`)
Features = namedtuple("Features", "px ps pk")
Features.__doc__ = """φ's features (``Activation._points``): the positions ``px`` of its kinks and
smooth features, their widths ``ps``, and whether each is a kink, ``pk`` (read by the
two-dimensional rules only; None for the one-dimensional ones)."""

Table = namedtuple("Table", "coef used norm2 tails")
Table.__doc__ = """Hermite coefficients of φ^(k)(√q Z) over a grid of q (:func:`coeffs_many`): rows
``coef`` zero-padded after ``used`` terms, E[φ^(k)(√q Z)²] ``norm2``, Parseval tails ``tails``."""

Points = namedtuple("Points", "q1 q2 c i1 i2")
Points.__doc__ = """Flat arrays of (q₁, q₂, c) and the rows of q₁ and q₂ in the coefficient tables."""

Point = namedtuple("Point", "q1 q2 c")
Point.__doc__ = """One (q₁, q₂, c): u₁ = √q₁ Z₁, u₂ = √q₂ (c Z₁ + √(1−c²) Z₂)."""

Hermite = namedtuple("Hermite", "p k rtol full")
Hermite.__doc__ = """Which Hermite series of φ, and how long: of φ^(k), ``p`` φ's parameter, long
enough that its Parseval tail is below ``rtol`` E[φ^(k)²], trying the longer series only if
``full``. (φ itself travels apart: numba types a function inside a tuple as an experimental
first-class function, and warns at every call.)"""

Orders = namedtuple("Orders", "a b")
Orders.__doc__ = """The derivative orders (a, b) of E[φ^(a)(u₁) φ^(b)(u₂)]."""

Sides = namedtuple("Sides", "A TA B TB")
Sides.__doc__ = """Mehler's series of one pair: the coefficients of each side and their tails."""


@jit
def _grade(a, ha, b, hb, hmax, out, n):
    """Append to ``out[n:]`` the interior edges of [a, b], graded from width ``ha`` at a and ``hb``
    at b: after the first panel each panel is as wide as its distance from its end (panels
    [d, 2d]), at most ``hmax``; return the new count."""
    mid = 0.5 * (a + b)
    x = a
    w = ha
    while x + w < mid and n < out.size - 2:
        x += w
        out[n] = x
        n += 1
        w = min(x - a, hmax)
    out[n] = mid
    n += 1
    start = n
    x = b
    w = hb
    while x - w > mid and n < out.size - 1:
        x -= w
        out[n] = x
        n += 1
        w = min(b - x, hmax)
    # the right side was written from b downwards: reverse it
    i = start
    j = n - 1
    while i < j:
        out[i], out[j] = out[j], out[i]
        i += 1
        j -= 1
    return n


@jit
def _mesh(zc, h0, lo, hi, hmax):
    """Panel edges on [lo, hi]: an edge at every point ``zc`` inside, graded from width ``h0``."""
    order = np.argsort(zc)
    pts = np.empty(zc.size + 2)
    hs = np.empty(zc.size + 2)
    pts[0] = lo
    hs[0] = hmax
    m = 1
    for i in order:
        z = zc[i]
        if lo < z < hi:
            h = min(max(h0[i], _HMIN), hmax)
            if z == pts[m - 1]:
                hs[m - 1] = min(hs[m - 1], h)
            else:
                pts[m] = z
                hs[m] = h
                m += 1
    pts[m] = hi
    hs[m] = hmax
    m += 1
    # a feature's width bounds the panels near it, not only at it: each point's starting width is
    # at most any other point's width plus their distance (a kink next to a narrow feature)
    for i in range(m):
        for j in range(m):
            hs[i] = min(hs[i], hs[j] + abs(pts[i] - pts[j]))
    out = np.empty(_MAXEDGES)
    out[0] = lo
    n = 1
    for i in range(m - 1):
        n = _grade(pts[i], hs[i], pts[i + 1], hs[i + 1], hmax, out, n)
        out[n] = pts[i + 1]
        n += 1
    return out[:n]


@jit
def _rule(edges, with_pdf):
    """Gauss–Legendre nodes and weights on the panels; the weights include the N(0, 1) density
    when ``with_pdf``."""
    npan = edges.size - 1
    k = _GL_X.size
    z = np.empty(npan * k)
    w = np.empty(npan * k)
    for i in range(npan):
        half = 0.5 * (edges[i + 1] - edges[i])
        mid = 0.5 * (edges[i + 1] + edges[i])
        for j in range(k):
            zz = mid + half * _GL_X[j]
            z[i * k + j] = zz
            ww = half * _GL_W[j]
            if with_pdf:
                ww *= _INV_SQRT_2PI * math.exp(-0.5 * zz * zz)
            w[i * k + j] = ww
    return z, w


@jit
def _rule_1d(q, px, ps, L, hmax):
    """Quadrature rule in z for E[f(√q Z)] where f has features at ``px`` of widths ``ps``."""
    r = math.sqrt(q)
    zc = np.empty(px.size)
    h0 = np.empty(px.size)
    for i in range(px.size):
        zc[i] = px[i] / r if r > 0.0 else (math.copysign(math.inf, px[i]) if px[i] != 0.0 else 0.0)
        h0[i] = ps[i] / r if r > 0.0 else math.inf
    return _rule(_mesh(zc, h0, -L, L, hmax), True)


@jit
def _fk(phi, p, k, x):
    """φ^(k)(x), with k = -1 meaning the constant 1."""
    if k < 0:
        return 1.0
    return phi(x, p, k)


@jit
def e1(phi, p, a, b, m, q, px, ps):
    """E[Z^m φ^(a)(√q Z) φ^(b)(√q Z)] for m ∈ {0, 1}, a, b ∈ {-1 (constant 1), 0, 1, 2}."""
    if q == 0.0:
        return _fk(phi, p, a, 0.0) * _fk(phi, p, b, 0.0) if m == 0 else 0.0
    r = math.sqrt(q)
    z, w = _rule_1d(q, px, ps, _L, _HMAX)
    acc = 0.0
    for i in range(z.size):
        x = r * z[i]
        f = _fk(phi, p, a, x)
        v = w[i] * f * (f if b == a else _fk(phi, p, b, x))  # φ costs as much as the rest
        if m == 1:
            v *= z[i]
        acc += v
    return acc


@jit
def e2(phi, p, orders, point, feat):
    """E[φ^(a)(u₁) φ^(b)(u₂)] at a :class:`Point`, u₁ = √q₁ Z₁, u₂ = √q₂ (c Z₁ + √(1−c²) Z₂), by
    nested quadrature on φ's :class:`Features`; (a, b) are the :class:`Orders` (each structure a
    namedtuple, or a plain tuple in its field order)."""
    return e2_both(phi, p, orders, point, feat, False)[0]


@jit
def e2_both(phi, p, orders, point, feat, both):
    """``(e2(a, b), e2(a + 1, b + 1))`` on one nested rule (the second only if ``both``, else 0):
    a Newton step on the correlation map needs F_c and, by Price's theorem, its slope
    q E[φ'(u₁) φ'(u₂)] at the same c."""
    orders, point, feat = Orders(*orders), Point(*point), Features(*feat)
    a, b = orders.a, orders.b
    q1, q2, c = point.q1, point.q2, point.c
    px, ps, pk = feat.px, feat.ps, feat.pk
    r1 = math.sqrt(q1)
    r2 = math.sqrt(q2)
    s = math.sqrt((1.0 - c) * (1.0 + c))
    npt = px.size
    # outer mesh: features of f at x/r1, and of the smoothed inner function at x/(r2 c)
    zc = np.empty(2 * npt)
    h0 = np.empty(2 * npt)
    m = 0
    for i in range(npt):
        if r1 > 0.0:
            zc[m] = px[i] / r1
            h0[m] = ps[i] / r1
            m += 1
        rc = r2 * abs(c)
        if rc > 0.0:
            xs = ps[i]
            if pk[i]:
                xs = min(xs, r2 * s)
            zc[m] = px[i] / (r2 * c)
            h0[m] = xs / rc
            m += 1
    z1, w1 = _rule(_mesh(zc[:m], h0[:m], -_L, _L, _HMAX), True)
    zi = np.empty(npt)
    hi = np.empty(npt)
    acc = 0.0
    acc_d = 0.0
    for i in range(z1.size):
        f = _fk(phi, p, a, r1 * z1[i])
        fd = _fk(phi, p, a + 1, r1 * z1[i]) if both else 0.0
        if f == 0.0 and fd == 0.0:
            continue
        mean = r2 * c * z1[i]
        if s == 0.0 or r2 == 0.0:
            g = _fk(phi, p, b, mean)
            gd = _fk(phi, p, b + 1, mean) if both else 0.0
        else:
            sd = r2 * s
            smooth = True
            for j in range(npt):
                zi[j] = (px[j] - mean) / sd
                hi[j] = ps[j] / sd
                if (pk[j] and abs(zi[j]) < _GH_KINK) or (not pk[j] and hi[j] < _GH_STRIP):
                    smooth = False
            if smooth:
                z2, w2 = _GH_X, _GH_W
            else:
                z2, w2 = _rule(_mesh(zi, hi, -_L, _L, _HMAX), True)
            g = 0.0
            gd = 0.0
            for j in range(z2.size):
                g += w2[j] * _fk(phi, p, b, mean + sd * z2[j])
                if both:
                    gd += w2[j] * _fk(phi, p, b + 1, mean + sd * z2[j])
        acc += w1[i] * f * g
        acc_d += w1[i] * fd * gd
    return acc, acc_d


@jit
def hermite_coeffs(phi, p, k, q, feat, hmax, coef):
    """Normalised Hermite coefficients A_n = E[φ^(k)(√q Z) He_n(Z)]/√n!, n < ``coef.size``, written
    to ``coef``; returns E[φ^(k)(√q Z)²] on the same rule (:func:`hermite_rule` on φ's
    :class:`Features`, then :func:`hermite_extend`)."""
    coef[:] = 0.0
    z, wf, norm2, h_prev, h = hermite_rule(phi, p, k, q, feat.px, feat.ps, hmax)
    if z.size == 0:
        coef[0] = phi(0.0, p, k)
        return norm2
    hermite_extend(z, wf, h_prev, h, 0, coef.size, coef)
    return norm2


@jit
def hermite_rule(phi, p, k, q, px, ps, hmax):
    """The quadrature behind the Hermite coefficients of φ^(k)(√q Z), panels no wider than
    ``hmax``: nodes ``z`` and weights × φ^(k) ``wf`` (node j of panel P at j * npan + P, so that the
    panels' partial sums are contiguous), E[φ^(k)(√q Z)²], and the recurrence state (He_{-1}, He_0)
    for :func:`hermite_extend`. Empty arrays at q = 0 (then φ^(k) is the constant φ^(k)(0))."""
    r = math.sqrt(q)
    if r == 0.0:
        v = phi(0.0, p, k)
        e = np.empty(0)
        return e, e, v * v, e, e
    z0, w0 = _rule_1d(q, px, ps, _L_COEF, hmax)
    nk = _GL_X.size
    npan = z0.size // nk
    z = np.empty(z0.size)
    wf = np.empty(z0.size)
    norm2 = 0.0
    i = 0
    for P in range(npan):
        for j in range(nk):
            f = phi(r * z0[i], p, k)
            wfi = w0[i] * f
            norm2 += wfi * f
            z[j * npan + P] = z0[i]
            wf[j * npan + P] = wfi
            i += 1
    return z, wf, norm2, np.zeros(z.size), np.ones(z.size)


@jit
def hermite_extend(z, wf, h_prev, h, n0, n1, coef):
    """Write A_n, n0 <= n < n1, to ``coef[n0:n1]``, continuing the recurrence from the state
    (``h_prev``, ``h``) = (He_{n0-2}, He_{n0-1}) (normalised; (He_{-1}, He_0) = (0, 1) for n0 = 0),
    which it advances. Each panel's sum is added with Neumaier's compensation: a bias of a few ulps
    in A_1 would otherwise add up layer after layer on the EOC, where F_c'(1) = 1.

    The three-term recurrence runs over all nodes at once for each n: along n at one node it is a
    chain of dependent multiplications, across nodes it vectorises. Every sum is formed in the
    same order as a node-by-node loop would."""
    nk = _GL_X.size
    npan = z.size // nk
    psum = np.empty((n1 - n0, npan))
    for n in range(n0, n1):
        row = psum[n - n0]
        for P in range(npan):
            row[P] = 0.0
        if n == 1:
            for i in range(z.size):
                h_prev[i] = 1.0
                h[i] = z[i]
        if n <= 1:
            for j in range(nk):
                off = j * npan
                for P in range(npan):
                    row[P] += wf[off + P] * h[off + P]
            continue
        # one pass per n: the recurrence and the panels' partial sums together
        a = math.sqrt(n - 1.0)
        inv = 1.0 / math.sqrt(float(n))
        for j in range(nk):
            off = j * npan
            for P in range(npan):
                i = off + P
                h_next = (z[i] * h[i] - a * h_prev[i]) * inv
                h_prev[i] = h[i]
                h[i] = h_next
                row[P] += wf[i] * h_next
    acc = np.zeros(n1 - n0)
    comp = np.zeros(n1 - n0)
    for P in range(npan):
        for n in range(n1 - n0):
            x = psum[n, P]
            c = acc[n]
            t = c + x
            if abs(c) >= abs(x):
                comp[n] += (c - t) + x
            else:
                comp[n] += (x - t) + c
            acc[n] = t
    for n in range(n1 - n0):
        coef[n0 + n] = acc[n] + comp[n]


@jit
def series(A, B, c):
    """Σ_n A_n B_n cⁿ by Horner's rule."""
    acc = 0.0
    for n in range(A.size - 1, -1, -1):
        acc = acc * c + A[n] * B[n]
    return acc


@jit
def tail(coef, norm2):
    """Upper estimate of Σ_{n≥N} A_n²: what Parseval leaves after the N coefficients, floored at
    the rounding error of the subtraction."""
    s = 0.0
    for n in range(coef.size):
        s += coef[n] * coef[n]
    return max(norm2 - s, 0.0) + 8e-16 * norm2


@jit
def pair(phi, p, a, b, point, sides, feat, tol):
    """E[φ^(a)(u₁) φ^(b)(u₂)] at a :class:`Point`: Mehler's series (:class:`Sides`) over the first
    min(len(A), len(B)) terms where its error bound |c|^N √(T_A T_B) is below the absolute
    tolerance ``tol``, else the nested quadrature (on φ's :class:`Features`)."""
    c = point.c
    A, B = sides.A, sides.B
    n = min(A.size, B.size)
    if abs(c) ** n * math.sqrt(sides.TA * sides.TB) <= tol:
        return series(A[:n], B[:n], c)
    return e2(phi, p, Orders(a, b), point, feat)


def e1_many(phi, p, a, b, m, q, px, ps, out):
    """``e1`` over a flat array of q (by :func:`_e1_many`)."""
    _e1_many(phi, p, a, b, m, q, (px, ps, None), out)  # Features


@jit_parallel
def _e1_many(phi, p, a, b, m, q, feat, out):
    feat = Features(*feat)
    px, ps = feat.px, feat.ps
    for i in prange(q.size):
        out[i] = e1(phi, p, a, b, m, q[i], px, ps)


def coeffs_many(phi, p, k, q, px, ps, coef, nused, norm2, tails, rtol, full):
    """Hermite coefficients (zero-padded rows of ``coef``), their number, E[φ^(k)²] and the
    Parseval tail for each q (a :class:`Table`'s columns, by :func:`_coeffs_many`): _NCOEF_1 terms, or, if
    ``full``, _NCOEF where the tail exceeds ``rtol`` E[φ^(k)²] (the series then serves c closer
    to ±1)."""
    _coeffs_many(phi, (p, k, rtol, full), q, (px, ps, None), coef, nused, norm2, tails)
    # Hermite, Features


@jit_parallel
def _coeffs_many(phi, series, q, feat, coef, nused, norm2, tails):
    # the outputs stay separate arguments: numba loses the writes of a prange loop to an array
    # taken from a tuple (numba issue 5872); the inputs travel in tuples
    series, feat = Hermite(*series), Features(*feat)
    p, k, rtol, full = series.p, series.k, series.rtol, series.full
    for i in prange(q.size):
        row = coef[i]
        n2 = hermite_coeffs(phi, p, k, q[i], feat, _HMAX_COEF_1, row[:_NCOEF_1])
        row[_NCOEF_1:] = 0.0
        t = tail(row[:_NCOEF_1], n2)
        n = _NCOEF_1
        if full and t > rtol * n2:
            n2 = hermite_coeffs(phi, p, k, q[i], feat, _HMAX_COEF, row)
            t = tail(row, n2)
            n = _NCOEF
        nused[i] = n
        norm2[i] = n2
        tails[i] = t


def pair_many(phi, p, a, b, q1, q2, c, i1, i2, CA, UA, NA, TA, CB, UB, NB, TB, px, ps, pk, rtol,
              out):
    """E[φ^(a)(u₁) φ^(b)(u₂)] for flat arrays (by :func:`_pair_many`); ``i1``/``i2`` index the
    coefficient tables (``U``: how many coefficients each row holds). At c = 1 with q₁ = q₂ the
    one-dimensional expectation is used, so that c = 1 maps to 1."""
    _pair_many(phi, p, (a, b), (q1, q2, c, i1, i2), ((CA, UA, NA, TA), (CB, UB, NB, TB)),
               (px, ps, pk), rtol, out)  # Orders, Points, (Table, Table), Features


@jit_parallel
def _pair_many(phi, p, orders, points, tables, feat, rtol, out):
    # reads the structures, writes only ``out``, a separate argument (see _coeffs_many)
    orders, pts, feat = Orders(*orders), Points(*points), Features(*feat)
    a, b = orders.a, orders.b
    ta, tb = Table(*tables[0]), Table(*tables[1])
    q1, q2, c, i1, i2 = pts.q1, pts.q2, pts.c, pts.i1, pts.i2
    for i in prange(c.size):
        if c[i] == 1.0 and q1[i] == q2[i]:
            out[i] = e1(phi, p, a, b, 0, q1[i], feat.px, feat.ps)
            continue
        j1 = i1[i]
        j2 = i2[i]
        atol = rtol * math.sqrt(ta.norm2[j1] * tb.norm2[j2]) + 1e-300
        out[i] = pair(phi, p, a, b, Point(q1[i], q2[i], c[i]),
                      Sides(ta.coef[j1, :ta.used[j1]], ta.tails[j1], tb.coef[j2, :tb.used[j2]],
                            tb.tails[j2]), feat, atol)


PARALLEL_MIN = 64  # below this many items a parallel region costs more than it saves


@contextlib.contextmanager
def threads_for(n):
    """Run the enclosed ``*_many`` kernels on one thread when they have fewer than PARALLEL_MIN
    items: waking numba's thread pool costs ~0.1 ms, and far more when the cores are busy.
    Larger batches use ``numba.get_num_threads()`` threads (set NUMBA_NUM_THREADS to change)."""
    if n >= PARALLEL_MIN:
        yield
        return
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(old)


def interleaved(n):
    """An order of ``n`` items that deals them out to numba's threads like cards: a parallel loop
    hands each thread one contiguous block, and where neighbouring items cost alike (points of a
    grid near the EOC), blocks of every T-th item balance the threads' work."""
    return np.argsort(np.arange(n) % numba.get_num_threads(), kind="stable")
