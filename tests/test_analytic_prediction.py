"""Tests of the analytic finite-width prediction (docs/critical_sparsity.md §5e): the 1/N
coupling of the forward kernel's fluctuations with the backward kernel against networks written
here in plain numpy, the class-space Wishart chain against the N-row chain, and the route
against a Monte Carlo."""

import math
import warnings

import numpy as np
import pytest

import meanfield as mf
from meanfield._validate import InputError
from meanfield.prediction import PredictionRangeWarning, critical_sparsity_distribution
from meanfield.prediction import _analytic as AN
from meanfield.prediction import _moments as SM
from meanfield.prediction import _score_laws as SL
from meanfield.prediction._vertex import gradient_coupling, softmax_overlap


def test_bartlett_draws_are_wishart():
    """S ~ Wishart(n, I_C): E S = n I, Var S_ab = n (a ≠ b) and 2n (diagonal), rank n when
    n < C; to 5 standard errors over 4000 draws."""
    C, draws = 5, 4000
    rng = np.random.default_rng(3)
    for n in (3, 12):
        S = AN._wishart(rng, np.full(draws, n), C)
        off = S[:, 0, 1]
        diag = S[:, 2, 2]
        for x, mean, var in ((off, 0.0, n), (diag, n, 2.0 * n)):
            assert abs(x.mean() - mean) <= 5 * math.sqrt(var / draws)
            # Var of the sample variance of ~Gaussian-tailed x: ≤ a few · var² / draws
            assert abs(x.var() - var) <= 5 * var * math.sqrt(6.0 / draws)
        rank = (np.linalg.eigvalsh(S) > 1e-9 * n).sum(axis=1)
        assert np.all(rank == min(n, C))


@pytest.mark.parametrize("arch", ["ffnn", "resnet", "stable_resnet"])
def test_wishart_chain_has_the_law_of_the_n_row_chain_for_equal_weights(arch):
    """With a linear φ every neuron has the same weight m² = 1: the Wishart chain is then the
    N-row chain in law (a ResNet's: given Gaussian stream rows, split among the classes by
    their matrix Dirichlet shares). Mean and SD over 1500 chains of each of log e^κ (the
    layers' scale) agree to 5 combined standard errors at every layer."""
    act = mf.get_activation("linear")
    L, N, C, sw, chains = 6, 24 if arch == "ffnn" else 40, 10, 1.0, 1500
    m = SM.layer_moments(act, N, L, sw, 0.3, 32, C, arch=arch)
    cond = SL.forward_conditionals(act, m, C, 64)
    one = SL.ReadoutDraws(float(m.q[L]), float(m.c[L]), 32, C, 1)
    draws = one.take(np.zeros(chains, dtype=int))
    rows = SL.backward_finite(m, cond, draws, N, C, sw,
                              [np.random.default_rng([5, d]) for d in range(chains)])
    chain = AN.backward_analytic if arch == "ffnn" else AN.backward_analytic_resnet
    wish = chain(m, cond, draws, N, C, sw, np.random.default_rng(6), np.zeros(L + 1))
    a, b = rows.log_scale, wish.log_scale
    se_mean = np.sqrt((a.var(0) + b.var(0)) / chains)
    assert np.all(np.abs(a.mean(0) - b.mean(0)) <= 5 * se_mean + 1e-12)
    se_sd = np.sqrt((a.var(0) + b.var(0)) / (2 * chains))        # SD of an SD ≈ σ/√(2n)
    assert np.all(np.abs(a.std(0) - b.std(0)) <= 5 * se_sd + 1e-12)
    assert a[:, 0].std() > 0.05                                   # a spread to compare


