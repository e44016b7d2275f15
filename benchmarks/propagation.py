"""Benchmark: correlation propagation through a deep tanh network at the Edge of Chaos.

What is compared
----------------
Two ways of iterating the infinite-width variance and correlation maps (docs/theory.md §2)

    q^l = σ_b² + σ_w² E[tanh(√q Z)²],
    c^l = (σ_b² + σ_w² E[tanh(u₁) tanh(u₂)]) / q^l,
    u₁ = √q Z₁,  u₂ = √q (c Z₁ + √(1−c²) Z₂),  q = q^{l-1}, c = c^{l-1},

for tanh on the EOC at σ_b = 0.3, from q⁰ = q* and ``--points`` correlations c⁰ evenly spaced in
[−0.99, 0.99], through ``--layers`` layers:

* **meanfield**: ``mf.propagate("tanh", q*, c0, σ_w, σ_b, layers)`` (one warm-up call first, so
  numba compilation / cache loading is not timed);
* **GH-64**: what a researcher would write by hand: a fixed 64-node Gauss–Hermite rule
  (``numpy.polynomial.hermite_e.hermegauss``) for the 1-D expectation and the 64 × 64 product rule
  for the 2-D one, vectorised over all c at once.

Both are timed (best of 3 wall-clock runs) and their c^l are compared, over all layers, with an
independent **reference** computed for ``--ref-points`` of the c⁰ (the extremes ±0.99, the two
values nearest 0, and the rest spread evenly): nested adaptive ``scipy.integrate.quad`` (inner
integral over Z₂ split where the argument of tanh changes sign; outer integral over Z₁ ≥ 0 using
the symmetry (Z₁, Z₂) → (−Z₁, −Z₂) of the integrand), with the reference's q held at q* (the
layers' q stays at q* because the input is at q*).

The reference is itself checked, at run time, against a second independent method: Mehler's series
E[tanh(u₁) tanh(u₂)] = Σ_n a_n² cⁿ with the normalised Hermite coefficients a_n of tanh(√q* Z)
computed in mpmath at 40 digits (composite Gauss–Legendre, 200 terms: the Parseval tail, printed, is
≈ 1e-21), iterated through all layers for every reference c⁰ in mpmath arithmetic. The largest
difference between the two reference trajectories is printed. Measured: one layer of the nested
quad agrees with the series to ≤ 2.2e-16 (c = −0.99 … 0.99999), and over 100 layers the two
trajectories differ by ≤ 7e-15 (rounding accumulates on the EOC, where F_c' ≈ 1 near c = 1), so the
reference is good to ~1e-14.

The EOC point is found parametrically in q (docs/theory.md §3): σ_w² = 1/E[tanh'(√q Z)²] and
σ_b² = q − σ_w² E[tanh(√q Z)²], solved for σ_b = 0.3 by ``scipy.optimize.brentq`` with the 1-D
expectations from ``mpmath.quad`` at 30 digits (σ_w ≈ 1.39558, q* ≈ 0.76347), and checked with
``mf.chi_1``.

Usage::

    PYTHONPATH=. python benchmarks/propagation.py [--layers 100] [--points 1000] [--ref-points 12]

Prints a table on stdout and, last, one JSON line with the results; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import mpmath
import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.integrate import quad
from scipy.optimize import brentq

import meanfield as mf

SIGMA_B = 0.3
C_MAX = 0.99
GH_NODES = 64
REPEATS = 3

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# The EOC point
# ----------------------------------------------------------------------------------------------

def _gauss_mp(f, q):
    """E[f(√q Z)] for an even f, in mpmath (30 digits)."""
    r = mpmath.sqrt(q)
    half = mpmath.quad(lambda z: f(r * z) * mpmath.exp(-z * z / 2), [0, 2, 4, 8, mpmath.inf])
    return 2 * half / mpmath.sqrt(2 * mpmath.pi)


def _eoc_params(q):
    """(σ_w², σ_b²) of the tanh EOC point whose fixed point is q, in mpmath."""
    q = mpmath.mpf(q)
    sw2 = 1 / _gauss_mp(lambda x: mpmath.sech(x) ** 4, q)
    return sw2, q - sw2 * _gauss_mp(lambda x: mpmath.tanh(x) ** 2, q)


def tanh_eoc(sigma_b):
    """(q*, σ_w) of the tanh EOC point at ``sigma_b``, as floats."""
    with mpmath.workdps(30):
        target = mpmath.mpf(sigma_b) ** 2
        qstar = brentq(lambda q: float(_eoc_params(q)[1] - target), 0.05, 5.0,
                       xtol=1e-300, rtol=8.9e-16, maxiter=200)
        sw2, _ = _eoc_params(qstar)
        return qstar, float(mpmath.sqrt(sw2))


# ----------------------------------------------------------------------------------------------
# The hand-written Gauss–Hermite baseline
# ----------------------------------------------------------------------------------------------

def propagate_gh(q0, c0, sigma_w, sigma_b, depth, n_nodes=GH_NODES):
    """Variance and correlation maps of tanh by an n-node Gauss–Hermite rule (product rule in 2-D),
    vectorised over the array ``c0``. Returns c of shape (depth + 1, c0.size)."""
    x, w = hermegauss(n_nodes)
    w = w / math.sqrt(2.0 * math.pi)           # probabilists' weights: Σ w = √(2π)
    sw2, sb2 = sigma_w ** 2, sigma_b ** 2
    c = np.asarray(c0, dtype=np.float64)
    cs = np.empty((depth + 1, c.size))
    cs[0] = c
    q = float(q0)
    for layer in range(1, depth + 1):
        r = math.sqrt(q)
        t1 = np.tanh(r * x)                                    # tanh(u₁) at the nodes x_i
        q_new = sb2 + sw2 * np.dot(w, t1 * t1)
        s = np.sqrt(1.0 - c * c)
        # tanh(u₂) on the grid (c, x_i, x_j), u₂ = √q (c x_i + √(1−c²) x_j)
        t2 = np.tanh(r * (c[:, None, None] * x[None, :, None]
                          + s[:, None, None] * x[None, None, :]))
        e = (t2 @ w) @ (w * t1)                                # Σ_ij w_i w_j tanh(u₁) tanh(u₂)
        c = (sb2 + sw2 * e) / q_new
        cs[layer] = c
        q = q_new
    return cs


# ----------------------------------------------------------------------------------------------
# Reference 1: nested adaptive quadrature (scipy.integrate.quad)
# ----------------------------------------------------------------------------------------------

_L = 12.0          # |z| > 12 carries Gaussian mass < 4e-33
_EPSABS = 1e-15
_EPSREL = 1e-13


def pair_quad(c, q):
    """E[tanh(u₁) tanh(u₂)] by nested quad; u₁ = √q Z₁, u₂ = √q (c Z₁ + √(1−c²) Z₂)."""
    r = math.sqrt(q)
    sd = r * math.sqrt((1.0 - c) * (1.0 + c))
    tanh, exp = math.tanh, math.exp

    def inner(z1):                              # E[tanh(m + sd Z₂)] · √(2π), m = √q c z₁
        m = r * c * z1
        if sd == 0.0:
            return tanh(m) * math.sqrt(2.0 * math.pi)

        def f(z2):
            return tanh(m + sd * z2) * exp(-0.5 * z2 * z2)

        z0 = -m / sd                            # tanh's argument changes sign here
        pieces = [(-_L, z0), (z0, _L)] if -_L < z0 < _L else [(-_L, _L)]
        return sum(quad(f, a, b, epsabs=_EPSABS, epsrel=_EPSREL, limit=200)[0] for a, b in pieces)

    def outer(z1):
        return tanh(r * z1) * exp(-0.5 * z1 * z1) * inner(z1)

    # the integrand is even under (z₁, z₂) → (−z₁, −z₂): integrate z₁ over [0, L] and double
    total = quad(outer, 0.0, _L, epsabs=_EPSABS, epsrel=_EPSREL, limit=200)[0]
    return 2.0 * total * _INV_SQRT_2PI ** 2


def q_map_quad(q, sigma_w, sigma_b):
    """F_q(q) = σ_b² + σ_w² E[tanh(√q Z)²] by quad."""
    r = math.sqrt(q)
    e = 2.0 * quad(lambda z: math.tanh(r * z) ** 2 * math.exp(-0.5 * z * z), 0.0, _L,
                   epsabs=0.0, epsrel=2e-14, limit=200)[0] * _INV_SQRT_2PI
    return sigma_b ** 2 + sigma_w ** 2 * e


def reference_quad(c0, qstar, sigma_w, sigma_b, depth):
    """c^l, shape (depth + 1, c0.size), by nested quad with q held at q*."""
    den = q_map_quad(qstar, sigma_w, sigma_b)
    sw2, sb2 = sigma_w ** 2, sigma_b ** 2
    cs = np.empty((depth + 1, c0.size))
    cs[0] = c0
    t0 = time.perf_counter()
    for layer in range(1, depth + 1):
        cs[layer] = [(sb2 + sw2 * pair_quad(c, qstar)) / den for c in cs[layer - 1]]
        if layer % 10 == 0 or layer == depth:
            log(f"  reference (nested quad): layer {layer}/{depth}, "
                f"{time.perf_counter() - t0:.1f} s")
    return cs


# ----------------------------------------------------------------------------------------------
# Reference 2 (check of reference 1): Mehler's series with mpmath Hermite coefficients
# ----------------------------------------------------------------------------------------------

def hermite_coefficients_mp(q, n_terms=200, width=0.5, n_gl=30):
    """Normalised Hermite coefficients a_n = E[tanh(√q Z) He_n(Z)]/√n! (n < n_terms) and
    E[tanh(√q Z)²], in mpmath, by composite Gauss–Legendre on [0, 2√N + 12] (the integrands are
    even; tanh's poles are ≥ 1.8 away from the real z axis, so each 0.5-wide panel is exact to far
    below float precision)."""
    x_gl, w_gl = mpmath.mp.gauss_quadrature(n_gl, "legendre")
    r = mpmath.sqrt(mpmath.mpf(q))
    norm = 2 / mpmath.sqrt(2 * mpmath.pi)       # N(0, 1) density, doubled for [0, ∞)
    sq = [mpmath.sqrt(n) for n in range(n_terms + 1)]
    a = [mpmath.mpf(0)] * n_terms
    norm2 = mpmath.mpf(0)
    half = mpmath.mpf(width) / 2
    for p in range(int(math.ceil((2.0 * math.sqrt(n_terms) + 12.0) / width))):
        mid = p * width + half
        for xg, wg in zip(x_gl, w_gl):
            z = mid + half * xg
            f = mpmath.tanh(r * z)
            wf = norm * half * wg * mpmath.exp(-z * z / 2) * f
            norm2 += wf * f
            h_prev, h = mpmath.mpf(0), mpmath.mpf(1)
            for n in range(n_terms):
                if n % 2:                        # tanh is odd: even coefficients vanish
                    a[n] += wf * h
                h_prev, h = h, (z * h - sq[n] * h_prev) / sq[n + 1]
    return a, norm2


def reference_mehler(c0, qstar, sigma_w, sigma_b, depth):
    """c^l, shape (depth + 1, c0.size), by Mehler's series in mpmath (40 digits), q held at q*.
    Also returns the Parseval tail E[tanh²] − Σ a_n² (the series' truncation error at |c| = 1)."""
    with mpmath.workdps(40):
        a, norm2 = hermite_coefficients_mp(qstar)
        a2 = [x * x for x in a]
        tail = norm2 - sum(a2)
        sw2, sb2 = mpmath.mpf(sigma_w) ** 2, mpmath.mpf(sigma_b) ** 2
        den = sb2 + sw2 * norm2
        cs = np.empty((depth + 1, c0.size))
        cs[0] = c0
        for k, c_in in enumerate(c0):
            c = mpmath.mpf(float(c_in))
            for layer in range(1, depth + 1):
                e = mpmath.mpf(0)
                for coef in reversed(a2):        # Horner: Σ a_n² cⁿ
                    e = e * c + coef
                c = (sb2 + sw2 * e) / den
                cs[layer, k] = float(c)
        return cs, float(tail)


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------

def best_of(fn, repeats=REPEATS):
    """(best wall time in seconds, result of the last call)."""
    best, out = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def reference_indices(n_points, n_ref):
    """Indices into linspace(−0.99, 0.99, n_points): the two nearest 0 and n_ref − 2 spread evenly,
    including both ends."""
    spread = np.round(np.linspace(0, n_points - 1, max(n_ref - 2, 2))).astype(int)
    centre = np.argsort(np.abs(np.linspace(-C_MAX, C_MAX, n_points)))[:2]
    return np.unique(np.concatenate([spread, centre]))


def worst(err, c0):
    """(max error, its c⁰, its layer) of an error array of shape (layers + 1, points)."""
    layer, k = np.unravel_index(np.argmax(err), err.shape)
    return float(err[layer, k]), float(c0[k]), int(layer)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=100)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--ref-points", type=int, default=12)
    args = ap.parse_args(argv)
    depth, n = args.layers, args.points

    log("finding the tanh EOC point ...")
    qstar, sw = tanh_eoc(SIGMA_B)
    chi = mf.chi_1("tanh", sw, SIGMA_B)
    qstar_mf = mf.q_star("tanh", sw, SIGMA_B)
    c0 = np.linspace(-C_MAX, C_MAX, n)

    log("timing meanfield ...")
    mf.propagate("tanh", qstar, c0, sw, SIGMA_B, depth)      # warm-up: numba compile / cache load
    t_mf, (_, c_mf) = best_of(lambda: mf.propagate("tanh", qstar, c0, sw, SIGMA_B, depth))

    log(f"timing GH-{GH_NODES} ...")
    t_gh, c_gh = best_of(lambda: propagate_gh(qstar, c0, sw, SIGMA_B, depth))

    idx = reference_indices(n, args.ref_points)
    c0_ref = c0[idx]
    log(f"reference at {idx.size} values of c0 ...")
    t0 = time.perf_counter()
    c_ref = reference_quad(c0_ref, qstar, sw, SIGMA_B, depth)
    t_ref = time.perf_counter() - t0
    log("checking the reference against Mehler's series in mpmath ...")
    c_chk, tail = reference_mehler(c0_ref, qstar, sw, SIGMA_B, depth)
    ref_diff = float(np.max(np.abs(c_ref - c_chk)))

    err_mf, at_mf_c0, at_mf_layer = worst(np.abs(c_mf[:, idx] - c_ref), c0_ref)
    err_gh, at_gh_c0, at_gh_layer = worst(np.abs(c_gh[:, idx] - c_ref), c0_ref)
    speedup = t_gh / t_mf

    print(f"tanh EOC at sigma_b = {SIGMA_B}: sigma_w = {sw:.15f}, q* = {qstar:.15f}")
    print(f"  mf.chi_1 = {chi:.16f}  (|chi_1 - 1| = {abs(chi - 1.0):.2e});  "
          f"mf.q_star = {qstar_mf:.15f}  (diff {abs(qstar_mf - qstar):.1e})")
    print(f"propagation: {n} values of c0 in [-{C_MAX}, {C_MAX}], q0 = q*, {depth} layers")
    print(f"reference: nested scipy quad at {idx.size} values of c0 ({t_ref:.1f} s); "
          f"max |quad - Mehler/mpmath| = {ref_diff:.1e} (Mehler tail {tail:.1e})")
    print()
    print(f"{'method':<12}{'time [s]':>12}{'max |c - ref|':>16}{'worst c0':>12}{'worst layer':>13}")
    print(f"{'meanfield':<12}{t_mf:>12.4f}{err_mf:>16.2e}{at_mf_c0:>12.6f}{at_mf_layer:>13d}")
    print(f"{f'GH-{GH_NODES}':<12}{t_gh:>12.4f}{err_gh:>16.2e}{at_gh_c0:>12.6f}{at_gh_layer:>13d}")
    print(f"speedup (GH-{GH_NODES} time / meanfield time): {speedup:.1f}x")
    print(json.dumps({
        "benchmark": "propagation_tanh_eoc",
        "points": n,
        "layers": depth,
        "ref_points": int(idx.size),
        "sigma_w": sw,
        "sigma_b": SIGMA_B,
        "q_star": qstar,
        "chi_1": chi,
        "meanfield_seconds": t_mf,
        "gh64_seconds": t_gh,
        "speedup": speedup,
        "meanfield_max_error": err_mf,
        "gh64_max_error": err_gh,
        "reference_check_max_diff": ref_diff,
    }))


if __name__ == "__main__":
    main()
