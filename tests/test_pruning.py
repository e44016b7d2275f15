"""Pruning at initialization (meanfield.pruning): scores, masks, critical sparsity, rescaling."""

import math

import numpy as np
import pytest
from conftest import weight_differences
from hypothesis import given, settings
from hypothesis import strategies as st

import meanfield as mf
from meanfield.nets import Network, init_network, loss_and_grads, standard_normal
from meanfield.pruning import (
    METHODS,
    critical_sparsity,
    critical_sparsity_trial,
    global_masks,
    grasp_scores,
    hessian_vector_product,
    kept_fraction,
    magnitude_scores,
    random_scores,
    rescale,
    scores,
    snip_critical_sparsity_trial,
    snip_scores,
    synflow_scores,
)

ARCHS = ["ffnn", "resnet", "stable_resnet"]
EOC_SIGMA_W = 1.3955839751549  # tanh, σ_b = 0.3 (docs/theory.md §4)


def tiny(arch="ffnn", activation="tanh", seed=0, depth=3):
    rng = np.random.default_rng(seed)
    net = init_network(activation, 4, depth, 1.6, 0.4, n_in=3, classes=3, arch=arch, rng=rng,
                       dtype=np.float64)
    return net, rng.standard_normal((5, 3)), np.array([0, 2, 1, 2, 0])


def fd_weight_grads(net, X, y):
    return weight_differences(net, lambda n: loss_and_grads(n, X, y)[0])


