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

BINS = 8                     # weight classes of the neurons (at most; ≥ 2C neurons each on average)


def weight_classes(cond, width, classes):
    """Per hidden layer and class: the mean m², s² = Var(φ'|U) and M₂ = E[φ'²|U] over the
    quasi-random points of U in that quantile class, shapes (L, k), and k."""
    M1, M2, _, _ = cond
    k = int(min(BINS, max(1, width // (2 * classes))))
    order = np.argsort(M1 * M1, axis=1)
    parts = np.array_split(order, k, axis=1)
    m2 = np.stack([np.take_along_axis(M1 * M1, p, 1).mean(axis=1) for p in parts], axis=1)
    s2 = np.stack([np.take_along_axis(np.maximum(M2 - M1 * M1, 0.0), p, 1).mean(axis=1)
                   for p in parts], axis=1)
    e2 = np.stack([np.take_along_axis(M2, p, 1).mean(axis=1) for p in parts], axis=1)
    return m2, s2, e2, k


def _wishart(rng, counts, classes):
    """S ~ Wishart(n, I_C) for each of the counts n (any shape s), by Bartlett's decomposition
    S = T Tᵀ with T lower triangular: T_jj² ~ χ²(n − j), T_jk ~ N(0, 1) below the diagonal, and
    only the first n columns when n < C (the singular Wishart). Shape s + (C, C)."""
    j = np.arange(classes)
    n = np.asarray(counts)[..., None]                                # s + (1,)
    T = np.tril(rng.standard_normal(n.shape[:-1] + (classes, classes)), -1)
    T *= j < n[..., None]                                            # columns k < n only
    T[..., j, j] = np.sqrt(rng.chisquare(np.maximum(n - j, 1)) * (j < n))
    return T @ np.swapaxes(T, -1, -2)


def backward_analytic(m, cond, draws, width, classes, sw, rng, coupling):
    """The backward signal of an FFNN of width N for D draws, drawn with the generator ``rng``
    (the caller gives each fixed block of draws its own), with each hidden layer's
    scale raised by log(1 + r_l), r = ``coupling`` (:func:`._vertex.gradient_coupling`); the
    readout's r is kept as ``readout_gain`` for the score laws."""
    L = m.depth
    D = len(draws)
    out = Backward(draws, L)
    wm2, ws2, we2, k = weight_classes(cond, width, classes)
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
