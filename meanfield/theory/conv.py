"""Convolutional networks at infinite width: the spatial covariance map, its propagation through
depth, and the depth scales of the correlation's spatial Fourier modes (docs/convolutional.md;
Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington 2018).

The CNN of :mod:`meanfield.nets` (issue 22): N channels, k × k kernels (k odd), stride 1, circular
padding on an h × h image, W^l ~ N(0, σ_w²/(N k²)) per entry, one bias per channel ~ N(0, σ_b²).
Channel j of layer l + 1 at position α is y_{j,α} = Σ_i Σ_δ W_{j,i,δ} φ(y_{i,α+δ}) + B_j, the sum
over the N input channels and the k² offsets δ of the window. At infinite width the channels are
i.i.d. Gaussian fields over positions (and over inputs), with covariance

    Σ^{l+1}_{αβ} = σ_b² + σ_w² (1/k²) Σ_δ E[φ(u_{α+δ}) φ(u_{β+δ})],   u ~ N(0, Σ^l):

the dense network's covariance map applied to every pair of positions, then averaged along the
diagonal over the window (both positions shifted by the same δ, as the weights are shared). For
two inputs a, b the positions are those of both images and δ shifts each within its own image.

Consequences shown in docs/convolutional.md and tested: a spatially uniform variance stays uniform
and follows the dense q-map (so q*, χ₁, the phases and the EOC are the FFNN's); a deviation
of the covariance from its fixed point with total spatial frequency ω (a Fourier mode of the
positions) is multiplied per layer by χ_c λ_ω, λ_ω = (1/k²) Σ_δ cos(ω · δ) (the window's
transfer function, λ_0 = 1), so it decays with the depth scale ξ_ω = −1 / log |χ_c λ_ω|: the
mode ω = 0 is the dense network's ξ_c, every other mode decays faster, even on the EOC.

Residual conv nets (``arch="conv_resnet"``, ``"conv_stable_resnet"``) add a block's map to its
input, Σ^l = Σ^{l−1} + α² (the map above), α = 1 or 1/√L, as the dense ResNets
(:mod:`meanfield.theory.maps`).
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import (
    InputError,
    check_array,
    check_choice,
    check_int,
    check_kernel_size,
    check_memory,
)
from ..activations import get_activation
from .archs import CONV_ARCHS
from .fixed import chi_c
from .maps import cov_map

__all__ = ["conv_cov_map", "propagate_spatial", "conv_input_covariance", "conv_depth_scales",
           "conv_phase_diagram", "window_transfer", "CONV_ARCHS"]



def _as_six(cov, name="cov"):
    """``cov`` as (n, h, h, n, h, h) float64, and whether it came as (h, h, h, h)."""
    a = check_array(name, cov)
    one = a.ndim == 4
    if one:
        a = a[None, :, :, None]
    if a.ndim != 6 or a.shape[0] != a.shape[3] or not (a.shape[1] == a.shape[2] == a.shape[4]
                                                        == a.shape[5]):
        raise InputError(f"`{name}` has shape {np.shape(cov)}: must be (h, h, h, h) for one input or "
                         f"(n, h, h, n, h, h) for n inputs (an h × h image each)")
    P = a.shape[0] * a.shape[1] ** 2
    check_memory(f"`{name}` of {P} positions (the map's working arrays)", 48 * P * P)
    flat = a.reshape(P, P)
    if not np.allclose(flat, flat.T, rtol=1e-12, atol=1e-300):
        raise InputError(f"`{name}` is not symmetric: must be a covariance of positions")
    if (np.diagonal(flat) < 0).any():
        raise InputError(f"`{name}` has a negative variance on its diagonal")
    return a, one


def _window_average(M, k):
    """(1/k²) Σ_δ M[:, α+δ, :, β+δ] over the k × k offsets, circularly (both positions shifted)."""
    r = k // 2
    out = np.zeros_like(M)
    for d1 in range(-r, r + 1):
        for d2 in range(-r, r + 1):
            out += np.roll(M, (-d1, -d2, -d1, -d2), axis=(1, 2, 4, 5))
    return out / (k * k)


def _layer(act, a, sw, sb, k):
    n, h = a.shape[0], a.shape[1]
    P = n * h * h
    flat = a.reshape(P, P)
    q = np.diagonal(flat).copy()
    # the dense map of every pair, clipped to |Σ_ab| <= √(q_a q_b) against rounding
    bound = np.sqrt(np.outer(q, q))
    cov = np.clip(flat, -bound, bound)
    _, _, m = cov_map(act, q[:, None], q[None, :], cov, sw, sb)
    return _window_average(np.asarray(m).reshape(a.shape), k)


def conv_cov_map(activation, cov, sigma_w, sigma_b, *, kernel_size=3, arch="cnn", depth=None):
    """One conv layer of the spatial covariance map (module docstring; docs/convolutional.md).

    Parameters
    ----------
    activation : str or Activation
    cov : array_like, shape (h, h, h, h) or (n, h, h, n, h, h)
        Σ_{αβ} of the layer's pre-activations over the positions of one image, or of n images
        (``cov[a, i, j, b, k, l]``: input a at (i, j) with input b at (k, l)).
    sigma_w, sigma_b : float
    kernel_size : odd int, default 3
    arch : {"cnn", "conv_resnet", "conv_stable_resnet"}, default "cnn"
    depth : int, optional
        L, for the Stable conv ResNet's α = 1/√L.

    Returns
    -------
    ndarray, the shape of ``cov``

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.theory.conv import conv_cov_map
    >>> from meanfield import q_map
    >>> out = conv_cov_map("tanh", 0.5 * np.eye(16).reshape(4, 4, 4, 4), 1.3, 0.2)
    >>> bool(np.allclose(np.diagonal(out.reshape(16, 16)), q_map("tanh", 0.5, 1.3, 0.2)))
    True
    """
    act = get_activation(activation)
    a, one = _as_six(cov)
    k = check_kernel_size(kernel_size)
    check_choice("arch", arch, CONV_ARCHS)
    sw = float(check_array("sigma_w", sigma_w, scalar=True))
    sb = float(check_array("sigma_b", sigma_b, scalar=True))
    out = _layer(act, a, sw, sb, k)
    if arch != "cnn":
        alpha = 1.0 if arch == "conv_resnet" else 1.0 / math.sqrt(
            check_int("depth", depth, 1) if depth is not None else _need_depth())
        out = a + alpha ** 2 * out
    return out[0, :, :, 0] if one else out


def _need_depth():
    raise InputError("`depth` == None: arch='conv_stable_resnet' needs the network's depth L "
                     "(its branch scale is 1/sqrt(L))")


def propagate_spatial(activation, cov0, sigma_w, sigma_b, depth, *, kernel_size=3, arch="cnn"):
    """The spatial covariance of a random conv net's layers, from its first layer's.

    Row 0 is ``cov0``, the first hidden layer's pre-activation covariance
    (:func:`conv_input_covariance` computes it from images); row l is after l more conv layers
    (for the residual archs, l residual blocks with α = 1 or 1/√``depth``).

    Parameters
    ----------
    activation : str or Activation
    cov0 : array_like, shape (h, h, h, h) or (n, h, h, n, h, h)
    sigma_w, sigma_b : float
    depth : int >= 0
    kernel_size : odd int, default 3
    arch : {"cnn", "conv_resnet", "conv_stable_resnet"}

    Returns
    -------
    ndarray, shape (depth + 1,) + the shape of ``cov0``

    References
    ----------
    Xiao et al. (2018), *Dynamical Isometry and a Mean Field Theory of CNNs*, §2.3 and eq. (2.4);
    docs/convolutional.md.
    """
    depth = check_int("depth", depth, 0)
    a, one = _as_six(cov0, "cov0")
    check_memory(f"`depth` == {depth} (the spatial covariances of every layer)",
                 (depth + 1) * a.nbytes)
    rows = [a]
    for _ in range(depth):
        rows.append(conv_cov_map(activation, rows[-1], sigma_w, sigma_b, kernel_size=kernel_size,
                                 arch=arch, depth=max(depth, 1)))
    out = np.stack(rows)
    return out[:, 0, :, :, 0] if one else out


def conv_input_covariance(x, sigma_w, sigma_b, *, kernel_size=3):
    """Σ¹ of the first conv layer's pre-activations for the images ``x``, exactly: the layer's
    map with the identity for φ and the images' own channel average for the expectation,
    Σ¹_{αβ} = σ_b² + σ_w² (1/k²) Σ_δ (1/C) Σ_c x_{c,α+δ} x'_{c,β+δ}.

    Parameters
    ----------
    x : array_like, shape (n, C, h, h)
    sigma_w, sigma_b : float
    kernel_size : odd int, default 3

    Returns
    -------
    ndarray, shape (n, h, h, n, h, h)
    """
    x = check_array("x", x)
    if x.ndim != 4 or x.shape[2] != x.shape[3]:
        raise InputError(f"`x` has shape {np.shape(x)}: must be (n, C, h, h), images of h × h")
    k = check_kernel_size(kernel_size)
    sw = float(check_array("sigma_w", sigma_w, scalar=True))
    sb = float(check_array("sigma_b", sigma_b, scalar=True))
    P = x.shape[0] * x.shape[2] ** 2
    check_memory(f"`x` of shape {x.shape} (a covariance of {P} positions)", 24 * P * P)
    K = np.einsum("acij,bckl->aijbkl", x, x) / x.shape[1]
    return sb ** 2 + sw ** 2 * _window_average(K, k)


def window_transfer(kernel_size, image_size):
    """λ_ω = (1/k²) Σ_δ cos(ω · δ) for every spatial frequency ω = 2π (p, r)/h of an h × h image:
    the factor by which averaging over the k × k window multiplies a Fourier mode. Shape (h, h),
    [p, r]; λ[0, 0] = 1."""
    k = check_kernel_size(kernel_size)
    h = check_int("image_size", image_size, 1)
    check_memory(f"`image_size` == {h} (a table of its h² spatial modes)", 64 * h * h)
    r = k // 2
    w = 2 * np.pi * np.arange(h) / h
    one = np.array([sum(math.cos(f * d) for d in range(-r, r + 1)) / k for f in w])
    return np.outer(one, one)


def conv_depth_scales(activation, sigma_w, sigma_b, *, kernel_size=3, image_size=8):
    """Depth scales of the spatial Fourier modes of a CNN's correlation (module docstring).

    Near the fixed point, a deviation of the covariance with total spatial frequency ω decays
    per layer by χ_c λ_ω (:func:`window_transfer`), so ξ_ω = −1 / log |χ_c λ_ω| (inf where
    |χ_c λ_ω| >= 1: the mode ω = 0 on the EOC or in the chaotic phase's χ_c = 1 direction).

    Returns
    -------
    pandas.DataFrame
        One row per frequency: ``p``, ``r`` (ω = 2π (p, r)/h), ``omega`` (|ω|), ``lambda``,
        ``chi_c``, ``xi``.

    Examples
    --------
    >>> from meanfield.theory.conv import conv_depth_scales
    >>> from meanfield import depth_scales
    >>> t = conv_depth_scales("tanh", 3.0, 0.3, kernel_size=3, image_size=8)
    >>> bool(abs(t.xi[0] - depth_scales("tanh", 3.0, 0.3)[1]) < 1e-9 * t.xi[0])
    True
    >>> bool((t.xi[1:] < t.xi[0]).all())
    True
    """
    import pandas as pd  # lazily, as every table of the package (import meanfield stays light)

    act = get_activation(activation)
    sw = float(check_array("sigma_w", sigma_w, scalar=True))
    sb = float(check_array("sigma_b", sigma_b, scalar=True))
    lam = window_transfer(kernel_size, image_size)
    h = lam.shape[0]
    cc = float(chi_c(act, sw, sb))
    p, r = np.meshgrid(np.arange(h), np.arange(h), indexing="ij")
    g = np.abs(cc * lam)
    with np.errstate(divide="ignore"):
        xi = np.where(g >= 1.0, np.inf, -1.0 / np.log(g))
    wrap = lambda v: np.minimum(v, h - v)  # noqa: E731
    omega = 2 * np.pi / h * np.hypot(wrap(p), wrap(r))
    return pd.DataFrame({"p": p.ravel(), "r": r.ravel(), "omega": omega.ravel(),
                         "lambda": lam.ravel(), "chi_c": cc, "xi": xi.ravel()})


def conv_phase_diagram(activation, sigma_w, sigma_b, *, kernel_size=3, image_size=8):
    """The phase diagram of a CNN: :func:`meanfield.phase_diagram`'s table (its phases, q*, χ₁,
    c*, χ_c, ξ_q, ξ_c, which are the CNN's for spatially uniform inputs: docs/convolutional.md),
    with the depth scale of the slowest spatial mode beside the uniform one.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`meanfield.phase_diagram` and ``lambda_1`` (the largest |λ_ω| over
        ω ≠ 0 of the k × k window on an h × h image) and ``xi_c_spatial`` = −1 / log |χ_c λ_1|,
        the depth scale of the slowest non-uniform mode (every other decays faster).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.theory.conv import conv_phase_diagram
    >>> t = conv_phase_diagram("tanh", np.linspace(0.5, 4, 8), [0.0, 0.3], image_size=8)
    >>> bool((t.xi_c_spatial < t.xi_c).all()), round(float(t.lambda_1[0]), 6)
    (True, 0.804738)
    """
    from .phases import phase_diagram

    lam = np.abs(window_transfer(kernel_size, image_size)).ravel()
    lam1 = float(lam[1:].max()) if lam.size > 1 else 0.0
    table = phase_diagram(activation, sigma_w, sigma_b)
    g = np.abs(table.chi_c.to_numpy() * lam1)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = np.where(g >= 1.0, np.inf, -1.0 / np.log(g))
    return table.assign(lambda_1=lam1, xi_c_spatial=xi)
