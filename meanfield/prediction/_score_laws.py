"""The SNIP score laws of every layer and the law of the critical sparsity they imply, for a
batch of draws of the readout error matrix Δ and of the backward signal
(``docs/critical_sparsity.md`` §5–§6, eqs. (12)–(21)).

Everything is vectorised over the draws: a draw's layers are rows of one :class:`ScoreLaws`, and
the law of m = min_l max_ij g^l_ij is worked out for all draws on one array of grid windows.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import ndtr, ndtri

from . import _top_block
from ._moments import SEED, NoPrediction, hermite
from ._product_law import H, ScoreLaws

N_QMC = 2048                 # quasi-random points (U, V, ξ) per layer law (wide limit)
N_QMC_FINITE = 512           # per layer law in the finite-width model (more draws, fewer points)
N_INNER = 64                 # Gauss–Hermite nodes for the per-example Gaussian ε
DRAWS = 32                   # readout error matrices Δ averaged over (wide limit)
DRAWS_FINITE = 128           # at most this many draws of Δ and of the finite-width chain,
DRAW_BLOCK = 32              # taken in blocks of 32 until the average's own standard error is
DRAW_SE_TARGET = 5e-4        # at most this
ATOMS_PER_CHUNK = 2 ** 16    # score laws are built for chunks of draws of about this many atoms
NORMALS_PER_CHUNK = 2 ** 22  # backward chains are run for chunks of about this many normals


class ReadoutDraws:
    """D realisations of the readout error matrix Δ = softmax(z) − onehot(y) of one batch
    (B × C), with logits z_k(·) ~ N(0, q[(1 − c) I + c 11ᵀ]) i.i.d. over the classes and labels
    uniform, summarised by what the score laws need, stacked over the draws: ``gram`` = ΔᵀΔ
    (D, C, C), ``root`` = Λ^{1/2}Eᵀ for ΔᵀΔ = E Λ Eᵀ (D, C, C), ``col_sum`` = Δᵀ1 and
    ``col_norm`` (D, C), ``sq_norm`` = ‖Δ‖² (D,). Fixed seed: deterministic."""

    def __init__(self, q, c, batch, classes, draws):
        rng = np.random.default_rng(SEED)
        deltas = np.empty((draws, batch, classes))
        for d in range(draws):
            z = math.sqrt(q * c) * rng.standard_normal((1, classes)) \
                + math.sqrt(q * (1.0 - c)) * rng.standard_normal((batch, classes))
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(batch), rng.integers(0, classes, batch)] -= 1.0
            deltas[d] = p
        self._summarise(deltas)

    @classmethod
    def from_deltas(cls, deltas):
        """The summaries of given error matrices Δ, shape (D, B, C)."""
        out = object.__new__(cls)
        out._summarise(np.asarray(deltas, dtype=np.float64))
        return out

    def _summarise(self, deltas):
        self.gram = deltas.transpose(0, 2, 1) @ deltas
        lam, vec = np.linalg.eigh(self.gram)
        self.root = (vec * np.sqrt(np.maximum(lam, 0.0))[:, None, :]).transpose(0, 2, 1)
        self.col_sum = deltas.sum(axis=1)
        self.col_norm = np.sqrt(np.einsum("dcc->dc", self.gram))
        self.sq_norm = np.einsum("dcc->d", self.gram)

    def __len__(self):
        return self.gram.shape[0]

    def repeated(self, times):
        """The summaries of Δ ⊗ 1_times, each row of Δ repeated ``times`` times (a conv net's
        (image, position) pairs: docs/convolutional.md), from those of Δ."""
        out = object.__new__(ReadoutDraws)
        out.gram, out.root = self.gram * times, self.root * math.sqrt(times)
        out.col_sum, out.col_norm = self.col_sum * times, self.col_norm * math.sqrt(times)
        out.sq_norm = self.sq_norm * times
        return out

    def take(self, sl):
        out = object.__new__(ReadoutDraws)
        for name in ("gram", "root", "col_sum", "col_norm", "sq_norm"):
            setattr(out, name, getattr(self, name)[sl])
        return out


@functools.lru_cache(maxsize=8)
def qmc_points(classes, n):
    """n scrambled-Sobol points mapped to independent standard normals (U, V, ξ₁ … ξ_C): the
    shared components U (row) and V (column) and the batch-sum fluctuation ξ ∈ R^C. Fixed seed."""
    from scipy.stats import qmc  # lazy: `import meanfield` stays light (tests/test_package.py)
    u = qmc.Sobol(d=2 + classes, scramble=True, seed=SEED).random(n)
    z = ndtri(np.clip(u, 1e-300, 1.0 - 1e-16))
    return z[:, 0].copy(), z[:, 1].copy(), np.ascontiguousarray(z[:, 2:])


def _cond_moments(act, q, c, deriv, z_outer):
    """E_ε[f(y)] and E_ε[f(y)²] given the shared Gaussian U = z_outer, where
    y = √q (√c U + √(1−c) ε) and f = φ^(deriv); rows: layers, columns: U points."""
    z_in, w_in = hermite(N_INNER)
    out1 = np.empty((np.size(q), z_outer.size))
    out2 = np.empty_like(out1)
    for r, (qr, cr) in enumerate(zip(np.atleast_1d(q), np.atleast_1d(c))):
        y = math.sqrt(qr) * (math.sqrt(cr) * z_outer[:, None] + math.sqrt(1.0 - cr) * z_in[None, :])
        f = act(y, deriv)
        out1[r] = f @ w_in
        out2[r] = (f * f) @ w_in
    return out1, out2


def forward_conditionals(act, m, classes, n_points=N_QMC):
    """Conditional moments given the shared Gaussians, at the quasi-random points: M1, M2 of
    φ'(y^l) given U (rows: hidden layers l = 1 … L) and P1, P2 of φ(y^l) given V."""
    zu, zv, _ = qmc_points(classes, n_points)
    M1, M2 = _cond_moments(act, m.q_hidden, m.c_hidden, 1, zu)
    P1, P2 = _cond_moments(act, m.q_hidden, m.c_hidden, 0, zv)
    return M1, M2, P1, P2


