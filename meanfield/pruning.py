"""Pruning at initialization: scores, global masks, critical sparsity, rescaling. THEORY.md §5–6.

Every score function returns a list of arrays shaped like ``net.weights`` (readout included; biases
are never scored or pruned). :func:`global_masks` keeps the weights with the *largest* scores over
the whole network; :func:`scores` returns, for every method, scores oriented that way ("keep the
largest"), which for GraSP is the negative of the paper's score.

The Monte Carlo of the critical sparsity s_cr (THEORY.md §5) calls
:func:`snip_critical_sparsity_trial` once per trial: one random network, one batch, SNIP scores and
s_cr, fused so that no score is stored twice and no array of all scores is sorted or concatenated.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import networks as _nw
from ._validate import (
    InputError,
    InputTypeError,
    check_array,
    check_choice,
    check_dtype,
    check_int,
    check_probability,
    check_rng,
    check_scalar,
)
from .activations import get_activation
from .networks import (
    Network,
    check_finite,
    check_inputs,
    check_labels,
    check_masks,
    check_network,
    scratch,
    standard_normal,
)

__all__ = ["snip_scores", "grasp_scores", "synflow_scores", "magnitude_scores", "random_scores",
           "scores", "global_masks", "critical_sparsity", "kept_fraction", "rescale",
           "shuffle_masks", "RESCALE_MODES", "first_layer_variance", "effective_chi",
           "hessian_vector_product", "snip_critical_sparsity_trial", "critical_sparsity_trial",
           "METHODS", "DEFINITIONS"]

METHODS = ("snip", "grasp", "synflow", "magnitude", "random")
# what "critical" means (docs/critical_sparsity.md, "Which event s_cr marks"): "layer", the paper's
# (some layer is fully pruned); "disconnect", the output no longer depends on the input
DEFINITIONS = ("layer", "disconnect")


# ------------------------------------------------------------------------------------------------
# Kernels
# ------------------------------------------------------------------------------------------------

@njit(cache=True)
def _widest_step(G, b, residual, out):
    """One layer of the widest-path recursion of the "disconnect" critical sparsity:
    out_i = max_j min(G_ij, b_j), then max(out_i, b_i) if ``residual`` (the skip y^{l−1}_i → y^l_i,
    never pruned). G (n_out, n_in) scores, b (n_in,) float64, out (n_out,) float64."""
    n_out, n_in = G.shape
    for i in range(n_out):
        best = -np.inf
        for j in range(n_in):
            v = min(float(G[i, j]), b[j])
            if v > best:
                best = v
        if residual and b[i] > best:
            best = b[i]
        out[i] = best


@njit(cache=True)
def _count_le(s, m):
    """#{i : s[i] <= m}, one vectorised pass."""
    c = 0
    for i in range(s.size):
        c += s[i] <= m
    return c


# ------------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------------

def _check_sparsity(sparsity):
    return check_probability("sparsity", sparsity)


def _check_scores(scores):
    if isinstance(scores, np.ndarray) or not hasattr(scores, "__len__") or len(scores) == 0:
        raise TypeError("`scores`: must be a non-empty list of arrays, one per layer")
    out = []
    for l, s in enumerate(scores):
        a = np.asarray(s)
        if a.size == 0:
            raise ValueError(f"`scores[{l}]` is empty: every layer must have weights")
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise TypeError(f"`scores[{l}]` has dtype {a.dtype}: must be real")
        if np.isnan(a).any():
            raise ValueError(f"`scores[{l}]` contains nan: scores must be comparable")
        out.append(a)
    return out


def _check_definition(definition):
    if not isinstance(definition, str) or definition not in DEFINITIONS:
        raise InputError(f"`definition` == {definition!r}: must be one of "
                         f"{', '.join(map(repr, DEFINITIONS))}")
    return definition


def _disconnect_threshold(scores, arch):
    """m* = the largest score threshold τ at which some path from an input to a logit keeps all its
    weights (g > τ): the max over paths of the min score on the path, the skips of a ResNet's
    blocks counting as unprunable edges. By dynamic programming over the layers (``b_i``: the best
    path's bottleneck to unit i), O(#weights). ``scores``: 2-d arrays shaped like the weights
    (checked by the caller)."""
    L = len(scores) - 1
    b = np.full(scores[0].shape[1], np.inf)
    for k, G in enumerate(scores):
        out = np.empty(G.shape[0])
        _widest_step(G, b, arch != "ffnn" and 0 < k < L, out)
        b = out
    return b.max()


