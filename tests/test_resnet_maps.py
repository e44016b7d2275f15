"""The ResNet mean-field maps (``arch="resnet"`` / ``"stable_resnet"``) against wide random ResNets
(Monte Carlo, tolerances from the standard error over seeds), against ReLU's closed forms, and the
Stable ResNet's bounded variance as a property; ``arch="ffnn"`` is the old behaviour, bit for bit."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import meanfield as mf
from meanfield.nets import forward, init_network

RESNETS = ("resnet", "stable_resnet")


# --- Monte Carlo: wide random ResNets --------------------------------------------------------

def _two_inputs(n, rho, rng):
    """x_a, x_b in R^n with ‖x‖²/n = 1 exactly and x_a·x_b/n = rho exactly."""
    g = rng.standard_normal((2, n))
    e1 = g[0] / np.linalg.norm(g[0])
    e2 = g[1] - (g[1] @ e1) * e1
    e2 /= np.linalg.norm(e2)
    xa = math.sqrt(n) * e1
    xb = math.sqrt(n) * (rho * e1 + math.sqrt(1 - rho * rho) * e2)
    return np.stack([xa, xb])


def _layers_by_hand(net, X):
    """y¹ … y^L and the logits of ``net`` for the rows of X, written out from the definition
    (y¹ = W¹x + B¹, y^l = y^{l−1} + α (W^l φ(y^{l−1}) + B^l), logits W^out φ(y^L) + B^out)."""
    phi = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0)}[net.activation.name]
    L = net.depth
    alpha = 1.0 if net.arch == "resnet" else 1.0 / math.sqrt(L)
    ys = [X @ net.weights[0].T + net.biases[0]]
    for k in range(1, L):
        ys.append(ys[-1] + alpha * (phi(ys[-1]) @ net.weights[k].T + net.biases[k]))
    ys.append(phi(ys[-1]) @ net.weights[L].T + net.biases[L])
    return ys


def _mc(activation, arch, sw, sb, width, depth, rho, seeds):
    """Per seed and per row of :func:`propagate` (y¹ … y^L, logits): the empirical q (mean over
    units and the two inputs) and c = Σ̂_ab / √(q̂_a q̂_b)."""
    qs, cs = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        net = init_network(activation, width, depth, sw, sb, classes=width // 2, arch=arch,
                           rng=rng, dtype=np.float64)
        X = _two_inputs(width, rho, rng)
        ys = _layers_by_hand(net, X)
        # the hand-written layers are the library's network
        np.testing.assert_allclose(ys[-1], forward(net, X), rtol=1e-9, atol=1e-9)
        qa = np.array([np.mean(y[0] ** 2) for y in ys])
        qb = np.array([np.mean(y[1] ** 2) for y in ys])
        cov = np.array([np.mean(y[0] * y[1]) for y in ys])
        qs.append(0.5 * (qa + qb))
        cs.append(cov / np.sqrt(qa * qb))
    return np.array(qs), np.array(cs)


@pytest.mark.parametrize("activation,sw,sb", [("tanh", 1.5, 0.3), ("relu", 1.0, 0.2)])
@pytest.mark.parametrize("arch", RESNETS)
def test_propagate_matches_wide_random_resnets(activation, sw, sb, arch):
    width, depth, rho, seeds = 800, 8, 0.3, range(12)
    q_mc, c_mc = _mc(activation, arch, sw, sb, width, depth, rho, seeds)
    q1 = sb * sb + sw * sw          # ‖x‖²/N₀ = 1
    c1 = (sb * sb + sw * sw * rho) / q1
    q, c = mf.propagate(activation, q1, c1, sw, sb, depth, arch=arch)
    n = len(seeds)
    for est, pred, name in ((q_mc, q, "q"), (c_mc, c, "c")):
        mean = est.mean(axis=0)
        se = est.std(axis=0, ddof=1) / math.sqrt(n)
        # 5 SE (a t-statistic with 11 degrees of freedom beyond 5 has p ≈ 4e-4), plus the O(1/N)
        # bias of finite width (Jensen on the random layer variances), allowed as 3/N relative
        tol = 5.0 * se + 3.0 / width * np.abs(pred)
        assert np.all(np.abs(mean - pred) <= tol), (name, mean, pred, se)
    # the maps say something: the stable net's last hidden q differs from the plain one's
    assert q[depth - 1] > q[0]


def test_stable_and_plain_resnets_differ_in_the_mc_as_predicted():
    # the same draws (seed by seed) in both architectures: the 1/√L scale visibly lowers q^L
    width, depth = 800, 8
    qp, _ = _mc("relu", "resnet", 1.0, 0.2, width, depth, 0.3, range(3))
    qs, _ = _mc("relu", "stable_resnet", 1.0, 0.2, width, depth, 0.3, range(3))
    pp, _ = mf.propagate("relu", 1.04, 0.3, 1.0, 0.2, depth, arch="resnet")
    ps, _ = mf.propagate("relu", 1.04, 0.3, 1.0, 0.2, depth, arch="stable_resnet")
    assert pp[depth - 1] > 5 * ps[depth - 1]
    assert qp.mean(axis=0)[depth - 1] > 5 * qs.mean(axis=0)[depth - 1]


# --- closed forms ----------------------------------------------------------------------------

def _relu_resnet_by_hand(q1, c1, sw, sb, depth, alpha):
    """docs/theory.md, Numerics's ReLU expectations in the block recursion, written out with math."""
    qs, cs = [q1], [c1]
    for layer in range(1, depth + 1):
        q, c = qs[-1], cs[-1]
        e_pair = q / (2 * math.pi) * (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c)
        if layer < depth:
            q_new = q * (1 + alpha ** 2 * sw ** 2 / 2) + alpha ** 2 * sb ** 2
            cov = c * q + alpha ** 2 * (sb ** 2 + sw ** 2 * e_pair)
        else:  # the readout
            q_new = sb ** 2 + sw ** 2 * q / 2
            cov = sb ** 2 + sw ** 2 * e_pair
        qs.append(q_new)
        cs.append(cov / q_new)
    return np.array(qs), np.array(cs)


