"""Run tasks serially, on any ``concurrent.futures.Executor``, or on a ``dask.distributed.Client``,
by interface: anything with ``submit(fn, *args)`` returning futures with ``result()``."""

from __future__ import annotations

import concurrent.futures


def _is_dask(executor):
    return type(executor).__module__.split(".")[0] == "distributed"


def run_tasks(fn, tasks, executor=None):
    """Yield ``(task, fn(*task))`` as each task finishes (in completion order).

    ``executor=None`` runs in this process, in order. Results are identical whatever the executor:
    every task carries its own seed.
    """
    if executor is None:
        for task in tasks:
            yield task, fn(*task)
        return
    if not hasattr(executor, "submit"):
        raise TypeError(f"`executor` == {executor!r}: must be None, a concurrent.futures.Executor "
                        f"or a dask.distributed.Client (anything with submit())")
    if _is_dask(executor):
        from distributed import as_completed

        futures = {executor.submit(fn, *task, pure=False): task for task in tasks}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
        return
    futures = {executor.submit(fn, *task): task for task in tasks}
    try:
        for fut in concurrent.futures.as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        for fut in futures:
            fut.cancel()


def make_executor(workers=None, scheduler=None):
    """The executor the CLI asks for: a process pool of ``workers``, a dask Client connected to
    ``scheduler``, or None (serial). The caller closes it."""
    if workers is not None and scheduler is not None:
        raise ValueError("give either `--workers` or `--scheduler`, not both")
    if scheduler is not None:
        try:
            from distributed import Client
        except ImportError:
            raise ValueError("`--scheduler` needs dask.distributed: pip install "
                             "'meanfield-toolkit[dask]'") from None
        return Client(scheduler)
    if workers is not None:
        if workers < 1:
            raise ValueError(f"`--workers` == {workers}: must be an integer >= 1")
        if workers > 1:
            return concurrent.futures.ProcessPoolExecutor(workers)
    return None
