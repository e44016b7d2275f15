"""Finite-width random networks: initialisation, forward pass, backpropagation. docs/theory.md §1.

Three architectures of depth L (L hidden layers of width N, input dimension N₀, C classes):

* ``"ffnn"``:           y¹ = W¹x + B¹,   y^l = W^l φ(y^{l−1}) + B^l                 (l = 2 … L)
* ``"resnet"``:         y¹ = W¹x + B¹,   y^l = y^{l−1} + (W^l φ(y^{l−1}) + B^l)
* ``"stable_resnet"``:  y¹ = W¹x + B¹,   y^l = y^{l−1} + (W^l φ(y^{l−1}) + B^l) / √L  (Hayou et al. 2021)

and for all three the readout ``logits = W^out φ(y^L) + B^out``. The readout counts as a layer: a
network holds ``depth + 1`` weight matrices, all scored and pruned alike. The loss is the mean
cross-entropy of the softmax of the logits over a batch.

Layout: a batch is a (B, N₀) array, one input per row, so layer l computes the (B, N) array
Y^l = H^{l−1} (W^l)ᵀ + B^l from H^{l−1} = φ(Y^{l−1}) (H⁰ = X). Every layer of either pass is a
BLAS product or two and one numba kernel that fuses the elementwise work around them (bias,
residual update, φ' and the product by it, the bias gradient, the SNIP scores and their maximum);
φ = tanh is applied by numpy's vectorised ``np.tanh``, any other φ by its compiled
``Activation.kernel``. The arrays of the passes are per-thread buffers reused from call to call
(:func:`scratch`). float32 by default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validate import (
    FLOAT_DTYPES,
    InputError,
    InputTypeError,
    check_array,
    check_choice,
    check_dtype,
    check_indices,
    check_int,
    check_memory,
    check_rng,
)
from ..activations import Activation, get_activation
from ..theory.archs import ARCHS, branch_scale
from ._pass import (
    _forward,
    _loss_and_grads,
)
from ._sampler import (
    _fill_normal,
)

__all__ = ["Network", "init_network", "forward", "loss_and_grads"]

DTYPES = FLOAT_DTYPES


@dataclass(eq=False)
class Network:
    """A random network of depth L: L hidden layers and a readout (docs/theory.md §1).

    Attributes
    ----------
    weights : list of ndarray
        ``depth + 1`` matrices: W¹ (N, N₀), W² … W^L (N, N), readout W^out (C, N).
    biases : list of ndarray
        ``depth + 1`` vectors: B¹ … B^L (N,), B^out (C,).
    activation : Activation
        A name such as ``"tanh"`` is converted.
    arch : {"ffnn", "resnet", "stable_resnet"}
    depth : int, optional
        L, the number of hidden layers; default ``len(weights) - 1``.
    sigma_w, sigma_b : float or None
        The initialisation it was drawn with (None if built by hand).

    Functions taking a network check that its shapes chain and its dtype is float32 or float64.
    """

    weights: list
    biases: list
    activation: Activation
    arch: str = "ffnn"
    depth: int | None = None
    sigma_w: float | None = None
    sigma_b: float | None = None

    def __post_init__(self):
        self.activation = get_activation(self.activation)
        if self.depth is None:
            self.depth = len(self.weights) - 1

    @property
    def alpha(self):
        """Scale of the residual branches (:func:`meanfield.theory.archs.branch_scale`), 1.0 for
        ``"ffnn"``: the kernels take a float and multiply no skip by it there."""
        alpha = branch_scale(self.arch, self.depth)
        return 1.0 if alpha is None else alpha

    @property
    def width(self):
        return self.weights[0].shape[0]

    @property
    def n_in(self):
        return self.weights[0].shape[1]

    @property
    def classes(self):
        return self.weights[-1].shape[0]

    @property
    def dtype(self):
        return self.weights[0].dtype

    @property
    def n_weights(self):
        """Total number of weights (biases excluded)."""
        return sum(w.size for w in self.weights)


# ------------------------------------------------------------------------------------------------
# Validation helpers
# ------------------------------------------------------------------------------------------------

def check_network(net):
    """``net`` if it is a :class:`Network` whose shapes chain (the check of every function taking
    one; shared by :mod:`meanfield.pruning`)."""
    if not isinstance(net, Network):
        raise InputTypeError(f"`net` == {type(net).__name__}: must be a meanfield Network "
                             f"(see init_network)")
    check_choice("arch", net.arch, ARCHS)
    L = net.depth
    if not (isinstance(L, int) and L >= 1 and len(net.weights) == L + 1 == len(net.biases)):
        raise InputError(f"`net` has depth {L!r}, {len(net.weights)} weight matrices and "
                         f"{len(net.biases)} bias vectors: must be L >= 1, L + 1 and L + 1")
    if net.dtype.type not in DTYPES:
        raise InputTypeError(f"`net` has dtype {net.dtype}: must be float32 or float64")
    N = net.width
    for l, (w, b) in enumerate(zip(net.weights, net.biases)):
        fan_in = net.n_in if l == 0 else N
        fan_out = net.classes if l == L else N
        if np.shape(w) != (fan_out, fan_in) or np.shape(b) != (fan_out,):
            raise InputError(f"`net` layer {l}: weights {np.shape(w)} and biases {np.shape(b)}; "
                             f"must be ({fan_out}, {fan_in}) and ({fan_out},)")
    return net


def check_inputs(net, X):
    """``X`` as a C-contiguous (batch, n_in) array of ``net``'s dtype, batch >= 1, finite."""
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError):  # ragged nests
        raise InputTypeError(f"`X`: must be a (batch, {net.n_in}) array of real numbers") from None
    if arr.dtype.kind not in "iuf":
        raise InputTypeError(f"`X` has dtype {arr.dtype}: must be real numbers")
    if arr.ndim != 2 or arr.shape[1] != net.n_in:
        raise InputError(f"`X` has shape {arr.shape}: must be (batch, {net.n_in})")
    if arr.shape[0] == 0:
        raise InputError("`X` has shape (0, ...): must hold at least one input")
    out = np.ascontiguousarray(arr, dtype=net.dtype)
    if not np.isfinite(out).all():  # nan in, nan loss out: refused instead of propagated
        raise InputError(f"`X` holds {out.ravel()[np.flatnonzero(~np.isfinite(out))[0]]!r} "
                         f"(in {net.dtype}): must be finite")
    return out


