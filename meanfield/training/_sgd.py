"""One SGD-with-momentum step on a mini-batch, data-parallel over the machine's cores.

A mini-batch is always cut into the same ``shards`` (about 64 examples each; the number depends
on ``batch`` alone, never on the machine). Each shard's loss gradient is formed into its own
buffer, the shards of a step spread over ``threads`` threads (numpy's BLAS products and the numba
layer kernels release the GIL), and the update sums the shard gradients in shard order. The
arithmetic is therefore the same whatever the number of threads: on a given machine and BLAS, a
run is bit-identical on one thread and on eight. The caller runs BLAS on one thread whenever there
is more than one shard (``train`` does): on products of 64 × width² OpenBLAS's own threads cost
more than they bring (and far more on a busy machine), and a BLAS thread count that followed
``threads`` would change the rounding.
"""

from __future__ import annotations

import os
import threading
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from .._jit import jit_nogil
from .._validate import InputError, InputTypeError, check_int
from ..nets._layer import Grads
from ..nets._pass import _forward, _loss_and_grads
from ..nets.network import check_masks
from ._sparse import (
    SPARSE_MAX_DENSITY,
    Packed,
    PackedLayers,
    SparseLayer,
    logits_t,
    loss_and_grads_t,
)

#: examples per shard (the shard count is ``min(MAX_SHARDS, max(1, batch // SHARD_ROWS))``)
SHARD_ROWS = 64
#: at most this many shards (each holds a gradient the size of the network; a larger batch makes
#: larger shards, not more of them)
MAX_SHARDS = 16
#: floating-point operations per step below which one thread is used (threads cost ~50 µs a step)
MIN_PARALLEL_FLOPS = 2e7


#: elements per block of the update: a block's summed gradient stays in the L1 cache
UPDATE_BLOCK = 1024

Hyper = namedtuple("Hyper", "lr momentum weight_decay")
Hyper.__doc__ = """The step's hyper-parameters, in the dtype of the network (the update's arithmetic)."""

Momenta = namedtuple("Momenta", "w b")
Momenta.__doc__ = """The velocities of a packed network's weights (nnz,) and biases."""


@jit_nogil
def _sum_shards(g, G, n, a, m, share):
    """g[:m] = Σ_s share[s] G[s·n + a : s·n + a + m], in shard order: block a:a + m of the shards'
    gradients (G the flat (S·n,) view of S gradients of n elements). Contiguous 1-D slices only, so
    that every loop vectorises (a loop over the shards inside the loop over elements does not)."""
    c = share[0]
    G0 = G[a:a + m]
    for j in range(m):
        g[j] = c * G0[j]
    for s in range(1, share.size):
        c = share[s]
        Gs = G[s * n + a:s * n + a + m]
        for j in range(m):
            g[j] += c * Gs[j]


@jit_nogil
def _step_block(w, v, g, mask, hyper, masked, zero):
    """v ← μ v + g + λ w; w ← w − lr v over a block (w, v, and mask if ``masked``, of one length;
    g at least as long); with a mask, pruned entries of v and w stay ``zero``."""
    lr, momentum, weight_decay = Hyper(*hyper)
    m = w.size
    if masked:
        for j in range(m):
            vj = momentum * v[j] + (g[j] + weight_decay * w[j])
            wj = w[j] - lr * vj
            keep = mask[j] != 0
            v[j] = vj if keep else zero
            w[j] = wj if keep else zero
    else:
        for j in range(m):
            vj = momentum * v[j] + (g[j] + weight_decay * w[j])
            v[j] = vj
            w[j] = w[j] - lr * vj


@jit_nogil
def _sgd_update(w, v, G, share, mask, gain, hyper, masked):
    """In place, elementwise: g = Σ_s share[s] G[s] (in shard order; share[s] = the shard's
    fraction of the batch, G[s] its mean gradient), times ``gain`` where it has one entry per
    element (n,) (a layer trained under a fixed multiplier: see :class:`DataParallelSGD`; a
    1-element ``gain`` is ignored); v ← μ v + g + λ w; w ← w − lr v (``hyper``, a
    :class:`Hyper`); with a mask (``masked``), pruned entries of v and w stay 0. w, v (n,),
    G (S, n) C-contiguous. Worked through in blocks of ``UPDATE_BLOCK`` elements, whose summed
    gradient stays in the L1 cache (the same arithmetic, element by element, as one pass)."""
    hyper = Hyper(*hyper)
    n = w.size
    flat = G.reshape(-1)
    g = np.empty(UPDATE_BLOCK, w.dtype)
    zero = np.zeros(1, w.dtype)[0]
    scaled = gain.size == n and n > 1
    for a in range(0, n, UPDATE_BLOCK):
        b = min(n, a + UPDATE_BLOCK)
        _sum_shards(g, flat, n, a, b - a, share)
        if scaled:
            ga = gain[a:b]
            for j in range(b - a):
                g[j] *= ga[j]
        _step_block(w[a:b], v[a:b], g, mask[a:b] if masked else mask, hyper, masked, zero)


