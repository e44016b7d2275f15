"""A layer's elementwise work, written once, and the named structures the pass kernels take
(docs/theory.md §1).

The passes hold a batch in two layouts: batch-major (B, n) in :mod:`meanfield.nets._pass` (dense
networks: the Monte Carlo of s_cr, dense training) and feature-major (n, B) in
:mod:`meanfield.training._sparse` (pruned networks trained at the cost of their kept weights),
and a layer's product is a BLAS call, a sparse kernel or part of the packed pass. What a layer
does to each element is the same in all of them and is written here once, as numba helpers
inlined into every kernel (no call cost, the same arithmetic everywhere):

* :func:`affine` -- y = P + b, or y = prev + c (P + b) in a residual block, over a row;
* :func:`apply_phi` -- h = φ(y) by the activation's compiled kernel;
* :func:`dtanh` -- tanh' from tanh's value, (1 − h)(1 + h);
* :func:`backprop` -- ∂ℒ/∂y_prev = (Wᵀ u) ∘ φ'(y_prev), plus ∂ℒ/∂y through a residual skip.

The kernels take their arrays in named structures, :class:`Phi`, :class:`Block`, :class:`Out`,
:class:`Signal`, :class:`Grads`, and read them by field name, so that two arrays of one dtype
cannot be swapped inside a kernel, and a call passes a few structures, not a dozen arrays. At the
Python -> numba boundary a structure travels as a plain tuple in its class's field order and the
kernel names it on entry (``out = Out(*out)``, free once compiled): numba types a namedtuple
argument at every call by its class and field names (about 0.5 µs a field, measured), a plain
tuple in C, faster than as many separate arguments; and a namedtuple costs about 1 µs to build,
which the passes would pay for every layer. So the per-layer structures are built as plain tuples
where the layer loop wires them (:func:`meanfield.nets._pass.run_forward`), with the class named
beside them, and the constant ones once (:func:`block_wires`, ``tuple(phi_of(...))``).

numba's disk cache does not see a change to this module from the kernels that inline it
(nets._pass, training._sparse): after editing it, clear their caches.
"""

from __future__ import annotations

import functools
from collections import namedtuple

import numpy as np
from numba.core import types
from numba.extending import overload

from .._jit import call_activation, jit_inline
from ..activations import _tanh as _tanh_source

Phi = namedtuple("Phi", "kernel p one")
Phi.__doc__ = """The activation as the kernels see it.

``kernel``: the address of φ's compiled kernel (``act.kernel.address``, called by
:func:`meanfield._jit.call_activation`), or 0: then a forward kernel applies no φ (tanh, which the
caller applies with numpy's ``np.tanh``, or the readout) and a backward one forms tanh' from
tanh's value (:func:`dtanh`); ``p``: φ's parameter (float64); ``one``: 1 in the arrays' dtype."""

Block = namedtuple("Block", "residual c first")
Block.__doc__ = """What a layer is: ``residual``, a residual block, y = prev + c (W h + b) (else
y = W h + b); ``c`` its branch scale (the type of ``c`` is part of the arithmetic: a Python float
makes c (P + b) in float64 before the rounding to the arrays' dtype); ``first``, the first
layer, below which nothing is propagated."""

Out = namedtuple("Out", "y prev h")
Out.__doc__ = """A layer's forward outputs: ``y`` its pre-activations (written; may hold its
product on entry), ``prev`` the previous layer's (read by a residual block; may be ``y`` itself,
updated in place), ``h`` = φ(y) (written by the kernel unless ``Phi.kernel`` is 0)."""

Signal = namedtuple("Signal", "d u t src")
Signal.__doc__ = """A layer's backward signals: ``d`` = ∂ℒ/∂y of the layer, ``u`` = c d the
gradient of its branch (``d`` itself outside scaled residual blocks), ``t`` on entry Wᵀ u (or
u W, batch-major) and on exit ∂ℒ/∂y_prev, ``src`` what φ'(y_prev) is formed from: y_prev, or
h_prev = tanh(y_prev) when ``Phi.kernel`` is 0."""

Grads = namedtuple("Grads", "G gb")
Grads.__doc__ = """A layer's gradients: ``G`` of its weights (dense (n_out, n_in) or its kept
ones (nnz,)), ``gb`` of its biases (n_out,), or an empty array when not wanted."""


def is_tanh(act):
    """Whether ``act`` is the built-in tanh (applied by numpy's ``np.tanh``, φ' from φ)."""
    return getattr(act, "_source", None) is _tanh_source


