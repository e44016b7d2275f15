"""The analytic finite-width backward signal (``docs/critical_sparsity.md`` §5e): the class-space
chain of §5a drawn from C × C Wishart matrices instead of N rows, at a cost independent of N,
with the 1/N raise of each layer's E[G²] from :mod:`._vertex`.

In the chain (:func:`meanfield.prediction._score_laws.backward_finite`) layer l − 1's class-space
covariance is K^{l−1} = (σ_w²/N) Σ_i m_i² v_i v_iᵀ over the N rows v_i ~ N(0, K^l) of layer l, with
the weight m_i² = E[φ'(y_i)|U_i]² of neuron i's shared Gaussian U_i. Here the neurons are put in
``BINS`` classes of equal probability by their weight (quantiles of m² under U's law): the counts n_k
over the classes are multinomial(N, 1/k), and within a class the rows' sum Σ v_i v_iᵀ =
K^{1/2} S_k K^{1/2} with S_k ~ Wishart(n_k, I_C), drawn by Bartlett's decomposition (singular
when n_k < C). Every draw is then C × C sized: O(L · BINS · C³) per draw whatever N. What is
dropped is the spread of the weights within a class.
"""

from __future__ import annotations

import math

import numpy as np

from ._score_laws import Backward, _roots, renormalise
from ._top_block import WHOLE_WIDTH

BINS = 8                     # weight classes of the neurons (at most; ≥ 2C neurons each on average)
RESNET_DEPTH = 30            # plain ResNets deeper than this are outside the route's domain


def outside(width, depth, arch):
    """Why a ResNet is outside the analytic route's measured domain (docs/critical_sparsity.md
    §5e), "" if it is not (FFNNs: :func:`meanfield.prediction._top_block.collapse_range`):

    * narrower than ``WHOLE_WIDTH``, as the FFNN's chain;
    * a plain ResNet deeper than ``RESNET_DEPTH``: the route is 0.005–0.014 low at L = 40–100
      (N = 50–200, σ_w = 1), a gap that does not shrink with N, so no 1/N term; each neuron's
      own stream scale (:func:`meanfield.prediction._moments.stream_row_scales`) closes a
      quarter to a third of it, and the rest is open (docs §5e)."""
    if arch == "ffnn":
        return ""
    if width < WHOLE_WIDTH:
        return f"narrower than {WHOLE_WIDTH}"
    if arch == "resnet" and depth > RESNET_DEPTH:
        return (f"a plain ResNet deeper than {RESNET_DEPTH}, where the score laws miss an "
                f"effect of infinite width")
    return ""