# ------------------------------------------------------------------------------------------------
# Scores
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
def test_snip_is_weight_times_finite_difference_gradient(arch):
    net, X, y = tiny(arch)
    for s, w, g in zip(snip_scores(net, X, y), net.weights, fd_weight_grads(net, X, y)):
        np.testing.assert_allclose(s, np.abs(w * g), rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("activation", ["tanh", "elu"])
def test_hessian_vector_product_matches_finite_differences(arch, activation):
    net, X, y = tiny(arch, activation)
    rng = np.random.default_rng(1)
    v = [rng.standard_normal(w.shape) for w in net.weights]
    hv = hessian_vector_product(net, X, y, v)
    h = 1e-5
    for w, d in zip(net.weights, v):
        w += h * d
    up = loss_and_grads(net, X, y)[1]
    for w, d in zip(net.weights, v):
        w -= 2 * h * d
    down = loss_and_grads(net, X, y)[1]
    for w, d in zip(net.weights, v):
        w += h * d
    for a, u, dn in zip(hv, up, down):
        np.testing.assert_allclose(a, (u - dn) / (2 * h), rtol=1e-6, atol=1e-9)
    # H is symmetric: uᵀ(Hv) = vᵀ(Hu)
    u = [rng.standard_normal(w.shape) for w in net.weights]
    hu = hessian_vector_product(net, X, y, u)
    lhs = sum(np.sum(a * b) for a, b in zip(u, hv))
    rhs = sum(np.sum(a * b) for a, b in zip(v, hu))
    assert lhs == pytest.approx(rhs, rel=1e-10)


def test_grasp_scores_and_their_orientation():
    net, X, y = tiny("resnet")
    g = loss_and_grads(net, X, y)[1]
    hg = hessian_vector_product(net, X, y, g)
    s = grasp_scores(net, X, y, temperature=1.0)  # the plain loss, whose g and Hg are above
    for a, w, b in zip(s, net.weights, hg):
        np.testing.assert_allclose(a, -w * b, rtol=1e-12, atol=1e-15)
    for a, b in zip(scores(net, X, y, "grasp", grasp_temperature=1.0), s):
        np.testing.assert_array_equal(a, -b)  # GraSP prunes its largest scores


def synflow_R(net, A):
    """ℛ = 1ᵀ(∏ A) 1 for the linearised network, written out plainly (no rescaling)."""
    alpha = 1.0 / math.sqrt(net.depth) if net.arch == "stable_resnet" else 1.0
    r = np.ones(net.n_in)
    for k, a in enumerate(A):
        nxt = a @ r
        r = r + alpha * nxt if net.arch != "ffnn" and 0 < k < net.depth else nxt
    return r.sum()


@pytest.mark.parametrize("arch", ARCHS)
def test_synflow_single_round_against_finite_differences(arch):
    net, _, _ = tiny(arch)
    A = [np.abs(w) for w in net.weights]
    R = synflow_R(net, A)
    s = synflow_scores(net, 0.0, iterations=1)
    for l, a in enumerate(A):
        expect = np.empty(a.shape)
        for idx in np.ndindex(a.shape):  # ℛ is linear in each weight: the difference is exact
            old = a[idx]
            a[idx] = old + 0.5
            up = synflow_R(net, A)
            a[idx] = old - 0.5
            down = synflow_R(net, A)
            a[idx] = old
            expect[idx] = old * (up - down) / R
        np.testing.assert_allclose(s[l], expect, rtol=1e-10, atol=1e-14)
    if arch == "ffnn":  # synaptic flow is conserved layer by layer
        np.testing.assert_allclose([x.sum() for x in s], 1.0, rtol=1e-12)


def test_synflow_by_hand_depth_one():
    net, _, _ = tiny("ffnn", depth=1)
    W1, Wo = np.abs(net.weights[0]), np.abs(net.weights[1])
    R = Wo.sum(axis=0) @ W1.sum(axis=1)
    s = synflow_scores(net, 0.0, iterations=1)
    np.testing.assert_allclose(s[0], W1 * Wo.sum(axis=0)[:, None] / R, rtol=1e-13)
    np.testing.assert_allclose(s[1], Wo * W1.sum(axis=1)[None, :] / R, rtol=1e-13)


def test_synflow_iterative_and_deep():
    net = init_network("tanh", 30, 40, 2.5, 0.1, rng=np.random.default_rng(3))
    s = synflow_scores(net, 0.95, iterations=20)
    masks = global_masks(s, 0.95)
    assert 1 - kept_fraction(masks, weighted=True) == pytest.approx(0.95, abs=1e-3)
    assert all(np.isfinite(x).all() for x in s)  # no overflow at depth 40, σ_w = 2.5
    # weights pruned in earlier rounds score 0; kept ones have positive scores
    assert all(np.all(x[m] > 0) for x, m in zip(s, masks))
    assert sum(int((x == 0).sum()) for x in s) > 0
    # SynFlow avoids layer collapse: every layer keeps weights
    assert kept_fraction(masks).min() > 0


def test_magnitude_and_random_scores():
    net, X, y = tiny()
    for a, w in zip(magnitude_scores(net), net.weights):
        np.testing.assert_array_equal(a, np.abs(w))
    r1 = random_scores(net, np.random.default_rng(4))
    r2 = scores(net, None, None, "random", rng=np.random.default_rng(4))
    for a, b, w in zip(r1, r2, net.weights):
        assert a.shape == w.shape and np.array_equal(a, b)
        assert a.min() >= 0 and a.max() < 1


@pytest.mark.parametrize("method", METHODS)
def test_dispatcher_shapes(method):
    net, X, y = tiny()
    out = scores(net, X, y, method, sparsity=0.5, rng=np.random.default_rng(0))
    assert [a.shape for a in out] == [w.shape for w in net.weights]


# ------------------------------------------------------------------------------------------------
# Masks and the critical sparsity
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scores_, expected", [
    ([[0.5, 2.0, 0.1], [1.0, 0.7]], 4 / 5),             # m = 1.0, from the second layer
    ([[1.0, 1.0, 3.0], [2.0, 1.0]], 4 / 5),             # ties below m
    ([[5.0, 6.0], [0.1, 0.2], [7.0, 0.05]], 3 / 6),     # the middle layer's max is the global min
    ([[0.2, 0.3], [0.2, 0.2]], 3 / 4),                  # ties at m, across layers
    ([[1.0, 1.0], [1.0]], 1.0),                         # all tied: everything goes
    ([[3.0], [2.0, 1.0]], 2 / 3),
])
def test_critical_sparsity_by_hand(scores_, expected):
    assert critical_sparsity([np.array(s) for s in scores_]) == pytest.approx(expected,
                                                                              abs=1e-15)


def test_global_masks_exact_sparsity_and_ties():
    rng = np.random.default_rng(0)
    sc = [rng.random((10, 30)), rng.random((20, 20)), rng.random(300)]
    for s in (0.0, 0.3, 0.5, 0.999):
        masks = global_masks(sc, s)
        assert sum(int(m.sum()) for m in masks) == round((1 - s) * 1000)
        kept = np.concatenate([a[m] for a, m in zip(sc, masks)])
        pruned = np.concatenate([a[~m] for a, m in zip(sc, masks)])
        assert pruned.size == 0 or kept.size == 0 or pruned.max() < kept.min()
    # ties at the threshold are pruned together
    masks = global_masks([np.array([1.0, 1.0, 1.0, 2.0, 3.0])], 0.2)
    assert masks[0].tolist() == [False, False, False, True, True]
    assert global_masks([np.array([1.0, 2.0])], 0.0)[0].all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 6), min_size=1, max_size=6), min_size=1, max_size=4))
