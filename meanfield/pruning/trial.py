"""One Monte Carlo trial of the critical sparsity s_cr (docs/critical_sparsity.md): one random
network, one batch, scores and s_cr, fused so that no score is stored twice.
"""

from __future__ import annotations

import numpy as np

from .._validate import (
    check_array,
    check_choice,
    check_dtype,
    check_int,
    check_rng,
)
from ..activations import get_activation
from ..nets._pass import _loss_and_grads, scratch
from ..nets._sampler import standard_normal
from ..nets.network import check_finite, draw_network
from ..theory.archs import ARCHS
from .critical import (
    _check_definition,
    _count_le,
    _disconnect_threshold,
    bisect_target,
    critical_sparsity,
    mask_event,
)
from .masks import global_masks
from .scoring import (
    METHODS,
    scores,
    synflow_scores,
)

# ------------------------------------------------------------------------------------------------
# One Monte Carlo trial of s_cr
# ------------------------------------------------------------------------------------------------

def _trial_inputs(activation, width, depth, sigma_w, sigma_b, batch, classes, arch, rng, dtype,
                  reuse=False):
    """Validate, then draw the network, X and y of one trial (in that order). With ``reuse`` the
    arrays are per-thread scratch buffers (for the fast path, which returns none of them)."""
    act = get_activation(activation)
    width = check_int("width", width, 1)
    depth = check_int("depth", depth, 1)
    sigma_w = float(check_array("sigma_w", sigma_w, scalar=True))
    sigma_b = float(check_array("sigma_b", sigma_b, scalar=True))
    batch = check_int("batch", batch, 1)
    classes = check_int("classes", classes, 2)
    arch = check_choice("arch", arch, ARCHS)
    rng = check_rng(rng)
    dt = check_dtype(dtype)
    buffer = (lambda size: scratch("params", (size,), dt)) if reuse else None
    net = draw_network(act, width, depth, sigma_w, sigma_b, width, classes, arch, rng, dt,
                           buffer)
    X = standard_normal(rng, (batch, width), dt,
                        out=scratch("X", (batch, width), dt) if reuse else None)
    y = rng.integers(classes, size=batch)
    return net, X, y


def snip_critical_sparsity_trial(activation, width, depth, sigma_w, sigma_b, *, batch=128,
                                 classes=10, arch="ffnn", rng, dtype=np.float32,
                                 definition="layer"):
    """One draw of the critical sparsity of SNIP, fast (the hot path of the Monte Carlo).

    Draws, from ``rng`` and in this order, the network ``init_network(activation, width, depth,
    sigma_w, sigma_b, classes=classes, arch=arch, rng=rng, dtype=dtype)`` (so n_in = width), the
    inputs ``X = standard_normal(rng, (batch, width), dtype)`` (X ~ N(0, I)) and the labels
    ``y = rng.integers(classes, size=batch)``; then computes the SNIP scores of the mean
    cross-entropy on (X, y) and returns s_cr (docs/theory.md §4). The result equals
    ``critical_sparsity(snip_scores(net, X, y), definition=definition, arch=arch)`` for those
    draws bit for bit (it is
    :func:`critical_sparsity_trial` with method "snip", by the same kernels), but: the network,
    its activations and the scores live in per-thread buffers reused from call to call; each
    layer's scores are made in place of its gradient, in cache, as the backward pass reaches it,
    together with their maximum; and one vectorised pass over the scores counts those <= m.

    Parameters
    ----------
    activation : str or Activation
    width, depth : int >= 1
    sigma_w : float > 0
    sigma_b : float >= 0
    batch : int >= 1, default 128
    classes : int >= 2, default 10
    arch : {"ffnn", "resnet", "stable_resnet"}
    rng : numpy.random.Generator
        Every random number comes from it; the same seed gives the same s_cr, bit for bit.
    dtype : numpy.float32 or numpy.float64, default float32
    definition : {"layer", "disconnect"}, default "layer"
        Which event s_cr marks: some layer emptied (the paper's), or the output cut from the input
        (no path of kept weights, a ResNet's skips included); see :func:`critical_sparsity`.

    Returns
    -------
    float
        s_cr in [0, 1].

    References
    ----------
    Hayou, Ton, Doucet, Teh (2021), *Robust Pruning at Initialization*, §3, Fig. 1; docs/theory.md §4.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.pruning import snip_critical_sparsity_trial
    >>> s = snip_critical_sparsity_trial("tanh", 20, 10, 1.3955839751549, 0.3,
    ...                                  rng=np.random.default_rng(0))
    >>> 0.0 < s < 1.0
    True
    """
    definition = _check_definition(definition)
    net, X, y = _trial_inputs(activation, width, depth, sigma_w, sigma_b, batch, classes, arch,
                              rng, dtype, reuse=True)
    flat = scratch("scores", (net.n_weights,), net.dtype)
    grads, start = [], 0
    for w in net.weights:
        grads.append(flat[start:start + w.size].reshape(w.shape))
        start += w.size
    _, maxima = _loss_and_grads(net, net.weights, X, y, grads, None, score=True)
    check_finite(net, maxima, "SNIP scores")
    m = maxima.min() if definition == "layer" else _disconnect_threshold(grads, net.arch)
    return _count_le(flat, m) / flat.size


def critical_sparsity_trial(activation, width, depth, sigma_w, sigma_b, *, method="snip",
                            sparsity=None, batch=128, classes=10, arch="ffnn", rng,
                            dtype=np.float32, definition="layer"):
    """One draw of the critical sparsity for any scoring method (the generic, slower path).

    Same draws as :func:`snip_critical_sparsity_trial` (network, X, y, then, for "random", the
    scores), then ``critical_sparsity(scores(net, X, y, method, sparsity=sparsity, rng=rng),
    definition=definition, arch=arch)``.

    SynFlow without ``sparsity``: its scores depend on the target sparsity, so there is no one
    ranking to read s_cr from: s_cr is the smallest target at which the event happens, found by
    bisection to 10⁻⁴ (:func:`meanfield.pruning.critical.bisect_target`), each step a full
    iterative SynFlow (100 rounds): about 15 SynFlows a trial.

    Returns
    -------
    float
    """
    check_choice("method", method, METHODS)
    definition = _check_definition(definition)
    net, X, y = _trial_inputs(activation, width, depth, sigma_w, sigma_b, batch, classes, arch,
                              rng, dtype)
    if method == "synflow" and sparsity is None:
        def event(target):
            return mask_event(global_masks(synflow_scores(net, target), target), definition,
                              net.arch)

        return bisect_target(event)
    sc = check_finite(net, scores(net, X, y, method, sparsity=sparsity, rng=rng), f"{method} scores")
    return critical_sparsity(sc, definition=definition, arch=net.arch)
