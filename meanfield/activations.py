"""Activation functions φ with their derivatives, kinks and closed-form kernels.

Every activation is an :class:`Activation`. Its numerical heart is a compiled C callback
``kernel(x, p, k)`` (a ``numba.cfunc`` of signature ``float64(float64, float64, int64)``) that returns
the k-th derivative (k = 0, 1, 2) of φ at the scalar ``x``, with ``p`` the activation's one real
parameter (the slope of leaky ReLU, the α of ELU, unused otherwise). The Gaussian-expectation kernels
of :mod:`meanfield.theory._gauss` take that callback as a first-class function argument, so one compiled and
disk-cached quadrature serves every activation, a user's own included (passing numba dispatchers
instead would recompile every kernel for every activation in every process).

Built-ins are looked up by name: ``"tanh"``, ``"erf"``, ``"relu"``, ``"leaky_relu"`` (slope 0.01, or
``"leaky_relu:0.1"``), ``"elu"`` (α = 1, or ``"elu:0.5"``), ``"selu"``, ``"gelu"``, ``"silu"`` (alias
``"swish"``), ``"softplus"``, ``"sigmoid"``, ``"hard_tanh"``, ``"linear"``.

The quadrature needs to know where φ is not smooth (``kinks``: the points where φ, φ' or φ'' jumps)
and on what length scale its smooth features live (``scale``, in units of the pre-activation x: for
tanh the distance π/2 from the real axis to its nearest pole, rounded down to 1).
See docs/theory.md, Numerics.
"""

from __future__ import annotations

import math
import types as types_

import numpy as np
from numba import cfunc, njit, types

from ._jit import jit
from ._validate import InputError, InputTypeError, check_scalar, parse_real

__all__ = ["Activation", "get_activation", "available_activations"]

_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SELU_LAMBDA = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717
KERNEL_SIGNATURE = types.float64(types.float64, types.float64, types.int64)


@jit
def _dsigmoid(x):
    """σ'(x) = σ(x)(1 − σ(x)), without cancellation for large |x|."""
    e = math.exp(-abs(x))
    return e / ((1.0 + e) * (1.0 + e))


@jit
def _sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _tanh(x, p, k):
    if k == 0:
        return math.tanh(x)
    e = math.exp(-2.0 * abs(x))
    s = 4.0 * e / ((1.0 + e) * (1.0 + e))  # sech², without the cancellation of 1 − tanh²
    if k == 1:              # no tanh: φ' is most of the prediction's activation calls
        return s
    return -2.0 * math.tanh(x) * s


def _erf(x, p, k):
    if k == 0:
        return math.erf(x)
    g = _TWO_OVER_SQRT_PI * math.exp(-x * x)
    if k == 1:
        return g
    return -2.0 * x * g


def _relu(x, p, k):
    if x <= 0.0:
        return 0.0
    if k == 0:
        return x
    if k == 1:
        return 1.0
    return 0.0


def _leaky_relu(x, p, k):
    s = 1.0 if x > 0.0 else p
    if k == 0:
        return s * x
    if k == 1:
        return s
    return 0.0


@jit
def _elu_core(x, p, k):
    if x > 0.0:
        if k == 0:
            return x
        if k == 1:
            return 1.0
        return 0.0
    if k == 0:
        return p * math.expm1(x)
    return p * math.exp(x)


def _elu(x, p, k):
    return _elu_core(x, p, k)


def _selu(x, p, k):
    return _SELU_LAMBDA * _elu_core(x, _SELU_ALPHA, k)


def _gelu(x, p, k):
    cdf = 0.5 * math.erfc(-x / _SQRT_2)
    pdf = _INV_SQRT_2PI * math.exp(-0.5 * x * x)
    if k == 0:
        return x * cdf
    if k == 1:
        return cdf + x * pdf
    return pdf * (2.0 - x * x)


def _silu(x, p, k):
    s = _sigmoid(x)
    if k == 0:
        return x * s
    ds = _dsigmoid(x)
    if k == 1:
        return s + x * ds
    return ds * (2.0 - x * math.tanh(0.5 * x))  # 1 − 2σ(x) = −tanh(x/2)


def _softplus(x, p, k):
    if k == 0:
        return max(x, 0.0) + math.log1p(math.exp(-abs(x)))
    if k == 1:
        return _sigmoid(x)
    return _dsigmoid(x)


def _sigmoid_act(x, p, k):
    s = _sigmoid(x)
    if k == 0:
        return s
    ds = _dsigmoid(x)
    if k == 1:
        return ds
    return -ds * math.tanh(0.5 * x)


