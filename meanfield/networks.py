"""Finite-width random networks: initialisation, forward pass, backpropagation. THEORY.md §1.

Three architectures of depth L (L hidden layers of width N, input dimension N₀, C classes):

* ``"ffnn"``:           y¹ = W¹x + B¹,   y^l = W^l φ(y^{l−1}) + B^l                 (l = 2 … L)
* ``"resnet"``:         y¹ = W¹x + B¹,   y^l = y^{l−1} + (W^l φ(y^{l−1}) + B^l)
* ``"stable_resnet"``:  y¹ = W¹x + B¹,   y^l = y^{l−1} + (W^l φ(y^{l−1}) + B^l) / √L  (Hayou et al. 2021)

and for all three the readout ``logits = W^out φ(y^L) + B^out``. The readout counts as a layer: a
network holds ``depth + 1`` weight matrices, all scored and pruned alike. The loss is the mean
cross-entropy of the softmax of the logits over a batch.

Layout: a batch is a (B, N₀) array, one input per row, so layer l computes the (B, N) array
Y^l = H^{l−1} (W^l)ᵀ + B^l from H^{l−1} = φ(Y^{l−1}) (H⁰ = X). Every layer of either pass is a
BLAS product or two and one numba kernel that fuses the elementwise work around them (bias,
residual update, φ' and the product by it, the bias gradient, the SNIP scores and their maximum);
φ = tanh is applied by numpy's vectorised ``np.tanh``, any other φ by its compiled
``Activation.kernel``. The arrays of the passes are per-thread buffers reused from call to call
(:func:`scratch`). float32 by default.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
from numba import njit

from ._validate import (
    FLOAT_DTYPES,
    InputError,
    InputTypeError,
    check_array,
    check_choice,
    check_dtype,
    check_indices,
    check_int,
    check_memory,
    check_rng,
)
from .activations import Activation, get_activation
from .activations import _tanh as _tanh_source

__all__ = ["Network", "init_network", "forward", "loss_and_grads"]

#: the architectures every module takes (``arch=``): the one list, read by maps, pruning, sparsity,
#: training and the command line
ARCHS = ("ffnn", "resnet", "stable_resnet")
DTYPES = FLOAT_DTYPES


@dataclass(eq=False)
class Network:
    """A random network of depth L: L hidden layers and a readout (THEORY.md §1).

    Attributes
    ----------
    weights : list of ndarray
        ``depth + 1`` matrices: W¹ (N, N₀), W² … W^L (N, N), readout W^out (C, N).
    biases : list of ndarray
        ``depth + 1`` vectors: B¹ … B^L (N,), B^out (C,).
    activation : Activation
        A name such as ``"tanh"`` is converted.
    arch : {"ffnn", "resnet", "stable_resnet"}
    depth : int, optional
        L, the number of hidden layers; default ``len(weights) - 1``.
    sigma_w, sigma_b : float or None
        The initialisation it was drawn with (None if built by hand).

    Functions taking a network check that its shapes chain and its dtype is float32 or float64.
    """

    weights: list
    biases: list
    activation: Activation
    arch: str = "ffnn"
    depth: int | None = None
    sigma_w: float | None = None
    sigma_b: float | None = None

    def __post_init__(self):
        self.activation = get_activation(self.activation)
        if self.depth is None:
            self.depth = len(self.weights) - 1

    @property
    def alpha(self):
        """Scale of the residual branches: 1/√L for ``"stable_resnet"``, else 1."""
        return 1.0 / math.sqrt(self.depth) if self.arch == "stable_resnet" else 1.0

    @property
    def width(self):
        return self.weights[0].shape[0]

    @property
    def n_in(self):
        return self.weights[0].shape[1]

    @property
    def classes(self):
        return self.weights[-1].shape[0]

    @property
    def dtype(self):
        return self.weights[0].dtype

    @property
    def n_weights(self):
        """Total number of weights (biases excluded)."""
        return sum(w.size for w in self.weights)


# ------------------------------------------------------------------------------------------------
# Gaussian draws: numpy's float32 ziggurat, run by numba on bits drawn from the rng in bulk
# ------------------------------------------------------------------------------------------------

def _ziggurat_tables():
    """The 256-layer ziggurat tables of numpy's float32 normal sampler (Marsaglia & Tsang 2000),
    regenerated: identical, entry by entry, to numpy's ``ki_float``, ``wi_float``, ``fi_float``."""
    dn = tn = 3.6541528853610088
    vn = 4.92867323399e-3
    ki, wi, fi = np.zeros(256, np.uint32), np.zeros(256), np.zeros(256)
    q = vn / math.exp(-0.5 * dn * dn)
    m = 2.0 ** 23
    ki[0], wi[0], wi[255] = round(dn / q * m), q / m, dn / m
    fi[0], fi[255] = 1.0, math.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(vn / dn + math.exp(-0.5 * dn * dn)))
        ki[i + 1] = round(dn / tn * m)
        tn = dn
        fi[i], wi[i] = math.exp(-0.5 * dn * dn), dn / m
    return wi.astype(np.float32), ki, fi.astype(np.float32)


