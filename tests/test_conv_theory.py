"""The CNN's spatial covariance map (meanfield.theory.conv; docs/convolutional.md): its reductions to
the dense maps, the Fourier modes' decay rates, and finite wide conv nets drawn here."""

import math

import numpy as np
import pytest

from meanfield import c_star, chi_c, cov_map, depth_scales, q_map, q_star
from meanfield._validate import InputError
from meanfield.theory.conv import (
    conv_cov_map,
    conv_depth_scales,
    conv_input_covariance,
    propagate_spatial,
    window_transfer,
)


def test_kernel_one_is_the_dense_map_entry_by_entry():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((8, 8))
    S = (A @ A.T / 8).reshape(2, 2, 2, 2, 2, 2)[:, :, :, :, :, :]
    S = S.reshape(2, 2, 2, 2, 2, 2)
    out = conv_cov_map("tanh", S, 1.7, 0.3, kernel_size=1).reshape(8, 8)
    flat = S.reshape(8, 8)
    q = np.diagonal(flat)
    ref = cov_map("tanh", q[:, None], q[None, :], flat, 1.7, 0.3)[2]
    np.testing.assert_allclose(out, ref, rtol=1e-13, atol=1e-15)


def test_uniform_variance_follows_the_dense_q_map_so_the_eoc_is_the_ffnn_s():
    """q stays spatially uniform and q^{l+1} = F_q(q^l): q*, χ₁ and the EOC are the FFNN's."""
    S0 = np.full((5, 5, 5, 5), 0.2) + 0.6 * np.eye(25).reshape(5, 5, 5, 5)
    rows = propagate_spatial("tanh", S0, 1.3956, 0.3, 40).reshape(41, 25, 25)
    q = 0.8
    for l in range(41):
        np.testing.assert_allclose(np.diagonal(rows[l]), q, rtol=1e-12)
        q = q_map("tanh", q, 1.3956, 0.3)


def test_fourier_modes_decay_at_chi_c_times_the_window_transfer():
    """Around the fixed point (q*, c*) of one image (chaotic tanh, σ_w = 3), a deviation
    ε cos(ω·(α + β)) of the off-diagonal covariances comes out of one layer multiplied by
    χ_c λ_{2ω} (the total frequency of the pair is 2ω), to first order in ε."""
    h, sw, sb = 6, 3.0, 0.3
    qs, cs, cc = q_star("tanh", sw, sb), c_star("tanh", sw, sb), chi_c("tanh", sw, sb)
    P = h * h
    star = qs * (cs + (1 - cs) * np.eye(P))
    i, j = np.unravel_index(np.arange(P), (h, h))
    lam = window_transfer(3, h)
    for p, r in ((0, 0), (1, 0), (1, 1), (0, 2)):
        phase = 2 * np.pi * (p * i + r * j) / h
        dev = np.cos(phase[:, None] + phase[None, :]) * (1 - np.eye(P))
        eps = 1e-6
        out = conv_cov_map("tanh", (star + eps * dev).reshape(h, h, h, h), sw, sb).reshape(P, P)
        base = conv_cov_map("tanh", star.reshape(h, h, h, h), sw, sb).reshape(P, P)
        ratio = ((out - base) * dev).sum() / (eps * (dev * dev).sum())
        assert ratio == pytest.approx(cc * lam[(2 * p) % h, (2 * r) % h], rel=1e-4, abs=1e-9)


def test_window_transfer_closed_form_and_depth_scales():
    lam = window_transfer(3, 8)
    w = 2 * np.pi * np.arange(8) / 8
    np.testing.assert_allclose(lam, np.outer((1 + 2 * np.cos(w)) / 3, (1 + 2 * np.cos(w)) / 3),
                               atol=1e-15)
    t = conv_depth_scales("tanh", 3.0, 0.3, image_size=8)
    assert t.xi[0] == pytest.approx(depth_scales("tanh", 3.0, 0.3)[1], rel=1e-12)
    cc = chi_c("tanh", 3.0, 0.3)
    np.testing.assert_allclose(t.xi, -1 / np.log(np.abs(cc * lam.ravel())), rtol=1e-12)
    eoc = conv_depth_scales("tanh", 1.3955839751549, 0.3, image_size=8)
    assert math.isinf(eoc.xi[0]) or eoc.xi[0] > 1e5
    assert np.isfinite(eoc.xi[1:]).all()  # every other mode decays, even on the EOC