def _hard_tanh(x, p, k):
    if x >= 1.0:
        return 1.0 if k == 0 else 0.0
    if x <= -1.0:
        return -1.0 if k == 0 else 0.0
    if k == 0:
        return x
    if k == 1:
        return 1.0
    return 0.0


def _linear(x, p, k):
    if k == 0:
        return x
    if k == 1:
        return 1.0
    return 0.0


@jit
def _apply(kernel, p, k, x, out):
    for i in range(x.size):
        out[i] = kernel(x[i], p, k)


class Activation:
    """An activation function φ, its derivatives, and what the quadrature must know about it.

    Build your own from scalar Python functions that numba can compile (``math`` functions,
    arithmetic, ``if``); they are jitted on construction.

    Parameters
    ----------
    phi, dphi : callable float -> float
        φ and its first derivative φ'.
    d2phi : callable float -> float, optional
        φ''. Needed only by quantities that use it (:func:`meanfield.eoc_rate`).
    kinks : sequence of float, default ()
        Points x where φ, φ' or φ'' is not continuous. The quadrature splits there.
    scale : float, default 1.0
        Length scale (in x) of φ's smooth features, e.g. the distance from the real axis to the
        nearest complex singularity. Smaller is safer and slower.
    centers : sequence of float, default (0.0,)
        Where those smooth features sit (for tanh, 0).
    name : str, optional
    odd : bool, default False
        Whether φ(−x) = −φ(x). It changes results: with it, at σ_b = 0 the chaotic-phase
        correlation fixed point is taken to be c* = 0 (exact for odd φ) instead of being solved
        for. So ``odd=True`` is checked on construction, on a grid of 45 points in [1e-3, 30],
        and a φ found not to be odd raises ``InputError`` (a ``ValueError``). ``False`` is always
        safe: c* is then solved for.

    Examples
    --------
    >>> import math
    >>> from meanfield import Activation, q_map
    >>> act = Activation(math.tanh, lambda x: 1.0 - math.tanh(x) ** 2, name="my_tanh")
    >>> round(q_map(act, 1.0, 1.5, 0.1) - q_map("tanh", 1.0, 1.5, 0.1), 14)
    0.0
    """

    def __init__(self, phi, dphi, d2phi=None, *, kinks=(), scale=1.0, centers=(0.0,), name=None,
                 odd=False):
        for label, fn in (("phi", phi), ("dphi", dphi), ("d2phi", d2phi)):
            if fn is not None and not callable(fn):
                raise InputTypeError(f"`{label}` == {fn!r}: must be a callable float -> float")
        try:
            kinks = tuple(check_scalar("kinks", k) for k in kinks)
            centers = tuple(check_scalar("centers", c) for c in centers)
        except TypeError:  # not iterable
            raise InputTypeError(f"`kinks` == {kinks!r}, `centers` == {centers!r}: must be "
                                 f"sequences of finite numbers") from None
        scale = check_scalar("scale", scale, min_val=0.0, include_boundaries="neither",
                             allow_inf=True)
        self.name = name or getattr(phi, "__name__", "custom")
        self.param = 0.0
        self.kinks = kinks
        self.odd = bool(odd)
        self.has_d2 = d2phi is not None
        self.closed_form = None
        self._points = self._make_points(kinks, centers, float(scale))
        try:
            self._kernel = cfunc(KERNEL_SIGNATURE)(_user_kernel(phi, dphi, d2phi))
        except Exception as exc:  # numba's typing errors are long: keep the first line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputTypeError(
                f"`phi`/`dphi` of activation {self.name!r} could not be compiled by numba "
                f"({first}); write them with scalar arithmetic and `math` functions"
            ) from None
        if self.odd:
            self._check_odd(phi)
        #: whether φ itself jumps at a declared kink: then Stein's lemma (E[Z f(Z)] = E[f'(Z)])
        #: gains a delta term, and χ_c is computed by quadrature rather than from φ's coefficients
        self.jumps = any(self._jumps_at(phi, k) for k in kinks)

    @staticmethod
    def _jumps_at(phi, k):
        eps = 1e-9 * max(1.0, abs(k))
        try:
            a, b = float(phi(k - eps)), float(phi(k + eps))
        except Exception:  # φ undefined on one side: treat as a jump (the safe choice)
            return True
        return not math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)

    # a few points over the scales activations use, none of them round, so that a function
    # odd only at integers or near 0 is still caught; then a geometric grid of 40 more from 1e-3
    # to 30 (x/3.0103...: off round numbers), where a φ that is odd only piecewise shows it
    _ODD_POINTS = (0.137, 0.61, 1.29, 2.73, 6.83) + tuple(
        float(x) for x in np.geomspace(1e-3, 30.0, 40) / 1.0103)

    def _check_odd(self, phi):
        """``odd=True`` sets c* = 0 at σ_b = 0 without solving: a φ that is not odd must not pass."""
        for x in self._ODD_POINTS:
            try:
                a, b = float(phi(x)), float(phi(-x))
            except Exception as exc:  # e.g. math.log(-x): φ is then not odd either
                raise InputError(f"`odd` == True: φ of activation {self.name!r} fails at "
                                 f"x = ±{x} ({type(exc).__name__}: {exc})") from None
            if not math.isclose(b, -a, rel_tol=1e-10, abs_tol=1e-14):
                raise InputError(f"`odd` == True: activation {self.name!r} is not odd, "
                                 f"φ({x}) = {a!r} but φ({-x}) = {b!r}; leave odd=False (c* is "
                                 f"then solved for) unless φ(−x) = −φ(x) for all x")

    @staticmethod
    def _make_points(kinks, centers, scale):
        """Arrays (x, scale, is_kink) of the points the quadrature grades its mesh around."""
        xs, ss, ks = [], [], []
        for k in kinks:
            xs.append(k), ss.append(scale), ks.append(True)
        for c in centers:
            if c not in kinks and math.isfinite(scale):
                xs.append(c), ss.append(scale), ks.append(False)
        order = np.argsort(xs) if xs else np.zeros(0, dtype=np.int64)
        return (np.asarray(xs, dtype=np.float64)[order],
                np.asarray(ss, dtype=np.float64)[order],
                np.asarray(ks, dtype=np.bool_)[order])

    @classmethod
    def _builtin(cls, name, kernel, param=0.0, *, kinks=(), scale=1.0, centers=(0.0,),
                 closed_form=None, odd=False, has_d2=True):
        self = cls.__new__(cls)
        self.name = name
        self.param = float(param)
        self.kinks = tuple(kinks)
        self.odd = odd
        self.has_d2 = has_d2
        self.closed_form = closed_form
        self.jumps = False  # no built-in φ jumps
        self._points = cls._make_points(tuple(kinks), tuple(centers), float(scale))
        self._source = kernel
        self._kernel = None
        return self

    @property
    def kernel(self):
        """The C callback φ^(k)(x) with parameter p, compiled (or loaded from the disk cache) on
        first use."""
        if self._kernel is None:
            self._kernel = cfunc(KERNEL_SIGNATURE, cache=True)(self._source)
        return self._kernel

    def __call__(self, x, k=0):
        """φ^(k)(x) elementwise for an array-like x (k = 0, 1 or 2)."""
        if k not in (0, 1, 2):
            raise InputError(f"`k` == {k!r}: must be 0, 1 or 2")
        if k == 2 and not self.has_d2:
            raise InputError(f"`k` == 2: activation {self.name!r} was built without `d2phi`")
        arr = np.asarray(x, dtype=np.float64)
        flat = np.ascontiguousarray(arr).ravel()
        out = np.empty_like(flat)
        _apply(self.kernel, self.param, k, flat, out)
        return out.reshape(arr.shape) if arr.ndim else float(out[0])

    def __repr__(self):
        return f"Activation({self.name!r})"


