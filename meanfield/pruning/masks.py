"""Global masks from scores, kept fractions, rescaling after pruning, shuffled masks
(docs/theory.md §4–5; docs/training.md).
"""

from __future__ import annotations

import numpy as np

from .._validate import (
    InputError,
    InputTypeError,
    check_rng,
)
from ..nets.network import (
    Network,
    check_masks,
    check_network,
)
from ._checks import (
    _check_scores,
    _check_sparsity,
    _n_keep,
)

# ------------------------------------------------------------------------------------------------
# Masks, critical sparsity, rescaling
# ------------------------------------------------------------------------------------------------

def global_masks(scores, sparsity):
    """Global pruning: keep the (1 − s) fraction of weights with the largest scores.

    With N weights in all, the n = N − ⌊(1 − s) N⌋ lowest-scored ones are pruned, and with them
    every weight tied with the n-th lowest score (ties at the threshold are pruned together, so
    slightly more than s may go). O(N) (``np.partition``).

    Parameters
    ----------
    scores : list of array_like
        One array per layer, any shapes, no nan.
    sparsity : float in [0, 1)

    Returns
    -------
    list of ndarray of bool
        True for kept weights, shaped like ``scores``.

    References
    ----------
    docs/theory.md §4.

    Examples
    --------
    >>> from meanfield.pruning import global_masks
    >>> [m.tolist() for m in global_masks([[3.0, 1.0], [2.0, 1.0, 5.0]], 0.2)]
    [[True, False], [True, False, True]]
    """
    sc = _check_scores(scores)
    s = _check_sparsity(sparsity)
    n = sum(a.size for a in sc)
    n_prune = n - _n_keep(s, n)
    if n_prune == 0:
        return [np.ones(a.shape, bool) for a in sc]
    flat = np.concatenate([a.ravel() for a in sc])
    tau = np.partition(flat, n_prune - 1)[n_prune - 1]
    return [a > tau for a in sc]


def kept_fraction(masks, weighted=False):
    """Fraction of weights kept in each layer (or, with ``weighted``, in the whole network).

    Parameters
    ----------
    masks : list of array_like of bool or 0/1
    weighted : bool, default False

    Returns
    -------
    ndarray, shape (n_layers,), or float if ``weighted``
    """
    ms = [np.asarray(m) for m in masks]
    if not ms:
        raise InputError("`masks` is empty: must hold one array per layer")
    kept = np.array([np.count_nonzero(m) for m in ms], dtype=np.float64)
    sizes = np.array([m.size for m in ms], dtype=np.float64)
    return float(kept.sum() / sizes.sum()) if weighted else kept / sizes


RESCALE_MODES = ("neuron", "layer", "data")