def weight_classes(cond, width, classes, means=False):
    """Per hidden layer and class: the mean m², s² = Var(φ'|U) and M₂ = E[φ'²|U] over the
    quasi-random points of U in that quantile class, shapes (L, k), and k; with ``means`` also
    the class mean of m itself (L, k), last."""
    M1, M2, _, _ = cond
    k = int(min(BINS, max(1, width // (2 * classes))))
    order = np.argsort(M1 * M1, axis=1)
    parts = np.array_split(order, k, axis=1)

    def mean(x):
        return np.stack([np.take_along_axis(x, p, 1).mean(axis=1) for p in parts], axis=1)

    out = (mean(M1 * M1), mean(np.maximum(M2 - M1 * M1, 0.0)), mean(M2), k)
    return out + (mean(M1),) if means else out


def _wishart(rng, counts, classes):
    """S ~ Wishart(n, I_C) for each of the counts n (any shape s), by Bartlett's decomposition
    S = T Tᵀ with T lower triangular: T_jj² ~ χ²(n − j), T_jk ~ N(0, 1) below the diagonal, and
    only the first n columns when n < C (the singular Wishart). Shape s + (C, C)."""
    j = np.arange(classes)
    n = np.asarray(counts)[..., None]                                # s + (1,)
    T = rng.standard_normal(n.shape[:-1] + (classes, classes))
    # below the diagonal, in place (np.tril's copy of the million normals cost as much again)
    T *= np.tri(classes, k=-1, dtype=bool)
    if (n < classes).any():
        T *= j < n[..., None]                                        # columns k < n only
    T[..., j, j] = np.sqrt(rng.chisquare(np.maximum(n - j, 1)) * (j < n))
    return T @ np.swapaxes(T, -1, -2)


def backward_analytic(m, cond, draws, width, classes, sw, rng, coupling, weights=None):
    """The backward signal of an FFNN of width N for D draws, drawn with the generator ``rng``
    (the caller gives each fixed block of draws its own), with each hidden layer's
    scale raised by log(1 + r_l), r = ``coupling`` (:func:`._vertex.gradient_coupling`); the
    readout's r is kept as ``readout_gain`` for the score laws. ``weights``: the
    :func:`weight_classes` of ``cond`` if the caller has them (the same for every block)."""
    L = m.depth
    D = len(draws)
    out = Backward(draws, L)
    wm2, ws2, we2, k = weights or weight_classes(cond, width, classes)
    gain = sw * sw / width
    sq = np.maximum(draws.sq_norm, 1e-300)
    p = np.full(k, 1.0 / k)
    counts = rng.multinomial(width, p, size=(D, L))                            # (D, L, k)
    S = _wishart(rng, counts, classes)                                          # (D, L, k, C, C)
    log_scales = np.empty((D, L))
    Khat = np.empty((D, L, classes, classes))
    noises = np.empty((D, L))
    log_scale = np.full(D, math.log(gain))
    K = np.broadcast_to(np.eye(classes), (D, classes, classes))
    noise = np.zeros(D)
    for i in range(L - 1, -1, -1):
        R = _roots(np.ascontiguousarray(K))                        # RᵀR = K
        rows = R.transpose(0, 2, 1)[:, None] @ S[:, i] @ R[:, None]  # (D, k, C, C): Σ v vᵀ per class
        log_scales[:, i], Khat[:, i], noises[:, i] = log_scale, rows.sum(axis=1) / width, noise
        if i == 0:
            break
        K = gain * np.einsum("k,dkce->dce", wm2[i], rows)
        quad = np.einsum("dkce,dec->dk", rows, draws.gram)        # Σ_i∈class v_iᵀ ΔᵀΔ v_i
        noise = gain * (quad @ ws2[i] + (counts[:, i] @ we2[i]) * noise)
        K, noise, log_scale = renormalise(K, noise, log_scale, sq, i)
    out.set(log_scales + np.log1p(coupling[:L])[None, :], Khat, noises)
    out.readout_gain = float(coupling[L])
    return out


def _split(rng, counts, classes):
    """The shares B_k = Q_kᵀ Q_k of the classes in WᵀW = P^{1/2} (Σ_k B_k) P^{1/2} for N i.i.d.
    Gaussian rows W = Q P^{1/2} split into classes of n_k rows: Q is Haar on the Stiefel manifold
    and independent of P, so B_k = T^{−1/2} G_k T^{−1/2} with G_k ~ Wishart(n_k, I_C) and
    T = Σ_k G_k (symmetric roots). Σ_k B_k = I. ``counts`` (..., k); shape (..., k, C, C)."""
    G = _wishart(rng, counts, classes)
    w, Q = np.linalg.eigh(G.sum(axis=-3))
    inv = ((Q / np.sqrt(w)[..., None, :]) @ np.swapaxes(Q, -1, -2))[..., None, :, :]
    return inv @ G @ inv


def _sym_roots(P):
    """The symmetric square roots of a stack of PSD matrices."""
    w, Q = np.linalg.eigh(P)
    return (Q * np.sqrt(np.maximum(w, 0.0))[..., None, :]) @ np.swapaxes(Q, -1, -2)


def backward_analytic_resnet(m, cond, draws, width, classes, sw, rng, coupling, weights=None):
    """:func:`backward_analytic` for a ResNet (docs/critical_sparsity.md §5e): the chain of
    :func:`meanfield.prediction._score_laws._backward_finite_resnet` in class space. The residual
    stream keeps its neurons, so its rows w_j cannot be redrawn each layer: the stream is carried
    as its sum Σ_j w_j w_jᵀ = N K̂, and each layer splits it among the weight classes of the
    receiving neurons (random, independent of w) by the matrix Dirichlet shares of
    :func:`_split` (the rows taken as Gaussian). With u_j = z_j R, RᵀR = (σ_w²/N) N K̂, z_j
    standard normal, and class k's rows W_k = Q_k P_k^{1/2}:

        W_kᵀ Z_k = P_k^{1/2} Y_k,  Z_kᵀ Z_k = Y_kᵀ Y_k + Wishart(n_k − C, I_C),  Y_k ~ N(0, 1)^{C×C},
        N K̂' = N K̂ + α Σ_k m̄_k (P_k^{1/2} Y_k R + Rᵀ Y_kᵀ P_k^{1/2}) + α² Σ_k m̄²_k Rᵀ Z_kᵀZ_k R,

    exact for n_k ≥ C given Gaussian rows. Cost O(L k C³) per draw, whatever N."""
    L = m.depth
    D = len(draws)
    out = Backward(draws, L)
    wm2, ws2, we2, k, wm1 = weights or weight_classes(cond, width, classes, means=True)
    a = 1.0 / math.sqrt(L) if m.arch == "stable_resnet" else 1.0
    gain = sw * sw / width
    sq = np.maximum(draws.sq_norm, 1e-300)
    p = np.full(k, 1.0 / k)
    counts = rng.multinomial(width, p, size=(D, L))                            # (D, L, k)
    log_scales = np.zeros((D, L))
    Khat = np.empty((D, L, classes, classes))
    noises = np.empty((D, L))
    # layer L: h^L's rows v ~ N(0, (σ_w²/N) I) by class, then g^L = m ∘ h^L
    Sv = gain * _wishart(rng, counts[:, L - 1], classes)                       # (D, k, C, C)
    Khat[:, L - 1], noises[:, L - 1] = Sv.sum(axis=1) / width, 0.0
    P = np.einsum("k,dkce->dce", wm2[L - 1], Sv)                                # N K̂ of g^L
    noise = np.einsum("k,dkce,dec->d", ws2[L - 1], Sv, draws.gram) / width
    log_scale = np.zeros(D)
    for i in range(L - 2, -1, -1):                  # the stream of layer i + 1 from layer i + 2
        R = _roots(np.ascontiguousarray(gain * P))                          # RᵀR = (σ_w²/N) N K̂
        root = _sym_roots(P)[:, None]
        Ps = root @ _split(rng, counts[:, i], classes) @ root               # P_k = W_kᵀ W_k
        Y = rng.standard_normal((D, k, classes, classes))
        ZZ = np.swapaxes(Y, -1, -2) @ Y + _wishart(rng, np.maximum(counts[:, i] - classes, 0),
                                                    classes)
        X = _sym_roots(Ps) @ Y @ R[:, None]                                 # W_kᵀ Z_k R
        cross = np.einsum("k,dkce->dce", wm1[i], X)
        UU = R.transpose(0, 2, 1)[:, None] @ ZZ @ R[:, None]                # Σ_k∈class u uᵀ
        quad = np.einsum("dkce,dec->dk", UU, draws.gram)
        noise = noise + a * a * (quad @ ws2[i] + sw * sw * (counts[:, i] @ we2[i]) * noise) / width
        P = P + a * (cross + cross.transpose(0, 2, 1)) + a * a * np.einsum("k,dkce->dce",
                                                                           wm2[i], UU)
        Kh, noise, log_scale = renormalise(P / width, noise, log_scale, sq, i + 1)
        P = Kh * width
        log_scales[:, i], Khat[:, i], noises[:, i] = log_scale, Kh, noise
    out.set(log_scales + np.log1p(coupling[:L])[None, :], Khat, noises)
    out.readout_gain = float(coupling[L])
    return out
