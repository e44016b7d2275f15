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
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
from numba import njit

#: examples per shard (the shard count is ``min(MAX_SHARDS, max(1, batch // SHARD_ROWS))``)
SHARD_ROWS = 64
#: at most this many shards (each holds a gradient the size of the network; a larger batch makes
#: larger shards, not more of them)
MAX_SHARDS = 16
#: floating-point operations per step below which one thread is used (threads cost ~50 µs a step)
MIN_PARALLEL_FLOPS = 2e7


#: elements per block of the update: a block's summed gradient stays in the L1 cache
UPDATE_BLOCK = 1024


@njit(cache=True, nogil=True)
def _update_block(w, v, g, G, n, a, share, mask, lr, momentum, weight_decay, masked, zero):
    """The update of the block w = w_all[a:a + m] (and v, mask alike); G is the flat (S·n,)
    view of the shard gradients, g an (≥ m,) buffer. Contiguous 1-D slices only, so that every
    loop vectorises (a loop over the shards inside the loop over elements does not)."""
    m = w.size
    c = share[0]
    G0 = G[a:a + m]
    for j in range(m):
        g[j] = c * G0[j]
    for s in range(1, share.size):
        c = share[s]
        Gs = G[s * n + a:s * n + a + m]
        for j in range(m):
            g[j] += c * Gs[j]
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


@njit(cache=True, nogil=True)
def _sgd_update(w, v, G, share, mask, lr, momentum, weight_decay, masked):
    """In place, elementwise: g = Σ_s share[s] G[s] (in shard order; share[s] = the shard's
    fraction of the batch, G[s] its mean gradient); v ← μ v + g + λ w; w ← w − lr v; with a mask,
    pruned entries of v and w stay 0. w, v (n,), G (S, n) C-contiguous. Worked through in blocks
    of ``UPDATE_BLOCK`` elements (the same arithmetic, element by element, as one pass)."""
    n = w.size
    flat = G.reshape(-1)
    g = np.empty(UPDATE_BLOCK, w.dtype)
    zero = np.zeros(1, w.dtype)[0]
    for a in range(0, n, UPDATE_BLOCK):
        b = min(n, a + UPDATE_BLOCK)
        _update_block(w[a:b], v[a:b], g, flat, n, a, share, mask[a:b] if masked else mask,
                      lr, momentum, weight_decay, masked, zero)


def shard_count(batch):
    """The number of shards a mini-batch of ``batch`` examples is cut into: one per 64 examples,
    at least 1 and at most ``MAX_SHARDS``."""
    return min(MAX_SHARDS, max(1, batch // SHARD_ROWS))


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

    If a step raises (a floating-point error under ``np.errstate(...="raise")``, say), the layers
    that every shard had passed are updated and the others not: the network is then in no
    defined state.
    """

    def __init__(self, net, masks, batch, lr, momentum, weight_decay, threads=None):
        from ._validate import check_int
        from .networks import check_masks

        for name, arrays in (("weights", net.weights), ("biases", net.biases)):
            for k, a in enumerate(arrays):
                if not a.flags.c_contiguous:
                    raise ValueError(f"`net.{name}[{k}]` must be a C-contiguous array "
                                     f"(np.ascontiguousarray)")
        batch = check_int("batch", batch, low=1)
        if threads is not None:
            threads = check_int("threads", threads, low=1)
        masks = check_masks(net, masks)
        self.batch = batch
        self.net = net
        dtype = net.dtype
        self.shards = shard_count(batch)
        S = self.shards
        self.grad_w = [np.empty((S, *w.shape), dtype) for w in net.weights]
        self.grad_b = [np.empty((S, *b.shape), dtype) for b in net.biases]
        self.vel_w = [np.zeros(w.size, dtype) for w in net.weights]
        self.vel_b = [np.zeros_like(b) for b in net.biases]
        self.masks = ([m.astype(np.uint8).ravel() for m in masks] if masks is not None
                      else [np.ones(1, np.uint8)] * len(net.weights))
        self.masked = masks is not None
        self.hyper = (dtype.type(lr), dtype.type(momentum), dtype.type(weight_decay))
        if threads is None:
            flops = 6.0 * batch * net.n_weights
            threads = available_cores() if flops >= MIN_PARALLEL_FLOPS else 1
        self.threads = min(threads, S)
        self.pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None

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
        from .networks import _loss_and_grads

        if not 1 <= len(y) <= self.batch or X.shape[0] != len(y):
            raise ValueError(f"a step takes 1 to {self.batch} examples (X rows = labels); got "
                             f"{X.shape[0]} rows and {len(y)} labels")
        net, S = self.net, self.shards
        cuts = np.linspace(0, len(y), S + 1).round().astype(np.int64)
        share = ((cuts[1:] - cuts[:-1]) / len(y)).astype(net.dtype)
        lr, mu, wd = self.hyper
        pending = [S] * len(net.weights)  # shards yet to pass each layer
        lock = threading.Lock()

        def layer_done(k):
            with lock:
                pending[k] -= 1
                last = pending[k] == 0
            if last:  # every shard's gradient of layer k is written and W^k no longer read
                _sgd_update(net.weights[k].reshape(-1), self.vel_w[k],
                            self.grad_w[k].reshape(S, -1), share, self.masks[k], lr, mu, wd,
                            self.masked)
                _sgd_update(net.biases[k], self.vel_b[k], self.grad_b[k], share, self.masks[k],
                            lr, mu, wd, False)

        def shards(t):
            for s in range(t, S, self.threads):
                a, b = cuts[s], cuts[s + 1]
                if b > a:
                    _loss_and_grads(net, net.weights, X[a:b], y[a:b],
                                    [g[s] for g in self.grad_w], [g[s] for g in self.grad_b],
                                    layer_done=layer_done)
                else:  # an empty shard (a last batch smaller than the shard count)
                    for k in range(len(net.weights) - 1, -1, -1):
                        self.grad_w[k][s] = 0
                        self.grad_b[k][s] = 0
                        layer_done(k)

        self.map(shards, range(self.threads))