def _net_gradients(act, N, L, sw, sb, B, C, nets, seed, arch="ffnn"):
    """E_ij[(G^l_ij)²] per layer l = 1 … L + 1 of ``nets`` networks (float64), one row a net."""
    if arch != "ffnn":
        return _resnet_gradients(act, N, L, sw, sb, B, C, nets, seed,
                                 1.0 if arch == "resnet" else 1.0 / math.sqrt(L))
    rng = np.random.default_rng(seed)
    out = np.empty((nets, L + 1))
    for t in range(nets):
        a, ys, Ws = [rng.standard_normal((B, N))], [], []
        for _ in range(L):
            W = rng.standard_normal((N, N)) * sw / math.sqrt(N)
            ys.append(a[-1] @ W.T + sb * rng.standard_normal(N))
            a.append(act(ys[-1], 0))
            Ws.append(W)
        Wr = rng.standard_normal((C, N)) * sw / math.sqrt(N)
        z = a[-1] @ Wr.T + sb * rng.standard_normal(C)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(B), rng.integers(0, C, B)] -= 1.0
        out[t, L] = ((p.T @ a[L] / B) ** 2).mean()
        h = p @ Wr
        for l in range(L, 0, -1):
            d = h * act(ys[l - 1], 1)
            out[t, l - 1] = ((d.T @ a[l - 1] / B) ** 2).mean()
            h = d @ Ws[l - 1]
    return out


def _resnet_gradients(act, N, L, sw, sb, B, C, nets, seed, alpha):
    """:func:`_net_gradients` of ResNets y¹ = W¹x + b¹, y^l = y^{l−1} + α (W^l φ(y^{l−1}) + b^l)."""
    rng = np.random.default_rng(seed)
    out = np.empty((nets, L + 1))
    for t in range(nets):
        x = rng.standard_normal((B, N))
        Ws = [rng.standard_normal((N, N)) * sw / math.sqrt(N)]
        ys = [x @ Ws[0].T + sb * rng.standard_normal(N)]
        for _ in range(1, L):
            Ws.append(rng.standard_normal((N, N)) * sw / math.sqrt(N))
            ys.append(ys[-1] + alpha * (act(ys[-1], 0) @ Ws[-1].T + sb * rng.standard_normal(N)))
        top = act(ys[-1], 0)
        Wr = rng.standard_normal((C, N)) * sw / math.sqrt(N)
        z = top @ Wr.T + sb * rng.standard_normal(C)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(B), rng.integers(0, C, B)] -= 1.0
        out[t, L] = ((p.T @ top / B) ** 2).mean()
        g = (p @ Wr) * act(ys[-1], 1)                    # ∂ℒ/∂y^L
        for l in range(L, 1, -1):
            out[t, l - 1] = ((alpha * g.T @ act(ys[l - 2], 0) / B) ** 2).mean()
            g = g + alpha * (g @ Ws[l - 1]) * act(ys[l - 2], 1)
        out[t, 0] = ((g.T @ x / B) ** 2).mean()
    return out


@pytest.mark.parametrize("arch", ["resnet", "stable_resnet"])
def test_the_coupling_raises_a_resnets_layers_as_networks_do(arch):
    """tanh ResNets 50 × 12 (σ_w = 1, σ_b = 0.3, B = 128), 150 nets: E_ij[G²] of the last two
    hidden layers and the readout, relative to the mean field (whose branch layers are
    α² E[g²] E[a²]-sized, not δ = φ' ∘ h as in an FFNN), is 1 + r_l to 3 standard errors, with
    r_l (0.11 … 0.26) ≥ 4 SE from 0. The stream's neurons keep their identity: without their
    per-path noise covariance (:func:`path_covariance`) the raise would be another."""
    act = mf.get_activation("tanh")
    N, L, sw, sb, B, C = 50, 12, 1.0, 0.3, 128, 10
    m = SM.layer_moments(act, N, L, sw, sb, B, C, arch=arch)
    r = gradient_coupling(act, m, N, sw, B, C)
    g = _net_gradients(act, N, L, sw, sb, B, C, 150, 17, arch) / np.exp(m.log_grad_var)
    mean, se = g.mean(0), g.std(0) / math.sqrt(g.shape[0])
    for layer in (L - 1, L, L + 1):
        i = layer - 1
        assert abs(mean[i] - (1.0 + r[i])) <= 3 * se[i], (layer, mean[i], 1 + r[i], se[i])
        assert r[i] >= 4 * se[i]