def _jit_scalar(fn):
    """njit a user's scalar function; builtins such as ``math.tanh`` are wrapped first."""
    if not isinstance(fn, types_.FunctionType):
        inner = fn
        fn = lambda x: inner(x)  # noqa: E731
    return njit(fn)


def _user_kernel(phi, dphi, d2phi):
    f0 = _jit_scalar(phi)
    f1 = _jit_scalar(dphi)
    f2 = _jit_scalar(d2phi) if d2phi is not None else None
    if f2 is None:
        @njit
        def kernel(x, p, k):
            if k == 0:
                return f0(x)
            if k == 1:
                return f1(x)
            return math.nan
    else:
        @njit
        def kernel(x, p, k):
            if k == 0:
                return f0(x)
            if k == 1:
                return f1(x)
            return f2(x)
    return kernel


def _make(name, param=None):
    inf = math.inf
    if name == "tanh":
        return Activation._builtin("tanh", _tanh, odd=True)
    if name == "erf":
        return Activation._builtin("erf", _erf, odd=True, closed_form="erf")
    if name == "relu":
        return Activation._builtin("relu", _relu, kinks=(0.0,), scale=inf, closed_form="relu")
    if name == "leaky_relu":
        slope = 0.01 if param is None else param
        return Activation._builtin(f"leaky_relu:{slope:g}", _leaky_relu, slope, kinks=(0.0,),
                                   scale=inf, closed_form="leaky_relu")
    if name == "elu":
        alpha = 1.0 if param is None else param
        return Activation._builtin(f"elu:{alpha:g}", _elu, alpha, kinks=(0.0,))
    if name == "selu":
        return Activation._builtin("selu", _selu, kinks=(0.0,))
    if name == "gelu":
        return Activation._builtin("gelu", _gelu)
    if name in ("silu", "swish"):
        return Activation._builtin("silu", _silu)
    if name == "softplus":
        return Activation._builtin("softplus", _softplus)
    if name == "sigmoid":
        return Activation._builtin("sigmoid", _sigmoid_act)
    if name == "hard_tanh":
        return Activation._builtin("hard_tanh", _hard_tanh, kinks=(-1.0, 1.0), scale=inf, odd=True)
    if name == "linear":
        return Activation._builtin("linear", _linear, centers=(), scale=inf, odd=True,
                                   closed_form="linear")
    return None


