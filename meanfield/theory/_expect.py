"""Gaussian expectations of an activation over flat arrays: closed forms where docs/theory.md, Numerics has
them, the exact numerics of :mod:`meanfield.theory._gauss` otherwise. Private; inputs already validated."""

from __future__ import annotations

import functools
import math

import numpy as np

from . import _gauss

RTOL = 1e-14  # error allowed to Mehler's series, relative to √(E[f²] E[g²])


def _relu_pair(c):
    """E[relu(Z₁) relu(cZ₁ + √(1−c²)Z₂)] = (√(1−c²) + (π − arccos c) c) / 2π, without cancellation.

    For c → −1 the two terms cancel to O((1+c)^{3/2}); there, with t = arccos(−c) = 2 arcsin √((1+c)/2),
    the kernel is sin t − t cos t = Σ_{k≥1} (−1)^{k+1} 2k t^{2k+1} / (2k+1)!, summed as a series."""
    c = np.asarray(c, dtype=np.float64)
    out = (np.sqrt((1.0 - c) * (1.0 + c)) + np.arccos(-c) * c) / (2.0 * np.pi)
    neg = c < -0.5
    if neg.any():
        t = 2.0 * np.arcsin(np.sqrt(0.5 * (1.0 + c[neg])))
        t2 = t * t
        term = t * t2 / 3.0  # k = 1
        acc = term.copy()
        for k in range(2, 16):
            term = -term * t2 * k / ((k - 1) * (2 * k) * (2 * k + 1))
            acc += term
        out[neg] = acc / (2.0 * np.pi)
    return out


def affine_slope(act):
    """k with E[φ(√q Z)²] = k q for ReLU-like φ (ReLU 1/2, leaky ReLU (1 + α²)/2, linear 1), whose
    variance map F_q(q) = σ_b² + k σ_w² q is affine; None for every other activation."""
    kind = act.closed_form
    if kind == "relu":
        return 0.5
    if kind == "leaky_relu":
        return 0.5 * (1.0 + act.param ** 2)
    if kind == "linear":
        return 1.0
    return None


def _closed_diag(act, a, b, m, q):
    """E[Z^m φ^(a)(√q Z) φ^(b)(√q Z)] in closed form, or None."""
    kind = act.closed_form
    key = (min(a, b), max(a, b), m)
    k = affine_slope(act)
    if k is not None:
        # E[φ²] = k q, E[φ'²] = k, E[Z φ φ'] = k √q
        if key == (0, 0, 0):
            return k * q
        if key == (1, 1, 0):
            return np.full_like(q, k)
        if key == (0, 1, 1):
            return k * np.sqrt(q)
        if key == (2, 2, 0):
            return np.zeros_like(q)
    if kind == "erf":
        if key == (0, 0, 0):
            return (2.0 / np.pi) * np.arcsin(2.0 * q / (1.0 + 2.0 * q))
        if key == (1, 1, 0):
            return (4.0 / np.pi) / np.sqrt(1.0 + 4.0 * q)
    return None


def sqrt_product(q1, q2):
    """√(q₁ q₂) for arrays of variances >= 0, without the overflow of q₁ q₂ (beyond 1.8e308:
    q₁ = q₂ = 1e160) or its underflow (below 2.2e-308, 0 from 5e-324 on: q₁ = q₂ = 1e-200).

    Computed as √(q₁ q₂) wherever the product is a normal float, as the maps always did (for
    q₁ = q₂ that is q₁ exactly); √q₁ √q₂ only where it is not."""
    with np.errstate(over="ignore", under="ignore"):
        prod = q1 * q2
    out = np.sqrt(prod)
    bad = ~(prod <= _HUGE) | ((prod < _TINY) & (q1 > 0.0) & (q2 > 0.0))
    if np.any(bad):
        out = np.where(bad, np.sqrt(q1) * np.sqrt(q2), out)
    return out


_TINY = np.finfo(np.float64).tiny  # the smallest normal float, 2.2e-308
_HUGE = np.finfo(np.float64).max


