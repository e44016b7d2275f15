"""The one BLAS-thread limiter: the Monte Carlo's trials and the predictions' draws multiply small
matrices (≤ a few MFLOP), where OpenBLAS threads cost more than they give, and catastrophically
more (100×) when the cores are busy; parallelism comes from running trials side by side instead."""

from __future__ import annotations

import functools

from threadpoolctl import threadpool_limits


def one_blas_thread():
    """A context manager under which BLAS runs on one thread (restored on exit)."""
    return threadpool_limits(limits=1, user_api="blas")


def with_one_blas_thread(fn):
    """``fn`` run under :func:`one_blas_thread`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with one_blas_thread():
            return fn(*args, **kwargs)

    return wrapper