_PARAMETRISED = ("leaky_relu", "elu")
_NAMES = ("tanh", "erf", "relu", "leaky_relu", "elu", "selu", "gelu", "silu", "swish",
          "softplus", "sigmoid", "hard_tanh", "linear")
_CACHE: dict[str | tuple[str, float], Activation] = {}  # spelling or (family, param)


def available_activations():
    """Names accepted by :func:`get_activation` (parametrised ones also as ``"name:value"``)."""
    return _NAMES


def _parameter(activation, name, raw):
    """The parameter of ``name`` written after the colon of the spec ``activation``, read by the
    package's one rule for numbers in text (:func:`meanfield._validate.parse_real`: a decimal or
    scientific literal; "1_0", "nan", "0x1" are not numbers) and checked against the family's
    range. InputError naming ``activation`` otherwise."""
    if name not in _PARAMETRISED:
        raise InputError(f"`activation` == {activation!r}: only {', '.join(_PARAMETRISED)} "
                         f"take a parameter")
    lo, lo_inc, hi, words = _PARAMETER_RANGE[name]
    param = parse_real(raw)
    if param is None or not ((param >= lo if lo_inc else param > lo) and param < hi):
        raise InputError(f"`activation` == {activation!r}: the parameter of {name} must be "
                         f"{words} (a decimal number such as 0.5 or 1e-2)")
    return param


# the range of each family's parameter: (low, low included, high (excluded), as the message says)
_PARAMETER_RANGE = {"leaky_relu": (0.0, True, 1.0, "in [0, 1)"),
                    "elu": (0.0, False, math.inf, "a finite number > 0")}


def get_activation(activation):
    """Return the :class:`Activation` for a name such as ``"tanh"`` or ``"elu:0.5"``.

    An :class:`Activation` is returned unchanged. Names ignore case and read ``-`` as ``_``;
    a parameter after the colon is a decimal or scientific literal (``"leaky_relu:1e-2"``), the
    same rule for every parametrised family.

    Raises
    ------
    InputError
        Unknown name, a parameter for a family that takes none, or a parameter that is not a
        decimal number in range (> 0 for ELU, in [0, 1) for leaky ReLU).
    InputTypeError
        Neither a string nor an :class:`Activation`.
    """
    if isinstance(activation, Activation):
        return activation
    if not isinstance(activation, str):
        raise InputTypeError(f"`activation` == {activation!r}: must be a name such as 'tanh' or "
                             f"an Activation")
    # the name is normalised, the parameter is not: "leaky_relu:1e-2" must keep its minus sign
    head, colon, raw = activation.partition(":")
    name = head.strip().lower().replace("-", "_")
    key = name + colon + raw.strip()
    if key in _CACHE:
        return _CACHE[key]
    param = _parameter(activation, name, raw) if colon else None
    act = _make(name, param)
    if act is None:
        raise InputError(f"`activation` == {activation!r}: unknown; allowed: "
                         f"{', '.join(_NAMES)} or an Activation")
    # one object per activation however it is spelt ("swish" and "silu", "elu" and "elu:1.0"):
    # its kernel is compiled once, and `is` between two spellings holds. Keyed by the exact
    # parameter, not by the name, which rounds it (f"{p:g}")
    act = _CACHE.setdefault((act.name.partition(":")[0], act.param), act)
    _CACHE[key] = act
    return act
