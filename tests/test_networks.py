"""Finite random networks (meanfield.nets): initialisation, sampler, forward, gradients."""

import math

import numpy as np
import pytest
from scipy import stats

from meanfield.activations import get_activation
from meanfield.nets import Network, forward, init_network, loss_and_grads, standard_normal
from meanfield.nets._sampler import _ziggurat

ARCHS = ["ffnn", "resnet", "stable_resnet"]


def tiny(arch, activation="tanh", seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    net = init_network(activation, 4, 3, 1.6, 0.4, n_in=3, classes=3, arch=arch, rng=rng,
                       dtype=dtype)
    X = rng.standard_normal((5, 3))
    y = np.array([0, 2, 1, 2, 0])
    return net, X, y


def reference_forward(net, X, masks=None):
    """The formulas of docs/theory.md §1, written out independently in float64."""
    phi = get_activation(net.activation)
    W = [np.asarray(w, np.float64) for w in net.weights]
    if masks is not None:
        W = [w * m for w, m in zip(W, masks)]
    b = [np.asarray(c, np.float64) for c in net.biases]
    L = net.depth
    alpha = 1.0 / math.sqrt(L) if net.arch == "stable_resnet" else 1.0
    y = X @ W[0].T + b[0]
    for l in range(1, L):
        branch = phi(y) @ W[l].T + b[l]
        y = branch if net.arch == "ffnn" else y + alpha * branch
    return phi(y) @ W[L].T + b[L]


def reference_loss(net, X, y, masks=None):
    z = reference_forward(net, X, masks)
    z = z - z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))


# ------------------------------------------------------------------------------------------------
# Initialisation and the sampler
# ------------------------------------------------------------------------------------------------

def test_init_shapes_dtypes_and_statistics():
    net = init_network("tanh", 300, 3, 1.5, 0.4, n_in=200, classes=7,
                       rng=np.random.default_rng(1))
    assert [w.shape for w in net.weights] == [(300, 200), (300, 300), (300, 300), (7, 300)]
    assert [b.shape for b in net.biases] == [(300,), (300,), (300,), (7,)]
    assert net.dtype == np.float32 and all(w.dtype == np.float32 for w in net.weights)
    assert (net.width, net.n_in, net.classes, net.depth) == (300, 200, 7, 3)
    assert net.n_weights == 300 * 200 + 2 * 300 * 300 + 7 * 300
    # W ~ N(0, σ_w²/fan_in): the sample variance of 60000 draws is within 2% (≈ 5 SE).
    assert net.weights[0].var() * 200 == pytest.approx(1.5 ** 2, rel=0.02)
    assert net.weights[1].var() * 300 == pytest.approx(1.5 ** 2, rel=0.02)
    allb = np.concatenate(net.biases)
    assert allb.var() == pytest.approx(0.4 ** 2, rel=0.15)


def test_init_reproducible_and_float64_is_float32_refined():
    a = init_network("tanh", 20, 4, 1.3, 0.2, rng=np.random.default_rng(7))
    b = init_network("tanh", 20, 4, 1.3, 0.2, rng=np.random.default_rng(7))
    c = init_network("tanh", 20, 4, 1.3, 0.2, rng=np.random.default_rng(7), dtype=np.float64)
    for wa, wb, wc in zip(a.weights + a.biases, b.weights + b.biases, c.weights + c.biases):
        assert np.array_equal(wa, wb)
        assert wc.dtype == np.float64
        assert np.array_equal(wc.astype(np.float32), wa)  # same draws, rounded once


def test_standard_normal_distribution():
    z = standard_normal(np.random.default_rng(11), (2_000_000,), np.float64)
    n = z.size
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    assert stats.kstest(z[:500_000], "norm").pvalue > 1e-3
    # the tails go through the slow paths of the ziggurat (wedges and the x > r tail)
    for a in (2.0, 3.0, 3.7):
        p = 2 * stats.norm.sf(a)
        assert abs((np.abs(z) > a).mean() - p) < 5 * math.sqrt(p / n)