_ZIG_W, _ZIG_K, _ZIG_F = _ziggurat_tables()
_ZIG_R = np.float32(3.6541528853610088)
_ZIG_INV_R = np.float32(1.0 / 3.6541528853610088)
_U64_MAX = np.iinfo(np.uint64).max


@njit(cache=True, error_model="numpy")
def _uniform32(u):
    return np.float32(u >> 8) / np.float32(16777216.0)


@njit(cache=True, error_model="numpy")
def _zig_slow(bits, pos, u):
    """Finish a ziggurat sample whose first word ``u`` missed the fast test (≈ 1.5% of them).
    Returns (x, next pos), or (0, -1) if ``bits`` ran out."""
    nb = bits.size
    while True:
        idx = u & 0xFF
        rabs = (u >> 9) & 0x7FFFFF
        x = np.float32(rabs) * _ZIG_W[idx]
        if (u >> 8) & 1:
            x = -x
        if rabs < _ZIG_K[idx]:
            return x, pos
        if idx == 0:  # the tail, x > r
            while True:
                if pos + 2 > nb:
                    return np.float32(0.0), -1
                xx = np.float32(-_ZIG_INV_R * np.log1p(-_uniform32(bits[pos])))
                yy = np.float32(-np.log1p(-_uniform32(bits[pos + 1])))
                pos += 2
                if yy + yy > xx * xx:
                    x = np.float32(_ZIG_R + xx)
                    return (-x if (rabs >> 8) & 1 else x), pos
        else:  # the wedge
            if pos >= nb:
                return np.float32(0.0), -1
            f = _uniform32(bits[pos])
            pos += 1
            if (_ZIG_F[idx - 1] - _ZIG_F[idx]) * f + _ZIG_F[idx] < np.float32(
                    np.exp(np.float32(-0.5) * x * x)):
                return x, pos
        if pos >= nb:
            return np.float32(0.0), -1
        u = bits[pos]
        pos += 1


@njit(cache=True, error_model="numpy")
def _ziggurat(first, extra, pos, out, stops, scales, seg, rejected):
    """Ziggurat samples out[i] = scales[k] · Z_i (stops[k−1] <= i < stops[k]), segment by segment
    from segment ``seg``, the product rounded to out's dtype.

    Sample i starts from the 32-bit word first[i]; the ≈ 1.5% that miss the fast test are
    finished right after their segment's pass (while it is in cache), in order, from the words
    extra[pos:]. Returns (seg, pos): seg == stops.size when done; else the extra words ran out
    during segment ``seg``, which is to be redone from extra[pos:] (pos where its fixes began).
    """
    start = 0 if seg == 0 else stops[seg - 1]
    while seg < stops.size:
        s = scales[seg]
        nr = 0
        for i in range(start, stops[seg]):
            u = first[i]
            idx = u & 0xFF
            rabs = (u >> 9) & 0x7FFFFF
            x = np.float32(rabs) * _ZIG_W[idx]
            if (u >> 8) & 1:
                x = -x
            out[i] = x * s
            if rabs >= _ZIG_K[idx]:
                rejected[nr] = i
                nr += 1
        p = pos
        for j in range(nr):
            i = rejected[j]
            x, p = _zig_slow(extra, p, first[i])
            if p < 0:
                return seg, pos
            out[i] = x * s
        pos = p
        start = stops[seg]
        seg += 1
    return seg, pos


