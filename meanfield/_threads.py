"""The one home of BLAS-thread limits. The Monte Carlo's trials and the predictions' draws
multiply small matrices (≤ a few MFLOP), where OpenBLAS threads cost more than they give, and
catastrophically more (100×) when the cores are busy; parallelism comes from running trials side
by side instead. Training limits BLAS to one thread per stepping thread."""

from __future__ import annotations

import functools

from threadpoolctl import threadpool_limits


def blas_threads(limit):
    """A context manager under which BLAS runs on at most ``limit`` threads (None: its own
    default), restored on exit. Training takes one thread per stepping thread
    (meanfield/training/trainer.py says when)."""
    return threadpool_limits(limits=limit, user_api="blas")


def one_blas_thread():
    """A context manager under which BLAS runs on one thread (restored on exit)."""
    return blas_threads(1)


def with_one_blas_thread(fn):
    """``fn`` run under :func:`one_blas_thread`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with one_blas_thread():
            return fn(*args, **kwargs)

    return wrapper