class Backward:
    """The backward signal of the hidden layers for D draws, in the form the score laws use.
    Layer l (index l − 1) has per-example signals h^l_i(b) = Δ_b · v_i + e_i(b) over the batch: a
    class-space part with covariance K^l = e^{κ_l} K̃^l of the rows v_i ∈ R^C, and a per-example
    part, independent over the batch, of total variance Σ_b E[e_i(b)²] = e^{κ_l} ``noise``.

    For x ∈ R^B with x = μ1 + sd ξ_B (ξ_B standard normal) the variance of Σ_b x_b h_i(b) is
    e^κ [m2 · noise + μ² A + 2 μ sd b·ξ + sd² Σ_r ν_r ξ_r²] with ξ ∈ R^C standard normal, because
    Δᵀξ_B has the law of EΛ^{1/2}ξ (ΔᵀΔ = E Λ Eᵀ): A = cᵀK̃c with c = Δᵀ1, and with
    J = Λ^{1/2}EᵀK̃EΛ^{1/2} = U diag(ν) Uᵀ, b = UᵀΛ^{1/2}EᵀK̃c (rotating ξ by U keeps its law).
    Arrays: ``log_scale``, ``A``, ``noise`` (D, L); ``b``, ``nu`` (D, L, C).

    In the finite-width model the top hidden layers are sampled exactly (:mod:`._top_block`):
    then L counts only the chain's layers 1 … L − T, and ``top`` (D, T, A) and ``readout``
    (D, C·N) hold the exact layers' log-gradient atoms; otherwise both are None."""

    top = None
    readout = None
    khat = None         # (D, L, C, C): the chain's K̂ per layer (kept by backward_finite)
    m_star = None       # (D,): the "disconnect" threshold of each draw, when asked for
    readout_gain = 0.0  # the readout's relative 1/N raise of E[G²] (the analytic route, §5e)

    def __init__(self, draws, layers):
        D, C = draws.col_sum.shape
        self.log_scale = np.empty((D, layers))
        self.A = np.empty((D, layers))
        self.noise = np.empty((D, layers))
        self.b = np.empty((D, layers, C))
        self.nu = np.empty((D, layers, C))
        self._draws = draws

    def take(self, sl):
        out = object.__new__(Backward)
        for name in ("log_scale", "A", "noise", "b", "nu", "top", "readout", "khat", "m_star"):
            value = getattr(self, name)
            setattr(out, name, None if value is None else value[sl])
        out._draws = self._draws.take(sl)
        out.readout_gain = self.readout_gain
        return out

    def set(self, log_scale, K, noise):
        """All layers from the class-space covariances K (D, L, C, C) with scales e^log_scale and
        noises (D, L)."""
        c, M = self._draws.col_sum[:, None, :], self._draws.root[:, None]
        Kc = np.einsum("dlce,de->dlc", K, c[:, 0])
        J = M @ K @ M.transpose(0, 1, 3, 2)
        nu, U = np.linalg.eigh(J)
        self.log_scale[:] = log_scale
        self.A[:] = np.einsum("dlc,dlc->dl", np.broadcast_to(c, Kc.shape), Kc)
        self.b[:] = np.einsum("dlce,dlc->dle", U, np.einsum("dce,dle->dlc", M[:, 0], Kc))
        self.nu[:] = np.maximum(nu, 0.0)
        self.noise[:] = noise
        self.khat = K


