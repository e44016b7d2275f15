"""The Edge of Chaos: EOC points and curves, the phase of (σ_w, σ_b), phase-diagram tables.
docs/theory.md §2–3 (Schoenholz et al. 2017; Hayou et al. 2019).

The EOC is computed parametrically in q, with no fixed-point iteration: a point with q* = q has
σ_w² = 1/E[φ'(√q Z)²] and σ_b² = H(q) = q − σ_w² E[φ(√q Z)²]; for a given σ_b we solve H(q) = σ_b²
(the smallest root) by bracketing and Brent's method.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .._progress import progress_bar
from .._validate import (
    InputError,
    check_array,
    check_bool,
    check_int,
    check_memory,
    check_scalar,
    scalar_or_array,
)
from ..activations import get_activation
from . import _expect, _solve
from ._base import NoFixedPointWarning, _params
from ._gauss import threads_for
from .fixed import _fq_slope, _summary

__all__ = ["eoc", "eoc_curve", "phase", "phase_diagram", "fixed_points", "UnstableEOCWarning",
           "SIGMA_W_PRESETS", "resolve_sigma_w", "preset_name"]

#: σ_w of the named initialisations, the one source for the studies, the trainer and the command
#: line: "ordered" and "chaotic" are the paper's tanh values (χ₁ < 1 and χ₁ > 1 at σ_b = 0.3, and
#: at every σ_b in [0, 1]); "eoc" is not a number but the EOC value at the σ_b in use
#: (:func:`resolve_sigma_w`).
SIGMA_W_PRESETS = {"ordered": 0.8, "chaotic": 3.0}
_SIGMA_W_WORDS = ("eoc",) + tuple(SIGMA_W_PRESETS)


def resolve_sigma_w(activation, sigma_w, sigma_b):
    """σ_w as a float: a number > 0 as it is, ``"eoc"`` the EOC value at ``sigma_b``
    (:func:`eoc`), ``"ordered"`` / ``"chaotic"`` the values of :data:`SIGMA_W_PRESETS`.

    Raises
    ------
    InputError
        Another word; σ_w <= 0, nan or inf; ``"eoc"`` where the activation has no EOC point at
        that σ_b (e.g. ReLU at σ_b > 0, softplus at small σ_b).

    Examples
    --------
    >>> from meanfield.theory.phases import resolve_sigma_w
    >>> resolve_sigma_w("tanh", "ordered", 0.3), round(resolve_sigma_w("tanh", "eoc", 0.3), 10)
    (0.8, 1.3955839752)
    """
    if isinstance(sigma_w, str):
        word = sigma_w.strip().lower()
        if word in SIGMA_W_PRESETS:
            return SIGMA_W_PRESETS[word]
        if word != "eoc":
            raise InputError(f"`sigma_w` == {sigma_w!r}: must be a number > 0 or one of "
                             f"{', '.join(map(repr, _SIGMA_W_WORDS))}")
        act = get_activation(activation)
        sb = float(check_array("sigma_b", sigma_b, scalar=True))
        sw = float(eoc(act, sb)[0])
        if not math.isfinite(sw):
            raise InputError(f"`sigma_w` == 'eoc': {act.name} has no EOC point at sigma_b={sb!r}")
        return sw
    return float(check_array("sigma_w", sigma_w, scalar=True))


def preset_name(activation, sigma_w, sigma_b, rtol=1e-12):
    """The word :func:`resolve_sigma_w` turns into ``sigma_w`` at ``sigma_b``: ``"ordered"``,
    ``"chaotic"`` or ``"eoc"`` (σ_w the EOC value to ``rtol``); ``None`` for any other σ_w, which is
    then no named initialisation (and is not to be labelled as one)."""
    sw = float(check_array("sigma_w", sigma_w, scalar=True))
    for word, value in SIGMA_W_PRESETS.items():
        if sw == value:
            return word
    try:
        at_eoc = resolve_sigma_w(activation, "eoc", sigma_b)
    except InputError:
        return None
    return "eoc" if math.isclose(sw, at_eoc, rel_tol=rtol, abs_tol=0.0) else None


_PROGRESS_CHUNK = 2048  # points per update of phase_diagram's progress bar


class UnstableEOCWarning(RuntimeWarning):
    """The EOC equations' solution is an unstable fixed point of the variance map (docs/theory.md §3,
    "Several fixed points"): iterating F_q does not stay there."""


def _relu_like(act):
    """ReLU-like φ (affine variance map): their EOC is the single point σ_b = 0."""
    return _expect.affine_slope(act) is not None


def _relu_like_eoc(act, sb):
    k = _expect.affine_slope(act)
    if np.any(sb != 0.0):
        bad = float(sb[np.flatnonzero(sb != 0.0)[0]])
        raise InputError(f"`sigma_b` == {bad!r}: {act.name} has a single EOC point, (sigma_b, sigma_w) = "
                         f"(0, {math.sqrt(1.0 / k):.16g}); no EOC at sigma_b > 0")
    # on that point every q is a fixed point; the one reached from q⁰ = 1 is 1
    return np.full_like(sb, math.sqrt(1.0 / k)), np.ones_like(sb)


_EOC_SCAN_QMAX = 1e8  # where _solve.eoc_q stops looking


def _far_eoc_q(act, sb):
    """The EOC's q for σ_b whose q lies beyond the compiled scan (nan from it): H(q) = q −
    E[φ(√q Z)²] / E[φ'(√q Z)²] = σ_b² solved above 1e8, scanning decades for all points at once
    (H(1e8) < σ_b², else the scan would have stopped), then Brent. nan where H stays below σ_b²
    up to 1e200 (no EOC point, or beyond what the quadrature resolves)."""

    from scipy.optimize import brentq  # lazy: `import meanfield` stays light (tests/test_package.py)
    def h(q):
        with np.errstate(all="ignore"):
            return q - _expect.diag(act, 0, 0, 0, q) / _expect.diag(act, 1, 1, 0, q)

    out = np.full(sb.shape, np.nan)
    todo = np.arange(sb.size)
    lo_q = _EOC_SCAN_QMAX
    while todo.size and lo_q < 1e200:
        hi_q = lo_q * 10.0
        # H(q) is a difference of numbers of size q, known to ~1e-13 q: a crossing of a σ_b²
        # below 1e-6 q is rounding noise (softplus at σ_b = 0.1 "crosses" at q ~ 1e37), not a root
        todo = todo[sb[todo] ** 2 >= 1e-6 * hi_q]
        hv = h(np.full(todo.size, hi_q))
        crossed = np.isfinite(hv) & (hv >= sb[todo] ** 2)
        for i in todo[crossed]:
            out[i] = brentq(lambda x, i=i: float(h(np.array([x]))[0]) - sb[i] ** 2, lo_q, hi_q,
                            xtol=1e-300, rtol=4 * np.finfo(float).eps)
        todo = todo[~crossed]
        lo_q = hi_q
    return out


def _eoc(act, sb):
    """(σ_w, q*, stable) on the EOC for a flat array of σ_b; nan where φ has no EOC point."""
    if _relu_like(act):
        sw, q = _relu_like_eoc(act, sb)
        return sw, q, np.ones_like(sb, dtype=bool)
    px, ps, _ = act._points
    q = np.empty_like(sb)
    with threads_for(sb.size):
        _solve.eoc_q_many(act.kernel, act.param, np.ascontiguousarray(sb), px, ps, q)
    far = np.flatnonzero(np.isnan(q) & (sb > 0.0))
    if far.size:  # the compiled scan stops at q = 1e8 (σ_b ≈ 1e4 for tanh)
        q[far] = _far_eoc_q(act, sb[far])
    sw = np.full_like(sb, np.nan)
    stable = np.zeros(sb.shape, dtype=bool)
    ok = np.isfinite(q)
    if ok.any():
        sw[ok] = 1.0 / np.sqrt(_expect.diag(act, 1, 1, 0, q[ok]))
        # at q* = 0 (σ_b = 0) F_q'(0) = σ_w² φ'(0)² = χ₁ = 1 up to rounding: marginal, stable
        stable[ok] = _fq_slope(act, sw[ok], q[ok]) <= 1.0 + 1e-12
    return sw, q, stable


def eoc(activation, sigma_b):
    """The point (σ_w, q*) of the Edge of Chaos at the given σ_b.

    Parameters
    ----------
    activation : str or Activation
    sigma_b : array_like, >= 0

    Returns
    -------
    (sigma_w, q_star) : tuple of float or ndarray
        Broadcast shape of ``sigma_b``. χ₁(σ_w, σ_b) = 1 and F_q(q*) = q* there. nan, with a
        ``RuntimeWarning``, where φ has no EOC point at that σ_b (e.g. softplus and sigmoid at
        small σ_b: σ_b² = H(q) has no root) or its q* would be beyond 1e200.
        For ReLU-like φ (ReLU, leaky ReLU, linear) the EOC is the single point σ_b = 0, σ_w = √2
        (ReLU), where every q is a fixed point and q* = 1 (reached from q⁰ = 1) is returned.

    Warns
    -----
    UnstableEOCWarning
        Where the solution is an unstable fixed point of F_q (F_q'(q*) > 1, e.g. SiLU at
        σ_b = 0.3): the variance of a real network does not settle there. :func:`eoc_curve` has a
        ``stable`` column, :func:`fixed_points` lists every fixed point.

    Raises
    ------
    InputError
        σ_b > 0 for a ReLU-like activation; σ_b < 0, nan or inf.

    References
    ----------
    docs/theory.md §3; Hayou et al. (2019), §2.

    Examples
    --------
    >>> from meanfield import eoc
    >>> sw, q = eoc("tanh", 0.3)
    >>> round(sw, 10), round(q, 10)
    (1.3955839752, 0.7634747669)
    >>> eoc("tanh", 0.0)
    (1.0, 0.0)
    """
    act = get_activation(activation)
    sb = check_array("sigma_b", sigma_b)
    shape = sb.shape
    sw, q, stable = _eoc(act, sb.ravel().astype(np.float64))
    none = np.isnan(q)
    if none.any():
        i = np.flatnonzero(none)[0]
        warnings.warn(f"{act.name}: no EOC point found at sigma_b={float(sb.ravel()[i])!r} "
                      f"({int(none.sum())} point(s)): sigma_b^2 = H(q) has no root (e.g. softplus "
                      f"or sigmoid at small sigma_b) or none below q = 1e200; nan returned there",
                      RuntimeWarning, stacklevel=2)
    bad = np.isfinite(q) & ~stable
    if bad.any():
        i = np.flatnonzero(bad)[0]
        warnings.warn(f"{act.name}: the EOC point at sigma_b={float(sb.ravel()[i])!r} (sigma_w="
                      f"{float(sw[i])!r}, q*={float(q[i])!r}) is an unstable fixed point of the "
                      f"variance map ({int(bad.sum())} point(s)); see fixed_points()",
                      UnstableEOCWarning, stacklevel=2)
    return scalar_or_array(sw.reshape(shape)), scalar_or_array(q.reshape(shape))


def eoc_curve(activation, sigma_b=None, num=200):
    """The EOC curve as a tidy table.

    Parameters
    ----------
    activation : str or Activation
    sigma_b : array_like, optional
        Where to evaluate it; default ``num`` points evenly spaced in [0, 2] (the single point 0
        for ReLU-like φ).
    num : int, default 200

    Returns
    -------
    pandas.DataFrame
        Columns ``activation, sigma_b, sigma_w, q_star, stable``, one row per σ_b, rows with no EOC
        point dropped. ``stable`` is False where q* is an unstable fixed point of F_q.

    Examples
    --------
    >>> from meanfield import eoc_curve
    >>> eoc_curve("tanh", num=3).round(6)
      activation  sigma_b   sigma_w    q_star  stable
    0       tanh      0.0  1.000000  0.000000    True
    1       tanh      1.0  1.855589  3.036396    True
    2       tanh      2.0  2.325025  7.947507    True
    """

    import pandas as pd  # lazy: `import meanfield` stays light (tests/test_package.py)
    act = get_activation(activation)
    num = check_int("num", num, low=1)
    check_memory(f"`num` == {num}", num * 8 * 8)  # σ_b, σ_w, q*, ... of every point
    if sigma_b is None:
        sigma_b = np.zeros(1) if _relu_like(act) else np.linspace(0.0, 2.0, num)
    sb = np.atleast_1d(check_array("sigma_b", sigma_b)).ravel()
    sw, q, stable = _eoc(act, sb)
    df = pd.DataFrame({"activation": act.name, "sigma_b": sb, "sigma_w": sw, "q_star": q,
                       "stable": stable})
    return df[np.isfinite(df.q_star)].reset_index(drop=True)


def _phase_labels(chi, tol):
    labels = np.where(chi < 1.0 - tol, "ordered", np.where(chi > 1.0 + tol, "chaotic", "eoc"))
    return np.where(np.isnan(chi), "unbounded", labels).astype(object)


def phase(activation, sigma_w, sigma_b, tol=1e-9):
    """The phase of each (σ_w, σ_b): ``"ordered"`` (χ₁ < 1 − tol), ``"eoc"`` (|χ₁ − 1| <= tol) or
    ``"chaotic"`` (χ₁ > 1 + tol); ``"unbounded"`` where the variance map has no finite fixed point
    (q^l → ∞, e.g. ReLU with σ_w > √2).

    Parameters
    ----------
    activation : str or Activation
    sigma_w, sigma_b : array_like
    tol : float, default 1e-9

    Returns
    -------
    str or ndarray of str (object dtype)
        Broadcast shape.

    References
    ----------
    docs/theory.md §2; Schoenholz et al. (2017).

    Examples
    --------
    >>> from meanfield import phase
    >>> phase("tanh", [0.8, 1.3955839751549, 3.0], 0.3).tolist()
    ['ordered', 'eoc', 'chaotic']
    """
    tol = check_scalar("tol", tol, min_val=0.0)
    act, shape, (sw, sb) = _params(activation, sigma_w=sigma_w, sigma_b=sigma_b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoFixedPointWarning)
        chi = _summary(act, sw, sb, ("chi_1",))["chi_1"]
    labels = _phase_labels(chi, tol).reshape(shape)
    return str(labels) if labels.ndim == 0 else labels


def phase_diagram(activation, sigma_w, sigma_b, tol=1e-9, progress=False):
    """Every mean-field quantity on the grid σ_w × σ_b, as a tidy table.

    Each point is solved on its own (the same numbers as :func:`q_star`, :func:`c_star`, … give
    there); q*, χ₁ and F_q'(q*) come from the activation's fixed-point table, c* and χ_c from
    Mehler's series with as many Hermite coefficients as c* needs, by quadrature beyond
    (docs/theory.md, Numerics). A 200 × 200 tanh grid takes about a second on two cores.

    Parameters
    ----------
    activation : str or Activation
    sigma_w, sigma_b : array_like, 1-d
        The grid's axes.
    tol : float, default 1e-9
        Passed to :func:`phase`.
    progress : bool, default False
        A progress bar (tqdm, on stderr) for grids that take more than two seconds.

    Returns
    -------
    pandas.DataFrame
        One row per grid point (σ_w varying slowest), columns ``sigma_w, sigma_b, q_star, chi_1,
        c_star, chi_c, xi_q, xi_c, phase``; nan where q* = inf (phase ``"unbounded"``).

    Examples
    --------
    >>> from meanfield import phase_diagram
    >>> df = phase_diagram("tanh", [0.8, 3.0], [0.3])
    >>> df.phase.tolist(), df.c_star.round(6).tolist()
    (['ordered', 'chaotic'], [1.0, 0.068364])
    """

    import pandas as pd  # lazy: `import meanfield` stays light (tests/test_package.py)
    act = get_activation(activation)
    axes = {}
    for name, values in (("sigma_w", sigma_w), ("sigma_b", sigma_b)):
        arr = check_array(name, values)
        if arr.ndim > 1:
            raise InputError(f"`{name}` has shape {arr.shape}: must be 1-d (the grid's axis)")
        axes[name] = np.atleast_1d(arr)
    progress = check_bool("progress", progress)
    tol = check_scalar("tol", tol, min_val=0.0)
    points = axes["sigma_w"].size * axes["sigma_b"].size
    # the grid, the six quantities and the table: about 16 float64 columns per point
    check_memory(f"`sigma_w` ({axes['sigma_w'].size} values) x `sigma_b` "
                 f"({axes['sigma_b'].size} values)", points * 16 * 8)
    sw, sb = (a.ravel() for a in np.meshgrid(axes["sigma_w"], axes["sigma_b"], indexing="ij"))
    fields = ("q_star", "chi_1", "c_star", "chi_c", "xi_q", "xi_c")
    # chunks only for the bar: every point is solved independently of the others
    step = _PROGRESS_CHUNK if progress else max(sw.size, 1)
    parts = []
    with warnings.catch_warnings(), progress_bar(sw.size, progress, desc="phase diagram",
                                                  unit="point", delay=2.0) as bar:
        warnings.simplefilter("ignore", NoFixedPointWarning)
        for start in range(0, max(sw.size, 1), step):
            parts.append(_summary(act, sw[start:start + step], sb[start:start + step], fields))
            bar.update(min(step, sw.size - start))
    s = {k: np.concatenate([part[k] for part in parts]) for k in fields}
    return pd.DataFrame({"sigma_w": sw, "sigma_b": sb, **s, "phase": _phase_labels(s["chi_1"], tol)})


def fixed_points(activation, sigma_w, sigma_b, q_max=1e8):
    """All fixed points of the variance map F_q in [0, q_max], with their stability.

    Activations that grow linearly (ELU, SiLU, softplus, GELU) can have two fixed points for
    σ_w > √2 (a stable lower one, an unstable upper one) or none (docs/theory.md §3).

    Parameters
    ----------
    activation : str or Activation
    sigma_w : float, > 0
    sigma_b : float, >= 0
    q_max : float, default 1e8

    Returns
    -------
    pandas.DataFrame
        Columns ``q, slope, stable``: each fixed point, F_q'(q) there, and whether |F_q'| < 1.
        Found by scanning F_q(q) − q on a geometric grid (ratio 1.05) for sign changes, then Brent:
        two fixed points closer than 5 % apart may be missed.

    Examples
    --------
    >>> from meanfield import fixed_points
    >>> fixed_points("silu", 1.5756, 0.3).round(3).values.tolist()
    [[0.362, 0.853, True], [1.4, 1.094, False]]
    """

    import pandas as pd  # lazy: `import meanfield` stays light (tests/test_package.py)
    from scipy.optimize import brentq  # lazy: `import meanfield` stays light (tests/test_package.py)
    act = get_activation(activation)
    sw = float(check_array("sigma_w", sigma_w, scalar=True))
    sb = float(check_array("sigma_b", sigma_b, scalar=True))
    # the scan starts at 1e-12 and takes about 20 points per factor e
    q_max = check_scalar("q_max", q_max, min_val=1e-12, max_val=1e300, include_boundaries="right")
    if _relu_like(act):
        raise InputError(f"`activation` == {act.name!r}: its variance map is affine, "
                         f"F_q(q) = sigma_b^2 + k sigma_w^2 q; use q_star")

    def g(q):
        q = np.atleast_1d(np.asarray(q, dtype=np.float64))
        return sb * sb + sw * sw * _expect.diag(act, 0, 0, 0, q) - q

    grid = np.concatenate([[0.0], np.geomspace(1e-12, q_max, int(np.log(q_max / 1e-12) / np.log(1.05)))])
    vals = g(grid)
    roots = [0.0] if vals[0] == 0.0 else []
    for i in np.flatnonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0):
        roots.append(brentq(lambda x: float(g(x)[0]), grid[i], grid[i + 1], xtol=1e-300,
                            rtol=8.9e-16))
    q = np.array(roots)
    slope = _fq_slope(act, np.full_like(q, sw), q)
    return pd.DataFrame({"q": q, "slope": slope, "stable": np.abs(slope) < 1.0})
