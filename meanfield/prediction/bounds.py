"""The ordered-phase rate of Hayou et al. (2021, Prop. 1) for the critical sparsity,
E[s_cr] = O(log(L N²)/L + 1/√(L N²)), and the least-squares constant that fits it to data.
The proposition proves the rate, not the constant: the curve is a fitted rate, not a bound that
data must lie under (``docs/propositions.md``).
"""

from __future__ import annotations

import numpy as np

from .._validate import InputError, broadcast, check_array, check_int, check_scalar

__all__ = ["ordered_phase_bound", "fit_bound_constant"]


def _bound_shape(width, depth):
    N = np.asarray(width, dtype=np.float64)
    L = np.asarray(depth, dtype=np.float64)
    ln2 = L * N * N
    return np.log(ln2) / L + 1.0 / np.sqrt(ln2)


def _check_sizes(width, depth, width_name="width", depth_name="depth"):
    """Refuse sizes whose L N² overflows float64 (the rate would be inf, its fit nan)."""
    N, L = np.broadcast_arrays(np.asarray(width, dtype=np.float64),   # they broadcast: checked
                               np.asarray(depth, dtype=np.float64))
    with np.errstate(over="ignore"):
        bad = ~np.isfinite(L * N * N)
    if bad.any():
        i = np.flatnonzero(bad)[0]
        raise InputError(f"`{width_name}` == {N.ravel()[i]!r}, `{depth_name}` == {L.ravel()[i]!r}: "
                         f"L·N² overflows float64; the rate needs L·N² <= "
                         f"{np.finfo(np.float64).max:.4g}")


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

    Raises
    ------
    InputError, InputTypeError
        A size < 1, not finite or not a number, a ``constant`` <= 0, shapes that do not
        broadcast, or L N² beyond float64.

    Examples
    --------
    >>> from meanfield.prediction import ordered_phase_bound
    >>> round(ordered_phase_bound(100, 100), 6)
    0.139155
    """
    N = check_array("width", width)
    L = check_array("depth", depth)
    C = check_scalar("constant", constant, min_val=0.0, include_boundaries="neither")
    N, L = broadcast(width=N, depth=L)
    _check_sizes(N, L)
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

    Raises
    ------
    InputError, InputTypeError
        As :func:`ordered_phase_bound` (``width`` an integer in [1, 2^53]), ``s_cr`` outside
        [0, 1], or ``depths`` and ``s_cr`` of different or zero lengths.

    Examples
    --------
    >>> from meanfield.prediction import fit_bound_constant, ordered_phase_bound
    >>> L = [10, 20, 50, 100]
    >>> round(fit_bound_constant(L, ordered_phase_bound(100, L, 0.7), 100), 12)
    0.7
    """
    L = check_array("depths", depths).ravel()
    s = check_array("s_cr", s_cr).ravel()
    if L.size == 0 or L.size != s.size:
        raise InputError(f"`depths` ({L.size} values) and `s_cr` ({s.size} values) must have the "
                         f"same, non-zero length")
    width = check_int("width", width, low=1, high=2 ** 53)
    _check_sizes(width, L, depth_name="depths")
    f = _bound_shape(width, L)
    return float(s @ f / (f @ f))
