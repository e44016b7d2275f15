"""The law of a score on a logarithmic grid: the product |Z₁Z₂| of two independent standard
normals (density K₀(|x|)/π), and mixtures of scaled copies of it (or of |Z|), one row per layer.

A layer's scores are e^x · X with x one of n equally likely atoms and X = |Z₁Z₂| (a hidden layer:
weight times a Gaussian gradient) or |Z| (the readout, whose gradient is taken as given). Their CDF
on the grid t = e^{ih} is the histogram of the atoms convolved with the kernel's CDF, which one
batched FFT does for every row at once. ``docs/critical_sparsity.md`` eq. (16).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import erf, erfc, k0, k0e, k1, modstruve

from .._jit import jit
from ._moments import NoPrediction

H = 0.02                     # spacing of the log-score grid (natural-log units)
LOG_U_MIN = -25.0            # P(|Z₁Z₂| ≤ e^-25) ≈ 1e-10: treated as 0 below
LOG_U_MAX = 4.25             # P(|Z₁Z₂| > e^4.25 ≈ 70) ≈ 1e-31: treated as 0 above


def product_cdf(u):
    """Ψ(u) = P(|Z₁Z₂| ≤ u) = u [K₀(u) L₋₁(u) + K₁(u) L₀(u)] (L: modified Struve, L₋₁ = L₁ + 2/π).
    Accurate (no cancellation) for u ≲ 2; use :func:`product_tail` above."""
    u = np.asarray(u, dtype=np.float64)
    return u * (k0(u) * (modstruve(1, u) + 2.0 / np.pi) + k1(u) * modstruve(0, u))


@functools.lru_cache(maxsize=1)
def _laguerre():
    return np.polynomial.laguerre.laggauss(60)


def product_tail(u):
    """1 − Ψ(u) = (2/π) ∫_u^∞ K₀ = (2/π) e^{-u} ∫_0^∞ k0e(u + s) e^{-s} ds (Gauss–Laguerre), for
    u ≳ 1: relative error < 1e-13 for u ∈ [1, 10], < 1e-7 up to u = 70."""
    x, w = _laguerre()
    u = np.asarray(u, dtype=np.float64)
    return (2.0 / np.pi) * np.exp(-u) * (k0e(u[..., None] + x) @ w)


@functools.lru_cache(maxsize=1)
def product_table():
    """(j_min, Ψ(e^{jh}), 1 − Ψ(e^{jh})) for j = j_min … j_max on the log grid of spacing h."""
    j_min, j_max = int(math.floor(LOG_U_MIN / H)), int(math.ceil(LOG_U_MAX / H))
    u = np.exp(np.arange(j_min, j_max + 1) * H)
    small = u <= 1.5
    cdf = np.empty_like(u)
    tail = np.empty_like(u)
    cdf[small] = product_cdf(u[small])
    tail[small] = 1.0 - cdf[small]
    tail[~small] = product_tail(u[~small])
    cdf[~small] = 1.0 - tail[~small]
    return j_min, cdf, tail


# ---------------------------------------------------------------------------------------------
# forward and backward moments (eqs. (4)–(11) of docs/critical_sparsity.md)


@functools.lru_cache(maxsize=2)
def kernel_table(kind):
    """(j_min, P(X ≤ e^{jh}), P(X > e^{jh})) for j = j_min … j_max, X = |Z₁Z₂| ("product") or |Z|
    ("normal")."""
    if kind == "product":
        return product_table()
    j_min, j_max = int(math.floor(LOG_U_MIN / H)), int(math.ceil(LOG_U_MAX / H))
    u = np.exp(np.arange(j_min, j_max + 1) * H) / math.sqrt(2.0)
    return j_min, erf(u), erfc(u)


@functools.lru_cache(maxsize=16)
def _kernel_spectra(kind, nfft):
    from scipy import fft  # lazy: `import meanfield` stays light (tests/test_package.py)
    _, cdf_tab, tail_tab = kernel_table(kind)
    return fft.rfft(cdf_tab, nfft), fft.rfft(tail_tab, nfft)


def _convolve(W, kind, width):
    """The rows of W (R, size) convolved with the kernel's CDF and tail tables (full linear
    convolutions, the first ``width`` = size + table − 1 columns of the two (R, nfft) arrays
    returned): one forward FFT serves both."""
    from scipy import fft  # lazy: `import meanfield` stays light (tests/test_package.py)
    nfft = fft.next_fast_len(width, real=True)
    spec = fft.rfft(W, nfft, axis=1)
    cdf_hat, tail_hat = _kernel_spectra(kind, nfft)
    return fft.irfft(spec * cdf_hat, nfft, axis=1), fft.irfft(spec * tail_hat, nfft, axis=1)


class ScoreLaws:
    """CDFs F and tails T = 1 − F of the scores of R layers on the integer log grid i (t = e^{ih}),
    one row per layer: the score is e^{x} · X with x one of the n equally likely atoms of the
    row (``log_scale``, shape (R, n)) and X = |Z₁Z₂| or |Z| independent of x (``kind``); atoms
    with x = −inf (or 80 below the row's largest) are exact zeros. Row r's arrays start at grid
    index ``start[r]``: F = ``zero[r]`` and T = 1 − ``zero[r]`` below it, F = 1 and T = 0 from
    ``stop[r]`` on."""

    def __init__(self, log_scale, kind):
        j_min, cdf_tab, tail_tab = kernel_table(kind)
        ls = np.ascontiguousarray(np.atleast_2d(np.asarray(log_scale, dtype=np.float64)))
        R = ls.shape[0]
        # an atom of +inf or NaN is a score that overflowed (the kernel below would count it as
        # a zero), a row without a finite atom a layer whose scores all vanish: neither has a law
        if not np.all(ls < np.inf):
            raise NoPrediction("a layer's scores overflow float64")
        kept, first, size, top = _atom_cells(ls, H)
        if not (kept > 0).all():
            raise NoPrediction("a layer's scores are all exactly zero")
        self.zero = 1.0 - kept / ls.shape[1]
        size = int(size)
        W = _atom_histogram(ls, H, top, first, size).reshape(R, size)
        self.start = first + j_min
        width = size + cdf_tab.size - 1
        conv_cdf, conv_tail = _convolve(W, kind, width)
        self.F, self.T = _assemble(conv_cdf, conv_tail, W, self.zero, cdf_tab.size, width)
        self.stop = self.start + width

    def at(self, i, rows=slice(None)):
        """(F, T) of the rows ``rows`` at the integer grid indices ``i``: shape (W,) for every
        row, or (R', W) with one line of indices per row; returns two (R', W) arrays."""
        F, T = self.F[rows], self.T[rows]
        j = np.asarray(i, dtype=np.int64) - self.start[rows][:, None]
        j = np.ascontiguousarray(np.broadcast_to(j, (F.shape[0], j.shape[1])))
        return _lookup(F, T, self.zero[rows], j)

    def first_below(self, p):
        """Per row r, the first grid index where T < p[r] (``stop[r]`` if none)."""
        return _first_below(self.T, self.start, np.ascontiguousarray(p, dtype=np.float64))


# ---------------------------------------------------------------------------------------------
# the atoms' histogram on the grid: compiled, as a layer of an exact block has up to 2^20 atoms
# and a deep block hundreds of layers (numpy's masks and bincounts took most of the time)


@jit
def _atom_cells(ls, h):
    """Per row of ls (R, n): how many atoms are kept (finite and within 80 of the row's
    largest), the grid cell ⌊x/h⌋ of the smallest kept one, the histogram length every row
    needs (largest span of kept cells + 2) and the row's largest finite atom."""
    R, n = ls.shape
    kept = np.zeros(R, np.int64)
    first = np.zeros(R, np.int64)
    tops = np.full(R, -np.inf)
    span = 0
    for r in range(R):
        # one pass: ⌊x/h⌋ is non-decreasing in x, so the extreme cells are those of the extreme
        # atoms; a second pass only for a row with atoms 80 below its largest (exact zeros)
        top, low, count = -np.inf, np.inf, 0
        for k in range(n):
            v = ls[r, k]
            if np.isfinite(v):
                count += 1
                top = max(top, v)
                low = min(low, v)
        tops[r] = top
        if count and low > top - 80.0:
            kept[r] = count
            lo, hi = np.int64(np.floor(low / h)), np.int64(np.floor(top / h))
        else:
            lo, hi = np.iinfo(np.int64).max, np.iinfo(np.int64).min
            for k in range(n):
                v = ls[r, k]
                if np.isfinite(v) and v > top - 80.0:
                    kept[r] += 1
                    c = np.int64(np.floor(v / h))
                    lo = min(lo, c)
                    hi = max(hi, c)
        if kept[r]:
            first[r] = lo
            span = max(span, hi - lo)
    return kept, first, span + 2, tops


@jit
def _atom_histogram(ls, h, top, first, size):
    """Each kept atom of row r (weight 1/n; ``top``, ``first``: of :func:`_atom_cells`) split
    linearly between its grid cell and the next, cells counted from ``first[r]`` (keeps mass
    and mean): the rows, flattened (R · size,)."""
    R, n = ls.shape
    lower = np.zeros(R * size)
    upper = np.zeros(R * size)
    w = 1.0 / n
    for r in range(R):
        for k in range(n):
            v = ls[r, k]
            if np.isfinite(v) and v > top[r] - 80.0:
                x = v / h
                c = np.floor(x)
                f = x - c
                pos = np.int64(c) - first[r] + size * r
                lower[pos] += w * (1.0 - f)
                upper[pos + 1] += w * f
    return lower + upper


# ---------------------------------------------------------------------------------------------
# the laws on the grid from the convolutions, and read back at given indices: compiled, as each
# is a few passes over every row's whole grid per chunk of draws (numpy's temporaries and masks
# took as long as the FFTs)


@jit
def _assemble(conv_cdf, conv_tail, W, zero, tab, width):
    """F and T (R, width) of :class:`ScoreLaws` from the convolutions of the histogram W (R, size)
    with the kernel's CDF and tail tables (rows of ``conv_*`` at least ``width`` long): the
    kernel's CDF is 1 beyond its table (columns ≥ ``tab`` add the atoms whose offset exceeds
    j_max), its tail 1 below it (columns < size − 1 add those whose offset is below j_min); both
    clipped to [0, 1], and T below 1e-300 set to 0."""
    R, size = W.shape
    F = np.empty((R, width))
    T = np.empty((R, width))
    cum = np.empty(size)
    for r in range(R):
        acc = 0.0
        for k in range(size):
            acc += W[r, k]
            cum[k] = acc
        total = cum[size - 1]
        for i in range(width):
            f = conv_cdf[r, i] + zero[r]
            if i >= tab:
                f += cum[i - tab]
            F[r, i] = min(max(f, 0.0), 1.0)
            t = conv_tail[r, i]
            if i < size - 1:
                t += total - cum[i]
            t = min(max(t, 0.0), 1.0)
            T[r, i] = 0.0 if t < 1e-300 else t
    return F, T


@jit
def _lookup(F, T, zero, j):
    """(F, T) of each row r at its offsets j[r] (R, W) from the row's start: F = zero[r] and
    T = 1 − zero[r] before the row's grid, F = 1 and T = 0 after it."""
    R, n = j.shape
    width = F.shape[1]
    Fo = np.empty((R, n))
    To = np.empty((R, n))
    for r in range(R):
        for w in range(n):
            k = j[r, w]
            if k < 0:
                Fo[r, w] = zero[r]
                To[r, w] = 1.0 - zero[r]
            elif k < width:
                Fo[r, w] = F[r, k]
                To[r, w] = T[r, k]
            else:
                Fo[r, w] = 1.0
                To[r, w] = 0.0
    return Fo, To


@jit
def _first_below(T, start, p):
    """:meth:`ScoreLaws.first_below`: a scan that stops at the first hit (a mask over the whole
    grid cost as much as the rest of :func:`._score_laws.scr_law`)."""
    R, width = T.shape
    out = start + width
    for r in range(R):
        for i in range(width):
            if T[r, i] < p[r]:
                out[r] = start[r] + i
                break
    return out
