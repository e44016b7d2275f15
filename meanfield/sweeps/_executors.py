"""Run tasks serially, on any ``concurrent.futures.Executor``, or on a ``dask.distributed.Client``.

A Dask client is used through ``Client.get_executor()``, which returns a
``concurrent.futures.Executor`` whose futures are real ``concurrent.futures.Future`` objects: one
code path (submit, ``as_completed``, cancel) serves every executor.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import numbers
import sys

from .._validate import InputError, InputTypeError


def _is_dask_client(obj):
    # a Client exists only once distributed is imported: checking sys.modules imports nothing
    distributed = sys.modules.get("distributed")
    return distributed is not None and isinstance(obj, distributed.Client)


def as_executor(executor):
    """``executor`` as a ``concurrent.futures.Executor`` (a Dask client's ``get_executor``), or
    None for serial; a TypeError for anything else."""
    if executor is None or isinstance(executor, concurrent.futures.Executor):
        return executor
    if _is_dask_client(executor):
        # pure=False: every task is run, never deduplicated by a hash of its arguments
        return executor.get_executor(pure=False)
    raise InputTypeError(f"`executor` == {executor!r}: must be None, a concurrent.futures.Executor "
                    f"or a dask.distributed.Client")


def run_tasks(fn, tasks, executor=None):
    """Yield ``(task, fn(*task))`` as each task finishes (in completion order).

    ``executor=None`` runs in this process, in order. Results are identical whatever the executor:
    every task carries its own seed. Tasks not yet finished are cancelled when the caller stops
    early (an error, an interrupt, or a generator closed).
    """
    executor = as_executor(executor)
    if executor is None:
        for task in tasks:
            yield task, fn(*task)
        return
    futures = {}
    try:
        # submitted inside the try: an interrupt while submitting a long list of tasks cancels
        # those already submitted (a process pool would otherwise run them all before exiting)
        for task in tasks:
            futures[executor.submit(fn, *task)] = task
        for fut in concurrent.futures.as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        for fut in futures:
            fut.cancel()


class _DaskExecutor(concurrent.futures.Executor):
    """The ``concurrent.futures`` face of a Dask client that this object owns: ``shutdown`` closes
    the client's connection (never the scheduler, which other clients may share)."""

    def __init__(self, client):
        self.client = client
        self._executor = client.get_executor(pure=False)

    def submit(self, fn, /, *args, **kwargs):
        return self._executor.submit(fn, *args, **kwargs)

    def shutdown(self, wait=True, *, cancel_futures=False):
        try:
            self._executor.shutdown(wait=wait and not cancel_futures)
        finally:
            self.client.close()

    def __repr__(self):
        return f"<dask executor of {self.client!r}>"


def make_executor(workers=None, scheduler=None):
    """The executor the command lines ask for: a process pool of ``workers``, the executor of a
    Dask client connected to ``scheduler``, or None (serial, also for ``workers=1``).

    Whatever it is, the caller releases it with ``shutdown()`` (or a ``with`` block), or uses
    :func:`open_executor`, which does.
    """
    if workers is not None and scheduler is not None:
        raise InputError("give either `--workers` or `--scheduler`, not both")
    if scheduler is not None:
        try:
            from distributed import Client
        except ImportError:
            raise InputError("`--scheduler` needs dask.distributed: pip install "
                             "'meanfield-toolkit[dask]'") from None
        return _DaskExecutor(Client(scheduler))
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1:
            raise InputError(f"`--workers` == {workers!r}: must be an integer >= 1")
        if workers > 1:
            return concurrent.futures.ProcessPoolExecutor(workers)
    return None


@contextlib.contextmanager
def open_executor(workers=None, scheduler=None):
    """:func:`make_executor` as a context: yields the executor (or None) and shuts it down on
    exit, cancelling what has not started when the block ends with an error."""
    executor = make_executor(workers, scheduler)
    if executor is None:
        yield None
        return
    failed = False
    try:
        yield executor
    except BaseException:
        failed = True
        raise
    finally:
        executor.shutdown(wait=not failed, cancel_futures=failed)
