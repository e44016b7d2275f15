"""Finite random CNNs (meanfield.nets.conv): the FFNN for k = 1 and h = 1, gradients against
finite differences for every kind of layer, and against torch's circular convolutions."""

import numpy as np
import pytest

from meanfield.nets import forward, init_network, loss_and_grads
from meanfield.nets.conv import (
    ConvNetwork,
    conv_forward,
    conv_loss_and_grads,
    conv_snip_scores,
    init_conv_network,
)


def _case(k=3, h=5, seed=0, L=3, N=4, C0=2, B=6, dtype=np.float64, arch="cnn", stages=1):
    rng = np.random.default_rng(seed)
    net = init_conv_network("tanh", N, L, 1.6, 0.3, image_size=h, kernel_size=k, in_channels=C0,
                            classes=3, rng=rng, dtype=dtype, arch=arch, stages=stages)
    X = rng.standard_normal((B, C0, h, h)).astype(dtype)
    y = rng.integers(0, 3, B)
    return net, X, y


def _differences(weights, f, step, per_layer, seed):
    """(layer, index, weight, (f(w + step) − f(w − step)) / 2 step) for ``per_layer`` random
    entries of each weight array, each put back after."""
    rng = np.random.default_rng(seed)
    for l, w in enumerate(weights):
        for _ in range(per_layer):
            idx = tuple(int(rng.integers(0, n)) for n in w.shape)
            w0 = w[idx]
            w[idx] = w0 + step
            up = f()
            w[idx] = w0 - step
            down = f()
            w[idx] = w0
            yield l, idx, w0, (up - down) / (2 * step)


def test_kernel_one_on_one_pixel_is_the_ffnn():
    rng = np.random.default_rng(2)
    dense = init_network("tanh", 7, 4, 1.4, 0.2, n_in=5, classes=3, dtype=np.float64, rng=rng)
    ws = [w[:, :, None, None] for w in dense.weights[:-1]] + [dense.weights[-1]]
    conv = ConvNetwork(ws, dense.biases, "tanh", 1)
    X = rng.standard_normal((9, 5))
    y = rng.integers(0, 3, 9)
    np.testing.assert_allclose(conv_forward(conv, X[:, :, None, None]), forward(dense, X),
                               rtol=1e-13, atol=1e-14)
    loss_c, g_c = conv_loss_and_grads(conv, X[:, :, None, None], y)
    loss_d, g_d, _ = loss_and_grads(dense, X, y)
    assert loss_c == pytest.approx(loss_d, rel=1e-13)
    for a, b in zip(g_c, g_d):
        np.testing.assert_allclose(a.reshape(b.shape), b, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("k,h,arch,stages", [(3, 5, "cnn", 1), (1, 4, "cnn", 1), (5, 6, "cnn", 1),
                                             (3, 4, "cnn", 2), (3, 4, "conv_resnet", 2),
                                             (3, 8, "conv_stable_resnet", 3)])
def test_gradients_against_finite_differences(k, h, arch, stages):
    """Central differences (step 1e-6, float64) for five weights of each layer: the first conv
    (input channels), hidden convs (stride 1 and 2), the 1 × 1 projections, the readout."""
    net, X, y = _case(k=k, h=h, arch=arch, stages=stages, L=4)
    _, grads = conv_loss_and_grads(net, X, y)
    for l, idx, _, diff in _differences(net.weights, lambda: conv_loss_and_grads(net, X, y)[0],
                                        1e-6, 5, 1):
        assert grads[l][idx] == pytest.approx(diff, rel=1e-5, abs=1e-9)


def test_float32_agrees_with_float64():
    n64, X, y = _case()
    n32 = ConvNetwork([w.astype(np.float32) for w in n64.weights],
                      [b.astype(np.float32) for b in n64.biases], "tanh", n64.image_size)
    for a, b in zip(conv_snip_scores(n32, X.astype(np.float32), y), conv_snip_scores(n64, X, y)):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-6 * np.abs(b).max())


def test_agrees_with_torch_circular_convolutions():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    net, X, y = _case(k=3, h=6, L=3)
    layers = []
    for w, b in zip(net.weights[:-1], net.biases[:-1]):
        conv = nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1, padding_mode="circular").double()
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w))
            conv.bias.copy_(torch.from_numpy(b))
        layers += [conv, nn.Tanh()]
    readout = nn.Linear(net.width, 3).double()
    with torch.no_grad():
        readout.weight.copy_(torch.from_numpy(net.weights[-1]))
        readout.bias.copy_(torch.from_numpy(net.biases[-1]))
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), readout)
    import meanfield.torch as mt

    ref = mt.scores(model, torch.from_numpy(X), torch.from_numpy(y), "snip")
    for a, b in zip(conv_snip_scores(net, X, y), ref.values()):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(conv_forward(net, X), model(torch.from_numpy(X)).detach().numpy(),
                               rtol=1e-12, atol=1e-13)


