"""Paired comparisons of training runs at the level of what is replicated: the seed.

What a seed fixes. Every random stream of :func:`meanfield.train` is a function of its ``seed``
alone: the initial weights, the validation split, the scoring batch and the order of the
mini-batches. So two arms run with one seed differ only by what the arms change (they are
*paired*), and so, too, are the cells of a study run with one seed *not* independent of each
other: at one seed the initial weights are the same at every sparsity, SNIP's 90 % mask is a
subset of its 85 % one, and every cell shares the split and the batch order. The independent
replicates of a study are its seeds, not its (cell, seed) pairs; an interval that pools the pairs
of several cells as independent is too narrow (with a seed effect as large as the noise, a pooled
95 % interval covered the truth about half the time).

What this module does about it. :func:`paired_comparisons` averages the differences A − B over
the cells of each seed first (the mean over cells is the quantity of interest: the average
effect over the study's cells), then takes the Student t-interval and the two-sided p-value of
the paired t-test over those per-seed means: one number per independent replicate, so the
t-interval's assumptions (independent, roughly normal replicates) are the only ones made. A
model with a seed random effect would estimate the same average with the same degrees of freedom
when every seed has every cell (a balanced design, as the studies here are), and it would add a
distributional assumption on the cell-by-seed interaction; the seed means need none. With
``by`` the same is done within each group (per depth, per cell).

Several comparisons tested together: :func:`holm` adjusts their p-values for the family-wise
error rate (Holm's step-down method, valid under any dependence between the comparisons). Where a
run either trains or stays at chance (bimodal accuracies), :func:`trained_counts` gives how many
seeds train in each arm and McNemar's exact test of the paired outcomes.

- :func:`mean_ci`: mean and t-interval of one sample (e.g. a cell's accuracies over seeds).
- :func:`paired_difference`: mean of ``a - b`` over pairs, with its t-interval and p-value.
- :func:`paired_comparisons`: the same over a tidy table of runs, seed-level.
- :func:`holm`: Holm-adjusted p-values of a family.
- :func:`trained_counts`: seeds that train per arm, and the exact paired test.

Examples
--------
>>> from meanfield.stats import paired_difference
>>> d = paired_difference([0.84, 0.83, 0.83], [0.73, 0.74, 0.83])
>>> round(d.mean, 3), d.n
(0.067, 3)
>>> from meanfield.stats import holm
>>> holm([0.01, 0.04, 0.03]).round(3).tolist()
[0.03, 0.06, 0.06]
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import binomtest, t

from ._validate import InputError, InputTypeError

__all__ = ["Interval", "mean_ci", "paired_difference", "paired_comparisons", "holm",
           "trained_counts"]


class Interval(NamedTuple):
    """A mean with its two-sided t-interval and the p-value of the one-sample t-test of mean 0;
    ``low``/``high``/``p`` are nan with fewer than 2 values."""

    mean: float
    low: float
    high: float
    sd: float
    n: int
    p: float = math.nan

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


def _sample_allow_nan(name, x):
    try:
        return np.asarray(x, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InputTypeError(f"`{name}`: must be an array of numbers") from None


def _sample(name, x):
    x = _sample_allow_nan(name, x)
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
        ``(mean, low, high, sd, n, p)``; sd with ``ddof=1``; ``p`` the two-sided p-value of the
        t-test of mean 0 (0 or 1 when every value is the same: a point interval). With one value
        the interval and p are nan (no spread to estimate); with none everything is nan and
        ``n == 0``.
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
    se = sd / math.sqrt(n)
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * se
    p = 2.0 * float(t.sf(abs(mean) / se, n - 1)) if se > 0 else float(mean == 0.0)
    return Interval(mean, mean - half, mean + half, sd, n, p)


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


def paired_comparisons(df, a, b, *, match, by=(), unit="seed", value="test_accuracy",
                       confidence=0.95):
    """Seed-level paired differences of two arms of a tidy table of runs, per group.

    The rows of arm A (those matching every ``column == value`` of the dict ``a``) and of arm B
    are joined on the columns ``match`` — the seed and every design column the two arms share
    (depth, sparsity, …): so each pair is one seed of one cell, run in both arms. Rows without a
    partner are left out. Within each group of ``by`` (empty: all pairs), the differences
    ``A - B`` of ``value`` are averaged over the pairs of each ``unit`` (the seed: its cells are
    not independent, see the module's docstring), and the per-unit means summarised by
    :func:`mean_ci`: the interval and the paired t-test are over units. With one pair per unit
    (``by`` a whole cell) this is the ordinary paired t-test.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per run.
    a, b : dict
        The two arms, e.g. ``{"method": "snip", "rescale": "neuron"}`` and
        ``{"method": "random", "rescale": "neuron"}``.
    match : sequence of str
        Columns a pair must agree on (including ``unit``).
    by : sequence of str, default ()
        Grouping of the summary (columns of ``match``, not ``unit``).
    unit : str, default "seed"
        The column of the independent replicate.
    value : str, default "test_accuracy"
    confidence : float in (0, 1), default 0.95

    Returns
    -------
    pandas.DataFrame
        One row per group: the ``by`` columns, ``n`` (units), ``pairs``, ``mean`` (of the
        per-unit means), ``ci_low``, ``ci_high``, ``sd`` (of the per-unit means), ``p`` (two-sided,
        uncorrected: see :func:`holm`) and ``clear`` (the interval excludes 0).

    Raises
    ------
    InputError
        A column missing, ``unit`` not in ``match``, ``by`` not within ``match`` or holding
        ``unit``, or an arm with two rows for one pair (``match`` then misses a column that tells
        them apart).
    """

    match, by = list(match), list(by)
    for col in [*match, value]:
        if col not in df.columns:
            raise InputError(f"`match`/`value`: column {col!r} is not in the table")
    if unit not in match:
        raise InputError(f"`unit` == {unit!r}: must be one of `match` ({match!r})")
    if not set(by) <= set(match) or unit in by:
        raise InputError(f"`by` == {by!r}: must be columns of `match` ({match!r}) other than "
                         f"`unit` ({unit!r})")
    A, B = _select(df, a, "a"), _select(df, b, "b")
    for name, side in (("a", A), ("b", B)):
        if side.duplicated(match).any():
            raise InputError(f"`{name}` == {a if name == 'a' else b!r}: several rows share one "
                             f"value of `match` {match!r}; add the column that tells them apart")
    pairs = A[match + [value]].merge(B[match + [value]], on=match, suffixes=("_a", "_b"))
    pairs["diff"] = pairs[f"{value}_a"] - pairs[f"{value}_b"]
    columns = [*by, "n", "pairs", "mean", "ci_low", "ci_high", "sd", "p", "clear"]
    rows = []
    groups = pairs.groupby(by, sort=True) if by else [((), pairs)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        per_unit = g.groupby(unit, sort=True)["diff"].mean()
        iv = mean_ci(per_unit, confidence)
        rows.append({**dict(zip(by, key)), "n": iv.n, "pairs": len(g), "mean": iv.mean,
                     "ci_low": iv.low, "ci_high": iv.high, "sd": iv.sd, "p": iv.p,
                     "clear": iv.clear})
    return pd.DataFrame(rows, columns=columns)


def holm(p):
    """Holm's step-down adjustment of a family of p-values (family-wise error rate).

    The k-th smallest of m p-values becomes ``max_{j <= k} min(1, (m - j + 1) p_(j))``; rejecting
    where the adjusted value is ≤ α keeps the probability of any false rejection in the family
    ≤ α whatever the dependence between the tests (Holm 1979).

    Parameters
    ----------
    p : array_like of numbers in [0, 1], shape (m,)
        nan entries (comparisons without a test) are left nan and not counted in m.

    Returns
    -------
    numpy.ndarray, shape (m,)
        The adjusted p-values, in the input's order.
    """
    p = _sample_allow_nan("p", p)
    if ((p < 0) | (p > 1)).any():
        raise InputError(f"`p` == {p.tolist()!r}: must be probabilities in [0, 1]")
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = idx.size
    if m:
        order = idx[np.argsort(p[idx], kind="stable")]
        adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
        out[order] = np.maximum.accumulate(adjusted)
    return out


class Trained(NamedTuple):
    """Seeds that train in arms A and B (paired), and McNemar's exact test of the difference."""

    n: int            # paired seeds
    a: int            # seeds that train in A
    b: int            # seeds that train in B
    only_a: int       # train in A, not in B (discordant)
    only_b: int       # train in B, not in A
    p: float          # two-sided exact p-value (1 with no discordant seed)


def trained_counts(a, b, threshold):
    """How many paired seeds train in each arm, and whether the arms differ (McNemar's exact test).

    A run "trains" when its accuracy exceeds ``threshold`` (e.g. halfway between chance and the
    dense net's). The seeds where both arms agree carry no information on which arm trains more
    often; under the null of no difference the discordant seeds split between "A only" and "B
    only" as a fair coin, so the p-value is the two-sided binomial test of ``only_a`` out of
    ``only_a + only_b`` at 1/2 (exact at any number of seeds).

    Parameters
    ----------
    a, b : array_like of finite numbers, shape (n,)
        The two arms' accuracies on the same seeds, paired by position.
    threshold : float

    Returns
    -------
    Trained
    """
    a, b = _sample("a", a), _sample("b", b)
    if a.shape != b.shape:
        raise InputError(f"`a` and `b`: must pair up, got {a.size} and {b.size} values")
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(
            threshold, (int, float, np.integer, np.floating)) or not math.isfinite(threshold):
        raise InputTypeError(f"`threshold` == {threshold!r}: must be a finite number")
    ta, tb = a > threshold, b > threshold
    only_a, only_b = int((ta & ~tb).sum()), int((tb & ~ta).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return Trained(int(a.size), int(ta.sum()), int(tb.sum()), only_a, only_b, float(p))