def _erf_stable(a, q1, q2, c):
    """erf's pair kernel where the direct form fails: (1 + 2q₁)(1 + 2q₂) overflows (q ~ 1e154
    and beyond), or, for φ'φ', d₁d₂ − 4q₁q₂c² cancels (large q, c near ±1; 0 or negative from
    q ~ 1e16 at c = 1). In factors that neither overflow nor cancel: with dᵢ = 1 + 2qᵢ and
    s² = (2q₁/d₁)(2q₂/d₂), E[φφ] = (2/π) arcsin(s c) and E[φ'φ'] = (4/π) / √(d₁ d₂ (1 − s²c²)),
    1 − s²c² = (1/d₁ + 1/d₂ − 1/(d₁d₂)) + s² (1 − c)(1 + c) (no cancellation at c = ±1)."""
    d1, d2 = 1.0 + 2.0 * q1, 1.0 + 2.0 * q2
    f1, f2 = np.sqrt(2.0 * q1 / d1), np.sqrt(2.0 * q2 / d2)  # each <= 1
    if a == 0:
        return (2.0 / np.pi) * np.arcsin(np.clip(f1 * f2 * c, -1.0, 1.0))
    with np.errstate(under="ignore"):
        u = (1.0 / d1 + 1.0 / d2 - 1.0 / d1 / d2) + (f1 * f2) ** 2 * (1.0 - c) * (1.0 + c)
    return (4.0 / np.pi) / (np.sqrt(d1) * np.sqrt(d2) * np.sqrt(u))


def _closed_pair(act, a, b, q1, q2, c):
    """E[φ^(a)(u₁) φ^(b)(u₂)] in closed form, or None."""
    kind = act.closed_form
    if (a, b) not in ((0, 0), (1, 1)) or kind is None:
        return None
    r = sqrt_product(q1, q2)
    if kind == "linear":
        return r * c if a == 0 else np.ones_like(c)
    if kind in ("relu", "leaky_relu"):
        alpha = act.param if kind == "leaky_relu" else 0.0
        if a == 0:
            return alpha * r * c + (1.0 - alpha) ** 2 * r * _relu_pair(c)
        return alpha + (1.0 - alpha) ** 2 * np.arccos(-c) / (2.0 * np.pi)
    if kind == "erf":
        d1, d2 = 1.0 + 2.0 * q1, 1.0 + 2.0 * q2
        with np.errstate(over="ignore", invalid="ignore"):
            dd = d1 * d2
            if a == 0:
                out = (2.0 / np.pi) * np.arcsin(2.0 * r * c / np.sqrt(dd))
            else:
                out = (4.0 / np.pi) / np.sqrt(dd - 4.0 * (r * c) ** 2)
            bad = ~(dd <= _HUGE)
            if a == 1:  # half the digits or more lost to the cancellation: not the direct form
                bad |= ~(dd - 4.0 * (r * c) ** 2 > 1e-8 * dd)
        if np.any(bad):
            out = np.where(bad, _erf_stable(a, q1, q2, c), out)
        return out
    return None


def diag(act, a, b, m, q):
    """E[Z^m φ^(a)(√q Z) φ^(b)(√q Z)] for a flat float64 array q (a or b = -1: the constant 1)."""
    out = _closed_diag(act, a, b, m, q)
    if out is not None:
        return out
    px, ps, _ = act._points
    uq, inv = np.unique(q, return_inverse=True)  # a layer of `propagate` repeats one q many times
    out = np.empty_like(uq)
    with _gauss.threads_for(uq.size):
        _gauss.e1_many(act.kernel, act.param, a, b, m, uq, px, ps, out)
    if uq.size and uq[0] == 0.0:
        out[0] = _diag_at_zero(act, a, b, m, out[0])
    return out[inv.reshape(np.shape(q))]


def _one_sided(act, a):
    """(φ^(a)(0−), φ^(a)(0+)); (1, 1) for a = -1, the constant."""
    if a < 0:
        return 1.0, 1.0
    lo, hi = act(np.array([-1e-300, 1e-300]), a)
    return float(lo), float(hi)


def _diag_at_zero(act, a, b, m, at_zero):
    """E[Z^m f(√q Z)] at q = 0, f = φ^(a) φ^(b), as its limit q → 0+: where f jumps at 0 (φ' of
    ReLU-like φ, ELU, SELU) each side has probability 1/2, (f(0+) + f(0−))/2 for m = 0 and
    (f(0+) − f(0−)) E[Z; Z > 0] = (f(0+) − f(0−))/√(2π) for m = 1, not the one-sided f(0) the
    kernel reads. ``at_zero`` (the kernel's value) is kept where f is continuous at 0."""
    (fa_lo, fa_hi), (fb_lo, fb_hi) = _one_sided(act, a), _one_sided(act, b)
    lo, hi = fa_lo * fb_lo, fa_hi * fb_hi
    if lo == hi or m > 1 or not (math.isfinite(lo) and math.isfinite(hi)):
        return at_zero
    return 0.5 * (hi + lo) if m == 0 else (hi - lo) / math.sqrt(2.0 * math.pi)