def _check_chain(scores, arch):
    """The shapes "disconnect" needs: 2-d arrays (fan_out, fan_in) that chain, square blocks."""
    L = len(scores) - 1
    for l, a in enumerate(scores):
        if a.ndim != 2 or (l > 0 and a.shape[1] != scores[l - 1].shape[0]):
            raise InputError(f"`scores[{l}]` has shape {a.shape}: definition='disconnect' needs "
                             f"one 2-d array per layer shaped like the weights, (fan_out, fan_in), "
                             f"each fan_in the previous fan_out")
        if arch != "ffnn" and 0 < l < L and a.shape[0] != a.shape[1]:
            raise InputError(f"`scores[{l}]` has shape {a.shape}: a residual block of "
                             f"arch={arch!r} must be square")


def _n_keep(sparsity, n):
    """⌊(1 − s) n⌋, taking (1 − s) n to be an integer when it is one up to rounding."""
    x = (1.0 - sparsity) * n
    r = round(x)
    return int(r) if abs(x - r) <= 1e-9 * max(1.0, x) else int(math.floor(x))


# ------------------------------------------------------------------------------------------------
# Scores
# ------------------------------------------------------------------------------------------------

def snip_scores(net, X, y):
    """SNIP (connection sensitivity) scores g^l_ij = |W^l_ij ∂ℒ/∂W^l_ij|.

    ℒ is the mean cross-entropy on the batch (X, y) (:func:`meanfield.networks.loss_and_grads`).

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
    THEORY.md §5.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.networks import init_network
    >>> from meanfield.pruning import snip_scores
    >>> rng = np.random.default_rng(0)
    >>> net = init_network("tanh", 6, 2, 1.2, 0.1, classes=3, rng=rng)
    >>> s = snip_scores(net, rng.standard_normal((4, 6)), [0, 1, 2, 0])
    >>> [x.shape for x in s], bool(min(x.min() for x in s) >= 0)
    ([(6, 6), (6, 6), (3, 6)], True)
    """
    _, grads, _ = _nw.loss_and_grads(net, X, y)
    return [np.abs(w * g) for w, g in zip(net.weights, grads)]


def magnitude_scores(net):
    """Magnitude scores |W^l_ij| (THEORY.md §5).

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
        raise TypeError("`v`: must be a list of arrays shaped like the weights")
    if not net.activation.has_d2:
        raise ValueError(f"activation {net.activation.name!r} has no second derivative: "
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


def grasp_scores(net, X, y, temperature=1.0):
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
    temperature : float > 0, default 1.0
        T, the logits' divisor.

    Returns
    -------
    list of ndarray, float64
        S, shaped like ``net.weights``.

    References
    ----------
    Wang, Zhang, Grosse (2020), *Picking winning tickets before training by preserving gradient
    flow*, eq. (8) and Algorithm 1; THEORY.md §5.
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
    _, g, _ = _nw.loss_and_grads(net64, X, y)
    if T != 1.0:
        g[-1] /= T * T
    hg = hessian_vector_product(net64, X, y, g)
    return [-w * v for w, v in zip(net64.weights, hg)]


def check_temperature(temperature, name="temperature"):
    """``temperature`` as a float, finite and > 0 (InputError / InputTypeError naming ``name``)."""
    return check_scalar(name, temperature, min_val=0.0, include_boundaries="neither")


def _synflow_round(net, A):
    """SynFlow scores A ∘ ∂ℛ/∂A for the linearised network with weights A = |W| ∘ δ (no
    activation, no biases, residual branches kept), divided by ℛ. Vectors are normalised at every
    layer and their log-scales carried, so nothing overflows at any depth."""
    L, alpha, residual = net.depth, net.alpha, net.arch != "ffnn"

    def unit(x):
        n = x.max()
        return (x / n, math.log(n)) if n > 0 else (x, 0.0)

    r, c = unit(np.ones(net.n_in))
    rs, cs = [r], [c]  # r^k = e^{cs[k]} rs[k]
    for k in range(L + 1):
        nxt = A[k] @ r
        if residual and 0 < k < L:
            nxt = r + alpha * nxt
        r, dc = unit(nxt)
        c += dc
        rs.append(r), cs.append(c)
    total = r.sum()
    if total == 0.0:
        return [np.zeros_like(a) for a in A]
    log_r = c + math.log(total)
    ell, e = np.ones(net.classes), 0.0  # ∂ℛ/∂r^{k+1} = e^e · ell
    out = [None] * (L + 1)
    for k in range(L, -1, -1):
        res = residual and 0 < k < L
        f = alpha if res else 1.0
        scale = math.exp(e + cs[k] - log_r) * f
        out[k] = A[k] * np.outer(ell, rs[k]) * scale
        back = A[k].T @ ell
        ell, de = unit(ell + f * back if res else back)
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
    iteratively conserving synaptic flow*, Algorithm 1; THEORY.md §5.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.networks import init_network
    >>> from meanfield.pruning import synflow_scores, global_masks, kept_fraction
    >>> net = init_network("tanh", 20, 3, 1.0, 0.0, rng=np.random.default_rng(0))
    >>> s = synflow_scores(net, 0.9, iterations=10)
    >>> round(1 - kept_fraction(global_masks(s, 0.9), weighted=True), 6)
    0.9
    """
    net = check_network(net)
    s = _check_sparsity(sparsity)
    n = check_int("iterations", iterations, 1)
    absw = [np.abs(w.astype(np.float64)) for w in net.weights]
    masks = [np.ones(w.shape, bool) for w in net.weights]
    for k in range(1, n + 1):
        sc = _synflow_round(net, [a * m for a, m in zip(absw, masks)])
        masks = global_masks(sc, 1.0 - (1.0 - s) ** (k / n))
    return sc


