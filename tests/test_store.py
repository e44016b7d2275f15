"""The plumbing of resumable sweeps (meanfield.sweeps): stores that record the versions behind
their rows, survive a killed writer and match keys exactly after a CSV round trip; executors."""

import csv
import os
import re

import numpy as np
import pandas as pd
import pytest

import meanfield as mf
from meanfield.sweeps import (
    PROVENANCE,
    TrialStore,
    _store,
    make_executor,
    open_executor,
    provenance,
    run_tasks,
)

SCR = ("tanh", 10, 3, 1.0, 0.3)  # a tiny network: a trial takes milliseconds
KW = dict(batch=8, seed=4)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _set_column(path, column, value):
    rows = _rows(path)
    i = rows[0].index(column)
    for row in rows[1:]:
        row[i] = value
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


# provenance


def test_every_row_records_the_versions_that_computed_it(tmp_path):
    path = tmp_path / "scr.csv"
    mf.simulate_critical_sparsity(*SCR, trials=3, store=path, **KW)
    header, *rows = _rows(path)
    assert header[-3:] == list(PROVENANCE) == ["meanfield_version", "numpy_version",
                                               "numba_version"]
    import numba

    expected = [mf.__version__, np.__version__, numba.__version__]
    assert len(rows) == 3 and all(row[-3:] == expected for row in rows)
    assert list(provenance().values()) == expected


def test_resuming_a_store_of_another_version_is_refused_and_leaves_it_alone(tmp_path):
    path = tmp_path / "scr.csv"
    mf.simulate_critical_sparsity(*SCR, trials=2, store=path, **KW)
    _set_column(path, "meanfield_version", "0.0.1")
    before = path.read_bytes()
    with pytest.raises(ValueError) as info:
        mf.simulate_critical_sparsity(*SCR, trials=4, store=path, **KW)
    msg = str(info.value)
    assert str(path) in msg and "'0.0.1'" in msg and repr(mf.__version__) in msg
    assert "meanfield_version" in msg and "new store file" in msg
    assert path.read_bytes() == before


def test_another_numpy_is_refused_too_but_only_the_differing_version_is_named(tmp_path):
    path = tmp_path / "s.csv"
    TrialStore(path, ("k",)).append([{"k": 1, "v": 0.5}])
    _set_column(path, "numpy_version", "1.0.0")
    with pytest.raises(ValueError, match=r"numpy_version '1\.0\.0' \(this process: ") as info:
        TrialStore(path, ("k",))
    assert "meanfield_version" not in str(info.value)


def test_a_store_without_versions_is_refused(tmp_path):
    path = tmp_path / "old.csv"
    path.write_text("k,v\n1,0.5\n")  # as written before rows recorded their versions
    with pytest.raises(ValueError, match=r"records no versions.*give another file"):
        TrialStore(path, ("k",))
    assert path.read_text() == "k,v\n1,0.5\n"


def test_a_store_of_other_results_is_refused(tmp_path):
    path = tmp_path / "s.csv"
    TrialStore(path, ("k",)).append([{"k": 1, "v": 0.5}])
    with pytest.raises(ValueError, match=r"not \['trial'\].*not a store of these results"):
        TrialStore(path, ("k", "trial"))


def test_a_malformed_complete_line_is_an_error_not_a_skipped_row(tmp_path):
    path = tmp_path / "s.csv"
    TrialStore(path, ("k",)).append([{"k": 1, "v": 0.5}, {"k": 2, "v": 0.25}])
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "1,0.5\n" + lines[2])
    with pytest.raises(ValueError, match=r"line 2 has 2 fields, the header 5"):
        TrialStore(path, ("k",))


# a writer killed mid-line


def test_a_torn_last_line_is_recomputed_and_every_trial_stored_once(tmp_path):
    path = tmp_path / "scr.csv"
    fresh = mf.simulate_critical_sparsity(*SCR, trials=4, **KW)
    mf.simulate_critical_sparsity(*SCR, trials=4, store=path, **KW)
    data = path.read_bytes()
    cut = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[:cut + 12])  # trial 3's line cut inside its fields
    store = TrialStore(path, mf.pruning.monte_carlo._PARAMS + ("trial",))
    assert not store.has({**fresh.iloc[3].to_dict()}) and store.has(fresh.iloc[2].to_dict())
    resumed = mf.simulate_critical_sparsity(*SCR, trials=4, store=path, **KW)
    header, *rows = _rows(path)
    trials = [int(r[header.index("trial")]) for r in rows]
    assert sorted(trials) == [0, 1, 2, 3]  # once each, the torn one rewritten whole
    assert path.read_bytes() == data
    pd.testing.assert_frame_equal(resumed, fresh)