def backward_wide(m, draws, classes):
    """The wide-limit backward signal (eq. (9) of the docs): K^l = (t_l f_l / C) I and
    noise = t_l (1 − f_l) ‖Δ‖² / C."""
    L = m.depth
    D = len(draws)
    out = Backward(draws, L)
    f = m.f
    K = f[None, :, None, None] * np.eye(classes)[None, None]
    out.set(np.broadcast_to(m.log_t - math.log(classes), (D, L)),
            np.broadcast_to(K, (D, L, classes, classes)),
            (1.0 - f)[None, :] * draws.sq_norm[:, None])
    return out


def _roots(K):
    """R with RᵀR = K for a stack of symmetric positive semi-definite K (rows z R then have
    covariance K)."""
    try:
        return np.linalg.cholesky(K).transpose(0, 2, 1)
    except np.linalg.LinAlgError:
        if K.shape[0] > 1:      # the singular one alone, so that no draw depends on its chunk
            return np.stack([_roots(k[None])[0] for k in K])
        w, Q = np.linalg.eigh(K)
        return np.sqrt(np.maximum(w, 0.0))[..., None] * Q.transpose(0, 2, 1)


def backward_finite(m, cond, draws, width, classes, sw, rngs, start=None):
    """The backward signal of a network of finite width N, one chain per draw.

    The readout gives the last hidden layer N rows v_i = (W^{L+1})_{·i} ~ N(0, (σ_w²/N) I_C).
    Each layer's N rows are drawn from the law its upper layer leaves, and that law is the
    finite sum over the upper layer's N neurons: with m_i = E[φ'(y_i(b)) | U_i] and
    s_i² = Var(φ'(y_i(b)) | U_i) for the neuron's shared forward Gaussian U_i (a quasi-random
    point drawn at random),

        K^{l−1} = (σ_w²/N) Σ_i m_i² v_i v_iᵀ,
        noise^{l−1} = (σ_w²/N) Σ_i [s_i² ‖Δ v_i‖² + E[φ'(y_i)² | U_i] noise^l],

    whose means are the wide-limit recursion (t σ_w² E[φ'φ'] f and the (1 − f) part). Each layer's
    score law uses the realised covariance (1/N) Σ_i v_i v_iᵀ of its own rows: a product of
    Wishart matrices whose effective rank falls with the distance from the readout.

    ``rngs``: one generator per draw, so that a draw does not depend on how draws are chunked.
    ``start``: None (the chain starts at the readout), or ``(rows, noise, T)``: rows (D, N, C)
    and noise (D,), the signal of the chain's top layer L' = L − T as the exact block of T
    layers above it left it (:class:`meanfield.prediction._top_block.Block`); the chain then covers
    layers 1 … L'."""
    if m.arch != "ffnn":
        return _backward_finite_resnet(m, cond, draws, width, classes, sw, rngs, start)
    L = _chain_layers(m, start)
    M1, M2, _, _ = cond
    D = len(draws)
    out = Backward(draws, L)
    if L == 0:
        return out
    z = np.stack([r.standard_normal((L, width, classes)) for r in rngs])        # (D, L, N, C)
    picks = np.stack([r.integers(0, M1.shape[1], (L, width)) for r in rngs])   # (D, L, N)
    gain = sw * sw / width
    log_scales = np.empty((D, L))
    Khat = np.empty((D, L, classes, classes))
    noises = np.empty((D, L))
    if start is None:
        log_scale = np.full(D, math.log(gain))
        K = np.broadcast_to(np.eye(classes), (D, classes, classes))
        noise = np.zeros(D)
    else:
        log_scale, noise = np.zeros(D), np.asarray(start[1], dtype=np.float64)
    sq = np.maximum(draws.sq_norm, 1e-300)
    for i in range(L - 1, -1, -1):
        V = start[0] if start is not None and i == L - 1 else z[:, i] @ _roots(K)
        log_scales[:, i], Khat[:, i], noises[:, i] = log_scale, V.transpose(0, 2, 1) @ V / width, noise
        if i == 0:
            break
        m1, m2 = M1[i][picks[:, i]], M2[i][picks[:, i]]
        K = gain * ((V * (m1 * m1)[..., None]).transpose(0, 2, 1) @ V)
        quad = ((V @ draws.gram) * V).sum(axis=2)
        noise = gain * ((np.maximum(m2 - m1 * m1, 0.0) * quad).sum(axis=1) + m2.sum(axis=1) * noise)
        K, noise, log_scale = renormalise(K, noise, log_scale, sq, i)
    out.set(log_scales, Khat, noises)
    return out


