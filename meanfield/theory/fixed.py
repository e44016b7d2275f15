"""Fixed points of the infinite-width maps and what they set: q*, χ₁, c*, χ_c, the depth scales
ξ_q, ξ_c and the EOC rate β (docs/theory.md §2; Poole et al. 2016, Schoenholz et al. 2017,
Hayou et al. 2019).

Every function takes the activation first and broadcasts its numeric arguments like numpy, as
:mod:`meanfield.theory.maps` does.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .._validate import (
    InputError,
    scalar_or_array,
)
from . import _expect, _qtable, _solve
from ._base import NoFixedPointWarning, _params, _q_map
from ._gauss import interleaved, threads_for

__all__ = ["q_star", "c_star", "chi_1", "chi_c", "depth_scales", "eoc_rate"]


def _table(act):
    """The activation's fixed-point table (:mod:`meanfield.theory._qtable`), built on first use."""
    tab = act.__dict__.get("_fixed_point_table")
    if tab is None:
        tab = act.__dict__["_fixed_point_table"] = _qtable.build(act)
    return tab


def _fixed(act, sw, sb, q0=None):
    """(q*, χ₁, F_q'(q*), F_q(q*)) for flat arrays: the fixed point reached from q⁰ (default 1),
    the slope of the correlation map at c = 1, that of the variance map at q*, and F_q(q*) (= q*
    but for rounding; nan where it was not evaluated). Closed forms for affine variance maps;
    otherwise the activation's table, and a direct solve where q* leaves it."""
    q0 = np.ones_like(sw) if q0 is None else np.ascontiguousarray(q0)
    k = _expect.affine_slope(act)
    if k is not None:
        slope = k * sw * sw
        # σ_w = √2 is not a float: a slope within a few ulps of 1 is the critical point, where
        # with σ_b = 0 every q is fixed (q* = q⁰)
        critical = np.abs(slope - 1.0) <= 4 * np.finfo(float).eps
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where((slope < 1.0) & ~critical, sb * sb / (1.0 - slope), np.inf)
        q = np.where(critical & (sb == 0.0), q0, q)
        chi, fq = slope.copy(), slope.copy()
    else:
        edges, coef = _table(act)
        out = np.empty((sw.size, 4))
        order = interleaved(sw.size)
        with threads_for(sw.size):
            _qtable.fixed_many(act.kernel, act.param, sw[order], sb[order], q0[order],
                               (edges, coef), (act._points[0], act._points[1]), out)
        out[order] = out.copy()
        q, chi, fq, fq_at_q = (np.ascontiguousarray(col) for col in out.T)
        miss = np.flatnonzero(np.isnan(q))
        if miss.size:
            px, ps, _ = act._points
            qm = np.empty(miss.size)
            with threads_for(miss.size):
                _solve.qstar_many(act.kernel, act.param, sw[miss], sb[miss], q0[miss], px, ps, qm)
            q[miss] = qm
            fin = miss[np.isfinite(qm)]
            chi[fin] = sw[fin] ** 2 * np.where(q[fin] > 0.0, _expect.diag(act, 1, 1, 0, q[fin]),
                                               _dphi2_at_0(act))
            fq[fin] = _fq_slope(act, sw[fin], q[fin])
        far = np.flatnonzero(np.isinf(q))
        if far.size:  # "divergent" may only mean beyond the solvers' range
            q[far] = _far_fixed_point(act, sw[far], sb[far])
            fin = far[np.isfinite(q[far])]
            chi[fin] = sw[fin] ** 2 * _expect.diag(act, 1, 1, 0, q[fin])
            fq[fin] = _fq_slope(act, sw[fin], q[fin])
            fq_at_q[fin] = np.nan
    inf = np.isinf(q)
    chi[inf] = fq[inf] = np.nan
    if k is not None:
        fq_at_q = np.where(inf, np.nan, sb * sb + slope * q)
    if inf.any():
        i = np.flatnonzero(inf)[0]
        warnings.warn(f"{act.name}: the variance map has no finite fixed point at {int(inf.sum())} "
                      f"point(s) (e.g. sigma_w={float(sw[i])!r}, sigma_b={float(sb[i])!r}): q^l -> inf; "
                      f"q* is reported as inf and chi/c* as nan there",
                      NoFixedPointWarning, stacklevel=4)
    return q, chi, fq, fq_at_q