@pytest.mark.slow
def test_kernel_one_on_one_pixel_has_the_ffnn_s_critical_sparsity():
    """E[s_cr] of SNIP on CNNs with k = 1, h = 1 (400 independent draws) and on FFNNs of the same
    width and depth (400 others): the same law, so the means agree within 3 combined SE."""
    import meanfield as mf

    kw = dict(trials=400, batch=32, seed=11)
    conv = mf.simulate_critical_sparsity("tanh", 20, 6, 1.3956, 0.3, arch="cnn", image_size=1,
                                         kernel_size=1, **kw).s_cr
    dense = mf.simulate_critical_sparsity("tanh", 20, 6, 1.3956, 0.3, seed=12,
                                          **{k: v for k, v in kw.items() if k != "seed"}).s_cr
    se = np.hypot(conv.std(ddof=1), dense.std(ddof=1)) / np.sqrt(400)
    assert abs(conv.mean() - dense.mean()) < 3 * se


def test_cnn_monte_carlo_from_the_api_and_the_cli(tmp_path):
    import pandas as pd

    import meanfield as mf
    from meanfield.cli import main

    df = mf.simulate_critical_sparsity("tanh", 6, 3, 1.3, 0.2, arch="cnn", trials=3, batch=8,
                                       image_size=4)
    assert list(df.columns[-5:]) == ["image_size", "kernel_size", "stages", "trial", "s_cr"]
    assert ((df.s_cr > 0) & (df.s_cr < 1)).all()
    out = tmp_path / "scr.csv"
    main(["scr", "-a", "tanh", "--width", "6", "--depth", "3", "--sigma-w", "1.3", "--sigma-b",
          "0.2", "--trials", "3", "--batch", "8", "--arch", "cnn", "--image-size", "4",
          "--quiet", "--out", str(out)])
    np.testing.assert_array_equal(pd.read_csv(out).s_cr, df.s_cr)  # the same seed, the same draws
    kept = mf.kept_per_layer("tanh", 6, 3, 1.3, 0.2, 0.8, arch="cnn", trials=2, batch=8,
                             image_size=4)
    assert kept.layer.tolist() == [1, 2, 3, 4]
    dis = mf.simulate_critical_sparsity("tanh", 6, 3, 1.3, 0.2, arch="cnn", trials=3, batch=8,
                                        image_size=4, definition="disconnect")
    assert (dis.s_cr <= df.s_cr + 1e-12).all()  # a path crosses every layer: cut no later


def test_conv_monte_carlo_refuses_what_cannot_be_built():
    import meanfield as mf
    from meanfield._validate import InputError

    for kw, words in ((dict(arch="conv_resnet", stages=2, image_size=5), "multiple of 2"),
                      (dict(arch="cnn", stages=2, image_size=4), "depth >= 3"),
                      (dict(arch="cnn", kernel_size=2), "odd"),
                      (dict(arch=["ffnn", "cnn"]), "separately")):
        fn = mf.sweep_critical_sparsity if isinstance(kw.get("arch"), list) else \
            mf.simulate_critical_sparsity
        with pytest.raises(InputError, match=words):
            fn("tanh", 4, 2, 1.3, 0.2, trials=1, batch=4, **kw)


def test_masked_gradients_are_those_of_the_kept_weights():
    net, X, y = _case()
    rng = np.random.default_rng(5)
    masks = [rng.random(w.shape) < 0.6 for w in net.weights]
    loss, grads = conv_loss_and_grads(net, X, y, masks)
    pruned = ConvNetwork([w * m for w, m in zip(net.weights, masks)], net.biases, "tanh",
                         net.image_size)
    loss_p, grads_p = conv_loss_and_grads(pruned, X, y)
    assert loss == pytest.approx(loss_p, rel=1e-13)
    for g, gp, m in zip(grads, grads_p, masks):
        np.testing.assert_allclose(g, gp * m, rtol=1e-12, atol=1e-15)
        assert (g[~m] == 0).all()


