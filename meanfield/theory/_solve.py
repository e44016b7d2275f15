"""Fixed points of the variance and correlation maps (numba, private): bracketing and Brent's
method on the exact maps, Newton on Mehler's series and on the nested quadrature for c*.
docs/theory.md §2–3: iterating the maps near the EOC needs ~1e5 steps; solving needs ~30 evaluations.

The q-map F_q is increasing, so iteration from q⁰ converges monotonically to the nearest fixed point
in the direction of F_q(q⁰) − q⁰: we bracket exactly that root by stepping from q⁰ and refine it.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import prange

from .._jit import jit, jit_parallel
from ._gauss import (
    _HMAX_COEF,
    _HMAX_COEF_1,
    _NCOEF,
    _NCOEF_1,
    Features,
    Orders,
    Point,
    e1,
    e2,
    e2_both,
    hermite_extend,
    hermite_rule,
    series,
    tail,
)

_MODE_Q = 0
_MODE_EOC = 1
_QMAX = 1e12
_QMIN = 1e-250

# The structures the longer kernels take (as in :mod:`meanfield.theory._gauss`: named at module
# level, passed between compiled functions; from Python a plain tuple in field order, named on
# entry). Arguments of one dtype that travel together go in one, so that a swap cannot compile.
Bracket = namedtuple("Bracket", "a fa b fb")
Bracket.__doc__ = """A bracket [a, b] of a root and the function's values there (fa·fb <= 0)."""

Chaotic = namedtuple("Chaotic", "sw sb q den d1")
Chaotic.__doc__ = """A point of the chaotic phase, or flat arrays of them (:func:`chaos_many`): the
weights σ_w, σ_b, q = q*, den = F_q(q*) (the normalisation of F_c) and d1 = E[φ'(√q* Z)²]."""

Options = namedtuple("Options", "rtol odd jumps")
Options.__doc__ = """How :func:`chaos_point` works: the relative tolerance of Mehler's series, and
whether φ is odd and whether φ itself jumps (then Price's slope misses a term)."""

Series = namedtuple("Series", "sw sb den A mass index")
Series.__doc__ = """F_c from Mehler's series (:func:`_series_g`): the weights, den = F_q(q*), the
Hermite coefficients ``A`` and the Parseval ``mass`` of the terms past them at the mean index
``index``."""


@jit
def _g(mode, x, phi, p, sw, sb, px, ps):
    """The function whose root is sought: F_q(x) − x (mode ``_MODE_Q``); H(x) − σ_b² (mode
    ``_MODE_EOC``, the parametric EOC)."""
    if mode == _MODE_Q:
        return sb * sb + sw * sw * e1(phi, p, 0, 0, 0, x, px, ps) - x
    return _eoc_h(phi, p, x, px, ps) - sb * sb


@jit
def _brent(mode, br, phi, p, sw, sb, px, ps):
    """Brent's method on a :class:`Bracket` [a, b] with fa·fb ≤ 0, to the last bits of the root."""
    a, fa, b, fb = br.a, br.fa, br.b, br.fb
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
        fb = _g(mode, b, phi, p, sw, sb, px, ps)
    return b


@jit
def qstar(phi, p, sw, sb, q0, px, ps):
    """The fixed point of F_q reached by iterating from q0; +inf when q^l → ∞."""
    g0 = _g(_MODE_Q, q0, phi, p, sw, sb, px, ps)
    if g0 == 0.0:
        return q0
    if g0 > 0.0:
        lo, glo = q0, g0
        k = 0
        while True:
            hi = max(lo * (1.25 if k < 60 else 10.0), sb * sb, 1e-300)
            ghi = _g(_MODE_Q, hi, phi, p, sw, sb, px, ps)
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
            glo = _g(_MODE_Q, lo, phi, p, sw, sb, px, ps)
            if glo >= 0.0:
                break
            if lo < _QMIN:
                return 0.0
            hi, ghi = lo, glo
            k += 1
    return _brent(_MODE_Q, Bracket(lo, glo, hi, ghi), phi, p, sw, sb, px, ps)


@jit_parallel
def qstar_many(phi, p, sw, sb, q0, px, ps, out):
    """``qstar`` over flat arrays."""
    for i in prange(sw.size):
        out[i] = qstar(phi, p, sw[i], sb[i], q0[i], px, ps)