def test_critical_sparsity_is_where_global_pruning_first_empties_a_layer(layers):
    sc = [np.array(l, dtype=float) for l in layers]
    n = sum(a.size for a in sc)
    for k in range(n + 1):  # the smallest k whose mask empties a layer prunes exactly s_cr
        masks = global_masks(sc, k / n) if k < n else [np.zeros(a.shape, bool) for a in sc]
        if any(not m.any() for m in masks):
            assert critical_sparsity(sc) == pytest.approx(1 - kept_fraction(masks, weighted=True))
            break


def test_kept_fraction():
    masks = [np.array([[1, 0], [1, 1]]), np.zeros(3, bool), np.ones(5, bool)]
    np.testing.assert_array_equal(kept_fraction(masks), [0.75, 0.0, 1.0])
    assert kept_fraction(masks, weighted=True) == pytest.approx(8 / 12)


@pytest.mark.parametrize("arch", ARCHS)
def test_rescale_restores_row_norms(arch):
    net = init_network("tanh", 12, 4, 1.4, 0.2, n_in=7, arch=arch, rng=np.random.default_rng(1))
    rng = np.random.default_rng(2)
    masks = [rng.random(w.shape) < 0.5 for w in net.weights]
    masks[1][3] = False  # a fully pruned neuron
    before = [w.copy() for w in net.weights]
    new = rescale(net, masks)
    assert isinstance(new, Network) and new.arch == arch and new.dtype == np.float32
    for w0, w, w1, m in zip(before, net.weights, new.weights, masks):
        assert np.array_equal(w, w0)  # the original is untouched
        assert np.all(w1[~m] == 0)
        kept = (w0.astype(float) * m) ** 2
        full = kept.sum(axis=1) > 0
        np.testing.assert_allclose((w1.astype(float) ** 2).sum(axis=1)[full],
                                   (w0.astype(float) ** 2).sum(axis=1)[full], rtol=1e-5)
        rho = np.sqrt((w0.astype(float) ** 2).sum(axis=1)[full] / kept.sum(axis=1)[full])
        np.testing.assert_allclose(w1[full], (rho[:, None] * w0[full] * m[full]), rtol=1e-6)
    assert np.all(new.weights[1][3] == 0)
    for b0, b1 in zip(net.biases, new.biases):
        assert np.array_equal(b0, b1) and b0 is not b1


# ------------------------------------------------------------------------------------------------
# One Monte Carlo trial
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["tanh", "elu"])
def test_fast_path_equals_generic_path_bit_for_bit(arch, dtype, activation):
    kw = dict(batch=16, classes=5, arch=arch, dtype=dtype)
    fast = snip_critical_sparsity_trial(activation, 24, 12, EOC_SIGMA_W, 0.3,
                                        rng=np.random.default_rng(8), **kw)
    generic = critical_sparsity_trial(activation, 24, 12, EOC_SIGMA_W, 0.3, method="snip",
                                      rng=np.random.default_rng(8), **kw)
    assert fast == generic
    rng = np.random.default_rng(8)  # and from the public pieces, as documented
    net = init_network(activation, 24, 12, EOC_SIGMA_W, 0.3, classes=5, arch=arch, rng=rng,
                       dtype=dtype)
    X = standard_normal(rng, (16, 24), dtype)
    y = rng.integers(5, size=16)
    assert fast == critical_sparsity(snip_scores(net, X, y))
    assert 0.0 < fast <= 1.0


def test_trials_reproducible():
    a = [snip_critical_sparsity_trial("tanh", 30, 20, 0.8, 0.3, rng=np.random.default_rng(s))
         for s in range(3)]
    b = [snip_critical_sparsity_trial("tanh", 30, 20, 0.8, 0.3, rng=np.random.default_rng(s))
         for s in range(3)]
    assert a == b and len(set(a)) == 3
    # the scratch buffers are reused across shapes without leaking state
    snip_critical_sparsity_trial("tanh", 11, 3, 0.8, 0.3, rng=np.random.default_rng(0))
    assert snip_critical_sparsity_trial("tanh", 30, 20, 0.8, 0.3,
                                        rng=np.random.default_rng(0)) == a[0]


