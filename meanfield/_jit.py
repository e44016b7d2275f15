"""The package's numba decorators, in one place.

Every compiled function is cached on disk (``cache=True``): nothing compiles at import, and a
second process loads what the first one compiled. The options that change what a kernel computes
or how it runs are spelled here once, and each kernel names the set it uses:

* :data:`jit` -- a plain cached kernel (Python's error model: a division by zero raises);
* :data:`jit_nogil` -- one that releases the GIL, so that the threads of a training step run at
  once (the passes' products, the SGD update);
* :data:`jit_pass` -- a kernel of the passes: releases the GIL, and ``error_model="numpy"``: a division by
  zero gives inf or nan as numpy does, and the loops carry no exception checks, which would keep
  them from vectorising;
* :data:`jit_inline` -- a small elementwise helper of the passes, inlined into its callers at numba's
  IR level (``inline="always"``), so that one written helper serves every pass at no call cost
  and its branches on a ``None`` argument are pruned in each caller;
* :data:`jit_reassoc` -- a reduction that releases the GIL and lets LLVM reassociate its sums
  (``fastmath={"reassoc"}``, so that they vectorise), in an order fixed by their length alone:
  the result depends on the data, never on the thread.

Changing a kernel's set changes what it computes (``fastmath``) or how it fails (the error model):
each kernel keeps the set it was measured and tested with.
"""

from __future__ import annotations

import functools

import numba

__all__ = ["jit", "jit_nogil", "jit_pass", "jit_inline", "jit_reassoc"]

jit = functools.partial(numba.njit, cache=True)
jit_nogil = functools.partial(numba.njit, cache=True, nogil=True)
jit_pass = functools.partial(numba.njit, cache=True, nogil=True, error_model="numpy")
jit_inline = functools.partial(numba.njit, cache=True, nogil=True, error_model="numpy",
                               inline="always")
jit_reassoc = functools.partial(numba.njit, cache=True, nogil=True, fastmath={"reassoc"})
