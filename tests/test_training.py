"""The trainer: it learns real digits, keeps pruned weights at exactly zero, is reproducible, and
shows the paper's contrast (ordered-phase SNIP untrainable at high sparsity, SBP-SR trainable)."""

import numpy as np
import pandas as pd
import pytest

import meanfield as mf
from meanfield.training import train


def test_learns_digits():
    df = train("tanh", "digits", width=64, depth=3, sigma_w="eoc", sigma_b=0.3, epochs=10,
               seed=0)
    assert list(df.epoch) == list(range(11))
    # chance is 0.1; measured 0.936 with this seed: 0.9 leaves room for BLAS rounding differences
    assert df.test_accuracy.iloc[-1] > 0.9
    assert df.train_loss.iloc[-1] < 0.5 * df.train_loss.iloc[0]


def test_masks_stay_zero_and_sparsity_is_exact():
    df, net, masks = train("tanh", "digits", width=32, depth=3, sigma_w="eoc", sigma_b=0.3,
                           method="snip", sparsity=0.8, epochs=3, seed=2, return_network=True)
    total = sum(m.size for m in masks)
    assert sum(int(m.sum()) for m in masks) <= int(round(0.2 * total))
    for w, m in zip(net.weights, masks):
        assert np.all(w[~m.astype(bool)] == 0.0)
        assert np.any(w[m.astype(bool)] != 0.0)
    assert df.test_accuracy.iloc[-1] > 0.3


def test_seeded_runs_are_bit_identical_and_seeds_differ():
    kw = dict(width=16, depth=2, sigma_w=1.2, sigma_b=0.2, method="snip", sparsity=0.5,
              rescale=True, epochs=2)
    a = train("tanh", "teacher", seed=4, **kw)
    b = train("tanh", "teacher", seed=4, **kw)
    c = train("tanh", "teacher", seed=5, **kw)
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))
    assert not np.array_equal(a.train_loss, c.train_loss)


def test_dataset_as_arrays():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    df = train("relu", (X[:150], y[:150], X[150:], y[150:]), width=16, depth=2, sigma_w=1.4,
               sigma_b=0.0, epochs=15, lr=0.05, seed=0)
    assert df.test_accuracy.iloc[-1] > 0.85


@pytest.mark.slow
def test_ordered_snip_is_untrainable_where_sbp_sr_trains():
    # docs/theory.md §4–5 on real data: depth 20, 90 % sparsity
    kw = dict(width=64, depth=20, sigma_b=0.3, method="snip", sparsity=0.9, epochs=6, lr=0.03,
              seed=0)
    ordered = train("tanh", "digits", sigma_w="ordered", **kw)
    sbp_sr = train("tanh", "digits", sigma_w="eoc", rescale=True, **kw)
    assert (ordered.test_accuracy < 0.2).all()  # chance level (0.1): SNIP emptied a layer
    assert sbp_sr.test_accuracy.iloc[-1] > 0.3  # measured 0.418 with this seed


def test_bad_input():
    with pytest.raises(ValueError, match=r"`method` == 'prune'"):
        train("tanh", "digits", width=8, depth=2, sigma_w=1.0, sigma_b=0.1, method="prune")
    with pytest.raises(ValueError, match=r"`sparsity` == 0.5 with `method` == 'none'"):
        train("tanh", "digits", width=8, depth=2, sigma_w=1.0, sigma_b=0.1, sparsity=0.5)
    with pytest.raises(ValueError, match=r"`sigma_w` == 'edge'"):
        train("tanh", "digits", width=8, depth=2, sigma_w="edge", sigma_b=0.1)
    with pytest.raises(ValueError, match=r"`lr` == -1"):
        train("tanh", "digits", width=8, depth=2, sigma_w=1.0, sigma_b=0.1, lr=-1)
    with pytest.raises(ValueError, match=r"`dataset` == 'cifar'"):
        train("tanh", "cifar", width=8, depth=2, sigma_w=1.0, sigma_b=0.1)
    with pytest.raises(ValueError, match=r"`epochs` == -1"):
        train("tanh", "digits", width=8, depth=2, sigma_w=1.0, sigma_b=0.1, epochs=-1)


