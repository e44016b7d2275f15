"""GraSP's sign and keep/prune direction, checked against its definition (Wang, Zhang, Grosse 2020,
eq. 8 and Algorithm 1) independently of :func:`meanfield.pruning.hessian_vector_product`.

Removing weight q moves θ by δ = −θ_q e_q; to first order the squared gradient norm changes by
2 gᵀHδ = −2 θ_q (Hg)_q = 2 S_q. GraSP removes the weights with the largest S (their removal
reduces the gradient flow least) and keeps the lowest, so ``scores(..., "grasp")`` (keep the
largest) must keep exactly the weights with the lowest S.
"""

import numpy as np
import pytest
from conftest import weight_differences

from meanfield.nets import init_network, loss_and_grads
from meanfield.pruning import global_masks, grasp_scores, kept_fraction, scores


def _sq_grad_norm(net, X, y):
    return sum(float(np.sum(g * g)) for g in loss_and_grads(net, X, y)[1])


def _fd_grasp(net, X, y):
    """S_q = ½ d/dε ‖∇ℒ(θ − ε θ_q e_q)‖² at ε = 0, by central differences, one weight at a time."""
    d = weight_differences(net, lambda n: _sq_grad_norm(n, X, y), direction=lambda w: -w, h=1e-5)
    return [0.5 * g for g in d]


@pytest.mark.parametrize("arch", ["ffnn", "resnet"])
def test_grasp_score_is_gradient_flow_change_and_lowest_are_kept(arch):
    rng = np.random.default_rng(3)
    net = init_network("tanh", 5, 3, 1.5, 0.3, n_in=4, classes=3, arch=arch, rng=rng,
                       dtype=np.float64)
    X, y = rng.standard_normal((6, 4)), np.array([0, 1, 2, 0, 1, 2])
    fd = _fd_grasp(net, X, y)
    # the finite differences are of the plain loss, T = 1
    for a, b in zip(grasp_scores(net, X, y, temperature=1.0), fd):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)
    flat = np.sort(np.concatenate([s.ravel() for s in fd]))
    sparsity = 0.6
    n_keep = int(round((1 - sparsity) * flat.size))
    kept = global_masks(scores(net, X, y, "grasp", grasp_temperature=1.0), sparsity)
    assert sum(int(m.sum()) for m in kept) == n_keep
    for m, s in zip(kept, fd):  # kept: the n_keep lowest S (up to finite-difference error)
        assert np.all(s[m] <= flat[n_keep - 1] + 1e-8)
        assert np.all(s[~m] >= flat[n_keep] - 1e-8)


def test_grasp_keeps_every_layer_of_a_shallow_net():
    rng = np.random.default_rng(0)
    net = init_network("tanh", 50, 3, 1.3955839751549, 0.3, n_in=30, classes=5, rng=rng)
    X = rng.standard_normal((64, 30)).astype(np.float32)
    y = rng.integers(5, size=64)
    kf = kept_fraction(global_masks(scores(net, X, y, "grasp"), 0.9))
    assert kf.min() > 0.01
