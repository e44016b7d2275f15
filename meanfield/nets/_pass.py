"""The forward and backward passes of a network (docs/theory.md §1), written once for every
layout and kind of layer.

:func:`run_forward` and :func:`run_backward` hold the layer loop: which buffers a layer reads and
writes, the residual skips and branch scales, tanh by numpy's ``np.tanh``, the order in which the
layers' gradients are handed on. A layer's own work is done by a *layout* object, which forms its
product and calls one numba kernel for the elementwise rest (bias, residual update, φ and φ', the
bias gradient, the SNIP scores), written with the helpers of :mod:`meanfield.nets._layer`:

* :class:`BatchMajor` (here): dense layers, a batch one example per row (B, n), the products by
  numpy's BLAS -- the Monte Carlo of s_cr, dense training, the public passes;
* ``FeatureMajor`` (:mod:`meanfield.training._sparse`): one feature per row (n, B), each layer
  dense (BLAS) or sparse (kept weights only) -- pruned networks in training.

Per-thread scratch buffers (:func:`scratch`) hold every array of a pass that is not returned.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from .._jit import jit_pass
from ._layer import (
    Block,
    Grads,
    Out,
    Phi,
    Signal,
    affine,
    apply_phi,
    backprop,
    bits_of,
    block_wires,
    blocks,
    is_tanh,
    no_phi,
    phi_of,
)

#: kept under its old name for the modules that ask whether φ is tanh
_is_tanh = is_tanh

# ------------------------------------------------------------------------------------------------
# Layer kernels, batch-major: the elementwise work of a dense layer, after its BLAS product (made
# by numpy's BLAS, called from Python: numba's np.dot goes through scipy's BLAS, measured 10-25 %
# slower on 64 x 300 x 300 products, and a one-thread step of a 784 -> 20 x 300 net 35 ms
# against 30 ms)
# ------------------------------------------------------------------------------------------------

@jit_pass
def _layer_forward(P, b, out, block, phi):
    """Given the product P = h Wᵀ (B, n_out) (``out.y`` itself unless ``block.residual``): the
    pre-activations ``out.y`` (:func:`affine`, b (n_out,) one bias per column), then
    ``out.h`` = φ(``out.y``) unless ``phi.kernel`` is 0 (tanh, applied by the caller; the readout)."""
    out, block, phi = Out(*out), Block(*block), Phi(*phi)
    y, prev, h = out.y, out.prev, out.h
    for i in range(y.shape[0]):
        affine(P[i], b, prev[i], y[i], block)
    if phi.kernel != 0:
        for i in range(y.shape[0]):
            apply_phi(y[i], h[i], phi)


@jit_pass
def _layer_backward(sig, W, grads, block, phi, score):
    """The elementwise rest of one layer of backpropagation, batch-major, once G = uᵀ h_prev =
    ∂ℒ/∂W (``grads.G``) and, unless ``block.first``, ``sig.t`` = u W are formed (by numpy's BLAS):

    * ``grads.gb`` = Σ_b u = ∂ℒ/∂b, summed in batch order, if ``grads.gb.size``;
    * if ``score``: G ← |W ∘ G| (SNIP) in place, and its maximum is returned, found on G's bits
      (:func:`~meanfield.nets._layer.bits_of`); else 0;
    * unless ``block.first``: ``sig.t`` ← ∂ℒ/∂y_prev (:func:`backprop`, row by row).
    """
    sig, grads, block, phi = Signal(*sig), Grads(*grads), Block(*block), Phi(*phi)
    u, gb = sig.u, grads.gb
    if gb.size:
        for j in range(u.shape[1]):
            gb[j] = 0.0
        for i in range(u.shape[0]):
            for j in range(u.shape[1]):
                gb[j] += u[i, j]
    best = 0
    if score:
        g, w = grads.G.reshape(-1), W.reshape(-1)
        for i in range(g.size):
            g[i] = abs(w[i] * g[i])
        bits = bits_of(g)
        m = bits[0]
        for i in range(bits.size):
            m = max(m, bits[i])
        best = m
    if not block.first:
        t, d, src = sig.t, sig.d, sig.src
        for i in range(t.shape[0]):
            backprop(t[i], d[i], src[i], phi, block.residual)
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
# Scratch buffers
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


# ------------------------------------------------------------------------------------------------
# The passes, for any layout (inputs trusted)
# ------------------------------------------------------------------------------------------------

def run_forward(net, ops, h0):
    """The forward pass of ``net`` through the layout ``ops`` from its input batch ``h0``.

    Returns the logits (a new array) and the cache ``(H, Y)`` of scratch arrays, each holding L
    layers: H[l−1] = φ(y^l), Y[l−1] = y^l; for tanh Y is H (φ' comes from φ), y^l being
    overwritten by tanh(y^l) in place with numpy's vectorised ``np.tanh`` (a residual network
    keeps the running y^l in one more buffer, for the skips).

    The structures handed to the kernels are built here as plain tuples in their classes' field
    order (:mod:`meanfield.nets._layer`): a namedtuple costs a microsecond to build and more to
    pass, per layer.
    """
    act = net.activation
    tanh = is_tanh(act)
    L, N = net.depth, net.width
    phi = tuple(phi_of(act, ops.dtype))
    blk, wire = blocks(net), block_wires(net)
    H = ops.buffer("H", N, L)
    Y = H if tanh else ops.buffer("Y", N, L)
    run = ops.buffer("run", N) if tanh and net.arch != "ffnn" else None
    h = h0
    for k in range(L):
        y = run if run is not None else Y[k]
        prev = run if run is not None else Y[k - 1]
        # the product into y itself, or, in a residual block, beside it (y = prev + c (P + b))
        P = ops.buffer("P", N) if blk[k].residual else y
        ops.forward(k, h, P, (y, prev, H[k]), wire[k], phi)  # Out(y, prev, h)
        if tanh:
            np.tanh(y, out=H[k])
        h = H[k]
    logits = ops.logits(net.classes)
    ops.forward(L, h, logits, (logits, logits, logits), wire[L], tuple(no_phi(ops.dtype)))
    return logits, (H, Y)


def run_backward(net, ops, h0, cache, delta, grad_w, grad_b, score=False, layer_done=None):
    """Backpropagate δ = ∂ℒ/∂logits (in ``ops``' layout) through ``net``, from the readout down.

    ``h0`` and ``cache``: the input and the cache of :func:`run_forward`. Writes ∂ℒ/∂W^l into
    ``grad_w[l]`` (preallocated, in the layout's form) and, unless ``grad_b`` is None, ∂ℒ/∂B^l
    into ``grad_b[l]``. With ``score`` (batch-major only), ``grad_w[l]`` receives the SNIP scores
    |W^l ∘ ∂ℒ/∂W^l| instead, made in cache as each gradient is formed, and the per-layer maxima
    are returned, shape (L + 1,), in the network's dtype (else None). ``layer_done(k)``, if given,
    is called as soon as layer k's gradients are written and its weights are no longer read
    (k = L … 0).
    """
    act = net.activation
    H, Y = cache
    L, N = net.depth, net.width
    phi = tuple(phi_of(act, ops.dtype))
    blk, wire = blocks(net), block_wires(net)
    src = H if is_tanh(act) else Y
    d, t, u = ops.buffer("d", N), ops.buffer("t", N), ops.buffer("u", N)
    nogb = np.empty(0, ops.dtype)
    maxima = np.zeros(L + 1, np.int32 if ops.dtype == np.float32 else np.int64)
    for k in range(L, -1, -1):  # the readout, then W^L … W^1
        block = blk[k]
        dk = delta if k == L else d
        if block.residual and block.c != 1.0:
            np.multiply(dk, block.c, out=u)
            uk = u
        else:
            uk = dk
        h = h0 if k == 0 else H[k - 1]
        sig = (dk, uk, t, h if k == 0 or src is H else src[k - 1])  # Signal(d, u, t, src)
        grads = (grad_w[k], nogb if grad_b is None else grad_b[k])  # Grads(G, gb)
        maxima[k] = ops.backward(k, h, uk, None if block.first else t, sig, grads, wire[k], phi,
                                 score)
        if layer_done is not None:
            layer_done(k)
        d, t = t, d
    return maxima.view(ops.dtype) if score else None


class BatchMajor:
    """The layout of the dense passes: a batch one example per row, (B, n); each layer one BLAS
    product forward (y = h Wᵀ) and two backward (G = uᵀ h_prev, t = u W), each followed by one
    kernel. ``weights``: the (possibly masked) weights the passes use, C-contiguous.

    A layout gives :func:`run_forward` and :func:`run_backward` its buffers (:meth:`buffer`,
    :meth:`logits`) and does a layer's work: :meth:`forward` (its product into P, then the
    kernel writing ``out``) and :meth:`backward` (its weight gradient into ``grads``' G, t = the
    input gradient's product unless t is None, then the kernel)."""

    def __init__(self, net, weights, batch, dtype):
        self.weights = weights
        self.biases = [np.ascontiguousarray(b, dtype) for b in net.biases]
        self.batch, self.dtype = batch, np.dtype(dtype)

    def buffer(self, name, n, layers=None):
        shape = (self.batch, n) if layers is None else (layers, self.batch, n)
        return scratch(name, shape, self.dtype)

    def logits(self, classes):
        return np.empty((self.batch, classes), self.dtype)

    def forward(self, k, h, P, out, block, phi):
        np.dot(h, self.weights[k].T, out=P)
        _layer_forward(P, self.biases[k], out, block, phi)

    def backward(self, k, h, u, t, sig, grads, block, phi, score):
        np.dot(u.T, h, out=grads[0])  # Grads(G, gb)
        if t is not None:
            np.dot(u, self.weights[k], out=t)  # u W^k, made into ∂ℒ/∂y^(k−1) by the kernel
        return _layer_backward(sig, self.weights[k], grads, block, phi, score)


def _forward(net, weights, X):
    """Forward pass, batch-major, with the given (possibly masked) weights: returns the logits
    (B, C), a new array, and the cache ``(H, Y)`` of scratch arrays, both (L, B, N)
    (:func:`run_forward`)."""
    return run_forward(net, BatchMajor(net, weights, X.shape[0], X.dtype), X)


def _loss_and_grads(net, weights, X, y, grad_w, grad_b, score=False, layer_done=None):
    """Trusted inputs: fills ``grad_w`` (C-contiguous, preallocated) and ``grad_b`` (unless None)
    and returns the loss; with ``score``, returns (loss, per-layer maxima) and ``grad_w`` holds
    the SNIP scores (:func:`run_backward`)."""
    ops = BatchMajor(net, weights, X.shape[0], X.dtype)
    logits, cache = run_forward(net, ops, X)
    delta = np.empty_like(logits)
    loss = _softmax_xent(logits, y, delta)
    maxima = run_backward(net, ops, X, cache, delta, grad_w, grad_b, score, layer_done)
    return (float(loss), maxima) if score else float(loss)