def test_load_dataset_shapes_and_standardisation():
    for name, features in (("mnist5k", 784), ("digits", 64)):
        X_tr, y_tr, X_te, y_te = mf.load_dataset(name)
        assert X_tr.dtype == np.float32 and X_tr.shape[1] == features
        assert set(np.unique(y_tr)) == set(range(10)) == set(np.unique(y_te))
        assert np.allclose(X_tr.mean(axis=0), 0, atol=1e-4)
    X_tr, y_tr, X_te, y_te = mf.load_dataset("mnist5k")
    assert (X_tr.shape[0], X_te.shape[0]) == (4000, 1000)
    assert (np.bincount(y_te) == 100).all()  # stratified


# ------------------------------------------------------------------------------------------------
# Issue 11's options: rescale modes, shuffled masks, validation split, GraSP's temperature
# ------------------------------------------------------------------------------------------------

_TINY = dict(width=16, depth=3, sigma_w=1.3, sigma_b=0.2)


def test_shuffle_masks_keeps_layer_counts_moves_positions_and_is_seeded():
    kw = dict(method="snip", sparsity=0.8, epochs=0, seed=3, return_network=True, **_TINY)
    _, _, plain = train("tanh", "digits", **kw)
    _, net, shuffled = train("tanh", "digits", shuffle_masks=True, **kw)
    _, _, again = train("tanh", "digits", shuffle_masks=True, **kw)
    _, _, other = train("tanh", "digits", shuffle_masks=True, **{**kw, "seed": 4})
    for p, s, a, w in zip(plain, shuffled, again, net.weights):
        assert s.shape == p.shape and int(s.sum()) == int(p.sum())
        assert not np.array_equal(s, p)
        np.testing.assert_array_equal(s, a)
        assert np.all(w[~s.astype(bool)] == 0.0)  # the network is pruned by the shuffled mask
    assert any(not np.array_equal(s, o) for s, o in zip(shuffled, other))


def test_rescale_layer_is_one_factor_per_layer_for_any_method():
    from meanfield.nets import init_network

    kw = dict(method="magnitude", sparsity=0.7, epochs=0, seed=1, return_network=True, **_TINY)
    _, pruned, masks = train("tanh", "digits", rescale=False, **kw)
    _, layer, masks_l = train("tanh", "digits", rescale="layer", **kw)
    X_train = mf.load_dataset("digits")[0]
    dense = init_network("tanh", 16, 3, 1.3, 0.2, n_in=X_train.shape[1], classes=10,
                         rng=np.random.default_rng(1))
    for w0, wp, wl, m, ml in zip(dense.weights, pruned.weights, layer.weights, masks, masks_l):
        np.testing.assert_array_equal(m, ml)
        m = m.astype(bool)
        np.testing.assert_array_equal(wp, w0 * m)
        w0 = w0.astype(np.float64)
        rho = np.sqrt((w0 ** 2).sum() / (w0[m] ** 2).sum())
        ratio = wl[m].astype(np.float64) / wp[m]
        assert np.ptp(ratio) < 1e-6 * rho  # one factor over the layer (float32 rounding)
        assert ratio.mean() == pytest.approx(rho, rel=1e-6)
        assert np.all(wl[~m] == 0.0)


def test_rescale_layer_restores_each_layers_sum_of_squares_and_neuron_mode_is_unchanged():
    from meanfield.nets import init_network
    from meanfield.pruning import global_masks, random_scores, rescale

    rng = np.random.default_rng(0)
    net = init_network("tanh", 12, 3, 1.1, 0.1, n_in=7, classes=4, rng=rng, dtype=np.float64)
    masks = global_masks(random_scores(net, rng), 0.6)
    for w, wl in zip(net.weights, rescale(net, masks, "layer").weights):
        assert (wl ** 2).sum() == pytest.approx((w ** 2).sum(), rel=1e-12)
    for a, b in zip(rescale(net, masks).weights, rescale(net, masks, "neuron").weights):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"`mode` == 'row'"):
        rescale(net, masks, "row")


def test_rescale_true_and_neuron_give_identical_histories():
    kw = dict(method="random", sparsity=0.6, epochs=1, seed=2, **_TINY)
    a = train("tanh", "digits", rescale=True, **kw)
    b = train("tanh", "digits", rescale="neuron", **kw)
    c = train("tanh", "digits", rescale="layer", **kw)
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))
    assert (a.rescale == "neuron").all() and (c.rescale == "layer").all()
    assert not np.array_equal(a.train_loss, c.train_loss)


