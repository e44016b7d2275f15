"""Mean-field prediction of sensitivity-based pruning (SNIP) at initialization: the layer-wise
scale of the SNIP scores, their distribution, the critical sparsity s_cr and the fraction of
weights kept per layer. THEORY.md §5; derivation and equation numbers in
``docs/critical_sparsity.md``.

Network (THEORY.md §1): input x ∈ R^N with x ~ N(0, I_N) (N = ``width``), ``depth`` = L hidden
layers of width N with activation φ, a readout to ``classes`` logits (layer L + 1, scored too), weights
W^l_ij ~ N(0, σ_w²/fan_in), biases N(0, σ_b²), loss = mean cross-entropy over a batch of B inputs
with labels drawn uniformly over the classes. Score g^l_ij = |W^l_ij ∂ℒ/∂W^l_ij|.

What is exact and what is approximated is listed in the docs (§9). In short: the per-layer moments
of :func:`layer_gradient_scales` are the wide-limit values under the gradient-independence
assumption (Schoenholz et al. 2017). :func:`predict_critical_sparsity` and
:func:`predict_kept_per_layer` keep the B × C readout error matrix of the batch random and, by
default (``finite_width=True``), the backward signal's class-space covariance too: each draw
samples it layer by layer from N rows, a product of Wishart matrices whose rank collapses with the
distance from the readout (docs §5a). Given them, each layer's scores are treated as independent
draws from their conditional law, and the layers as independent. ``finite_width=False`` gives the
wide limit at fixed B and C. The comparison with Monte Carlo is in docs §8.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import erf, erfc, k0, k0e, k1, modstruve

from . import _expect
from ._validate import check_array, check_int
from .activations import get_activation
from .maps import propagate

__all__ = [
    "layer_gradient_scales",
    "predict_critical_sparsity",
    "critical_sparsity_distribution",
    "predict_kept_per_layer",
    "ordered_phase_bound",
    "fit_bound_constant",
]

_H = 0.02                    # spacing of the log-score grid (natural-log units)
_LOG_U_MIN = -25.0           # P(|Z₁Z₂| ≤ e^-25) ≈ 1e-10: treated as 0 below
_LOG_U_MAX = 4.25            # P(|Z₁Z₂| > e^4.25 ≈ 70) ≈ 1e-31: treated as 0 above
_N_QMC = 2048                # quasi-random points (U, V, ξ) per layer law
_N_INNER = 64                # Gauss–Hermite nodes for the per-example Gaussian ε
_DRAWS = 32                  # readout error matrices Δ averaged over (wide limit)
_DRAWS_FINITE = 128          # draws of Δ and of the finite-width backward chain
_N_QMC_FINITE = 512          # quasi-random atoms per layer law in the finite-width model
_SEED = 20210503
_READOUT_SAMPLES = 2 ** 20   # logit draws × classes for the softmax moments (fixed seed)


# ---------------------------------------------------------------------------------------------
# validation


def _check_scalar(name, value):
    arr = check_array(name, value)
    if arr.ndim != 0:
        raise ValueError(f"`{name}` == {value!r}: must be a scalar, got shape {arr.shape}")
    return float(arr)


def _check_depths(depth):
    """``depth`` as a 1-d int array (and whether the input was a scalar)."""
    if np.ndim(depth) == 0:
        return np.array([check_int("depth", depth, low=1)]), True
    arr = np.asarray(depth)
    if arr.size == 0:
        raise ValueError("`depth` == []: must hold at least one integer >= 1")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"`depth` == {depth!r}: must be an integer >= 1 or an array of them")
    if arr.min() < 1:
        raise ValueError(f"`depth` == {int(arr.min())!r} (in {depth!r}): must be an integer >= 1")
    return arr.astype(np.int64), False


def _check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` == {value!r}: must be True or False")
    return bool(value)


def _check_common(activation, width, sigma_w, sigma_b, batch, classes):
    act = get_activation(activation)
    width = check_int("width", width, low=1)
    sw = _check_scalar("sigma_w", sigma_w)
    sb = _check_scalar("sigma_b", sigma_b)
    batch = check_int("batch", batch, low=1)
    classes = check_int("classes", classes, low=2)
    return act, width, sw, sb, batch, classes


# ---------------------------------------------------------------------------------------------
# |Z₁ Z₂|: the product of two independent standard normals (density K₀(|x|)/π)


def _product_cdf(u):
    """Ψ(u) = P(|Z₁Z₂| ≤ u) = u [K₀(u) L₋₁(u) + K₁(u) L₀(u)] (L: modified Struve, L₋₁ = L₁ + 2/π).
    Accurate (no cancellation) for u ≲ 2; use :func:`_product_tail` above."""
    u = np.asarray(u, dtype=np.float64)
    return u * (k0(u) * (modstruve(1, u) + 2.0 / np.pi) + k1(u) * modstruve(0, u))


@functools.lru_cache(maxsize=1)
def _laguerre():
    return np.polynomial.laguerre.laggauss(60)


def _product_tail(u):
    """1 − Ψ(u) = (2/π) ∫_u^∞ K₀ = (2/π) e^{-u} ∫_0^∞ k0e(u + s) e^{-s} ds (Gauss–Laguerre), for
    u ≳ 1: relative error < 1e-13 for u ∈ [1, 10], < 1e-7 up to u = 70."""
    x, w = _laguerre()
    u = np.asarray(u, dtype=np.float64)
    return (2.0 / np.pi) * np.exp(-u) * (k0e(u[..., None] + x) @ w)


@functools.lru_cache(maxsize=1)
def _product_table():
    """(j_min, Ψ(e^{jh}), 1 − Ψ(e^{jh})) for j = j_min … j_max on the log grid of spacing h."""
    j_min, j_max = int(math.floor(_LOG_U_MIN / _H)), int(math.ceil(_LOG_U_MAX / _H))
    u = np.exp(np.arange(j_min, j_max + 1) * _H)
    small = u <= 1.5
    cdf = np.empty_like(u)
    tail = np.empty_like(u)
    cdf[small] = _product_cdf(u[small])
    tail[small] = 1.0 - cdf[small]
    tail[~small] = _product_tail(u[~small])
    cdf[~small] = 1.0 - tail[~small]
    return j_min, cdf, tail


# ---------------------------------------------------------------------------------------------
# forward and backward moments (eqs. (4)–(11) of docs/critical_sparsity.md)


@functools.lru_cache(maxsize=4)
def _hermite(n):
    z, w = np.polynomial.hermite_e.hermegauss(n)
    return z, w / w.sum()


def _forward(act, sw, sb, depth):
    """q^l, c^l of the pre-activations y^l for l = 1 … depth + 1 (the last is the logits) for two
    independent inputs x, x' ~ N(0, I_N): q¹ = σ_b² + σ_w², c¹ = σ_b²/q¹ (x·x'/N → 0)."""
    q1 = sb * sb + sw * sw
    q, c = propagate(act, q1, sb * sb / q1, sw, sb, depth)
    if not (np.all(np.isfinite(q)) and np.all(q > 0)):
        raise ValueError(f"the forward variance q^l is not finite and > 0 for sigma_w={sw!r}, "
                         f"sigma_b={sb!r} at depth {depth}: no prediction")
    return q, np.clip(c, 0.0, 1.0)


@functools.lru_cache(maxsize=64)
def _readout_moments(q, c, classes):
    """(D, O): D = E[(p_k − y_k)²], O = E[(p_k(b) − y_k(b))(p_k(b') − y_k(b'))] = Cov(p_k(b), p_k(b'))
    for logits i.i.d. over the classes with variance q and correlation c between the two inputs,
    one-hot labels y uniform over the classes and independent of everything. Monte Carlo over the
    logits with a fixed seed (relative error ~1e-3), averaged over the classes by symmetry."""
    rng = np.random.default_rng(_SEED)
    n = max(_READOUT_SAMPLES // classes, 4096)
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


def _layers(act, width, depth, sw, sb, batch, classes, fwd=None):
    """Per-layer moments as a dict of arrays indexed by layer − 1 (layers 1 … L + 1)."""
    L = depth
    q, c = fwd if fwd is not None else _forward(act, sw, sb, L)
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
        raise ValueError(f"E[φ'(y^l)²] = 0 at layer {int(np.argmin(d11)) + 1} (q^l = "
                         f"{float(qh[np.argmin(d11)])!r}): the gradients vanish exactly, no prediction")
    D, O = _readout_moments(float(q[L]), float(c[L]), classes)
    # backward (eq. (9)): given the readout Gram R = ΔΔᵀ/C the covariance over neurons of the
    # pre-φ' signal h^l_i(·) of hidden layer l is H^l = t_l [(1 − f_l) Diag(R) + f_l R], with
    # t_L = σ_w² C/N, f_L = 1, t_{l-1} = t_l σ_w² E[φ'(y^l)²], f_{l-1} = f_l k_o/k_d. Its mean over
    # Δ uses E[R_bb] = D, E[R_bb'] = O.
    log_t = np.empty(L)
    frac = np.empty(L)
    log_t[L - 1] = math.log(sw * sw * classes / width)
    frac[L - 1] = 1.0
    for i in range(L - 1, 0, -1):           # from layer l = i + 1 to layer l - 1 = i
        log_t[i - 1] = log_t[i] + math.log(sw * sw * d11[i])
        frac[i - 1] = frac[i] * p11[i] / d11[i] if d11[i] > 0 else 0.0
    log_h = np.concatenate([log_t + math.log(D), [math.log(D)]])
    rho_h = np.concatenate([frac * O / D, [O / D]])      # E[h(b) h(b')] / E[h(b)²]
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
                weight_var=weight_var, log_gv=log_gv, readout=(D, O), log_t=log_t,
                frac=frac)


def layer_gradient_scales(activation, width, depth, sigma_w, sigma_b, *, batch=128, classes=10):
    """Wide-limit scale of the SNIP scores layer by layer.

    For each layer l = 1 … L + 1 (L hidden layers, then the readout) the forward and backward
    second moments of mean-field theory and the variance of the batch-averaged gradient
    ∂ℒ/∂W^l_ij = (1/B) Σ_b δ^l_i(b) a^{l-1}_j(b) (a⁰ = x, a^l = φ(y^l)), eqs. (4)–(11) of
    ``docs/critical_sparsity.md``. Gradient independence (Schoenholz et al. 2017) is assumed:
    the backward errors δ are independent of the forward activations a.

    Parameters
    ----------
    activation : str or Activation
    width : int >= 1
        N: input dimension and width of every hidden layer.
    depth : int >= 1
        L: number of hidden layers (the readout is layer L + 1).
    sigma_w : float > 0
    sigma_b : float >= 0
    batch : int >= 1, default 128
        B: inputs in the mini-batch the loss is averaged over.
    classes : int >= 2, default 10
        Number of logits; labels are uniform over the classes.

    Returns
    -------
    pandas.DataFrame
        One row per layer, columns:

        ``layer`` (1 … L + 1), ``fan_in``, ``fan_out``, ``n_weights`` (= fan_in · fan_out);
        ``q`` — forward variance q^l of the pre-activations y^l (layer L + 1: the logits);
        ``c`` — forward correlation c^l of y^l between two inputs of the batch;
        ``act_sq`` — E[a²] of the layer's input a (1 for x, E[φ(√q^{l-1} Z)²] otherwise);
        ``act_cov`` — E[a(b) a(b')] between two inputs (0 for x);
        ``chi`` — σ_w² E[φ'(√q^l Z)²], the per-layer backward gain (nan for the readout);
        ``q_grad`` — backward variance q̃^l = E[δ^l_i(b)²];
        ``q_grad_offdiag`` — E[δ^l_i(b) δ^l_i(b')] for two inputs b ≠ b';
        ``grad_var`` — Var(∂ℒ/∂W^l_ij), batch-averaged, eq. (10);
        ``grad_var_single`` — the same for B = 1 (q̃^l · act_sq);
        ``weight_var`` — σ_w²/fan_in;
        ``score_scale`` — √(weight_var · grad_var) = √E[(g^l_ij)²];
        ``log_score_scale`` — its natural log (finite when score_scale over/underflows).

        Units: ``q``, ``act_sq`` … are in the squared units of the pre-activations; the backward
        quantities are per example (the 1/B of the mean loss is in ``grad_var`` only).

    References
    ----------
    Schoenholz et al. (2017), §4 (backpropagation of the error signal, q̃^l = q̃^{l+1} χ₁);
    THEORY.md §2 and §5; ``docs/critical_sparsity.md`` eqs. (4)–(11).

    Examples
    --------
    >>> from meanfield.prediction import layer_gradient_scales
    >>> df = layer_gradient_scales("tanh", 100, 3, 0.8, 0.3)
    >>> df["layer"].tolist(), df["fan_out"].tolist()
    ([1, 2, 3, 4], [100, 100, 100, 10])
    """
    import pandas as pd

    act, width, sw, sb, batch, classes = _check_common(activation, width, sigma_w, sigma_b, batch,
                                                       classes)
    depth = check_int("depth", depth, low=1)
    m = _layers(act, width, depth, sw, sb, batch, classes)
    L = depth
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        q_grad = np.exp(m["log_qg"])
        q_grad_o = np.exp(m["log_qg"] + np.log(m["rho"]))
        gv = np.exp(m["log_gv"])
        gv_single = np.exp(m["log_qg"] + np.log(m["act_sq"]))
        log_score = 0.5 * (np.log(m["weight_var"]) + m["log_gv"])
        score = np.exp(log_score)
    return pd.DataFrame({
        "layer": np.arange(1, L + 2),
        "fan_in": m["fan_in"],
        "fan_out": m["fan_out"],
        "n_weights": m["fan_in"] * m["fan_out"],
        "q": m["q"],
        "c": m["c"],
        "act_sq": m["act_sq"],
        "act_cov": m["act_cov"],
        "chi": m["chi"],
        "q_grad": q_grad,
        "q_grad_offdiag": q_grad_o,
        "grad_var": gv,
        "grad_var_single": gv_single,
        "weight_var": m["weight_var"],
        "score_scale": score,
        "log_score_scale": log_score,
    })


# ---------------------------------------------------------------------------------------------
# score distribution per layer, given the readout error matrix of one batch (eqs. (12)–(16))


@functools.lru_cache(maxsize=2)
def _kernel_table(kind):
    """(j_min, P(X ≤ e^{jh}), P(X > e^{jh})) for j = j_min … j_max, X = |Z₁Z₂| ("product") or |Z|
    ("normal")."""
    if kind == "product":
        return _product_table()
    j_min, j_max = int(math.floor(_LOG_U_MIN / _H)), int(math.ceil(_LOG_U_MAX / _H))
    u = np.exp(np.arange(j_min, j_max + 1) * _H) / math.sqrt(2.0)
    return j_min, erf(u), erfc(u)


class _Laws:
    """CDFs F and tails T = 1 − F of the scores of R layers on the integer log grid i (t = e^{ih}),
    one row per layer: the score is e^{x} · X with x one of the n equally likely atoms of the
    row (``log_scale``, shape (R, n)) and X = |Z₁Z₂| or |Z| independent of x (``kind``); atoms
    with x = −inf (or 80 below the row's largest) are exact zeros. Row r's arrays start at grid
    index ``start[r]``; every row is convolved with the kernel in one batched FFT."""

    def __init__(self, log_scale, kind):
        from scipy.signal import fftconvolve

        j_min, cdf_tab, tail_tab = _kernel_table(kind)
        ls = np.atleast_2d(np.asarray(log_scale, dtype=np.float64))
        R, n = ls.shape
        finite = np.isfinite(ls)
        if not finite.any(axis=1).all():
            raise ValueError("a layer's scores are all exactly zero: no prediction")
        top = np.where(finite, ls, -np.inf).max(axis=1)
        keep = finite & (ls > top[:, None] - 80.0)
        self.zero = 1.0 - keep.sum(axis=1) / n
        x = np.where(keep, ls, 0.0) / _H
        k = np.floor(x).astype(np.int64)
        frac = x - k
        big = np.iinfo(np.int64).max // 4
        k0 = np.where(keep, k, big).min(axis=1)
        size = int((np.where(keep, k, -big).max(axis=1) - k0).max()) + 2
        rel = (k - k0[:, None]) + size * np.arange(R)[:, None]
        w = keep / n
        # linear split of each atom between its two grid neighbours (keeps mass and mean)
        W = (np.bincount(rel[keep], (w * (1.0 - frac))[keep], minlength=R * size)
             + np.bincount(rel[keep] + 1, (w * frac)[keep], minlength=R * size)).reshape(R, size)
        self.start = k0 + j_min
        m = size + cdf_tab.size - 1
        cum = np.cumsum(W, axis=1)
        idx = np.arange(m)
        above = idx - cdf_tab.size
        # F: the kernel CDF is 1 beyond the table: add the atoms whose offset exceeds j_max
        self.F = (fftconvolve(W, cdf_tab[None, :], axes=1) + self.zero[:, None]
                  + np.where(above >= 0, cum[:, np.clip(above, 0, size - 1)], 0.0))
        # T: the kernel tail is 1 below the table: add the atoms whose offset is below j_min
        self.T = (fftconvolve(W, tail_tab[None, :], axes=1)
                  + np.where(idx < size - 1, cum[:, -1:] - cum[:, np.clip(idx, 0, size - 1)], 0.0))
        np.clip(self.F, 0.0, 1.0, out=self.F)
        np.clip(self.T, 0.0, 1.0, out=self.T)
        self.T[self.T < 1e-300] = 0.0
        self.stop = self.start + m                       # F = 1, T = 0 from here on

    def at(self, i):
        """(F, T) at the integer grid indices i (1-d), each (R, len(i))."""
        j = np.asarray(i)[None, :] - self.start[:, None]
        inside = (j >= 0) & (j < self.F.shape[1])
        jc = np.clip(j, 0, self.F.shape[1] - 1)
        F = np.where(inside, np.take_along_axis(self.F, jc, 1),
                     np.where(j < 0, self.zero[:, None], 1.0))
        T = np.where(inside, np.take_along_axis(self.T, jc, 1),
                     np.where(j < 0, 1.0 - self.zero[:, None], 0.0))
        return F, T


def _readout_draws(q, c, batch, classes, draws):
    """``draws`` realisations of the readout error matrix Δ = softmax(z) − onehot(y) of one batch
    (B × C), with logits z_k(·) ~ N(0, q[(1 − c) I + c 11ᵀ]) i.i.d. over the classes and labels
    uniform, each summarised by what the score laws need: the class-space Gram ΔᵀΔ (C × C), its
    eigenvalues ``lam`` and vectors ``vec``, ``col_sum`` = Δᵀ1, ``col_norm`` (the column norms)
    and ``sq_norm`` = ‖Δ‖². Fixed seed: deterministic."""
    rng = np.random.default_rng(_SEED)
    out = []
    for _ in range(draws):
        z = math.sqrt(q * c) * rng.standard_normal((1, classes)) \
            + math.sqrt(q * (1.0 - c)) * rng.standard_normal((batch, classes))
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        delta = p
        delta[np.arange(batch), rng.integers(0, classes, batch)] -= 1.0
        gram = delta.T @ delta
        lam, vec = np.linalg.eigh(gram)
        lam = np.maximum(lam, 0.0)
        out.append(dict(gram=gram, lam=lam, vec=vec, root=(vec * np.sqrt(lam)).T,
                        col_sum=delta.sum(axis=0), col_norm=np.sqrt(np.diag(gram)),
                        sq_norm=float(np.trace(gram))))
    return out


@functools.lru_cache(maxsize=8)
def _qmc_points(classes, n):
    """n scrambled-Sobol points mapped to independent standard normals (U, V, ξ₁ … ξ_C): the
    shared components U (row) and V (column) and the batch-sum fluctuation ξ ∈ R^C. Fixed seed."""
    from scipy.special import ndtri
    from scipy.stats import qmc
    u = qmc.Sobol(d=2 + classes, scramble=True, seed=_SEED).random(n)
    z = ndtri(np.clip(u, 1e-300, 1.0 - 1e-16))
    return z[:, 0].copy(), z[:, 1].copy(), np.ascontiguousarray(z[:, 2:])


def _cond_moments(act, q, c, deriv, z_outer):
    """E_ε[f(y)] and E_ε[f(y)²] given the shared Gaussian U = z_outer, where
    y = √q (√c U + √(1−c) ε) and f = φ^(deriv); rows: layers, columns: U points."""
    z_in, w_in = _hermite(_N_INNER)
    out1 = np.empty((np.size(q), z_outer.size))
    out2 = np.empty_like(out1)
    for r, (qr, cr) in enumerate(zip(np.atleast_1d(q), np.atleast_1d(c))):
        y = math.sqrt(qr) * (math.sqrt(cr) * z_outer[:, None] + math.sqrt(1.0 - cr) * z_in[None, :])
        f = act(y, deriv)
        out1[r] = f @ w_in
        out2[r] = (f * f) @ w_in
    return out1, out2


def _forward_conditionals(act, m, classes, n_points=_N_QMC):
    """Conditional moments given the shared Gaussians, at the quasi-random points: M1, M2 of
    φ'(y^l) given U (rows: hidden layers l = 1 … L) and P1, P2 of φ(y^l) given V."""
    zu, zv, _ = _qmc_points(classes, n_points)
    M1, M2 = _cond_moments(act, m["qh"], m["ch"], 1, zu)
    P1, P2 = _cond_moments(act, m["qh"], m["ch"], 0, zv)
    return M1, M2, P1, P2


class _Backward:
    """The backward signal of the hidden layers for one readout draw, in the form the score laws
    use. Layer l (index l − 1) has per-example signals h^l_i(b) = Δ_b · v_i + e_i(b) over the
    batch: a class-space part with covariance K^l = e^{κ_l} K̃^l of the rows v_i ∈ R^C, and an
    independent per-example part of total variance Σ_b E[e_i(b)²] = e^{κ_l} ``noise``.

    For x ∈ R^B with x = μ1 + sd ξ_B (ξ_B standard normal) the variance of Σ_b x_b h_i(b) is
    e^κ [m2 · noise + μ² A + 2 μ sd b·ξ + sd² ξᵀJξ] with ξ ∈ R^C standard normal, because
    Δᵀξ_B has the law of EΛ^{1/2}ξ (ΔᵀΔ = E diag(Λ) Eᵀ): A = cᵀK̃c with c = Δᵀ1,
    b = Λ^{1/2}EᵀK̃c and J = Λ^{1/2}EᵀK̃EΛ^{1/2}.
    Arrays: ``log_scale`` (L,), ``A`` (L,), ``b`` (L, C), ``J`` (L, C, C), ``noise`` (L,)."""

    def __init__(self, L, classes):
        self.log_scale = np.empty(L)
        self.A = np.empty(L)
        self.b = np.empty((L, classes))
        self.J = np.empty((L, classes, classes))
        self.noise = np.empty(L)

    def set(self, i, log_scale, K, noise, draw):
        """Layer index i from the class-space covariance K (C × C, scale e^log_scale)."""
        c = draw["col_sum"]
        M = draw["root"]                                     # Λ^{1/2} Eᵀ
        Kc = K @ c
        self.log_scale[i] = log_scale
        self.A[i] = c @ Kc
        self.b[i] = M @ Kc
        self.J[i] = M @ K @ M.T
        self.noise[i] = noise


def _backward_wide(m, draw, classes):
    """The wide-limit backward signal (eq. (9) of the docs): K^l = (t_l f_l / C) I and
    noise = t_l (1 − f_l) ‖Δ‖² / C."""
    L = m["qh"].size
    out = _Backward(L, classes)
    eye = np.eye(classes)
    for i in range(L):
        f = m["frac"][i]
        out.set(i, m["log_t"][i] - math.log(classes), f * eye, (1.0 - f) * draw["sq_norm"], draw)
    return out


def _root(K):
    """R with RᵀR = K for a symmetric positive semi-definite K (rows z R have covariance K)."""
    try:
        return np.linalg.cholesky(K).T
    except np.linalg.LinAlgError:
        w, Q = np.linalg.eigh(K)
        return np.sqrt(np.maximum(w, 0.0))[:, None] * Q.T


def _backward_finite(m, cond, draw, width, classes, sw, rng):
    """The backward signal of a network of finite width N for one readout draw.

    The readout gives the last hidden layer N rows v_i = (W^{L+1})_{·i} ~ N(0, (σ_w²/N) I_C).
    Each layer's N rows are drawn from the law its upper layer leaves, and that law is the
    finite sum over the upper layer's N neurons: with m_i = E[φ'(y_i(b)) | U_i] and
    s_i² = Var(φ'(y_i(b)) | U_i) for the neuron's shared forward Gaussian U_i,

        K^{l−1} = (σ_w²/N) Σ_i m_i² v_i v_iᵀ,
        noise^{l−1} = (σ_w²/N) Σ_i [s_i² ‖Δ v_i‖² + E[φ'(y_i)² | U_i] noise^l],

    whose means are the wide-limit recursion (t σ_w² E[φ'φ'] f and the (1 − f) part). Each layer's
    score law uses the realised covariance (1/N) Σ_i v_i v_iᵀ of its own rows, a product of
    Wishart matrices whose effective rank falls with the distance from the readout."""
    L = m["qh"].size
    M1, M2, _, _ = cond
    n_qmc = M1.shape[1]
    out = _Backward(L, classes)
    gram = draw["gram"]
    log_scale = math.log(sw * sw / width)
    K = np.eye(classes)
    noise = 0.0
    sq = max(draw["sq_norm"], 1e-300)
    for i in range(L - 1, -1, -1):
        V = rng.standard_normal((width, classes)) @ _root(K)
        out.set(i, log_scale, V.T @ V / width, noise, draw)
        if i == 0:
            break
        idx = rng.integers(0, n_qmc, width)
        m1, m2 = M1[i, idx], M2[i, idx]
        K = (sw * sw / width) * ((V * (m1 * m1)[:, None]).T @ V)
        quad = np.einsum("ic,cd,id->i", V, gram, V)
        noise = (sw * sw / width) * (np.maximum(m2 - m1 * m1, 0.0) @ quad + m2.sum() * noise)
        scale = np.trace(K) / classes + noise / sq
        if not scale > 0.0:
            raise ValueError("the backward signal vanishes exactly at hidden layer "
                             f"{i}: no prediction")
        log_scale += math.log(scale)
        K /= scale
        noise /= scale
    return out


def _laws(m, cond, draw, back, batch, classes):
    """Score laws for one readout draw, eqs. (12)–(16): ``[hidden, readout]``, two :class:`_Laws`
    (rows: hidden layers 1 … L, then the readout), with the hidden layers' backward signal
    ``back`` (a :class:`_Backward`). Each quasi-random point (U, V, ξ) is one equally weighted
    atom of the conditional scale S."""
    L = m["qh"].size
    M1, M2, P1, P2 = cond
    _, _, xi = _qmc_points(classes, M1.shape[1])
    n = xi.shape[0]
    # E[φ'(y_i(b)) a_j(b) | U_i, V_j] and E[φ'(y_i(b))² a_j(b)² | U_i, V_j]; layer 1 sees x
    mu = np.vstack([np.zeros((1, n)), M1[1:] * P1[:-1]])
    m2 = np.vstack([M2[:1], M2[1:] * P2[:-1]])
    sd = np.sqrt(np.maximum(m2 - mu * mu, 0.0))
    Bx = back.b @ xi.T                                                  # (L, n)
    Cx = ((xi @ back.J.transpose(1, 0, 2).reshape(classes, -1)).reshape(n, L, classes)
          * xi[:, None, :]).sum(axis=2).T
    s2 = (m2 * back.noise[:, None] + mu * mu * back.A[:, None] + 2.0 * mu * sd * Bx
          + sd * sd * Cx) / batch ** 2
    with np.errstate(divide="ignore"):
        log_s = 0.5 * (back.log_scale[:, None] + np.log(np.maximum(s2, 0.0))
                       + np.log(m["weight_var"][:L])[:, None])
    # readout: row k of W^{L+1} sees G_kj = (P1(V_j) s_k + √(P2 − P1²) ‖Δ_k‖ ζ) / B, ζ ~ N(0, 1)
    p1, p2 = P1[L - 1], P2[L - 1]
    sdr = np.sqrt(np.maximum(p2 - p1 * p1, 0.0))
    g = (p1[None, :] * draw["col_sum"][:, None]
         + (sdr * xi[:, 0])[None, :] * draw["col_norm"][:, None]) / batch
    with np.errstate(divide="ignore"):
        log_r = np.log(np.abs(g)) + 0.5 * math.log(m["weight_var"][L])
    return [_Laws(log_s, "product"), _Laws(log_r.reshape(1, -1), "normal")]


def _at(laws, idx):
    """(F, T) of every layer at the grid indices idx, each (L + 1, len(idx))."""
    parts = [law.at(idx) for law in laws]
    return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])


def _grid_span(laws):
    return min(int(law.start.min()) for law in laws), max(int(law.stop.max()) for law in laws)


def _distribution(laws, n):
    """Law of m = min_l max_ij g^l_ij (layers independent, P(max_l ≤ t) = F_l(t)^{n_l}) and the
    resulting moments of s_cr = s(m), s(t) = Σ_l n_l F_l(t) / Σ_l n_l."""
    n = np.asarray(n, dtype=np.float64)
    # window where P(m ≤ t) rises from ~0 to ~1: from the first layer whose max can fall below t
    # to the first layer whose max is surely below t
    lo, hi = [], []
    row = 0
    for law in laws:
        nl = n[row:row + law.T.shape[0], None]
        row += law.T.shape[0]
        with np.errstate(divide="ignore"):
            a = np.exp(nl * np.log1p(-law.T))
        for r in range(a.shape[0]):
            low, high = a[r] > 1e-15, a[r] > 1.0 - 1e-15
            lo.append(law.start[r] + int(np.argmax(low)) if low.any() else law.stop[r])
            hi.append(law.start[r] + int(np.argmax(high)) if high.any() else law.stop[r])
    idx = np.arange(min(lo) - 1, min(hi) + 2)
    F, T = _at(laws, idx)
    with np.errstate(divide="ignore"):
        A = np.exp(n[:, None] * np.log1p(-T))              # P(max of layer l ≤ t)
    with np.errstate(divide="ignore"):
        log_not = np.log1p(-np.minimum(A, 1.0))            # log P(max of layer l > t)
    log_surv = log_not.sum(axis=0)
    cdf_m = -np.expm1(log_surv)                            # P(m ≤ t)
    s = (n[:, None] * F).sum(axis=0) / n.sum()
    dP = np.diff(cdf_m)
    s_mid = 0.5 * (s[1:] + s[:-1])
    mass = dP.sum()
    mean = float((dP * s_mid).sum() / mass)
    second = float((dP * s_mid ** 2).sum() / mass)
    # which layer is the minimum: ∫ dA_l Π_{k≠l} (1 − A_k)
    with np.errstate(invalid="ignore"):
        other = np.exp(log_surv[None, :] - log_not)
    other = np.where(np.isfinite(other), other, 0.0)
    p_first = (np.diff(A, axis=1) * 0.5 * (other[:, 1:] + other[:, :-1])).sum(axis=1)
    return dict(log_t=idx * _H, cdf_m=cdf_m, s=s, mean=mean, second=second,
                p_first=p_first / max(p_first.sum(), 1e-300))


def _draws(m, cond, width, sw, batch, classes, finite):
    """(readout draw, backward signal) for each fixed-seed draw: ``_DRAWS_FINITE`` draws of Δ
    and of the width-N backward chain, or ``_DRAWS`` of Δ with the wide-limit signal. The chain
    adds the net-to-net spread of the layer scales (its per-draw s_cr spreads like the Monte
    Carlo's), hence the larger count."""
    depth = m["qh"].size
    rng = np.random.default_rng([_SEED, 1])
    draws = _DRAWS_FINITE if finite else _DRAWS
    for draw in _readout_draws(float(m["q"][depth]), float(m["c"][depth]), batch, classes, draws):
        back = (_backward_finite(m, cond, draw, width, classes, sw, rng) if finite
                else _backward_wide(m, draw, classes))
        yield draw, back


def _one_blas_thread():
    """The products here are C × C or a few hundred wide: BLAS threads cost more than they give,
    and far more when the cores are busy."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=1, user_api="blas")


def _predict(act, width, depth, sw, sb, batch, classes, fwd=None, finite=True):
    """Average over the readout draws of the per-draw law of s_cr: (mean, std, p_first, m)."""
    with _one_blas_thread():
        return _predict_draws(act, width, depth, sw, sb, batch, classes, fwd, finite)


def _predict_draws(act, width, depth, sw, sb, batch, classes, fwd, finite):
    m = _layers(act, width, depth, sw, sb, batch, classes, fwd)
    cond = _forward_conditionals(act, m, classes, _N_QMC_FINITE if finite else _N_QMC)
    n = m["fan_in"] * m["fan_out"]
    means, seconds, p_first = [], [], 0.0
    for draw, back in _draws(m, cond, width, sw, batch, classes, finite):
        d = _distribution(_laws(m, cond, draw, back, batch, classes), n)
        means.append(d["mean"])
        seconds.append(d["second"])
        p_first = p_first + d["p_first"]
    p_first = p_first / len(means)
    mean = float(np.mean(means))
    std = math.sqrt(max(float(np.mean(seconds)) - mean ** 2, 0.0))
    return mean, std, p_first, m


def critical_sparsity_distribution(activation, width, depth, sigma_w, sigma_b, *, batch=128,
                                   classes=10, finite_width=True):
    """Mean-field summary of the law of the critical sparsity at one depth.

    Parameters
    ----------
    activation, width, depth, sigma_w, sigma_b, batch, classes, finite_width
        As in :func:`predict_critical_sparsity`; ``depth`` a single int.

    Returns
    -------
    dict
        ``mean`` and ``std`` of s_cr (floats, as :func:`predict_critical_sparsity` with
        ``return_std=True``); ``p_first`` (ndarray, length L + 1): probability that layer l
        (index l − 1) is the one fully pruned first, i.e. has the smallest maximum score.

    Examples
    --------
    >>> from meanfield.prediction import critical_sparsity_distribution
    >>> d = critical_sparsity_distribution("tanh", 100, 20, 3.0, 0.3)
    >>> int(d["p_first"].argmax()) + 1   # chaotic: the last hidden layer empties first
    20
    """
    act, width, sw, sb, batch, classes = _check_common(activation, width, sigma_w, sigma_b, batch,
                                                       classes)
    depth = check_int("depth", depth, low=1)
    finite_width = _check_flag("finite_width", finite_width)
    mean, std, p_first, _ = _predict(act, width, depth, sw, sb, batch, classes,
                                     finite=finite_width)
    return dict(mean=mean, std=std, p_first=p_first)


def predict_critical_sparsity(activation, width, depth, sigma_w, sigma_b, *, batch=128, classes=10,
                              return_std=False, finite_width=True):
    """Mean-field prediction of E[s_cr], the expected critical sparsity of SNIP.

    Model (``docs/critical_sparsity.md`` §5–§6, eqs. (12)–(20)): in the wide limit at fixed batch size B and
    number of classes C, everything but the B × C readout error matrix Δ of the batch is
    deterministic. Given Δ, the n_l = fan_in · fan_out scores of layer l are treated as
    independent draws of g = √(σ_w²/fan_in) · |Z_W| · |G| with the weight Z_W ~ N(0, 1) and the
    gradient G drawn from its wide-limit conditional law, and the layers as independent. Then
    P(max_ij g^l_ij ≤ t) = F_l(t)^{n_l}, m = min_l max_ij g^l_ij has
    P(m > t) = Π_l (1 − F_l(t)^{n_l}), and E[s_cr | Δ] = ∫ s(t) dP(m ≤ t) with
    s(t) = Σ_l n_l F_l(t) / Σ_l n_l. The result is averaged over fixed-seed draws of Δ and, with
    ``finite_width``, of the backward chain of a width-N network, so the function is
    deterministic.

    Parameters
    ----------
    activation : str or Activation
    width : int >= 1
        N (input dimension and hidden width).
    depth : int >= 1 or array_like of them
        L, the number of hidden layers; an array gives one prediction per depth.
    sigma_w : float > 0
    sigma_b : float >= 0
    batch : int >= 1, default 128
    classes : int >= 2, default 10
    return_std : bool, default False
        Also return the predicted standard deviation of s_cr over networks and batches.
    finite_width : bool, default True
        Sample the backward signal's class-space covariance of a width-N network (a product of
        Wishart matrices, docs §5a; 128 fixed-seed draws) instead of its wide limit (32 draws of
        the readout error only). The finite-width value matches the Monte Carlo better off the
        EOC (docs §8); both are deterministic.

    Returns
    -------
    float or ndarray
        E[s_cr] ∈ [0, 1] (a fraction of all weights, readout included); an array of the shape of
        ``depth`` if ``depth`` is an array. With ``return_std``, a pair (mean, std).

    References
    ----------
    Hayou, Ton, Doucet, Teh (2021), Robust Pruning at Initialization (critical sparsity);
    THEORY.md §5; ``docs/critical_sparsity.md``.

    Examples
    --------
    >>> from meanfield.prediction import predict_critical_sparsity
    >>> s = predict_critical_sparsity("tanh", 100, [10, 40], 0.8, 0.3)
    >>> bool(s[0] > s[1])      # ordered phase: s_cr falls with depth
    True
    """
    act, width, sw, sb, batch, classes = _check_common(activation, width, sigma_w, sigma_b, batch,
                                                       classes)
    depths, scalar = _check_depths(depth)
    finite_width = _check_flag("finite_width", finite_width)
    fwd = _forward(act, sw, sb, int(depths.max()))
    means, stds = np.empty(depths.size), np.empty(depths.size)
    for r, L in enumerate(depths.ravel()):
        means[r], stds[r], _, _ = _predict(act, width, int(L), sw, sb, batch, classes, fwd,
                                           finite_width)
    if scalar:
        out = (float(means[0]), float(stds[0]))
    else:
        out = (means.reshape(np.shape(depth)), stds.reshape(np.shape(depth)))
    return out if return_std else out[0]


def predict_kept_per_layer(activation, width, depth, sigma_w, sigma_b, sparsity, *, batch=128,
                           classes=10, finite_width=True):
    """Mean-field fraction of weights SNIP keeps in each layer at a global sparsity s.

    The global threshold t solves Σ_l n_l (1 − F_l(t)) = (1 − s) Σ_l n_l (eq. (21) of the docs;
    in the wide limit the fraction of scores above t concentrates on its mean) and layer l keeps
    1 − F_l(t), with F_l the score law of :func:`predict_critical_sparsity`.

    Parameters
    ----------
    activation, width, depth, sigma_w, sigma_b, batch, classes, finite_width
        As in :func:`predict_critical_sparsity`; ``depth`` a single int.
    sparsity : float in [0, 1)
        s, the fraction of all weights (readout included) removed.

    Returns
    -------
    pandas.DataFrame
        Columns ``layer`` (1 … L + 1), ``n_weights``, ``kept_fraction`` (in [0, 1]); the
        weighted mean Σ n_l kept_l / Σ n_l equals 1 − s up to ~1e-12. Like E[s_cr], the kept
        fractions are averaged over the fixed-seed draws;
        ``df.attrs["threshold"]`` holds the geometric mean of the thresholds t (score units).

    Examples
    --------
    >>> from meanfield.prediction import predict_kept_per_layer
    >>> df = predict_kept_per_layer("tanh", 100, 10, 1.3955839751549, 0.3, 0.7)
    >>> round(float((df.kept_fraction * df.n_weights).sum() / df.n_weights.sum()), 6)
    0.3
    """
    act, width, sw, sb, batch, classes = _check_common(activation, width, sigma_w, sigma_b, batch,
                                                       classes)
    depth = check_int("depth", depth, low=1)
    finite_width = _check_flag("finite_width", finite_width)
    import pandas as pd

    try:
        s = float(sparsity)
    except (TypeError, ValueError):
        raise TypeError(f"`sparsity` == {sparsity!r}: must be a real number in [0, 1)") from None
    if not (0.0 <= s < 1.0):
        raise ValueError(f"`sparsity` == {sparsity!r}: must be in [0, 1)")
    m = _layers(act, width, depth, sw, sb, batch, classes)
    n = (m["fan_in"] * m["fan_out"]).astype(np.float64)
    if s == 0.0:
        kept, log_thr = np.ones(depth + 1), -math.inf
    else:
        cond = _forward_conditionals(act, m, classes,
                                     _N_QMC_FINITE if finite_width else _N_QMC)
        kept, log_thr, count = np.zeros(depth + 1), 0.0, 0
        with _one_blas_thread():
            for draw, back in _draws(m, cond, width, sw, batch, classes, finite_width):
                k, lt = _kept(_laws(m, cond, draw, back, batch, classes), n, s)
                kept += k
                log_thr += lt
                count += 1
        kept, log_thr = kept / count, log_thr / count
    df = pd.DataFrame({"layer": np.arange(1, depth + 2), "n_weights": n.astype(np.int64),
                       "kept_fraction": kept})
    df.attrs["threshold"] = math.exp(log_thr)
    return df


def _kept(laws, n, s):
    """Kept fraction per layer and log threshold for one readout draw at sparsity s > 0."""
    from scipy.optimize import brentq
    target = (1.0 - s) * n.sum()
    lo, hi = _grid_span(laws)
    idx = np.arange(lo - 1, hi + 2)
    T = _at(laws, idx)[1]
    kept_total = n @ T                               # non-increasing in t, 0 at the right end
    # last grid point with kept_total ≥ target (exists: T = 1 − (exact zeros) at the left end
    # and s > 0 ≥ their share is not needed — fall back to the first point); interpolate log T_l
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
    return np.clip(kept_at(theta), 0.0, 1.0), (idx[j] + theta) * _H


# ---------------------------------------------------------------------------------------------
# the ordered-phase bound of Hayou et al. (2021)


def _bound_shape(width, depth):
    N = np.asarray(width, dtype=np.float64)
    L = np.asarray(depth, dtype=np.float64)
    ln2 = L * N * N
    return np.log(ln2) / L + 1.0 / np.sqrt(ln2)


def ordered_phase_bound(width, depth, constant=1.0):
    """The shape of the ordered-phase bound E[s_cr] = O(log(L N²)/L + 1/√(L N²)).

    Hayou et al. (2021, Prop. 1) prove the rate, not the constant: this returns
    C · (log(L N²)/L + 1/√(L N²)) for a user-chosen C (fit it to data with
    :func:`fit_bound_constant`). The curve can exceed 1 at small L; it is a rate, not a probability.

    Parameters
    ----------
    width : int or array_like, >= 1
        N.
    depth : int or array_like, >= 1
        L.
    constant : float > 0, default 1.0
        C.

    Returns
    -------
    float or ndarray
        Broadcast shape of ``width`` and ``depth``.

    Examples
    --------
    >>> from meanfield.prediction import ordered_phase_bound
    >>> round(ordered_phase_bound(100, 100), 6)
    0.139155
    """
    N = np.asarray(width)
    L = np.asarray(depth)
    for name, arr in (("width", N), ("depth", L)):
        a = np.asarray(arr, dtype=np.float64)
        if not np.all(np.isfinite(a)) or np.any(a < 1):
            raise ValueError(f"`{name}` == {arr.tolist()!r}: must be >= 1 and finite")
    try:
        C = float(constant)
    except (TypeError, ValueError):
        raise TypeError(f"`constant` == {constant!r}: must be a real number > 0") from None
    if not (C > 0 and math.isfinite(C)):
        raise ValueError(f"`constant` == {constant!r}: must be > 0 and finite")
    out = C * _bound_shape(N, L)
    return float(out) if np.ndim(out) == 0 else out


def fit_bound_constant(depths, s_cr, width):
    """Least-squares constant C of :func:`ordered_phase_bound` for measured E[s_cr].

    Minimises Σ_k (s_k − C f(L_k))², f(L) = log(L N²)/L + 1/√(L N²), i.e.
    C = Σ s_k f_k / Σ f_k². Use ordered- (or chaotic-) phase data only: on the EOC the bound does
    not hold.

    Parameters
    ----------
    depths : array_like of numbers >= 1
    s_cr : array_like, same length, in [0, 1]
        Measured (mean) critical sparsities at those depths.
    width : int >= 1

    Returns
    -------
    float
        C.

    Examples
    --------
    >>> from meanfield.prediction import fit_bound_constant, ordered_phase_bound
    >>> L = [10, 20, 50, 100]
    >>> round(fit_bound_constant(L, ordered_phase_bound(100, L, 0.7), 100), 12)
    0.7
    """
    L = np.asarray(depths, dtype=np.float64).ravel()
    s = np.asarray(s_cr, dtype=np.float64).ravel()
    if L.size == 0 or L.size != s.size:
        raise ValueError(f"`depths` ({L.size} values) and `s_cr` ({s.size} values) must have the "
                         f"same, non-zero length")
    if not np.all(np.isfinite(L)) or np.any(L < 1):
        raise ValueError(f"`depths` == {L.tolist()!r}: must be >= 1 and finite")
    if not np.all(np.isfinite(s)) or np.any(s < 0) or np.any(s > 1):
        raise ValueError(f"`s_cr` == {s.tolist()!r}: must be in [0, 1]")
    width = check_int("width", width, low=1)
    f = _bound_shape(width, L)
    return float(s @ f / (f @ f))
