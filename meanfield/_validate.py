"""Input checks at the public edge: every error names the parameter, its value and what is allowed.

The checks raise ``InputError`` (a ``ValueError``) and ``InputTypeError`` (a ``TypeError``),
so that callers can tell a bad argument from a bug: the command line prints these as one line and
exits 2, and shows the traceback of anything else. ``except ValueError`` still catches them.

One vocabulary, used by every public function (in the spirit of scikit-learn's ``check_scalar``):

* :func:`check_scalar` -- one number: its type (``int`` or a real), bounds open or closed, NaN and
  ±inf refused unless allowed; numpy scalars (``np.float32(0.5)``, ``np.int64(3)``) accepted, a bool
  refused where a number goes (``True`` is an ``int`` to Python, never a width or a σ_w to us);
* :func:`check_int` -- a count or an index, ``check_scalar`` of an integer with a lower bound;
* :func:`check_array` -- arrays of the map parameters (σ_w, σ_b, q, c, ...), bounds by name;
* :func:`check_choice`, :func:`check_bool`, :func:`check_rng`, :func:`check_dtype`;
* :func:`check_indices` -- integer indices (labels, classes, layers) that will reach a numba
  kernel, which does no bounds checking: an out-of-range index must be refused here, not read;
* :func:`check_memory` -- a request whose arrays cannot fit in memory is refused before anything is
  allocated, with the size it would need.
"""

from __future__ import annotations

import math
import numbers
import operator
import os
import re

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
    "cov0": (-np.inf, False, np.inf, False, "finite"),
    "x": (-np.inf, False, np.inf, False, "finite"),
    "width": (1.0, True, np.inf, False, ">= 1 and finite"),
    "depth": (1.0, True, np.inf, False, ">= 1 and finite"),
    "depths": (1.0, True, np.inf, False, ">= 1 and finite"),
    "s_cr": (0.0, True, 1.0, True, "in [0, 1]"),
}