def test_stratified_split():
    from meanfield.training.trainer import _stratified_split

    y = np.repeat(np.arange(5), [50, 31, 7, 12, 3])
    for f in (0.1, 0.25, 0.5):
        tr, va = _stratified_split(y, f, np.random.default_rng(0))
        assert np.intersect1d(tr, va).size == 0
        np.testing.assert_array_equal(np.union1d(tr, va), np.arange(y.size))
        assert va.size == round(f * y.size)
        counts, val_counts = np.bincount(y), np.bincount(y[va], minlength=5)
        assert np.all(np.abs(val_counts - f * counts) < 1)
        assert np.all(counts - val_counts >= 1)


def test_val_fraction_carves_validation_from_train_and_leaves_test_alone():
    from meanfield.nets import forward
    from meanfield.training.trainer import _stratified_split

    X_tr, y_tr, X_te, y_te = mf.load_dataset("digits")
    kw = dict(epochs=1, seed=5, return_network=True, **_TINY)
    none = train("tanh", "digits", **kw)[0]
    assert none.val_accuracy.isna().all()
    df, net, _ = train("tanh", "digits", val_fraction=0.2, **kw)
    tr, va = _stratified_split(y_tr, 0.2, np.random.default_rng([5, 1]))
    assert va.size == round(0.2 * y_tr.size)

    def acc(X, y):
        return float((forward(net, X).argmax(axis=1) == y).mean())

    assert df.val_accuracy.iloc[-1] == pytest.approx(acc(X_tr[va], y_tr[va]), abs=1e-12)
    assert df.test_accuracy.iloc[-1] == pytest.approx(acc(X_te, y_te), abs=1e-12)
    assert df.train_accuracy.iloc[-1] == pytest.approx(acc(X_tr[tr], y_tr[tr]), abs=1e-12)
    assert df.val_accuracy.notna().all() and (df.val_fraction == 0.2).all()


def _grasp_by_finite_differences(net, X, y, T, eps=1e-3):
    """−W ∘ (H g) of ℒ_T = mean cross-entropy of softmax(logits / T), g and H by central finite
    differences of ℒ_T alone (float64; the network's forward pass, nothing else)."""
    from meanfield.nets import forward

    flat = np.concatenate([w.ravel() for w in net.weights])
    sizes = np.cumsum([0] + [w.size for w in net.weights])

    def loss(v):
        for k, w in enumerate(net.weights):
            w[...] = v[sizes[k]:sizes[k + 1]].reshape(w.shape)
        z = forward(net, X) / T
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(y.size), y]))

    n, e = flat.size, np.eye(flat.size) * eps
    g = np.array([(loss(flat + e[i]) - loss(flat - e[i])) / (2 * eps) for i in range(n)])
    H = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            H[i, j] = H[j, i] = (loss(flat + e[i] + e[j]) - loss(flat + e[i] - e[j])
                                 - loss(flat - e[i] + e[j]) + loss(flat - e[i] - e[j])) / (4 * eps ** 2)
    loss(flat)  # restore the weights
    s = -flat * (H @ g)
    return [s[sizes[k]:sizes[k + 1]].reshape(w.shape) for k, w in enumerate(net.weights)]


def test_grasp_temperature():
    import meanfield.nets.network as nw
    from meanfield.nets import init_network
    from meanfield.pruning import grasp_scores, hessian_vector_product, scores

    rng = np.random.default_rng(0)
    net = init_network("tanh", 4, 2, 1.5, 0.3, n_in=3, classes=3, rng=rng, dtype=np.float64)
    X, y = rng.standard_normal((6, 3)), np.array([0, 1, 2, 0, 1, 2])
    # T = 1 is the previous computation, bit for bit
    _, g, _ = nw.loss_and_grads(net, X, y)
    before = [-w * v for w, v in zip(net.weights, hessian_vector_product(net, X, y, g))]
    for a, b in zip(grasp_scores(net, X, y, 1.0), before):
        np.testing.assert_array_equal(a, b)
    # the default is the reference implementations' T = 200, in every function
    for a, b in zip(grasp_scores(net, X, y), grasp_scores(net, X, y, 200.0)):
        np.testing.assert_array_equal(a, b)
    # any T: the scores of the loss of the logits divided by T, by finite differences
    for T in (1.0, 5.0):
        exact = grasp_scores(net, X, y, T)
        fd = _grasp_by_finite_differences(net, X, y, T)
        scale = max(np.abs(a).max() for a in exact)
        for a, b in zip(exact, fd):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * scale)
    t200 = scores(net, X, y, "grasp", grasp_temperature=200.0)
    assert any(not np.allclose(a, -b) for a, b in zip(t200, before))
    df = train("tanh", "digits", method="grasp", sparsity=0.5, epochs=0, grasp_temperature=50.0,
               **_TINY)
    assert (df.grasp_temperature == 50.0).all()