def first_layer_variance(weights, X):
    """Per-neuron variance over a batch of the first layer's linear pre-activation W_i · x.

    Var_X(W_i · x) = W_i C W_iᵀ with C the batch covariance of the inputs (centred, divided by
    B), computed in float64. A pixel constant on the batch (MNIST's border) contributes exactly
    0, so a neuron whose weights fall only on such pixels has variance exactly 0.

    Parameters
    ----------
    weights : array_like, shape (N, N₀)
    X : array_like, shape (B, N₀)

    Returns
    -------
    ndarray, shape (N,)
    """
    W = np.asarray(weights, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    Xc = X - X.mean(axis=0)
    Xc[:, np.ptp(X, axis=0) == 0] = 0.0  # exactly constant pixels carry exactly no variance
    Z = Xc @ W.T
    return (Z * Z).mean(axis=0)


def _check_rescale_X(net, X):
    if X is None:
        raise InputError("`X` == None with `mode` == 'data': the data-aware rescaling needs the "
                         "scoring batch, an array of shape (B, N₀) with B >= 2")
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputTypeError("`X`: must be a numeric array of shape (B, N₀)") from None
    if X.ndim != 2 or X.shape[1] != net.n_in or X.shape[0] < 2:
        raise InputError(f"`X` of shape {X.shape}: must be (B, {net.n_in}) with B >= 2")
    if not np.isfinite(X).all():
        raise InputError("`X`: must be finite")
    return X


def _check_rescale(net, masks, mode, X):
    """The checked arguments of :func:`rescale` (X only for ``mode="data"``)."""
    net = check_network(net)
    masks = check_masks(net, masks)
    if masks is None:
        raise InputTypeError("`masks`: must be a list of arrays shaped like the weights")
    if not isinstance(mode, str) or mode not in RESCALE_MODES:
        raise InputError(f"`mode` == {mode!r}: must be one of {', '.join(map(repr, RESCALE_MODES))}")
    if mode == "data":
        X = _check_rescale_X(net, X)
    return net, masks, X


def _factors(net, masks, mode, X):
    """ρ of each layer's rows (n_out,), float64, as :func:`rescale` defines them (checked
    inputs; "layer": one value repeated over the rows)."""
    out = []
    for k, (w, m) in enumerate(zip(net.weights, masks)):
        rho = row_factors(w, m, "neuron" if mode == "data" else mode)
        if mode == "data" and k == 0:
            w64 = w.astype(np.float64)
            kept = w64 * m.astype(np.float64)
            v_dense = first_layer_variance(w64, X)
            v_kept = first_layer_variance(kept, X)
            informative = (v_dense > 0) & (v_kept > 0)
            rho[informative] = np.sqrt(v_dense[informative] / v_kept[informative])
        out.append(rho)
    return out


def row_factors(w, mask, mode="neuron"):
    """The norm-restoring factors ρ of one weight array's rows (docs/theory.md §5): row i of
    ``w`` is output unit i (a dense row, or a conv filter's whole fan-in, any trailing shape),
    ρ_i = √(Σ w_i² / Σ (δ_i w_i)²) for ``"neuron"``, one ρ = √(Σ w² / Σ (δ w)²) repeated over the
    rows for ``"layer"``; ρ = 1 where nothing is kept. Checked inputs; float64, shape (n_out,).
    Shared by :func:`rescale` and :func:`meanfield.torch.prune_at_init`."""
    w64 = np.asarray(w, np.float64).reshape(np.shape(w)[0], -1)
    kept = w64 * np.asarray(mask, np.float64).reshape(w64.shape)
    axis = None if mode == "layer" else 1
    num = np.atleast_1d((w64 * w64).sum(axis=axis))
    den = np.atleast_1d((kept * kept).sum(axis=axis))
    rho = np.ones_like(num)
    ok = den > 0
    rho[ok] = np.sqrt(num[ok] / den[ok])
    return np.broadcast_to(rho, (w64.shape[0],)).copy() if axis is None else rho


def rescale_factors(net, masks, mode="neuron", X=None):
    """The factors ρ of :func:`rescale`, per layer and row: ``rescale(net, masks, mode, X)``'s
    weights are ``ρ[k][:, None] * masks[k] * net.weights[k]`` (computed in float64).

    Parameters and errors as :func:`rescale`.

    Returns
    -------
    list of ndarray, each (n_out,) float64
        ρ ≥ 0 for every row of every layer, readout included ("layer": the layer's one factor
        on every row).
    """
    net, masks, X = _check_rescale(net, masks, mode, X)
    return _factors(net, masks, mode, X)


def rescale(net, masks, mode="neuron", X=None):
    """The pruned network with its weights rescaled to restore their variance (SBP-SR, docs/theory.md §5).

    ``mode="neuron"`` (the paper's Algorithm 1): each neuron's incoming weights get their own
    factor, W^l ← ρ^l ∘ δ^l ∘ W^l row by row, ρ^l_i = √(Σ_j (W^l_ij)² / Σ_j (δ^l_ij W^l_ij)²),
    so that Σ_j (ρ^l_i δ^l_ij W^l_ij)² = Σ_j (W^l_ij)² for every neuron i of every layer,
    readout included. A fully pruned row stays zero (ρ = 1).

    ``mode="layer"`` (one factor per layer, as the paper's slides write it): the same restoration
    over the whole layer, W^l ← ρ^l δ^l ∘ W^l with the scalar
    ρ^l = √(Σ_ij (W^l_ij)² / Σ_ij (δ^l_ij W^l_ij)²), so that Σ_ij (ρ^l δ^l_ij W^l_ij)² =
    Σ_ij (W^l_ij)² for every layer, readout included (ρ^l = 1 for a fully pruned layer). Neurons
    that keep more than their share of the layer's squared weight keep more than their variance.

    ``mode="data"``: "neuron" for W², …, W^L and the readout, and a data-aware factor for the
    first layer, ρ¹_i = √(Var_X(W¹_i · x) / Var_X((δ¹ ∘ W¹)_i · x)) over the batch ``X`` (the
    scoring batch in :func:`meanfield.train`), so that each first-layer neuron's
    pre-activation variance on that batch is exactly the dense net's. Why: the norm factor
    restores Σ_j W_ij² Var(x_j) only when the inputs are exchangeable (equal variances, no
    correlation); real pixels are neither — after SNIP a first-layer neuron keeps a handful of
    high-variance pixels and the norm factor overshoots (measured in docs/training.md). When
    the data say nothing about the scale — the kept row, or the dense row, has variance 0 on the
    batch (a neuron that keeps nothing, or only pixels constant on the batch) — the norm factor
    of "neuron" is used instead (ρ = 1 for a row that keeps nothing).

    For ResNets this rescales the weights inside each residual block (the branch scale 1/√L of a
    Stable ResNet is untouched); their first layer (input to width) has no skip, as in an FFNN.
    Computed in float64.

    Parameters
    ----------
    net : Network
    masks : list of array_like
        0/1 or bool, shaped like ``net.weights``.
    mode : {"neuron", "layer", "data"}, default "neuron"
    X : array_like, shape (B, N₀), B >= 2
        The batch of inputs for ``mode="data"`` (required then, ignored otherwise).

    Returns
    -------
    Network
        A new network (new arrays) whose weights are the rescaled pruned ones, so that it needs
        no mask: pruned weights are 0.

    Raises
    ------
    InputError, InputTypeError
        An unknown ``mode``; ``mode="data"`` without ``X`` or with ``X`` of the wrong shape.

    References
    ----------
    Hayou, Ton, Doucet, Teh (2021), *Robust Pruning at Initialization*, §4 (SBP-SR).
    """
    net, masks, X = _check_rescale(net, masks, mode, X)
    new = []
    for w, m, rho in zip(net.weights, masks, _factors(net, masks, mode, X)):
        kept = w.astype(np.float64) * m.astype(np.float64)
        new.append((rho[:, None] * kept).astype(w.dtype))
    return Network(new, [b.copy() for b in net.biases], net.activation, net.arch, net.depth,
                   net.sigma_w, net.sigma_b)


def shuffle_masks(masks, rng):
    """The masks with their kept positions permuted at random within each layer.

    Each layer keeps exactly its count of kept weights, at positions drawn uniformly from the
    layer's (one ``rng.permutation`` of the flattened mask per layer, in layer order): the
    layer-wise shuffle ablation of Frankle, Dziugaite, Roy, Carbin (2021), *Pruning neural
    networks at initialization: why are we missing the mark?*.

    Parameters
    ----------
    masks : list of array_like
        0/1 or bool.
    rng : numpy.random.Generator

    Returns
    -------
    list of ndarray
        New arrays, shaped and typed like ``masks``.
    """
    rng = check_rng(rng)
    out = []
    for m in masks:
        m = np.asarray(m)
        out.append(rng.permutation(m.ravel()).reshape(m.shape))
    return out