def renormalise(K, noise, log_scale, sq, layer):
    """The chain's signal (K (D, C, C), noise (D,)) rescaled to unit size, tr K / C + noise / ‖Δ‖²
    = 1, its log-size added to ``log_scale`` (D,): the scales of deep layers would under- or
    overflow. ``sq`` = ‖Δ‖² per draw; ``layer`` names the layer in the error."""
    scale = np.einsum("dcc->d", K) / K.shape[-1] + noise / sq
    if not np.all(scale > 0.0):
        raise NoPrediction(f"the backward signal vanishes exactly (or is not finite) at hidden "
                           f"layer {layer}")
    return K / scale[:, None, None], noise / scale, log_scale + np.log(scale)


def _chain_layers(m, start):
    L = m.depth
    return L if start is None else L - start[2]


def _backward_finite_resnet(m, cond, draws, width, classes, sw, rngs, start=None):
    """:func:`backward_finite` for a ResNet. Layer L's rows are those of h^L, as in an FFNN.
    Below it the rows are those of the residual stream's gradient g^l, which keeps each neuron:
    g^L_i = m_i v_i (+ per-example part), and

        w^{l−1}_j = w^l_j + α m_j u_j,   u_j ~ N(0, (σ_w²/N) Σ_i w^l_i w^l_iᵀ),
        noise^{l−1} = noise^l + α² [(1/N) Σ_j s_j² ‖Δ u_j‖² + σ_w² (1/N) Σ_j M₂(U_j) noise^l],

    with m_j, s_j² and M₂(U_j) those of neuron j's φ'(y^{l−1}); the means are the wide-limit
    recursion of :func:`meanfield.prediction._moments.layer_moments`. With a ``start``, the chain's
    top layer L' holds the given rows of g^{L'} and the recursion runs below it."""
    M1, M2, _, _ = cond
    D = len(draws)
    L = _chain_layers(m, start)
    out = Backward(draws, L)
    if L == 0:
        return out
    a2 = 1.0 / m.depth if m.arch == "stable_resnet" else 1.0
    z = np.stack([r.standard_normal((L, width, classes)) for r in rngs])        # (D, L, N, C)
    picks = np.stack([r.integers(0, M1.shape[1], (L, width)) for r in rngs])   # (D, L, N)
    gain = sw * sw / width
    sq = np.maximum(draws.sq_norm, 1e-300)
    log_scales = np.empty((D, L))
    Khat = np.empty((D, L, classes, classes))
    noises = np.empty((D, L))
    if start is None:
        # layer L: the rows of h^L = (W^{L+1})ᵀ Δ, with φ'(y^L) in the forward factor
        V = z[:, L - 1] * math.sqrt(gain)
        Khat[:, L - 1] = V.transpose(0, 2, 1) @ V / width
        noises[:, L - 1] = 0.0
        # g^L = φ'(y^L) ∘ h^L
        m1, m2 = M1[L - 1][picks[:, L - 1]], M2[L - 1][picks[:, L - 1]]
        W = V * m1[..., None]
        noise = (np.maximum(m2 - m1 * m1, 0.0) * ((V @ draws.gram) * V).sum(axis=2)).mean(axis=1)
    else:
        W, noise = start[0], np.asarray(start[1], dtype=np.float64)
        Khat[:, L - 1], noises[:, L - 1] = W.transpose(0, 2, 1) @ W / width, noise
    log_scales[:, L - 1] = 0.0
    log_scale = np.zeros(D)
    for i in range(L - 2, -1, -1):                  # g of layer i + 1 from that of layer i + 2
        K = gain * (W.transpose(0, 2, 1) @ W)
        U = z[:, i] @ _roots(K)
        m1, m2 = M1[i][picks[:, i]], M2[i][picks[:, i]]
        quad = ((U @ draws.gram) * U).sum(axis=2)
        noise = noise + a2 * ((np.maximum(m2 - m1 * m1, 0.0) * quad).mean(axis=1)
                              + sw * sw * m2.mean(axis=1) * noise)
        W = W + math.sqrt(a2) * m1[..., None] * U
        Kh = W.transpose(0, 2, 1) @ W / width
        scale = np.einsum("dcc->d", Kh) / classes + noise / sq
        if not np.all(scale > 0.0):
            raise NoPrediction(f"the backward signal vanishes exactly (or is not finite) at hidden "
                               f"layer {i + 1}")
        log_scale = log_scale + np.log(scale)
        W = W / np.sqrt(scale)[:, None, None]
        noise = noise / scale
        log_scales[:, i], Khat[:, i], noises[:, i] = log_scale, Kh / scale[:, None, None], noise
    out.set(log_scales, Khat, noises)
    return out


