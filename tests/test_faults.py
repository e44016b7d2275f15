"""Faults in the middle of a sweep: a Dask worker killed, a sweep interrupted with Ctrl-C (SIGINT).
Either way the results are those of an uninterrupted serial run, bit for bit, and the store left
behind resumes without a torn, lost or duplicated row."""

import concurrent.futures
import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

import meanfield as mf
from meanfield.sweeps import run_tasks

# width 30, depth 10: a trial takes about a millisecond and a task (64 trials) about 60 ms
SWEEP = ("tanh", 30, [8, 10], [1.0, 1.4], 0.3)
KEY = ["depth", "sigma_w", "trial"]


def _lines(path):
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _wait_for_rows(path, rows, timeout, proc=None):
    """Wait until ``path`` has at least ``rows`` complete rows (header aside); their number."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = _lines(path) - 1
        if n >= rows or (proc is not None and proc.poll() is not None):
            return n
        time.sleep(0.005)
    return _lines(path) - 1


def _check_store(path):
    """The rows of a store file: complete lines, as many fields as the header, no key twice."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), "a torn last line"
    with open(path, newline="") as f:
        header, *rows = list(csv.reader(f))
    assert all(len(r) == len(header) for r in rows)
    frame = pd.DataFrame(rows, columns=header)
    assert not frame.duplicated(KEY).any()
    return frame


@pytest.fixture(scope="module")
def serial():
    """The uninterrupted serial sweep, the reference for every test here."""
    return mf.sweep_critical_sparsity(*SWEEP, trials=TRIALS, batch=32, seed=15)


TRIALS = 512  # 4 configurations × 8 tasks of 64 trials: 2048 trials, about 2 s of work


