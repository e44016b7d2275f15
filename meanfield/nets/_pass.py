"""The forward and backward passes of a network (docs/theory.md §1): one BLAS product or two per
layer and one numba kernel fusing the elementwise work around them; per-thread scratch buffers.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from .._jit import jit_pass
from ..activations import _tanh as _tanh_source

# ------------------------------------------------------------------------------------------------
# Layer kernels: the elementwise work of a layer, after its BLAS product (made by numpy's BLAS,
# called from Python: numba's np.dot goes through scipy's BLAS, measured 10-25 % slower on
# 64 x 300 x 300 products, and a one-thread step of a 784 -> 20 x 300 net 35 ms against 30 ms)
# ------------------------------------------------------------------------------------------------

@jit_pass
def _layer_forward(b, c, prev, y, tmp, residual, kernel, p, out):
    """Given the product P = h Wᵀ in ``tmp`` if ``residual``, else in ``y``: y = P + b, or
    y = prev + c (P + b) if ``residual``; then out = φ(y) = kernel(y, p, 0) unless ``kernel`` is
    None (tanh, applied by the caller; the readout). b (n_out,), prev/y/tmp/out (B, n_out)."""
    if residual:
        for i in range(y.shape[0]):
            for j in range(y.shape[1]):
                y[i, j] = prev[i, j] + c * (tmp[i, j] + b[j])
    else:
        for i in range(y.shape[0]):
            for j in range(y.shape[1]):
                y[i, j] += b[j]
    if kernel is not None:
        for i in range(y.shape[0]):
            for j in range(y.shape[1]):
                out[i, j] = kernel(y[i, j], p, 0)


@jit_pass
def _layer_backward(d, u, W, G, G_bits, gb, score, propagate, t, src, kernel, p, residual, one):
    """The elementwise rest of one layer of backpropagation, once G = uᵀ h_prev = ∂ℒ/∂W is formed
    (by numpy's BLAS; u = c d is the output gradient d = ∂ℒ/∂y (B, n_out) times the branch scale).

    * gb = Σ_b u = ∂ℒ/∂b if gb.size;
    * if ``score``: G ← |W ∘ G| (SNIP) in place, and its maximum is returned, found on G_bits, the
      same memory viewed as integers (for floats >= 0 the integer order is the float order, and an
      integer maximum vectorises);
    * if ``propagate``: t = (u W) ∘ φ'(y_prev) (+ d if ``residual``) = ∂ℒ/∂y_prev (B, n_in),
      given t = u W on entry (made by numpy's BLAS), with
      φ' = kernel(src, p, 1), src = y_prev, or, if ``kernel`` is None (tanh),
      φ' = (1 − h)(1 + h) from src = h_prev = tanh(y_prev); ``one`` is 1 in the arrays' dtype.
    """
    if gb.size:
        for j in range(u.shape[1]):
            gb[j] = 0.0
        for i in range(u.shape[0]):
            for j in range(u.shape[1]):
                gb[j] += u[i, j]
    best = 0
    if score:
        g, w, bits = G.reshape(-1), W.reshape(-1), G_bits.reshape(-1)
        for i in range(g.size):
            g[i] = abs(w[i] * g[i])
        m = bits[0]
        for i in range(bits.size):
            m = max(m, bits[i])
        best = m
    if not propagate:
        return best
    if kernel is None:
        for i in range(t.shape[0]):
            for j in range(t.shape[1]):
                x = src[i, j]
                v = t[i, j] * ((one - x) * (one + x))
                t[i, j] = d[i, j] + v if residual else v
    else:
        for i in range(t.shape[0]):
            for j in range(t.shape[1]):
                v = t[i, j] * kernel(src[i, j], p, 1)
                t[i, j] = d[i, j] + v if residual else v
    return best


@jit_pass
def _softmax_xent(z, labels, delta):
    """Mean cross-entropy of softmax(z) and δ = ∂ℒ/∂z = (softmax(z) − onehot(labels)) / B,
    in float64 arithmetic. z, delta: (B, C)."""
    n, c = z.shape
    loss = 0.0
    for b in range(n):
        mx = -np.inf
        for j in range(c):
            mx = max(mx, float(z[b, j]))
        s = 0.0
        for j in range(c):
            s += math.exp(z[b, j] - mx)
        loss += math.log(s) + mx - z[b, labels[b]]
        for j in range(c):
            delta[b, j] = (math.exp(z[b, j] - mx) / s - (1.0 if j == labels[b] else 0.0)) / n
    return loss / n


# ------------------------------------------------------------------------------------------------
# Forward and backward passes (inputs trusted)
# ------------------------------------------------------------------------------------------------

_LOCAL = threading.local()


def scratch(name, shape, dtype):
    """A reusable C-contiguous array of the given shape, one buffer per thread, ``name`` and
    dtype, grown when too small and otherwise reused (a view of its start). Repeated passes then
    write to memory that is already mapped: a fresh multi-megabyte ``np.empty`` is page-faulted in
    on first touch, which costs as much as the arithmetic. Never hand a scratch array to the
    caller; the buffers live as long as the thread (each at its largest size so far)."""
    bufs = _LOCAL.__dict__.setdefault("bufs", {})
    size = math.prod(shape)
    key = (name, np.dtype(dtype))
    a = bufs.get(key)
    if a is None or a.size < size:
        a = bufs[key] = np.empty(size, dtype)
    return a[:size].reshape(shape)


def _is_tanh(act):
    return getattr(act, "_source", None) is _tanh_source


def _forward(net, weights, X):
    """Forward pass with the given (possibly masked) weights.

    Returns the logits (B, C), a new array, and the cache ``(H, Y)`` of scratch arrays:
    H[l−1] = φ(y^l) and Y[l−1] = y^l, both (L, B, N); for tanh, Y is H (φ' comes from φ) and
    y^l is overwritten by tanh(y^l) in place with numpy's vectorised ``np.tanh``.
    """
    act = net.activation
    tanh = _is_tanh(act)
    L, c = net.depth, net.alpha
    residual = net.arch != "ffnn"
    B, N, dtype = X.shape[0], weights[0].shape[0], X.dtype
    biases = [np.ascontiguousarray(b, dtype) for b in net.biases]
    H = scratch("H", (L, B, N), dtype)
    Y = H if tanh else scratch("Y", (L, B, N), dtype)
    tmp = scratch("tmp", (B, N), dtype)
    run = scratch("run", (B, N), dtype) if tanh and residual else None  # y^l, kept for the skip
    h = X
    kernel = None if tanh else act.kernel
    for k in range(L):
        res = residual and k > 0
        y = run if run is not None else Y[k]
        prev = run if run is not None else Y[k - 1]
        np.dot(h, weights[k].T, out=tmp if res else y)
        _layer_forward(biases[k], c, prev, y, tmp, res, kernel, act.param, H[k])
        if tanh:
            np.tanh(y, out=H[k])
        h = H[k]
    logits = np.empty((B, net.classes), dtype)
    np.dot(h, weights[L].T, out=logits)
    _layer_forward(biases[L], 1.0, logits, logits, logits, False, None, 0.0, logits)
    return logits, (H, Y)


def _backward(net, weights, X, cache, delta_z, grad_w, grad_b, score=False, layer_done=None):
    """Backpropagate δ = ∂ℒ/∂logits (B, C), from the readout down.

    Writes ∂ℒ/∂W^l into ``grad_w[l]`` (C-contiguous, preallocated) and, unless ``grad_b`` is None,
    ∂ℒ/∂B^l into ``grad_b[l]``. With ``score``, ``grad_w[l]`` receives the SNIP scores
    |W^l ∘ ∂ℒ/∂W^l| instead, made in cache as each gradient is formed, and the per-layer maxima
    are returned, shape (L + 1,), in the network's dtype. ``layer_done(k)``, if given, is called as
    soon as layer k's gradients are written and ``weights[k]`` is no longer read (k = L … 0).
    """
    act = net.activation
    tanh = _is_tanh(act)
    H, Y = cache
    L, alpha = net.depth, net.alpha
    residual = net.arch != "ffnn"
    B, N, dtype = X.shape[0], H.shape[2], X.dtype
    one = dtype.type(1)
    bits_type = np.int32 if dtype == np.float32 else np.int64
    d, t = scratch("d", (B, N), dtype), scratch("t", (B, N), dtype)
    u = scratch("u", (B, N), dtype)
    nogb = np.empty(0, dtype)
    maxima = np.empty(L + 1, bits_type)
    src = H if tanh else Y
    kernel = None if tanh else act.kernel
    for k in range(L, -1, -1):  # weights[k]: the readout, then W^L … W^1
        top = k == L
        dk = delta_z if top else d
        if residual and 0 < k < L and alpha != 1.0:
            np.multiply(dk, alpha, out=u)
            uk = u
        else:
            uk = dk
        G = grad_w[k]
        np.dot(uk.T, X if k == 0 else H[k - 1], out=G)
        if k > 0:
            np.dot(uk, weights[k], out=t)  # u W^k, made into ∂ℒ/∂y^(k−1) by the kernel
        maxima[k] = _layer_backward(
            dk, uk, weights[k], G, G.view(bits_type), grad_b[k] if grad_b is not None else nogb,
            score, k > 0, t, src[k - 1] if k > 0 else X, kernel, act.param,
            residual and 0 < k < L, one)
        if layer_done is not None:
            layer_done(k)
        d, t = t, d
    return maxima.view(dtype)

def _loss_and_grads(net, weights, X, y, grad_w, grad_b, score=False, layer_done=None):
    """Trusted inputs: fills ``grad_w`` (and ``grad_b`` unless None) and returns the loss; with
    ``score``, see :func:`_backward`, and returns (loss, per-layer maxima); ``layer_done``: see
    :func:`_backward`."""
    logits, cache = _forward(net, weights, X)
    delta = np.empty_like(logits)
    loss = _softmax_xent(logits, y, delta)
    maxima = _backward(net, weights, X, cache, delta, grad_w, grad_b, score, layer_done)
    return (float(loss), maxima) if score else float(loss)