def score_laws(m, cond, draws, back, batch, classes):
    """Score laws for D draws, eqs. (12)–(16): a list of groups ``(laws, r)``, in layer order,
    of a :class:`ScoreLaws` whose rows d·r … d·r + r − 1 are r consecutive layers of draw d:
    the chain's hidden layers (quasi-random point (U, V, ξ) = one equally weighted atom of the
    conditional scale S), then either the readout alone (wide limit) or the exact block's
    hidden layers and its readout (atoms: the realised gradient entries)."""
    L = back.log_scale.shape[1]
    D = len(draws)
    M1, M2, P1, P2 = cond
    zu, _, xi = qmc_points(classes, M1.shape[1])
    n = xi.shape[0]
    # E[φ'(y_i(b)) a_j(b) | U_i, V_j] and E[φ'(y_i(b))² a_j(b)² | U_i, V_j]; layer 1 sees x
    mu = np.vstack([np.zeros((1, n)), M1[1:] * P1[:-1]])
    m2 = np.vstack([M2[:1], M2[1:] * P2[:-1]])
    # a ResNet's residual layers: the gradient α g^l a^{l−1}ᵀ has no φ' of its own
    branch = m.branch
    mu[branch] = np.vstack([np.zeros((1, n)), P1[:-1]])[branch]
    m2[branch] = np.vstack([np.ones((1, n)), P2[:-1]])[branch]
    mu, m2 = mu[:L], m2[:L]
    sd = np.sqrt(np.maximum(m2 - mu * mu, 0.0))
    cross = back.b @ xi.T                                          # (D, L, n)
    quad = back.nu @ (xi * xi).T
    # s2 = (m2 noise + mu² A + 2 mu sd cross + sd² quad) / B², summed in that order, and its log,
    # in place: the (D, L, n) temporaries cost more than the arithmetic
    s2 = m2 * back.noise[..., None]
    s2 += mu * mu * back.A[..., None]
    cross *= 2.0 * mu * sd
    s2 += cross
    quad *= sd * sd
    s2 += quad
    s2 /= batch ** 2
    log_s = np.maximum(s2, 0.0, out=s2)
    with np.errstate(divide="ignore"):
        np.log(log_s, out=log_s)
    log_s += back.log_scale[..., None]
    log_s += (np.log(m.weight_var[:L]) + m.log_alpha2[:L])[:, None]
    if m.log_row_scale is not None:
        # a ResNet's branch rows: the neuron's own stream-gradient scale ρ, at the quantile of
        # the atom's U (which these layers' laws do not otherwise use)
        Q = m.log_row_scale.shape[1]
        pick = np.clip((ndtr(zu) * Q).astype(np.int64), 0, Q - 1)
        log_s += m.log_row_scale[:L, pick]
    log_s *= 0.5
    groups = [(ScoreLaws(log_s.reshape(D * L, n), "product"), L)] if L else []
    if back.top is not None:
        top = back.top.shape[1]
        return groups + [(ScoreLaws(back.top.reshape(D * top, -1), "normal"), top),
                         (ScoreLaws(back.readout, "normal"), 1)]
    # readout: row k of W^{L+1} sees G_kj = (P1(V_j) s_k + √(P2 − P1²) ‖Δ_k‖ ζ) / B, ζ ~ N(0, 1)
    p1, p2 = P1[-1], P2[-1]
    sdr = np.sqrt(np.maximum(p2 - p1 * p1, 0.0))
    g = (p1 * draws.col_sum[..., None] + (sdr * xi[:, 0]) * draws.col_norm[..., None]) / batch
    with np.errstate(divide="ignore"):
        log_r = np.log(np.abs(g)) + 0.5 * (math.log(m.weight_var[-1]) + math.log1p(back.readout_gain))
    return groups + [(ScoreLaws(log_r.reshape(D, -1), "normal"), 1)]


