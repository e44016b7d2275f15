"""Forward and backward second moments of a random network, layer by layer, in the wide limit
under gradient independence: what the SNIP score laws are built on (``docs/critical_sparsity.md``
eqs. (4)–(11)). Used by :mod:`meanfield.prediction`.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..theory import _expect
from ..theory.maps import propagate

SEED = 20210503
READOUT_SAMPLES = 2 ** 20    # logit draws × classes for the softmax moments (fixed seed)


@functools.lru_cache(maxsize=4)
def hermite(n):
    z, w = np.polynomial.hermite_e.hermegauss(n)
    return z, w / w.sum()


def forward_moments(act, sw, sb, depth, arch="ffnn"):
    """q^l, c^l of the pre-activations y^l for l = 1 … depth + 1 (the last is the logits) for two
    independent inputs x, x' ~ N(0, I_N): q¹ = σ_b² + σ_w², c¹ = σ_b²/q¹ (x·x'/N → 0). For a
    ResNet, y² … y^L are the residual stream (:func:`meanfield.theory.propagate` with ``arch``;
    the Stable ResNet's branch scale 1/√L takes L = ``depth``)."""
    q1 = sb * sb + sw * sw
    q, c = propagate(act, q1, sb * sb / q1, sw, sb, depth, arch=arch)
    if not (np.all(np.isfinite(q)) and np.all(q > 0)):
        raise ValueError(f"`sigma_w` == {sw!r}, `sigma_b` == {sb!r}: the forward variance q^l is "
                         f"not finite and > 0 by depth {depth}: no prediction")
    return q, np.clip(c, 0.0, 1.0)


@functools.lru_cache(maxsize=64)
def readout_moments(q, c, classes):
    """(D, O): D = E[(p_k − y_k)²], O = E[(p_k(b) − y_k(b))(p_k(b') − y_k(b'))] = Cov(p_k(b), p_k(b'))
    for logits i.i.d. over the classes with variance q and correlation c between the two inputs,
    one-hot labels y uniform over the classes and independent of everything. Monte Carlo over the
    logits with a fixed seed (relative error ~1e-3), averaged over the classes by symmetry."""
    rng = np.random.default_rng(SEED)
    n = max(READOUT_SAMPLES // classes, 4096)
    shared = rng.standard_normal((n, classes)) * math.sqrt(q * c)
    own = math.sqrt(q * (1.0 - c))

    def softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    p1 = softmax(shared + own * rng.standard_normal((n, classes)))
    p2 = softmax(shared + own * rng.standard_normal((n, classes)))
    ep2 = 0.5 * (np.mean(p1 * p1) + np.mean(p2 * p2))
    d = ep2 - 2.0 / classes ** 2 + 1.0 / classes
    o = float(np.mean((p1 - 1.0 / classes) * (p2 - 1.0 / classes)))
    return float(d), o


def layer_moments(act, width, depth, sw, sb, batch, classes, fwd=None, arch="ffnn"):
    """Per-layer moments as a dict of arrays indexed by layer − 1 (layers 1 … L + 1).

    For a ResNet (``arch`` "resnet" or "stable_resnet", branch scale α = 1 or 1/√L) the
    entries ``log_gain`` and ``shared`` of hidden layers l < L describe the backward signal
    g^l = ∂ℒ/∂y^l of the residual stream itself, g^{l−1} = g^l + α φ'(y^{l−1}) ∘ (W^l)ᵀ g^l, whose
    covariance keeps the form t [(1 − f) Diag(R) + f R] with t_{l−1} = t_l (1 + α² σ_w² k_d(l−1))
    and t_{l−1} f_{l−1} = t_l f_l (1 + α² σ_w² k_o(l−1)), starting from g^L = φ'(y^L) ∘ h^L. The
    gradient of W^l is α g^l a^{l−1}ᵀ (no φ' of its own): ``branch`` marks these layers and
    ``log_alpha2`` holds log α² (0 for layer 1, whose gradient is g¹ xᵀ). Layer L keeps the
    feed-forward form (h^L with φ'(y^L) in the forward factor)."""
    L = depth
    q, c = fwd if fwd is not None else forward_moments(act, sw, sb, L, arch)
    q, c = q[: L + 2], c[: L + 2]          # q[l-1] = q^l, l = 1 … L + 1
    fan_in = np.full(L + 1, width, dtype=np.int64)
    fan_out = np.full(L + 1, width, dtype=np.int64)
    fan_out[L] = classes
    # forward: the input a of layer l is x (l = 1) or φ(y^{l-1}); its second moment and the
    # covariance between two inputs of the batch
    qh, ch = q[:L], c[:L]                   # hidden pre-activations y^1 … y^L
    act_sq = np.concatenate([[1.0], _expect.diag(act, 0, 0, 0, qh)])
    act_cov = np.concatenate([[0.0], _expect.pair(act, 0, 0, qh, qh, ch)])
    # backward: E[φ'(y^l)²] and E[φ'(y^l(b)) φ'(y^l(b'))] for the hidden layers
    d11 = _expect.diag(act, 1, 1, 0, qh)
    p11 = _expect.pair(act, 1, 1, qh, qh, ch)
    if not np.all(d11 > 0):
        raise ValueError(f"`sigma_w` == {sw!r}, `sigma_b` == {sb!r}: E[φ'(y^l)²] = 0 at layer "
                         f"{int(np.argmin(d11)) + 1} (q^l = {float(qh[np.argmin(d11)])!r}): the "
                         "gradients vanish exactly, no prediction")
    D, O = readout_moments(float(q[L]), float(c[L]), classes)
    # backward (eq. (9)): given the readout Gram R = ΔΔᵀ/C the covariance over neurons of the
    # pre-φ' signal h^l_i(·) of hidden layer l is H^l = t_l [(1 − f_l) Diag(R) + f_l R], with
    # t_L = σ_w² C/N, f_L = 1, t_{l-1} = t_l σ_w² E[φ'(y^l)²], f_{l-1} = f_l k_o/k_d. Its mean over
    # Δ uses E[R_bb] = D, E[R_bb'] = O.
    log_gain = np.empty(L)
    shared = np.empty(L)
    log_gain[L - 1] = math.log(sw * sw * classes / width)
    shared[L - 1] = 1.0
    branch = np.zeros(L, bool)
    log_alpha2 = np.zeros(L)
    if arch == "ffnn":
        for i in range(L - 1, 0, -1):       # from layer l = i + 1 to layer l - 1 = i
            log_gain[i - 1] = log_gain[i] + math.log(sw * sw * d11[i])
            shared[i - 1] = shared[i] * p11[i] / d11[i] if d11[i] > 0 else 0.0
    elif L > 1:
        a2 = 1.0 / L if arch == "stable_resnet" else 1.0
        branch[:L - 1] = True
        log_alpha2[1:] = math.log(a2)
        # log t and log t·f of g^L = φ'(y^L) ∘ h^L, then down the residual stream
        t, tf = math.log(d11[L - 1]) + log_gain[L - 1], math.log(p11[L - 1]) + log_gain[L - 1]
        for i in range(L - 2, -1, -1):      # g of layer i + 1 from that of layer i + 2
            t += math.log1p(a2 * sw * sw * d11[i])
            tf += math.log1p(a2 * sw * sw * p11[i])
            log_gain[i], shared[i] = t, math.exp(tf - t)
    log_h = np.concatenate([log_gain + math.log(D), [math.log(D)]])
    rho_h = np.concatenate([shared * O / D, [O / D]])      # E[h(b) h(b')] / E[h(b)²]
    log_qg = log_h + np.log(np.concatenate([d11, [1.0]]))    # log E[δ^l_i(b)²]
    rho = rho_h * np.concatenate([p11 / d11, [1.0]])         # E[δ(b) δ(b')] / E[δ(b)²]
    weight_var = sw * sw / fan_in
    # Var(∂ℒ/∂W) = [Q̃_d K_d + (B − 1) Q̃_o K_o] / B, in log form (Q̃ can over/underflow)
    ratio = (act_sq + (batch - 1) * rho * act_cov) / batch
    with np.errstate(divide="ignore", invalid="ignore"):
        log_gv = log_qg + np.log(np.maximum(ratio, 0.0))
    chi = np.concatenate([sw * sw * d11, [np.nan]])
    return dict(q=q, c=c, qh=qh, ch=ch, fan_in=fan_in, fan_out=fan_out, act_sq=act_sq,
                act_cov=act_cov, chi=chi, log_qg=log_qg, rho=rho, log_h=log_h, rho_h=rho_h,
                weight_var=weight_var, log_gv=log_gv, readout=(D, O), log_gain=log_gain,
                shared=shared, branch=branch, log_alpha2=log_alpha2, arch=arch)


