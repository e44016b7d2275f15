"""Pruning scores at initialization: SNIP, GraSP, SynFlow, magnitude, random (docs/theory.md §4).

Every score function returns a list of arrays shaped like ``net.weights`` (readout included; biases
are never scored or pruned). :func:`meanfield.pruning.global_masks` keeps the weights with the
*largest* scores over the whole network; :func:`scores` returns, for every method, scores oriented
that way ("keep the largest"), which for GraSP is the negative of the paper's score.
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import (
    InputError,
    InputTypeError,
    check_choice,
    check_int,
    check_rng,
    check_scalar,
)
from ..nets.network import (
    Network,
    check_inputs,
    check_labels,
    check_masks,
    check_network,
    loss_and_grads,
)
from ._checks import (
    _check_sparsity,
)
from .masks import global_masks

__all__ = ["snip_scores", "grasp_scores", "synflow_scores", "magnitude_scores", "random_scores",
           "scores", "hessian_vector_product", "check_temperature", "METHODS", "GRASP_TEMPERATURE"]

METHODS = ("snip", "grasp", "synflow", "magnitude", "random")
#: GraSP's default temperature, everywhere (the reference implementations of GraSP, the authors'
#: and Synaptic-Flow's, use T = 200)
GRASP_TEMPERATURE = 200.0
# ------------------------------------------------------------------------------------------------
# Scores
# ------------------------------------------------------------------------------------------------

def snip_scores(net, X, y):
    """SNIP (connection sensitivity) scores g^l_ij = |W^l_ij ∂ℒ/∂W^l_ij|.

    ℒ is the mean cross-entropy on the batch (X, y) (:func:`meanfield.nets.loss_and_grads`).

    Parameters
    ----------
    net : Network
    X : array_like, shape (B, N₀)
    y : array_like of int, shape (B,)

    Returns
    -------
    list of ndarray
        Shaped like ``net.weights``, dtype ``net.dtype``.

    References
    ----------
    Lee, Ajanthan, Torr (2019), *SNIP: single-shot network pruning based on connection
    sensitivity*, eq. (6) (up to their normalisation by the sum, which does not change a ranking);
    docs/theory.md §4.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.nets import init_network
    >>> from meanfield.pruning import snip_scores
    >>> rng = np.random.default_rng(0)
    >>> net = init_network("tanh", 6, 2, 1.2, 0.1, classes=3, rng=rng)
    >>> s = snip_scores(net, rng.standard_normal((4, 6)), [0, 1, 2, 0])
    >>> [x.shape for x in s], bool(min(x.min() for x in s) >= 0)
    ([(6, 6), (6, 6), (3, 6)], True)
    """
    _, grads, _ = loss_and_grads(net, X, y)
    return [np.abs(w * g) for w, g in zip(net.weights, grads)]


def magnitude_scores(net):
    """Magnitude scores |W^l_ij| (docs/theory.md §4).

    Returns
    -------
    list of ndarray
        Shaped like ``net.weights``.
    """
    net = check_network(net)
    return [np.abs(w) for w in net.weights]


def random_scores(net, rng):
    """Random scores: independent U[0, 1) draws (``rng.random``, float64, layer by layer), so that
    global pruning removes a uniformly random subset of the weights.

    Returns
    -------
    list of ndarray, float64
        Shaped like ``net.weights``.
    """
    net = check_network(net)
    rng = check_rng(rng)
    return [rng.random(w.shape) for w in net.weights]


def hessian_vector_product(net, X, y, v):
    """H v, the Hessian of the mean cross-entropy with respect to the weights times v, exactly.

    Computed by forward-mode differentiation of the backward pass (Pearlmutter's R-operator):
    tangents ẏ^l, ḣ^l of the forward pass and δ̇^l of the backward one, in float64, so it is
    exact up to rounding. The biases are held fixed (H is the weight block of the Hessian).
    Needs φ'' (``activation.has_d2``).

    Parameters
    ----------
    net : Network
    X : array_like, shape (B, N₀)
    y : array_like of int, shape (B,)
    v : list of array_like
        Shaped like ``net.weights``.

    Returns
    -------
    list of ndarray, float64
        Shaped like ``net.weights``.

    References
    ----------
    Pearlmutter (1994), *Fast exact multiplication by the Hessian*, Neural Computation 6.
    """
    net = check_network(net)
    X = check_inputs(net, X).astype(np.float64)
    y = check_labels(net, y, X.shape[0])
    v = check_masks(net, v, "v")
    if v is None:
        raise InputTypeError("`v`: must be a list of arrays shaped like the weights")
    if not net.activation.has_d2:
        raise InputError(f"activation {net.activation.name!r} has no second derivative: "
                         f"the Hessian-vector product needs one (build it with d2phi)")
    return _hvp(net, X, y, [np.asarray(a, np.float64) for a in v])


def _hvp(net, X, y, V):
    act = net.activation
    W = [w.astype(np.float64) for w in net.weights]
    b = [c.astype(np.float64) for c in net.biases]
    L, alpha, residual = net.depth, net.alpha, net.arch != "ffnn"
    Ys, dYs, Hs, dHs = [], [], [], []
    h, dh = X, np.zeros_like(X)
    for k in range(L):
        lin, dlin = h @ W[k].T + b[k], dh @ W[k].T + h @ V[k].T
        if residual and k > 0:
            yk, dyk = Ys[-1] + alpha * lin, dYs[-1] + alpha * dlin
        else:
            yk, dyk = lin, dlin
        h, dh = act(yk, 0), act(yk, 1) * dyk
        Ys.append(yk), dYs.append(dyk), Hs.append(h), dHs.append(dh)
    z = h @ W[L].T + b[L]
    dz = dh @ W[L].T + h @ V[L].T
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    B = X.shape[0]
    dp = p * (dz - (p * dz).sum(axis=1, keepdims=True))
    delta = p.copy()
    delta[np.arange(B), y] -= 1.0
    delta /= B
    ddelta = dp / B
    out = [None] * (L + 1)
    out[L] = ddelta.T @ Hs[L - 1] + delta.T @ dHs[L - 1]
    a, da = delta @ W[L], ddelta @ W[L] + delta @ V[L]
    d1 = act(Ys[L - 1], 1)
    d, dd = a * d1, da * d1 + a * act(Ys[L - 1], 2) * dYs[L - 1]
    for k in range(L - 1, -1, -1):
        res = residual and k > 0
        c = alpha if res else 1.0
        u, du = c * d, c * dd
        h_prev, dh_prev = (X, np.zeros_like(X)) if k == 0 else (Hs[k - 1], dHs[k - 1])
        out[k] = du.T @ h_prev + u.T @ dh_prev
        if k == 0:
            break
        a, da = u @ W[k], du @ W[k] + u @ V[k]
        d1 = act(Ys[k - 1], 1)
        nd = a * d1
        ndd = da * d1 + a * act(Ys[k - 1], 2) * dYs[k - 1]
        d, dd = (d + nd, dd + ndd) if res else (nd, ndd)
    return out


def grasp_scores(net, X, y, temperature=GRASP_TEMPERATURE):
    """GraSP scores S = −W ∘ (H g), g = ∂ℒ/∂W, H the Hessian of ℒ in the weights.

    ℒ is the mean cross-entropy of softmax(z / T) on (X, y), z the logits and T the
    ``temperature`` (the reference implementations of GraSP, the authors' and Synaptic-Flow's,
    use T = 200; T = 1 is the plain loss). g and H g are computed in float64, H g exactly by
    :func:`hessian_vector_product`: dividing the logits by T is dividing the readout's weights and
    bias by T, so with W' that network and D the map dividing the readout block by T,
    g = D g', H = D H' D and S = −W' ∘ H'(D² g'). GraSP *removes the weights with the largest S*
    (it keeps those whose removal least reduces the gradient flow), so to prune with
    :func:`global_masks` (which keeps the largest scores) use ``-S``;
    ``scores(net, X, y, "grasp")`` returns ``-S``.

    Parameters
    ----------
    net : Network
    X : array_like, shape (B, N₀)
    y : array_like of int, shape (B,)
    temperature : float > 0, default 200.0 (:data:`GRASP_TEMPERATURE`)
        T, the logits' divisor.

    Returns
    -------
    list of ndarray, float64
        S, shaped like ``net.weights``.

    References
    ----------
    Wang, Zhang, Grosse (2020), *Picking winning tickets before training by preserving gradient
    flow*, eq. (8) and Algorithm 1; docs/theory.md §4.
    """
    net = check_network(net)
    T = check_temperature(temperature)
    weights = [w.astype(np.float64) for w in net.weights]
    biases = [c.astype(np.float64) for c in net.biases]
    if T != 1.0:
        weights[-1] /= T
        biases[-1] /= T
    net64 = Network(weights, biases, net.activation, net.arch, net.depth, net.sigma_w,
                    net.sigma_b)
    _, g, _ = loss_and_grads(net64, X, y)
    if T != 1.0:
        g[-1] /= T * T
    hg = hessian_vector_product(net64, X, y, g)
    return [-w * v for w, v in zip(net64.weights, hg)]


def check_temperature(temperature, name="temperature"):
    """``temperature`` as a float, finite and > 0 (InputError / InputTypeError naming ``name``)."""
    return check_scalar(name, temperature, min_val=0.0, include_boundaries="neither")


def flow_steps(net):
    """The layers of ``net``'s linearised network for :func:`flow_gradients`: per main layer (the
    readout last) ``(index, skip)``, ``skip`` None (no skip), ``"identity"`` (a residual block's)
    or the index of the block's projection weight. A dense :class:`Network` or a conv network
    (whose weights :func:`iterate_synflow` sums over their offsets)."""
    layers = getattr(net, "layers", None)
    if layers is None:  # dense: W¹ and the readout without skip, residual blocks between
        L, residual = net.depth, net.arch != "ffnn"
        return [(k, "identity" if residual and 0 < k < L else None) for k in range(L + 1)]
    steps = []
    for i, layer in enumerate(layers):
        if layer.kind == "shortcut":
            continue
        block = net.alpha is not None and layer.kind == "conv" and i > 0
        proj = i + 1 if i + 1 < len(layers) and layers[i + 1].kind == "shortcut" else None
        steps.append((i, (proj if proj is not None else "identity") if block else None))
    return steps


def flow_gradients(A, steps, alpha):
    """∂ℛ/∂A / ℛ (SynFlow's score is A ∘ ∂ℛ/∂A) for the linearised network with weights
    A = |W| ∘ δ (2-d; no activation, no biases, residual branches kept: r^l = S^l r^{l−1} +
    α A^l r^{l−1} in a block, S^l the identity or a projection's A; r^0 = 1), ℛ = 1ᵀ r^out.
    ``steps``: as :func:`flow_steps`. Vectors are normalised at every layer and their log-scales
    carried, so nothing overflows at any depth."""

    def unit(x):
        n = x.max()
        return (x / n, math.log(n)) if n > 0 else (x, 0.0)

    r, c = unit(np.ones(A[steps[0][0]].shape[1]))
    rs, cs = [r], [c]  # r^k = e^{cs[k]} rs[k]
    for k, skip in steps:
        nxt = A[k] @ r
        if skip is not None:
            nxt = alpha * nxt + (r if skip == "identity" else A[skip] @ r)
        r, dc = unit(nxt)
        c += dc
        rs.append(r), cs.append(c)
    out = [np.zeros_like(a) for a in A]
    total = r.sum()
    if total == 0.0:
        return out
    log_r = c + math.log(total)
    ell, e = np.ones(r.size), 0.0  # ∂ℛ/∂r^{k+1} = e^e · ell
    for j in range(len(steps) - 1, -1, -1):
        k, skip = steps[j]
        f = alpha if skip is not None else 1.0
        scale = math.exp(e + cs[j] - log_r)
        out[k] = np.outer(ell, rs[j]) * (scale * f)
        back = f * (A[k].T @ ell)
        if skip == "identity":
            back += ell
        elif skip is not None:
            out[skip] = np.outer(ell, rs[j]) * scale
            back += A[skip].T @ ell
        ell, de = unit(back)
        e += de
    return out


def synflow_scores(net, sparsity, iterations=100):
    """Iterative SynFlow scores, whose global top-(1 − s) is SynFlow's mask at sparsity s.

    Each round scores the current masked network by |θ ∘ ∂ℛ/∂θ| with ℛ = 1ᵀ(∏_l |W^l ∘ δ^l|) 1, the
    output of the network run on an all-ones input with weights |W| ∘ δ, the activation replaced
    by the identity, biases dropped (residual connections kept); then it prunes globally to
    sparsity s_k = 1 − (1 − s)^{k/n} (the exponential schedule), k = 1 … n. The scores of the last
    round are returned: ``global_masks(synflow_scores(net, s), s)`` is SynFlow's final mask
    (weights pruned in earlier rounds score 0). Computed in float64 and divided by ℛ (a positive
    constant, which changes no ranking) so that deep networks do not overflow.

    Parameters
    ----------
    net : Network
    sparsity : float in [0, 1)
    iterations : int >= 1, default 100
        n, the number of pruning rounds.

    Returns
    -------
    list of ndarray, float64
        Shaped like ``net.weights``.

    References
    ----------
    Tanaka, Kunin, Yamins, Ganguli (2020), *Pruning neural networks without any data by
    iteratively conserving synaptic flow*, Algorithm 1; docs/theory.md §4.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.nets import init_network
    >>> from meanfield.pruning import synflow_scores, global_masks, kept_fraction
    >>> net = init_network("tanh", 20, 3, 1.0, 0.0, rng=np.random.default_rng(0))
    >>> s = synflow_scores(net, 0.9, iterations=10)
    >>> round(1 - kept_fraction(global_masks(s, 0.9), weighted=True), 6)
    0.9
    """
    net = check_network(net)
    s = _check_sparsity(sparsity)
    n = check_int("iterations", iterations, 1)
    return iterate_synflow(net, s, n)


def iterate_synflow(net, sparsity, iterations):
    """The rounds of :func:`synflow_scores` for a dense or a conv network (validated arguments).
    A conv weight (C_out, C_in, k, k) enters the linearised network summed over its offsets (on
    the all-ones input with circular padding every activation is constant over positions), so
    ∂ℛ/∂A[i, j, a, b] = ∂ℛ/∂M[i, j], M the summed matrix: its score is
    A[i, j, a, b] · ∂ℛ/∂M[i, j], exactly."""
    absw = [np.abs(w.astype(np.float64)) for w in net.weights]
    masks = [np.ones(w.shape, bool) for w in net.weights]
    steps = flow_steps(net)
    for k in range(1, iterations + 1):
        A = [a * m for a, m in zip(absw, masks)]
        M = [a.sum(axis=(2, 3)) if a.ndim == 4 else a for a in A]
        G = flow_gradients(M, steps, net.alpha)
        sc = [a * (g[:, :, None, None] if a.ndim == 4 else g) for a, g in zip(A, G)]
        masks = global_masks(sc, 1.0 - (1.0 - sparsity) ** (k / iterations))
    return sc


def scores(net, X, y, method, *, sparsity=None, rng=None, grasp_temperature=GRASP_TEMPERATURE):
    """Scores of every weight by ``method``, oriented so that pruning keeps the largest.

    Parameters
    ----------
    net : Network
    X : array_like, shape (B, N₀), or None
        The batch; needed by "snip" and "grasp", ignored by the others.
    y : array_like of int, shape (B,), or None
    method : {"snip", "grasp", "synflow", "magnitude", "random"}
        :func:`snip_scores`; ``-``:func:`grasp_scores` (GraSP prunes the largest of its own
        score); :func:`synflow_scores` (needs ``sparsity``); :func:`magnitude_scores`;
        :func:`random_scores` (needs ``rng``).
    sparsity : float in [0, 1), optional
        Target sparsity, for "synflow".
    rng : numpy.random.Generator, optional
        For "random".
    grasp_temperature : float > 0, default 200.0 (:data:`GRASP_TEMPERATURE`)
        For "grasp": the logits' divisor T (:func:`grasp_scores`).

    Returns
    -------
    list of ndarray
        Shaped like ``net.weights``.

    Raises
    ------
    ValueError
        Unknown ``method``; "synflow" without ``sparsity``.
    TypeError
        "random" without a Generator ``rng``.
    """
    check_choice("method", method, METHODS)
    if method == "snip":
        return snip_scores(net, X, y)
    if method == "grasp":
        return [-s for s in grasp_scores(net, X, y, grasp_temperature)]
    if method == "synflow":
        if sparsity is None:
            raise InputError("`sparsity` == None: method 'synflow' needs the target sparsity "
                             "(a number in [0, 1))")
        return synflow_scores(net, sparsity)
    if method == "magnitude":
        return magnitude_scores(net)
    return random_scores(net, rng)