def _rows_at(groups, idx):
    """(F, T) of all layers of every draw at that draw's grid indices idx (D, W): (D, L + 1, W)."""
    D = idx.shape[0]
    Fs, Ts = [], []
    for law, r in groups:
        F, T = law.at(np.repeat(idx, r, axis=0))
        Fs.append(F.reshape(D, r, -1))
        Ts.append(T.reshape(D, r, -1))
    return np.concatenate(Fs, axis=1), np.concatenate(Ts, axis=1)


def scr_law(groups, n):
    """Law of m = min over the layers of their largest score (layers independent,
    P(max_l ≤ t) = F_l(t)^{n_l}) and of s_cr = s(m), s(t) = Σ_l n_l F_l(t) / Σ_l n_l, for each
    draw. Returns a dict of arrays over the draws: ``mean`` and ``second`` (D,), ``p_first``
    (D, L + 1), and the window ``log_threshold`` (D, W), ``cdf_m`` (D, W)."""
    D = groups[-1][0].F.shape[0]
    n = np.asarray(n, dtype=np.float64)
    # window where P(m ≤ t) rises from ~0 to ~1: from the first layer whose max can fall below t
    # to the first layer whose max is surely below t
    lo = np.empty((D, n.size), np.int64)
    hi = np.empty((D, n.size), np.int64)
    first = 0
    for law, r in groups:
        cols = slice(first, first + r)
        # P(max ≤ t) = (1 − T)^n_l exceeds p where T < 1 − p^(1/n_l): compared on T itself, as
        # exp and log over every row's whole grid cost more than the rest of the law
        nl = np.tile(n[cols], D)
        lo[:, cols] = law.first_below(-np.expm1(math.log(1e-15) / nl)).reshape(D, -1)
        hi[:, cols] = law.first_below(-np.expm1(math.log1p(-1e-15) / nl)).reshape(D, -1)
        first += r
    lo = lo.min(axis=1) - 1
    hi = hi.min(axis=1) + 2
    idx = lo[:, None] + np.arange(int((hi - lo).max()) + 1)[None, :]
    F, T = _rows_at(groups, idx)
    with np.errstate(divide="ignore"):
        A = np.exp(n[None, :, None] * np.log1p(-T))                 # P(max of layer l ≤ t)
        log_not = np.log1p(-np.minimum(A, 1.0))                     # log P(max of layer l > t)
    log_surv = log_not.sum(axis=1)
    cdf_m = -np.expm1(log_surv)                                     # P(m ≤ t)
    s = (n[None, :, None] * F).sum(axis=1) / n.sum()
    dP = np.diff(cdf_m, axis=1)
    s_mid = 0.5 * (s[:, 1:] + s[:, :-1])
    mass = dP.sum(axis=1)
    mean = (dP * s_mid).sum(axis=1) / mass
    second = (dP * s_mid ** 2).sum(axis=1) / mass
    # which layer is the minimum: ∫ dA_l Π_{k≠l} (1 − A_k)
    with np.errstate(invalid="ignore", over="ignore"):
        other = np.exp(log_surv[:, None, :] - log_not)
    other = np.where(np.isfinite(other), other, 0.0)
    p_first = (np.diff(A, axis=2) * 0.5 * (other[..., 1:] + other[..., :-1])).sum(axis=2)
    p_first /= np.maximum(p_first.sum(axis=1, keepdims=True), 1e-300)
    return dict(log_threshold=idx * H, cdf_m=cdf_m, mean=mean, second=second, p_first=p_first)