def test_hessian_vector_product_against_differences_of_gradients():
    """H v against (g(W + εv) − g(W − εv)) / 2ε (ε = 2e-6, float64) on every layer kind: strided
    convs, projections, the readout. The difference's error is O(ε²): measured, it falls 100×
    from ε = 1e-4 to 1e-5 (to ≤ 4.4e-7 of the largest entry), so ≤ 2e-8 here."""
    from meanfield.nets.conv import conv_hessian_vector_product

    for arch in ("cnn", "conv_resnet", "conv_stable_resnet"):
        net, X, y = _case(h=4, L=4, arch=arch, stages=2)
        rng = np.random.default_rng(3)
        v = [rng.standard_normal(w.shape) for w in net.weights]
        hv = conv_hessian_vector_product(net, X, y, v)
        w0 = [w.copy() for w in net.weights]
        eps = 2e-6
        for w, a, d in zip(net.weights, w0, v):
            w[...] = a + eps * d
        up = conv_loss_and_grads(net, X, y)[1]
        for w, a, d in zip(net.weights, w0, v):
            w[...] = a - eps * d
        down = conv_loss_and_grads(net, X, y)[1]
        for a, u, d in zip(hv, up, down):
            ref = (u - d) / (2 * eps)
            np.testing.assert_allclose(a, ref, rtol=1e-6, atol=1e-7 * np.abs(ref).max())


@pytest.mark.parametrize("arch", ["resnet", "stable_resnet"])
def test_kernel_one_on_one_pixel_is_the_dense_resnet(arch):
    """k = 1, h = 1: the conv ResNet is the dense one, score for score, for all five methods."""
    from meanfield.pruning import scores, synflow_scores
    from meanfield.pruning.conv import conv_scores

    rng = np.random.default_rng(4)
    dense = init_network("tanh", 6, 4, 1.2, 0.2, n_in=6, classes=3, dtype=np.float64, rng=rng,
                         arch=arch)
    ws = [w[:, :, None, None] for w in dense.weights[:-1]] + [dense.weights[-1]]
    conv = ConvNetwork(ws, dense.biases, "tanh", 1, arch="conv_" + arch)
    X, y = rng.standard_normal((7, 6)), rng.integers(0, 3, 7)
    for method in ("snip", "grasp", "synflow", "magnitude"):
        a = conv_scores(conv, X[:, :, None, None], y, method, sparsity=0.9,
                        synflow_iterations=20)
        b = synflow_scores(dense, 0.9, 20) if method == "synflow" else scores(dense, X, y, method)
        for u, v in zip(a, b):
            np.testing.assert_allclose(u.reshape(v.shape), v, rtol=1e-10,
                                       atol=1e-13 * np.abs(v).max(), err_msg=method)


def test_synflow_scores_are_the_flow_of_the_linearised_conv_net():
    """One SynFlow round on a conv ResNet with a projection against ℛ of the conv net itself run
    linearised (identity activation, no biases, |W|, all-ones images): ℛ is linear in each
    weight, so a central difference of it is its derivative up to rounding."""
    from meanfield.pruning.scoring import iterate_synflow

    net, _, _ = _case(h=4, L=4, arch="conv_resnet", stages=2)
    absw = [np.abs(w) for w in net.weights]
    lin = ConvNetwork(absw, [None if b is None else 0 * b for b in net.biases], "linear",
                      net.image_size, arch=net.arch, stages=net.stages)
    ones = np.ones((1, net.in_channels, net.image_size, net.image_size))

    def flow():
        return conv_forward(lin, ones).sum()

    R = flow()
    sc = iterate_synflow(net, 0.0, 1)
    for l, idx, w0, diff in _differences(lin.weights, flow, 1e-3, 4, 6):
        assert sc[l][idx] == pytest.approx(w0 * diff / R, rel=1e-7)


def test_disconnect_runs_through_projections_and_skips():
    """A block whose conv is empty is crossed by its skip (identity or projection); an empty
    projection with an empty conv cuts every path; the "layer" event sees any empty array."""
    from meanfield.pruning.conv import conv_mask_event

    net, _, _ = _case(h=4, L=4, arch="conv_resnet", stages=2)
    names = [l.name for l in net.layers]
    assert names == ["conv1", "conv2", "conv3", "conv4", "shortcut4", "readout"]
    full = [np.ones(w.shape, bool) for w in net.weights]

    def cut(*which):
        return [np.zeros_like(m) if names[i] in which else m for i, m in enumerate(full)]

    assert not conv_mask_event(net, cut("conv2", "conv3", "conv4"), "disconnect")
    assert conv_mask_event(net, cut("conv2", "conv3", "conv4"), "layer")
    assert conv_mask_event(net, cut("conv4", "shortcut4"), "disconnect")
    assert not conv_mask_event(net, cut("shortcut4"), "disconnect")
    assert conv_mask_event(net, cut("conv1"), "disconnect")
    cnn, _, _ = _case(h=4, L=4, arch="cnn", stages=2)
    assert conv_mask_event(cnn, [np.zeros_like(m) if i == 3 else m for i, m in
                                 enumerate(np.ones(w.shape, bool) for w in cnn.weights)],
                           "disconnect")