_BAD_OPTIONS = [
    (dict(rescale="row"), ValueError,
     r"`rescale` == 'row': must be False, True \(= 'neuron'\), 'none', 'neuron', 'layer' or 'data'"),
    (dict(rescale=1), TypeError, r"`rescale` == 1"),
    (dict(rescale=None), TypeError, r"`rescale` == None"),
    (dict(shuffle_masks="yes"), TypeError, r"`shuffle_masks` == 'yes'"),
    (dict(shuffle_masks=1), TypeError, r"`shuffle_masks` == 1"),
    (dict(val_fraction=1.0), ValueError, r"`val_fraction` == 1.0: must be a number in \[0, 1\)"),
    (dict(val_fraction=-0.1), ValueError, r"`val_fraction` == -0.1"),
    (dict(val_fraction=float("nan")), ValueError, r"`val_fraction` == nan"),
    (dict(val_fraction="0.1"), TypeError, r"`val_fraction` == '0.1'"),
    (dict(val_fraction=1e-6), ValueError, r"`val_fraction` == 1e-06: leaves no validation"),
    (dict(grasp_temperature=0), ValueError, r"`grasp_temperature` == 0(\.0)?: must be .*> 0"),
    (dict(grasp_temperature=-1.0), ValueError, r"`grasp_temperature` == -1.0"),
    (dict(grasp_temperature=float("inf")), ValueError, r"`grasp_temperature` == inf"),
    (dict(grasp_temperature="200"), TypeError, r"`grasp_temperature` == '200'"),
    (dict(grasp_temperature=True), TypeError, r"`grasp_temperature` == True"),
]


@pytest.mark.parametrize("kw, exc, needle", _BAD_OPTIONS)
def test_bad_new_options(kw, exc, needle):
    from meanfield._validate import INPUT_ERRORS

    with pytest.raises(exc, match=needle) as info:
        train("tanh", "digits", width=8, depth=2, sigma_w=1.0, sigma_b=0.1, epochs=0, **kw)
    assert isinstance(info.value, INPUT_ERRORS)


def test_val_fraction_must_leave_every_class_a_training_example():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 4)).astype(np.float32)
    y = np.array([0] * 9 + [1] * 3)
    with pytest.raises(ValueError, match=r"`val_fraction` == 0.95: leaves class 1 \(3 examples\) no"):
        train("tanh", (X, y, X, y), width=8, depth=2, sigma_w=1.0, sigma_b=0.1, epochs=0,
              val_fraction=0.95)


# ------------------------------------------------------------------------------------------------
# The data-aware first layer (rescale="data") and the paired design of the seeds
# ------------------------------------------------------------------------------------------------

def test_rescale_data_restores_first_layer_variance_on_the_batch_exactly():
    from meanfield.nets import init_network
    from meanfield.pruning import first_layer_variance, global_masks, random_scores, rescale

    rng = np.random.default_rng(3)
    net = init_network("tanh", 10, 3, 1.4, 0.1, n_in=9, classes=3, rng=rng, dtype=np.float64)
    # pixels with very different scales, one constant on the batch (like MNIST's border)
    X = rng.standard_normal((40, 9)) * np.array([0.1, 0.5, 1, 2, 4, 1, 1, 3, 1.0])
    X[:, 5] = 0.7
    masks = global_masks(random_scores(net, rng), 0.6)
    masks[0][1] = 0.0  # neuron 1 keeps nothing
    masks[0][2] = 0.0
    masks[0][2, 5] = 1.0  # neuron 2 keeps only the constant pixel: the data say nothing
    data = rescale(net, masks, "data", X=X)
    neuron = rescale(net, masks, "neuron")
    W, Wd, Wn = net.weights[0], data.weights[0], neuron.weights[0]
    # the definition, by hand: Var over the batch of the linear pre-activation
    Xc = X - X.mean(axis=0)
    v_dense = ((Xc @ W.T) ** 2).mean(axis=0)
    v_data = ((Xc @ Wd.T) ** 2).mean(axis=0)
    np.testing.assert_allclose(first_layer_variance(W, X), v_dense, rtol=1e-12)
    live = [i for i in range(10) if i not in (1, 2)]
    np.testing.assert_allclose(v_data[live], v_dense[live], rtol=1e-12)  # restored exactly
    # the norm factor does not restore it (the inputs are not exchangeable)
    v_neuron = ((Xc @ Wn.T) ** 2).mean(axis=0)
    assert np.max(np.abs(v_neuron[live] / v_dense[live] - 1)) > 0.1
    assert np.all(Wd[1] == 0.0)  # 0/0 guarded: nothing kept, nothing to scale
    np.testing.assert_array_equal(Wd[2], Wn[2])  # zero variance kept: the norm factor
    assert np.isfinite(Wd).all()
    for a, b in zip(data.weights[1:], neuron.weights[1:]):  # above the first layer: per neuron
        np.testing.assert_array_equal(a, b)