def _show(value, limit=60):
    """``repr(value)``, cut to ``limit`` characters (an int of 400 digits, a long list)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _first_bad(arr, bad):
    return float(arr.ravel()[np.flatnonzero(bad)[0]])


def check_array(name, value, *, scalar=False):
    """``value`` as a float64 array, checked against the bounds registered for ``name``.

    Refused with ``InputTypeError``: strings (``"1.5"`` would convert, silently), bools, complex
    numbers, ragged nests and objects that are not numbers; with ``InputError``: values out of
    the registered range, NaN and ±inf (the message gives the first bad value and its index), and,
    with ``scalar=True``, arrays of more than one value.
    """
    what = "a real number" if scalar else "a real number or an array of them"
    if isinstance(value, (str, bytes)):
        raise InputTypeError(f"`{name}` == {_show(value)}: must be {what}, not a string")
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):  # ragged nests
        raise InputTypeError(f"`{name}` == {_show(value)}: must be {what} (not ragged)") from None
    if raw.dtype.kind == "b":
        raise InputTypeError(f"`{name}` == {_show(value)}: must be {what}, not bools")
    if raw.dtype.kind == "c":
        raise InputTypeError(f"`{name}` == {_show(value)}: must be real")
    if raw.dtype.kind not in "iufO":
        raise InputTypeError(f"`{name}` == {_show(value)}: must be {what}")
    try:
        with np.errstate(over="ignore"):
            arr = raw.astype(np.float64)
    except (TypeError, ValueError):
        raise InputTypeError(f"`{name}` == {_show(value)}: must be {what}") from None
    except OverflowError:  # a Python int beyond float range
        raise InputError(f"`{name}` == {_show(value)}: must be finite") from None
    if scalar and arr.ndim:
        raise InputError(f"`{name}` == {_show(value)}: must be a scalar, got shape {arr.shape}")
    lo, lo_inc, hi, hi_inc, wording = _BOUNDS[name]
    bad = ~np.isfinite(arr)
    bad |= (arr < lo) if lo_inc else (arr <= lo)
    bad |= (arr > hi) if hi_inc else (arr >= hi)
    if bad.any():
        index = tuple(int(i) for i in np.unravel_index(np.flatnonzero(bad)[0], arr.shape))
        where = "" if arr.ndim == 0 else f" (at index {index})"
        raise InputError(f"`{name}` == {_first_bad(arr, bad)!r}{where}: must be {wording}")
    return arr


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


# ------------------------------------------------------------------------------------------------
# Scalars
# ------------------------------------------------------------------------------------------------

def _bound_words(min_val, max_val, include_boundaries):
    """"> 0", ">= 0", "in [0, 1)", "<= 5": the allowed range, as the messages say it."""
    lo_inc = include_boundaries in ("left", "both")
    hi_inc = include_boundaries in ("right", "both")
    if min_val is not None and max_val is not None:
        return f"in {'[' if lo_inc else '('}{min_val:g}, {max_val:g}{']' if hi_inc else ')'}"
    if min_val is not None:
        return f"{'>=' if lo_inc else '>'} {min_val:g}"
    if max_val is not None:
        return f"{'<=' if hi_inc else '<'} {max_val:g}"
    return ""


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def check_scalar(name, value, target_type=numbers.Real, *, min_val=None, max_val=None,
                 include_boundaries="both", allow_nan=False, allow_inf=False):
    """``value`` checked as one number: a Python ``int`` or ``float`` back.

    Parameters
    ----------
    name : str
        The parameter's name, as the caller spells it (it starts every message).
    value : object
    target_type : ``int`` or ``numbers.Real`` (or ``float``), default Real
        ``int``: anything with ``__index__`` (``np.int64`` too), returned as an ``int``.
        A real: ints, floats, numpy integer and floating scalars and 0-d real arrays, returned
        as a ``float``. A bool is refused either way (``InputTypeError``), as is a string.
    min_val, max_val : number, optional
        Bounds, closed or open as ``include_boundaries`` says.
    include_boundaries : {"both", "left", "right", "neither"}, default "both"
    allow_nan, allow_inf : bool, default False
        NaN and ±inf are refused unless allowed (a float bound excludes them anyway when
        ``allow_inf`` is False: ``max_val=None`` does not mean "inf is fine").

    Raises
    ------
    InputTypeError
        Not a number of ``target_type``; the message names ``name``, the value and the range.
    InputError
        Out of range, NaN or infinite; the same message.
    """
    if include_boundaries not in ("both", "left", "right", "neither"):
        raise ValueError(f"include_boundaries == {include_boundaries!r}")  # a bug of the caller
    integer = target_type is int or target_type is numbers.Integral
    bounds = _bound_words(min_val, max_val, include_boundaries)
    kind = "an integer" if integer else "a real number"
    if not integer and not (allow_nan or allow_inf):
        kind = "a finite real number"
    allowed = f"{kind} {bounds}".rstrip()
    if _is_bool(value):
        raise InputTypeError(f"`{name}` == {_show(value)}: must be {allowed}, not a bool")
    if integer:
        try:
            out = operator.index(value)
        except TypeError:
            raise InputTypeError(f"`{name}` == {_show(value)}: must be {allowed}") from None
    else:
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]
        if not isinstance(value, (numbers.Real, np.integer, np.floating)) or _is_bool(value):
            raise InputTypeError(f"`{name}` == {_show(value)}: must be {allowed}")
        try:
            out = float(value)
        except OverflowError:  # a Python int beyond float range
            raise InputError(f"`{name}` == {_show(value)}: must be {allowed}") from None
        if math.isnan(out) and not allow_nan:
            raise InputError(f"`{name}` == {out!r}: must be {allowed}, not nan")
        if math.isinf(out) and not allow_inf:
            raise InputError(f"`{name}` == {out!r}: must be {allowed}")
        if math.isnan(out):
            return out
    lo_inc = include_boundaries in ("left", "both")
    hi_inc = include_boundaries in ("right", "both")
    if min_val is not None and (out < min_val if lo_inc else out <= min_val):
        raise InputError(f"`{name}` == {out!r}: must be {allowed}")
    if max_val is not None and (out > max_val if hi_inc else out >= max_val):
        raise InputError(f"`{name}` == {out!r}: must be {allowed}")
    return out


def check_int(name, value, low=0, high=None):
    """``value`` as a Python int in [low, high] (numpy integers accepted, bools and floats not)."""
    return check_scalar(name, value, int, min_val=low, max_val=high)


def check_probability(name, value, *, include_one=False):
    """A fraction in [0, 1) (or [0, 1]): a sparsity, a validation split."""
    return check_scalar(name, value, min_val=0.0, max_val=1.0,
                        include_boundaries="both" if include_one else "left")


# ------------------------------------------------------------------------------------------------
# Choices, flags, generators, dtypes
# ------------------------------------------------------------------------------------------------

def check_kernel_size(kernel_size):
    """``kernel_size`` as an odd int >= 1 (a window centred on its position): the conv theory,
    nets and Monte Carlo share it."""
    k = check_int("kernel_size", kernel_size, 1)
    if k % 2 == 0:
        raise InputError(f"`kernel_size` == {k}: must be odd (a window centred on its position)")
    return k


def check_choice(name, value, allowed):
    """``value`` if it is one of ``allowed`` (a tuple of strings); else an ``InputError`` (a
    ``ValueError``, whatever the type: a choice has values, not a type) that lists them."""
    words = ", ".join(map(repr, allowed))
    if not isinstance(value, str) or value not in allowed:
        raise InputError(f"`{name}` == {value!r}: must be one of {words}")
    return value


def check_bool(name, value):
    """``value`` as a Python bool; only ``True``/``False`` (and numpy's) are accepted."""
    if not _is_bool(value):
        raise InputTypeError(f"`{name}` == {value!r}: must be True or False")
    return bool(value)


def check_rng(rng, name="rng"):
    """A ``numpy.random.Generator``: the only source of randomness a function may take."""
    if not isinstance(rng, np.random.Generator):
        raise InputTypeError(f"`{name}` == {rng!r}: must be a numpy.random.Generator "
                             f"(e.g. numpy.random.default_rng(seed))")
    return rng


FLOAT_DTYPES = (np.float32, np.float64)


def check_dtype(dtype, name="dtype", allowed=FLOAT_DTYPES):
    """``dtype`` as a numpy dtype, one of ``allowed`` (float32 or float64 by default)."""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt.type not in allowed:
        words = " or ".join(f"numpy.{t.__name__}" for t in allowed)
        raise InputTypeError(f"`{name}` == {dtype!r}: must be {words}")
    return dt


# ------------------------------------------------------------------------------------------------
# Indices that reach a kernel
# ------------------------------------------------------------------------------------------------

def check_indices(name, value, n, shape=None):
    """``value`` as a C-contiguous int64 array of indices in [0, n), of ``shape`` if given.

    The numba kernels index with these and check no bounds: a label 10 of a 10-class readout
    would read past the logits' row (garbage or a crash, never an error). So every index is
    checked here, at the edge, before any kernel sees it.
    """
    arr = np.asarray(value)
    if shape is not None and arr.shape != tuple(shape):
        raise InputError(f"`{name}` has shape {arr.shape}: must be {tuple(shape)}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.floating):
            raise InputTypeError(f"`{name}` has dtype {arr.dtype}: must be integers in [0, {n})")
        if not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
            raise InputTypeError(f"`{name}` has dtype {arr.dtype} and non-integer values: must "
                                 f"be integers in [0, {n})")
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        flat = arr.ravel()
        bad = flat[np.flatnonzero((flat < 0) | (flat >= n))[0]].item()
        raise InputError(f"`{name}` holds {bad!r} (values in [{arr.min().item()!r}, "
                         f"{arr.max().item()!r}]): "
                         f"must be integers in [0, {n})")
    return np.ascontiguousarray(arr, dtype=np.int64)


# ------------------------------------------------------------------------------------------------
# Memory
# ------------------------------------------------------------------------------------------------

def available_memory():
    """Bytes this process may still allocate: psutil's "available" if installed, else the
    kernel's MemAvailable, else the physical memory; None if none can be read."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # not installed, or no such information on this system
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:

        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _gib(nbytes):
    """``nbytes`` in GiB, for any Python int (a float division overflows beyond 1e308)."""
    gib = nbytes >> 30
    if gib >= 10 ** 15:
        return f"about 1e{len(str(gib)) - 1} GiB"
    return f"{nbytes / 2 ** 30:.3g} GiB"


def check_memory(what, nbytes, limit=None):
    """Refuse (``InputError``) a request whose arrays would take ``nbytes`` when that is more than
    the memory available (or ``limit``), before anything is allocated. ``what`` says which
    arguments made the request (e.g. "`width` == 10000000 (with depth 3)"); the message gives the
    size needed and the size available, in GiB. Returns ``nbytes``."""
    limit = available_memory() if limit is None else limit
    if limit is not None and nbytes > limit:
        raise InputError(f"{what}: needs {_gib(nbytes)} of memory ({_show(nbytes, 24)} bytes), more "
                         f"than the {_gib(limit)} available; choose smaller sizes")
    return nbytes


def check_path(name, value):
    """``value`` as an ``os.PathLike`` / str file path (or None, kept): the stores' files."""
    if value is None or isinstance(value, (str, os.PathLike)):
        return value
    raise InputTypeError(f"`{name}` == {_show(value)}: must be a file path (str or Path) or None")


# ------------------------------------------------------------------------------------------------
# Numbers written as text
# ------------------------------------------------------------------------------------------------

# digits with one optional point, an optional exponent, an optional sign; ASCII digits only
# (Python's float also reads "1_0" as 10, "١" and "１" as 1, "nan", "inf" and "infinity")
_REAL_LITERAL = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_INT_LITERAL = r"[+-]?[0-9]+"


def parse_real(text):
    """``text`` as a finite float by one strict rule, or None: a decimal or scientific literal
    (``0.1``, ``.5``, ``2.``, ``-3``, ``1e-2``, ``+1E+3``), surrounding spaces ignored; no
    underscores, no non-ASCII digits, no hexadecimal, no ``nan``/``inf``, nothing that overflows.
    The one rule for every number read from text: an activation's parameter (``"elu:0.5"``), a
    value of the command line. Callers say what was expected (None is not an error here, so that
    the message can name the parameter the text belongs to)."""

    if not isinstance(text, str) or not re.fullmatch(_REAL_LITERAL, text.strip(), re.ASCII):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def parse_int(text):
    """``text`` as an int by the same rule (ASCII digits and an optional sign, surrounding spaces
    ignored), or None."""

    if not isinstance(text, str) or not re.fullmatch(_INT_LITERAL, text.strip(), re.ASCII):
        return None
    try:
        return int(text)
    except ValueError:  # beyond Python's limit on the digits of an int (4300)
        return None
