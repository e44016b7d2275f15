"""Building blocks of resumable sweeps: run tasks on an executor, keep their rows in a store.

The Monte Carlo functions of :mod:`meanfield.pruning.monte_carlo` and the studies in ``simulations/`` are
built from these; they are public so that a sweep of your own gets the same guarantees —
results independent of the executor, a file that resumes after a kill, rows that record the
versions that computed them.

- :func:`run_tasks` yields ``(task, fn(*task))`` as tasks finish, on None (this process), a
  ``concurrent.futures.Executor`` or a ``dask.distributed.Client``.
- :func:`make_executor` / :func:`open_executor` give the executor of ``--workers N`` or
  ``--scheduler ADDRESS``.
- :class:`TrialStore` holds rows keyed by some columns, in a CSV file (resumable, with
  provenance) or in memory.

Example
-------
>>> from meanfield.sweeps import TrialStore, open_executor, run_tasks
>>> store = TrialStore(None, key=("x",))  # or a path: resumes where it stopped
>>> todo = [(x, 2) for x in range(4) if not store.has({"x": x})]
>>> with open_executor(workers=None) as ex:  # None: serial; 4: four processes
...     for (x, _), y in run_tasks(pow, todo, ex):
...         store.append([{"x": x, "y": y}])
>>> store.frame.sort_values("x").y.tolist()
[0, 1, 4, 9]
"""

from ._executors import make_executor, open_executor, run_tasks
from ._store import PROVENANCE, TrialStore, provenance

__all__ = ["PROVENANCE", "TrialStore", "make_executor", "open_executor", "provenance", "run_tasks"]