@jit_nogil
def _packed_update(net, vel, grads, share, gain, hyper, perm):
    """The update of every layer of a packed sparse network (``net`` a
    :class:`meanfield.training._sparse.Packed`, ``vel`` its :class:`Momenta`, ``grads`` the
    shards' gradients (S, nnz) and (S, Σ n_out), ``gain`` the kept weights' gains (nnz,) or a
    1-element array for none), weights then biases, as :func:`_sgd_update` does it layer by
    layer (the same arithmetic element by element); then its kept values in column order,
    ``values[perm]``."""
    net, vel, grads = Packed(*net), Momenta(*vel), Grads(*grads)
    nomask = np.ones(1, np.uint8)
    nogain = np.ones(1, net.values.dtype)
    _sgd_update(net.values, vel.w, grads.G, share, nomask, gain, hyper, False)
    _sgd_update(net.biases, vel.b, grads.gb, share, nomask, nogain, hyper, False)
    values, values_t = net.values, net.values_t
    for q in range(perm.size):
        values_t[q] = values[perm[q]]


def shard_count(batch):
    """The number of shards a mini-batch of ``batch`` examples is cut into: one per 64 examples,
    at least 1 and at most ``MAX_SHARDS``."""
    return min(MAX_SHARDS, max(1, batch // SHARD_ROWS))


def check_sparse(sparse):
    """``sparse`` as "auto", True or False: the check of ``train(sparse=...)`` at the public edge
    (``InputError`` for another string, ``InputTypeError`` for another type)."""
    if isinstance(sparse, str):
        if sparse != "auto":
            raise InputError(f"`sparse` == {sparse!r}: must be 'auto', True or False")
    elif not isinstance(sparse, (bool, np.bool_)):
        raise InputTypeError(f"`sparse` == {sparse!r} ({type(sparse).__name__}): must be "
                             f"'auto', True or False")
    return sparse if isinstance(sparse, str) else bool(sparse)


def available_cores():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class DataParallelSGD:
    """SGD with momentum (and weight decay) on ``net``'s weights and biases, in place.

    Parameters
    ----------
    net : Network
    masks : list of arrays or None
        Pruning masks: pruned weights (and their momentum) stay exactly 0.
    batch : int
        The mini-batch size (fixes the shards). The update keeps one gradient per shard: memory
        ``shard_count(batch)`` (≤ 16) times the network's size.
    lr, momentum, weight_decay : float
    threads : int or None
        Threads to use, at most one per shard; None: one per available core, or one thread when
        a step is too small to gain from more. The results do not depend on it.
    sparse : {"auto", True, False}
        With masks: True trains every layer in compressed form (:mod:`meanfield.training._sparse`: its
        kept weights only, in ``params``; :meth:`sync` writes them back into ``net.weights``),
        False every layer dense with its mask, "auto" the layers whose kept fraction is at most
        ``SPARSE_MAX_DENSITY`` sparse. Without masks every layer is dense.
    gains : list of arrays (n_out,) or None
        Per layer, a factor on the gradient of each row's weights (biases are not scaled). SBP-SR
        as the paper writes it, y = ρ ∘ (δ ∘ W̃) x + b with ρ a fixed multiplier and W̃ trained,
        is this with gains ρ²: for the effective weights W = ρ W̃, SGD with momentum on W̃ is
        u ← μ u + ρ² ∂ℒ/∂W + λ W, W ← W − lr u (u = ρ × W̃'s velocity; weight decay λ W̃ on W̃
        is λ W on W). None: no gains (the update as without this argument, bit for bit).

    If a step raises (a floating-point error under ``np.errstate(...="raise")``, say), the layers
    that every shard had passed are updated and the others not: the network is then in no
    defined state.
    """

    def __init__(self, net, masks, batch, lr, momentum, weight_decay, threads=None,
                 sparse="auto", gains=None):
        for name, arrays in (("weights", net.weights), ("biases", net.biases)):
            for k, a in enumerate(arrays):
                if not a.flags.c_contiguous:  # an internal invariant (train draws its networks)
                    raise AssertionError(f"`net.{name}[{k}]` must be a C-contiguous array "
                                     f"(np.ascontiguousarray)")
        batch = check_int("batch", batch, low=1)
        if threads is not None:
            threads = check_int("threads", threads, low=1)
        sparse = check_sparse(sparse)
        masks = check_masks(net, masks)
        self.batch = batch
        self.net = net
        dtype = net.dtype
        self.shards = S = shard_count(batch)
        # a pruned layer runs sparse when forced, or under "auto" when kept sparse enough to gain
        self.layers = [None] * len(net.weights)
        if masks is not None and sparse is not False:
            for k, m in enumerate(masks):
                sl = SparseLayer(m)
                if sparse is True or sl.density <= SPARSE_MAX_DENSITY:
                    self.layers[k] = sl
        self.sparse = any(sl is not None for sl in self.layers)
        # the trained weights: a sparse layer's kept values (pruned ones are not stored), else
        # the network's own dense arrays, updated in place
        self.params = [w if sl is None else sl.gather(w) for w, sl in zip(net.weights, self.layers)]
        # every layer sparse: the layers packed into flat arrays, a step one compiled call per
        # shard (``params`` and ``params_t`` are views of them, and the trained biases a copy of
        # the network's, written back by ``sync``)
        self.packed = None
        if all(sl is not None for sl in self.layers):
            self.packed = pk = PackedLayers(net, self.layers, self.params, dtype)
            self.params = [pk.params(k) for k in range(len(self.layers))]
            self.params_t = [pk.params_t(k) for k in range(len(self.layers))]
            self.grad_w = np.empty((S, pk.nnz), dtype)
            self.grad_b = np.empty((S, pk.biases.size), dtype)
            self.vel_w = np.zeros(pk.nnz, dtype)
            self.vel_b = np.zeros(pk.biases.size, dtype)
            self._packed_vel = tuple(Momenta(self.vel_w, self.vel_b))  # as the kernels take them
            self._packed_grads = tuple(Grads(self.grad_w, self.grad_b))
            self.shard_rows = -(-batch // S)  # at most, shards being cut evenly
            self._biases_synced = True
        else:
            # a sparse layer's values in column order too, for the input gradient (refreshed
            # when the layer is updated)
            self.params_t = [None if sl is None else sl.by_column(p)
                             for sl, p in zip(self.layers, self.params)]
            self.grad_w = [np.empty((S, *w.shape), dtype) for w in self.params]
            self.grad_b = [np.empty((S, *b.shape), dtype) for b in net.biases]
            self.vel_w = [np.zeros(w.size, dtype) for w in self.params]
            self.vel_b = [np.zeros_like(b) for b in net.biases]
        # each trained weight's gain (see ``gains``), laid out as the layer's trained values;
        # a 1-element array where there is none
        self._nogain = np.ones(1, dtype)
        self.gains = [self._nogain] * len(self.layers)
        if gains is not None:
            for k, (w, sl, rho2) in enumerate(zip(net.weights, self.layers, gains)):
                full = np.broadcast_to(np.asarray(rho2, dtype)[:, None], w.shape)
                self.gains[k] = (np.ascontiguousarray(full).reshape(-1) if sl is None
                                 else sl.gather(full).astype(dtype))
        self._packed_gain = (self._nogain if gains is None or self.packed is None
                             else np.concatenate(self.gains))
        # a dense layer of a pruned network is masked in its update
        self.masked = [masks is not None and sl is None for sl in self.layers]
        self.masks = [m.astype(np.uint8).ravel() if masked else np.ones(1, np.uint8)
                      for m, masked in zip(masks or net.weights, self.masked)]
        #: kept weights, and floating-point operations of the layer products per example of a
        #: step (2 per multiply-add: forward, weight gradient and, above the first layer, input
        #: gradient), counting what is computed: a dense-masked layer costs its full size
        self.kept_weights = (sum(int(np.count_nonzero(m)) for m in masks) if masks is not None
                             else net.n_weights)
        self.flops_per_example = sum((4 if k == 0 else 6) * p.size
                                     for k, p in enumerate(self.params))
        self.hyper = Hyper(dtype.type(lr), dtype.type(momentum), dtype.type(weight_decay))
        self._hyper = tuple(self.hyper)  # as the kernels take it (meanfield.nets._layer)
        if threads is None:
            flops = batch * self.flops_per_example
            threads = available_cores() if flops >= MIN_PARALLEL_FLOPS else 1
        self.threads = min(threads, S)
        self.pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        if self.packed is not None:  # a scratch buffer per thread
            size = self.packed.work_size(self.shard_rows)
            self.work = [np.empty(size, dtype) for _ in range(self.threads)]
        self._cuts = {}
        self._lock = threading.Lock()

    def sync(self):
        """Write the sparse layers' kept values into ``net.weights`` (pruned entries 0), and the
        trained biases of a packed network into ``net.biases``; the dense layers are the
        network's own arrays already."""
        for w, sl, p in zip(self.net.weights, self.layers, self.params):
            if sl is not None:
                sl.scatter(p, w)
        self._sync_biases()

    def _sync_biases(self):
        with self._lock:  # logits may be called on several threads at once
            if self.packed is not None and not self._biases_synced:
                for k, b in enumerate(self.net.biases):
                    b[...] = self.packed.bias(k)
                self._biases_synced = True

    def logits(self, X):
        """The network's logits (B, C) for the inputs X (B, N₀), with the weights as trained so
        far (on the calling thread)."""
        if self.sparse:
            self._sync_biases()
            return logits_t(self.net, self.layers, self.params, X)
        return _forward(self.net, self.params, X)[0]

    def close(self, cancel=False):
        """Stop the threads (after the calls under way; ``cancel``: drop the queued ones)."""
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=cancel)
            self.pool = None

    def __enter__(self):
        return self

    def __exit__(self, kind, *exc):
        self.close(cancel=kind is not None)

    def map(self, fn, items):
        """``[fn(item) for item in items]``, the calls spread over the threads, under the
        caller's numpy error state (``np.errstate`` does not reach other threads by itself).
        Returns when every call has ended; the first exception, if any, is raised then."""
        if self.pool is None:
            return [fn(it) for it in items]
        err = np.geterr()

        def call(it):
            with np.errstate(**err):
                return fn(it)

        futures = [self.pool.submit(call, it) for it in items]
        wait(futures)
        return [f.result() for f in futures]

    def step(self, X, y):
        """One step on the mini-batch (X, y): X (n, features) in the network's dtype, y (n,)
        int64, 1 ≤ n ≤ batch. The shards' gradients are formed on the threads; a layer is updated
        as soon as every shard has passed it in backpropagation (by the thread that passes it
        last, while its gradients are still in cache), the rest of the backward pass going on."""
        if not 1 <= len(y) <= self.batch or X.shape[0] != len(y):  # an internal invariant
            raise AssertionError(f"a step takes 1 to {self.batch} examples (X rows = labels); got "
                             f"{X.shape[0]} rows and {len(y)} labels")
        net, S = self.net, self.shards
        cuts, share = self._cuts.get(len(y), (None, None))
        if cuts is None:
            cuts = np.linspace(0, len(y), S + 1).round().astype(np.int64)
            share = ((cuts[1:] - cuts[:-1]) / len(y)).astype(net.dtype)
            self._cuts[len(y)] = cuts, share
        if self.packed is not None:
            self._packed_step(X, y, cuts, share)
            return
        pending = [S] * len(net.weights)  # shards yet to pass each layer
        lock = threading.Lock()

        def layer_done(k):
            with lock:
                pending[k] -= 1
                last = pending[k] == 0
            if last:  # every shard's gradient of layer k is written and W^k no longer read
                _sgd_update(self.params[k].reshape(-1), self.vel_w[k],
                            self.grad_w[k].reshape(S, -1), share, self.masks[k], self.gains[k],
                            self._hyper, self.masked[k])
                _sgd_update(net.biases[k], self.vel_b[k], self.grad_b[k], share, self.masks[k],
                            self._nogain, self._hyper, False)
                if self.layers[k] is not None:
                    self.layers[k].by_column(self.params[k], out=self.params_t[k])

        def shards(t):
            for s in range(t, S, self.threads):
                a, b = cuts[s], cuts[s + 1]
                if b > a:
                    gw, gb = [g[s] for g in self.grad_w], [g[s] for g in self.grad_b]
                    if self.sparse:
                        loss_and_grads_t(net, self.layers, self.params, self.params_t, X[a:b],
                                         y[a:b], gw, gb, layer_done)
                    else:
                        _loss_and_grads(net, self.params, X[a:b], y[a:b], gw, gb,
                                        layer_done=layer_done)
                else:  # an empty shard (a last batch smaller than the shard count)
                    for k in range(len(net.weights) - 1, -1, -1):
                        self.grad_w[k][s] = 0
                        self.grad_b[k][s] = 0
                        layer_done(k)

        self.map(shards, range(self.threads))

    def _packed_step(self, X, y, cuts, share):
        """A step of a packed network: each shard's loss gradients in one compiled call (on the
        threads), then every layer's update in one more."""
        pk, S = self.packed, self.shards
        X = np.ascontiguousarray(X)
        y = np.ascontiguousarray(y, np.int64)

        def shards(t):
            for s in range(t, S, self.threads):
                a, b = cuts[s], cuts[s + 1]
                if b > a:
                    pk.grads(X, y, a, b, self.work[t], self.grad_w[s], self.grad_b[s])
                else:  # an empty shard (a last batch smaller than the shard count)
                    self.grad_w[s] = 0
                    self.grad_b[s] = 0

        self.map(shards, range(self.threads))
        _packed_update(pk.wire, self._packed_vel, self._packed_grads, share, self._packed_gain,
                       self._hyper, pk.perm)
        self._biases_synced = False