def kept_fractions(groups, n, d, s):
    """Kept fraction per layer and log threshold for draw d at sparsity s > 0 (eq. (21)): the
    global threshold t solves Σ_l n_l T_l(t) = (1 − s) Σ_l n_l."""
    from scipy.optimize import brentq  # lazy: `import meanfield` stays light (tests/test_package.py)
    target = (1.0 - s) * n.sum()
    rows = [slice(d * r, (d + 1) * r) for _, r in groups]
    lo = min(int(law.start[sl].min()) for (law, _), sl in zip(groups, rows))
    hi = max(int(law.stop[sl].max()) for (law, _), sl in zip(groups, rows))
    idx = np.arange(lo - 1, hi + 2)
    T = np.vstack([law.at(idx, sl)[1] for (law, _), sl in zip(groups, rows)])
    kept_total = n @ T                               # non-increasing in t, 0 at the right end
    # last grid point with kept_total ≥ target (the left end if none); interpolate log T_l
    # linearly in log t to the next point and solve the total exactly on that interpolant
    above = np.flatnonzero(kept_total >= target)
    j = int(above[-1]) if above.size else 0
    with np.errstate(divide="ignore"):
        la, lb = np.log(T[:, j]), np.log(T[:, j + 1])

    def kept_at(theta):
        with np.errstate(invalid="ignore"):
            out = np.exp((1.0 - theta) * la + theta * lb)
        return np.where(np.isfinite(out), out, 0.0)

    f0, f1 = n @ kept_at(0.0) - target, n @ kept_at(1.0) - target
    if f0 <= 0.0:
        theta = 0.0
    elif f1 >= 0.0:
        theta = 1.0
    else:
        theta = brentq(lambda th: n @ kept_at(th) - target, 0.0, 1.0, xtol=1e-15, rtol=1e-15)
    return np.clip(kept_at(theta), 0.0, 1.0), (idx[j] + theta) * H


def disconnect_thresholds(act, m, back, blocks, width, sw, sb, batch, ids, top):
    """m* of each draw, the widest input-to-logit path's bottleneck (``pruning.critical_sparsity``
    with ``definition="disconnect"``), in log score units: the top block gives each unit's best
    bottleneck to the logits; below it an FFNN's layers are taken as connecting every unit (off
    the EOC they keep enough weights at m* for that) down to ``bottom_layers`` exact layers at
    the inputs, fed by the chain's signal; a ResNet's blocks as skips alone, down to its exact
    first layer; ``top``: the block's exact hidden layers. (D,)."""
    L = m.depth
    K = _top_block.bottom_layers(L, m.arch, "disconnect", top)
    out = np.empty(len(blocks))
    for d, (block, draw) in enumerate(zip(blocks, ids)):
        above = block.above
        if K == 0:                                   # the block reaches the inputs
            out[d] = above.max()
            continue
        # the chain's signal at layer K, drawn in batch space: Δ v_i + e_i(b)
        rng = np.random.default_rng([SEED, 3, draw])
        delta = block.delta
        rows = rng.standard_normal((width, delta.shape[1])) @ _roots(back.khat[d:d + 1, K - 1])[0]
        scale = math.exp(0.5 * back.log_scale[d, K - 1])
        signal = scale * (delta @ rows.T + math.sqrt(back.noise[d, K - 1] / batch)
                          * rng.standard_normal((batch, width)))
        below = _top_block.simulate_bottom(act, m, width, sw, sb, batch, K, signal, rng)
        out[d] = (np.minimum(below, above).max() if m.arch != "ffnn"
                  else min(below.max(), above.max()))
    with np.errstate(divide="ignore"):
        return np.log(out)


def s_at(groups, n, log_t):
    """s(t) = Σ_l n_l F_l(t) / Σ_l n_l of each draw at its own log threshold log_t (D,),
    interpolated linearly in log t between grid points."""
    x = np.maximum(np.asarray(log_t) / H, -1e9)     # log 0: below every grid (exact zeros)
    lo = np.floor(x).astype(np.int64)
    F, _ = _rows_at(groups, np.stack([lo, lo + 1], axis=1))
    frac = (x - lo)[:, None]
    F = F[..., 0] * (1.0 - frac) + F[..., 1] * frac
    n = np.asarray(n, dtype=np.float64)
    return (F * n).sum(axis=1) / n.sum()


