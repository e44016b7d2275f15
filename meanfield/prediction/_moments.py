"""Forward and backward second moments of a random network, layer by layer, in the wide limit
under gradient independence: what the SNIP score laws are built on (``docs/critical_sparsity.md``
eqs. (4)–(11)). Used by :mod:`meanfield.prediction`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .._jit import jit
from ..theory import _expect
from ..theory.archs import DENSE_OF
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
    the Stable ResNet's branch scale 1/√L takes L = ``depth``). Where q^l underflows or
    overflows float64 the values are what floating point makes of them: the public functions
    refuse such arguments (``predict._check_forward``)."""
    q1 = sb * sb + sw * sw
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        q, c = propagate(act, q1, sb * sb / q1, sw, sb, depth, arch=arch)
    return q, np.clip(c, 0.0, 1.0)


@functools.lru_cache(maxsize=64)
def readout_moments(q, c, classes):
    """(D, O): D = E[(p_k − y_k)²], O = E[(p_k(b) − y_k(b))(p_k(b') − y_k(b'))] = Cov(p_k(b), p_k(b'))
    for logits i.i.d. over the classes with variance q and correlation c between the two inputs,
    one-hot labels y uniform over the classes and independent of everything. Monte Carlo over the
    logits with a fixed seed (relative error ~1e-3), averaged over the classes by symmetry."""
    rng = np.random.default_rng(SEED)
    n = max(READOUT_SAMPLES // classes, 4096)
    shared = rng.standard_normal((n, classes))
    shared *= math.sqrt(q * c)
    own = math.sqrt(q * (1.0 - c))

    def softmax():
        # in place on the fresh draw: the million-entry temporaries cost as much as the exp
        z = rng.standard_normal((n, classes))
        z *= own
        z += shared
        z -= _row_max(z)[:, None]
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    p1 = softmax()
    p2 = softmax()
    ep2 = 0.5 * (np.mean(p1 * p1) + np.mean(p2 * p2))
    d = ep2 - 2.0 / classes ** 2 + 1.0 / classes
    p1 -= 1.0 / classes
    p2 -= 1.0 / classes
    p1 *= p2
    o = float(np.mean(p1))
    # 0 <= O <= c Var(p_k), exactly: the logits are independent over the classes, each pair
    # (z_k(b), z_k(b')) with correlation c, so expanding p_k in the Hermite polynomials of the C
    # logits (Mehler's formula, as for the maps of docs/theory.md §2) gives
    # O = Σ_{|n|>=1} c^{|n|} a_n² and Var(p_k) = Σ_{|n|>=1} a_n², with c ∈ [0, 1]. At c = 0
    # (σ_b = 0 with an odd φ: the two inputs are independent at every layer) O = 0. The estimate
    # is noise of ~1e-3 D where c is small, and a negative one made q_grad_offdiag (q̃ f O/D of
    # docs/critical_sparsity.md eq. (9)) NaN; projecting it onto the interval, which holds
    # the truth, can only bring it closer.
    return float(d), min(max(o, 0.0), c * (ep2 - 1.0 / classes ** 2))


@jit
def _row_max(z):
    """z.max(axis=1) of a (n, C) array: numpy's reduction over C = 10 columns took longer than
    the softmax's exp."""
    out = np.empty(z.shape[0])
    for i in range(z.shape[0]):
        m = z[i, 0]
        for k in range(1, z.shape[1]):
            if z[i, k] > m:
                m = z[i, k]
        out[i] = m
    return out


class NoPrediction(ArithmeticError):
    """A draw of the prediction has no answer in float64: a backward signal that vanishes
    exactly, or a layer whose scores are all exactly zero or overflow (for activations or σ
    whose φ' vanishes, or signals grow, beyond what the edge checks can see before drawing).
    Raised by the wing's internals and turned by the public functions into an ``InputError``
    naming their arguments. Not a ``ValueError``: a ``ValueError`` from inside is a bug."""

    #: how the public functions end their message
    consequence = "so there is no prediction in float64"


class BeyondFirstOrder(NoPrediction):
    """The analytic route's 1/N coupling (:mod:`meanfield.prediction._vertex`) is too large for
    its first order to mean anything (docs/critical_sparsity.md §5e)."""

    consequence = "so the analytic route has no prediction there; use finite_width=True"


@dataclass(frozen=True, eq=False)
class LayerMoments:
    """The per-layer moments of a depth-L network that the SNIP score laws are built on
    (``docs/critical_sparsity.md`` eqs. (4)–(11)), built once by :func:`layer_moments`.

    Arrays of length L + 1 are indexed by layer − 1 over layers 1 … L + 1 (the last is the
    readout); arrays of length L over the hidden layers 1 … L. Frozen: a stage that needs other
    values makes a new record with :func:`dataclasses.replace`.
    """

    arch: str
    """The architecture: "ffnn", "resnet" or "stable_resnet" (docs §5b)."""
    q: np.ndarray
    """(L + 1,) float: forward variance q^l of the pre-activations y^l (the last: the logits), eq. (4)."""
    c: np.ndarray
    """(L + 1,) float: forward correlation c^l of y^l between two inputs, clipped to [0, 1], eq. (4)."""
    fan_in: np.ndarray
    """(L + 1,) int64: N_{l−1}, the inputs of each unit of layer l."""
    fan_out: np.ndarray
    """(L + 1,) int64: N_l, the units of layer l (C for the readout)."""
    act_sq: np.ndarray
    """(L + 1,) float: K^{l−1}_d = E[a(b)²] of layer l's input a (1 for x), eq. (5)."""
    act_cov: np.ndarray
    """(L + 1,) float: K^{l−1}_o = E[a(b) a(b')] between two inputs (0 for x), eq. (5)."""
    chi: np.ndarray
    """(L + 1,) float: σ_w² E[φ'(y^l)²], the per-layer backward gain (NaN: the readout), eq. (7)."""
    log_q_grad: np.ndarray
    """(L + 1,) float: log q̃^l = log E[δ^l_i(b)²], the backward variance, eqs. (7)–(9)."""
    rho_grad: np.ndarray
    """(L + 1,) float: q̃^l_o / q̃^l = E[δ^l_i(b) δ^l_i(b')] / E[δ^l_i(b)²] for two inputs b ≠ b', eq. (9)."""
    weight_var: np.ndarray
    """(L + 1,) float: σ_w² / fan_in, the variance of a weight of layer l, eq. (1)."""
    log_grad_var: np.ndarray
    """(L + 1,) float: log Var(∂ℒ/∂W^l_ij) of the batch-averaged gradient, eq. (10) (−inf if it is 0)."""
    log_t: np.ndarray
    """(L,) float: log t_l, the scale of the backward covariance H^l of hidden layer l, eq. (9)."""
    f: np.ndarray
    """(L,) float: f_l, the share of H^l common to the batch, eq. (9)."""
    branch: np.ndarray
    """(L,) bool: hidden layers whose gradient is a residual branch's α g^l a^{l−1}ᵀ, docs §5b."""
    log_alpha2: np.ndarray
    """(L,) float: log α² of each hidden layer's branch scale (0 where there is none), docs §5b."""
    positions: int = 1
    """A conv net's positions per image (h²): its scores see B · h² exchangeable (image,
    position) pairs, the readout error of an image repeated at each (docs/convolutional.md)."""
    log_row_scale: np.ndarray | None = None
    """(L, Q) float, each row sorted: Q equally likely values of log ρ^l, the variance of one
    neuron's stream gradient g^l_i over its mean, for a dense ResNet's branch layers (0 for the
    others); None where every row of a layer has the same law (FFNNs, conv nets). See
    :func:`stream_row_scales`."""

    @property
    def depth(self):
        """L, the number of hidden layers."""
        return self.log_t.size

    @property
    def q_hidden(self):
        """(L,): q^l of the hidden layers' pre-activations (a view of ``q``)."""
        return self.q[: self.depth]

    @property
    def c_hidden(self):
        """(L,): c^l of the hidden layers' pre-activations (a view of ``c``)."""
        return self.c[: self.depth]

    @property
    def n_weights(self):
        """(L + 1,) int64: n_l = fan_in · fan_out, the scores of layer l."""
        return self.fan_in * self.fan_out


def layer_moments(act, width, depth, sw, sb, batch, classes, fwd=None, arch="ffnn", image_size=1,
                  kernel_size=1):
    """The :class:`LayerMoments` of a depth-L network (``fwd``: the (q, c) of
    :func:`forward_moments` for this depth or, for an FFNN, a deeper one; computed if None).

    For a ResNet (``arch`` "resnet" or "stable_resnet", branch scale α = 1 or 1/√L) the
    entries ``log_t`` and ``f`` of hidden layers l < L describe the backward signal
    g^l = ∂ℒ/∂y^l of the residual stream itself, g^{l−1} = g^l + α φ'(y^{l−1}) ∘ (W^l)ᵀ g^l, whose
    covariance keeps the form t [(1 − f) Diag(R) + f R] with t_{l−1} = t_l (1 + α² σ_w² k_d(l−1))
    and t_{l−1} f_{l−1} = t_l f_l (1 + α² σ_w² k_o(l−1)), starting from g^L = φ'(y^L) ∘ h^L. The
    gradient of W^l is α g^l a^{l−1}ᵀ (no φ' of its own): ``branch`` marks these layers and
    ``log_alpha2`` holds log α² (0 for layer 1, whose gradient is g¹ xᵀ). Layer L keeps the
    feed-forward form (h^L with φ'(y^L) in the forward factor).

    A conv net (``arch`` one of :data:`meanfield.theory.archs.CONV_ARCHS`, ``image_size`` h,
    ``kernel_size`` k; docs/convolutional.md, "The prediction"): on i.i.d. images with circular
    padding every two distinct (image, position) pairs have the dense net's correlation c^l, so
    its moments are its dense counterpart's for a batch of B h² pairs, but for the conv layers'
    fan-in N k² and the logits, made from the average of φ(y^L) over the h² positions:
    q = σ_b² + σ_w² (K_d + (h² − 1) K_o) / h², c = (σ_b² + σ_w² K_o) / q.

    Trusts its arguments: the public functions have checked that every q^l is a finite normal
    float and every E[φ'(y^l)²] > 0 (``predict._check_forward``)."""
    L = depth
    positions = image_size * image_size
    arch = DENSE_OF.get(arch, arch)
    q, c = fwd if fwd is not None else forward_moments(act, sw, sb, L, arch)
    q, c = q[: L + 1].copy(), c[: L + 1].copy()   # q[l-1] = q^l, l = 1 … L + 1
    fan_in = np.full(L + 1, width, dtype=np.int64)
    fan_in[:L] *= kernel_size * kernel_size
    fan_out = np.full(L + 1, width, dtype=np.int64)
    fan_out[L] = classes
    # forward: the input a of layer l is x (l = 1) or φ(y^{l-1}); its second moment and the
    # covariance between two inputs of the batch
    qh, ch = q[:L], c[:L]                   # hidden pre-activations y^1 … y^L
    act_sq = np.concatenate([[1.0], _expect.diag(act, 0, 0, 0, qh)])
    act_cov = np.concatenate([[0.0], _expect.pair(act, 0, 0, qh, qh, ch)])
    if positions > 1:   # the logits of the pooled features
        q[L] = sb * sb + sw * sw * (act_sq[L] + (positions - 1) * act_cov[L]) / positions
        c[L] = min(max((sb * sb + sw * sw * act_cov[L]) / q[L], 0.0), 1.0)
        batch *= positions
    # backward: E[φ'(y^l)²] and E[φ'(y^l(b)) φ'(y^l(b'))] for the hidden layers
    d11 = _expect.diag(act, 1, 1, 0, qh)
    # k_o = E[φ'(u₁)φ'(u₂)] >= 0 for c >= 0 (Mehler, as O below): quadrature noise around 0
    # (c = 0 with E[φ'] = 0) would make f < 0 and q_grad_offdiag NaN
    p11 = np.maximum(_expect.pair(act, 1, 1, qh, qh, ch), 0.0)
    D, O = readout_moments(float(q[L]), float(c[L]), classes)
    # backward (eq. (9)): given the readout Gram R = ΔΔᵀ/C the covariance over neurons of the
    # pre-φ' signal h^l_i(·) of hidden layer l is H^l = t_l [(1 − f_l) Diag(R) + f_l R], with
    # t_L = σ_w² C/N, f_L = 1, t_{l-1} = t_l σ_w² E[φ'(y^l)²], f_{l-1} = f_l k_o/k_d. Its mean over
    # Δ uses E[R_bb] = D, E[R_bb'] = O.
    log_t = np.empty(L)
    f = np.empty(L)
    log_t[L - 1] = math.log(sw * sw * classes / width)
    f[L - 1] = 1.0
    branch = np.zeros(L, bool)
    log_alpha2 = np.zeros(L)
    if arch == "ffnn":
        for i in range(L - 1, 0, -1):       # from layer l = i + 1 to layer l - 1 = i
            log_t[i - 1] = log_t[i] + math.log(sw * sw * d11[i])
            f[i - 1] = f[i] * p11[i] / d11[i] if d11[i] > 0 else 0.0
    elif L > 1:
        a2 = 1.0 / L if arch == "stable_resnet" else 1.0
        branch[:L - 1] = True
        log_alpha2[1:] = math.log(a2)
        # log t and log t·f of g^L = φ'(y^L) ∘ h^L, then down the residual stream
        # k_o(L) = 0 (c^L = 0 and E[φ'] = 0) is the limit t f = 0: f = 0 all the way down
        log_p = math.log(p11[L - 1]) if p11[L - 1] > 0 else -math.inf
        t, tf = math.log(d11[L - 1]) + log_t[L - 1], log_p + log_t[L - 1]
        for i in range(L - 2, -1, -1):      # g of layer i + 1 from that of layer i + 2
            t += math.log1p(a2 * sw * sw * d11[i])
            tf += math.log1p(a2 * sw * sw * p11[i])
            log_t[i], f[i] = t, math.exp(tf - t)
    log_h = np.concatenate([log_t + math.log(D), [math.log(D)]])
    rho_h = np.concatenate([f * O / D, [O / D]])            # E[h(b) h(b')] / E[h(b)²]
    # δ = φ' ∘ h, but a residual branch's gradient α g^l a^{l−1}ᵀ takes the stream's g^l as is
    own = np.concatenate([~branch, [False]])
    log_q_grad = log_h + np.log(np.where(own, np.concatenate([d11, [1.0]]), 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho_grad = rho_h * np.where(own, np.concatenate([p11 / d11, [1.0]]), 1.0)
    weight_var = sw * sw / fan_in
    # Var(∂ℒ/∂W) = [Q̃_d K_d + (B − 1) Q̃_o K_o] / B, in log form (Q̃ can over/underflow)
    ratio = (act_sq + (batch - 1) * rho_grad * act_cov) / batch
    with np.errstate(divide="ignore", invalid="ignore"):
        log_grad_var = (log_q_grad + np.log(np.maximum(ratio, 0.0))
                        + np.concatenate([log_alpha2, [0.0]]))
    chi = np.concatenate([sw * sw * d11, [np.nan]])
    rows = (stream_row_scales(act, q, c, sw, branch, 1.0 / L if arch == "stable_resnet" else 1.0)
            if arch != "ffnn" and positions == 1 and L > 1 else None)
    return LayerMoments(arch=arch, q=q, c=c, fan_in=fan_in, fan_out=fan_out, act_sq=act_sq,
                        act_cov=act_cov, chi=chi, log_q_grad=log_q_grad, rho_grad=rho_grad,
                        weight_var=weight_var, log_grad_var=log_grad_var, log_t=log_t, f=f,
                        branch=branch, log_alpha2=log_alpha2, positions=positions,
                        log_row_scale=rows)


ROW_PATHS = 2 ** 14          # one neuron's paths for the law of its stream-gradient scale
ROW_STEP = 0.02              # grid step in y for E[φ'² | s] (φ' of the zoo varies on scales ≳ 0.1)
ROW_POINTS = 2 ** 16         # at most this many grid points (a huge q: a coarser step)


def smoothed_square(act, sd_shared, sd_own):
    """(s, E[φ'(s + o)²]) for o ~ N(0, sd_own²), on a grid of s covering ±7 sd_shared: φ'² on a
    uniform grid in y convolved with the Gaussian of o. A Gauss–Hermite rule in o cannot do
    this once sd_own is large: φ'² of a saturating φ is a feature of width ~1 in y, 1/sd_own in
    the rule's variable (64 nodes at sd_own = 8, a deep plain ResNet's, gave log E[φ'² | s] a
    spread four times too large)."""
    half = 7.0 * sd_shared + 8.0 * sd_own + 1.0
    h = max(ROW_STEP, 2.0 * half / ROW_POINTS)
    y = np.arange(-half, half + h / 2, h)
    f = act(y, 1) ** 2
    if sd_own > 0.0:
        from scipy.signal import fftconvolve  # lazy: `import meanfield` stays light
        k = np.arange(-8.0 * sd_own, 8.0 * sd_own + h / 2, h)
        kernel = np.exp(-0.5 * (k / sd_own) ** 2)
        f = fftconvolve(f, kernel / kernel.sum(), mode="same")
    inside = np.abs(y) <= 7.0 * sd_shared + h
    return y[inside], f[inside]
ROW_QUANTILES = 256          # the law of log ρ^l is kept as this many equally likely values


def stream_row_scales(act, q, c, sw, branch, a2):
    """The law of a ResNet's per-neuron stream-gradient scale (docs/critical_sparsity.md §5b,
    eq. (13c')): (L, Q) values of log ρ^l, each row sorted, at the midpoints of Q =
    ``ROW_QUANTILES`` equal slices of probability; 0 where ``branch`` is False.

    A neuron keeps its identity down the stream, and with it the shared component s^m of its
    pre-activations y^m(b) = s^m + o^m(b) (s a random walk of variances Q_m = q^m c^m, o
    independent over the examples). Its gradient g^l_i = g^{l+1}_i + α φ'(y^l_i) ∘ (W^{l+1})ᵀ g^{l+1}
    then has, given its path, the variance v^l = v^{l+1} + α² σ_w² E[φ'(y^l)² | s^l] E[v^{l+1}]
    from v^L = E[φ'(y^L)² | s^L]: a different one for each neuron, even at infinite width, where
    the mean field keeps only E[v^l]. The rows of a branch layer's gradient α g^l a^{l−1}ᵀ are
    therefore a scale mixture over ρ^l = v^l / E[v^l]. Monte Carlo over ``ROW_PATHS`` paths
    with a fixed seed, drawn from the top down (s^l given s^{l+1} is N(s^{l+1} Q_l/Q_{l+1},
    Q_l (1 − Q_l/Q_{l+1})), the random walk run backwards), so that memory does not grow with L;
    E[φ'² | s] tabulated per layer by :func:`smoothed_square`."""
    L = branch.size
    shared = q[:L] * c[:L]
    own = np.sqrt(np.maximum(q[:L] - shared, 0.0))
    rng = np.random.default_rng([SEED, 27])
    probs = (np.arange(ROW_QUANTILES) + 0.5) / ROW_QUANTILES
    out = np.zeros((L, ROW_QUANTILES))

    def m2(l, s):                                   # E[φ'(y^l)² | s^l = s] on the paths
        return np.interp(s, *smoothed_square(act, math.sqrt(shared[l]), own[l]))

    s = math.sqrt(shared[L - 1]) * rng.standard_normal(ROW_PATHS)
    v = m2(L - 1, s)
    for l in range(L - 2, -1, -1):                  # g of layer l + 1 from that of layer l + 2
        r = shared[l] / shared[l + 1] if shared[l + 1] > 0.0 else 0.0
        s = r * s + math.sqrt(max(shared[l] * (1.0 - r), 0.0)) * rng.standard_normal(ROW_PATHS)
        v += a2 * sw * sw * v.mean() * m2(l, s)
        if branch[l]:
            with np.errstate(divide="ignore"):
                out[l] = np.log(np.quantile(v / v.mean(), probs))
    return out
