"""The data-parallel SGD step: the shards' gradients add up to the mini-batch gradient, the update
is SGD with momentum and weight decay, and the result does not depend on the number of threads."""

import warnings

import numpy as np
import pandas as pd
import pytest

from meanfield.nets import init_network, loss_and_grads
from meanfield.pruning import global_masks, scores
from meanfield.training import train
from meanfield.training._sgd import DataParallelSGD, shard_count


def _net(arch="ffnn", seed=0):
    rng = np.random.default_rng(seed)
    return init_network("tanh", 12, 3, 1.3, 0.2, n_in=7, classes=4, arch=arch, rng=rng,
                        dtype=np.float64), rng


def test_shard_count_depends_on_batch_only():
    assert [shard_count(b) for b in (1, 63, 64, 127, 128, 200, 256)] == [1, 1, 1, 1, 2, 3, 4]
    # capped: a full-batch step keeps 16 gradient buffers, not one per 64 examples
    assert [shard_count(b) for b in (1087, 1088, 60_000)] == [16, 16, 16]


def test_blas_runs_on_one_thread_during_sharded_steps(monkeypatch):
    # several BLAS threads would round differently from one (and crawl on a busy machine)
    from threadpoolctl import threadpool_info

    seen = []
    step = DataParallelSGD.step

    def spy(self, X, y):
        seen.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
        return step(self, X, y)

    monkeypatch.setattr(DataParallelSGD, "step", spy)
    train("tanh", "digits", width=520, depth=1, sigma_w=1.3, sigma_b=0.2, epochs=1, batch=128)
    assert seen and all(s == {1} for s in seen)


@pytest.mark.parametrize("arch", ["ffnn", "stable_resnet"])
@pytest.mark.parametrize("n", [256, 130, 3])  # 4 shards: full, uneven, fewer examples than shards
def test_two_steps_match_full_batch_sgd(arch, n):
    net, rng = _net(arch)
    X, y = rng.standard_normal((n, 7)), rng.integers(4, size=n)
    masks = global_masks(scores(net, X, y, "snip"), 0.5)
    for w, m in zip(net.weights, masks):
        w *= m
    ref = _net(arch)[0]  # the same network, drawn again
    ref_w, ref_b = ref.weights, ref.biases
    for w, m in zip(ref_w, masks):
        w *= m
    vw = [np.zeros_like(w) for w in ref_w]
    vb = [np.zeros_like(b) for b in ref_b]
    lr, mu, wd = 0.1, 0.9, 0.01
    with DataParallelSGD(net, masks, 256, lr, mu, wd, threads=2) as sgd:
        assert sgd.shards == 4
        for _ in range(2):
            sgd.step(X, y)
            # reference: the textbook update from the full-batch mean gradient (float64)
            _, gw, gb = loss_and_grads(ref, X, y)
            for k in range(len(ref_w)):
                vw[k] = mu * vw[k] + gw[k] + wd * ref_w[k]
                ref_w[k] = (ref_w[k] - lr * vw[k]) * masks[k]
                vb[k] = mu * vb[k] + gb[k] + wd * ref_b[k]
                ref_b[k] = ref_b[k] - lr * vb[k]
    for a, b in zip(net.weights + net.biases, ref_w + ref_b):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for w, m in zip(net.weights, masks):
        assert np.all(w[~m] == 0.0)