def test_a_resnets_path_noise_has_isserlis_covariance_for_a_linear_phi():
    """With φ(y) = y the path covariance is Isserlis's: Cov(y_p², y_p'²) = 2 Σ^{min(p,p')}₁₁² and
    Cov(y_p², y_p' y'_p') = 2 Σ^{min}₁₁ Σ^{min}₁₂ (one neuron's two inputs), over N; to 10 % (at
    least 3 standard errors of the Monte Carlo's 2^16 paths), where the layer of the later
    variance, or independent layers (0), would be 2–3 times off."""
    from meanfield.prediction._vertex import path_covariance
    act = mf.get_activation("linear")
    L, N = 5, 10
    q = 1.0 + 0.5 * np.arange(L + 1)
    cq = 0.3 + 0.1 * np.arange(L + 1)                    # Σ₁₂ grows as the increments add
    S = np.stack([q, q, cq], axis=1)
    V = path_covariance(act, S, L, N) * N
    for p, pp in ((0, 0), (1, 3), (2, 4), (4, 4)):
        k = min(p, pp)
        assert V[3 * p, 3 * pp] == pytest.approx(2 * q[k] ** 2, rel=0.1)
        assert V[3 * p, 3 * pp + 2] == pytest.approx(2 * q[k] * cq[k], rel=0.1)


def test_the_coupling_raises_the_top_layers_as_networks_do():
    """Chaotic tanh (σ_w = 2.5, σ_b = 0.2), 100 × 12, B = 128: over 150 networks the mean of
    E_ij[G²] of the last three hidden layers and the readout, relative to the mean-field value,
    is (1 + r_l) to 3 standard errors, where r_l = 0.11 … 0.57 is far from 0 (≥ 5 SE)."""
    act = mf.get_activation("tanh")
    N, L, sw, sb, B, C = 100, 12, 2.5, 0.2, 128, 10
    m = SM.layer_moments(act, N, L, sw, sb, B, C)
    r = gradient_coupling(act, m, N, sw, B, C)
    g = _net_gradients(act, N, L, sw, sb, B, C, 150, 17) / np.exp(m.log_grad_var)
    mean, se = g.mean(0), g.std(0) / math.sqrt(g.shape[0])
    for layer in (L - 2, L - 1, L, L + 1):
        i = layer - 1
        assert abs(mean[i] - (1.0 + r[i])) <= 3 * se[i], (layer, mean[i], 1 + r[i], se[i])
        assert r[i] >= 5 * se[i]
    # it decays down the net: the coupling needs the readout within a few depth scales
    assert r[0] < 1e-3 and r[L - 3] < r[L - 2] < r[L - 1] < r[L]


def test_softmax_overlap_gradient_is_its_derivative(monkeypatch):
    """Price's theorem on the softmax against central differences of E[Δ·Δ'] itself, whose
    Monte Carlo uses the same seed (common random numbers), to 1 % on 2^21 logit pairs."""
    from meanfield.prediction import _vertex
    monkeypatch.setattr(_vertex, "SOFTMAX_SAMPLES", 2 ** 22)
    S = np.array([2.0, 2.0, 0.6])
    _, grad = softmax_overlap(S, 10)
    h = 1e-3
    for k in (0, 2):
        e = np.zeros(3)
        e[k] = h
        if k == 0:
            e[1] = h                     # Σ₁₁ and Σ₂₂ together: the two diagonal entries
        fd = (softmax_overlap(S + e, 10)[0] - softmax_overlap(S - e, 10)[0]) / (2 * h)
        want = grad[0] + grad[1] if k == 0 else grad[2]
        assert fd == pytest.approx(want, rel=0.01)