@functools.lru_cache(maxsize=256)
def _coefficients_one(act, k, q, full):
    return _coefficients(act, k, np.array([q]), full)


def coefficients(act, k, q, full=True):
    """Hermite coefficients of φ^(k)(√q Z) for the values q: ``(coef, nused, norm2, tails)`` with
    ``coef`` of shape (len(q), N_max), zero-padded after ``nused`` terms, E[φ^(k)(√q Z)²] and the
    Parseval tails. ``full=False`` stops at the first, cheaper stage (enough where |c| stays away
    from 1, e.g. at a chaotic c*: the per-c error bound sends other c to the quadrature anyway).
    A single value is cached (propagation at a fixed point asks for the same q layer after layer)."""
    q = np.ascontiguousarray(q, dtype=np.float64)
    if q.size == 1:
        return _coefficients_one(act, k, float(q[0]), full)
    return _coefficients(act, k, q, full)


def _coefficients(act, k, q, full):
    px, ps, _ = act._points
    coef = np.empty((q.size, _gauss._NCOEF))
    nused = np.empty(q.size, dtype=np.int64)
    norm2 = np.empty(q.size)
    tails = np.empty(q.size)
    with _gauss.threads_for(q.size):
        _gauss.coeffs_many(act.kernel, act.param, k, q, px, ps, coef, nused, norm2, tails, RTOL,
                           full)
    return coef, nused, norm2, tails


def pair(act, a, b, q1, q2, c, full=True):
    """E[φ^(a)(u₁) φ^(b)(u₂)] for flat float64 arrays, u₁ = √q₁ Z₁, u₂ = √q₂ (c Z₁ + √(1−c²) Z₂).
    ``full``: see :func:`coefficients`."""
    out = _closed_pair(act, a, b, q1, q2, c)
    if out is not None:
        return out
    px, ps, pk = act._points
    uq, inv = np.unique(np.concatenate([q1, q2]), return_inverse=True)
    i1, i2 = inv[: q1.size], inv[q1.size:]
    CA, UA, NA, TA = coefficients(act, a, uq, full)
    CB, UB, NB, TB = (CA, UA, NA, TA) if b == a else coefficients(act, b, uq, full)
    out = np.empty_like(c)
    with _gauss.threads_for(c.size):
        _gauss.pair_many(act.kernel, act.param, a, b, np.ascontiguousarray(q1),
                         np.ascontiguousarray(q2), np.ascontiguousarray(c), i1, i2,
                         CA, UA, NA, TA, CB, UB, NB, TB, px, ps, pk, RTOL, out)
    zero = (q1 == 0.0) & (q2 == 0.0)
    if zero.any():
        out[zero] = _pair_at_zero(act, a, b, c[zero], out[zero])
    return out


def _pair_at_zero(act, a, b, c, at_zero):
    """E[φ^(a)(u₁) φ^(b)(u₂)] at q₁ = q₂ = 0 as its limit q → 0+, where φ^(a) or φ^(b) jumps at
    0: u₁ and u₂ then only matter by their signs, alike with probability 1/4 + arcsin(c)/2π
    each way, unlike with 1/4 − arcsin(c)/2π. ``at_zero`` (the kernel's one-sided value) is kept
    where both are continuous at 0."""
    (fa_lo, fa_hi), (fb_lo, fb_hi) = _one_sided(act, a), _one_sided(act, b)
    if (fa_lo == fa_hi and fb_lo == fb_hi) or not all(map(math.isfinite, (fa_lo, fa_hi, fb_lo,
                                                                         fb_hi))):
        return at_zero
    same = 0.25 + np.arcsin(c) / (2.0 * np.pi)
    return (fa_hi * fb_hi + fa_lo * fb_lo) * same + (fa_hi * fb_lo + fa_lo * fb_hi) * (0.5 - same)