def test_generic_methods_run():
    for method in ("magnitude", "random", "synflow", "grasp"):
        s = critical_sparsity_trial("tanh", 10, 4, 1.2, 0.1, method=method, sparsity=0.5,
                                    batch=8, rng=np.random.default_rng(0))
        assert 0.0 < s <= 1.0


def test_edge_of_chaos_keeps_deep_networks_prunable():
    """docs/theory.md §4: E[s_cr] is far higher on the EOC than in the ordered phase (depth 50)."""
    seeds = np.random.SeedSequence(2021).spawn(10)
    eoc = [snip_critical_sparsity_trial("tanh", 50, 50, EOC_SIGMA_W, 0.3,
                                        rng=np.random.default_rng(s)) for s in seeds]
    ordered = [snip_critical_sparsity_trial("tanh", 50, 50, 0.8, 0.3,
                                            rng=np.random.default_rng(s)) for s in seeds]
    se = math.sqrt(np.var(eoc, ddof=1) / 10 + np.var(ordered, ddof=1) / 10)
    assert np.mean(eoc) - np.mean(ordered) > 5 * se
    assert np.mean(eoc) > 0.8 and np.mean(ordered) < 0.5


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------

def test_bad_input():
    net, X, y = tiny()
    with pytest.raises(ValueError, match=r"`method` == 'obd': must be one of 'snip'"):
        scores(net, X, y, "obd")
    with pytest.raises(ValueError, match=r"`method` == 'obd'"):
        critical_sparsity_trial("tanh", 4, 2, 1.0, 0.1, method="obd", rng=np.random.default_rng())
    with pytest.raises(ValueError, match=r"`sparsity` == None: method 'synflow' needs"):
        scores(net, X, y, "synflow")
    with pytest.raises(TypeError, match=r"`rng` == None: must be a numpy.random.Generator"):
        scores(net, X, y, "random")
    with pytest.raises(ValueError, match=r"`sparsity` == 1\.0: must be a finite real number in \[0, 1\)"):
        global_masks([np.ones(3)], 1.0)
    with pytest.raises(ValueError, match=r"`sparsity` == -0\.1"):
        synflow_scores(net, -0.1)
    with pytest.raises(TypeError, match=r"`sparsity` == 'a'"):
        global_masks([np.ones(3)], "a")
    with pytest.raises(ValueError, match=r"`iterations` == 0: must be an integer >= 1"):
        synflow_scores(net, 0.5, iterations=0)
    with pytest.raises(TypeError, match=r"`scores`: must be a non-empty list"):
        critical_sparsity([])
    with pytest.raises(ValueError, match=r"`scores\[1\]` contains nan"):
        critical_sparsity([np.ones(2), np.array([1.0, np.nan])])
    with pytest.raises(ValueError, match=r"`scores\[0\]` is empty"):
        global_masks([np.ones(0)], 0.5)
    with pytest.raises(ValueError, match=r"`masks` has 1 arrays"):
        rescale(net, [np.ones((4, 3))])
    with pytest.raises(ValueError, match=r"`batch` == 0: must be an integer >= 1"):
        snip_critical_sparsity_trial("tanh", 4, 2, 1.0, 0.1, batch=0, rng=np.random.default_rng())
    with pytest.raises(ValueError, match=r"`width` == 0"):
        snip_critical_sparsity_trial("tanh", 0, 2, 1.0, 0.1, rng=np.random.default_rng())
    with pytest.raises(TypeError, match=r"`rng` == 1"):
        snip_critical_sparsity_trial("tanh", 4, 2, 1.0, 0.1, rng=1)
    with pytest.raises(ValueError, match=r"`arch` == 'vgg'"):
        snip_critical_sparsity_trial("tanh", 4, 2, 1.0, 0.1, arch="vgg", rng=np.random.default_rng())


def test_hessian_vector_product_bad_input():
    net, X, y = tiny()
    with pytest.raises(ValueError, match=r"`v` has 1 arrays: must have 4"):
        hessian_vector_product(net, X, y, [np.ones((4, 3))])
    with pytest.raises(ValueError, match=r"`v\[3\]` has shape \(4, 3\): must be \(3, 4\)"):
        hessian_vector_product(net, X, y, [np.ones((4, 3)), np.ones((4, 4)), np.ones((4, 4)),
                                           np.ones((4, 3))])


