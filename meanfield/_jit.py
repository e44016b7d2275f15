"""The package's numba decorators, in one place.

Every compiled function is cached on disk (``cache=True``): nothing compiles at import, and a
second process loads what the first one compiled. The options that change what a kernel computes
or how it runs are spelled here once, and each kernel names the set it uses:

* :data:`jit` -- a plain cached kernel (Python's error model: a division by zero raises);
* :data:`jit_nogil` -- one that releases the GIL, so that the threads of a training step run at
  once (the passes' products, the SGD update);
* :data:`jit_pass` -- a kernel of the passes: releases the GIL, and ``error_model="numpy"``: a
  division by zero gives inf or nan as numpy does, and the loops carry no exception checks, which
  would keep them from vectorising;
* :data:`jit_inline` -- a small elementwise helper of the passes, inlined into its callers at
  numba's IR level (``inline="always"``), so that one written helper serves every pass at no call
  cost and its branches on a ``None`` argument are pruned in each caller;
* :data:`jit_reassoc` -- a reduction that releases the GIL and lets LLVM reassociate its sums
  (``fastmath={"reassoc"}``, so that they vectorise), in an order fixed by their length alone:
  the result depends on the data, never on the thread;
* :data:`jit_parallel` -- a loop over independent points run on numba's threads (``prange``): the
  theory's kernels over many (σ_w, σ_b, q, c) points, each point's result independent of the
  others and of the thread count.

Changing a kernel's set changes what it computes (``fastmath``) or how it fails (the error model):
each kernel keeps the set it was measured and tested with.

:func:`call_activation` calls an activation's compiled kernel by its address, so that a kernel
takes φ as an integer: numba types a ``cfunc`` argument in Python at every call (measured 35-50 µs
a call, against 1-3 µs for a kernel taking arrays and numbers), which a pass paying it twice per
layer could not afford.
"""

from __future__ import annotations

import functools

import numba
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

__all__ = ["jit", "jit_nogil", "jit_pass", "jit_inline", "jit_reassoc", "jit_parallel",
           "call_activation"]

jit = functools.partial(numba.njit, cache=True)
jit_nogil = functools.partial(numba.njit, cache=True, nogil=True)
jit_pass = functools.partial(numba.njit, cache=True, nogil=True, error_model="numpy")
jit_inline = functools.partial(numba.njit, cache=True, nogil=True, error_model="numpy",
                               inline="always")
jit_reassoc = functools.partial(numba.njit, cache=True, nogil=True, fastmath={"reassoc"})
jit_parallel = functools.partial(numba.njit, cache=True, parallel=True)


@intrinsic
def call_activation(typingctx, address, x, p, k):
    """φ^(k)(x) with parameter p, from inside a kernel: the compiled kernel of an
    :class:`~meanfield.activations.Activation`, called by its address ``act.kernel.address``
    (``activations.KERNEL_SIGNATURE``, float64(float64, float64, int64): x, p and k are converted
    to those types, and the result is a float64, as when the ``cfunc`` itself is called)."""
    sig = types.float64(types.intp, types.float64, types.float64, types.int64)

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.DoubleType(), [ir.DoubleType(), ir.DoubleType(), ir.IntType(64)])
        return builder.call(builder.inttoptr(args[0], fnty.as_pointer()), args[1:])

    return sig, codegen