def check_labels(net, y, batch):
    """``y`` as ``batch`` int64 class labels in [0, net.classes): they index the logits in a numba
    kernel, which checks no bounds."""
    return check_indices("y", y, net.classes, shape=(batch,))


def check_finite(net, values, what):
    """Refuse (``InputError`` naming σ_w, σ_b and the depth) results of ``net`` that overflowed its
    dtype: a strongly chaotic float32 network (σ_w large, gradients growing like χ^L) makes inf and
    nan scores, from which a critical sparsity or a mask would be garbage, silently (nan compares
    false: s_cr = 0). ``values``: an array or a list of them."""
    arrays = values if isinstance(values, (list, tuple)) else [values]
    if all(np.isfinite(a).all() for a in arrays):
        return values
    raise InputError(f"`sigma_w` == {net.sigma_w!r}, `sigma_b` == {net.sigma_b!r} at depth "
                     f"{net.depth}: the {what} of this {net.dtype} network overflow (inf or nan); "
                     f"use a smaller sigma_w, sigma_b or depth, or float64")


def check_masks(net, masks, name="masks"):
    """``masks`` (or any list of arrays called ``name``) shaped like ``net.weights``, or None."""
    if masks is None:
        return None
    masks = list(masks)
    if len(masks) != len(net.weights):
        raise InputError(f"`{name}` has {len(masks)} arrays: must have {len(net.weights)} "
                         f"(one per weight matrix, readout included)")
    out = []
    for l, (m, w) in enumerate(zip(masks, net.weights)):
        m = np.asarray(m)
        if m.shape != w.shape:
            raise InputError(f"`{name}[{l}]` has shape {m.shape}: must be {w.shape}")
        out.append(m)
    return out


