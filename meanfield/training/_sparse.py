"""Sparse layers for the trainer: a pruned layer trains at the cost of the weights it keeps.

A layer whose mask is fixed for the whole training is held as its kept weights alone, in
compressed sparse rows (:class:`SparseLayer`): ``values[p]`` is W_ij for the p-th kept (i, j) in
row-major order. Pruned weights are not stored, so they stay exactly zero by construction; their
gradients are never formed.

Layout: the passes here hold a batch feature-major, one feature per row: H^l is (N, B) with the
batch contiguous. A kept weight w_ij then costs one B-wide multiply-add over contiguous memory in
each of the three products of a layer:

* forward,            Y[i, :] += w_ij H[j, :]      (the rows of the CSR, gathered into one row);
* input gradient,     T[j, :] += w_ij U[i, :]      (the columns, through a CSC copy of the indices);
* weight gradient,    G_ij = U[i, :] · H[j, :]     (a B-long dot product, at kept (i, j) only).

Dense layers of the same network (a layer kept too dense to gain, the readout) run in the same
layout through numpy's BLAS, so a network can mix both kinds. The layer loop is the dense passes'
(:func:`meanfield.nets._pass.run_forward`, ``run_backward``, through the :class:`FeatureMajor`
layout here); the elementwise work around the products (bias, residual update, φ and φ') is the
helpers of :mod:`meanfield.nets._layer`, inlined into the kernels here as into the dense ones, and
the bias gradient is fused in; tanh is applied by numpy's vectorised ``np.tanh``, as in
:mod:`meanfield.nets`. A network whose every layer is sparse runs as one compiled call per shard
(:class:`PackedLayers`), with the same helpers and its own float32 tanh.

The kernels sum in a fixed order given the mask (a row's kept weights in column order, four at a
time), so the results depend on the mask and the data, never on the thread that runs them. They
differ from the dense-masked products (BLAS's own order) by float32 rounding only.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from .._jit import jit_inline, jit_nogil, jit_pass, jit_reassoc
from ..nets._layer import (
    Block,
    Grads,
    Out,
    Phi,
    Signal,
    affine,
    apply_phi,
    backprop,
    is_tanh,
    phi_of,
)
from ..nets._pass import _softmax_xent, run_backward, run_forward, scratch

#: a pruned layer whose fraction of kept weights is at most this runs sparse under
#: ``sparse="auto"``. Measured on a 2-core AMD EPYC (Zen 4, AVX-512), training steps of the
#: 784 -> 20 x 300 tanh net with every layer at one density, sparse and dense interleaved in one
#: process: sparse is 2.7x faster at density 0.1, 1.5x at 0.2, 1.2x at 0.25, 1.06x at 0.3. An
#: epoch-level run on the busy machine found sparse 0.9x at 0.2 (arms minutes apart); 0.2 keeps a
#: margin for that noise and for layers of other shapes. See docs/training.md.
SPARSE_MAX_DENSITY = 0.2


Csr = namedtuple("Csr", "indptr indices values")
Csr.__doc__ = """A sparse layer's kept weights by rows: row i's are ``values[indptr[i]:indptr[i + 1]]``,
at columns ``indices[...]``."""

Csc = namedtuple("Csc", "colptr rows values")
Csc.__doc__ = """The same kept weights by columns: column j's are ``values[colptr[j]:colptr[j + 1]]``
(the kept values in column order), at rows ``rows[...]``."""


class SparseLayer:
    """The index structure of a pruned (n_out, n_in) layer: its kept positions in compressed
    sparse rows, and the same positions by column for the input gradient.

    Attributes
    ----------
    shape : (n_out, n_in)
    nnz : int
        Kept weights.
    indptr : (n_out + 1,) int64, indices : (nnz,) int32
        Row i's kept weights are ``values[indptr[i]:indptr[i + 1]]``, at columns ``indices[...]``.
    colptr : (n_in + 1,) int64, rows : (nnz,) int32, perm : (nnz,) int64
        The same by columns: column j's kept weights are ``values[perm[q]]`` for q in
        ``colptr[j]:colptr[j + 1]``, at rows ``rows[q]`` (ascending); the input gradient reads
        them from ``values[perm]``, a copy in that order (:meth:`by_column`).
    flat : (nnz,) int64
        Their positions in the flattened dense matrix (row-major).
    """

    def __init__(self, mask):
        m = np.asarray(mask) != 0
        if m.ndim != 2:  # an internal invariant: masks are checked at the edge (check_masks)
            raise AssertionError(f"a layer mask must be 2-D; got shape {m.shape}")
        n_out, n_in = self.shape = m.shape
        rows, cols = np.nonzero(m)  # row-major: the CSR order
        self.nnz = rows.size
        self.flat = rows.astype(np.int64) * n_in + cols
        self.indptr = np.zeros(n_out + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=n_out), out=self.indptr[1:])
        self.indices = cols.astype(np.int32)
        self.perm = np.argsort(cols, kind="stable").astype(np.int64)
        self.colptr = np.zeros(n_in + 1, np.int64)
        np.cumsum(np.bincount(cols, minlength=n_in), out=self.colptr[1:])
        self.rows = rows[self.perm].astype(np.int32)

    @property
    def density(self):
        return self.nnz / max(1, self.shape[0] * self.shape[1])

    def gather(self, W):
        """The kept values of the dense W, (nnz,), a new array."""
        return np.ascontiguousarray(W).reshape(-1)[self.flat]

    def by_column(self, values, out=None):
        """The kept values in column order, ``values[perm]`` (into ``out`` if given)."""
        return np.take(values, self.perm, out=out)

    def csr(self, values):
        """The layer's kept ``values`` (CSR order) with their indices: a :class:`Csr`, as the
        kernels take it (a plain tuple, :mod:`meanfield.nets._layer`)."""
        return self.indptr, self.indices, values  # Csr

    def csc(self, values_t):
        """The layer's kept values in column order (:meth:`by_column`) with their indices: a
        :class:`Csc`, as the kernels take it."""
        return self.colptr, self.rows, values_t  # Csc

    def scatter(self, values, W):
        """Write ``values`` into the dense W in place, pruned entries 0."""
        W[...] = 0
        W.reshape(-1)[self.flat] = values


# ------------------------------------------------------------------------------------------------
# Kernels (feature-major: a (n, B) array holds one feature per row, the batch contiguous)
# ------------------------------------------------------------------------------------------------

@jit_nogil(inline="always")
def _accumulate(values, idx, src, lo, hi, acc, init):
    """acc = init + Σ_{q=lo}^{hi−1} values[q] src[idx[q], :]; four terms at a time ((a + b) +
    (c + d) added to acc) so that the running sum is not one long chain of dependent additions,
    the first four written with ``init`` rather than added to a zeroed acc (a pass less)."""
    B = acc.size
    q = lo
    if q + 4 <= hi:
        w0, w1, w2, w3 = values[q], values[q + 1], values[q + 2], values[q + 3]
        s0, s1, s2, s3 = src[idx[q]], src[idx[q + 1]], src[idx[q + 2]], src[idx[q + 3]]
        for t in range(B):
            acc[t] = init + ((w0 * s0[t] + w1 * s1[t]) + (w2 * s2[t] + w3 * s3[t]))
        q += 4
    else:
        for t in range(B):
            acc[t] = init
    while q + 4 <= hi:
        w0, w1, w2, w3 = values[q], values[q + 1], values[q + 2], values[q + 3]
        s0, s1, s2, s3 = src[idx[q]], src[idx[q + 1]], src[idx[q + 2]], src[idx[q + 3]]
        for t in range(B):
            acc[t] += (w0 * s0[t] + w1 * s1[t]) + (w2 * s2[t] + w3 * s3[t])
        q += 4
    while q < hi:
        w0 = values[q]
        s0 = src[idx[q]]
        for t in range(B):
            acc[t] += w0 * s0[t]
        q += 1


@jit_reassoc
def _dots(u, h, indices, lo, hi, G, zero):
    """G[q] = u · h[indices[q]] for q in [lo, hi); four dot products at a time (their reductions
    overlap). Reassociated, hence vectorised, in an order fixed by the length alone; each sum
    starts from ``zero`` (0 in the arrays' dtype) and runs over the whole row, so that a row of
    a multiple of the vector width leaves no scalar remainder."""
    B = u.size
    q = lo
    while q + 4 <= hi:
        h0, h1, h2, h3 = h[indices[q]], h[indices[q + 1]], h[indices[q + 2]], h[indices[q + 3]]
        s0 = s1 = s2 = s3 = zero
        for t in range(B):
            a = u[t]
            s0 += a * h0[t]
            s1 += a * h1[t]
            s2 += a * h2[t]
            s3 += a * h3[t]
        G[q], G[q + 1], G[q + 2], G[q + 3] = s0, s1, s2, s3
        q += 4
    while q < hi:
        h0 = h[indices[q]]
        s0 = zero
        for t in range(B):
            s0 += u[t] * h0[t]
        G[q] = s0
        q += 1


@jit_pass
def _sparse_forward(w, h, b, out, block, phi, acc):
    """A sparse layer forward: each row of P = W h (``w`` its kept weights by rows,
    :class:`Csr`), then that row of ``out`` (:func:`affine`, b[i] the row's bias; φ unless
    ``phi.kernel`` is 0). h (n_in, B), b (n_out,), out's arrays (n_out, B), acc (B,) scratch."""
    w, out, block, phi = Csr(*w), Out(*out), Block(*block), Phi(*phi)
    zero = np.zeros(1, acc.dtype)[0]
    y, prev, hout = out.y, out.prev, out.h
    for i in range(y.shape[0]):
        _accumulate(w.values, w.indices, h, w.indptr[i], w.indptr[i + 1], acc, zero)
        affine(acc, b[i], prev[i], y[i], block)
        if phi.kernel != 0:
            apply_phi(y[i], hout[i], phi)


@jit_pass
def _dense_forward(P, b, out, block, phi):
    """A dense layer forward, after the BLAS product P = W h (n_out, B) (``out.y`` itself unless
    ``block.residual``): as :func:`_sparse_forward`, row by row."""
    out, block, phi = Out(*out), Block(*block), Phi(*phi)
    y, prev, hout = out.y, out.prev, out.h
    for i in range(y.shape[0]):
        affine(P[i], b[i], prev[i], y[i], block)
        if phi.kernel != 0:
            apply_phi(y[i], hout[i], phi)


@jit_reassoc
def _bias_grad(u, gb, zero):
    """gb[i] = Σ_t u[i, t] (reassociated, as in :func:`_dots`: a sum in order would be one chain of
    dependent additions, the slowest part of a sparse layer's backward pass)."""
    for i in range(u.shape[0]):
        ui = u[i]
        s = zero
        for t in range(ui.size):
            s += ui[t]
        gb[i] = s


@jit_pass
def _sparse_backward(w, wt, sig, h, grads, block, phi):
    """A sparse layer's backward pass (:class:`~meanfield.nets._layer.Signal` ``sig``, feature-major,
    u = c d (n_out, B)): ``grads.gb`` = Σ_t u = ∂ℒ/∂b; ``grads.G[q]`` = u[i] · h[j] = ∂ℒ/∂W_ij at
    the kept (i, j) only (CSR order, ``w``); unless ``block.first``, ``sig.t`` = ∂ℒ/∂y_prev
    (n_in, B) by columns: Wᵀ u from the kept values in column order (``wt``, :class:`Csc`), then
    :func:`backprop` row by row."""
    w, wt, sig = Csr(*w), Csc(*wt), Signal(*sig)
    grads, block, phi = Grads(*grads), Block(*block), Phi(*phi)
    zero = phi.one - phi.one
    u = sig.u
    _bias_grad(u, grads.gb, zero)
    for i in range(u.shape[0]):
        _dots(u[i], h, w.indices, w.indptr[i], w.indptr[i + 1], grads.G, zero)
    if not block.first:
        t, d, src = sig.t, sig.d, sig.src
        for j in range(t.shape[0]):
            _accumulate(wt.values, wt.rows, u, wt.colptr[j], wt.colptr[j + 1], t[j], zero)
            backprop(t[j], d[j] if block.residual else t[j], src[j], phi, block.residual)


@jit_pass
def _dense_backward(sig, gb, block, phi):
    """A dense layer's elementwise backward work, feature-major, after the BLAS products
    G = u hᵀ and t = Wᵀ u: gb = Σ_t u, and unless ``block.first`` ``sig.t`` ← ∂ℒ/∂y_prev
    (:func:`backprop`, row by row)."""
    sig, block, phi = Signal(*sig), Block(*block), Phi(*phi)
    _bias_grad(sig.u, gb, phi.one - phi.one)
    if not block.first:
        t, d, src = sig.t, sig.d, sig.src
        for j in range(t.shape[0]):
            backprop(t[j], d[j] if block.residual else t[j], src[j], phi, block.residual)


# ------------------------------------------------------------------------------------------------
# A network whose every layer is sparse: one compiled call per shard and step
# ------------------------------------------------------------------------------------------------

#: the rational approximation of tanh used by the packed passes in float32 (Eigen's ``ptanh``:
#: an odd degree-13 numerator over an even degree-6 denominator, the argument clamped to ±c,
#: where the approximation reaches 1 in float32): measured within 3 float32 epsilons of tanh,
#: relative, where ``np.tanh`` is within 1 (tested); float64 uses ``math.tanh``
_TANH_CLAMP = 7.90531110763549805


@jit_inline
def _tanh32(x):
    c = np.float32(_TANH_CLAMP)
    x = c if x > c else x
    x = -c if x < -c else x
    x2 = x * x
    p = np.float32(-2.76076847742355e-16)
    p = p * x2 + np.float32(2.00018790482477e-13)
    p = p * x2 + np.float32(-8.60467152213735e-11)
    p = p * x2 + np.float32(5.12229709037114e-08)
    p = p * x2 + np.float32(1.48572235717979e-05)
    p = p * x2 + np.float32(6.37261928875436e-04)
    p = p * x2 + np.float32(4.89352455891786e-03)
    q = np.float32(1.19825839466702e-06)
    q = q * x2 + np.float32(1.18534705686654e-04)
    q = q * x2 + np.float32(2.26843463243900e-03)
    q = q * x2 + np.float32(4.89352518554385e-03)
    return (p * x) / q


@jit_inline
def _activate(y, out, phi, approx):
    """out = φ(y), elementwise over 1-D arrays (out may be y): tanh (``phi.kernel`` 0) by
    :func:`_tanh32` if ``approx`` (float32; multiply-adds and one division, which vectorise,
    where ``math.tanh`` is a scalar libm call per element) or ``math.tanh``; else by the kernel
    (:func:`apply_phi`)."""
    if phi.kernel == 0:
        if approx:
            for e in range(y.size):
                out[e] = _tanh32(y[e])
        else:
            for e in range(y.size):
                out[e] = math.tanh(y[e])
    else:
        apply_phi(y, out, phi)


Packed = namedtuple("Packed", "dims poff coff voff boff indptr indices colptr rows values values_t "
                              "biases alpha residual approx")
Packed.__doc__ = """A network whose every layer is sparse, packed into flat arrays (what
:func:`_packed_grads` reads). Layer k (k = 0 … L, L + 1 layers of ``dims[k + 1]`` × ``dims[k]``) is
the slice ``voff[k]:voff[k + 1]`` of ``values`` (CSR order), ``indices`` and (column order)
``values_t``, ``rows``; its row pointers ``indptr[poff[k]:poff[k] + dims[k + 1] + 1]``, its column
pointers ``colptr[coff[k]:coff[k] + dims[k] + 1]`` (both counted from the layer's start), its
biases ``biases[boff[k]:boff[k + 1]]``. ``alpha``: the branch scale in the arrays' dtype;
``residual``: a ResNet; ``approx``: tanh by :func:`_tanh32` (float32)."""

Shard = namedtuple("Shard", "X labels lo hi")
Shard.__doc__ = """Rows ``lo:hi`` of the batch ``X`` (n, N₀) C-contiguous, labels (n,) int64."""


class PackedLayers:
    """Every layer of a network sparse, packed into flat arrays (layer after layer) for
    :meth:`grads`: one compiled call per shard and step, where a pass layer by layer costs
    a dozen Python calls per layer and shard, and more than the arithmetic at high sparsity.

    ``values`` (nnz,) are the kept weights of all layers (layer k's are ``params(k)``, a view),
    ``values_t`` the same in column order (``values[perm]``), ``biases`` (Σ n_out,) a copy of the
    network's biases (layer k's ``bias(k)``); ``packed`` all of them as a :class:`Packed`.
    """

    def __init__(self, net, layers, params, dtype):
        dims = np.array([layers[0].shape[1]] + [sl.shape[0] for sl in layers], np.int64)
        n_out, n_in = dims[1:], dims[:-1]

        def offsets(sizes):
            return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

        voff = offsets([sl.nnz for sl in layers])
        self.perm = np.concatenate([sl.perm + o for sl, o in zip(layers, voff)])
        values = np.concatenate([np.asarray(v, dtype) for v in params])
        dtype = np.dtype(dtype)
        # the structure every call reads: its arrays are updated in place, never replaced
        self.packed = Packed(
            dims=dims, poff=offsets(n_out + 1), coff=offsets(n_in + 1), voff=voff,
            boff=offsets(n_out), indptr=np.concatenate([sl.indptr for sl in layers]),
            indices=np.concatenate([sl.indices for sl in layers]),
            colptr=np.concatenate([sl.colptr for sl in layers]),
            rows=np.concatenate([sl.rows for sl in layers]), values=values,
            values_t=values[self.perm],
            biases=np.concatenate([np.asarray(b, dtype) for b in net.biases]),
            alpha=dtype.type(net.alpha), residual=net.arch != "ffnn",
            approx=dtype == np.float32)
        self.values, self.values_t = values, self.packed.values_t
        self.biases, self.voff, self.dims = self.packed.biases, voff, dims
        self.nnz = int(voff[-1])
        self.tanh = is_tanh(net.activation)
        self.phi = phi_of(net.activation, dtype)
        self.wire, self.phi_wire = tuple(self.packed), tuple(self.phi)  # as the kernels take them

    def params(self, k):
        return self.values[self.voff[k]:self.voff[k + 1]]

    def params_t(self, k):
        return self.values_t[self.voff[k]:self.voff[k + 1]]

    def bias(self, k):
        return self.biases[self.packed.boff[k]:self.packed.boff[k + 1]]

    def work_size(self, batch):
        """Elements of the scratch buffer of :meth:`grads` for a shard of ``batch`` examples."""
        n0, N, C, L = self.dims[0], self.dims[1], self.dims[-1], self.dims.size - 2
        return int(batch * (n0 + (1 if self.tanh else 2) * L * N + 4 * N + 2 * C))

    def grads(self, X, y, lo, hi, work, G, gb):
        """The mean loss of the shard X[lo:hi] (X (n, N₀) C-contiguous, y (n,) int64) and its
        gradients into G (nnz,) and gb (Σ n_out,); ``work`` a buffer of
        ``work_size(hi - lo)`` elements or more."""
        return _packed_grads(self.wire, self.phi_wire, (X, y, lo, hi), work, (G, gb))  # Shard, Grads


@jit_pass
def _packed_grads(net, phi, shard, work, grads):
    """The loss of a shard (:class:`Shard`) and its gradients, every layer sparse (:class:`Packed`
    ``net``): the forward pass over all layers, the softmax cross-entropy and the backward pass in
    one call. ∂ℒ/∂values into ``grads.G`` (nnz,), ∂ℒ/∂biases into ``grads.gb``. ``work``: a
    scratch buffer of :meth:`PackedLayers.work_size` elements or more."""
    net, phi, shard, grads = Packed(*net), Phi(*phi), Shard(*shard), Grads(*grads)
    dims, voff, boff, poff = net.dims, net.voff, net.boff, net.poff
    indices, biases, alpha, one = net.indices, net.biases, net.alpha, phi.one
    L = dims.size - 2
    n0, N, C = dims[0], dims[1], dims[L + 1]
    X, lo = shard.X, shard.lo
    B = shard.hi - lo
    tanh = phi.kernel == 0
    # carve the scratch: Xt (n0, B), H (L, N, B), Y (L, N, B) unless tanh, run, d, t, u (N, B),
    # logits, delta (C, B)
    o = 0
    Xt = work[o:o + n0 * B].reshape((n0, B))
    o += n0 * B
    H = work[o:o + L * N * B].reshape((L, N, B))
    o += L * N * B
    if tanh:
        Y = H
    else:
        Y = work[o:o + L * N * B].reshape((L, N, B))
        o += L * N * B
    run = work[o:o + N * B].reshape((N, B))
    o += N * B
    d = work[o:o + N * B].reshape((N, B))
    o += N * B
    t = work[o:o + N * B].reshape((N, B))
    o += N * B
    u = work[o:o + N * B].reshape((N, B))
    o += N * B
    logits = work[o:o + C * B].reshape((C, B))
    o += C * B
    delta = work[o:o + C * B].reshape((C, B))

    # the shard, feature-major (blocks of 64 features: the rows of Xt they write stay in cache)
    for j0 in range(0, n0, 64):
        j1 = min(n0, j0 + 64)
        for s in range(B):
            xs = X[lo + s]
            for j in range(j0, j1):
                Xt[j, s] = xs[j]

    # forward: each row of W h + b, then the layer's elementwise work in flat loops over (N, B)
    # (long loops that vectorise, rather than one short loop per row)
    zero = one - one
    h = Xt
    for k in range(L + 1):
        n_out = dims[k + 1]
        vals, idx = net.values[voff[k]:voff[k + 1]], indices[voff[k]:voff[k + 1]]
        ip = net.indptr[poff[k]:poff[k] + n_out + 1]
        bk = biases[boff[k]:boff[k + 1]]
        if k == L:  # the readout: no residual, no activation
            for i in range(n_out):
                _accumulate(vals, idx, h, ip[i], ip[i + 1], logits[i], bk[i])
            break
        block = Block(net.residual and k > 0, alpha, k == 0)
        # z = W h + b into: H[k] (tanh, then φ in place), Y[k] (another φ), u (residual)
        z = u if block.residual else (H[k] if tanh else Y[k])
        for i in range(n_out):
            _accumulate(vals, idx, h, ip[i], ip[i + 1], z[i], bk[i])
        # (each loop below reads and writes distinct arrays or one array in place, so that
        # LLVM's overlap checks pass: a loop through two views of one buffer runs scalar)
        zf, hf = z.reshape(n_out * B), H[k].reshape(n_out * B)
        if tanh and not net.residual:
            _activate(zf, zf, phi, net.approx)  # H[k] = tanh(y) in place
        elif tanh:
            rf = run.reshape(n_out * B)  # y^l = y^{l−1} + α z (z at the first layer), kept for the skip
            affine(zf, None, rf, rf, block)
            _activate(rf, hf, phi, net.approx)
        else:
            yf = Y[k].reshape(n_out * B)
            if block.residual:
                affine(zf, None, Y[k - 1].reshape(n_out * B), yf, block)
            _activate(yf, hf, phi, net.approx)
        h = H[k]

    loss = _softmax_xent(logits.T, shard.labels[lo:shard.hi], delta.T)

    # backward
    G, gb = grads.G, grads.gb
    src = H if tanh else Y
    dk, tk, spare = delta, d, t  # ∂ℒ/∂y of layer k, of layer k − 1 (being formed), the other
    for k in range(L, -1, -1):
        n_out, n_in = dims[k + 1], dims[k]
        vo, vo1 = voff[k], voff[k + 1]
        ip = net.indptr[poff[k]:poff[k] + n_out + 1]
        res = net.residual and 0 < k < L
        if res and alpha != 1.0:
            df, uf = dk.reshape(n_out * B), u.reshape(n_out * B)
            for e in range(n_out * B):
                uf[e] = alpha * df[e]
            uk = u
        else:
            uk = dk
        h = Xt if k == 0 else H[k - 1]
        _bias_grad(uk, gb[boff[k]:boff[k + 1]], zero)
        Gk, idx = G[vo:vo1], indices[vo:vo1]
        for i in range(n_out):
            _dots(uk[i], h, idx, ip[i], ip[i + 1], Gk, zero)
        if k == 0:
            break
        cp = net.colptr[net.coff[k]:net.coff[k] + n_in + 1]
        vt, rw = net.values_t[vo:vo1], net.rows[vo:vo1]
        for j in range(n_in):
            _accumulate(vt, rw, uk, cp[j], cp[j + 1], tk[j], zero)
        # ∂ℒ/∂y^{k} = (Wᵀ u) ∘ φ'(y^k) (+ ∂ℒ/∂y^{k+1} through the skip)
        tf, sf = tk.reshape(n_in * B), src[k - 1].reshape(n_in * B)
        backprop(tf, dk.reshape(n_in * B) if res else tf, sf, phi, res)
        dk, tk, spare = tk, spare, tk
    return loss


# ------------------------------------------------------------------------------------------------
# Passes
# ------------------------------------------------------------------------------------------------

class FeatureMajor:
    """The layout of the passes of a pruned network in training (:func:`run_forward`,
    :func:`run_backward`): one feature per row, (n, B), the batch contiguous. ``layers[k]`` is a
    :class:`SparseLayer` (``params[k]`` its kept values (nnz,), ``params_t[k]`` the same in column
    order, :meth:`SparseLayer.by_column`) or None (``params[k]`` the dense weights (n_out, n_in),
    by numpy's BLAS; ``params_t[k]`` unused)."""

    def __init__(self, net, layers, params, params_t, batch, dtype):
        self.net, self.layers, self.params, self.params_t = net, layers, params, params_t
        self.batch, self.dtype = batch, np.dtype(dtype)

    def buffer(self, name, n, layers=None):
        shape = (n, self.batch) if layers is None else (layers, n, self.batch)
        return scratch(name + "t", shape, self.dtype)

    def logits(self, classes):
        return np.empty((classes, self.batch), self.dtype)

    def forward(self, k, h, P, out, block, phi):
        sl, b = self.layers[k], self.net.biases[k]
        if sl is not None:  # P unused: each row of the product is formed in acc
            _sparse_forward(sl.csr(self.params[k]), h, b, out, block, phi,
                            scratch("acc", (self.batch,), self.dtype))
        else:
            np.dot(self.params[k], h, out=P)
            _dense_forward(P, b, out, block, phi)

    def backward(self, k, h, u, t, sig, grads, block, phi, score):
        sl = self.layers[k]
        if sl is not None:
            _sparse_backward(sl.csr(self.params[k]), sl.csc(self.params_t[k]), sig, h, grads,
                             block, phi)
        else:
            np.dot(u, h.T, out=grads[0])  # Grads(G, gb)
            if t is not None:
                np.dot(self.params[k].T, u, out=t)
            _dense_backward(sig, grads[1], block, phi)
        return 0


def transpose_in(X):
    """X (B, N₀) as a feature-major scratch array (N₀, B)."""
    Xt = scratch("Xt", (X.shape[1], X.shape[0]), X.dtype)
    Xt[...] = X.T
    return Xt


def logits_t(net, layers, params, X):
    """Logits (B, C) of the batch X (B, N₀) (a transposed view of the feature-major result)."""
    ops = FeatureMajor(net, layers, params, None, X.shape[0], X.dtype)
    return run_forward(net, ops, transpose_in(X))[0].T


def loss_and_grads_t(net, layers, params, params_t, X, y, grad_w, grad_b, layer_done=None):
    """Mean cross-entropy of the batch X (B, N₀), labels y (B,) int64, and its gradients:
    ∂ℒ/∂W^l into ``grad_w[l]`` ((nnz,) for a sparse layer, (n_out, n_in) for a dense one), ∂ℒ/∂B^l
    into ``grad_b[l]``, ``layer_done`` as in :func:`run_backward`; returns the loss."""
    ops = FeatureMajor(net, layers, params, params_t, X.shape[0], X.dtype)
    Xt = transpose_in(X)
    logits, cache = run_forward(net, ops, Xt)
    delta = np.empty_like(logits)
    loss = _softmax_xent(logits.T, y, delta.T)
    run_backward(net, ops, Xt, cache, delta, grad_w, grad_b, layer_done=layer_done)
    return float(loss)