def test_analytic_route_meets_the_monte_carlo_where_the_wide_limit_misses():
    """Chaotic tanh 50 × 10 (σ_w = 2.5, σ_b = 0.2, B = 128), 300 nets: the wide limit is ≥ 0.015
    low; the analytic route is within max(3 SE, 0.004), and it is reported as such."""
    args = ("tanh", 50, 10, 2.5, 0.2)
    mc = mf.simulate_critical_sparsity(*args, trials=300, seed=11)
    mean, se = float(mc.s_cr.mean()), float(mc.s_cr.std(ddof=1) / math.sqrt(len(mc)))
    d = critical_sparsity_distribution(*args, finite_width="analytic")
    assert d["route"] == "analytic finite-width theory"
    assert abs(d["mean"] - mean) <= max(3 * se, 0.004), (d["mean"], mean, se)
    wide = critical_sparsity_distribution(*args, finite_width=False)["mean"]
    assert mean - wide >= 0.015


def test_analytic_route_does_not_depend_on_how_draws_are_chunked(monkeypatch):
    args = ("tanh", 60, 8, 0.9, 0.2)
    whole = mf.predict_critical_sparsity(*args, batch=16, finite_width="analytic")
    monkeypatch.setattr(SL, "ATOMS_PER_CHUNK", 1)
    assert mf.predict_critical_sparsity(*args, batch=16, finite_width="analytic") == \
        pytest.approx(whole, abs=1e-13)


def test_analytic_route_refuses_what_it_does_not_cover_and_warns_outside_its_domain():
    with pytest.raises(InputError, match="'disconnect'"):
        mf.predict_critical_sparsity("tanh", 60, 8, 1.3, 0.2, finite_width="analytic",
                                     definition="disconnect")
    with pytest.raises(InputError, match="analytic"):
        mf.predict_critical_sparsity("tanh", 60, 8, 1.3, 0.2, finite_width="analytic",
                                     arch="cnn")
    # ReLU above its EOC: q grows without bound, the fluctuations compound (r = −1.9 at layer 1)
    with pytest.raises(InputError, match="first order.*finite_width=True"):
        mf.predict_critical_sparsity("relu", 50, 20, 1.6, 0.2, finite_width="analytic")
    with pytest.warns(PredictionRangeWarning, match="analytic theory"):
        mf.predict_critical_sparsity("tanh", 40, 8, 2.5, 0.2, finite_width="analytic")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mf.predict_critical_sparsity("tanh", 60, 8, 2.5, 0.2, finite_width="analytic")
        mf.predict_critical_sparsity("tanh", 60, 30, 1.0, 0.3, finite_width="analytic",
                                     arch="resnet")
        mf.predict_critical_sparsity("tanh", 60, 100, 1.0, 0.3, finite_width="analytic",
                                     arch="stable_resnet")
    # a plain ResNet deeper than 30: the score laws miss an effect of infinite width there
    with pytest.warns(PredictionRangeWarning, match="plain ResNet deeper than 30"):
        mf.predict_critical_sparsity("tanh", 60, 31, 1.0, 0.3, finite_width="analytic",
                                     arch="resnet")


def test_analytic_kept_fractions_keep_what_the_sparsity_says():
    """Σ n_l kept_l / Σ n_l = 1 − s for the analytic route too (eq. (21)); the chaotic net keeps
    less of its last hidden layer than of its first."""
    df = mf.predict_kept_per_layer("tanh", 60, 8, 2.5, 0.2, 0.6, finite_width="analytic")
    kept = float((df.kept_fraction * df.n_weights).sum() / df.n_weights.sum())
    assert kept == pytest.approx(0.4, abs=1e-9)
    assert df.kept_fraction.iloc[7] < df.kept_fraction.iloc[0]
