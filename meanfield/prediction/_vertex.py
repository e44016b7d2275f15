"""The 1/N coupling of the forward kernel's fluctuations with the backward kernel, analytically
(``docs/critical_sparsity.md`` §5e): how much a width-N FFNN raises E[G²] of each layer above
its mean-field value, from mean-field quantities alone.

At width N the realised kernel κ^l(b, b') = (1/N) Σ_j φ(y^l_j(b)) φ(y^l_j(b')) of a pair of
examples fluctuates by O(1/√N). The pre-activations of the layer above have covariance
Σ^{l+1} = σ_b² + σ_w² κ^l, so a fluctuation propagates upward, and through the softmax it moves
the readout errors' overlap Δ_b · Δ_b' of the same pair. Since, exactly,
E_ij[(G^l_ij)²] = (1/B²) Σ_{bb'} K_δ^l(b, b') κ^{l−1}(b, b'), the B(B − 1) pairs add
Cov(K_δ^l(b, b'), κ^{l−1}(b, b')), which is O(1/N) against the mean-field (1/B) q̃ K_d: a relative
raise of order B/N. Linear response gives it: with the pair state κ = (κ_11, κ_22, κ_12),

    κ^p = F(Σ^p) + ν^p/√N,   Cov(ν^p) = Cov over one neuron of (φ₁², φ₂², φ₁φ₂),
    V^p = Cov(κ^p) = J_p V^{p−1} J_pᵀ + Cov(ν^p)/N,   J_p = σ_w² ∂F/∂Σ (3 × 3),

from V⁰ = diag(2, 2, 1)/N for the inputs x ~ N(0, I), and the backward kernel of layer l,
K_δ^l = (σ_w²/N) (Δ_b·Δ_b') Π_{k=l}^{L} k_o(Σ^k) σ_w^{2(L−l)} with k_o = E[φ'(u₁)φ'(u₂)], responds to
each Σ^m (m = l … L + 1, the last being the logits) through ∂ log k_o/∂Σ (Price's theorem by
differences of a 2-d Gauss–Hermite rule) and ∂E[Δ_b·Δ_b']/∂Σ (Price's theorem on the softmax,
Monte Carlo with a fixed seed). Cov(κ^{m−1}, κ^{l−1}) = J_{m−1} ⋯ J_l V^{l−1}.
"""

from __future__ import annotations

import math

import numpy as np

from ._moments import SEED, BeyondFirstOrder, hermite

NODES = (40, 128)            # nodes per axis of the 2-d Gauss–Hermite rule: 40 + 4 q, at most 128
# (a saturating φ at large q has a feature of width 1/√q in z: r_l to ~1e-4 relative at q = 6,
# 1e-2 at q = 16, 5e-2 at q = 36, the largest of a tanh net at σ_w = 6)
STEP = 1e-4                  # relative step of the central differences in Σ
SOFTMAX_SAMPLES = 2 ** 17    # logit pairs for the softmax's Price derivatives (fixed seed)
PATH_SAMPLES = 2 ** 16       # one neuron's paths down a ResNet's stream (fixed seed)
R_RANGE = (-0.5, 3.0)        # the raises r_l a first order is trusted with (tanh, N = 50: 1.1)


def _pair_points(S):
    """u₁, u₂ (L, n, n) of the product rule for pairs with covariances S (L, 3) = (Σ₁₁, Σ₂₂, Σ₁₂),
    and the weights (n, n)."""
    lo, hi = NODES
    z, w = hermite(int(min(hi, lo + 4 * math.ceil(float(S[:, :2].max())))))
    a = np.sqrt(S[:, 0])
    b = S[:, 2] / a
    c = np.sqrt(np.maximum(S[:, 1] - b * b, 0.0))
    u1 = a[:, None, None] * z[None, :, None]              # (L, n, 1): u₁ does not depend on Z₂
    u2 = b[:, None, None] * z[None, :, None] + c[:, None, None] * z[None, None, :]
    return u1, u2, np.outer(w, w)


def _pair_stats(act, S, covariance=True):
    """Per layer: F = E[(φ₁², φ₂², φ₁φ₂)] (L, 3), its per-neuron covariance (L, 3, 3; None
    unless ``covariance``) and k_o = E[φ'₁φ'₂] (L,)."""
    u1, u2, w = _pair_points(S)
    p1, p2 = np.broadcast_to(act(u1, 0), u2.shape), act(u2, 0)
    f = np.stack([p1 * p1, p2 * p2, p1 * p2], axis=1)                  # (L, 3, n, n)
    mean = np.einsum("lkab,ab->lk", f, w)
    ko = np.einsum("lab,ab->l", act(u1, 1) * act(u2, 1), w)
    if not covariance:
        return mean, None, ko
    second = np.einsum("liab,ljab,ab->lij", f, f, w)
    return mean, second - mean[:, :, None] * mean[:, None, :], ko