def test_rescale_data_in_train_uses_the_scoring_batch():
    from meanfield.pruning import first_layer_variance
    from meanfield.training.trainer import scoring_batch

    kw = dict(method="snip", sparsity=0.8, epochs=0, seed=2, return_network=True, **_TINY)
    _, dense, _ = train("tanh", "digits", **{**kw, "method": "none", "sparsity": 0.0})
    _, net, masks = train("tanh", "digits", rescale="data", **kw)
    X_train = mf.load_dataset("digits")[0]
    Xb = X_train[scoring_batch(X_train.shape[0], 128, 2)]
    ok = first_layer_variance(net.weights[0], Xb) > 0
    assert ok.sum() >= 8
    np.testing.assert_allclose(first_layer_variance(net.weights[0], Xb)[ok],
                               first_layer_variance(dense.weights[0], Xb)[ok], rtol=1e-4)


def test_rescale_data_bad_inputs():
    from meanfield._validate import InputError
    from meanfield.nets import init_network
    from meanfield.pruning import rescale

    net = init_network("tanh", 4, 2, 1.0, 0.1, n_in=3, rng=np.random.default_rng(0))
    masks = [np.ones_like(w) for w in net.weights]
    with pytest.raises(InputError, match=r"`X` == None with `mode` == 'data'"):
        rescale(net, masks, "data")
    with pytest.raises(InputError, match=r"`X` of shape \(5, 4\): must be \(B, 3\)"):
        rescale(net, masks, "data", X=np.ones((5, 4)))
    with pytest.raises(InputError, match=r"`mode` == 'pixel': must be one of 'neuron', 'layer', 'data'"):
        rescale(net, masks, "pixel")


def test_a_seed_fixes_weights_scoring_batch_and_minibatches_for_every_arm(monkeypatch):
    # the paired design: arms of one seed differ only by what the arm changes
    from meanfield.training import _sgd

    seen = []
    step = _sgd.DataParallelSGD.step

    def record(self, X, y):
        seen[-1].append(y.copy())
        return step(self, X, y)

    monkeypatch.setattr(_sgd.DataParallelSGD, "step", record)
    arms = [dict(method="none", sparsity=0.0), dict(method="snip", sparsity=0.7),
            dict(method="random", sparsity=0.7, rescale=True, shuffle_masks=True),
            dict(method="synflow", sparsity=0.9, rescale="data", lr=0.05)]
    nets = []
    for arm in arms:
        seen.append([])
        _, net, masks = train("tanh", "digits", epochs=2, batch=256, seed=7, val_fraction=0.1,
                              return_network=True, **{**_TINY, **arm})
        nets.append((net, masks))
    for other in seen[1:]:
        assert len(other) == len(seen[0])
        for a, b in zip(seen[0], other):
            np.testing.assert_array_equal(a, b)
    # the same initial weights: an un-rescaled pruned net at epoch 0 is the dense one masked
    _, dense, _ = train("tanh", "digits", epochs=0, seed=7, val_fraction=0.1, return_network=True,
                        **_TINY)
    _, pruned, masks = train("tanh", "digits", epochs=0, seed=7, val_fraction=0.1,
                             method="random", sparsity=0.7, return_network=True, **_TINY)
    for w0, w, m in zip(dense.weights, pruned.weights, masks):
        np.testing.assert_array_equal(w, w0 * m)