def draw_chunks(act, m, cond, width, sw, sb, batch, classes, finite, definition="layer",
                whole=False, analytic=False):
    """(readout draws, backward signal) in chunks of draws: ``DRAWS_FINITE`` draws of the top
    block (:mod:`._top_block`, which makes Δ) and of the width-N backward chain below it, or
    ``DRAWS`` of Δ with the wide-limit signal, or (``analytic``) ``DRAWS_FINITE`` draws of Δ
    with the analytic finite-width signal (:mod:`._analytic`, no simulated layer; ``"chain"``:
    without the 1/N coupling of :mod:`._vertex`). The chain
    adds the net-to-net spread of the layer scales (its per-draw s_cr spreads like the Monte
    Carlo's), hence the larger count; the caller
    may stop after any block of ``DRAW_BLOCK`` draws (chunks never straddle one). Chunks bound
    the memory of the score laws. With ``definition="disconnect"`` (finite width only) each
    draw's backward signal also carries ``m_star``: see :func:`disconnect_thresholds`. With
    ``whole`` the block is the whole network (the simulated route)."""
    L = m.depth
    if analytic:
        yield from _analytic_chunks(act, m, cond, width, sw, batch, classes,
                                    analytic != "chain")
        return
    count = DRAWS_FINITE if finite else DRAWS
    top = _top_block.exact_top(L, m.arch, definition, whole) if finite else 0
    chain = L - top
    burn = _top_block.burn_in(act, sw, sb, m.arch) if finite else 0
    fit = _fit_block
    # per draw: the chain's normals and the block's gradient atoms; the laws' atoms
    atoms = (L - chain) * min(_top_block.MAX_ATOMS, width * width) + classes * width
    chain_step = fit(NORMALS_PER_CHUNK // (chain * width * classes + atoms)) if finite else count
    law_step = min(fit(ATOMS_PER_CHUNK // (chain * cond[0].shape[1] + atoms * finite)),
                   chain_step)
    if not finite:
        draws = ReadoutDraws(float(m.q[L]), float(m.c[L]), batch, classes, count)
        if m.positions > 1:
            draws = draws.repeated(m.positions)
    for start in range(0, count, chain_step):
        ids = range(start, min(start + chain_step, count))
        if finite:
            blocks = [_top_block.simulate(act, m, width, sw, sb, batch, classes, burn,
                                          np.random.default_rng([SEED, 2, d]), definition, top)
                      for d in ids]
            chunk = ReadoutDraws.from_deltas(np.stack([b.delta for b in blocks]))
            rows = np.stack([b.rows for b in blocks]) if chain else None
            rngs = [np.random.default_rng([SEED, 1, d]) for d in ids]
            back = backward_finite(m, cond, chunk, width, classes, sw, rngs,
                                   (rows, np.array([b.noise for b in blocks]), L - chain))
            back.top = np.stack([b.hidden for b in blocks])
            back.readout = np.stack([b.readout for b in blocks])
            if definition == "disconnect":
                back.m_star = disconnect_thresholds(act, m, back, blocks, width, sw, sb, batch,
                                                    ids, top)
        else:
            chunk = draws.take(slice(ids.start, ids.stop))
            back = backward_wide(m, chunk, classes)
        yield from _split(chunk, back, law_step)


def _fit_block(n):
    """The largest power of two ≤ n (at least 1, at most ``DRAW_BLOCK``): chunk sizes divide
    ``DRAW_BLOCK``, so that no chunk straddles a block."""
    return 1 << min(max(int(n), 1).bit_length() - 1, DRAW_BLOCK.bit_length() - 1)


def _split(chunk, back, step):
    """(readout draws, backward signal) of a chunk in pieces of ``step`` draws."""
    for sub in range(0, len(chunk), step):
        sl = slice(sub, sub + step)
        yield chunk.take(sl), back.take(sl)


def _analytic_chunks(act, m, cond, width, sw, batch, classes, coupled=True):
    """:func:`draw_chunks` of the analytic route: Δ from the mean-field logits, the class-space
    Wishart chain and (if ``coupled``) the 1/N coupling (docs §5e)."""
    # imported here: _analytic builds on this module's Backward
    from ._analytic import backward_analytic, backward_analytic_resnet, weight_classes
    from ._vertex import gradient_coupling
    coupling = (gradient_coupling(act, m, width, sw, batch, classes) if coupled
                else np.zeros(m.depth + 1))
    backward = backward_analytic if m.arch == "ffnn" else backward_analytic_resnet
    draws = ReadoutDraws(float(m.q[m.depth]), float(m.c[m.depth]), batch, classes, DRAWS_FINITE)
    law_step = _fit_block(ATOMS_PER_CHUNK // (m.depth * cond[0].shape[1]))
    weights = weight_classes(cond, width, classes, means=m.arch != "ffnn")
    for start in range(0, DRAWS_FINITE, DRAW_BLOCK):
        chunk = draws.take(slice(start, start + DRAW_BLOCK))
        rng = np.random.default_rng([SEED, 3, start])         # one per block of draws
        back = backward(m, cond, chunk, width, classes, sw, rng, coupling, weights)
        yield from _split(chunk, back, law_step)
