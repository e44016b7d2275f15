"""The backward gain of a (pruned, rescaled) network measured on a batch (docs/training.md)."""

from __future__ import annotations

import numpy as np

from .._validate import (
    InputError,
)
from ..nets._pass import _forward, _is_tanh
from ..nets.network import (
    check_network,
)


def effective_chi(net, X):
    """The backward gain of each hidden layer of a (pruned, rescaled) network, measured on inputs.

    Mean-field theory's χ₁ = σ_w² E[φ'(y)²] is the factor by which the squared norm of the
    backpropagated error changes from one layer to the next (docs/theory.md §2; ordered < 1, EOC = 1,
    chaotic > 1). For a given net it is estimated layer by layer: from layer l + 1 down to l,

        χ^l = ⟨φ'(y^l)²⟩ · ‖W^{l+1}‖_F² / N_{l+1}            (FFNN),
        χ^l = 1 + α² ⟨φ'(y^l)²⟩ · ‖W^{l+1}‖_F² / N_{l+1}     (ResNets, block l + 1),

    with ⟨·⟩ the mean over the batch X and the layer's neurons, and the weights as they are (a
    pruned net's zeros included). For a dense net at initialization ‖W‖_F²/N_{l+1} ≈ σ_w², so χ^l
    is χ₁ at the layer's own q^l; pruning shrinks it unless the rescaling restores the norms.

    Parameters
    ----------
    net : Network
    X : array_like, shape (B, N₀)

    Returns
    -------
    ndarray, shape (L − 1,)
        χ^l for l = 1 … L − 1 (hidden layer l, fed back from layer l + 1).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.nets import init_network
    >>> from meanfield.pruning import effective_chi
    >>> rng = np.random.default_rng(0)
    >>> net = init_network("tanh", 400, 5, 0.8, 0.3, rng=rng, dtype=np.float64)
    >>> chi = effective_chi(net, rng.standard_normal((256, 400)))
    >>> round(float(chi[-1]), 1)     # deep enough for q^l ≈ q*: χ₁("tanh", 0.8, 0.3) = 0.496
    0.5
    """
    check_network(net)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != net.n_in:
        raise InputError(f"`X` of shape {X.shape}: must be (B, {net.n_in})")
    L, alpha = net.depth, net.alpha
    residual = net.arch != "ffnn"
    # the network's own forward pass, in float64 (its cache: φ(y^l), and y^l unless tanh)
    weights = [np.ascontiguousarray(w, dtype=np.float64) for w in net.weights]
    _, (H, Y) = _forward(net, weights, np.ascontiguousarray(X))
    if _is_tanh(net.activation):
        dphi2 = np.mean(((1.0 - H) * (1.0 + H)) ** 2, axis=(1, 2))
    else:
        dphi2 = np.array([np.mean(net.activation(Y[k], 1) ** 2) for k in range(L)])
    chi = np.empty(L - 1)
    for k in range(L - 1):                       # hidden layer k + 1, fed back through W^{k+2}
        W = np.asarray(net.weights[k + 1], dtype=np.float64)
        gain = dphi2[k] * float(np.sum(W * W)) / W.shape[0]
        chi[k] = 1.0 + alpha * alpha * gain if residual else gain
    return chi