_SOLVER_QMAX = 1e12  # the compiled solvers count q^l beyond this as divergent (_solve._QMAX)


def _far_fixed_point(act, sw, sb):
    """q* beyond the compiled solvers' range, for points they call divergent: a bounded φ (tanh at
    σ_w = 1e9, q* ≈ 1e18) or a large σ_b (q* ≈ σ_b²) has a finite fixed point there, which the
    solvers' cap would report as inf, "no fixed point", and its phase as "unbounded". F_q(q) > q
    on all of [q⁰, 1e12] (that is why they stopped), so the fixed point reached is the first q
    above 1e12 with F_q(q) <= q: scan decades (all points at once), then Brent. inf where F_q(q) > q
    up to 1e300 (truly divergent, or beyond float range)."""

    from scipy.optimize import brentq  # lazy: `import meanfield` stays light (tests/test_package.py)
    out = np.full(sw.shape, np.inf)
    lo = np.full(sw.shape, _SOLVER_QMAX)
    todo = np.arange(sw.size)
    hi_q = _SOLVER_QMAX
    while todo.size and hi_q < 1e300:
        hi_q *= 100.0
        with np.errstate(all="ignore"):
            g = sb[todo] ** 2 + sw[todo] ** 2 * _expect.diag(act, 0, 0, 0, np.full(todo.size, hi_q))
        crossed = g <= hi_q
        for i in todo[crossed]:
            def f(x, i=i):
                return float(sb[i] ** 2 + sw[i] ** 2 * _expect.diag(act, 0, 0, 0, np.array([x]))[0]
                             - x)
            out[i] = brentq(f, lo[i], hi_q, xtol=1e-300, rtol=4 * np.finfo(float).eps)
        todo = todo[~crossed]
        lo[todo] = hi_q
    return out


def _q_star(act, sw, sb, q0=None):
    return _fixed(act, sw, sb, q0)[0]


def q_star(activation, sigma_w, sigma_b, q0=1.0):
    """The fixed point q* of the variance map reached from q⁰, found by a root solve.

    Parameters
    ----------
    activation : str or Activation
    sigma_w, sigma_b : array_like
    q0 : array_like, default 1.0
        The input variance the iteration q^l = F_q(q^{l-1}) starts from. F_q is increasing, so the
        iteration converges monotonically to the nearest fixed point in the direction of
        F_q(q⁰) − q⁰; that is the one returned. When F_q has several fixed points (docs/theory.md §3,
        activations growing linearly such as SiLU) different q⁰ can give different q*.

    Returns
    -------
    float or ndarray
        q* (broadcast shape); ``inf`` where q^l → ∞ (no finite fixed point: ReLU with
        σ_w > √2), with a :class:`NoFixedPointWarning`.

    References
    ----------
    docs/theory.md §2; Poole et al. (2016).

    Examples
    --------
    >>> from meanfield import q_star
    >>> q_star("relu", 1.0, 1.0)
    2.0
    """
    act, shape, (sw, sb, q0) = _params(activation, sigma_w=sigma_w, sigma_b=sigma_b, q0=q0)
    return scalar_or_array(_q_star(act, sw, sb, q0).reshape(shape))


def chi_1(activation, sigma_w, sigma_b):
    """χ₁ = σ_w² E[φ'(√q* Z)²], the slope of the correlation map at c = 1.

    χ₁ < 1: ordered phase; χ₁ > 1: chaotic phase; χ₁ = 1: the Edge of Chaos.

    Parameters
    ----------
    activation : str or Activation
    sigma_w, sigma_b : array_like

    Returns
    -------
    float or ndarray
        χ₁ at q* (from q⁰ = 1), broadcast shape; nan where q* = inf.

    References
    ----------
    docs/theory.md §2; Schoenholz et al. (2017), eq. (6).

    Examples
    --------
    >>> from meanfield import chi_1
    >>> chi_1("relu", 2 ** 0.5, 0.0)
    1.0000000000000002
    """
    act, shape, (sw, sb) = _params(activation, sigma_w=sigma_w, sigma_b=sigma_b)
    return scalar_or_array(_summary(act, sw, sb, ("chi_1",))["chi_1"].reshape(shape))