@pytest.mark.parametrize("arch", RESNETS)
@pytest.mark.parametrize("sw,sb", [(1.0, 0.0), (1.4, 0.3), (2.5, 1.0)])
def test_relu_closed_form(arch, sw, sb):
    depth = 12
    alpha = 1.0 if arch == "resnet" else 1 / math.sqrt(depth)
    q_ref, c_ref = _relu_resnet_by_hand(0.7, 0.2, sw, sb, depth, alpha)
    q, c = mf.propagate("relu", 0.7, 0.2, sw, sb, depth, arch=arch)
    np.testing.assert_allclose(q, q_ref, rtol=1e-13)
    np.testing.assert_allclose(c, c_ref, rtol=1e-12)
    # the one-block maps agree with the recursion's steps
    np.testing.assert_allclose(mf.q_map("relu", q_ref[:-2], sw, sb, arch=arch, depth=depth),
                               q_ref[1:-1], rtol=1e-13)
    np.testing.assert_allclose(mf.c_map("relu", c_ref[:-2], sw, sb, q=q_ref[:-2], arch=arch,
                                        depth=depth), c_ref[1:-1], rtol=1e-12)
    qa, qb, cov = mf.cov_map("relu", q_ref[:-2], q_ref[:-2], c_ref[:-2] * q_ref[:-2], sw, sb,
                             arch=arch, depth=depth)
    np.testing.assert_allclose(qa, q_ref[1:-1], rtol=1e-13)
    np.testing.assert_allclose(cov / qa, c_ref[1:-1], rtol=1e-12)