def _gradients(act, S):
    """∂F/∂Σ (L, 3, 3), [i, k] = ∂F_i/∂Σ_k, and ∂k_o/∂Σ (L, 3), by central differences."""
    dF = np.empty((S.shape[0], 3, 3))
    dk = np.empty((S.shape[0], 3))
    h = STEP * S[:, 0]
    for k in range(3):
        e = np.zeros_like(S)
        e[:, k] = h
        Fp, _, kp = _pair_stats(act, S + e, covariance=False)
        Fm, _, km = _pair_stats(act, S - e, covariance=False)
        dF[:, :, k] = (Fp - Fm) / (2.0 * h[:, None])
        dk[:, k] = (kp - km) / (2.0 * h)
    return dF, dk


def softmax_overlap(S, classes):
    """E[Δ_b · Δ_b'] for two examples whose logits are i.i.d. over the classes with pair
    covariance S = (Σ₁₁, Σ₂₂, Σ₁₂), and its gradient in S (3,), by Price's theorem:
    ∂E[p_k p'_k]/∂Σ₁₂ = Σ_c E[∂_c p_k ∂_c p'_k] and ∂/∂Σ₁₁ = ½ Σ_c E[∂²_c p_k p'_k]. The label part
    of Δ is independent of the logits, so E[Δ_b · Δ_b'] = Σ_k E[p_k p'_k] − 1/C. Monte Carlo
    with a fixed seed."""
    rng = np.random.default_rng([SEED, 25])
    n = max(SOFTMAX_SAMPLES // classes, 4096)
    a = math.sqrt(S[0])
    b = S[2] / a
    c = math.sqrt(max(S[1] - b * b, 0.0))
    n1 = rng.standard_normal((n, classes))
    z1, z2 = a * n1, b * n1 + c * rng.standard_normal((n, classes))

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p1, p2 = softmax(z1), softmax(z2)
    pp = (p1 * p2).sum(axis=1)
    value = pp.mean() - 1.0 / classes
    # Σ_c ∂_c p_k ∂_c p'_k with ∂_c p_k = p_k (δ_kc − p_c), summed over k
    d12 = (p1 * p2 * (1.0 - p1 - p2 + pp[:, None])).sum(axis=1).mean()

    def curvature(p, other):      # ½ Σ_k Σ_c ∂²_c p_k · p'_k, ∂²_c p_k = p_k[(δ_kc − p_c)² − p_c(1 − p_c)]
        s2 = (p * p).sum(axis=1, keepdims=True)
        return 0.5 * (p * ((1.0 - p) ** 2 - p * p + 2.0 * s2 - 1.0) * other).sum(axis=1).mean()

    return value, np.array([curvature(p1, p2), curvature(p2, p1), d12])


def path_covariance(act, S, depth, width):
    """Cov(ξ^p, ξ^{p'}) (3L, 3L), p, p' = 1 … L, of the realised kernels' sampling noise
    ξ^p = κ^p − F(Σ^p) of a ResNet's residual stream (docs/critical_sparsity.md §5e): its
    neurons keep their identity from layer to layer, y^{p+1}_j = y^p_j + (a Gaussian increment of
    covariance Σ^{p+1} − Σ^p), so the noise is not independent over the layers, as in an FFNN, but
    the per-neuron covariance of (φ₁², φ₂², φ₁φ₂) along one neuron's path, over N. Monte Carlo
    over ``PATH_SAMPLES`` paths of a pair of inputs with a fixed seed."""
    L = depth
    rng = np.random.default_rng([SEED, 26])
    steps = np.vstack([S[:1], np.diff(S[:L], axis=0)])               # Σ¹, then the increments
    a = np.sqrt(np.maximum(steps[:, 0], 0.0))
    b = np.divide(steps[:, 2], a, out=np.zeros(L), where=a > 0.0)
    c = np.sqrt(np.maximum(steps[:, 1] - b * b, 0.0))
    second = np.zeros((3 * L, 3 * L))
    first = np.zeros(3 * L)
    block = max(1, PATH_SAMPLES // 16)
    for _ in range(0, PATH_SAMPLES, block):
        z = rng.standard_normal((2, block, L))
        y1 = np.cumsum(a * z[0], axis=1)
        y2 = np.cumsum(b * z[0] + c * z[1], axis=1)
        p1, p2 = act(y1, 0), act(y2, 0)
        f = np.stack([p1 * p1, p2 * p2, p1 * p2], axis=2).reshape(block, 3 * L)
        second += f.T @ f
        first += f.sum(axis=0)
    n = block * (PATH_SAMPLES // block)
    return (second / n - np.outer(first / n, first / n)) / width


def gradient_coupling(act, m, width, sw, batch, classes):
    """The relative 1/N raise r_l of E[(G^l)²] over its mean-field value, for the hidden layers
    l = 1 … L and the readout (L + 1,), of an FFNN or a ResNet of width N = ``width`` (``m``:
    :class:`meanfield.prediction._moments.LayerMoments`): E[(G^l)²] ≈ (1 + r_l) × mean field.

    Linear response in the noise ξ = (ξ⁰, …, ξ^L) of the realised kernels (docs §5e): the law of
    the pre-activations moves by δΣ¹ = σ_w² ξ⁰ and δΣ^{p+1} = c δΣ^p + g δκ^p with
    δκ^p = J_p δΣ^p + ξ^p, where (c, g) = (0, σ_w²) in an FFNN and at the logits, and
    (1, α²σ_w²) along a ResNet's stream; the log of layer l's backward kernel moves by
    Σ_m w_m · δΣ^m; and Cov(ξ) is block diagonal in an FFNN (fresh neurons each layer) and
    :func:`path_covariance` in a ResNet."""
    L = m.depth
    resnet = m.arch != "ffnn"
    a2 = 1.0 / L if m.arch == "stable_resnet" else 1.0
    q, c = m.q, m.c
    S = np.stack([q, q, q * c], axis=1)                 # Σ^l, l = 1 … L + 1
    # deep layers sit near the fixed point: the pair expectations once per Σ to 1e-4 (a first-
    # order theory does not see the difference)
    _, first, back = np.unique(np.round(S[:L], 4), axis=0, return_index=True,
                               return_inverse=True)
    F, noise, ko = (None if x is None else x[back.ravel()]
                    for x in _pair_stats(act, S[first], not resnet))
    dF, dk = (x[back.ravel()] for x in _gradients(act, S[first]))
    overlap, d_overlap = softmax_overlap(S[L], classes)
    n = 3 * (L + 1)
    Xi = np.zeros((n, n))                               # Cov(ξ); ξ⁰: the inputs' x·x'/N
    Xi[:3, :3] = np.diag([2.0, 2.0, 1.0]) / width
    if resnet:
        Xi[3:, 3:] = path_covariance(act, S, L, width)
    else:
        for p in range(1, L + 1):
            Xi[3 * p:3 * p + 3, 3 * p:3 * p + 3] = noise[p - 1] / width
    # δΣ^p = A[p] ξ (p = 1 … L + 1) and δκ^p = Kc[p] ξ (p = 0 … L)
    eye = np.eye(3)
    A = np.zeros((L + 2, 3, n))
    Kc = np.zeros((L + 1, 3, n))
    Kc[0][:, :3] = eye
    A[1] = sw * sw * Kc[0]
    for p in range(1, L + 1):
        Kc[p] = dF[p - 1] @ A[p]
        Kc[p][:, 3 * p:3 * p + 3] += eye
        A[p + 1] = (A[p] if resnet and p < L else 0.0) + (a2 if resnet and p < L else 1.0) \
            * sw * sw * Kc[p]
    # w_m = ∂ log(layer m's factor of the backward kernel)/∂Σ^m: k_o^m in an FFNN and at layer L,
    # 1 + α²σ_w² k_o^m along a ResNet's stream; the logits' is ∂ log E[Δ·Δ']/∂Σ^{L+1}
    with np.errstate(divide="ignore", invalid="ignore"):
        dlog = np.where(ko[:, None] > 0.0, dk / ko[:, None], 0.0)
        factor = np.log(sw * sw * ko) if not resnet else np.log1p(a2 * sw * sw * ko)
    if resnet:
        dlog[:L - 1] = a2 * sw * sw * dk[:L - 1] / (1.0 + a2 * sw * sw * ko[:L - 1, None])
    h = (d_overlap / overlap) @ A[L + 1]
    log_K = math.log(sw * sw / width * overlap) + (math.log(ko[L - 1]) if ko[L - 1] > 0.0
                                                   else -math.inf)
    pairs = (batch - 1) / batch
    extra = np.empty(L + 1)
    for l in range(L, 0, -1):
        h = h + dlog[l - 1] @ A[l]
        if l < L:
            log_K += factor[l - 1]
        cov = h @ Xi @ Kc[l - 1][2]
        extra[l - 1] = pairs * math.exp(m.log_alpha2[l - 1] + log_K) * cov
    extra[L] = pairs * (d_overlap @ A[L + 1] @ Xi @ Kc[L][2]) / classes
    r = extra / np.exp(m.log_grad_var)
    # where q runs away with depth (unbounded φ off its EOC) the fluctuations compound and the
    # first order says nothing: 1 + r_l would be negative or many times the mean field
    bad = ~((r > R_RANGE[0]) & (r < R_RANGE[1]))
    if bad.any():
        l = int(np.argmax(bad))
        raise BeyondFirstOrder(f"the 1/N coupling's first order gives layer {l + 1} a relative "
                               f"raise of E[G²] r = {r[l]:.3g}, outside {R_RANGE}, where it holds")
    return r
