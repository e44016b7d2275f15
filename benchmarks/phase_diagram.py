"""Benchmark: the tanh phase diagram and Edge-of-Chaos curve, meanfield vs. hand-written
Gauss–Hermite, both checked against an independent adaptive-quadrature / mpmath reference.

What is compared
----------------
Mean-field quantities of a deep tanh network (docs/theory.md §2–3), with Z, Z₁, Z₂ i.i.d. N(0, 1):

    F_q(q) = σ_b² + σ_w² E[tanh(√q Z)²],            q* = its fixed point reached from q⁰ = 1,
    χ₁    = σ_w² E[tanh'(√q* Z)²],
    F_c(c) = (σ_b² + σ_w² E[tanh(u₁) tanh(u₂)]) / q*,  u₁ = √q* Z₁, u₂ = √q* (c Z₁ + √(1−c²) Z₂),
    c*    = 1 if χ₁ <= 1, else the fixed point of F_c in [0, 1),
    χ_c   = σ_w² E[tanh'(u₁) tanh'(u₂)] at c*,
    ξ_q   = −1/log F_q'(q*),  ξ_c = −1/log χ_c   (+inf where the rate is >= 1).

**A. Phase diagram** on the ``--n`` × ``--n`` grid σ_w ∈ linspace(0.5, 4, n), σ_b ∈ linspace(0, 2, n)
(n = 200 by default, 40 with ``--quick``):

* **meanfield**: ``mf.phase_diagram("tanh", σ_w, σ_b)``, after one warm-up call on a 2 × 1 grid
  (numba compilation / cache loading is not timed); best of ``--repeats`` wall-clock runs, with
  numba's default thread count (printed), plus one run on a single numba thread.
* **GH**: what a researcher would write with numpy: ``hermegauss(100)`` for the 1-D expectations and
  the 50 × 50 product of ``hermegauss(50)`` for the 2-D ones. q ← F_q(q) is iterated from q = 1,
  vectorised over the grid, until |Δq| < 1e-12 or 2000 iterations; χ₁ and F_q'(q*) (for ξ_q) by the
  1-D rule; on the chaotic points (χ₁ > 1) c ← F_c(c) is iterated from c = 0.5, vectorised over
  chunks of 2000 points (the 2-D rule needs 2500 nodes per point), until |Δc| < 1e-12 or 2000
  iterations (clipped to [−1, 1]: near the EOC the 2-D rule's F_c can exceed 1); χ_c by the 2-D
  rule. Two stopping rules, each run once:

  - *per-point*: a point whose |Δ| < 1e-12 leaves the working set (cheaper, and each point's
    result does not depend on the rest of the grid); this is the stronger baseline;
  - *batch max*: every point of the batch (the whole grid for q, a chunk for c) is updated until
    the largest |Δ| in the batch is < 1e-12 (the plain `while max |Δ| >= tol` loop); near-EOC
    points that need ~2000 iterations keep their whole chunk iterating (skip this run with
    ``--no-max-rule``).

  Accuracy is measured at the points (σ_w, σ_b) = (4, 2) (a grid corner), (2.5, 1), (1.2, 0.3),
  (3, 0.3), (0.8, 0.3) and three chaotic points close to the EOC, (1.86, 1), (2.33, 2),
  (1.05, 0.01) (χ₁ − 1 ≈ 1e-3 … 3e-3; there c* ≈ 0.997, 0.999 lies beyond the range where
  Mehler's series alone is accurate, and 1/(1 − χ_c) ≈ 300 … 1000 amplifies any error of F_c in
  c*). They are computed separately with meanfield and GH (per-point rule; the same functions as
  for the grid; the (4, 2) rows of the grid runs are compared with them), against a
  **reference**: q* by ``mpmath.findroot`` on F_q(q) = q with ``mpmath.quad`` at 30 digits, χ₁
  and F_q'(q*) by ``mpmath.quad``; c* by ``scipy.optimize.brentq`` on F_c(c) − c with F_c by nested
  adaptive ``scipy.integrate.quad`` (inner integral over Z₂ split where the argument of tanh changes
  sign, outer over Z₁ ≥ 0 using the (Z₁, Z₂) → (−Z₁, −Z₂) symmetry), and χ_c by the same nested
  quad. The 2-D part of the reference is checked against a second independent rule: a composite
  16-point Gauss–Legendre product rule on [−10, 10]² with panels of width 0.25 (tanh's nearest
  poles are ≥ π/(2√q*) ≈ 0.38 from the real axis, so each panel is exact to rounding), with c*
  solved again by brentq; the largest difference is printed (near the EOC it is the rounding of
  F_c amplified by 1/(1 − χ_c)).

**B. EOC curve** at 100 points σ_b ∈ linspace(0, 2, 100), parametrically in q (docs/theory.md §3):
σ_w² = 1/E[tanh'(√q Z)²], σ_b² = H(q) = q − σ_w² E[tanh(√q Z)²], solved for q:

* **meanfield**: ``mf.eoc_curve("tanh", sigma_b=...)``, best of ``--repeats-eoc``;
* **GH-256**: ``hermegauss(256)`` for both expectations, H(q) = σ_b² solved for all σ_b at once by
  vectorised bisection on [0, 50] (100 halvings), best of ``--repeats-eoc``;
* **reference** at 8 values of σ_b (0, 0.1, 0.3, 0.5, 1, 1.5, 1.8, 2; computed separately with
  ``mf.eoc`` and the GH-256 function): ``mpmath.findroot`` on H(q) = σ_b² with ``mpmath.quad``
  at 30 digits (σ_b = 0: q* = 0, σ_w = 1 exactly).

Usage::

    PYTHONPATH=. python benchmarks/phase_diagram.py [--n 200] [--quick] [--repeats 3]

Prints tables on stdout and, last, one JSON line with the key numbers; progress goes to stderr.
The load average (another process may share the cores) is printed with every timing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings

import mpmath
import numba
import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from numpy.polynomial.legendre import leggauss
from scipy.integrate import quad
from scipy.optimize import brentq

import meanfield as mf

SW_RANGE = (0.5, 4.0)
SB_RANGE = (0.0, 2.0)
ACC_POINTS = [(4.0, 2.0), (2.5, 1.0), (1.2, 0.3), (3.0, 0.3), (0.8, 0.3),
              (1.86, 1.0), (2.33, 2.0), (1.05, 0.01)]      # the last three: chaotic, near the EOC
EOC_N = 100
EOC_REF_SB = [0.0, 0.1, 0.3, 0.5, 1.0, 1.5, 1.8, 2.0]

GH_1D = 100
GH_2D = 50
GH_EOC = 256
TOL_ITER = 1e-12
MAX_ITER = 2000
C_START = 0.5
CHUNK = 2000            # chaotic points per chunk of the 2-D iteration: 2000 × 2500 doubles = 40 MB

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def load():
    return os.getloadavg()[0]


def best_of(fn, repeats):
    """(best wall time in seconds, load average over the runs, result of the last call)."""
    best, out, loads = math.inf, None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
        loads.append(load())
    return best, max(loads), out


def xi(rate):
    """ξ = −1/log(rate), +inf where rate >= 1."""
    rate = np.asarray(rate, dtype=np.float64)
    with np.errstate(divide="ignore"):
        out = -1.0 / np.log(np.where(rate >= 1.0, 1.0, rate))
    return np.where(rate >= 1.0, np.inf, out)


# ----------------------------------------------------------------------------------------------
# A. The hand-written Gauss–Hermite baseline
# ----------------------------------------------------------------------------------------------

def _gh(n):
    x, w = hermegauss(n)
    return x, w * _INV_SQRT_2PI          # probabilists' weights: Σ w = √(2π) → 1


def _iterate(step, x0, per_point):
    """Fixed-point iteration x ← step(x, idx) (``idx``: the points being updated) from ``x0`` until
    |Δx| < TOL_ITER or MAX_ITER steps. ``per_point``: a converged point leaves the working set;
    else every point is updated until the largest |Δx| is below the tolerance. Returns x, the
    number of points not converged, the number of steps and the point-updates done."""
    x = x0.copy()
    a = np.arange(x.size)
    steps = work = stuck = 0
    for _ in range(MAX_ITER):
        steps += 1
        x_new = step(x[a], a)
        delta = np.abs(x_new - x[a])
        x[a] = x_new
        work += a.size
        if per_point:
            a = a[delta >= TOL_ITER]
            if a.size == 0:
                break
        elif delta.max() < TOL_ITER:
            break
    else:
        stuck = int(a.size) if per_point else int(np.sum(delta >= TOL_ITER))
    return x, stuck, steps, work


def phase_gh(sw, sb, per_point=True, n1=GH_1D, n2=GH_2D, chunk=CHUNK):
    """q*, χ₁, c*, χ_c, ξ_q, ξ_c for flat arrays (σ_w, σ_b), by fixed-degree Gauss–Hermite rules
    and fixed-point iteration (``per_point``: see :func:`_iterate`), with iteration statistics."""
    sw = np.asarray(sw, dtype=np.float64)
    sb = np.asarray(sb, dtype=np.float64)
    sw2, sb2 = sw * sw, sb * sb
    x, w = _gh(n1)

    # q* by iterating the variance map from q = 1, vectorised over all points
    def q_step(qa, a):
        t = np.tanh(np.sqrt(qa)[:, None] * x)
        return sb2[a] + sw2[a] * ((t * t) @ w)

    q, q_stuck, q_steps, q_work = _iterate(q_step, np.ones_like(sw), per_point)

    t = np.tanh(np.sqrt(q)[:, None] * x)
    d = 1.0 - t * t                                     # tanh' = sech²
    chi1 = sw2 * ((d * d) @ w)
    fq_slope = sw2 * ((d * d - 2.0 * t * t * d) @ w)    # σ_w² E[φ'² + φ φ''], φ'' = −2 tanh sech²

    # c* on the chaotic points by iterating the correlation map from c = 0.5, chunk by chunk
    x2, w2 = _gh(n2)
    X = x2[:, None]                                     # Z₁ along axis 1, Z₂ along axis 2
    Y = x2[None, :]
    c = np.ones_like(sw)
    chic = chi1.copy()
    chaotic = np.flatnonzero(chi1 > 1.0)
    c_stuck = c_steps = c_work = 0
    for s in range(0, chaotic.size, chunk):
        idx = chaotic[s:s + chunk]
        r = np.sqrt(q[idx])
        wt1 = w2 * np.tanh(r[:, None] * x2)             # w_i tanh(u₁) at the nodes, per point
        num0, sw2i, qi = sb2[idx], sw2[idx], q[idx]

        def c_step(ca, a, r=r, wt1=wt1, num0=num0, sw2i=sw2i, qi=qi):
            ra = r[a]
            u2 = (ra * ca)[:, None, None] * X + (ra * np.sqrt(1.0 - ca * ca))[:, None, None] * Y
            e = np.einsum("pi,pi->p", np.tanh(u2) @ w2, wt1[a])
            return np.clip((num0[a] + sw2i[a] * e) / qi[a], -1.0, 1.0)

        cc, stuck, steps, work = _iterate(c_step, np.full(idx.size, C_START), per_point)
        c_stuck += stuck
        c_steps = max(c_steps, steps)
        c_work += work
        c[idx] = cc
        # χ_c = σ_w² E[sech²(u₁) sech²(u₂)] at c*
        wd1 = w2 * (1.0 - np.tanh(r[:, None] * x2) ** 2)
        u2 = (r * cc)[:, None, None] * X + (r * np.sqrt(1.0 - cc * cc))[:, None, None] * Y
        d2 = 1.0 - np.tanh(u2) ** 2
        chic[idx] = sw2i * np.einsum("pi,pi->p", d2 @ w2, wd1)
    return {"q_star": q, "chi_1": chi1, "c_star": c, "chi_c": chic, "xi_q": xi(fq_slope),
            "xi_c": xi(chic), "q_stuck": q_stuck, "c_stuck": c_stuck, "q_steps": q_steps,
            "c_steps": c_steps, "q_work": q_work, "c_work": c_work, "n_chaotic": int(chaotic.size)}


def phase_mf(sw, sb):
    """The same quantities from meanfield, one call per point (flat arrays of (σ_w, σ_b))."""
    rows = [mf.phase_diagram("tanh", [a], [b]).iloc[0] for a, b in zip(sw, sb)]
    return {k: np.array([r[k] for r in rows]) for k in ("q_star", "chi_1", "c_star", "chi_c",
                                                        "xi_q", "xi_c")}


# ----------------------------------------------------------------------------------------------
# A. Reference: mpmath (1-D) and nested scipy quad (2-D), checked by composite Gauss–Legendre
# ----------------------------------------------------------------------------------------------

def _gauss_mp(f, q):
    """E[f(√q Z)] for an even f, by mpmath.quad at the working precision."""
    r = mpmath.sqrt(q)
    half = mpmath.quad(lambda z: f(r * z) * mpmath.exp(-z * z / 2), [0, 0.5, 1, 2, 4, 8, mpmath.inf])
    return 2 * half / mpmath.sqrt(2 * mpmath.pi)


def ref_1d(sw, sb):
    """(q*, χ₁, F_q'(q*)) in mpmath at 30 digits; q* is the root of F_q(q) − q (unique for tanh
    with σ_b > 0; F_q(q) − q > 0 at q = 0 and < 0 for large q)."""
    with mpmath.workdps(30):
        sw2, sb2 = mpmath.mpf(sw) ** 2, mpmath.mpf(sb) ** 2

        def g(q):
            return sb2 + sw2 * _gauss_mp(lambda u: mpmath.tanh(u) ** 2, q) - q

        # bracket, then a float-precision Brent step for the starting point, then mpmath's secant
        hi = sb2 + sw2 + 1
        q0 = brentq(lambda q: float(g(mpmath.mpf(q))), 1e-12, float(hi), xtol=1e-10)
        qs = mpmath.findroot(g, mpmath.mpf(q0), tol=mpmath.mpf(10) ** -28)
        chi1 = sw2 * _gauss_mp(lambda u: mpmath.sech(u) ** 4, qs)
        slope = sw2 * _gauss_mp(lambda u: mpmath.sech(u) ** 4 - 2 * mpmath.tanh(u) ** 2
                                * mpmath.sech(u) ** 2, qs)
        return float(qs), float(chi1), float(slope)


_L = 12.0           # |z| > 12 carries Gaussian mass < 4e-33
_EPSABS = 1e-15
_EPSREL = 1e-13


def pair_quad(f, c, q):
    """E[f(u₁) f(u₂)] for f odd or even (f(−x) f(−y) = f(x) f(y)) by nested quad."""
    r = math.sqrt(q)
    sd = r * math.sqrt((1.0 - c) * (1.0 + c))
    exp = math.exp

    def inner(z1):                              # E[f(m + sd Z₂)] · √(2π), m = √q c z₁
        m = r * c * z1
        if sd == 0.0:
            return f(m) * math.sqrt(2.0 * math.pi)

        def g(z2):
            return f(m + sd * z2) * exp(-0.5 * z2 * z2)

        z0 = -m / sd                            # the argument of f changes sign here
        pieces = [(-_L, z0), (z0, _L)] if -_L < z0 < _L else [(-_L, _L)]
        return sum(quad(g, a, b, epsabs=_EPSABS, epsrel=_EPSREL, limit=200)[0] for a, b in pieces)

    def outer(z1):
        return f(r * z1) * exp(-0.5 * z1 * z1) * inner(z1)

    total = quad(outer, 0.0, _L, epsabs=_EPSABS, epsrel=_EPSREL, limit=200)[0]
    return 2.0 * total * _INV_SQRT_2PI ** 2


def _sech2(u):
    return 1.0 / math.cosh(u) ** 2 if abs(u) < 300.0 else 0.0


class PairGL:
    """E[f(u₁) f(u₂)] by a composite Gauss–Legendre product rule on [−10, 10]² (vectorised)."""

    def __init__(self, width=0.25, nodes=16, L=10.0):
        xg, wg = leggauss(nodes)
        edges = np.arange(-L, L + 0.5 * width, width)
        mids = 0.5 * (edges[:-1] + edges[1:])
        self.z = (mids[:, None] + 0.5 * width * xg[None, :]).ravel()
        self.w = np.tile(0.5 * width * wg, mids.size) * np.exp(-0.5 * self.z ** 2) * _INV_SQRT_2PI

    def __call__(self, f, c, q):
        r = math.sqrt(q)
        z, w = self.z, self.w
        f1 = w * f(r * z)
        u2 = r * (c * z[:, None] + math.sqrt((1.0 - c) * (1.0 + c)) * z[None, :])
        return float(f1 @ (f(u2) @ w))


def _sech2_np(u):
    return 1.0 / np.cosh(np.minimum(np.abs(u), 300.0)) ** 2


def ref_cstar(pair, tanh_f, sech2_f, sw, sb, q, chi1):
    """(c*, χ_c) with the 2-D expectation ``pair``: c* by brentq on F_c(c) − c in [0, 1)."""
    if chi1 <= 1.0:
        return 1.0, chi1
    sw2, sb2 = sw * sw, sb * sb

    def g(c):
        return (sb2 + sw2 * pair(tanh_f, c, q)) / q - c

    if sb == 0.0:
        cs = 0.0                                # F_c is odd for tanh without bias
    else:
        hi = 0.5
        while g(hi) >= 0.0:                     # F_c(0) − 0 = σ_b²/q* > 0; find g < 0 below 1
            hi = 1.0 - 0.5 * (1.0 - hi)
        cs = brentq(g, 0.0, hi, xtol=1e-16, rtol=8.9e-16, maxiter=200)
    return cs, sw2 * pair(sech2_f, cs, q)


def reference_points(points):
    """Reference (q*, χ₁, c*, χ_c, ξ_q, ξ_c) at each point, and the largest difference of the
    nested-quad c*, χ_c from the Gauss–Legendre ones."""
    gl = PairGL()
    ref = {k: [] for k in ("q_star", "chi_1", "c_star", "chi_c", "xi_q", "xi_c")}
    check = 0.0
    for sw, sb in points:
        t0 = time.perf_counter()
        q, chi1, slope = ref_1d(sw, sb)
        cs, chic = ref_cstar(pair_quad, math.tanh, _sech2, sw, sb, q, chi1)
        cs_gl, chic_gl = ref_cstar(gl, np.tanh, _sech2_np, sw, sb, q, chi1)
        check = max(check, abs(cs - cs_gl), abs(chic - chic_gl))
        for k, v in zip(ref, (q, chi1, cs, chic, float(xi(slope)), float(xi(chic)))):
            ref[k].append(v)
        log(f"  reference at (sigma_w, sigma_b) = ({sw}, {sb}): {time.perf_counter() - t0:.1f} s; "
            f"|quad - GL|: c* {abs(cs - cs_gl):.1e}, chi_c {abs(chic - chic_gl):.1e}")
    return {k: np.array(v) for k, v in ref.items()}, check


# ----------------------------------------------------------------------------------------------
# B. The EOC curve: GH-256 and the mpmath reference
# ----------------------------------------------------------------------------------------------

def eoc_gh(sb, n=GH_EOC, q_hi=50.0, halvings=100):
    """(σ_w, q*) on the EOC for an array of σ_b: H(q) = σ_b² by vectorised bisection, GH-n."""
    x, w = _gh(n)
    sb2 = np.asarray(sb, dtype=np.float64) ** 2

    def moments(q):
        t = np.tanh(np.sqrt(q)[:, None] * x)
        d = 1.0 - t * t
        return (t * t) @ w, (d * d) @ w

    lo = np.zeros_like(sb2)
    hi = np.full_like(sb2, q_hi)
    for _ in range(halvings):
        mid = 0.5 * (lo + hi)
        e2, d2 = moments(mid)
        above = mid - e2 / d2 > sb2
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    q = 0.5 * (lo + hi)
    return 1.0 / np.sqrt(moments(q)[1]), q


def eoc_ref(sb):
    """(σ_w, q*) on the tanh EOC at σ_b, mpmath at 30 digits."""
    if sb == 0.0:
        return 1.0, 0.0
    with mpmath.workdps(30):
        target = mpmath.mpf(sb) ** 2

        def params(q):
            sw2 = 1 / _gauss_mp(lambda u: mpmath.sech(u) ** 4, q)
            return sw2, q - sw2 * _gauss_mp(lambda u: mpmath.tanh(u) ** 2, q)

        def h(q):
            return params(q)[1] - target

        q0 = brentq(lambda q: float(h(mpmath.mpf(q))), 1e-6, 50.0, xtol=1e-10)
        q = mpmath.findroot(h, mpmath.mpf(q0), tol=mpmath.mpf(10) ** -28)
        return float(mpmath.sqrt(params(q)[0])), float(q)


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------

FIELDS = ("q_star", "chi_1", "c_star", "chi_c")


def grid_max_diff(a, b, keys=FIELDS + ("xi_q",)):
    """Largest |a − b| over the grid, per quantity (equal infinities count as 0), and the number of
    points where either is nan (skipped)."""
    out, nans = {}, {}
    for k in keys:
        x, y = np.asarray(a[k], float), np.asarray(b[k], float)
        same_inf = np.isinf(x) & np.isinf(y) & (x == y)
        d = np.where(same_inf, 0.0, np.abs(x - y))
        out[k] = float(np.nanmax(d))
        nans[k] = int(np.sum(np.isnan(d)))
    return out, nans


ACTIVATIONS = ("tanh", "erf", "relu", "leaky_relu:0.1", "linear", "elu", "selu", "gelu", "silu",
               "softplus", "sigmoid", "hard_tanh")


def grid_run(n, args):
    """Section A on the n × n grid: meanfield (default threads and one thread) and the GH
    baselines, timed; the grid compared between them. Prints progress, returns the numbers."""
    sw_ax = np.linspace(*SW_RANGE, n)
    sb_ax = np.linspace(*SB_RANGE, n)
    sw_g, sb_g = (a.ravel() for a in np.meshgrid(sw_ax, sb_ax, indexing="ij"))
    threads = numba.get_num_threads()
    r = {"n": n}
    log(f"[{n} x {n}] mf.phase_diagram, best of {args.repeats} ({threads} numba threads) ...")
    r["t_mf"], r["load_mf"], df = best_of(lambda: mf.phase_diagram("tanh", sw_ax, sb_ax), args.repeats)
    log(f"  {r['t_mf']:.2f} s; one numba thread ...")
    numba.set_num_threads(1)
    try:
        r["t_mf1"], r["load_mf1"], _ = best_of(lambda: mf.phase_diagram("tanh", sw_ax, sb_ax), 1)
    finally:
        numba.set_num_threads(threads)
    log(f"  {r['t_mf1']:.2f} s")
    rules = [("point", True)] + ([] if args.no_max_rule else [("max", False)])
    gh, r["t_gh"], r["load_gh"] = {}, {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # log of GH's negative F_q'(q*)
        for name, per_point in rules:
            log(f"[{n} x {n}] GH baseline, {name} stopping rule (one run) ...")
            r["t_gh"][name], r["load_gh"][name], gh[name] = best_of(
                lambda pp=per_point: phase_gh(sw_g, sb_g, pp), 1)
            log(f"  {r['t_gh'][name]:.2f} s")
    mf_grid = {k: df[k].to_numpy() for k in df.columns if k != "phase"}
    ghp = gh["point"]
    gh_phase = np.where(ghp["chi_1"] < 1.0 - 1e-9, "ordered",
                        np.where(ghp["chi_1"] > 1.0 + 1e-9, "chaotic", "eoc"))
    r["phase_disagree"] = int(np.sum(gh_phase != df.phase.to_numpy()))
    r["phases"] = df.phase.value_counts().to_dict()
    r["diff_grid"], r["nan_grid"] = grid_max_diff(mf_grid, ghp)
    r["diff_rules"] = grid_max_diff(gh["max"], ghp)[0] if "max" in gh else None
    r["ok_axes"] = bool(np.array_equal(df.sigma_w.to_numpy(), sw_g)
                        and np.array_equal(df.sigma_b.to_numpy(), sb_g))
    r["gh_stats"] = {k: {f: g[f] for f in ("q_steps", "q_work", "q_stuck", "n_chaotic", "c_steps",
                                           "c_work", "c_stuck")} for k, g in gh.items()}
    corner = int(np.flatnonzero((sw_g == 4.0) & (sb_g == 2.0))[0])
    r["corner"] = {"mf": {k: mf_grid[k][corner] for k in FIELDS},
                   **{f"GH {k}": {f: g[f][corner] for f in FIELDS} for k, g in gh.items()}}
    return r


def activation_times(n, repeats):
    """Section C: mf.phase_diagram for every built-in activation on the n × n grid (best of
    ``repeats``, after one warm-up call)."""
    sw_ax = np.linspace(*SW_RANGE, n)
    sb_ax = np.linspace(*SB_RANGE, n)
    out = {}
    for name in ACTIVATIONS:
        log(f"[C] {name} on {n} x {n} ...")
        mf.phase_diagram(name, [0.8, 3.0], [0.0, 0.3])
        t, ld, df = best_of(lambda a=name: mf.phase_diagram(a, sw_ax, sb_ax), repeats)
        out[name] = {"seconds": t, "load": ld, "phases": df.phase.value_counts().to_dict()}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[100, 200],
                    help="grid sizes per axis (default 100 200)")
    ap.add_argument("--quick", action="store_true", help="n = 40, and 40 x 40 for section C")
    ap.add_argument("--repeats", type=int, default=3, help="meanfield phase-diagram runs (best of)")
    ap.add_argument("--repeats-eoc", type=int, default=5, help="EOC-curve runs (best of)")
    ap.add_argument("--no-max-rule", action="store_true",
                    help="skip the (slow) GH run that stops on the largest |Δ| of each batch")
    ap.add_argument("--no-activations", action="store_true", help="skip section C")
    args = ap.parse_args(argv)
    sizes = [40] if args.quick else args.n
    load_start = load()
    uptime_start = os.popen("uptime").read().strip()

    log("warm-up (numba compile / cache load) ...")
    t0 = time.perf_counter()
    mf.phase_diagram("tanh", [0.8, 3.0], [0.3])
    mf.eoc_curve("tanh", sigma_b=[0.0, 1.0])
    t_warm = time.perf_counter() - t0
    threads = numba.get_num_threads()

    # ---------------- A. phase diagrams ----------------
    runs = [grid_run(n, args) for n in sizes]

    log("accuracy points: meanfield and GH (per-point rule) ...")
    pts_sw = np.array([p[0] for p in ACC_POINTS])
    pts_sb = np.array([p[1] for p in ACC_POINTS])
    mf_pts = phase_mf(pts_sw, pts_sb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        gh_pts = phase_gh(pts_sw, pts_sb, True)
    for r in runs:   # the (4, 2) corner of each grid against the separate point runs
        r["corner_diff"] = {"meanfield": max(abs(r["corner"]["mf"][k] - mf_pts[k][0]) for k in FIELDS)}
        for name in r["t_gh"]:
            r["corner_diff"][f"GH {name}"] = max(abs(r["corner"][f"GH {name}"][k] - gh_pts[k][0])
                                                 for k in FIELDS)
    log("reference (mpmath 1-D, nested quad 2-D, checked by Gauss-Legendre) ...")
    ref, ref_check = reference_points(ACC_POINTS)
    err_mf = {k: np.abs(mf_pts[k] - ref[k]) for k in FIELDS}
    err_gh = {k: np.abs(gh_pts[k] - ref[k]) for k in FIELDS}

    # ---------------- B. EOC curve ----------------
    sb_eoc = np.linspace(*SB_RANGE, EOC_N)
    log(f"timing mf.eoc_curve ({EOC_N} points, best of {args.repeats_eoc}) ...")
    t_eoc_mf, load_eoc_mf, cur = best_of(lambda: mf.eoc_curve("tanh", sigma_b=sb_eoc), args.repeats_eoc)
    log(f"timing GH-{GH_EOC} EOC ({EOC_N} points, best of {args.repeats_eoc}) ...")
    t_eoc_gh, load_eoc_gh, (sw_eoc_gh, q_eoc_gh) = best_of(lambda: eoc_gh(sb_eoc), args.repeats_eoc)
    eoc_curve_diff = (float(np.max(np.abs(cur.sigma_w.to_numpy() - sw_eoc_gh))),
                      float(np.max(np.abs(cur.q_star.to_numpy() - q_eoc_gh))))
    log("EOC reference (mpmath findroot, 30 digits) ...")
    sb_ref = np.array(EOC_REF_SB)
    with warnings.catch_warnings():
        warnings.simplefilter("error", mf.UnstableEOCWarning)
        sw_e_mf, q_e_mf = (np.asarray(v) for v in mf.eoc("tanh", sb_ref))
    sw_e_gh, q_e_gh = eoc_gh(sb_ref)
    refs = [eoc_ref(s) for s in EOC_REF_SB]
    sw_e_ref = np.array([r[0] for r in refs])
    q_e_ref = np.array([r[1] for r in refs])
    chi_on_eoc = mf.chi_1("tanh", sw_e_ref[1:], sb_ref[1:])
    ends_same = bool(cur.sigma_w.iloc[0] == sw_e_mf[0] and cur.sigma_w.iloc[-1] == sw_e_mf[-1]
                     and cur.q_star.iloc[-1] == q_e_mf[-1])
    eoc_err_mf = (float(np.max(np.abs(sw_e_mf - sw_e_ref))), float(np.max(np.abs(q_e_mf - q_e_ref))))
    eoc_err_gh = (float(np.max(np.abs(sw_e_gh - sw_e_ref))), float(np.max(np.abs(q_e_gh - q_e_ref))))

    # ---------------- C. every activation ----------------
    n_c = 40 if args.quick else 100
    acts = {} if args.no_activations else activation_times(n_c, args.repeats)
    load_end = load()

    # ---------------- report ----------------
    label = {"point": "per-point |dx| stop", "max": "batch max |dx| stop"}
    print(f"machine: {os.cpu_count()} cores; numba threads {threads}; "
          f"uptime at start: {uptime_start}")
    print(f"warm-up (compile/cache load, not timed): {t_warm:.2f} s")
    for r in runs:
        n = r["n"]
        print()
        print(f"A. tanh phase diagram, {n} x {n} grid: sigma_w in linspace{SW_RANGE}, "
              f"sigma_b in linspace{SB_RANGE}")
        print(f"{'method':<42}{'time [s]':>10}{'load1':>8}{'this/mf':>9}")
        print(f"{f'meanfield (best of {args.repeats}, {threads} threads)':<42}{r['t_mf']:>10.2f}"
              f"{r['load_mf']:>8.2f}{1.0:>9.2f}")
        print(f"{'meanfield (1 thread, 1 run)':<42}{r['t_mf1']:>10.2f}{r['load_mf1']:>8.2f}"
              f"{r['t_mf1'] / r['t_mf']:>9.2f}")
        for name in r["t_gh"]:
            print(f"{f'GH {GH_1D} / {GH_2D}x{GH_2D}, {label[name]} (1 run)':<42}{r['t_gh'][name]:>10.2f}"
                  f"{r['load_gh'][name]:>8.2f}{r['t_gh'][name] / r['t_mf']:>9.2f}")
        for name, g in r["gh_stats"].items():
            print(f"GH {label[name]}: q: {g['q_steps']} steps, {g['q_work']} point-updates, "
                  f"{g['q_stuck']} points not converged; c ({g['n_chaotic']} chaotic points): "
                  f"<= {g['c_steps']} steps per chunk, {g['c_work']} point-updates, {g['c_stuck']} "
                  f"points not converged after {MAX_ITER}")
        print(f"grid: meanfield phases {r['phases']}; GH phase differs at {r['phase_disagree']} "
              f"points; axes/order as documented: {r['ok_axes']}")
        print("grid: max |meanfield - GH per-point|: "
              + ", ".join(f"{k} {v:.2e}" for k, v in r["diff_grid"].items()))
        print("grid: points skipped above because a value is nan: "
              + (", ".join(f"{k} {v}" for k, v in r["nan_grid"].items() if v) or "none")
              + " (GH's F_q'(q*) < 0 gives a nan xi_q); xi_c not compared (it diverges at the EOC)")
        if r["diff_rules"] is not None:
            print("grid: max |GH batch-max - GH per-point|: "
                  + ", ".join(f"{k} {v:.2e}" for k, v in r["diff_rules"].items()))
        print("(4, 2) grid corner vs the separate point runs, max |diff| over q*, chi_1, c*, chi_c: "
              + ", ".join(f"{k} {v:.1e}" for k, v in r["corner_diff"].items()))
    print()
    print(f"reference check: max |nested quad - Gauss-Legendre| over c*, chi_c = {ref_check:.1e}")
    print(f"{'(sw, sb)':<14}{'quantity':<9}{'reference':>22}{'|mf - ref|':>12}{'|GH - ref|':>12}")
    for i, (a, b) in enumerate(ACC_POINTS):
        for k in FIELDS:
            print(f"{f'({a:g}, {b:g})':<14}{k:<9}{ref[k][i]:>22.14f}{err_mf[k][i]:>12.1e}"
                  f"{err_gh[k][i]:>12.1e}")
    for k in FIELDS:
        print(f"  max error {k:<7}: meanfield {np.max(err_mf[k]):.1e}, GH {np.max(err_gh[k]):.1e}")
    print("  xi_q, xi_c (ref / mf / GH):")
    for i, (a, b) in enumerate(ACC_POINTS):
        print(f"    ({a:g}, {b:g}): xi_q {ref['xi_q'][i]:.10g} / {mf_pts['xi_q'][i]:.10g} / "
              f"{gh_pts['xi_q'][i]:.6g};  xi_c {ref['xi_c'][i]:.10g} / {mf_pts['xi_c'][i]:.10g} / "
              f"{gh_pts['xi_c'][i]:.6g}")
    print()
    print(f"B. tanh EOC curve, {EOC_N} points sigma_b in linspace{SB_RANGE}")
    print(f"{'method':<42}{'time [s]':>10}{'load1':>8}")
    print(f"{f'mf.eoc_curve (best of {args.repeats_eoc})':<42}{t_eoc_mf:>10.4f}{load_eoc_mf:>8.2f}")
    print(f"{f'GH-{GH_EOC} bisection (best of {args.repeats_eoc})':<42}{t_eoc_gh:>10.4f}"
          f"{load_eoc_gh:>8.2f}")
    print(f"curve: {len(cur)} rows, all stable: {bool(cur.stable.all())}; max |mf - GH| "
          f"sigma_w {eoc_curve_diff[0]:.1e}, q* {eoc_curve_diff[1]:.1e}; "
          f"rows at sigma_b = 0, 2 identical to mf.eoc: {ends_same}")
    print(f"{'sigma_b':<9}{'sigma_w (ref)':>20}{'q* (ref)':>20}{'mf d sw':>10}{'mf d q':>10}"
          f"{'GH d sw':>10}{'GH d q':>10}")
    for i, s in enumerate(EOC_REF_SB):
        print(f"{s:<9g}{sw_e_ref[i]:>20.15f}{q_e_ref[i]:>20.15f}{abs(sw_e_mf[i] - sw_e_ref[i]):>10.1e}"
              f"{abs(q_e_mf[i] - q_e_ref[i]):>10.1e}{abs(sw_e_gh[i] - sw_e_ref[i]):>10.1e}"
              f"{abs(q_e_gh[i] - q_e_ref[i]):>10.1e}")
    print(f"max error: meanfield sigma_w {eoc_err_mf[0]:.1e}, q* {eoc_err_mf[1]:.1e}; "
          f"GH-{GH_EOC} sigma_w {eoc_err_gh[0]:.1e}, q* {eoc_err_gh[1]:.1e}")
    print(f"check: max |mf.chi_1(reference EOC point) - 1| = "
          f"{float(np.max(np.abs(chi_on_eoc - 1))):.1e}")
    if acts:
        print()
        t_tanh = acts["tanh"]["seconds"]
        print(f"C. mf.phase_diagram per activation, {n_c} x {n_c} grid (best of {args.repeats})")
        print(f"{'activation':<16}{'time [s]':>10}{'/ tanh':>8}{'load1':>8}  phases")
        for name, a in acts.items():
            print(f"{name:<16}{a['seconds']:>10.3f}{a['seconds'] / t_tanh:>8.2f}{a['load']:>8.2f}  "
                  f"{a['phases']}")
    print(f"load average (1 min): start {load_start:.2f}, end {load_end:.2f}")
    print(json.dumps({
        "benchmark": "phase_diagram_tanh",
        "numba_threads": threads,
        "load_start": load_start,
        "load_end": load_end,
        "grids": [{
            "n": r["n"],
            "mf_phase_diagram_seconds": r["t_mf"],
            "mf_phase_diagram_1thread_seconds": r["t_mf1"],
            "gh_phase_diagram_seconds": r["t_gh"],
            "speed_ratio": {k: v / r["t_mf"] for k, v in r["t_gh"].items()},
            "speed_ratio_1thread": {k: v / r["t_mf1"] for k, v in r["t_gh"].items()},
            "gh_not_converged": {k: {"q": g["q_stuck"], "c": g["c_stuck"]}
                                 for k, g in r["gh_stats"].items()},
            "grid_max_diff_mf_gh": r["diff_grid"],
            "phase_disagreements": r["phase_disagree"],
        } for r in runs],
        "accuracy_points": [list(p) for p in ACC_POINTS],
        "mf_max_error": {k: float(np.max(v)) for k, v in err_mf.items()},
        "gh_max_error": {k: float(np.max(v)) for k, v in err_gh.items()},
        "reference_check": ref_check,
        "mf_eoc_curve_seconds": t_eoc_mf,
        "gh256_eoc_seconds": t_eoc_gh,
        "eoc_sigma_b_ref": EOC_REF_SB,
        "mf_eoc_max_error": {"sigma_w": eoc_err_mf[0], "q_star": eoc_err_mf[1]},
        "gh256_eoc_max_error": {"sigma_w": eoc_err_gh[0], "q_star": eoc_err_gh[1]},
        "activation_grid": n_c if acts else None,
        "activation_seconds": {k: v["seconds"] for k, v in acts.items()},
    }))


if __name__ == "__main__":
    main()
