"""Finite random convolutional networks: initialisation, forward pass, backpropagation
(docs/convolutional.md; issue 22).

``"cnn"`` of depth L: inputs x of shape (B, C₀, h, h); L conv layers of N channels with k × k
kernels (k odd), stride 1, circular padding, cross-correlation, y¹ = W¹ ⊛ x + B¹ and
y^l = W^l ⊛ φ(y^{l−1}) + B^l; then φ(y^L) averaged over the h² positions and the dense readout
logits = W^out · pool + B^out; the loss is the mean cross-entropy. W^l ~ N(0, σ_w²/(C k²)) per
entry (C the layer's input channels), W^out ~ N(0, σ_w²/N), biases N(0, σ_b²): the FFNN's
conventions (:mod:`meanfield.nets.network`), which the CNN is exactly for k = 1 and h = 1.

Weights are stored as torch stores them, (out, in, k, k). Each layer is one BLAS product on the
im2col matrix of its input: the (B h², k² C) patches, column (a k + b) C + c holding channel c at
offset (a − r, b − r), r = k // 2; the weights are reordered to (N, k² C) to multiply it. The
patches are copied, and added back in the backward pass, by two small compiled kernels.
Activations are kept channel-last, (B, h, h, C); φ = tanh is numpy's vectorised ``np.tanh``, as
in the dense pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._jit import jit_pass
from .._validate import (
    InputError,
    check_array,
    check_dtype,
    check_int,
    check_kernel_size,
    check_memory,
    check_rng,
)
from ..activations import Activation, get_activation
from ._sampler import standard_normal

__all__ = ["ConvNetwork", "init_conv_network", "conv_forward", "conv_loss_and_grads",
           "conv_snip_scores", "draw_conv_trial", "conv_trial_bytes", "channel_scores"]


@dataclass(eq=False)
class ConvNetwork:
    """A random CNN (module docstring).

    Attributes
    ----------
    weights : list of ndarray
        W¹ (N, C₀, k, k), W² … W^L (N, N, k, k), readout W^out (classes, N).
    biases : list of ndarray
        (N,) … (N,), (classes,).
    activation : Activation
    image_size : int
        h.
    sigma_w, sigma_b : float or None
    """

    weights: list
    biases: list
    activation: Activation
    image_size: int
    sigma_w: float | None = None
    sigma_b: float | None = None
    arch: str = "cnn"

    def __post_init__(self):
        self.activation = get_activation(self.activation)

    @property
    def depth(self):
        return len(self.weights) - 1

    @property
    def kernel_size(self):
        return self.weights[0].shape[2]

    @property
    def width(self):
        return self.weights[0].shape[0]

    @property
    def in_channels(self):
        return self.weights[0].shape[1]

    @property
    def classes(self):
        return self.weights[-1].shape[0]

    @property
    def dtype(self):
        return self.weights[0].dtype

    @property
    def n_weights(self):
        return sum(w.size for w in self.weights)


def init_conv_network(activation, width, depth, sigma_w, sigma_b, *, image_size=8, kernel_size=3,
                      in_channels=None, classes=10, rng, dtype=np.float32):
    """Draw a random CNN (module docstring): every weight of a layer with fan-in C k² from
    N(0, σ_w²/(C k²)), the readout's from N(0, σ_w²/N), biases N(0, σ_b²), in this order
    (layer by layer, weights then bias) from ``rng``.

    Parameters
    ----------
    activation : str or Activation
    width, depth : int >= 1
        N channels, L conv layers.
    sigma_w : float > 0
    sigma_b : float >= 0
    image_size : int >= 1, default 8
    kernel_size : odd int >= 1, default 3
    in_channels : int, default ``width``
    classes : int >= 2, default 10
    rng : numpy.random.Generator
    dtype : numpy.float32 or numpy.float64

    Returns
    -------
    ConvNetwork
    """
    act = get_activation(activation)
    N, L = check_int("width", width, 1), check_int("depth", depth, 1)
    h = check_int("image_size", image_size, 1)
    k = check_kernel_size(kernel_size)
    C0 = N if in_channels is None else check_int("in_channels", in_channels, 1)
    C = check_int("classes", classes, 2)
    sw = float(check_array("sigma_w", sigma_w, scalar=True))
    sb = float(check_array("sigma_b", sigma_b, scalar=True))
    rng, dt = check_rng(rng), check_dtype(dtype)
    shapes = [(N, C0, k, k)] + [(N, N, k, k)] * (L - 1) + [(C, N)]
    n = sum(math.prod(s) for s in shapes)
    check_memory(f"`width` == {N}, `depth` == {L}, `kernel_size` == {k} ({n} weights)",
                 n * np.dtype(dt).itemsize)
    weights, biases = [], []
    for s in shapes:
        fan_in = math.prod(s[1:])
        weights.append(standard_normal(rng, s, dt) * dt.type(sw / math.sqrt(fan_in)))
        biases.append(standard_normal(rng, (s[0],), dt) * dt.type(sb))
    return ConvNetwork(weights, biases, act, h, sw, sb)


@jit_pass
def _im2col_kernel(H, k, P):
    """P[n, i, j, a, b, :] = H[n, (i + a − r) mod h, (j + b − r) mod h, :]: one contiguous run of
    C values at a time (numpy's slice copies of 16-value runs were the pass's slowest part)."""
    B, h, _, C = H.shape
    r = k // 2
    for n in range(B):
        for i in range(h):
            for j in range(h):
                for a in range(k):
                    ii = (i + a - r) % h
                    for b in range(k):
                        jj = (j + b - r) % h
                        for c in range(C):
                            P[n, i, j, a, b, c] = H[n, ii, jj, c]


@jit_pass
def _col2im_kernel(dP, k, out):
    """The adjoint: out[n, (i + a − r) mod h, (j + b − r) mod h, :] += dP[n, i, j, a, b, :]."""
    B, h, _, C = out.shape
    r = k // 2
    for n in range(B):
        for i in range(h):
            for j in range(h):
                for a in range(k):
                    ii = (i + a - r) % h
                    for b in range(k):
                        jj = (j + b - r) % h
                        for c in range(C):
                            out[n, ii, jj, c] += dP[n, i, j, a, b, c]


def _im2col(H, k):
    """(B, h, h, C) → (B h², k² C) patches, circularly: column (a k + b) C + c holds channel c at
    offset (a − r, b − r)."""
    B, h, _, C = H.shape
    P = np.empty((B, h, h, k, k, C), H.dtype)
    _im2col_kernel(np.ascontiguousarray(H), k, P)
    return P.reshape(B * h * h, k * k * C)


def _col2im(dP, shape, k):
    """The adjoint of :func:`_im2col`: (B h², k² C) → (B, h, h, C)."""
    B, h, _, C = shape
    out = np.zeros(shape, dP.dtype)
    _col2im_kernel(np.ascontiguousarray(dP).reshape(B, h, h, k, k, C), k, out)
    return out


def _matrix(w):
    """A conv weight (N, C, k, k) as the (N, k² C) matrix that multiplies :func:`_im2col`."""
    return w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)


def _phi(act, Y):
    # numpy's vectorised tanh for tanh (as the dense pass), the compiled kernel otherwise
    return np.tanh(Y) if act.name == "tanh" else act(Y, 0).astype(Y.dtype, copy=False)


def _dphi(act, Y, H):
    return 1.0 - H * H if act.name == "tanh" else act(Y, 1).astype(Y.dtype, copy=False)


def _check_images(net, X):
    X = np.asarray(X)
    h = net.image_size
    if X.ndim != 4 or X.shape[1:] != (net.in_channels, h, h):
        raise InputError(f"`X` has shape {X.shape}: must be (B, {net.in_channels}, {h}, {h})")
    return np.ascontiguousarray(X.transpose(0, 2, 3, 1), dtype=net.dtype)


def _forward(net, H, masks=None):
    """Pre-activations Y^l and activations φ(Y^l) (B, h, h, N) and the patches of every conv
    layer, the pooled features and the logits."""
    act, k = net.activation, net.kernel_size
    B = H.shape[0]
    Ys, Hs, Ps = [], [], []
    for l, (w, b) in enumerate(zip(net.weights[:-1], net.biases[:-1])):
        if masks is not None:
            w = w * masks[l]
        P = _im2col(H, k)
        Y = (P @ _matrix(w).T + b).reshape(B, H.shape[1], H.shape[2], -1)
        H = _phi(act, Y)
        Ys.append(Y), Hs.append(H), Ps.append(P)
    pooled = H.mean(axis=(1, 2))
    wout = net.weights[-1] if masks is None else net.weights[-1] * masks[-1]
    return Ys, Hs, Ps, pooled, pooled @ wout.T + net.biases[-1]


def conv_forward(net, X, masks=None):
    """Logits (B, classes) of ``net`` for images ``X`` (B, C₀, h, h)."""
    return _forward(net, _check_images(net, X), masks)[4]


def conv_loss_and_grads(net, X, y, masks=None):
    """The mean cross-entropy of ``net`` on (X, y) and its gradients with respect to the weights
    (shaped like ``net.weights``), by backpropagation through the im2col products.

    Parameters
    ----------
    net : ConvNetwork
    X : array_like, shape (B, C₀, h, h)
    y : array_like of int, shape (B,)
    masks : list of arrays shaped like the weights, optional
        0/1: the loss of the masked network and its gradients with respect to the kept weights
        (0 at the pruned ones), as :func:`meanfield.nets.loss_and_grads`.

    Returns
    -------
    (loss, grads) : (float, list of ndarray)
    """
    H0 = _check_images(net, X)
    y = np.asarray(y)
    B = H0.shape[0]
    if y.shape != (B,) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 \
            or y.max() >= net.classes:
        raise InputError(f"`y` must be {B} integer labels in 0 … {net.classes - 1}")
    Ys, Hs, Ps, pooled, z = _forward(net, H0, masks)
    z64 = z.astype(np.float64)
    z64 -= z64.max(axis=1, keepdims=True)
    p = np.exp(z64)
    p /= p.sum(axis=1, keepdims=True)
    loss = float(-np.log(p[np.arange(B), y]).mean())
    d = p
    d[np.arange(B), y] -= 1.0
    d = (d / B).astype(net.dtype)
    L, act, k = net.depth, net.activation, net.kernel_size
    grads = [None] * (L + 1)
    grads[L] = d.T @ pooled
    wout = net.weights[-1] if masks is None else net.weights[-1] * masks[-1]
    h = net.image_size
    dH = np.broadcast_to((d @ wout)[:, None, None, :] / net.dtype.type(h * h), Ys[-1].shape)
    for l in range(L - 1, -1, -1):
        dY = (dH * _dphi(act, Ys[l], Hs[l])).reshape(-1, net.width)
        w = net.weights[l] if masks is None else net.weights[l] * masks[l]
        C = w.shape[1]
        grads[l] = (dY.T @ Ps[l]).reshape(w.shape[0], k, k, C).transpose(0, 3, 1, 2)
        if l:
            dH = _col2im(dY @ _matrix(w), Ys[l - 1].shape, k)
    if masks is not None:  # the dense weights' gradient, as meanfield.nets.loss_and_grads
        grads = [g * m for g, m in zip(grads, masks)]
    return loss, grads


def conv_snip_scores(net, X, y):
    """SNIP scores |W ⊙ ∂ℒ/∂W| of every weight of a CNN (readout included), shaped like the
    weights (docs/theory.md §4)."""
    _, grads = conv_loss_and_grads(net, X, y)
    return [np.abs(w * g) for w, g in zip(net.weights, grads)]


def channel_scores(scores):
    """Per-layer 2-d arrays (fan_out, fan_in) of a CNN's scores for the "disconnect" event: a
    conv weight array (N, C, k, k) becomes its maximum over the k × k offsets (with circular
    padding and a global average, channel i reaches channel j through any kept offset), the
    readout stays as it is."""
    return [s.max(axis=(2, 3)) if s.ndim == 4 else s for s in scores]



def draw_conv_trial(act, width, depth, sigma_w, sigma_b, batch, classes, image_size, kernel_size,
                    rng, dtype=np.float32):
    """One Monte Carlo trial's draws, in this order from ``rng``: the CNN (in_channels = width),
    the images X ~ N(0, 1) of shape (batch, width, h, h) and labels uniform over the classes."""
    net = init_conv_network(act, width, depth, sigma_w, sigma_b, image_size=image_size,
                            kernel_size=kernel_size, classes=classes, rng=rng, dtype=dtype)
    X = standard_normal(rng, (batch, width, image_size, image_size), dtype)
    return net, X, rng.integers(classes, size=batch)


def conv_trial_bytes(width, depth, batch, classes, image_size, kernel_size):
    """Memory of one trial (float32): the weights and their scores, the forward cache (Y and
    patches per layer) and the backward's buffers. Python ints."""
    N, P, kk = width, batch * image_size ** 2, kernel_size ** 2
    weights = depth * N * N * kk + classes * N
    return 4 * (3 * weights + depth * P * N * (2 + kk) + 4 * P * N * kk + 2 * batch * classes)