def _fill_normal(rng, out, stops, scales):
    """Fill the 1-D ``out`` segment by segment with scales[k] · Z, Z ~ N(0, 1), from ``rng``.

    The sampler is numpy's float32 ziggurat (Marsaglia & Tsang 2000, numpy's tables) fed with
    32-bit words drawn in bulk by ``rng.integers`` (64-bit words split in two, low half first):
    sample i starts from word i; the ≈ 1.5% that miss the fast test are finished from the words
    after the first n (n/16 + 64 extra are drawn, more if ever needed, unused ones discarded).
    Exact in distribution, deterministic given the rng's state, and about 3× faster than
    ``rng.standard_normal``, whose cost is its per-sample call overhead. Z is a float32; scale · Z
    is formed in float64 and rounded to out's dtype.
    """
    n = out.size
    if n == 0:
        return
    words = rng.integers(0, _U64_MAX, size=(n + n // 16 + 64) // 2, dtype=np.uint64,
                         endpoint=True).view(np.uint32)
    first, extra = words[:n], words[n:]
    rejected = np.empty(int(np.diff(stops, prepend=0).max()), np.int64)
    seg, pos = _ziggurat(first, extra, 0, out, stops, scales, 0, rejected)
    while seg < stops.size:  # the extra words ran out: essentially never
        more = rng.integers(0, _U64_MAX, size=n // 64 + 64, dtype=np.uint64, endpoint=True)
        extra = np.concatenate((extra[pos:], more.view(np.uint32)))
        seg, pos = _ziggurat(first, extra, 0, out, stops, scales, seg, rejected)


def standard_normal(rng, shape, dtype=np.float64, out=None):
    """Standard normal draws from ``rng`` by the library's sampler (numpy's float32 ziggurat, run
    on bits drawn in bulk: exact in distribution, about 3× faster than ``rng.standard_normal``).

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : tuple of int
    dtype : numpy.float32 or numpy.float64
        The float32 normals are returned as they are, or converted exactly to float64.
    out : ndarray, optional
        C-contiguous, of that shape and dtype, to fill instead of allocating.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.networks import standard_normal
    >>> standard_normal(np.random.default_rng(0), (2, 3), np.float32).shape
    (2, 3)
    """
    rng = check_rng(rng)
    dt = check_dtype(dtype)
    if out is None:
        shape = (check_int("shape", shape, 0),) if np.ndim(shape) == 0 else tuple(
            check_int("shape", n, 0) for n in shape)
        check_memory(f"`shape` == {shape}", math.prod(shape) * dt.itemsize)
        out = np.empty(shape, dt)
    _fill_normal(rng, out.reshape(-1), np.array([out.size], np.int64), np.ones(1))
    return out


# ------------------------------------------------------------------------------------------------
# Layer kernels: the elementwise work of a layer, after its BLAS product (made by numpy's BLAS,
# called from Python: numba's np.dot goes through scipy's BLAS, measured 10-25 % slower on
# 64 x 300 x 300 products, and a one-thread step of a 784 -> 20 x 300 net 35 ms against 30 ms)
# ------------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True, error_model="numpy")
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


@njit(cache=True, nogil=True, error_model="numpy")
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


@njit(cache=True, nogil=True, error_model="numpy")
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


# ------------------------------------------------------------------------------------------------
# Validation helpers
# ------------------------------------------------------------------------------------------------

def check_network(net):
    """``net`` if it is a :class:`Network` whose shapes chain (the check of every function taking
    one; shared by :mod:`meanfield.pruning`)."""
    if not isinstance(net, Network):
        raise InputTypeError(f"`net` == {type(net).__name__}: must be a meanfield Network "
                             f"(see init_network)")
    check_choice("arch", net.arch, ARCHS)
    L = net.depth
    if not (isinstance(L, int) and L >= 1 and len(net.weights) == L + 1 == len(net.biases)):
        raise InputError(f"`net` has depth {L!r}, {len(net.weights)} weight matrices and "
                         f"{len(net.biases)} bias vectors: must be L >= 1, L + 1 and L + 1")
    if net.dtype.type not in DTYPES:
        raise InputTypeError(f"`net` has dtype {net.dtype}: must be float32 or float64")
    N = net.width
    for l, (w, b) in enumerate(zip(net.weights, net.biases)):
        fan_in = net.n_in if l == 0 else N
        fan_out = net.classes if l == L else N
        if np.shape(w) != (fan_out, fan_in) or np.shape(b) != (fan_out,):
            raise InputError(f"`net` layer {l}: weights {np.shape(w)} and biases {np.shape(b)}; "
                             f"must be ({fan_out}, {fan_in}) and ({fan_out},)")
    return net


def check_inputs(net, X):
    """``X`` as a C-contiguous (batch, n_in) array of ``net``'s dtype, batch >= 1, finite."""
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError):  # ragged nests
        raise InputTypeError(f"`X`: must be a (batch, {net.n_in}) array of real numbers") from None
    if arr.dtype.kind not in "iuf":
        raise InputTypeError(f"`X` has dtype {arr.dtype}: must be real numbers")
    if arr.ndim != 2 or arr.shape[1] != net.n_in:
        raise InputError(f"`X` has shape {arr.shape}: must be (batch, {net.n_in})")
    if arr.shape[0] == 0:
        raise InputError("`X` has shape (0, ...): must hold at least one input")
    out = np.ascontiguousarray(arr, dtype=net.dtype)
    if not np.isfinite(out).all():  # nan in, nan loss out: refused instead of propagated
        raise InputError(f"`X` holds {out.ravel()[np.flatnonzero(~np.isfinite(out))[0]]!r} "
                         f"(in {net.dtype}): must be finite")
    return out


def check_labels(net, y, batch):
    """``y`` as ``batch`` int64 class labels in [0, net.classes): they index the logits in a numba
    kernel, which checks no bounds."""
    return check_indices("y", y, net.classes, shape=(batch,))


def check_finite(net, values, what):
    """Refuse (``InputError`` naming σ_w, σ_b and the depth) results of ``net`` that overflowed its
    dtype: a strongly chaotic float32 network (σ_w large, gradients growing like χ^L) makes inf and
    nan scores, from which a critical sparsity or a mask would be garbage, silently (nan compares
    false: s_cr = 0). ``values``: an array or a list of them."""
    arrays = values if isinstance(values, (list, tuple)) else [values]
    if all(np.isfinite(a).all() for a in arrays):
        return values
    raise InputError(f"`sigma_w` == {net.sigma_w!r}, `sigma_b` == {net.sigma_b!r} at depth "
                     f"{net.depth}: the {what} of this {net.dtype} network overflow (inf or nan); "
                     f"use a smaller sigma_w, sigma_b or depth, or float64")


def check_masks(net, masks, name="masks"):
    """``masks`` (or any list of arrays called ``name``) shaped like ``net.weights``, or None."""
    if masks is None:
        return None
    masks = list(masks)
    if len(masks) != len(net.weights):
        raise InputError(f"`{name}` has {len(masks)} arrays: must have {len(net.weights)} "
                         f"(one per weight matrix, readout included)")
    out = []
    for l, (m, w) in enumerate(zip(masks, net.weights)):
        m = np.asarray(m)
        if m.shape != w.shape:
            raise InputError(f"`{name}[{l}]` has shape {m.shape}: must be {w.shape}")
        out.append(m)
    return out


def _weights(net, masks):
    """The weights the passes use: δ ∘ W with masks, C-contiguous, in the network's dtype."""
    dt = net.dtype
    if masks is None:
        return [np.ascontiguousarray(w, dt) for w in net.weights]
    return [np.ascontiguousarray(w * m.astype(dt, copy=False), dt)
            for w, m in zip(net.weights, masks)]


# ------------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------------

def init_network(activation, width, depth, sigma_w, sigma_b, *, n_in=None, classes=10,
                 arch="ffnn", rng, dtype=np.float32):
    """Draw a random network: W^l_ij ~ N(0, σ_w²/fan_in), B^l_i ~ N(0, σ_b²) (THEORY.md §1).

    Parameters
    ----------
    activation : str or Activation
    width : int >= 1
        N, the width of every hidden layer.
    depth : int >= 1
        L, the number of hidden layers (the readout comes on top).
    sigma_w : float > 0
    sigma_b : float >= 0
    n_in : int >= 1, optional
        N₀, the input dimension; default ``width``.
    classes : int >= 2, default 10
        C, the number of outputs.
    arch : {"ffnn", "resnet", "stable_resnet"}
        Plain feed-forward, residual (branch scale 1) or Stable ResNet (branch scale 1/√L; Hayou
        et al. 2021). See the module docstring.
    rng : numpy.random.Generator
        The only source of randomness. One pass of :func:`standard_normal` gives, in this order,
        all the weights (W¹, W², …, W^L, W^out, each row-major) and then all the biases (B¹, …,
        B^out), each as scale · Z with Z a float32 normal and the product rounded to ``dtype``;
        so the float32 and float64 networks of one seed agree to float32 rounding.
    dtype : numpy.float32 or numpy.float64, default float32

    Returns
    -------
    Network
        The weights and biases are views into one contiguous buffer.

    Raises
    ------
    ValueError, TypeError
        A parameter out of range or of the wrong type; the message names it.

    References
    ----------
    THEORY.md §1; Hayou, Ton, Doucet, Teh (2021), *Robust Pruning at Initialization*, §2.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.networks import init_network
    >>> net = init_network("tanh", 8, 3, 1.5, 0.1, n_in=4, classes=2, rng=np.random.default_rng(0))
    >>> [w.shape for w in net.weights]
    [(8, 4), (8, 8), (8, 8), (2, 8)]
    >>> net.dtype
    dtype('float32')
    """
    act = get_activation(activation)
    width = check_int("width", width, 1)
    depth = check_int("depth", depth, 1)
    sigma_w = float(check_array("sigma_w", sigma_w, scalar=True))
    sigma_b = float(check_array("sigma_b", sigma_b, scalar=True))
    n_in = width if n_in is None else check_int("n_in", n_in, 1)
    classes = check_int("classes", classes, 2)
    arch = check_choice("arch", arch, ARCHS)
    rng = check_rng(rng)
    dt = check_dtype(dtype)
    return draw_network(act, width, depth, sigma_w, sigma_b, n_in, classes, arch, rng, dt)


def draw_network(act, width, depth, sigma_w, sigma_b, n_in, classes, arch, rng, dtype,
                 buffer=None):
    """:func:`init_network` for validated inputs; ``buffer(size)`` may supply the flat array.
    A network that cannot fit in memory is refused before anything is allocated."""
    size = parameter_count(width, depth, n_in, classes)
    check_memory(f"`width` == {width}, `depth` == {depth}, `n_in` == {n_in}, `classes` == "
                 f"{classes} ({size} parameters of {np.dtype(dtype).itemsize} bytes)",
                 size * np.dtype(dtype).itemsize)
    shapes = layer_shapes(width, depth, n_in, classes)
    flat = np.empty(size, dtype) if buffer is None else buffer(size)
    weights, biases = draw_parameters(rng, shapes, sigma_w, sigma_b, flat)
    return Network(weights, biases, act, arch, depth, sigma_w, sigma_b)


def parameter_count(width, depth, n_in, classes):
    """Weights and biases of a network, computed from the sizes alone (Python ints: no overflow
    whatever the request)."""
    return (width * n_in + width) + (depth - 1) * (width * width + width) + (classes * width
                                                                               + classes)


def layer_shapes(width, depth, n_in, classes):
    """Shapes of W¹ … W^L, W^out."""
    return [(width, n_in)] + [(width, width)] * (depth - 1) + [(classes, width)]


def draw_parameters(rng, shapes, sigma_w, sigma_b, flat):
    """Fill ``flat`` with all the weights (layer by layer, row-major) then all the biases, in one
    pass of the sampler; return the lists of views W^l and B^l."""
    sizes = [a * b for a, b in shapes] + [a for a, _ in shapes]
    stops = np.cumsum(sizes).astype(np.int64)
    scales = np.array([sigma_w / math.sqrt(b) for _, b in shapes] + [sigma_b] * len(shapes))
    _fill_normal(rng, flat, stops, scales)
    views = [flat[e - n:e] for e, n in zip(stops, sizes)]
    n = len(shapes)
    return [v.reshape(sh) for v, sh in zip(views[:n], shapes)], views[n:]


def forward(net, X, masks=None):
    """Logits of the network for a batch of inputs.

    Parameters
    ----------
    net : Network
    X : array_like, shape (B, N₀)
        One input per row; converted to ``net.dtype``.
    masks : list of array_like, optional
        0/1 (or bool) arrays shaped like ``net.weights``; the network then uses δ ∘ W
        (THEORY.md §1), so a pruned weight's value has no effect.

    Returns
    -------
    ndarray, shape (B, C), dtype ``net.dtype``

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.networks import init_network, forward
    >>> rng = np.random.default_rng(1)
    >>> net = init_network("tanh", 6, 2, 1.2, 0.1, classes=3, rng=rng)
    >>> forward(net, np.ones((5, 6))).shape
    (5, 3)
    """
    net = check_network(net)
    X = check_inputs(net, X)
    masks = check_masks(net, masks)
    logits, _ = _forward(net, _weights(net, masks), X)
    return logits


def loss_and_grads(net, X, y, masks=None):
    """Mean cross-entropy loss and its gradients with respect to every weight and bias.

    ℒ = −(1/B) Σ_b log softmax(logits_b)_{y_b}, backpropagated through the network (one BLAS
    product per layer forward and two backward).

    Parameters
    ----------
    net : Network
    X : array_like, shape (B, N₀)
    y : array_like of int, shape (B,)
        Class labels in [0, C).
    masks : list of array_like, optional
        As in :func:`forward`. The gradients are with respect to the underlying weights W of the
        masked network δ ∘ W, so a pruned weight's gradient is 0.

    Returns
    -------
    loss : float
    grad_w : list of ndarray
        ∂ℒ/∂W^l, shaped like ``net.weights``, dtype ``net.dtype``.
    grad_b : list of ndarray
        ∂ℒ/∂B^l, shaped like ``net.biases``.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.networks import init_network, loss_and_grads
    >>> rng = np.random.default_rng(2)
    >>> net = init_network("tanh", 6, 2, 1.2, 0.1, classes=3, rng=rng)
    >>> loss, gw, gb = loss_and_grads(net, rng.standard_normal((4, 6)), [0, 1, 2, 0])
    >>> [g.shape for g in gw]
    [(6, 6), (6, 6), (3, 6)]
    """
    net = check_network(net)
    X = check_inputs(net, X)
    y = check_labels(net, y, X.shape[0])
    masks = check_masks(net, masks)
    weights = _weights(net, masks)
    grad_w = [np.empty_like(w) for w in weights]
    grad_b = [np.empty_like(b) for b in net.biases]
    loss = _loss_and_grads(net, weights, X, y, grad_w, grad_b)
    if masks is not None:
        for g, m in zip(grad_w, masks):
            g *= m.astype(g.dtype, copy=False)
    return loss, grad_w, grad_b


def _loss_and_grads(net, weights, X, y, grad_w, grad_b, score=False, layer_done=None):
    """Trusted inputs: fills ``grad_w`` (and ``grad_b`` unless None) and returns the loss; with
    ``score``, see :func:`_backward`, and returns (loss, per-layer maxima); ``layer_done``: see
    :func:`_backward`."""
    logits, cache = _forward(net, weights, X)
    delta = np.empty_like(logits)
    loss = _softmax_xent(logits, y, delta)
    maxima = _backward(net, weights, X, cache, delta, grad_w, grad_b, score, layer_done)
    return (float(loss), maxima) if score else float(loss)