@jit
def _eoc_h(phi, p, q, px, ps):
    """H(q) = q − E[φ(√q Z)²] / E[φ'(√q Z)²]: the σ_b² of the EOC point with q* = q (docs/theory.md §3)."""
    return q - e1(phi, p, 0, 0, 0, q, px, ps) / e1(phi, p, 1, 1, 0, q, px, ps)


@jit
def eoc_q(phi, p, sb, px, ps):
    """The smallest q with H(q) = σ_b² (nan if none below 1e8): scan a geometric grid upwards from
    1e-12 for the first sign change, then Brent."""
    if sb == 0.0 and phi(0.0, p, 0) == 0.0:
        return 0.0
    lo = 1e-12
    glo = _g(_MODE_EOC, lo, phi, p, 1.0, sb, px, ps)
    if glo >= 0.0:
        return lo if glo == 0.0 else math.nan
    while lo < 1e8:
        hi = lo * 1.5
        ghi = _g(_MODE_EOC, hi, phi, p, 1.0, sb, px, ps)
        if ghi >= 0.0:
            return _brent(_MODE_EOC, Bracket(lo, glo, hi, ghi), phi, p, 1.0, sb, px, ps)
        lo, glo = hi, ghi
    return math.nan


@jit_parallel
def eoc_q_many(phi, p, sb, px, ps, out):
    """``eoc_q`` over a flat array of σ_b."""
    for i in prange(sb.size):
        out[i] = eoc_q(phi, p, sb[i], px, ps)


@jit
def _power_tail(c, n0, beta):
    """Σ_{n>=n0} n^−β cⁿ / Σ_{n>=n0} n^−β (β > 1, 0 <= c < 1) to ~1e-3: the integral with the
    Euler–Maclaurin end term, by the trapezoidal rule in s = log(x / n0) (the integrand
    e^{(1−β)s − λ n0 (e^s − 1)}, λ = −log c, is analytic)."""
    lam = -math.log(c) if c > 0.0 else math.inf
    if lam == math.inf:
        return 0.0
    # the integrand falls at least like e^{−κ s}, κ = β − 1 + λ n0
    h = min(40.0, 40.0 / (beta - 1.0 + lam * n0)) / 800.0
    acc = 0.0
    for i in range(801):
        x = i * h
        w = 0.5 if i == 0 or i == 800 else 1.0
        acc += w * math.exp((1.0 - beta) * x - lam * n0 * (math.exp(x) - 1.0))
    num = n0 * acc * h * math.exp(-lam * n0) + 0.5 * math.exp(-lam * n0)
    return num / (n0 / (beta - 1.0) + 0.5)


@jit
def _series_g(c, ser, fix=(0.0, 0.0, 0.0)):
    """F_c(c) − c from the truncated :class:`Series` plus an estimate of what it leaves out: the
    missing terms Σ_{n>=N} A_n² cⁿ carry the Parseval mass ``ser.mass`` at the mean index
    ``ser.index``
    (known from E[φ²] and E[φ'²]). With A_n² ∝ n^−β beyond N, as for φ smooth but for a kink
    (β = 5/2), that mean fixes β = (2r − 1)/(r − 1), r = tail_index / N; else T c^n̄, a (Jensen)
    lower bound. ``fix`` = (a, b, c₀) adds a + b (c − c₀): the model matched to the exact value
    and slope at c₀."""
    sw, sb, den, A = ser.sw, ser.sb, ser.den, ser.A
    tail_mass, tail_index = ser.mass, ser.index
    n0 = float(A.size)
    r = tail_index / n0
    if r > 1.0 + 1e-9 and tail_mass > 0.0:
        tail = tail_mass * _power_tail(c, n0, (2.0 * r - 1.0) / (r - 1.0))
    else:
        tail = tail_mass * c ** tail_index
    return (sb * sb + sw * sw * (series(A, A, c) + tail)) / den - c + fix[0] + fix[1] * (c - fix[2])


