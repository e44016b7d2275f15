"""Input checks at the public edge: every error names the parameter, its value and what is allowed.

The checks raise ``InputError`` (a ``ValueError``) and ``InputTypeError`` (a ``TypeError``),
so that callers can tell a bad argument from a bug: the command line prints these as one line and
exits 2, and shows the traceback of anything else. ``except ValueError`` still catches them.
"""

from __future__ import annotations

import operator

import numpy as np


class InputError(ValueError):
    """An argument's value is not allowed; the message names the parameter, its value and what is."""


class InputTypeError(TypeError):
    """An argument's type is not allowed; the message names the parameter, its value and what is."""


INPUT_ERRORS = (InputError, InputTypeError)

_BOUNDS = {
    # name: (low, low_inclusive, high, high_inclusive, wording)
    "sigma_w": (0.0, False, np.inf, False, "> 0 and finite"),
    "sigma_b": (0.0, True, np.inf, False, ">= 0 and finite"),
    "q": (0.0, True, np.inf, False, ">= 0 and finite"),
    "q0": (0.0, True, np.inf, False, ">= 0 and finite"),
    "q_a": (0.0, True, np.inf, False, ">= 0 and finite"),
    "q_b": (0.0, True, np.inf, False, ">= 0 and finite"),
    "c": (-1.0, True, 1.0, True, "in [-1, 1]"),
    "c0": (-1.0, True, 1.0, True, "in [-1, 1]"),
    "cov": (-np.inf, False, np.inf, False, "finite"),
}


def _first_bad(arr, bad):
    return float(arr.ravel()[np.flatnonzero(bad)[0]])


def check_array(name, value):
    """``value`` as a float64 array, checked against the bounds registered for ``name``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputTypeError(f"`{name}` == {value!r}: must be a real number or an array of them") from None
    if np.iscomplexobj(value):
        raise InputTypeError(f"`{name}` == {value!r}: must be real")
    lo, lo_inc, hi, hi_inc, wording = _BOUNDS[name]
    bad = ~np.isfinite(arr)
    bad |= (arr < lo) if lo_inc else (arr <= lo)
    bad |= (arr > hi) if hi_inc else (arr >= hi)
    if bad.any():
        index = tuple(int(i) for i in np.unravel_index(np.flatnonzero(bad)[0], arr.shape))
        where = "" if arr.ndim == 0 else f" (at index {index})"
        raise InputError(f"`{name}` == {_first_bad(arr, bad)!r}{where}: must be {wording}")
    return arr


def check_int(name, value, low=0):
    """``value`` as a Python int >= ``low``."""
    if isinstance(value, (bool, np.bool_)):
        raise InputTypeError(f"`{name}` == {value!r}: must be an integer >= {low}, not a bool")
    try:
        ivalue = operator.index(value)
    except TypeError:
        raise InputTypeError(f"`{name}` == {value!r}: must be an integer >= {low}") from None
    if ivalue < low:
        raise InputError(f"`{name}` == {ivalue!r}: must be an integer >= {low}")
    return ivalue


def broadcast(**arrays):
    """Broadcast the named arrays together; the error names them and their shapes."""
    try:
        out = np.broadcast_arrays(*arrays.values())
    except ValueError:
        shapes = ", ".join(f"`{k}` {np.shape(v)}" for k, v in arrays.items())
        raise InputError(f"shapes do not broadcast: {shapes}") from None
    return out


def scalar_or_array(arr):
    """A Python float for a 0-d result, else the array."""
    arr = np.asarray(arr)
    return float(arr) if arr.ndim == 0 else arr