def _chaos(act, sw, sb, q, chi, fq_at_q):
    """(c*, χ_c) for flat arrays with finite q*: (1, χ₁) where χ₁ <= 1; in the chaotic phase the
    stable root of F_c(c) = c in [0, 1) and the slope σ_w² E[φ'(u₁) φ'(u₂)] there. ``fq_at_q`` is
    F_q(q*) where known (nan where not), the normalisation of F_c."""
    cs = np.ones_like(q)
    chic = chi.copy()
    # at q* = 0 both inputs sit at 0 from some depth on: c* = 1
    idx = np.flatnonzero((chi > 1.0) & (q > 0.0))
    if idx.size == 0:
        return cs, chic
    swc, sbc, qc = sw[idx], sb[idx], q[idx]
    den = fq_at_q[idx]
    todo = np.isnan(den)
    if todo.any():
        den[todo] = _q_map(act, qc[todo], swc[todo], sbc[todo])
    if act.closed_form is not None:
        cs[idx], chic[idx] = _closed_chaos(act, swc, sbc, qc, den)
        return cs, chic
    px, ps, pk = act._points
    out = np.empty((idx.size, 2))
    order = interleaved(idx.size)
    with threads_for(idx.size):
        _solve.chaos_many(act.kernel, act.param,
                          (swc[order], sbc[order], qc[order], den[order],
                           chi[idx][order] / swc[order] ** 2),  # Chaotic
                          (px, ps, pk), (_expect.RTOL, act.odd, act.jumps), out)  # Features, Options
    cs[idx[order]], chic[idx[order]] = out[:, 0], out[:, 1]
    return cs, chic