def test_standard_normal_reproducible_and_float32():
    a = standard_normal(np.random.default_rng(3), (4, 5), np.float32)
    b = standard_normal(np.random.default_rng(3), (4, 5), np.float32)
    c = standard_normal(np.random.default_rng(3), (4, 5), np.float64)
    assert a.dtype == np.float32 and np.array_equal(a, b) and np.array_equal(c, a)


def test_ziggurat_resumes_when_extra_words_run_out():
    """Running out of extra words mid-segment and resuming gives the one-shot result."""
    rng = np.random.default_rng(5)
    n = 20_000
    words = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True).view(np.uint32)
    first, extra = words[:n], words[n:]
    stops, scales = np.array([5_000, 12_000, n]), np.array([1.0, 2.0, 0.5])
    rejected = np.empty(n, np.int64)
    ref = np.empty(n)
    assert _ziggurat(first, extra, 0, ref, stops, scales, 0, rejected)[0] == 3
    out = np.empty(n)
    seg, pos = _ziggurat(first, extra[:40], 0, out, stops, scales, 0, rejected)
    assert seg < 3
    rest = extra[:40][pos:]
    seg, pos = _ziggurat(first, np.concatenate((rest, extra[40:])), 0, out, stops, scales, seg,
                         rejected)
    assert seg == 3 and np.array_equal(out, ref)


# ------------------------------------------------------------------------------------------------
# Forward pass
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("activation", ["tanh", "elu", "relu"])
def test_forward_matches_the_formulas(arch, activation):
    net, X, _ = tiny(arch, activation)
    np.testing.assert_allclose(forward(net, X), reference_forward(net, X), rtol=1e-12,
                               atol=1e-12)
    net32 = init_network(activation, 30, 5, 1.4, 0.3, arch=arch, rng=np.random.default_rng(2))
    X32 = np.random.default_rng(3).standard_normal((16, 30))
    out = forward(net32, X32)
    assert out.dtype == np.float32 and out.shape == (16, 10)
    np.testing.assert_allclose(out, reference_forward(net32, X32), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_masked_weights_have_no_effect(arch):
    net, X, _ = tiny(arch)
    rng = np.random.default_rng(4)
    masks = [rng.random(w.shape) < 0.6 for w in net.weights]
    before = forward(net, X, masks)
    for w, m in zip(net.weights, masks):
        w[~m] = rng.standard_normal(int((~m).sum())) * 100.0
    assert np.array_equal(forward(net, X, masks), before)
    np.testing.assert_allclose(before, reference_forward(net, X, masks), rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# Gradients
# ------------------------------------------------------------------------------------------------

def fd_grads(net, X, y, masks=None, h=1e-6):
    """Central finite differences of the reference loss, entry by entry (float64)."""
    out = []
    for params in (net.weights, net.biases):
        grads = []
        for p in params:
            g = np.empty(p.shape)
            for idx in np.ndindex(p.shape):
                old = p[idx]
                p[idx] = old + h
                up = reference_loss(net, X, y, masks)
                p[idx] = old - h
                down = reference_loss(net, X, y, masks)
                p[idx] = old
                g[idx] = (up - down) / (2 * h)
            grads.append(g)
        out.append(grads)
    return out


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("activation", ["tanh", "silu"])
def test_gradients_match_finite_differences(arch, activation):
    net, X, y = tiny(arch, activation)
    loss, gw, gb = loss_and_grads(net, X, y)
    assert loss == pytest.approx(reference_loss(net, X, y), rel=1e-13)
    fw, fb = fd_grads(net, X, y)
    for a, b in zip(gw + gb, fw + fb):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("arch", ARCHS)
def test_masked_gradients(arch):
    net, X, y = tiny(arch)
    rng = np.random.default_rng(9)
    masks = [(rng.random(w.shape) < 0.7).astype(np.int64) for w in net.weights]
    _, gw, gb = loss_and_grads(net, X, y, masks)
    fw, fb = fd_grads(net, X, y, masks)
    for a, b, m in zip(gw, fw, masks):
        assert np.all(a[m == 0] == 0)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    for a, b in zip(gb, fb):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_float32_gradients_close_to_float64():
    rng = np.random.default_rng(12)
    net32 = init_network("tanh", 40, 6, 1.2, 0.2, rng=rng)
    net64 = Network([w.astype(np.float64) for w in net32.weights],
                    [b.astype(np.float64) for b in net32.biases], net32.activation, "ffnn", 6)
    X, y = rng.standard_normal((32, 40)), rng.integers(10, size=32)
    l32, g32, _ = loss_and_grads(net32, X, y)
    l64, g64, _ = loss_and_grads(net64, X, y)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for a, b in zip(g32, g64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * np.abs(b).max())


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(width=0), ValueError, r"`width` == 0: must be an integer >= 1"),
    (dict(depth=2.5), TypeError, r"`depth` == 2\.5"),
    (dict(sigma_w=-1.0), ValueError, r"`sigma_w` == -1\.0: must be > 0"),
    (dict(sigma_b=math.nan), ValueError, r"`sigma_b` == nan"),
    (dict(sigma_w=[1.0, 2.0]), ValueError, r"`sigma_w` == \[1\.0, 2\.0\]: must be a scalar"),
    (dict(classes=1), ValueError, r"`classes` == 1: must be an integer >= 2"),
    (dict(n_in=0), ValueError, r"`n_in` == 0"),
    (dict(arch="cnn"), ValueError, r"`arch` == 'cnn': must be one of"),
    (dict(rng=42), TypeError, r"`rng` == 42: must be a numpy.random.Generator"),
    (dict(dtype=np.int32), TypeError, r"`dtype` == .*int32.*: must be numpy.float32"),
    (dict(activation="nope"), ValueError, r"`activation` == 'nope'"),
])
def test_init_bad_input(kwargs, exc, match):
    args = dict(activation="tanh", width=4, depth=2, sigma_w=1.0, sigma_b=0.1,
                rng=np.random.default_rng(0))
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        init_network(args.pop("activation"), args.pop("width"), args.pop("depth"),
                     args.pop("sigma_w"), args.pop("sigma_b"), **args)


