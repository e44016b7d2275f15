"""Pruning conv networks at initialization (docs/convolutional.md; issue 22): the five scores of
their weights, the two events of s_cr on their layers and channel graph, and one Monte Carlo
trial of s_cr.

A conv network's "layers" are its weight arrays (:attr:`meanfield.nets.conv.ConvNetwork.layers`):
the conv layers, the 1 × 1 projections of a ResNet's stage openings (a layer of their own, which
can empty), the readout. For "disconnect" a path runs through channels: a conv's channel j
reaches channel i through any kept offset of W[i, j] (circular padding and the global average
let every position reach the output), a block's identity skip is never pruned, a projection's
is an edge like any weight.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_choice, check_dtype
from ..activations import get_activation
from ..nets.conv import (
    channel_scores,
    conv_grasp_scores,
    conv_snip_scores,
    draw_conv_trial,
)
from ..nets.network import check_finite
from .critical import (
    _check_definition,
    _count_le,
    _widest_step,
    bisect_target,
)
from .masks import global_masks
from .scoring import GRASP_TEMPERATURE, METHODS, flow_steps, iterate_synflow

__all__ = ["conv_scores", "conv_critical_sparsity", "conv_mask_event",
           "conv_critical_sparsity_trial"]


def conv_scores(net, X, y, method, *, sparsity=None, rng=None,
                grasp_temperature=GRASP_TEMPERATURE, synflow_iterations=100):
    """Scores of a conv network's weights, keep-the-largest, shaped like the weights, as
    :func:`meanfield.pruning.scores` gives them for a dense net: SNIP |W ∘ g|; GraSP −S with
    S = −W ∘ (H g) on softmax(z / T), H g exact (float64); SynFlow's iterative scores at target
    ``sparsity`` (needed); |W|; uniform draws from ``rng``.

    Parameters
    ----------
    net : ConvNetwork
    X : array_like, shape (B, C₀, h, h)
    y : array_like of int, shape (B,)
    method : {"snip", "grasp", "synflow", "magnitude", "random"}
    sparsity : float in [0, 1), for "synflow"
    rng : numpy.random.Generator, for "random"
    grasp_temperature : float > 0, default 200
    synflow_iterations : int >= 1, default 100

    Returns
    -------
    list of ndarray
    """
    method = check_choice("method", method, METHODS)
    if method == "snip":
        return conv_snip_scores(net, X, y)
    if method == "grasp":
        return [-s for s in conv_grasp_scores(net, X, y, grasp_temperature)]
    if method == "synflow":
        return iterate_synflow(net, sparsity, synflow_iterations)
    if method == "magnitude":
        return [np.abs(w) for w in net.weights]
    return [rng.random(w.shape) for w in net.weights]


def _disconnect_threshold(net, G):
    """m*, the widest path's bottleneck from an input channel to a logit through the channel
    graph of 2-d scores ``G`` (:func:`meanfield.nets.conv.channel_scores`), as
    :func:`meanfield.pruning.critical._disconnect_threshold` for dense nets; the graph's layers
    and skips are SynFlow's (:func:`meanfield.pruning.scoring.flow_steps`)."""
    b = np.full(G[0].shape[1], np.inf)
    for k, skip in flow_steps(net):
        out = np.empty(G[k].shape[0])
        _widest_step(G[k], b, skip == "identity", out)
        if skip is not None and skip != "identity":  # a projection: an edge like any weight
            via = np.empty_like(out)
            _widest_step(G[skip], b, False, via)
            out = np.maximum(out, via)
        b = out
    return b.max()


def conv_critical_sparsity(net, scores, definition="layer"):
    """s_cr of ``scores`` (shaped like ``net.weights``): the smallest global sparsity at which a
    layer (a projection included) is empty ("layer") or no path of kept weights joins the input
    to the logits ("disconnect"), as :func:`meanfield.pruning.critical_sparsity`."""
    definition = _check_definition(definition)
    flat = np.concatenate([np.ravel(a) for a in scores])
    if definition == "layer":
        m = min(a.max() for a in scores)
    else:
        m = _disconnect_threshold(net, channel_scores(scores))
    return _count_le(flat, m) / flat.size


def conv_mask_event(net, masks, definition):
    """Whether boolean ``masks`` make the event of ``definition`` happen (as
    :func:`meanfield.pruning.critical.mask_event`)."""
    if definition == "layer":
        return any(not m.any() for m in masks)
    return _disconnect_threshold(net, channel_scores([m.astype(np.float64) for m in masks])) <= 0


def conv_critical_sparsity_trial(activation, width, depth, sigma_w, sigma_b, *, method="snip",
                                 batch=128, classes=10, image_size=8, kernel_size=3, arch="cnn",
                                 stages=1, rng, dtype=np.float32, definition="layer"):
    """One draw of the critical sparsity of a random conv network (docs/convolutional.md): the
    draws of :func:`meanfield.nets.conv.draw_conv_trial` (network with in_channels = width,
    images N(0, 1), uniform labels), then, for "random", the scores; s_cr by
    :func:`conv_critical_sparsity`. SynFlow's s_cr is the smallest target at which the event
    happens, by bisection (:func:`meanfield.pruning.critical.bisect_target`), as for dense nets.

    Returns
    -------
    float
    """
    check_choice("method", method, METHODS)
    definition = _check_definition(definition)
    net, X, y = draw_conv_trial(get_activation(activation), width, depth, sigma_w, sigma_b,
                                batch, classes, image_size, kernel_size, rng, check_dtype(dtype),
                                arch, stages)
    if method == "synflow":
        def event(target):
            masks = global_masks(iterate_synflow(net, target, 100), target)
            return conv_mask_event(net, masks, definition)

        return bisect_target(event)
    sc = check_finite(net, conv_scores(net, X, y, method, rng=rng), f"{method} scores")
    return conv_critical_sparsity(net, sc, definition)