def scores(net, X, y, method, *, sparsity=None, rng=None, grasp_temperature=1.0):
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
    grasp_temperature : float > 0, default 1.0
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
            raise ValueError("`sparsity` == None: method 'synflow' needs the target sparsity "
                             "(a number in [0, 1))")
        return synflow_scores(net, sparsity)
    if method == "magnitude":
        return magnitude_scores(net)
    return random_scores(net, rng)


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
    THEORY.md §5.

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


def critical_sparsity(scores, *, definition="layer", arch="ffnn"):
    """Critical sparsity s_cr = #{g ≤ m} / #{all}: the smallest global sparsity at which pruning by
    these scores (ties at m pruned together, as in :func:`global_masks`) makes the event of
    ``definition`` happen. docs/critical_sparsity.md, "Which event s_cr marks".

    * ``"layer"`` (the paper's): some layer is fully pruned, m = min_l max_ij g^l_ij. An emptied
      FFNN layer makes the output a constant; an emptied residual block of a ResNet does not (its
      skip carries y^{l−1} on), so for ResNets this is not a loss of the input.
    * ``"disconnect"``: the output no longer depends on the input: no path from an input to a logit
      keeps all its weights. m = m* = max over such paths of the smallest score on the path (a
      ResNet's skips count as edges that are never pruned): at threshold τ >= m* every path has
      lost a weight, at τ < m* the best path is whole. In a ResNet (:mod:`meanfield.networks`:
      y¹ = W¹x + B¹ and the readout have no skip) every path crosses W¹ and W^out, so
      m* <= min(max g¹, max g^out): emptying the input layer (y¹ = B¹) or the readout
      (logits = B^out) disconnects, but the paths are usually cut earlier, once the few weights
      left in W¹ and W^out no longer meet. In an FFNN m* <= the "layer" m (a path crosses every
      layer), with equality unless a path is cut before any layer is empty.

    O(#weights) either way (one pass for the maxima or for the widest-path recursion, one to
    count).

    Parameters
    ----------
    scores : list of array_like
        One array per layer (W¹ first, readout last), no nan. For ``"disconnect"``, 2-d arrays
        shaped like the weights, (fan_out, fan_in).
    definition : {"layer", "disconnect"}, default "layer"
    arch : {"ffnn", "resnet", "stable_resnet"}, default "ffnn"
        The architecture the scores come from (used by ``"disconnect"`` only).

    Returns
    -------
    float

    References
    ----------
    Hayou, Ton, Doucet, Teh (2021), *Robust Pruning at Initialization*, §3; THEORY.md §5.

    Examples
    --------
    >>> from meanfield.pruning import critical_sparsity
    >>> critical_sparsity([[0.5, 2.0, 0.1], [1.0, 0.7]])  # m = 1.0: 4 of 5 scores are <= m
    0.8
    >>> sc = [[[0.5, 2.0]], [[0.3]], [[4.0]]]  # 2 inputs -> 1 unit -> 1 unit -> 1 logit
    >>> critical_sparsity(sc, definition="disconnect")  # every path crosses the 0.3
    0.25
    >>> critical_sparsity(sc, definition="disconnect", arch="resnet")  # the skip bypasses it
    0.75
    """
    definition = _check_definition(definition)
    check_choice("arch", arch, _nw.ARCHS)
    sc = _check_scores(scores)
    if definition == "disconnect":
        _check_chain(sc, arch)
        m = _disconnect_threshold(sc, arch)
    else:
        m = min(a.max() for a in sc)
    return sum(int(np.count_nonzero(a <= m)) for a in sc) / sum(a.size for a in sc)