def test_a_trial_of_several_rows_cut_short_is_completed_not_duplicated(tmp_path):
    path = tmp_path / "kept.csv"
    args = ("tanh", 10, 3, 1.0, 0.3, 0.5)
    fresh = mf.kept_per_layer(*args, trials=3, per_trial=True, **KW)
    mf.kept_per_layer(*args, trials=3, per_trial=True, store=path, **KW)
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) == 1 + 3 * 4  # four layers a trial, the readout last
    # killed while writing the last trial: layers 1 and 2 written, layer 3 torn, 4 never
    path.write_bytes(b"".join(lines[:-2]) + lines[-2][:9])
    resumed = mf.kept_per_layer(*args, trials=3, per_trial=True, store=path, **KW)
    pd.testing.assert_frame_equal(resumed, fresh)
    header, *rows = _rows(path)
    keys = [(r[header.index("trial")], r[header.index("layer")]) for r in rows]
    assert len(keys) == len(set(keys)) == 12


def test_opening_and_reading_a_store_never_writes_it(tmp_path):
    path = tmp_path / "scr.csv"
    mf.simulate_critical_sparsity(*SCR, trials=3, store=path, **KW)
    path.write_bytes(path.read_bytes()[:-5])  # a torn tail
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    store = TrialStore(path, mf.pruning.monte_carlo._PARAMS + ("trial",))
    assert len(store.frame) == 2 and store.columns[-1] == "s_cr"
    mf.simulate_critical_sparsity(*SCR, trials=2, store=path, **KW)  # all there: nothing to write
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