def _closed_chaos(act, sw, sb, q, den):
    """(c*, χ_c) from closed-form pair expectations: Newton on F_c(c) − c, vectorised, inside
    the bracket [0, 1) that F_c(0) >= 0 and F_c(c) < c just below 1 give; χ_c = F_c'(c*)·den/q."""
    def g(c):
        f = (sb * sb + sw * sw * _expect.pair(act, 0, 0, q, q, c)) / den - c
        d = sw * sw * _expect.pair(act, 1, 1, q, q, c)
        return f, d

    lo = np.zeros_like(q)
    hi = np.ones_like(q)
    g0, _ = g(lo)
    c = np.full_like(q, 0.5)
    done = g0 <= 0.0
    c[done] = 0.0
    for _ in range(200):
        f, d = g(c)
        lo = np.where(f > 0.0, c, lo)
        hi = np.where(f < 0.0, c, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            cn = c - f / (d * q / den - 1.0)
        cn = np.where((cn > lo) & (cn < hi), cn, 0.5 * (lo + hi))
        conv = (np.abs(cn - c) <= 2.2e-16 * np.maximum(np.abs(c), 1e-300)) | (f == 0.0) | done
        c = np.where(done | (f == 0.0), c, cn)
        done = conv
        if done.all():
            break
    return c, sw * sw * _expect.pair(act, 1, 1, q, q, c)


def c_star(activation, sigma_w, sigma_b):
    """The stable fixed point c* of the correlation map at q = q*.

    c* = 1 in the ordered phase and on the EOC (χ₁ <= 1); in the chaotic phase (χ₁ > 1) c = 1 is
    unstable and c* ∈ [0, 1) is the root of F_c(c) = c (c* = 0 for odd φ with σ_b = 0).

    Parameters
    ----------
    activation : str or Activation
    sigma_w, sigma_b : array_like

    Returns
    -------
    float or ndarray
        c*, broadcast shape; nan where q* = inf.

    References
    ----------
    docs/theory.md §2; Schoenholz et al. (2017), §3.

    Examples
    --------
    >>> from meanfield import c_star
    >>> c_star("tanh", 0.5, 0.1), c_star("tanh", 3.0, 0.0)
    (1.0, 0.0)
    """
    act, shape, (sw, sb) = _params(activation, sigma_w=sigma_w, sigma_b=sigma_b)
    return scalar_or_array(_summary(act, sw, sb, ("c_star",))["c_star"].reshape(shape))


def chi_c(activation, sigma_w, sigma_b):
    """χ_c = σ_w² E[φ'(u₁) φ'(u₂)] at c = c*, q = q*: the slope of the correlation map at its
    stable fixed point (χ_c = χ₁ where c* = 1).

    Parameters
    ----------
    activation : str or Activation
    sigma_w, sigma_b : array_like

    Returns
    -------
    float or ndarray
        χ_c, broadcast shape; nan where q* = inf.

    References
    ----------
    docs/theory.md §2; Schoenholz et al. (2017), eq. (8).

    Examples
    --------
    >>> from meanfield import chi_c
    >>> round(chi_c("erf", 3.0, 0.0), 12)
    0.77651082334
    """
    act, shape, (sw, sb) = _params(activation, sigma_w=sigma_w, sigma_b=sigma_b)
    return scalar_or_array(_summary(act, sw, sb, ("chi_c",))["chi_c"].reshape(shape))


def _dphi2_at_0(act):
    """lim_{q→0} E[φ'(√q Z)²]: φ'(0)², or the mean of the one-sided squares where φ has a kink at
    0 (as the fixed-point table takes it)."""
    return 0.5 * (act(-1e-300, 1) ** 2 + act(1e-300, 1) ** 2)


def _fq_slope(act, sw, q):
    """F_q'(q) = σ_w² E[Z φ(√q Z) φ'(√q Z)] / √q (d/dq of E[φ(√q Z)²]); valid for kinked φ.
    At q = 0 (then φ(0) = 0) its limit σ_w² lim E[φ'²]."""
    out = np.empty_like(q)
    pos = q > 0.0
    out[pos] = sw[pos] ** 2 * _expect.diag(act, 0, 1, 1, q[pos]) / np.sqrt(q[pos])
    out[~pos] = sw[~pos] ** 2 * _dphi2_at_0(act)
    return out


def _xi(rate):
    """ξ = −1/log(rate): +inf where rate >= 1, 0 where rate == 0."""
    with np.errstate(divide="ignore"):
        out = -1.0 / np.log(np.where(rate >= 1.0, 1.0, np.abs(rate)))
    out[rate >= 1.0] = np.inf
    return out


def _summary(act, sw, sb, fields):
    """The requested quantities (``q_star, chi_1, c_star, chi_c, xi_q, xi_c``) for flat arrays,
    each computed once from one q*; nan where q* = inf."""
    q, chi, fq, den = _fixed(act, sw, sb)
    out = {"q_star": q, "chi_1": chi, "xi_q": _xi(fq)}
    if {"c_star", "chi_c", "xi_c"} & set(fields):
        cs = np.full_like(q, np.nan)
        chic = np.full_like(q, np.nan)
        m = np.isfinite(q)
        cs[m], chic[m] = _chaos(act, sw[m], sb[m], q[m], chi[m], den[m])
        out.update(c_star=cs, chi_c=chic, xi_c=_xi(chic))
    return {k: out[k] for k in fields}


def depth_scales(activation, sigma_w, sigma_b):
    """The depth scales ξ_q and ξ_c of the variance and correlation maps.

    |q^l − q*| ~ e^{−l/ξ_q} and |c^l − c*| ~ e^{−l/ξ_c}, with ξ_q⁻¹ = −log F_q'(q*) and
    ξ_c⁻¹ = −log χ_c.

    Parameters
    ----------
    activation : str or Activation
    sigma_w, sigma_b : array_like

    Returns
    -------
    (xi_q, xi_c) : tuple of float or ndarray
        In layers, broadcast shape; +inf where a scale diverges (ξ_c on the EOC; ξ_q at a
        saddle-node of the q-map); nan where q* = inf.

    References
    ----------
    docs/theory.md §2; Schoenholz et al. (2017), eqs. (7)–(9).

    Examples
    --------
    >>> from meanfield import depth_scales
    >>> xi_q, xi_c = depth_scales("relu", 1.0, 0.5)
    >>> round(xi_q, 12), round(xi_c, 12)
    (1.442695040889, 1.442695040889)
    """
    act, shape, (sw, sb) = _params(activation, sigma_w=sigma_w, sigma_b=sigma_b)
    s = _summary(act, sw, sb, ("xi_q", "xi_c"))
    xi_q, xi_c = s["xi_q"], s["xi_c"]
    return scalar_or_array(xi_q.reshape(shape)), scalar_or_array(xi_c.reshape(shape))


def eoc_rate(activation, sigma_w, sigma_b):
    """The constant of the polynomial convergence of c^l → 1 on the Edge of Chaos.

    For smooth φ, 1 − c^l ~ β / l with β = 2 / F_c''(1) = 2 E[φ'(√q* Z)²] / (q* E[φ''(√q* Z)²]).
    For ReLU-like φ (ReLU, leaky ReLU; EOC at σ_b = 0), 1 − c^l ~ β / l² with β = 9π²/2 for ReLU
    (the same for leaky ReLU, whose correlation map is ReLU's mixed with the identity:
    β = 9π²(1 + α²)² / (2 (1 − α)⁴)).

    Parameters
    ----------
    activation : str or Activation
        Needs φ'' (an Activation built with ``d2phi``).
    sigma_w, sigma_b : array_like
        A point on the EOC (χ₁ = 1 to 1e-6).

    Returns
    -------
    float or ndarray
        β, broadcast shape.

    Raises
    ------
    InputError
        A point off the EOC (|χ₁ − 1| > 1e-6), an Activation without φ'', or (φ not affine
        near 0 like ReLU) the EOC point at σ_b = 0 with φ(0) = 0, whose q* is 0: F_c''(1) = 0
        there, and 1 − c^l has no β/l law.

    References
    ----------
    docs/theory.md §2; Hayou et al. (2019), Propositions 1 and 3 (constants re-derived).

    Examples
    --------
    >>> from meanfield import eoc_rate
    >>> round(eoc_rate("relu", 2 ** 0.5, 0.0), 10)
    44.4132198049
    """
    act, shape, (sw, sb) = _params(activation, sigma_w=sigma_w, sigma_b=sigma_b)
    s = _summary(act, sw, sb, ("q_star", "chi_1"))
    q, chi = s["q_star"], s["chi_1"]
    off = ~(np.abs(chi - 1.0) <= 1e-6)
    if off.any():
        i = np.flatnonzero(off)[0]
        raise InputError(f"(`sigma_w`, `sigma_b`) == ({float(sw[i])!r}, {float(sb[i])!r}): not on "
                         f"the EOC of {act.name} (chi_1 = {float(chi[i])!r}); eoc_rate needs "
                         f"chi_1 = 1 to 1e-6")
    if act.closed_form in ("relu", "leaky_relu"):
        a = act.param if act.closed_form == "leaky_relu" else 0.0
        beta = np.full_like(q, 9.0 * math.pi ** 2 * (1.0 + a * a) ** 2 / (2.0 * (1.0 - a) ** 4))
    else:
        if not act.has_d2:
            raise InputError(f"`activation` == {act.name!r}: eoc_rate needs φ''; build the "
                             f"Activation with `d2phi`")
        # σ_b = 0 and φ(0) = 0 (φ not affine): the EOC point is σ_w² lim E[φ'²] = 1 with q* = 0
        # (the solvers stop at a q* of rounding size, ~1e-16), where F_c''(1) = σ_w² q* E[φ''²]
        # = 0: c^l has no β/l law (β = 2/F_c''(1) would be ~1/q*, 1e31 for tanh)
        at_zero = ((sb == 0.0) & (act(0.0) == 0.0) & (_expect.affine_slope(act) is None)
                   & (np.abs(sw * sw * _dphi2_at_0(act) - 1.0) <= 1e-6))
        if at_zero.any():
            i = np.flatnonzero(at_zero)[0]
            raise InputError(f"(`sigma_w`, `sigma_b`) == ({float(sw[i])!r}, 0.0): the EOC point of "
                             f"{act.name} at sigma_b = 0 has q* = 0, where F_c''(1) = 0 and "
                             f"1 - c^l has no beta/l law; eoc_rate needs sigma_b > 0")
        beta = 2.0 * _expect.diag(act, 1, 1, 0, q) / (q * _expect.diag(act, 2, 2, 0, q))
    return scalar_or_array(beta.reshape(shape))
