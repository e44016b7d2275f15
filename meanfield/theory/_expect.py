"""Gaussian expectations of an activation over flat arrays: closed forms where docs/theory.md, Numerics has
them, the exact numerics of :mod:`meanfield.theory._gauss` otherwise. Private; inputs already validated."""

from __future__ import annotations

import functools

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


def _closed_pair(act, a, b, q1, q2, c):
    """E[φ^(a)(u₁) φ^(b)(u₂)] in closed form, or None."""
    kind = act.closed_form
    if (a, b) not in ((0, 0), (1, 1)) or kind is None:
        return None
    r = np.sqrt(q1 * q2)
    if kind == "linear":
        return r * c if a == 0 else np.ones_like(c)
    if kind in ("relu", "leaky_relu"):
        alpha = act.param if kind == "leaky_relu" else 0.0
        if a == 0:
            return alpha * r * c + (1.0 - alpha) ** 2 * r * _relu_pair(c)
        return alpha + (1.0 - alpha) ** 2 * np.arccos(-c) / (2.0 * np.pi)
    if kind == "erf":
        d1, d2 = 1.0 + 2.0 * q1, 1.0 + 2.0 * q2
        if a == 0:
            return (2.0 / np.pi) * np.arcsin(2.0 * r * c / np.sqrt(d1 * d2))
        return (4.0 / np.pi) / np.sqrt(d1 * d2 - 4.0 * (r * c) ** 2)
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
    return out[inv.reshape(np.shape(q))]


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
    return out