def test_backward_gains_closed_forms():
    # ReLU: E[φ'(√q Z)²] = 1/2; E[φ'(u₁)φ'(u₂)] = (π − arccos c)/(2π)
    sw, L = 1.3, 9
    assert mf.backward_gains("relu", 2.0, sw) == pytest.approx(sw * sw / 2, rel=1e-15)
    assert mf.backward_gains("relu", 2.0, sw, arch="resnet") == pytest.approx(1 + sw * sw / 2,
                                                                             rel=1e-15)
    assert mf.backward_gains("relu", 2.0, sw, arch="stable_resnet", depth=L) == pytest.approx(
        1 + sw * sw / (2 * L), rel=1e-15)
    c = 0.4
    pair = (math.pi - math.acos(c)) / (2 * math.pi)
    assert mf.backward_gains("relu", 2.0, sw, c=c, arch="resnet") == pytest.approx(
        1 + sw * sw * pair, rel=1e-14)
    # ffnn at q*: χ₁
    assert mf.backward_gains("tanh", mf.q_star("tanh", 1.5, 0.3), 1.5) == pytest.approx(
        mf.chi_1("tanh", 1.5, 0.3), rel=1e-12)


def test_backward_gains_match_a_wide_resnet():
    # the backpropagated variance through the blocks, measured: δ^{l−1} = δ^l + α φ'(y^{l−1}) ∘
    # (W^l)ᵀ δ^l from a random δ^L, against the product of the gains (per seed, then 5 SE)
    width, depth, sw, sb = 1000, 6, 1.5, 0.3
    q1 = sb * sb + sw * sw
    q, _ = mf.propagate("tanh", q1, 1.0, sw, sb, depth, arch="stable_resnet")
    gains = mf.backward_gains("tanh", q[: depth - 1], sw, arch="stable_resnet", depth=depth)
    ratios = []
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        net = init_network("tanh", width, depth, sw, sb, classes=2, arch="stable_resnet",
                           rng=rng, dtype=np.float64)
        X = _two_inputs(width, 0.0, rng)[:1]
        ys = _layers_by_hand(net, X)
        d = rng.standard_normal((1, width))
        start = np.mean(d ** 2)
        alpha = 1 / math.sqrt(depth)
        for k in range(depth - 1, 0, -1):  # block l = k + 1, from δ^{l} to δ^{l−1}
            d = d + alpha * (d @ net.weights[k]) * (1 - np.tanh(ys[k - 1]) ** 2)
        ratios.append(np.mean(d ** 2) / start)
    ratios = np.array(ratios)
    se = ratios.std(ddof=1) / math.sqrt(len(ratios))
    assert abs(ratios.mean() - np.prod(gains)) <= 5 * se + 3 / width * np.prod(gains)


# --- arch="ffnn" is unchanged ----------------------------------------------------------------

@pytest.mark.parametrize("activation", ["tanh", "relu", "elu"])
def test_ffnn_is_the_old_behaviour(activation):
    sw, sb, depth = np.array([0.9, 1.6, 2.5]), 0.3, 7
    q_old, c_old = mf.propagate(activation, 1.2, 0.4, sw, sb, depth)
    q_new, c_new = mf.propagate(activation, 1.2, 0.4, sw, sb, depth, arch="ffnn")
    assert np.array_equal(q_old, q_new) and np.array_equal(c_old, c_new)
    # ... and is the feed-forward maps iterated (rows l = F(row l − 1)), bit for bit
    for layer in range(1, depth + 1):
        assert np.array_equal(q_new[layer], mf.q_map(activation, q_new[layer - 1], sw, sb))
        ref = np.clip(mf.c_map(activation, c_new[layer - 1], sw, sb, q=q_new[layer - 1]), -1, 1)
        assert np.array_equal(c_new[layer], ref)
    assert mf.q_map(activation, 0.8, 1.3, 0.2, arch="ffnn", depth=5) == mf.q_map(activation, 0.8,
                                                                                1.3, 0.2)


# --- the Stable ResNet's variance stays bounded ----------------------------------------------

@settings(max_examples=60, deadline=None)
@given(sw=st.floats(0.1, 3.0), sb=st.floats(0.0, 1.0), q1=st.floats(0.05, 5.0),
       depth=st.integers(1, 400))