def _dtanh4_density(z, s):
    """tanh'(s z)² times the standard normal density: E[φ'(√q Z)²] = ∫ of it with s = √q."""
    return (1.0 - np.tanh(s * z) ** 2) ** 2 * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def test_effective_chi_is_chi_1_for_a_wide_dense_net_and_scales_with_what_is_kept():
    """For a wide dense net at initialization χ^l is σ_w² E[φ'(y^l)²] at the layer's q^l (the
    per-layer χ₁ of mean-field theory, computed here from propagate and an independent quadrature);
    finite width and batch make it fluctuate by ~1/√(N·B) per layer: 3 % is ~6 SD at N = 800,
    B = 400. Then, with a linear φ, the exact effect of pruning and of the rescaling."""
    from scipy import integrate

    from meanfield.nets import init_network
    from meanfield.pruning import effective_chi, rescale

    rng = np.random.default_rng(3)
    sw, sb, N, L = 1.2, 0.3, 800, 6
    net = init_network("tanh", N, L, sw, sb, rng=rng, dtype=np.float64)
    X = rng.standard_normal((400, N))
    chi = effective_chi(net, X)
    q1 = sb * sb + sw * sw
    q, _ = mf.propagate("tanh", q1, 0.0, sw, sb, L - 1)
    for k in range(L - 1):                      # hidden layer k + 1 has q^{k+1} = q[k]
        d = integrate.quad(_dtanh4_density, -12, 12, args=(math.sqrt(q[k]),), epsabs=1e-13)[0]
        assert chi[k] == pytest.approx(sw * sw * d, rel=0.03), k
    # with φ = identity (φ' = 1) χ^l is ‖W^{l+1}‖²/N_{l+1} exactly: pruning scales it by the
    # kept share of the squared norm, and per-neuron rescaling restores every row's norm
    lin = init_network("linear", 60, 4, 1.0, 0.1, rng=np.random.default_rng(5), dtype=np.float64)
    Xl = rng.standard_normal((16, 60))
    dense = effective_chi(lin, Xl)
    np.testing.assert_allclose(dense, [np.sum(w * w) / w.shape[0] for w in lin.weights[1:-1]],
                               rtol=1e-12)
    masks = [rng.random(w.shape) < 0.5 for w in lin.weights]
    share = [np.sum((w * m) ** 2) / np.sum(w * w) for w, m in zip(lin.weights, masks)]
    pruned = init_network("linear", 60, 4, 1.0, 0.1, rng=np.random.default_rng(5),
                          dtype=np.float64)
    for w, m in zip(pruned.weights, masks):
        w *= m
    np.testing.assert_allclose(effective_chi(pruned, Xl) / dense, share[1:-1], rtol=1e-12)
    restored = rescale(init_network("linear", 60, 4, 1.0, 0.1, rng=np.random.default_rng(5),
                                    dtype=np.float64), masks, "neuron")
    for w, m in zip(restored.weights, masks):
        w *= m
    np.testing.assert_allclose(effective_chi(restored, Xl), dense, rtol=1e-12)


def test_effective_chi_of_a_resnet_block_is_one_plus_the_branch_gain():
    from meanfield.nets import init_network
    from meanfield.pruning import effective_chi

    rng = np.random.default_rng(4)
    X = rng.standard_normal((64, 50))
    ff = effective_chi(init_network("tanh", 50, 5, 1.0, 0.1, rng=np.random.default_rng(7),
                                    dtype=np.float64), X)
    for arch, a2 in (("resnet", 1.0), ("stable_resnet", 1.0 / 5)):
        net = init_network("tanh", 50, 5, 1.0, 0.1, arch=arch, rng=np.random.default_rng(7),
                           dtype=np.float64)
        chi = effective_chi(net, X)
        assert np.all(chi > 1.0)
        # the same weights: the branch gain is ⟨φ'(y^l)²⟩ ‖W^{l+1}‖²/N at the ResNet's own y^l,
        # so only layer 1 (whose y¹ is the same in both nets) matches the FFNN's gain exactly
        assert chi[0] == pytest.approx(1.0 + a2 * ff[0], rel=1e-12)
    with pytest.raises(ValueError, match="`X`"):
        effective_chi(net, X[:, :10])