@jit
def _newton_start(pt, A, lo):
    """(c₀, β, series): at a :class:`Chaotic` point, the root above ``lo`` of the series with
    N = len(A) terms plus a model of its tail (:func:`_series_g`), the model's exponent β
    (A_n² ∝ n^−β past N; inf where the tail falls faster than any power), and that
    :class:`Series` (with the tail's mass T and mean index n̄)."""
    sw, sb, q, den, d1 = pt.sw, pt.sb, pt.q, pt.den, pt.d1
    # Parseval: Σ A_n² = E[φ²] and, by Stein's lemma, Σ n A_n² = q E[φ'²]
    mass = 0.0
    first = 0.0
    for n in range(A.size):
        mass += A[n] * A[n]
        first += n * A[n] * A[n]
    v = (den - sb * sb) / (sw * sw)
    t_mass = max(v - mass, 0.0)
    t_index = max((q * d1 - first) / t_mass, A.size) if t_mass > 0.0 else A.size
    r = t_index / A.size
    beta = (2.0 * r - 1.0) / (r - 1.0) if r > 1.0 + 1e-9 else math.inf
    ser = Series(sw, sb, den, A, t_mass, t_index)
    a, ga = lo, _series_g(lo, ser)
    for _ in range(52):
        b = 1.0 - 0.5 * (1.0 - a)
        gb = _series_g(b, ser)
        if gb < 0.0:
            return _brent_series(Bracket(a, ga, b, gb), ser), beta, ser
        a, ga = b, gb
    return 0.5 * (lo + 1.0), beta, ser


@jit
def _cstar_newton(phi, p, pt, model, lo, feat, jumps):
    """(c*, χ_c) where c* lies beyond the range in which Mehler's series is proven accurate
    (near the EOC, c* → 1), at a :class:`Chaotic` point, on φ's :class:`Features`. ``model`` =
    (c₀, β, :class:`Series`) from :func:`_newton_start`. Each step
    evaluates F_c and its slope F_c' = σ_w² q E[φ'(u₁) φ'(u₂)] / F_q(q) by the nested quadrature
    on one rule. The first step goes to the root of the series-and-tail model matched to that
    value and slope (Newton's step with the model's curvature, which near c = 1 is large: for a
    kinked φ, F_c'' grows like 1/√(1 − c)), the next ones are Newton's; a bisection of the
    bracket [lo, 1) where a step leaves it. Steps stop at the rounding of F_c amplified by
    1/|F_c' − 1|; χ_c is σ_w² E[φ'(u₁) φ'(u₂)] at the root."""
    sw, sb, q, den = pt.sw, pt.sb, pt.q, pt.den
    c, _, ser = model
    hi = 1.0
    chic = math.nan
    last = math.inf  # the last step (inf after a bisection)
    first = True
    for _ in range(60):
        e00, e11 = e2_both(phi, p, Orders(0, 0), Point(q, q, c), feat, True)
        g = (sb * sb + sw * sw * e00) / den - c
        chic = sw * sw * e11
        if g > 0.0:
            lo = c
        elif g < 0.0:
            hi = c
        else:
            return c, chic
        gp = sw * sw * q * e11 / den - 1.0
        # the model's curvature helps from afar; close to the root its error outweighs it
        cn = _model_step(c, g, gp, lo, hi, ser) if first else math.nan
        first = False
        good = lo < cn < hi
        if not good:
            cn = c - g / gp if gp != 0.0 else math.nan
            good = lo < cn < hi
            if not good:
                cn = 0.5 * (lo + hi)
        step = abs(cn - c)
        noise = 8.0 * 2.2e-16 / abs(gp) if gp != 0.0 else 0.0
        # two steps in a row bound the rate (error_{k+1} <~ K error_k², K from them): stop when
        # the next step would be below the noise, saving one evaluation of F_c
        # (not where φ jumps: Price's slope then misses a term and Newton is only linear)
        quadratic = (not jumps and good and last < 1e-6
                     and step * step * step / (last * last) <= max(1e-15, noise))
        if step <= max(1e-14, noise) or hi - lo <= 4.4e-16 or quadratic:
            # χ_c can vary fast with c (for kinked φ as 1/√(1 − c)): evaluate it at the root
            if cn != c:
                chic = sw * sw * e2(phi, p, Orders(1, 1), Point(q, q, cn), feat)
            return cn, chic
        last = step if good else math.inf
        c = cn
    return c, chic