def test_stable_resnet_relu_variance_is_bounded(sw, sb, q1, depth):
    # q^L = a^{L−1} q¹ + (2σ_b²/σ_w²)(a^{L−1} − 1), a = 1 + σ_w²/(2L), and a^{L−1} < e^{σ_w²/2}
    k = 2 * sb * sb / (sw * sw)
    bound = math.exp(sw * sw / 2) * (q1 + k) - k
    q, _ = mf.propagate("relu", q1, 1.0, sw, sb, depth, arch="stable_resnet")
    assert q[depth - 1] <= bound * (1 + 1e-12)
    # while the plain ResNet grows geometrically: q^L >= (1 + σ_w²/2)^{L−1} q¹ (up to a depth
    # where that stays a float)
    short = min(depth, 60)
    qp, _ = mf.propagate("relu", q1, 1.0, sw, sb, short, arch="resnet")
    assert qp[short - 1] >= (1 + sw * sw / 2) ** (short - 1) * q1 * (1 - 1e-12)


@settings(max_examples=15, deadline=None)
@given(sw=st.floats(0.1, 4.0), sb=st.floats(0.0, 1.0), q1=st.floats(0.05, 5.0),
       depth=st.integers(2, 150))
def test_stable_resnet_tanh_variance_is_bounded(sw, sb, q1, depth):
    # E[tanh²] < 1 and the L − 1 blocks add at most (L − 1)/L · (σ_b² + σ_w²)
    q, _ = mf.propagate("tanh", q1, 1.0, sw, sb, depth, arch="stable_resnet")
    assert np.all(np.diff(q[:depth]) >= 0)
    assert q[depth - 1] <= q1 + (depth - 1) / depth * (sb * sb + sw * sw) + 1e-12
    # the plain ResNet adds at least σ_b² per block: unbounded in L
    qp, _ = mf.propagate("tanh", q1, 1.0, sw, sb, depth, arch="resnet")
    assert qp[depth - 1] >= q1 + (depth - 1) * (sb * sb + sw * sw * _e_tanh2_lower(q1))


def _e_tanh2_lower(q):
    """A lower bound of E[tanh(√q' Z)²] for every q' >= q (it increases with q'): a 200-point
    Gauss-Hermite sum at q, less 1e-6 for its error."""
    z, w = np.polynomial.hermite_e.hermegauss(200)
    return float(np.sum(w * np.tanh(math.sqrt(q) * z) ** 2) / np.sum(w)) - 1e-6


def test_stable_resnet_limit():
    # as L → ∞ the ReLU Stable ResNet's q^L → e^{σ_w²/2}(q¹ + 2σ_b²/σ_w²) − 2σ_b²/σ_w², from below
    sw, sb, q1 = 1.5, 0.4, 1.0
    k = 2 * sb * sb / (sw * sw)
    limit = math.exp(sw * sw / 2) * (q1 + k) - k
    last = [mf.propagate("relu", q1, 1.0, sw, sb, L, arch="stable_resnet")[0][L - 1]
            for L in (10, 100, 1000)]
    assert last[0] < last[1] < last[2] < limit
    assert abs(last[2] - limit) < 2e-3 * limit


# --- validation --------------------------------------------------------------------------------

def test_arch_and_depth_are_checked():
    with pytest.raises(ValueError, match="`arch` == 'res'.*'ffnn', 'resnet', 'stable_resnet'"):
        mf.propagate("tanh", 1.0, 0.5, 1.0, 0.0, 3, arch="res")
    with pytest.raises(ValueError, match="`arch`"):
        mf.q_map("tanh", 1.0, 1.0, 0.0, arch="FFNN")
    with pytest.raises(ValueError, match="`depth` == None"):
        mf.q_map("tanh", 1.0, 1.0, 0.0, arch="stable_resnet")
    with pytest.raises(ValueError, match="`depth` == 0"):
        mf.propagate("tanh", 1.0, 0.5, 1.0, 0.0, 0, arch="resnet")
    with pytest.raises(ValueError, match="`q` == None"):
        mf.c_map("tanh", 0.5, 1.0, 0.0, arch="resnet")
    with pytest.raises(ValueError, match="`arch`"):
        mf.backward_gains("tanh", 1.0, 1.0, arch=None)
    with pytest.raises(TypeError, match="`depth`"):
        mf.cov_map("tanh", 1.0, 1.0, 0.5, 1.0, 0.0, arch="stable_resnet", depth=2.5)
