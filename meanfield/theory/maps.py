"""The variance and correlation maps of infinitely wide random networks, their fixed points,
χ₁, χ_c and the depth scales. docs/theory.md §2 (Poole et al. 2016; Schoenholz et al. 2017;
Hayou et al. 2019).

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
import warnings

import numpy as np

from .._validate import (
    InputError,
    broadcast,
    check_array,
    check_choice,
    check_int,
    check_memory,
    scalar_or_array,
)
from ..activations import get_activation
from . import _expect, _qtable, _solve
from ._gauss import interleaved, threads_for
from .archs import ARCHS, branch_scale

__all__ = ["q_map", "c_map", "cov_map", "propagate", "backward_gains", "q_star", "c_star",
           "chi_1", "chi_c", "depth_scales", "eoc_rate", "NoFixedPointWarning"]


#: The most layers :func:`propagate` computes: they are computed one after another (about a
#: millisecond each for tanh), and by then every map has converged to rounding, or on the EOC,
#: where 1 − c^l ~ β/l, to within 1e-6 β.
MAX_DEPTH = 10 ** 6


class NoFixedPointWarning(RuntimeWarning):
    """The variance map has no finite fixed point: q^l → ∞ with depth (e.g. ReLU with σ_w > √2)."""


# float64 values a function holds per point of its broadcast inputs, besides the inputs: outputs,
# and the temporaries of the expectations and solvers (a generous count: it only has to refuse
# what cannot fit, such as a (10⁶, 1) array broadcast against a (10⁶,) one)
_WORK_PER_POINT = 12


def _params(activation, **named):
    act = get_activation(activation)
    arrays = broadcast(**{k: check_array(k, v) for k, v in named.items()})
    shape = arrays[0].shape
    size = math.prod(shape)
    if size > 1:  # before the broadcast views are copied into flat arrays
        names = ", ".join(f"`{k}`" for k in named)
        check_memory(f"{names} broadcast to shape {shape}",
                     8 * size * (len(arrays) + _WORK_PER_POINT))
    return act, shape, [np.ascontiguousarray(a, dtype=np.float64).ravel() for a in arrays]


def _q_map(act, q, sw, sb):
    return sb * sb + sw * sw * _expect.diag(act, 0, 0, 0, q)


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
            _qtable.fixed_many(act.kernel, act.param, sw[order], sb[order], q0[order], edges, coef,
                               act._points[0], act._points[1], out)
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
    from scipy.optimize import brentq

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
        _solve.chaos_many(act.kernel, act.param, swc[order], sbc[order], qc[order], den[order],
                          chi[idx][order] / swc[order] ** 2, _expect.RTOL, px, ps, pk, act.odd,
                          act.jumps, out)
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