@jit
def _model_step(c, g, gp, lo, hi, ser):
    """The root in (lo, hi) of the model (the :class:`Series`) matched to g = F_c(c) − c and its
    slope gp at c; nan if none is found."""
    e = 1e-7 * (1.0 - c)
    dm = (_series_g(c + e, ser) - _series_g(c - e, ser)) / (2.0 * e)
    fix = (g - _series_g(c, ser), gp - dm, c)
    if gp == 0.0:
        return math.nan
    # from the Newton point outwards until the matched model changes sign (it is convex)
    b = c - g / gp
    b = min(max(b, lo), hi)
    for _ in range(60):
        gb = _series_g(b, ser, fix)
        if (gb < 0.0) == (g > 0.0) or gb == 0.0:
            return _brent_series(Bracket(c, g, b, gb), ser, fix)
        nb = b + (b - c)
        b = min(max(nb, lo), hi)
        if b == lo or b == hi:
            gb = _series_g(b, ser, fix)
            if (gb < 0.0) == (g > 0.0):
                return _brent_series(Bracket(c, g, b, gb), ser, fix)
            return math.nan
    return math.nan


@jit
def _brent_series(br, ser, fix=(0.0, 0.0, 0.0)):
    """Root of :func:`_series_g` in a :class:`Bracket` [a, b] by regula falsi with the Illinois
    modification (the start of a Newton iteration: a few ulps do not matter)."""
    a, ga, b, gb = br.a, br.fa, br.b, br.fb
    side = 0
    c = a
    for _ in range(100):
        c = (a * gb - b * ga) / (gb - ga)
        gc = _series_g(c, ser, fix)
        if gc == 0.0 or abs(b - a) <= 1e-15:
            return c
        if gc * gb < 0.0:
            a, ga = b, gb
            if side == -1:
                gb *= 0.5
            side = -1
        else:
            if side == 1:
                ga *= 0.5
            side = 1
        b, gb = c, gc
    return c


@jit
def _chi_c_series(A, q, d1, c, rtol):
    """σ_w²-free χ_c, E[φ'(u₁) φ'(u₂)] at c, from φ's own Hermite coefficients: by Stein's lemma
    φ' has coefficients B_n = √(n+1) A_{n+1} / √q, so no second set is computed. Its Parseval
    tail needs E[φ'²] = ``d1``. nan where the series' error bound |c|^N T_B exceeds rtol·d1."""
    n = A.size - 1
    B = np.empty(n)
    inv = 1.0 / math.sqrt(q)
    for k in range(n):
        B[k] = math.sqrt(k + 1.0) * A[k + 1] * inv
    T = tail(B, d1)
    if abs(c) ** n * T > rtol * d1:
        return math.nan
    return series(B, B, c)


# Stages of Mehler's series for c*: numbers of coefficients, and the panel width of their rule.
# Most c* need few terms; a stage extends the last on the same rule, or starts a new rule with
# narrower panels (He_n oscillates faster) when the width changes. The last stage keeps the 400
# terms' rule: its first 1000 coefficients agree with those of a rule of panels 0.125 wide to
# ≤ 5e-15 of √E[φ²] (tanh, hard_tanh, ELU, SiLU at q from 0.3 to 30), which moves the series by
# ~1e-16 where 400 terms did not suffice (there the coefficients past 400 are small).
_STAGE_N = np.array([40, 80, _NCOEF_1, 256, _NCOEF, 640, 1000])
_STAGE_HMAX = np.array([_HMAX_COEF_1] * 3 + [_HMAX_COEF] * 4)
_NMAX = 1000


@jit
def _series_and_slope(A, c):
    """Σ A_n² cⁿ and its derivative, by Horner's rule."""
    f = 0.0
    d = 0.0
    for n in range(A.size - 1, -1, -1):
        d = d * c + f
        f = f * c + A[n] * A[n]
    return f, d


@jit
def _cstar_series(sw, sb, den, A, T, atol):
    """c* from Mehler's series where its proven range [0, c_ok] (|c|^N T <= atol) holds it; -1
    where F_c(c_ok) >= c_ok, i.e. c* lies beyond. F_c is a power series with positive
    coefficients, so g(c) = F_c(c) − c is convex on [0, 1]: from c = 0, where g > 0, Newton's
    iterates rise monotonically to the root (each tangent lies below g), quadratically at the end."""
    sb2, sw2 = sb * sb, sw * sw
    g0 = (sb2 + sw2 * A[0] * A[0]) / den
    if g0 <= 0.0:
        return 0.0
    c_ok = _c_ok(A.size, T, atol)
    if (sb2 + sw2 * _series_and_slope(A, c_ok)[0]) / den - c_ok >= 0.0:
        return -1.0
    c = 0.0
    for _ in range(200):
        f, d = _series_and_slope(A, c)
        g = (sb2 + sw2 * f) / den - c
        gp = sw2 * d / den - 1.0
        if g <= 0.0 or gp >= 0.0:
            return c
        step = -g / gp
        c += step
        if step <= 2.2e-16 * c:
            return c
    return c


