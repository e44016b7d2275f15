"""Monte Carlo of critical sparsity and kept-per-layer: seeds, executors (serial, processes, dask),
resumable store, and the statistics of the paper's claims (docs/theory.md §4)."""

import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

import meanfield as mf
from meanfield.pruning import critical_sparsity, snip_scores
from meanfield.pruning.monte_carlo import trial_seed

EOC = 1.3955839751549182  # tanh, σ_b = 0.3


def test_trial_seed_is_the_spawned_child():
    children = np.random.SeedSequence(7).spawn(5)
    for i, child in enumerate(children):
        a = np.random.default_rng(child).standard_normal(3)
        b = np.random.default_rng(trial_seed(7, i)).standard_normal(3)
        assert np.array_equal(a, b)


def test_one_row_per_trial_and_the_fast_path_matches_the_scores():
    df = mf.simulate_critical_sparsity("tanh", 12, 4, 1.1, 0.2, trials=3, batch=16, seed=3)
    assert list(df.trial) == [0, 1, 2] and (df.width == 12).all() and (df.method == "snip").all()
    # trial 1 recomputed through the generic path: network, inputs, labels from its own stream
    from meanfield.pruning.trial import _trial_inputs

    rng = np.random.default_rng(trial_seed(3, 1))
    net, X, y = _trial_inputs("tanh", 12, 4, 1.1, 0.2, 16, 10, "ffnn", rng, np.float32)
    assert df.s_cr[1] == critical_sparsity(snip_scores(net, X, y))
    magnitude = mf.simulate_critical_sparsity("tanh", 12, 4, 1.1, 0.2, trials=2, batch=16, seed=3,
                                              method="magnitude")
    assert magnitude.s_cr[1] == critical_sparsity([np.abs(w) for w in net.weights])


def test_results_identical_across_executors():
    kw = dict(trials=6, batch=8, seed=11)
    serial = mf.sweep_critical_sparsity("tanh", 10, [3, 5], [0.8, "eoc"], 0.3, **kw)
    with ThreadPoolExecutor(3) as pool:
        threads = mf.sweep_critical_sparsity("tanh", 10, [3, 5], [0.8, "eoc"], 0.3,
                                             executor=pool, **kw)
    with ProcessPoolExecutor(2) as pool:
        procs = mf.sweep_critical_sparsity("tanh", 10, [3, 5], [0.8, "eoc"], 0.3,
                                           executor=pool, **kw)
    pd.testing.assert_frame_equal(serial, threads)
    pd.testing.assert_frame_equal(serial, procs)
    assert len(serial) == 2 * 2 * 6


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_results():
    distributed = pytest.importorskip("distributed")
    kw = dict(trials=4, batch=8, seed=5)
    serial = mf.simulate_critical_sparsity("tanh", 10, 4, 1.2, 0.3, **kw)
    # a conv ResNet with a stage and its projection, scored by GraSP, kept per layer
    conv = dict(arch="conv_resnet", stages=2, image_size=4, method="grasp", **kw)
    conv_serial = mf.kept_per_layer("tanh", 4, 4, 1.2, 0.3, 0.8, per_trial=True, **conv)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = mf.simulate_critical_sparsity("tanh", 10, 4, 1.2, 0.3, executor=client, **kw)
        conv_remote = mf.kept_per_layer("tanh", 4, 4, 1.2, 0.3, 0.8, per_trial=True,
                                        executor=client, **conv)
    pd.testing.assert_frame_equal(serial, remote)
    pd.testing.assert_frame_equal(conv_serial, conv_remote)
    assert "shortcut4" in set(conv_serial.layer_name)


def test_store_resumes_without_redoing_or_losing(tmp_path):
    store = tmp_path / "scr.csv"
    first = mf.simulate_critical_sparsity("tanh", 10, 3, 1.0, 0.3, trials=3, batch=8, store=store)
    lines = store.read_text().splitlines()
    assert len(lines) == 1 + 3
    # a line cut short by a kill is dropped and recomputed
    store.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:7])
    full = mf.simulate_critical_sparsity("tanh", 10, 3, 1.0, 0.3, trials=5, batch=8, store=store)
    assert len(full) == 5 and list(full.trial) == [0, 1, 2, 3, 4]
    assert full.s_cr[:3].tolist() == first.s_cr.tolist()
    assert len(store.read_text().splitlines()) == 1 + 5
    fresh = mf.simulate_critical_sparsity("tanh", 10, 3, 1.0, 0.3, trials=5, batch=8)
    assert full.s_cr.tolist() == fresh.s_cr.tolist()