@pytest.mark.parametrize("arch", ["ffnn", "stable_resnet"])
@pytest.mark.parametrize("sparse", [False, True])
def test_gains_train_a_fixed_multiplier(arch, sparse):
    """SBP-SR as the paper writes it: y = ρ ∘ (δ ∘ W̃) x + b, ρ fixed, W̃ trained by SGD with
    momentum and weight decay. Reference: that SGD on W̃ itself (∂ℒ/∂W̃ = ρ ∂ℒ/∂W, the
    textbook update on W̃, float64), three full-batch steps; DataParallelSGD with gains ρ²
    on the effective weights W = ρ W̃ must give W = ρ W̃ after each, dense and sparse."""
    net, rng = _net(arch)
    n = 130
    X, y = rng.standard_normal((n, 7)), rng.integers(4, size=n)
    masks = global_masks(scores(net, X, y, "snip"), 0.6)
    rho = [rng.uniform(0.5, 4.0, w.shape[0]) for w in net.weights]
    wt = [w * m for w, m in zip(net.weights, masks)]          # W̃, trained
    for w, t, r in zip(net.weights, wt, rho):
        w[...] = r[:, None] * t                               # W = ρ W̃
    ref = _net(arch)[0]
    vt = [np.zeros_like(t) for t in wt]
    vb = [np.zeros_like(b) for b in ref.biases]
    lr, mu, wd = 0.05, 0.9, 0.01
    with DataParallelSGD(net, masks, 256, lr, mu, wd, threads=2, sparse=sparse,
                         gains=[r * r for r in rho]) as sgd:
        for _ in range(3):
            sgd.step(X, y)
            for k, (t, r) in enumerate(zip(wt, rho)):
                ref.weights[k][...] = r[:, None] * t
            _, gw, gb = loss_and_grads(ref, X, y)
            for k, r in enumerate(rho):
                vt[k] = mu * vt[k] + r[:, None] * gw[k] + wd * wt[k]
                wt[k] = (wt[k] - lr * vt[k]) * masks[k]
                vb[k] = mu * vb[k] + gb[k] + wd * ref.biases[k]
                ref.biases[k] = ref.biases[k] - lr * vb[k]
        sgd.sync()
    for k, (t, r) in enumerate(zip(wt, rho)):
        np.testing.assert_allclose(net.weights[k], r[:, None] * t, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(net.biases[k], ref.biases[k], rtol=1e-10, atol=1e-12)
    # and it is not the plain update: without gains the weights end elsewhere
    assert not np.allclose(net.weights[0], _net(arch)[0].weights[0] * masks[0], atol=1e-3)


def test_train_rescale_as_multiplier():
    """train(rescale_as="multiplier") starts from the same net as "weights" (same loss at epoch
    0) and trains it differently; without rescaling the option changes nothing, bit for bit;
    an unknown value is refused, naming it."""
    kw = dict(width=16, depth=3, sigma_w="eoc", sigma_b=0.3, method="snip", sparsity=0.9,
              epochs=1, batch=64, seed=3, threads=1)
    a = train("tanh", "teacher", rescale=True, **kw)
    b = train("tanh", "teacher", rescale=True, rescale_as="multiplier", **kw)
    assert a.train_loss.iloc[0] == b.train_loss.iloc[0]
    assert a.train_loss.iloc[1] != b.train_loss.iloc[1]
    assert list(b.rescale_as.unique()) == ["multiplier"]
    c = train("tanh", "teacher", rescale_as="multiplier", **kw)
    d = train("tanh", "teacher", **kw)
    pd.testing.assert_frame_equal(c.drop(columns=["seconds"]), d.drop(columns=["seconds"]))
    with pytest.raises(ValueError, match="`rescale_as` == 'multiply'"):
        train("tanh", "teacher", rescale=True, rescale_as="multiply", **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("gained", [False, True])
def test_update_kernel_matches_the_formula_exactly(dtype, masked, gained):
    # n spans several blocks (the last one partial); the kernel must do, element by element,
    # exactly what the formula says in this order: g = s0 G0 + s1 G1 + s2 G2 (times the gain),
    # v = mu v + (g + wd w), w = w - lr v, pruned entries of w and v set to 0
    from meanfield.training._sgd import UPDATE_BLOCK, Hyper, _sgd_update

    rng = np.random.default_rng(3)
    n, S = 2 * UPDATE_BLOCK + 37, 3
    w, v = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    G = rng.standard_normal((S, n)).astype(dtype)
    share = np.array([0.25, 0.5, 0.25], dtype)
    mask = (rng.random(n) < 0.4).astype(np.uint8) if masked else np.ones(1, np.uint8)
    G[:, 0] = np.nan  # a diverged gradient: still exactly 0 where pruned
    if masked:
        mask[0] = 0
    lr, mu, wd = dtype(0.01), dtype(0.9), dtype(1e-3)
    g = share[0] * G[0] + share[1] * G[1] + share[2] * G[2]
    gain = rng.uniform(1, 150, n).astype(dtype) if gained else np.ones(1, dtype)
    if gained:
        g = g * gain
    v_ref = mu * v + (g + wd * w)
    w_ref = w - lr * v_ref
    if masked:
        v_ref[mask == 0] = 0
        w_ref[mask == 0] = 0
    _sgd_update(w, v, G, share, mask, gain, Hyper(lr=lr, momentum=mu, weight_decay=wd), masked)
    assert w.dtype == dtype and v.dtype == dtype
    np.testing.assert_array_equal(v, v_ref)
    np.testing.assert_array_equal(w, w_ref)


@pytest.mark.parametrize("sparse", [False, True])  # dense-masked layers, compressed ones
def test_history_is_bit_identical_for_any_thread_count(sparse):
    kw = dict(width=24, depth=3, sigma_w=1.3, sigma_b=0.2, method="snip", sparsity=0.5,
              epochs=2, batch=256, seed=1, sparse=sparse)  # 4 shards
    runs = [train("tanh", "digits", threads=t, return_network=True, **kw) for t in (1, 2, 3)]
    assert (runs[0][0].sparse_layers == 4 * sparse).all()
    for df, net, _ in runs[1:]:
        pd.testing.assert_frame_equal(df.drop(columns="seconds"),
                                      runs[0][0].drop(columns="seconds"))
        for a, b in zip(net.weights + net.biases, runs[0][1].weights + runs[0][1].biases):
            assert np.array_equal(a, b)


def test_bit_identical_for_wide_nets_too():
    # above width 512 a single-shard run may use several BLAS threads; with shards it must not,
    # or the rounding would follow the thread count
    kw = dict(width=520, depth=2, sigma_w=1.3, sigma_b=0.2, epochs=1, batch=128, seed=0)
    nets = [train("tanh", "digits", threads=t, return_network=True, **kw)[1] for t in (1, 2)]
    for a, b in zip(nets[0].weights + nets[0].biases, nets[1].weights + nets[1].biases):
        assert np.array_equal(a, b)


def test_map_runs_under_the_callers_error_state():
    # np.errstate does not reach worker threads by itself; the trainer silences overflow in a
    # diverging run, and must do so on every thread
    net, _ = _net()
    big = np.array([1e308])
    with DataParallelSGD(net, None, 256, 0.1, 0.9, 0.0, threads=2) as sgd:
        assert sgd.pool is not None
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with np.errstate(over="ignore"):
                assert sgd.map(lambda k: float((big * 10.0)[0]), range(4)) == [np.inf] * 4
            with np.errstate(over="raise"), pytest.raises(FloatingPointError):
                sgd.map(lambda k: big * 10.0, range(4))


def test_step_checks_its_input():
    net, rng = _net()
    with DataParallelSGD(net, None, 128, 0.1, 0.9, 0.0) as sgd:
        # train never makes such a step: an internal invariant, a bug of the caller
        with pytest.raises(AssertionError, match="1 to 128 examples"):
            sgd.step(np.empty((0, 7)), np.empty(0, np.int64))
        with pytest.raises(AssertionError, match="got 129 rows"):
            sgd.step(rng.standard_normal((129, 7)), rng.integers(4, size=129))
    with pytest.raises(ValueError, match=r"`masks\[0\]` has shape \(3, 3\)"):
        DataParallelSGD(net, [np.ones((3, 3), bool)] + [np.ones(w.shape, bool)
                                                        for w in net.weights[1:]], 128, 0.1, 0.9, 0.0)


def test_bad_arguments_name_the_parameter():
    net, _ = _net()
    with pytest.raises(ValueError, match=r"`batch` == 0"):
        DataParallelSGD(net, None, 0, 0.1, 0.9, 0.0)
    with pytest.raises(ValueError, match=r"`threads` == -3"):
        DataParallelSGD(net, None, 128, 0.1, 0.9, 0.0, threads=-3)
    net.weights[1] = np.asfortranarray(net.weights[1])
    # train draws its networks C-contiguous: another layout is a bug of the caller, not an input
    with pytest.raises(AssertionError, match=r"`net.weights\[1\]` must be a C-contiguous"):
        DataParallelSGD(net, None, 128, 0.1, 0.9, 0.0)


def test_bad_threads():
    with pytest.raises(ValueError, match=r"`threads` == 0"):
        train("tanh", "digits", width=8, depth=2, sigma_w=1.0, sigma_b=0.1, threads=0)
    with pytest.raises(TypeError, match=r"`threads` == 1.5"):
        train("tanh", "digits", width=8, depth=2, sigma_w=1.0, sigma_b=0.1, threads=1.5)