def _conv(h, W, b):
    """Circular cross-correlation: out[n, j, α] = Σ_i Σ_δ W[j, i, δ] h[n, i, α + δ] + b[j]."""
    k = W.shape[2]
    r = k // 2
    out = np.zeros((h.shape[0], W.shape[0]) + h.shape[2:])
    for d1 in range(-r, r + 1):
        for d2 in range(-r, r + 1):
            shifted = np.roll(h, (-d1, -d2), axis=(2, 3))
            out += np.einsum("ji,nikl->njkl", W[:, :, d1 + r, d2 + r], shifted)
    return out + b[None, :, None, None]


@pytest.mark.slow
def test_spatial_covariances_of_wide_conv_nets_match_the_map():
    """40 conv nets of 256 channels (h = 6, k = 3, tanh, σ_w = 1.5, σ_b = 0.2) on two fixed
    images: the channel-average covariance of layers 1–3 at four pairs of positions (a
    variance, neighbours, far apart, across the images), averaged over the nets, within 3
    standard errors of the map propagated from the images' exact Σ¹."""
    rng = np.random.default_rng(1)
    N, h, k, sw, sb, L, M = 256, 6, 3, 1.5, 0.2, 3, 40
    x = rng.standard_normal((2, 3, h, h))
    theory = propagate_spatial("tanh", conv_input_covariance(x, sw, sb), sw, sb, L - 1)
    pairs = [(0, 0, 0, 0, 0, 0), (0, 0, 0, 0, 0, 1), (0, 1, 1, 0, 4, 4), (0, 2, 3, 1, 2, 3)]
    est = np.zeros((M, L, len(pairs)))
    for m in range(M):
        hcur, cin = x, 3
        for layer in range(L):
            W = rng.standard_normal((N, cin, k, k)) * sw / math.sqrt(cin * k * k)
            y = _conv(hcur, W, rng.standard_normal(N) * sb)
            for t, (a, i, j, b, kk, ll) in enumerate(pairs):
                est[m, layer, t] = np.mean(y[a, :, i, j] * y[b, :, kk, ll])
            hcur, cin = np.tanh(y), N
    mean, se = est.mean(0), est.std(0, ddof=1) / math.sqrt(M)
    for layer in range(L):
        for t, (a, i, j, b, kk, ll) in enumerate(pairs):
            ref = theory[layer, a, i, j, b, kk, ll]
            assert abs(mean[layer, t] - ref) < 3 * se[layer, t], (layer, t, mean[layer, t], ref)


def test_errors():
    with pytest.raises(InputError, match="odd"):
        conv_cov_map("tanh", np.eye(4).reshape(2, 2, 2, 2), 1.0, 0.1, kernel_size=2)
    with pytest.raises(InputError, match="shape"):
        conv_cov_map("tanh", np.eye(4), 1.0, 0.1)
    with pytest.raises(InputError, match="symmetric"):
        conv_cov_map("tanh", np.arange(16.0).reshape(2, 2, 2, 2), 1.0, 0.1)
    with pytest.raises(InputError, match="`depth` == None"):
        conv_cov_map("tanh", np.eye(4).reshape(2, 2, 2, 2), 1.0, 0.1, arch="conv_stable_resnet")
    with pytest.raises(InputError, match="`x`"):
        conv_input_covariance(np.ones((2, 3, 4, 5)), 1.0, 0.1)


def test_the_cnn_phase_diagram_is_the_ffnn_s_with_its_spatial_modes():
    from meanfield import conv_phase_diagram, phase_diagram

    sw, sb = np.linspace(0.5, 4, 12), np.linspace(0, 1, 5)
    t = conv_phase_diagram("tanh", sw, sb, kernel_size=3, image_size=8)
    ref = phase_diagram("tanh", sw, sb)
    assert t.phase.tolist() == ref.phase.tolist()
    lam1 = (1 + 2 * np.cos(2 * np.pi / 8)) / 3  # the slowest non-uniform mode, ω = 2π(1, 0)/8
    assert t.lambda_1.iloc[0] == pytest.approx(lam1, rel=1e-14)
    finite = np.isfinite(t.xi_c)
    np.testing.assert_allclose(t.xi_c_spatial, -1 / np.log(np.abs(t.chi_c * lam1)), rtol=1e-12)
    assert (t.xi_c_spatial[finite] < t.xi_c[finite]).all()