@pytest.mark.slow
def test_killed_sweep_resumes(tmp_path):
    store = tmp_path / "sweep.csv"
    script = textwrap.dedent(f"""
        import meanfield as mf
        mf.sweep_critical_sparsity("tanh", 30, [20, 30], [0.8, 3.0], 0.3, trials=200, batch=32,
                                   store={str(store)!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 120
    while time.time() < deadline:
        if store.exists() and len(store.read_text().splitlines()) > 20:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(store.read_text().splitlines()) - 1
    assert 0 < done_before < 800
    resumed = mf.sweep_critical_sparsity("tanh", 30, [20, 30], [0.8, 3.0], 0.3, trials=200,
                                         batch=32, store=store)
    assert len(resumed) == 800
    assert not resumed.duplicated(["depth", "sigma_w", "trial"]).any()
    fresh = mf.sweep_critical_sparsity("tanh", 30, [20, 30], [0.8, 3.0], 0.3, trials=200,
                                       batch=32)
    assert resumed.s_cr.tolist() == fresh.s_cr.tolist()


def _mean_se(df):
    return df.s_cr.mean(), df.s_cr.std(ddof=1) / np.sqrt(len(df))


@pytest.mark.slow
def test_eoc_keeps_sparsity_high_and_the_ordered_phase_falls_with_depth():
    kw = dict(trials=12, batch=64, seed=1)
    eoc = _mean_se(mf.simulate_critical_sparsity("tanh", 50, 50, EOC, 0.3, **kw))
    ordered = _mean_se(mf.simulate_critical_sparsity("tanh", 50, 50, 0.8, 0.3, **kw))
    chaotic = _mean_se(mf.simulate_critical_sparsity("tanh", 50, 50, 3.0, 0.3, **kw))
    shallow = _mean_se(mf.simulate_critical_sparsity("tanh", 50, 10, 0.8, 0.3, **kw))
    for other in (ordered, chaotic):  # the EOC far above, by more than 5 combined SE
        assert eoc[0] - other[0] > 5 * np.hypot(eoc[1], other[1])
    assert shallow[0] - ordered[0] > 5 * np.hypot(shallow[1], ordered[1])


@pytest.mark.slow
def test_stable_resnet_keeps_weights_in_every_layer():
    df = mf.kept_per_layer("tanh", 50, 30, 1.0, 0.3, 0.7, trials=4, batch=64, arch="stable_resnet")
    assert len(df) == 31 and (df.kept_fraction > 0.05).all()
    ffnn = mf.kept_per_layer("tanh", 50, 30, 3.0, 0.3, 0.7, trials=4, batch=64)
    assert (ffnn.kept_fraction < 0.01).any()


def test_kept_per_layer_summary_and_per_trial():
    per = mf.kept_per_layer("tanh", 10, 3, 1.0, 0.3, 0.5, trials=3, batch=8, per_trial=True)
    assert len(per) == 3 * 4 and set(per.layer) == {1, 2, 3, 4}
    summ = mf.kept_per_layer("tanh", 10, 3, 1.0, 0.3, 0.5, trials=3, batch=8)
    means = per.groupby("layer").kept_fraction.mean().to_numpy()
    assert np.allclose(summ.kept_fraction, means) and (summ.trials == 3).all()
    # the kept fractions, weighted by layer size, keep half of the weights (ties aside)
    sizes = np.array([100, 100, 100, 100])
    assert np.dot(summ.kept_fraction, sizes) / sizes.sum() <= 0.5 + 1e-12


def test_bad_input():
    with pytest.raises(ValueError, match=r"`method` == 'snipp'"):
        mf.simulate_critical_sparsity("tanh", 10, 3, 1.0, 0.3, trials=1, method="snipp")
    with pytest.raises(ValueError, match=r"`arch` == 'vit'"):
        mf.simulate_critical_sparsity("tanh", 10, 3, 1.0, 0.3, trials=1, arch="vit")
    with pytest.raises(ValueError, match=r"`trials` == 0"):
        mf.simulate_critical_sparsity("tanh", 10, 3, 1.0, 0.3, trials=0)
    with pytest.raises(ValueError, match=r"`width` == 0"):
        mf.simulate_critical_sparsity("tanh", 0, 3, 1.0, 0.3, trials=1)
    with pytest.raises(TypeError, match=r"use sweep_critical_sparsity"):
        mf.simulate_critical_sparsity("tanh", [10, 20], 3, 1.0, 0.3, trials=1)
    with pytest.raises(ValueError, match=r"`sparsity` == 1.0"):
        mf.kept_per_layer("tanh", 10, 3, 1.0, 0.3, 1.0, trials=1)
    with pytest.raises(TypeError, match=r"`executor`"):
        mf.simulate_critical_sparsity("tanh", 10, 3, 1.0, 0.3, trials=1, executor=object())


def test_store_writes_numpy_scalars_as_plain_numbers(tmp_path):
    from meanfield.sweeps import TrialStore, provenance

    st = TrialStore(tmp_path / "s.csv", ("k",))
    st.append([{"k": np.int64(3), "x": np.float64(0.1), "ok": np.bool_(True)}])
    versions = ",".join(provenance().values())  # each row records what computed it
    assert (tmp_path / "s.csv").read_text() == (
        f"k,x,ok,meanfield_version,numpy_version,numba_version\n3,0.1,True,{versions}\n")
    again = TrialStore(tmp_path / "s.csv", ("k",))
    assert again.has({"k": 3}) and again.frame.x.dtype == np.float64