@jit
def chaos_point(phi, p, pt, feat, opts):
    """(c*, χ_c) at a :class:`Chaotic` point (q = q*, den = F_q(q*), d1 = E[φ'(√q* Z)²]), on φ's
    :class:`Features`, with the :class:`Options`.

    Mehler's series with ever more Hermite coefficients (``_STAGE_N``) wherever the series'
    proven range contains c* (docs/theory.md, Numerics); beyond the last, Newton on the nested quadrature
    (:func:`_cstar_newton`). χ_c from the series of φ' (Stein) where its bound holds at c*, else
    the next stage, else by quadrature (always where φ itself jumps: ``jumps``)."""
    sw, sb, q, den, d1 = pt.sw, pt.sb, pt.q, pt.den, pt.d1
    rtol, odd, jumps = opts.rtol, opts.odd, opts.jumps
    px, ps = feat.px, feat.ps
    coef = np.zeros(_NMAX)
    c = -1.0
    A = coef[:1]
    T = atol = 0.0
    z, wf, n2, h_prev, h = hermite_rule(phi, p, 0, q, px, ps, _STAGE_HMAX[0])
    done = 0
    for stage in range(_STAGE_N.size):
        N = _STAGE_N[stage]
        if stage > 0 and _STAGE_HMAX[stage] != _STAGE_HMAX[stage - 1]:
            z, wf, n2, h_prev, h = hermite_rule(phi, p, 0, q, px, ps, _STAGE_HMAX[stage])
            done = 0
        if z.size:
            hermite_extend(z, wf, h_prev, h, done, N, coef)
        else:
            coef[0] = phi(0.0, p, 0)
        done = N
        A = coef[:N]
        T = tail(A, n2)
        atol = rtol * n2
        c = 0.0 if odd and sb == 0.0 else _cstar_series(sw, sb, den, A, T, atol)
        if c >= 0.0:
            if jumps:  # φ' is not φ's Stein derivative: the quadrature gives χ_c
                return c, sw * sw * e2(phi, p, Orders(1, 1), Point(q, q, c), feat)
            chic = _chi_c_series(A, q, d1, c, rtol)
            if chic == chic:
                return c, sw * sw * chic
        elif N >= _NCOEF:
            # where the tail falls like a power (φ with a kink: β = 5/2), the last stage's proven
            # range can be foretold: if it will not hold c* either, go to the quadrature now
            c_ok = _c_ok(A.size, T, atol)
            model = _newton_start(pt, A, c_ok)
            n_last = _STAGE_N[-1]
            if N == n_last or model[0] > _c_ok(n_last, T * (n_last / N) ** (1.0 - model[1]), atol):
                return _cstar_newton(phi, p, pt, model, c_ok, feat, jumps)
    # the last stage returns above; here χ_c's series did not hold at a c* that the last stage's
    # series found
    return c, sw * sw * e2(phi, p, Orders(1, 1), Point(q, q, c), feat)


@jit
def _c_ok(n, T, atol):
    """The largest c where Mehler's series of n terms with Parseval tail T is proven within atol
    (|c|^n T <= atol), less 0.1 % so that the bound holds at it despite rounding; at most 0.999."""
    return min(0.999 * (atol / T) ** (1.0 / n), 1.0 - 1e-3) if T > 0.0 else 1.0 - 1e-3


@jit_parallel
def chaos_many(phi, p, pts, feat, opts, out):
    """``chaos_point`` over :class:`Chaotic` flat arrays, (c*, χ_c) into the columns of ``out``
    (a separate argument: numba loses a prange loop's writes to an array taken from a tuple)."""
    pts, feat, opts = Chaotic(*pts), Features(*feat), Options(*opts)
    sw, sb, q, den, d1 = pts.sw, pts.sb, pts.q, pts.den, pts.d1
    for i in prange(sw.size):
        out[i, 0], out[i, 1] = chaos_point(phi, p, Chaotic(sw[i], sb[i], q[i], den[i], d1[i]),
                                           feat, opts)