@pytest.mark.slow
@pytest.mark.parametrize("retries", [None, 0])
def test_a_dask_worker_killed_mid_sweep(tmp_path, serial, retries):
    """A worker process killed (SIGKILL) while the sweep runs: Dask runs the tasks it lost again
    on the other worker or the one its nanny restarts, and the sweep finishes bit-identical to the
    serial run. With no retry allowed (``distributed.scheduler.allowed-failures`` = 0; 3 by
    default) the sweep stops with ``KilledWorker``, and its store resumes into the same results."""
    distributed = pytest.importorskip("distributed")
    import dask

    store = tmp_path / "sweep.csv"
    total = len(serial)
    config = {} if retries is None else {"distributed.scheduler.allowed-failures": retries}
    killed = {}
    with dask.config.set(config), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        victim = sorted(client.run(os.getpid).values())[0]  # the pid of one worker's process

        def kill():
            # once a quarter of the trials are stored
            killed["at"] = _wait_for_rows(store, total // 4, timeout=240)
            os.kill(victim, signal.SIGKILL)

        killer = threading.Thread(target=kill)
        killer.start()
        try:
            if retries is None:
                remote = mf.sweep_critical_sparsity(*SWEEP, trials=TRIALS, batch=32, seed=15,
                                                    executor=client, store=store)
            else:
                with pytest.raises(distributed.scheduler.KilledWorker):
                    mf.sweep_critical_sparsity(*SWEEP, trials=TRIALS, batch=32, seed=15,
                                               executor=client, store=store)
        finally:
            killer.join()
        log = list(cluster.scheduler.transition_log)
        after = client.run(os.getpid)
    # the tasks on the killed worker, running or finished but not yet fetched, were lost (the
    # scheduler's transitions on removing the worker: to be run again, or failed)
    lost = {t[0] for t in log if t[1] in ("processing", "memory") and t[2] in ("released", "erred")
            and ("worker-cleanup" in str(t[4]) or "remove-worker" in str(t[4]))}
    stored = len(_check_store(store))
    print(f"worker {victim} killed at {killed['at']} of {total} rows; {len(lost)} tasks lost; "
          f"workers after: {sorted(after.values())}; {stored} rows stored")
    assert 0 < killed["at"] < total // 2
    assert victim not in after.values()  # it died (its nanny started another)
    assert lost, "no task was lost with the killed worker"
    if retries is None:
        pd.testing.assert_frame_equal(serial, remote)
        assert stored == total
    else:
        assert killed["at"] <= stored < total
        resumed = mf.sweep_critical_sparsity(*SWEEP, trials=TRIALS, batch=32, seed=15, store=store)
        pd.testing.assert_frame_equal(serial, resumed)
        assert len(_check_store(store)) == total

_INTERRUPTED = """
import json
import signal
from concurrent.futures import ProcessPoolExecutor

# Ctrl-C as at a terminal, even when the test runs where SIGINT is ignored (a background job of a
# non-interactive shell): Python installs its KeyboardInterrupt handler only if SIGINT is not
# ignored at start
signal.signal(signal.SIGINT, signal.default_int_handler)

import meanfield as mf
from meanfield.sweeps import run_tasks


class Pool(ProcessPoolExecutor):
    # a process pool that keeps the futures it gives out, to report what became of them
    def __init__(self, workers):
        super().__init__(workers)
        self.futures = []

    def submit(self, *args, **kwargs):
        self.futures.append(super().submit(*args, **kwargs))
        return self.futures[-1]


pool = Pool(2) if {pool} else None
try:
    if pool is None:
        mf.sweep_critical_sparsity(*{sweep!r}, trials={trials}, batch=32, seed=15,
                                   store={store!r})
    else:
        with pool:  # leaving it shuts the pool down, waiting for what is still to run
            mf.sweep_critical_sparsity(*{sweep!r}, trials={trials}, batch=32, seed=15,
                                       executor=pool, store={store!r})
finally:
    if pool is not None:
        fs = pool.futures
        print(json.dumps(dict(submitted=len(fs), cancelled=sum(f.cancelled() for f in fs),
                              unfinished=sum(not f.done() for f in fs),
                              workers_alive=sum(p.is_alive() for p in pool._processes.values())
                              if pool._processes else 0)), flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("pool, target", [(False, "process"), (True, "process"), (True, "group")])
def test_an_interrupted_sweep_leaves_a_store_that_resumes(tmp_path, serial, pool, target):
    """SIGINT to the sweep's process (``kill -INT``), or to its process group as Ctrl-C at a
    terminal sends it (the pool's workers get it too)."""
    store = tmp_path / "sweep.csv"
    total = len(serial)
    script = _INTERRUPTED.format(pool=pool, sweep=SWEEP, trials=TRIALS, store=str(store))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        # generous: a fresh environment's first run loads or compiles every kernel in the
        # subprocess (and in each pool worker) before the first row
        at = _wait_for_rows(store, 256, timeout=240, proc=proc)
        sent = time.monotonic()
        if target == "group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stored = _check_store(store)
    print(f"SIGINT at {at} of {total} rows; exited in {took:.2f} s with {proc.returncode}, "
          f"{len(stored)} rows stored; {out.strip()}")
    assert 0 < at < total
    assert proc.returncode == -signal.SIGINT and "KeyboardInterrupt" in err, err
    assert 0 < len(stored) < total
    if pool:
        report = json.loads(out.splitlines()[-1])
        # the tasks not yet started were cancelled, not run to the end by the pool's shutdown
        assert report["cancelled"] > 0 and report["unfinished"] == 0
        assert report["workers_alive"] == 0
    # the rows stored are the serial run's, bit for bit
    ref = serial.set_index(KEY).s_cr
    keys = list(zip(stored.depth.astype(int), stored.sigma_w.astype(float), stored.trial.astype(int)))
    assert [float(s) for s in stored.s_cr] == ref.loc[keys].tolist()
    # and the resumed sweep is the uninterrupted one
    resumed = mf.sweep_critical_sparsity(*SWEEP, trials=TRIALS, batch=32, seed=15, store=store)
    pd.testing.assert_frame_equal(serial, resumed)
    assert len(_check_store(store)) == total


class _InterruptedWhileSubmitting(concurrent.futures.Executor):
    """An executor whose futures never start, interrupted (as by Ctrl-C) at its ``at``-th submit."""

    def __init__(self, at):
        self.at, self.futures = at, []

    def submit(self, fn, /, *args, **kwargs):
        if len(self.futures) == self.at:
            raise KeyboardInterrupt
        self.futures.append(concurrent.futures.Future())
        return self.futures[-1]


def test_an_interrupt_while_submitting_cancels_what_was_submitted():
    # a sweep of thousands of tasks takes a while to submit: Ctrl-C can come then too
    ex = _InterruptedWhileSubmitting(at=3)
    with pytest.raises(KeyboardInterrupt):
        list(run_tasks(pow, [(i, 2) for i in range(10)], ex))
    assert len(ex.futures) == 3 and all(f.cancelled() for f in ex.futures)


def test_an_error_between_two_results_cancels_the_tasks_not_yet_run(tmp_path, monkeypatch):
    # the sweep's loop stops at its first append (a full disk, say, or Ctrl-C there): the rest of
    # its tasks are cancelled then, before the error leaves the sweep
    from meanfield.sweeps import _store

    with ThreadPoolExecutor(1) as pool:
        submitted = []
        submit = pool.submit

        def recording(*args, **kwargs):
            submitted.append(submit(*args, **kwargs))
            return submitted[-1]

        def full(self, rows):
            raise OSError("no space left on device")

        monkeypatch.setattr(pool, "submit", recording)
        monkeypatch.setattr(_store.TrialStore, "append", full)
        with pytest.raises(OSError):
            mf.sweep_critical_sparsity(*SWEEP, trials=TRIALS, batch=32, seed=15, executor=pool,
                                       store=tmp_path / "sweep.csv")
        assert len(submitted) == 32
        assert sum(f.cancelled() for f in submitted) >= 30
