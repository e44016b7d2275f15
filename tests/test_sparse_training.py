"""Sparse training: a pruned layer held as its kept weights gives the dense-masked answers (up to
the order of float32 sums), keeps its pruned weights at exactly zero, is bit-identical for any
thread count, and the history reports what an epoch kept and computed."""

import numpy as np
import pytest

from meanfield import load_dataset
from meanfield._validate import InputError, InputTypeError
from meanfield.activations import get_activation
from meanfield.nets import init_network
from meanfield.nets._layer import phi_of
from meanfield.pruning import global_masks, scores
from meanfield.training import train
from meanfield.training._sgd import DataParallelSGD
from meanfield.training._sparse import SPARSE_MAX_DENSITY, SparseLayer, _activate


def test_sparse_layer_indexes_the_kept_weights_by_row_and_by_column():
    rng = np.random.default_rng(0)
    mask = rng.random((5, 7)) < 0.4
    mask[2] = False  # an empty row and an empty column
    mask[:, 3] = False
    W = rng.standard_normal((5, 7))
    sl = SparseLayer(mask)
    v = sl.gather(W)
    assert sl.nnz == mask.sum() == v.size
    for i in range(5):
        cols = sl.indices[sl.indptr[i]:sl.indptr[i + 1]]
        assert list(cols) == list(np.flatnonzero(mask[i]))
        assert np.array_equal(v[sl.indptr[i]:sl.indptr[i + 1]], W[i, cols])
    for j in range(7):
        q = slice(sl.colptr[j], sl.colptr[j + 1])
        assert list(sl.rows[q]) == list(np.flatnonzero(mask[:, j]))
        assert np.array_equal(v[sl.perm[q]], W[mask[:, j], j])
    out = np.full_like(W, 9.0)
    sl.scatter(v, out)
    assert np.array_equal(out, W * mask)


def _pruned(arch, act, seed=0):
    rng = np.random.default_rng(seed)
    net = init_network(act, 12, 3, 1.3, 0.2, n_in=7, classes=4, arch=arch, rng=rng,
                       dtype=np.float64)
    X, y = rng.standard_normal((130, 7)), rng.integers(4, size=130)
    masks = global_masks(scores(net, X, y, "snip"), 0.6)
    for w, m in zip(net.weights, masks):
        w *= m
    return net, masks, X, y


@pytest.mark.parametrize("arch,act", [("ffnn", "tanh"), ("stable_resnet", "tanh"),
                                      ("resnet", "relu"), ("ffnn", "erf")])
def test_sparse_steps_match_dense_masked_steps(arch, act):
    # every layer sparse: the packed pass (one compiled call per shard)
    # float64, so that the two summation orders agree to ~1e-15 relative: three steps of 4
    # shards (130 examples: uneven shards) must then agree to 1e-12, which the wrong gradient,
    # mask or update in any layer would miss by many orders of magnitude
    nets, logits = [], []
    for sparse in (False, True):
        net, masks, X, y = _pruned(arch, act)
        with DataParallelSGD(net, masks, 256, 0.1, 0.9, 0.01, threads=2, sparse=sparse) as sgd:
            assert all((sl is not None) == sparse for sl in sgd.layers)
            assert (sgd.packed is not None) == sparse
            for _ in range(3):
                sgd.step(X, y)
            logits.append(sgd.logits(X))
            sgd.sync()
        nets.append(net)
    moved = 0.0
    for a, b, w0 in zip(nets[0].weights + nets[0].biases, nets[1].weights + nets[1].biases,
                        _pruned(arch, act)[0].weights + _pruned(arch, act)[0].biases):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-12)
        moved = max(moved, np.abs(a - w0).max())
    assert moved > 1e-3  # the steps did move the weights
    np.testing.assert_allclose(logits[1], logits[0], rtol=0, atol=1e-12)
    for w, m in zip(nets[1].weights, masks):
        assert np.all(w[~m] == 0.0)


def test_a_network_with_dense_and_sparse_layers_matches_dense_masked_steps():
    # a layer kept too dense for "auto" runs through BLAS beside the sparse ones, layer by layer
    # (not packed); the same float64 tolerance as above
    nets = []
    for sparse in (False, "auto"):
        net, masks, X, y = _pruned("stable_resnet", "tanh")
        masks[1] = np.ones_like(masks[1])
        rng = np.random.default_rng(5)
        masks[2] = rng.random(masks[2].shape) < 0.15
        for w, m in zip(net.weights, masks):
            w *= m
        with DataParallelSGD(net, masks, 256, 0.1, 0.9, 0.01, threads=2, sparse=sparse) as sgd:
            assert (sgd.packed is None) and any(sl is None for sl in sgd.layers)
            assert any(sl is not None for sl in sgd.layers) == (sparse == "auto")
            for _ in range(3):
                sgd.step(X, y)
            sgd.sync()
        nets.append(net)
    for a, b in zip(nets[0].weights + nets[0].biases, nets[1].weights + nets[1].biases):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-12)