def effective_chi(net, X):
    """The backward gain of each hidden layer of a (pruned, rescaled) network, measured on inputs.

    Mean-field theory's χ₁ = σ_w² E[φ'(y)²] is the factor by which the squared norm of the
    backpropagated error changes from one layer to the next (THEORY.md §2; ordered < 1, EOC = 1,
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
    >>> from meanfield.networks import init_network
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
    _, (H, Y) = _nw._forward(net, weights, np.ascontiguousarray(X))
    if _nw._is_tanh(net.activation):
        dphi2 = np.mean(((1.0 - H) * (1.0 + H)) ** 2, axis=(1, 2))
    else:
        dphi2 = np.array([np.mean(net.activation(Y[k], 1) ** 2) for k in range(L)])
    chi = np.empty(L - 1)
    for k in range(L - 1):                       # hidden layer k + 1, fed back through W^{k+2}
        W = np.asarray(net.weights[k + 1], dtype=np.float64)
        gain = dphi2[k] * float(np.sum(W * W)) / W.shape[0]
        chi[k] = 1.0 + alpha * alpha * gain if residual else gain
    return chi


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
        raise ValueError("`masks` is empty: must hold one array per layer")
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


def rescale(net, masks, mode="neuron", X=None):
    """The pruned network with its weights rescaled to restore their variance (SBP-SR, THEORY.md §6).

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
    scoring batch in :func:`meanfield.training.train`), so that each first-layer neuron's
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
    net = check_network(net)
    masks = check_masks(net, masks)
    if masks is None:
        raise TypeError("`masks`: must be a list of arrays shaped like the weights")
    if not isinstance(mode, str) or mode not in RESCALE_MODES:
        raise InputError(f"`mode` == {mode!r}: must be one of 'neuron', 'layer', 'data'")
    if mode == "data":
        X = _check_rescale_X(net, X)
    axis = None if mode == "layer" else 1
    new = []
    for k, (w, m) in enumerate(zip(net.weights, masks)):
        w64 = w.astype(np.float64)
        kept = w64 * m.astype(np.float64)
        num = np.atleast_1d((w64 * w64).sum(axis=axis))
        den = np.atleast_1d((kept * kept).sum(axis=axis))
        rho = np.ones_like(num)
        ok = den > 0
        rho[ok] = np.sqrt(num[ok] / den[ok])
        if mode == "data" and k == 0:
            v_dense = first_layer_variance(w64, X)
            v_kept = first_layer_variance(kept, X)
            informative = (v_dense > 0) & (v_kept > 0)
            rho[informative] = np.sqrt(v_dense[informative] / v_kept[informative])
        new.append(((rho[:, None] if axis else rho[0]) * kept).astype(w.dtype))
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
    arch = check_choice("arch", arch, _nw.ARCHS)
    rng = check_rng(rng)
    dt = check_dtype(dtype)
    buffer = (lambda size: scratch("params", (size,), dt)) if reuse else None
    net = _nw.draw_network(act, width, depth, sigma_w, sigma_b, width, classes, arch, rng, dt,
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
    cross-entropy on (X, y) and returns s_cr (THEORY.md §5). The result equals
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
    Hayou, Ton, Doucet, Teh (2021), *Robust Pruning at Initialization*, §3, Fig. 1; THEORY.md §5.

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
    _, maxima = _nw._loss_and_grads(net, net.weights, X, y, grads, None, score=True)
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

    Returns
    -------
    float
    """
    check_choice("method", method, METHODS)
    definition = _check_definition(definition)
    net, X, y = _trial_inputs(activation, width, depth, sigma_w, sigma_b, batch, classes, arch,
                              rng, dtype)
    sc = check_finite(net, scores(net, X, y, method, sparsity=sparsity, rng=rng), f"{method} scores")
    return critical_sparsity(sc, definition=definition, arch=net.arch)