def test_conv_resnet_monte_carlo_lists_its_shortcuts():
    import meanfield as mf

    kept = mf.kept_per_layer("tanh", 4, 4, 1.3, 0.2, 0.8, arch="conv_resnet", stages=2,
                             trials=2, batch=4, image_size=4, method="grasp")
    assert kept.layer_name.tolist() == ["conv1", "conv2", "conv3", "conv4", "shortcut4",
                                        "readout"]
    assert kept.layer.tolist() == [1, 2, 3, 4, 5, 6]
    for method in ("snip", "grasp", "synflow", "magnitude", "random"):
        for definition in ("layer", "disconnect"):
            df = mf.simulate_critical_sparsity("tanh", 4, 4, 1.3, 0.2, arch="conv_stable_resnet",
                                               stages=2, trials=2, batch=4, image_size=4,
                                               method=method, definition=definition)
            assert ((df.s_cr > 0) & (df.s_cr <= 1)).all(), (method, definition)


def test_conv_resnet_scores_agree_with_torch():
    """The conv ResNet with a stage (stride-2 conv, 1 × 1 projection) built in torch, scored by
    meanfield.torch (autograd, double backward, SynFlow on the model itself): every method."""
    torch = pytest.importorskip("torch")
    import meanfield.torch as mt
    from meanfield.pruning.conv import conv_scores

    nn = torch.nn
    net, X, y = _case(h=4, L=4, arch="conv_resnet", stages=2)

    def conv(l, pad=1):
        w, b = net.weights[l], net.biases[l]
        c = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], stride=net.layers[l].stride,
                      padding=pad, padding_mode="circular", bias=b is not None).double()
        with torch.no_grad():
            c.weight.copy_(torch.from_numpy(w))
            if b is not None:
                c.bias.copy_(torch.from_numpy(b))
        return c

    class Block(nn.Module):
        def __init__(self, l, proj):
            super().__init__()
            self.conv = conv(l)
            self.proj = conv(l + 1, pad=0) if proj else None

        def forward(self, y):
            skip = y if self.proj is None else self.proj(y)
            return skip + net.alpha * self.conv(torch.tanh(y))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = conv(0)
            self.blocks = nn.Sequential(Block(1, False), Block(2, False), Block(3, True))
            self.readout = nn.Linear(net.weights[-1].shape[1], 3).double()
            with torch.no_grad():
                self.readout.weight.copy_(torch.from_numpy(net.weights[-1]))
                self.readout.bias.copy_(torch.from_numpy(net.biases[-1]))

        def forward(self, x):
            return self.readout(torch.tanh(self.blocks(self.stem(x))).mean(dim=(2, 3)))

    model = Model()
    np.testing.assert_allclose(conv_forward(net, X), model(torch.from_numpy(X)).detach().numpy(),
                               rtol=1e-12, atol=1e-13)
    for method in ("snip", "grasp", "synflow"):
        ref = mt.scores(model, torch.from_numpy(X), torch.from_numpy(y), method, sparsity=0.8,
                        synflow_iterations=10)
        ours = conv_scores(net, X, y, method, sparsity=0.8, synflow_iterations=10)
        for a, b in zip(ours, ref.values()):
            b = b.numpy().reshape(a.shape)
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12 * np.abs(b).max(),
                                       err_msg=method)


def test_reused_buffers_give_the_same_results():
    """The pass keeps its big arrays in per-thread buffers reused from call to call: a pass of
    another shape (another stage layout, dtype, batch) in between changes nothing, and what a
    call returned is not overwritten by the next (no buffer leaves the pass)."""
    net, X, y = _case(h=4, L=4, arch="conv_resnet", stages=2, dtype=np.float32)
    first = conv_loss_and_grads(net, X, y)
    kept = [g.copy() for g in first[1]]
    logits = conv_forward(net, X)
    other, Xo, yo = _case(k=5, h=8, L=5, N=6, B=3, arch="conv_stable_resnet", stages=3)
    conv_loss_and_grads(other, Xo, yo)
    conv_forward(other, Xo)
    again = conv_loss_and_grads(net, X, y)
    assert first[0] == again[0]
    for a, b, c in zip(first[1], again[1], kept):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(logits, conv_forward(net, X))
