"""Paired comparisons of training runs: mean differences with t-intervals over seeds.

Why paired: in :func:`meanfield.train` a seed fixes the initial weights, the scoring batch and the
order of the mini-batches for every arm (method, rescaling, shuffle, learning rate), so two arms
run with one seed differ only by what the arms change. The difference of their test accuracies
seed by seed removes the variation the seed brings to both (a net that trains badly from this
draw trains badly in both arms), and its t-interval over seeds is much narrower than the
difference of two independent means. With 3 seeds the t quantile is 4.30 (95 %), so only large,
consistent differences come out clear; that is the honest answer from 3 seeds.

- :func:`mean_ci`: mean and t-interval of one sample (a cell of a table over seeds).
- :func:`paired_difference`: mean of ``a - b`` over pairs, with its t-interval.
- :func:`paired_comparisons`: the same over a tidy table of runs: the rows of arm A and arm B
  are matched on given columns (the seed and every design column the arms share), and the
  differences summarised per group.

Examples
--------
>>> from meanfield.stats import paired_difference
>>> d = paired_difference([0.84, 0.83, 0.83], [0.73, 0.74, 0.83])
>>> round(d.mean, 3), d.n
(0.067, 3)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import t

from ._validate import InputError, InputTypeError

__all__ = ["Interval", "mean_ci", "paired_difference", "paired_comparisons"]


class Interval(NamedTuple):
    """A mean with its two-sided t-interval; ``low``/``high`` are nan with fewer than 2 values."""

    mean: float
    low: float
    high: float
    sd: float
    n: int

    @property
    def clear(self):
        """True when the interval excludes 0 (its sign is then the sign of ``mean``)."""
        return bool(self.low > 0 or self.high < 0)


def _check_confidence(confidence):
    if isinstance(confidence, (bool, np.bool_)) or not isinstance(
            confidence, (int, float, np.integer, np.floating)):
        raise InputTypeError(f"`confidence` == {confidence!r}: must be a number in (0, 1)")
    if not 0.0 < confidence < 1.0:
        raise InputError(f"`confidence` == {confidence!r}: must be a number in (0, 1)")
    return float(confidence)


def _sample(name, x):
    try:
        x = np.asarray(x, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InputTypeError(f"`{name}`: must be an array of numbers") from None
    if not np.isfinite(x).all():
        raise InputError(f"`{name}` == {x.tolist()!r}: must be finite (a diverged run's accuracy "
                         f"is a number; drop or fix nan rows first)")
    return x


def mean_ci(x, confidence=0.95):
    """Mean of ``x`` with the Student t-interval ``mean ± t_{(1+c)/2, n-1} · sd / √n``.

    Parameters
    ----------
    x : array_like of finite numbers
    confidence : float in (0, 1), default 0.95

    Returns
    -------
    Interval
        ``(mean, low, high, sd, n)``; sd with ``ddof=1``. With one value the interval is nan (no
        spread to estimate); with none everything is nan and ``n == 0``.
    """

    confidence = _check_confidence(confidence)
    x = _sample("x", x)
    n = x.size
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, math.nan, 1)
    sd = float(x.std(ddof=1))
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, sd, n)


def paired_difference(a, b, confidence=0.95):
    """Mean paired difference ``a - b`` with its t-interval (the paired t-test's interval).

    Parameters
    ----------
    a, b : array_like of finite numbers, same length
        ``a[k]`` and ``b[k]`` are the two arms' results on pair ``k`` (the same seed).
    confidence : float in (0, 1), default 0.95

    Returns
    -------
    Interval
        Of the differences ``a[k] - b[k]``; ``.clear`` says whether it excludes 0.
    """
    a, b = _sample("a", a), _sample("b", b)
    if a.shape != b.shape:
        raise InputError(f"`a` and `b`: must pair up, got {a.size} and {b.size} values")
    return mean_ci(a - b, confidence)


def _select(df, arm, name):
    if not isinstance(arm, dict) or not arm:
        raise InputTypeError(f"`{name}` == {arm!r}: must be a non-empty dict column -> value")
    keep = np.ones(len(df), bool)
    for col, value in arm.items():
        if col not in df.columns:
            raise InputError(f"`{name}`: column {col!r} is not in the table "
                             f"(columns: {', '.join(map(str, df.columns))})")
        keep &= (df[col] == value).to_numpy()
    return df[keep]


def paired_comparisons(df, a, b, *, match, by=(), value="test_accuracy", confidence=0.95):
    """Paired differences of two arms of a tidy table of runs, summarised per group.

    The rows of arm A (those matching every ``column == value`` of the dict ``a``) and of arm B
    are joined on the columns ``match`` — the seed and every design column the two arms share
    (depth, sparsity, …): so each pair is one seed of one cell, run in both arms. Rows without a
    partner are left out. The differences ``A - B`` of ``value`` are then summarised per group of
    ``by`` (a subset of ``match``; empty: all pairs pooled) by :func:`paired_difference`.

    Pooling pairs over cells (``by`` coarser than a cell) estimates the average difference over
    those cells; its interval treats the pairs as independent, which they are across seeds and
    cells (each cell's nets are drawn afresh), but the difference may vary from cell to cell.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per run.
    a, b : dict
        The two arms, e.g. ``{"method": "snip", "rescale": "neuron"}`` and
        ``{"method": "random", "rescale": "neuron"}``.
    match : sequence of str
        Columns a pair must agree on (include the seed).
    by : sequence of str, default ()
        Grouping of the summary (columns of ``match``).
    value : str, default "test_accuracy"
    confidence : float in (0, 1), default 0.95

    Returns
    -------
    pandas.DataFrame
        One row per group: the ``by`` columns, ``n`` (pairs), ``mean``, ``ci_low``, ``ci_high``,
        ``sd`` and ``clear`` (the interval excludes 0).

    Raises
    ------
    InputError
        A column missing, ``by`` not within ``match``, or an arm with two rows for one pair
        (``match`` then misses a column that tells them apart).
    """

    match, by = list(match), list(by)
    for col in [*match, value]:
        if col not in df.columns:
            raise InputError(f"`match`/`value`: column {col!r} is not in the table")
    if not set(by) <= set(match):
        raise InputError(f"`by` == {by!r}: must be columns of `match` ({match!r})")
    A, B = _select(df, a, "a"), _select(df, b, "b")
    for name, side in (("a", A), ("b", B)):
        if side.duplicated(match).any():
            raise InputError(f"`{name}` == {a if name == 'a' else b!r}: several rows share one "
                             f"value of `match` {match!r}; add the column that tells them apart")
    pairs = A[match + [value]].merge(B[match + [value]], on=match, suffixes=("_a", "_b"))
    pairs["diff"] = pairs[f"{value}_a"] - pairs[f"{value}_b"]
    rows = []
    groups = pairs.groupby(by, sort=True) if by else [((), pairs)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        iv = mean_ci(g["diff"], confidence)
        rows.append({**dict(zip(by, key)), "n": iv.n, "mean": iv.mean, "ci_low": iv.low,
                     "ci_high": iv.high, "sd": iv.sd, "clear": iv.clear})
    return pd.DataFrame(rows, columns=[*by, "n", "mean", "ci_low", "ci_high", "sd", "clear"])