def _weights(net, masks):
    """The weights the passes use: δ ∘ W with masks, C-contiguous, in the network's dtype."""
    dt = net.dtype
    if masks is None:
        return [np.ascontiguousarray(w, dt) for w in net.weights]
    return [np.ascontiguousarray(w * m.astype(dt, copy=False), dt)
            for w, m in zip(net.weights, masks)]


# ------------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------------

def init_network(activation, width, depth, sigma_w, sigma_b, *, n_in=None, classes=10,
                 arch="ffnn", rng, dtype=np.float32):
    """Draw a random network: W^l_ij ~ N(0, σ_w²/fan_in), B^l_i ~ N(0, σ_b²) (docs/theory.md §1).

    Parameters
    ----------
    activation : str or Activation
    width : int >= 1
        N, the width of every hidden layer.
    depth : int >= 1
        L, the number of hidden layers (the readout comes on top).
    sigma_w : float > 0
    sigma_b : float >= 0
    n_in : int >= 1, optional
        N₀, the input dimension; default ``width``.
    classes : int >= 2, default 10
        C, the number of outputs.
    arch : {"ffnn", "resnet", "stable_resnet"}
        Plain feed-forward, residual (branch scale 1) or Stable ResNet (branch scale 1/√L; Hayou
        et al. 2021). See the module docstring.
    rng : numpy.random.Generator
        The only source of randomness. One pass of :func:`standard_normal` gives, in this order,
        all the weights (W¹, W², …, W^L, W^out, each row-major) and then all the biases (B¹, …,
        B^out), each as scale · Z with Z a float32 normal and the product rounded to ``dtype``;
        so the float32 and float64 networks of one seed agree to float32 rounding.
    dtype : numpy.float32 or numpy.float64, default float32

    Returns
    -------
    Network
        The weights and biases are views into one contiguous buffer.

    Raises
    ------
    ValueError, TypeError
        A parameter out of range or of the wrong type; the message names it.

    References
    ----------
    docs/theory.md §1; Hayou, Ton, Doucet, Teh (2021), *Robust Pruning at Initialization*, §2.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.nets import init_network
    >>> net = init_network("tanh", 8, 3, 1.5, 0.1, n_in=4, classes=2, rng=np.random.default_rng(0))
    >>> [w.shape for w in net.weights]
    [(8, 4), (8, 8), (8, 8), (2, 8)]
    >>> net.dtype
    dtype('float32')
    """
    act = get_activation(activation)
    width = check_int("width", width, 1)
    depth = check_int("depth", depth, 1)
    sigma_w = float(check_array("sigma_w", sigma_w, scalar=True))
    sigma_b = float(check_array("sigma_b", sigma_b, scalar=True))
    n_in = width if n_in is None else check_int("n_in", n_in, 1)
    classes = check_int("classes", classes, 2)
    arch = check_choice("arch", arch, ARCHS)
    rng = check_rng(rng)
    dt = check_dtype(dtype)
    return draw_network(act, width, depth, sigma_w, sigma_b, n_in, classes, arch, rng, dt)


def draw_network(act, width, depth, sigma_w, sigma_b, n_in, classes, arch, rng, dtype,
                 buffer=None):
    """:func:`init_network` for validated inputs; ``buffer(size)`` may supply the flat array.
    A network that cannot fit in memory is refused before anything is allocated."""
    size = parameter_count(width, depth, n_in, classes)
    check_memory(f"`width` == {width}, `depth` == {depth}, `n_in` == {n_in}, `classes` == "
                 f"{classes} ({size} parameters of {np.dtype(dtype).itemsize} bytes)",
                 size * np.dtype(dtype).itemsize)
    shapes = layer_shapes(width, depth, n_in, classes)
    flat = np.empty(size, dtype) if buffer is None else buffer(size)
    weights, biases = draw_parameters(rng, shapes, sigma_w, sigma_b, flat)
    return Network(weights, biases, act, arch, depth, sigma_w, sigma_b)