def test_float32_tanh_of_the_packed_pass_is_within_4_epsilon():
    # the packed pass's float32 tanh is a rational approximation (vectorised): measured within
    # 2.97 float32 epsilons (2^-23) of tanh, relative, where np.tanh is within 0.91; the two
    # paths differ by float32 rounding either way
    x = np.concatenate([np.linspace(-12, 12, 200000), np.geomspace(1e-30, 1, 2000), [20.0, 1e4]])
    x = np.concatenate([x, -x]).astype(np.float32)
    out = np.empty_like(x)
    tanh = phi_of(get_activation("tanh"), np.float32)
    _activate(x, out, tanh, True)
    exact = np.tanh(x.astype(np.float64))
    assert np.all(np.abs(out - exact) <= 4 * 2.0**-23 * np.abs(exact))
    assert np.all(np.abs(out) <= 1)
    _activate(np.zeros(3, np.float32), out[:3], tanh, True)
    assert np.all(out[:3] == 0)


def test_auto_runs_sparse_the_layers_kept_sparse_enough():
    net, _, _, _ = _pruned("ffnn", "tanh")
    rng = np.random.default_rng(1)
    dens = [0.1, SPARSE_MAX_DENSITY + 0.2, 0.05, 0.9]
    masks = [rng.random(w.shape) < d for w, d in zip(net.weights, dens)]
    with DataParallelSGD(net, masks, 128, 0.1, 0.9, 0.0, sparse="auto") as sgd:
        assert [sl is not None for sl in sgd.layers] == [
            m.mean() <= SPARSE_MAX_DENSITY for m in masks]
        assert [sl is not None for sl in sgd.layers] == [True, False, True, False]
    with DataParallelSGD(net, None, 128, 0.1, 0.9, 0.0, sparse=True) as sgd:
        assert not sgd.sparse  # nothing pruned: nothing to compress


KW = dict(width=32, depth=3, sigma_w="eoc", sigma_b=0.3, method="snip", sparsity=0.8, epochs=3,
          seed=2)


def test_sparse_history_matches_dense_masked_and_keeps_pruned_weights_zero():
    dense = train("tanh", "digits", sparse=False, **KW)
    sparse, net, masks = train("tanh", "digits", sparse=True, return_network=True, **KW)
    assert (dense.sparse_layers == 0).all() and (sparse.sparse_layers == 4).all()
    # float32: the two paths add the same products in different orders (BLAS's blocks against
    # the kept weights in column order), ~1e-7 relative per sum. Over 3 epochs of 12 steps
    # through 4 layers the losses were measured to differ by 3e-9 relative (the same
    # accuracies); 1e-5 leaves room for other BLAS builds and is far below what one wrong
    # gradient would change (~1e-2). An accuracy may move by an example whose logits tie to
    # rounding: at most 2 of them
    np.testing.assert_allclose(sparse.train_loss, dense.train_loss, rtol=1e-5)
    for col, n in (("train_accuracy", 1438), ("test_accuracy", 359)):
        np.testing.assert_allclose(sparse[col], dense[col], rtol=0, atol=2 / n)
    assert sparse.train_loss.iloc[-1] < 0.9 * sparse.train_loss.iloc[0]  # it trained
    for w, m in zip(net.weights, masks):
        assert np.all(w[~m.astype(bool)] == 0.0)
        assert np.any(w[m.astype(bool)] != 0.0)


def test_history_reports_kept_weights_and_the_flops_done():
    dense, _, masks = train("tanh", "digits", sparse=False, return_network=True, **KW)
    sparse = train("tanh", "digits", sparse=True, **KW)
    n_train = load_dataset("digits")[0].shape[0]
    kept = [int(m.sum()) for m in masks]
    sizes = [m.size for m in masks]
    assert (dense.kept_weights == sum(kept)).all() and (sparse.kept_weights == sum(kept)).all()
    assert sum(kept) == pytest.approx(0.2 * sum(sizes), abs=1)
    # forward + weight gradient (2 + 2 FLOPs per multiply-add), + input gradient above layer 0
    per_example = [4 * kept[0] + 6 * sum(kept[1:]), 4 * sizes[0] + 6 * sum(sizes[1:])]
    assert list(sparse.flops) == [0.0] + [per_example[0] * n_train] * 3
    assert list(dense.flops) == [0.0] + [per_example[1] * n_train] * 3


def test_bad_sparse_argument():
    kw = dict(width=8, depth=2, sigma_w=1.0, sigma_b=0.1, epochs=0)
    # errors a user can cause: the input family, which the command line reports as usage errors
    with pytest.raises(InputError, match=r"`sparse` == 'yes': must be 'auto', True or False"):
        train("tanh", "digits", sparse="yes", **kw)
    with pytest.raises(InputTypeError, match=r"`sparse` == 1 \(int\): must be 'auto', True or False"):
        train("tanh", "digits", sparse=1, **kw)
    with pytest.raises(InputTypeError, match=r"`sparse` == None"):
        train("tanh", "digits", sparse=None, **kw)
