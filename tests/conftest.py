"""Shared helpers for the tests: EOC points solved from the parametric form (docs/theory.md §3), a
tolerance check, and central finite differences over a network's weights."""

import math

import mpmath as mp
import numpy as np
import pytest


def _tanh_moments(q):
    """E[tanh(√q Z)²] and E[tanh'(√q Z)²] by mpmath (30 digits), independent of meanfield."""
    mp.mp.dps = 30
    r = mp.sqrt(q)
    pdf = lambda z: mp.exp(-z * z / 2) / mp.sqrt(2 * mp.pi)  # noqa: E731
    e2 = mp.quad(lambda z: mp.tanh(r * z) ** 2 * pdf(z), [-mp.inf, -2, 0, 2, mp.inf])
    d2 = mp.quad(lambda z: mp.sech(r * z) ** 4 * pdf(z), [-mp.inf, -2, 0, 2, mp.inf])
    return e2, d2


def tanh_eoc(sigma_b):
    """(σ_w, q*) on the tanh EOC at σ_b, by mpmath.findroot on σ_b² = q − E[φ²]/E[φ'²]."""
    mp.mp.dps = 30

    def f(q):
        e2, d2 = _tanh_moments(q)
        return q - e2 / d2 - mp.mpf(sigma_b) ** 2

    q = mp.findroot(f, 0.5 + sigma_b)
    return float(mp.sqrt(1 / _tanh_moments(q)[1])), float(q)


@pytest.fixture(scope="session")
def tanh_eoc_03():
    return tanh_eoc(0.3)


def assert_close(actual, expected, rtol, atol=0.0):
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    err = np.abs(actual - expected)
    bound = atol + rtol * np.abs(expected)
    assert np.all(err <= bound), (
        f"max error {err.max():.3e} (relative {np.max(err / np.maximum(np.abs(expected), 1e-300)):.3e})"
        f" exceeds rtol={rtol}, atol={atol}"
    )


def weight_differences(net, f, direction=lambda w: 1.0, h=1e-6):
    """Per weight w_q of ``net``: (f(w_q + h d) − f(w_q − h d)) / 2h with d = direction(w_q), the
    derivative of the scalar f(net) along d, by central differences (one weight at a time)."""
    out = []
    for w in net.weights:
        g = np.empty(w.shape)
        for idx in np.ndindex(w.shape):
            old = w[idx]
            d = direction(old)
            w[idx] = old + h * d
            up = f(net)
            w[idx] = old - h * d
            down = f(net)
            w[idx] = old
            g[idx] = (up - down) / (2 * h)
        out.append(g)
    return out


SQRT2 = math.sqrt(2.0)