def phi_of(act, dtype):
    """The :class:`Phi` of ``act`` for arrays of ``dtype`` (kernel 0 for tanh)."""
    return Phi(0 if is_tanh(act) else act.kernel.address, float(act.param), np.dtype(dtype).type(1))


def no_phi(dtype):
    """The :class:`Phi` of a layer with no activation (the readout's forward)."""
    return Phi(0, 0.0, np.dtype(dtype).type(1))


def blocks(net):
    """The :class:`Block` of each of ``net``'s layers, W¹ … W^L then the readout: residual blocks
    (0 < k < L, unless an FFNN) with branch scale ``net.alpha`` (a Python float), the readout with
    scale 1.0 and no skip. A tuple, shared by the networks of one shape (made once)."""
    return _blocks(net.depth, net.arch != "ffnn", net.alpha)


def block_wires(net):
    """:func:`blocks` as plain tuples, as the kernels take them (made once)."""
    return _block_wires(net.depth, net.arch != "ffnn", net.alpha)


@functools.lru_cache(maxsize=64)
def _blocks(L, residual, c):
    return tuple([Block(residual and 0 < k, c, k == 0) for k in range(L)]
                 + [Block(False, 1.0, L == 0)])


@functools.lru_cache(maxsize=64)
def _block_wires(L, residual, c):
    return tuple(tuple(b) for b in _blocks(L, residual, c))


# ------------------------------------------------------------------------------------------------
# Elementwise helpers (inlined into the kernels)
# ------------------------------------------------------------------------------------------------

def biased(x, b, t):
    """x + b[t] for a bias vector b, x + b for a scalar, x itself for None (compiled by numba
    only): lets :func:`affine` serve both layouts, and the packed pass, whose bias is already in
    its product."""
    raise NotImplementedError("compiled by numba only")


@overload(biased, inline="always")
def _biased(x, b, t):
    if isinstance(b, types.Array):
        return lambda x, b, t: x + b[t]
    if isinstance(b, types.NoneType):
        return lambda x, b, t: x
    return lambda x, b, t: x + b


def bits_of(a):
    """``a`` (float32 or float64, contiguous) viewed as integers of its width (compiled by numba
    only): for floats >= 0 the integer order is the float order, and an integer maximum
    vectorises where a float one does not."""
    raise NotImplementedError("compiled by numba only")


@overload(bits_of, inline="always")
def _bits_of(a):
    it = np.int32 if a.dtype == types.float32 else np.int64
    return lambda a: a.view(it)


@jit_inline
def dtanh(h, one):
    """tanh'(y) = (1 − h)(1 + h) from h = tanh(y) (no cancellation near |h| = 1, unlike 1 − h²)."""
    return (one - h) * (one + h)


@jit_inline
def affine(P, b, prev, y, block):
    """One row of a layer's pre-activations from its product P: y = P + b, or
    y = prev + c (P + b) if ``block.residual``. P, prev, y: 1-D of one length (P or prev may be y
    itself); b: the row's biases, a vector of that length (batch-major: one per feature), a
    scalar (feature-major: the row's feature) or None (P holds them already)."""
    if block.residual:
        c = block.c
        for t in range(y.size):
            y[t] = prev[t] + c * biased(P[t], b, t)
    else:
        for t in range(y.size):
            y[t] = biased(P[t], b, t)


@jit_inline
def apply_phi(y, h, phi):
    """h = φ(y) elementwise by the activation's kernel (``phi.kernel`` not 0); 1-D arrays."""
    for e in range(y.size):
        h[e] = call_activation(phi.kernel, y[e], phi.p, 0)


@jit_inline
def backprop(t, d, src, phi, residual):
    """t ← t ∘ φ'(y_prev) (+ d if ``residual``): ∂ℒ/∂y_prev from t = Wᵀ u (:class:`Signal`), over
    1-D arrays of one length (d is read only if ``residual``). φ' = (1 − h)(1 + h) from
    src = h_prev if ``phi.kernel`` is 0 (tanh), else the kernel's φ' at src = y_prev, in float64
    (its result type) before the rounding to t's dtype."""
    one = phi.one
    if phi.kernel == 0:
        if residual:
            for e in range(t.size):
                t[e] = d[e] + t[e] * dtanh(src[e], one)
        else:
            for e in range(t.size):
                t[e] = t[e] * dtanh(src[e], one)
    else:
        for e in range(t.size):
            v = t[e] * call_activation(phi.kernel, src[e], phi.p, 1)
            t[e] = d[e] + v if residual else v
