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


def _case(k=3, h=5, seed=0, L=3, N=4, C0=2, B=6, dtype=np.float64):
    rng = np.random.default_rng(seed)
    net = init_conv_network("tanh", N, L, 1.6, 0.3, image_size=h, kernel_size=k, in_channels=C0,
                            classes=3, rng=rng, dtype=dtype)
    X = rng.standard_normal((B, C0, h, h)).astype(dtype)
    y = rng.integers(0, 3, B)
    return net, X, y


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


@pytest.mark.parametrize("k,h", [(3, 5), (1, 4), (5, 6)])
def test_gradients_against_finite_differences(k, h):
    """Central differences (step 1e-6, float64) for five weights of each layer: the first conv
    (input channels), a hidden conv, the last conv and the readout."""
    net, X, y = _case(k=k, h=h)
    _, grads = conv_loss_and_grads(net, X, y)
    rng = np.random.default_rng(1)
    for l, w in enumerate(net.weights):
        for _ in range(5):
            idx = tuple(int(rng.integers(0, n)) for n in w.shape)
            w0 = w[idx]
            w[idx] = w0 + 1e-6
            up = conv_loss_and_grads(net, X, y)[0]
            w[idx] = w0 - 1e-6
            down = conv_loss_and_grads(net, X, y)[0]
            w[idx] = w0
            assert grads[l][idx] == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-9)


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
    assert list(df.columns[-4:]) == ["image_size", "kernel_size", "trial", "s_cr"]
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


def test_cnn_monte_carlo_says_what_it_cannot_do_yet():
    import meanfield as mf
    from meanfield._validate import InputError

    for kw, words in ((dict(arch="conv_resnet"), "not yet"), (dict(arch="cnn", method="grasp"),
                                                               "so far"),
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