def parameter_count(width, depth, n_in, classes):
    """Weights and biases of a network, computed from the sizes alone (Python ints: no overflow
    whatever the request)."""
    return (width * n_in + width) + (depth - 1) * (width * width + width) + (classes * width
                                                                               + classes)


def layer_shapes(width, depth, n_in, classes):
    """Shapes of W¹ … W^L, W^out."""
    return [(width, n_in)] + [(width, width)] * (depth - 1) + [(classes, width)]


def draw_parameters(rng, shapes, sigma_w, sigma_b, flat):
    """Fill ``flat`` with all the weights (layer by layer, row-major) then all the biases, in one
    pass of the sampler; return the lists of views W^l and B^l."""
    sizes = [a * b for a, b in shapes] + [a for a, _ in shapes]
    stops = np.cumsum(sizes).astype(np.int64)
    scales = np.array([sigma_w / math.sqrt(b) for _, b in shapes] + [sigma_b] * len(shapes))
    _fill_normal(rng, flat, stops, scales)
    views = [flat[e - n:e] for e, n in zip(stops, sizes)]
    n = len(shapes)
    return [v.reshape(sh) for v, sh in zip(views[:n], shapes)], views[n:]


def forward(net, X, masks=None):
    """Logits of the network for a batch of inputs.

    Parameters
    ----------
    net : Network
    X : array_like, shape (B, N₀)
        One input per row; converted to ``net.dtype``.
    masks : list of array_like, optional
        0/1 (or bool) arrays shaped like ``net.weights``; the network then uses δ ∘ W
        (docs/theory.md §1), so a pruned weight's value has no effect.

    Returns
    -------
    ndarray, shape (B, C), dtype ``net.dtype``

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.nets import init_network, forward
    >>> rng = np.random.default_rng(1)
    >>> net = init_network("tanh", 6, 2, 1.2, 0.1, classes=3, rng=rng)
    >>> forward(net, np.ones((5, 6))).shape
    (5, 3)
    """
    net = check_network(net)
    X = check_inputs(net, X)
    masks = check_masks(net, masks)
    logits, _ = _forward(net, _weights(net, masks), X)
    return logits


def loss_and_grads(net, X, y, masks=None):
    """Mean cross-entropy loss and its gradients with respect to every weight and bias.

    ℒ = −(1/B) Σ_b log softmax(logits_b)_{y_b}, backpropagated through the network (one BLAS
    product per layer forward and two backward).

    Parameters
    ----------
    net : Network
    X : array_like, shape (B, N₀)
    y : array_like of int, shape (B,)
        Class labels in [0, C).
    masks : list of array_like, optional
        As in :func:`forward`. The gradients are with respect to the underlying weights W of the
        masked network δ ∘ W, so a pruned weight's gradient is 0.

    Returns
    -------
    loss : float
    grad_w : list of ndarray
        ∂ℒ/∂W^l, shaped like ``net.weights``, dtype ``net.dtype``.
    grad_b : list of ndarray
        ∂ℒ/∂B^l, shaped like ``net.biases``.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.nets import init_network, loss_and_grads
    >>> rng = np.random.default_rng(2)
    >>> net = init_network("tanh", 6, 2, 1.2, 0.1, classes=3, rng=rng)
    >>> loss, gw, gb = loss_and_grads(net, rng.standard_normal((4, 6)), [0, 1, 2, 0])
    >>> [g.shape for g in gw]
    [(6, 6), (6, 6), (3, 6)]
    """
    net = check_network(net)
    X = check_inputs(net, X)
    y = check_labels(net, y, X.shape[0])
    masks = check_masks(net, masks)
    weights = _weights(net, masks)
    grad_w = [np.empty_like(w) for w in weights]
    grad_b = [np.empty_like(b) for b in net.biases]
    loss = _loss_and_grads(net, weights, X, y, grad_w, grad_b)
    if masks is not None:
        for g, m in zip(grad_w, masks):
            g *= m.astype(g.dtype, copy=False)
    return loss, grad_w, grad_b