def test_pass_bad_input():
    net, X, y = tiny("ffnn")
    with pytest.raises(ValueError, match=r"`X` has shape \(5, 4\): must be \(batch, 3\)"):
        forward(net, np.ones((5, 4)))
    with pytest.raises(TypeError, match=r"`net` == list"):
        forward([1], X)
    with pytest.raises(ValueError, match=r"`y` holds 3 \(values in \[0, 3\]\): must be integers "
                       r"in \[0, 3\)"):
        loss_and_grads(net, X, [0, 1, 2, 3, 0])
    with pytest.raises(ValueError, match=r"`y` has shape \(2,\): must be \(5,\)"):
        loss_and_grads(net, X, [0, 1])
    with pytest.raises(ValueError, match=r"`masks` has 2 arrays: must have 4"):
        forward(net, X, [np.ones((4, 3))] * 2)
    with pytest.raises(ValueError, match=r"`masks\[1\]` has shape \(3, 3\): must be \(4, 4\)"):
        forward(net, X, [np.ones((4, 3)), np.ones((3, 3)), np.ones((4, 4)), np.ones((3, 4))])


def test_network_by_hand_and_its_checks():
    rng = np.random.default_rng(0)
    W = [rng.standard_normal((4, 3)), rng.standard_normal((4, 4)), rng.standard_normal((2, 4))]
    b = [np.zeros(4), np.zeros(4), np.zeros(2)]
    net = Network(W, b, "tanh")
    assert net.depth == 2 and net.activation is get_activation("tanh") and net.arch == "ffnn"
    assert forward(net, np.ones((1, 3))).shape == (1, 2)
    with pytest.raises(ValueError, match=r"`net` layer 1: weights \(4, 5\)"):
        forward(Network([W[0], np.ones((4, 5)), W[2]], b, "tanh"), np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"`net` has depth 2, 3 weight matrices and 2 bias"):
        forward(Network(W, b[:2], "tanh"), np.ones((1, 3)))
    with pytest.raises(TypeError, match=r"`net` has dtype float16"):
        forward(Network([w.astype(np.float16) for w in W], b, "tanh"), np.ones((1, 3)))