def test_a_torn_header_is_a_new_store(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(b"k,v,meanfi")
    store = TrialStore(path, ("k",))
    assert store.columns is None and len(store.frame) == 0
    store.append([{"k": 1, "v": 2.5}])
    assert _rows(path) == [["k", "v", *PROVENANCE], ["1", "2.5", *provenance().values()]]


def test_a_second_writer_is_refused_not_interleaved(tmp_path):
    path = tmp_path / "s.csv"
    first, second = TrialStore(path, ("k",)), TrialStore(path, ("k",))
    first.append([{"k": 1, "v": 0.5}])
    with pytest.raises(ValueError, match=r"another process writing to it"):
        second.append([{"k": 2, "v": 0.5}])
    assert len(_rows(path)) == 2


# keys after a CSV round trip

VALUES = [0.1 + 0.2, 1e-300, 5e-324, -0.0, 1.0, 1 / 3, 2.0 ** 60 + 1, np.float32(0.1),
          np.float32(1 / 3), np.float64(0.7), np.float16(0.1)]


def test_float_keys_match_exactly_after_a_round_trip(tmp_path):
    path = tmp_path / "s.csv"
    TrialStore(path, ("x",)).append([{"x": v, "i": i} for i, v in enumerate(VALUES)])
    again = TrialStore(path, ("x",))
    assert all(again.has({"x": v}) for v in VALUES)
    # a float read back from the file matches too, and is the float that was written
    read = again.frame.x.to_numpy()
    assert [float(v) for v in VALUES] == read.tolist()
    assert all(again.has({"x": v}) for v in read)
    # neighbours do not match: 0.3 is not 0.1 + 0.2, a float32's value is not its decimal
    for near in (0.3, 0.1, 1 / 3 + 2 ** -54, 0.0, np.nextafter(1e-300, 1)):
        assert not again.has({"x": near}), near


def test_integer_and_boolean_keys_match_after_a_round_trip(tmp_path):
    path = tmp_path / "s.csv"
    ints = [0, -3, 2 ** 62 + 1, np.int64(7), np.int32(-8), np.uint8(255)]
    TrialStore(path, ("n", "ok")).append([{"n": n, "ok": bool(i % 2), "v": 1.0}
                                          for i, n in enumerate(ints)])
    again = TrialStore(path, ("n", "ok"))
    assert all(again.has({"n": n, "ok": np.bool_(i % 2)}) for i, n in enumerate(ints))
    assert all(again.has(r) for r in again.frame.to_dict("records"))
    assert again.frame.n.tolist() == [int(n) for n in ints]
    assert not again.has({"n": 0, "ok": True}) and not again.has({"n": 0.0, "ok": False})


# writes


def test_a_partial_os_write_is_continued(tmp_path, monkeypatch):
    calls = []
    real = os.write

    def one_byte(fd, data):
        calls.append(len(data))
        return real(fd, bytes(data[:1]))

    monkeypatch.setattr(_store.os, "write", one_byte)
    path = tmp_path / "s.csv"
    rows = [{"k": i, "label": f"a, \"quoted\" {i}", "v": i / 7} for i in range(5)]
    TrialStore(path, ("k",)).append(rows)
    monkeypatch.setattr(_store.os, "write", real)
    size = path.stat().st_size
    assert len(calls) == size and calls[0] == size  # asked for all of it, got a byte a call
    again = TrialStore(path, ("k",))
    assert again.frame.to_dict("records") == rows


def test_a_write_that_writes_nothing_raises_instead_of_spinning(tmp_path, monkeypatch):
    monkeypatch.setattr(_store.os, "write", lambda fd, data: 0)
    with pytest.raises(OSError, match=r"wrote 0 of \d+ bytes"):
        TrialStore(tmp_path / "s.csv", ("k",)).append([{"k": 1}])


def test_appending_rows_already_stored_writes_nothing(tmp_path):
    path = tmp_path / "s.csv"
    store = TrialStore(path, ("k",))
    store.append([{"k": 1, "v": 0.5}, {"k": 1, "v": 0.5}])
    store.append([{"k": 1, "v": 0.5}, {"k": 2, "v": 0.25}])
    assert [r[0] for r in _rows(path)[1:]] == ["1", "2"] and len(store.frame) == 2


@pytest.mark.parametrize("rows, needle", [
    ([{"k": 1, "v": 0.5}, {"k": 2}], r"a row has columns \['k'\], the store \['k', 'v'\]"),
    ([{"k": 1, "meanfield_version": "x"}], r"the store's own \(provenance\)"),
    ([{"k": 1, "v": "two\nlines"}], r"contains a line break"),
])
def test_bad_rows_are_named(tmp_path, rows, needle):
    with pytest.raises(ValueError, match=needle):
        TrialStore(tmp_path / "s.csv", ("k",)).append(rows)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(TypeError, match=r"`store` == 3: must be a file path"):
        TrialStore(3, ("k",))
    with pytest.raises(TypeError, match=r"`key` == 'k': must be a non-empty sequence"):
        TrialStore(None, "k")
    with pytest.raises(ValueError, match=r"lacks the key column 'k'"):
        TrialStore(None, ("k",)).has({"j": 1})
    with pytest.raises(ValueError, match=re.escape(f"`store` == {str(tmp_path)!r}: cannot read")):
        TrialStore(tmp_path, ("k",))
    with pytest.raises(ValueError, match=r"`store` == .*nowhere.*cannot write"):
        TrialStore(tmp_path / "nowhere" / "s.csv", ("k",)).append([{"k": 1}])


# in memory


def test_the_in_memory_store_behaves_like_a_file_and_writes_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    memory = TrialStore(None, ("k",))
    assert memory.path is None and not memory.has({"k": 1}) and len(memory.frame) == 0
    memory.append([{"k": 1, "v": 0.5}, {"k": 2, "v": np.float32(0.1)}])
    memory.append([{"k": 2, "v": 9.0}])  # stored already
    assert memory.has({"k": np.int64(2)}) and memory.frame.v.tolist() == [0.5, float(np.float32(0.1))]
    assert os.listdir(tmp_path) == []
    # the sweep's results do not depend on where the rows are kept
    on_file = mf.simulate_critical_sparsity(*SCR, trials=3, store=tmp_path / "s.csv", **KW)
    in_memory = mf.simulate_critical_sparsity(*SCR, trials=3, **KW)
    pd.testing.assert_frame_equal(on_file, in_memory)
    assert list(in_memory.columns[-2:]) == ["trial", "s_cr"]  # no provenance in the results


def test_a_value_given_twice_in_a_grid_is_one_configuration():
    df = mf.sweep_critical_sparsity("tanh", 10, [3, 3], 1.0, 0.3, trials=2, **KW)
    assert len(df) == 2 and list(df.trial) == [0, 1]


# executors


def _square(x):
    return x * x


def test_run_tasks_refuses_what_is_not_an_executor():
    with pytest.raises(TypeError, match=r"`executor` == 'pool': must be None, a "
                                        r"concurrent.futures.Executor or a dask"):
        list(run_tasks(_square, [(1,)], "pool"))


def test_open_executor_shuts_its_pool_down():
    with open_executor(workers=1) as serial:
        assert serial is None
    with open_executor(workers=2) as pool:
        assert sorted(r for _, r in run_tasks(_square, [(i,) for i in range(5)], pool)) == \
            [0, 1, 4, 9, 16]
    with pytest.raises(RuntimeError, match="shutdown"):
        pool.submit(_square, 2)
    with pytest.raises(ValueError, match=r"`--workers` == 0: must be an integer >= 1"):
        make_executor(workers=0)


def test_a_dask_client_runs_through_its_concurrent_futures_executor():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:  # the caller's client: used, not closed
            out = dict(run_tasks(_square, [(i,) for i in range(6)], client))
            assert out == {(i,): i * i for i in range(6)} and client.status == "running"
            df = mf.simulate_critical_sparsity(*SCR, trials=3, executor=client, **KW)
            pd.testing.assert_frame_equal(df, mf.simulate_critical_sparsity(*SCR, trials=3, **KW))
        with open_executor(scheduler=cluster.scheduler_address) as ex:  # ours: closed on exit
            assert dict(run_tasks(_square, [(3,)], ex)) == {(3,): 9}
        assert ex.client.status == "closed"
        assert cluster.scheduler.status.name == "running"  # the scheduler is not ours to stop
