"""The variance and correlation maps of infinitely wide random networks and the backward gains
(their fixed points, χ₁, χ_c and the depth scales: :mod:`meanfield.theory.fixed`).
docs/theory.md §2 (Poole et al. 2016; Schoenholz et al. 2017; Hayou et al. 2019).

Every function takes the activation first (a name such as ``"tanh"`` or an
:class:`~meanfield.Activation`) and broadcasts its numeric arguments like numpy: scalars in give a
Python float out, arrays in give an array of the broadcast shape out.

**ResNets** (``arch="resnet"`` or ``"stable_resnet"``, the networks of :mod:`meanfield.nets`):
layer 1 is y¹ = W¹x + B¹ as in a feed-forward net; each later hidden layer l = 2 … L is a residual
block y^l = y^{l−1} + α (W^l φ(y^{l−1}) + B^l), with α = 1 (``"resnet"``) or α = 1/√L
(``"stable_resnet"``, Hayou et al. 2021; L is the network's depth, the ``depth`` argument); the
readout W^out φ(y^L) + B^out is never residual. Derivation of the block's maps, for two inputs a, b
at infinite width: W^l and B^l are independent of y^{l−1} (which depends on layers < l only) and
have mean 0, so the cross terms E[y^{l−1}_i (W^l φ(y^{l−1}) + B^l)_i] vanish exactly, and

    q^l    = q^{l−1} + α² (σ_b² + σ_w² E[φ(√q^{l−1} Z)²]),
    Σ^l_ab = Σ^{l−1}_ab + α² (σ_b² + σ_w² E[φ(u_a) φ(u_b)]),   c^l = Σ^l_ab / √(q^l_a q^l_b),

with (u_a, u_b) ~ N(0, [[q_a, Σ_ab], [Σ_ab, q_b]]) of layer l − 1: the feed-forward map's increment,
scaled by α², added to the skip's copy of the previous layer. (Given the layers below, the branch
is Gaussian with a variance that concentrates as N → ∞, and independent of the skip's term, so y^l
stays Gaussian.) q^l never decreases, so a ResNet's variance map has no fixed point but q = 0
(:func:`c_map` needs an explicit q for ResNets). For ReLU, E[φ(√q Z)²] = q/2 and
q^l = q^{l−1} (1 + α² σ_w²/2) + α² σ_b²: geometric growth, as (1 + σ_w²/2)^{l−1}, for ``"resnet"``, and
for ``"stable_resnet"`` q^L = a^{L−1} q¹ + (2σ_b²/σ_w²)(a^{L−1} − 1) with a = 1 + σ_w²/(2L), so
q^L < e^{σ_w²/2} (q¹ + 2σ_b²/σ_w²) at every depth.
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import (
    InputError,
    check_choice,
    check_int,
    check_memory,
    scalar_or_array,
)
from . import _expect
from ._base import _params, _q_map
from .archs import ARCHS, branch_scale
from .fixed import _q_star

__all__ = ["q_map", "c_map", "cov_map", "propagate", "backward_gains"]


#: The most layers :func:`propagate` computes: they are computed one after another (about a
#: millisecond each for tanh), and by then every map has converged to rounding, or on the EOC,
#: where 1 − c^l ~ β/l, to within 1e-6 β.
MAX_DEPTH = 10 ** 6


def _branch_scale(arch, depth):
    """α, the scale of the residual branches, for a validated ``arch``: None for ``"ffnn"`` (no
    skip), 1.0 for ``"resnet"``, 1/√depth for ``"stable_resnet"`` (``depth`` = the network's L,
    required there). Raises InputError naming ``arch`` or ``depth``."""
    check_choice("arch", arch, ARCHS)
    if depth is not None:  # a network's depth: 1/√depth must be a float
        depth = check_int("depth", depth, 1, high=10 ** 18)
    if arch == "stable_resnet" and depth is None:
        raise InputError("`depth` == None: arch='stable_resnet' needs the network's depth L "
                         "(its branches are scaled by 1/sqrt(L))")
    return branch_scale(arch, depth)


def _res_q_map(act, q, sw, sb, alpha):
    """One residual block of the variance map: q + α² F_q(q); F_q(q) if α is None (no skip)."""
    if alpha is None:
        return _q_map(act, q, sw, sb)
    return q + alpha * alpha * _q_map(act, q, sw, sb)


def q_map(activation, q, sigma_w, sigma_b, *, arch="ffnn", depth=None):
    """One layer of the variance map, F_q(q) = σ_b² + σ_w² E[φ(√q Z)²].

    For a ResNet, one residual block (hidden layers 2 … L): q + α² F_q(q) (module docstring).

    Parameters
    ----------
    activation : str or Activation
    q : array_like, >= 0
        Variance of the pre-activations of the previous layer.
    sigma_w : array_like, > 0
        Weight standard deviation (weights have variance σ_w² / fan-in).
    sigma_b : array_like, >= 0
        Bias standard deviation.
    arch : {"ffnn", "resnet", "stable_resnet"}, default "ffnn"
        The architecture of :mod:`meanfield.nets`.
    depth : int >= 1, optional
        The network's depth L; needed for ``"stable_resnet"`` only (α = 1/√L), ignored otherwise.

    Returns
    -------
    float or ndarray
        F_q(q), or q + α² F_q(q) for a ResNet, of the broadcast shape of the inputs.

    References
    ----------
    docs/theory.md §2; Poole et al. (2016), eq. (3).

    Examples
    --------
    >>> from meanfield import q_map
    >>> q_map("relu", 2.0, 1.0, 0.0)
    1.0
    >>> q_map("relu", 2.0, 1.0, 0.0, arch="resnet"), q_map("relu", 2.0, 1.0, 0.0,
    ...                                                   arch="stable_resnet", depth=4)
    (3.0, 2.25)
    """
    alpha = _branch_scale(arch, depth)
    act, shape, (q, sw, sb) = _params(activation, q=q, sigma_w=sigma_w, sigma_b=sigma_b)
    return scalar_or_array(_res_q_map(act, q, sw, sb, alpha).reshape(shape))


def _c_map(act, c, q, sw, sb, where=None):
    pair = _expect.pair(act, 0, 0, q, q, c)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # repaired below
        num = sb * sb + sw * sw * pair
        den = _q_map(act, q, sw, sb)
        out = num / den
    return _repair(act, out, num, den, c, q, sw, sb, None, pair, where)


_TINY = np.finfo(np.float64).tiny  # smallest normal float: below it a quotient loses digits


def _repair(act, out, num, den, c, q, sw, sb, alpha, pair, where=None):
    """``out`` = num/den, the correlation map as it is computed everywhere else, with the points
    where that quotient is 0/0 or lost to over- or underflow (den not a normal float, num or den
    not finite) replaced by :func:`_fc_robust`. Bit for bit the same elsewhere.

    Where the map has no limit (:func:`_fc_robust`), InputError; ``where(i)`` names the
    arguments that led to point i (default: `q` and `sigma_b` themselves)."""
    bad = ~(np.isfinite(num) & np.isfinite(den) & (den >= _TINY))
    if bad.any():
        idx = np.flatnonzero(bad)
        fixed = _fc_robust(act, c[idx], q[idx], sw[idx], sb[idx], alpha, pair[idx])
        none = ~np.isfinite(fixed)
        if none.any():
            i = idx[np.flatnonzero(none)[0]]
            head = (where(i) if where is not None else
                    f"`q` == {float(q[i])!r} with `sigma_b` == {float(sb[i])!r}")
            if not np.isfinite(q[i]) or not np.isfinite(den[i]):
                # the variance itself is lost to overflow: no quotient is left to take a limit of
                raise InputError(f"{head}: the variance overflows float64 there, so the "
                                 f"correlation map of {act.name} has no value; choose a smaller "
                                 f"`depth` or `sigma_w` (or a smaller q)")
            raise InputError(f"{head}: the correlation map of {act.name} is 0/0 at q = 0 (or "
                             f"underflows next to it), and as phi(0) = phi'(0) = 0 its limit "
                             f"depends on higher derivatives of phi; use a larger q or "
                             f"sigma_b > 0")
        out = out.copy()
        out[idx] = np.clip(fixed, -1.0, 1.0)
    return out


def _fc_robust(act, c, q, sw, sb, alpha, pair):
    """The correlation map where its quotient is 0/0 in floating point, for flat arrays.

    The map (feed-forward: no skip, a = 1; ResNet block: skip, a = α) is
    F = (s c q + a²(σ_b² + σ_w² P)) / (s q + a²(σ_b² + σ_w² V)), with P = E[φ(u₁)φ(u₂)] and
    V = E[φ(√q Z)²]. With ρ = P/V, x = √(s q), y = a σ_b, z = a σ_w √V and M = max(x, y, z) it is
    (c (x/M)² + (y/M)² + ρ (z/M)²) / ((x/M)² + (y/M)² + (z/M)²): every term <= 1, the
    denominator >= 1, nothing to over- or underflow.

    Where V is not a normal float (q at or near 0; then φ(0) = 0), the limit q → 0: φ is
    s₊ x⁺ + s₋ x⁻ + o(x) near 0 with s± = φ'(0±), so V = q (s₊² + s₋²)/2 + o(q) and
    P = q (s₊ s₋ c + (s₊ − s₋)² K(c)) + o(q), K(c) = E[relu(u₁) relu(u₂)]/q, the arc-cosine
    kernel (the map of leaky ReLU; for φ smooth at 0, s₊ = s₋ and ρ = c: the linear map). At
    q = 0 exactly with σ_b = 0 (the 0/0 of the maths) that limit is the value, so that
    ``propagate`` in the ordered phase without bias, where q^l underflows to 0, goes on as the
    map does at small q. Where φ(0) = φ'(0±) = 0 the limit depends on higher derivatives of φ:
    nan there (the caller refuses). docs/theory.md §2."""
    skip = 0.0 if alpha is None else 1.0
    a = 1.0 if alpha is None else alpha
    v = _expect.diag(act, 0, 0, 0, q)
    s_lo, s_hi = _expect._one_sided(act, 1)
    vn = 0.5 * (s_hi * s_hi + s_lo * s_lo)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho_lin = (s_lo * s_hi * c + (s_hi - s_lo) ** 2 * _expect._relu_pair(c)) / vn
        normal = v >= _TINY
        linear = ~normal & (vn > 0.0)
        rho = np.where(normal, pair / v, np.where(linear, rho_lin, pair / v))
        sv = np.where(linear, np.sqrt(q) * math.sqrt(vn), np.sqrt(v))
        x, y, z = np.sqrt(skip * q), a * sb, a * sw * sv
        m = np.maximum(np.maximum(x, y), z)
        x, y, z = x / m, y / m, z / m
        rz = np.where(z > 0.0, rho * z * z, 0.0)  # ρ may be 0/0 where V = 0; its weight is 0
        out = (c * x * x + y * y + rz) / (x * x + y * y + z * z)
    # m = 0: q = 0 and σ_b = 0 (so φ(0) = 0), the 0/0 itself. Its limit q → 0, divided by q:
    # x² = s, z² = a² σ_w² (s₊² + s₋²)/2
    zero = m == 0.0
    if zero.any():
        z2 = (a * sw[zero]) ** 2 * vn
        with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 where refused below
            rz = np.where(z2 > 0.0, rho_lin[zero] * z2, 0.0)
            out[zero] = (c[zero] * skip + rz) / (skip + z2)
    return out


def c_map(activation, c, sigma_w, sigma_b, q=None, *, arch="ffnn", depth=None):
    """One layer of the correlation map on the diagonal, F_c(c; q).

    F_c(c; q) = (σ_b² + σ_w² E[φ(u₁) φ(u₂)]) / F_q(q) with u₁ = √q Z₁,
    u₂ = √q (c Z₁ + √(1 − c²) Z₂). For a ResNet block (module docstring) the covariance and the
    variance each add the branch's share to the skip's: (c q + α² (σ_b² + σ_w² E[φ(u₁) φ(u₂)])) /
    (q + α² F_q(q)).

    Parameters
    ----------
    activation : str or Activation
    c : array_like, in [-1, 1]
        Correlation of the two inputs' pre-activations in the previous layer.
    sigma_w, sigma_b : array_like
        As in :func:`q_map`.
    q : array_like or None
        Variance of both inputs in the previous layer; ``None`` means q = q*(σ_w, σ_b)
        (:func:`q_star`), where F_c(1) = 1 (``"ffnn"`` only: a ResNet's q^l grows with l and has no
        such fixed point, so give q). At q = 0 without bias (q* = 0 in the ordered phase) F_c is
        0/0, and its limit q → 0 is returned: c itself for φ with φ(0) = 0 differentiable at 0
        (φ ≈ φ'(0) x is linear there), leaky ReLU's map with the one-sided slopes φ'(0±) at a
        kink (ReLU's own for ReLU, which does not depend on q).
    arch : {"ffnn", "resnet", "stable_resnet"}, default "ffnn"
    depth : int >= 1, optional
        The network's depth L, for ``"stable_resnet"`` (α = 1/√L).

    Returns
    -------
    float or ndarray
        c of the next layer, broadcast shape.

    Raises
    ------
    InputError
        A bad argument; q = 0 without bias for a φ with φ(0) = φ'(0±) = 0 (a user's x³), whose
        limit depends on higher derivatives of φ.

    References
    ----------
    docs/theory.md §2; Poole et al. (2016), eq. (5).

    Examples
    --------
    >>> from meanfield import c_map
    >>> c_map("tanh", 1.0, 1.5, 0.3)
    1.0
    >>> round(c_map("linear", 0.0, 1.0, 0.0, q=1.0, arch="resnet"), 12)  # (0 + 0) / (1 + 1)
    0.0
    """
    alpha = _branch_scale(arch, depth)
    if q is None:
        if alpha is not None:
            raise InputError(f"`q` == None: arch={arch!r} has no fixed point q*; give the "
                             f"variance q of the previous layer")
        act, shape, (c, sw, sb) = _params(activation, c=c, sigma_w=sigma_w, sigma_b=sigma_b)
        q = _q_star(act, sw, sb)
        out = np.full_like(c, np.nan)
        ok = np.flatnonzero(np.isfinite(q))
        out[ok] = _c_map(act, c[ok], q[ok], sw[ok], sb[ok], where=lambda i: (
            f"(`sigma_w`, `sigma_b`) == ({float(sw[ok[i]])!r}, {float(sb[ok[i]])!r}), where "
            f"q* == {float(q[ok[i]])!r}"))
    else:
        act, shape, (c, sw, sb, q) = _params(activation, c=c, sigma_w=sigma_w, sigma_b=sigma_b,
                                             q=q)
        if alpha is None:
            out = _c_map(act, c, q, sw, sb)
        else:
            a2 = alpha * alpha
            pair = _expect.pair(act, 0, 0, q, q, c)
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # _repair
                num = c * q + a2 * (sb * sb + sw * sw * pair)
                den = _res_q_map(act, q, sw, sb, alpha)
                out = np.clip(num / den, -1.0, 1.0)
            out = _repair(act, out, num, den, c, q, sw, sb, alpha, pair)
    return scalar_or_array(out.reshape(shape))


def cov_map(activation, q_a, q_b, cov, sigma_w, sigma_b, *, arch="ffnn", depth=None):
    """One layer of the variance–covariance map for two different inputs a and b.

    Parameters
    ----------
    activation : str or Activation
    q_a, q_b : array_like, >= 0
        Variances of the two inputs' pre-activations in the previous layer.
    cov : array_like
        Their covariance Σ_ab, with |Σ_ab| <= √(q_a q_b).
    sigma_w, sigma_b : array_like
    arch : {"ffnn", "resnet", "stable_resnet"}, default "ffnn"
        For a ResNet block each output is its input plus α² times the feed-forward map's
        (module docstring).
    depth : int >= 1, optional
        The network's depth L, for ``"stable_resnet"`` (α = 1/√L).

    Returns
    -------
    (q_a', q_b', cov') : tuple of float or ndarray
        F_q(q_a), F_q(q_b) and σ_b² + σ_w² E[φ(u_a) φ(u_b)] (ResNets: q_a + α² F_q(q_a), … ,
        cov + α² (σ_b² + σ_w² E[φ(u_a) φ(u_b)])), each of the broadcast shape.

    References
    ----------
    docs/theory.md §2; Poole et al. (2016), eq. (4).

    Examples
    --------
    >>> from meanfield import cov_map
    >>> [round(v, 12) for v in cov_map("linear", 1.0, 4.0, 1.0, 1.0, 0.0)]
    [1.0, 4.0, 1.0]
    >>> [round(v, 12) for v in cov_map("linear", 1.0, 4.0, 1.0, 1.0, 0.0, arch="resnet")]
    [2.0, 8.0, 2.0]
    """
    alpha = _branch_scale(arch, depth)
    act, shape, (qa, qb, cv, sw, sb) = _params(activation, q_a=q_a, q_b=q_b, cov=cov,
                                              sigma_w=sigma_w, sigma_b=sigma_b)
    bound = _expect.sqrt_product(qa, qb)  # √(q_a q_b), also where q_a q_b over- or underflows
    bad = np.abs(cv) > bound * (1.0 + 1e-12) + 1e-300
    if bad.any():
        i = np.flatnonzero(bad)[0]
        raise InputError(f"`cov` == {float(cv[i])!r} with `q_a` == {float(qa[i])!r}, `q_b` == "
                         f"{float(qb[i])!r}: must satisfy |cov| <= sqrt(q_a * q_b) = "
                         f"{float(bound[i])!r}")
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(bound > 0.0, np.clip(cv / bound, -1.0, 1.0), 0.0)
    new_cov = sb * sb + sw * sw * _expect.pair(act, 0, 0, qa, qb, c)
    if alpha is not None:
        new_cov = cv + alpha * alpha * new_cov
    return (scalar_or_array(_res_q_map(act, qa, sw, sb, alpha).reshape(shape)),
            scalar_or_array(_res_q_map(act, qb, sw, sb, alpha).reshape(shape)),
            scalar_or_array(new_cov.reshape(shape)))


def propagate(activation, q0, c0, sigma_w, sigma_b, depth, *, arch="ffnn"):
    """Propagate the variance and correlation of two inputs through ``depth`` layers.

    Both inputs have variance q⁰ at layer 0 and correlation c⁰; each layer applies
    q^l = F_q(q^{l-1}) and c^l = F_c(c^{l-1}; q^{l-1}).

    For ResNets, row 0 is the first hidden layer's pre-activation y¹ = W¹x + B¹ (so q⁰ =
    σ_b² + σ_w² ‖x‖²/N₀ and c⁰ its correlation) of a network of depth L = ``depth``: rows
    1 … L − 1 are the residual blocks y² … y^L, q^l = q^{l−1} + α² F_q(q^{l−1}) and
    Σ^l = Σ^{l−1} + α² (σ_b² + σ_w² E[φ(u₁) φ(u₂)]) (module docstring), with α = 1 for
    ``"resnet"`` and α = 1/√L for ``"stable_resnet"``; row L is the readout's logits,
    F_q(q^L) and F_c(c^L; q^L), which are never residual. Read the same way, an ``"ffnn"`` row l is
    y^{l+1} and row L the logits of a network of depth L, so one call gives every layer of a
    network of any architecture.

    Parameters
    ----------
    activation : str or Activation
    q0 : array_like, >= 0
    c0 : array_like, in [-1, 1]
    sigma_w, sigma_b : array_like
    depth : int, >= 0 (>= 1 for ResNets), <= ``MAX_DEPTH`` (10⁶)
        The number of layers; for ResNets the network's depth L, which also sets the Stable
        ResNet's branch scale 1/√L.
    arch : {"ffnn", "resnet", "stable_resnet"}, default "ffnn"
        ``"ffnn"`` gives the results of the feed-forward maps exactly as before the argument
        existed.

    Returns
    -------
    (q, c) : ndarray, each of shape ``(depth + 1,) + broadcast shape``
        Row 0 holds the input (q⁰, c⁰), row l the values after l layers. Where q^l reaches 0
        (no bias, ordered phase: it underflows after some hundred layers), c^{l+1} is the limit
        q → 0 of the correlation map (:func:`c_map`).

    Raises
    ------
    InputError
        A bad argument; ``depth`` above ``MAX_DEPTH``, or rows that cannot fit in memory.

    References
    ----------
    docs/theory.md §1–2; Schoenholz et al. (2017), eqs. (3)–(5); Hayou et al. (2021), §2 (Stable
    ResNet).

    Examples
    --------
    >>> from meanfield import propagate
    >>> q, c = propagate("relu", 1.0, 0.0, 2 ** 0.5, 0.0, 2)
    >>> q.shape, round(float(q[2]), 12), round(float(c[1]), 12)
    ((3,), 1.0, 0.318309886184)
    >>> q, c = propagate("relu", 1.0, 0.0, 2 ** 0.5, 0.0, 3, arch="resnet")
    >>> [round(float(v), 12) for v in q]  # y¹, y² = 2 y¹, y³ = 2 y², logits = y³ / 2
    [1.0, 2.0, 4.0, 4.0]
    """
    _branch_scale(arch, 1)  # validates arch
    depth = check_int("depth", depth, 0 if arch == "ffnn" else 1)
    alpha = _branch_scale(arch, depth or None)
    act, shape, (q, c, sw, sb) = _params(activation, q0=q0, c0=c0, sigma_w=sigma_w,
                                         sigma_b=sigma_b)
    # q and c of every layer and input, and the per-layer temporaries: refused before allocating
    check_memory(f"`depth` == {depth} with {q.size} input(s)", 8 * (depth + 1) * q.size * 2
                 + 8 * 8 * q.size)
    if depth > MAX_DEPTH:
        raise InputError(f"`depth` == {depth}: must be <= {MAX_DEPTH} (layers are computed one "
                         f"after another; a million is past any network and past the "
                         f"convergence of the maps)")
    qs = np.empty((depth + 1, q.size))
    cs = np.empty((depth + 1, q.size))
    qs[0], cs[0] = q, c
    def where(layer):
        return lambda i: (f"(`q0`, `sigma_b`) == ({float(q[i])!r}, {float(sb[i])!r}), where "
                          f"q^{layer - 1} == {float(qs[layer - 1, i])!r}")

    for layer in range(1, depth + 1):
        q_prev, c_prev = qs[layer - 1], cs[layer - 1]
        pair = _expect.pair(act, 0, 0, q_prev, q_prev, c_prev)
        if alpha is None or layer == depth:  # a feed-forward layer, or the readout
            q_new = _q_map(act, q_prev, sw, sb)
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # _repair
                num = sb * sb + sw * sw * pair
                c_new = np.clip(num / q_new, -1.0, 1.0)
            cs[layer] = _repair(act, c_new, num, q_new, c_prev, q_prev, sw, sb, None, pair,
                                where(layer))
        else:
            a2 = alpha * alpha
            q_new = q_prev + a2 * _q_map(act, q_prev, sw, sb)
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # _repair
                num = c_prev * q_prev + a2 * (sb * sb + sw * sw * pair)
                c_new = np.clip(num / q_new, -1.0, 1.0)
            cs[layer] = _repair(act, c_new, num, q_new, c_prev, q_prev, sw, sb, alpha, pair,
                                where(layer))
        qs[layer] = q_new
        if alpha is None and np.array_equal(qs[layer], q_prev) and np.array_equal(cs[layer],
                                                                                  c_prev):
            # a fixed point to the last bit: every later layer applies the same map to the same
            # numbers, so repeats them (an ordered-phase run of a million layers ends here)
            qs[layer + 1:], cs[layer + 1:] = qs[layer], cs[layer]
            break
    return qs.reshape((depth + 1,) + shape), cs.reshape((depth + 1,) + shape)


def backward_gains(activation, q, sigma_w, *, c=None, arch="ffnn", depth=None):
    """The factor by which one hidden layer multiplies the backpropagated second moment.

    With δ^l = ∂ℒ/∂y^l (equal widths, gradient independence: the W^l of the backward pass taken
    independent of the forward one, Schoenholz et al. 2017 §4), for hidden layers l = 2 … L,

    * ``"ffnn"``: δ^{l−1} = φ'(y^{l−1}) ∘ (W^l)ᵀ δ^l, so E[δ^{l−1}_i(a) δ^{l−1}_i(b)] =
      g · E[δ^l_j(a) δ^l_j(b)] with g = σ_w² E[φ'(u_a) φ'(u_b)];
    * ResNets: δ^{l−1} = δ^l + α φ'(y^{l−1}) ∘ (W^l)ᵀ δ^l; the cross term has the factor W^l of
      mean 0, independent of δ^l and y^{l−1}, and vanishes, so g = 1 + α² σ_w² E[φ'(u_a) φ'(u_b)]
      (α = 1, or 1/√L for ``"stable_resnet"``).

    (u_a, u_b) are the pre-activations y^{l−1} of the layer the gradient arrives at: variance
    q = q^{l−1} each and correlation c (``c=None``: one input, E[φ'(√q Z)²], i.e. the variance
    q̃^{l−1} = g q̃^l). The step from the readout to y^L is not a block (it is not residual) and
    is not covered: E[(δ^L_i)²] = σ_w² (C/N) E[φ'(y^L)²] E[(∂ℒ/∂z_k)²] for every architecture.

    Parameters
    ----------
    activation : str or Activation
    q : array_like, >= 0
        q^{l−1}, e.g. the rows 0 … L − 2 of :func:`propagate` for the blocks l = 2 … L.
    sigma_w : array_like, > 0
    c : array_like in [-1, 1], optional
        The correlation c^{l−1} of the two inputs, for the covariance's gain.
    arch : {"ffnn", "resnet", "stable_resnet"}, default "ffnn"
    depth : int >= 1, optional
        The network's depth L, for ``"stable_resnet"``.

    Returns
    -------
    float or ndarray
        g, broadcast shape. For ``"ffnn"`` at q = q*, with ``c=None``, it is χ₁.

    References
    ----------
    Schoenholz et al. (2017), §4 (the feed-forward recursion); the ResNet form is our derivation
    above, for the blocks of :mod:`meanfield.nets`.

    Examples
    --------
    >>> from meanfield import backward_gains
    >>> backward_gains("relu", 1.0, 2 ** 0.5)
    1.0000000000000002
    >>> backward_gains("relu", 1.0, 2 ** 0.5, arch="stable_resnet", depth=4)
    1.25
    """
    alpha = _branch_scale(arch, depth)
    if c is None:
        act, shape, (q, sw) = _params(activation, q=q, sigma_w=sigma_w)
        moment = _expect.diag(act, 1, 1, 0, q)
    else:
        act, shape, (q, sw, c) = _params(activation, q=q, sigma_w=sigma_w, c=c)
        moment = _expect.pair(act, 1, 1, q, q, c)
    gain = sw * sw * moment
    if alpha is not None:
        gain = 1.0 + alpha * alpha * gain
    return scalar_or_array(gain.reshape(shape))


