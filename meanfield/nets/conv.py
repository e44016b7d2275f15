"""Finite random convolutional networks: initialisation, forward pass, backpropagation and the
exact Hessian-vector product (docs/convolutional.md; issue 22).

Three architectures, ``depth`` L conv layers each (k × k kernels, k odd, circular padding,
cross-correlation), then φ(y^L) averaged over its positions and the dense readout
logits = W^out · pool + B^out; the loss is the mean cross-entropy:

* ``"cnn"``: y¹ = W¹ ⊛ x + B¹, y^l = W^l ⊛ φ(y^{l−1}) + B^l;
* ``"conv_resnet"`` (α = 1), ``"conv_stable_resnet"`` (α = 1/√L): the same y¹, then the blocks
  y^l = S^l(y^{l−1}) + α (W^l ⊛ φ(y^{l−1}) + B^l), S^l the identity — as the dense ResNets of
  :mod:`meanfield.nets.network`.

``stages`` (default 1) gives the CIFAR-style layout: layers 2 … L split into ``stages`` runs as
even as can be (the earlier runs one longer); the first layer of run s ≥ 2 has stride 2 and twice
the channels (N, 2N, 4N, …; h, h/2, h/4, … positions), and in a ResNet its skip S^l is a 1 × 1
stride-2 projection P^l ⊛ y^{l−1}, a weight (scored and pruned, its own layer), no bias.

W ~ N(0, σ_w²/fan_in) for every weight (fan_in = C k² for a conv, C for a projection, N for the
readout; as :func:`meanfield.torch.init_eoc_` draws a torch model's), biases N(0, σ_b²): the
FFNN's conventions (:mod:`meanfield.nets.network`), which the CNN is exactly for k = 1, h = 1.

Weights are stored as torch stores them, (out, in, k, k) (the readout (classes, N)), in forward
order: each conv layer, its projection right after it, the readout last; ``biases`` aligned with
them (None for a projection). Each conv is one BLAS product on the im2col matrix of its input:
the (B h_out², k² C) patches, column (a k + b) C + c holding channel c at offset (a − r, b − r)
from position (s i, s j), r = k // 2, s the stride; two small compiled kernels copy the patches
and add them back in the backward pass. Activations are kept channel-last, (B, h, h, C).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._jit import jit_pass
from .._validate import (
    InputError,
    check_array,
    check_choice,
    check_dtype,
    check_int,
    check_kernel_size,
    check_memory,
    check_rng,
)
from ..activations import Activation, get_activation
from ..theory.archs import CONV_ARCHS, conv_branch_scale
from ._pass import scratch
from ._sampler import standard_normal

__all__ = ["ConvNetwork", "ConvLayer", "conv_layout", "check_stages", "init_conv_network",
           "conv_forward", "conv_loss_and_grads", "conv_hessian_vector_product",
           "conv_snip_scores", "conv_grasp_scores", "draw_conv_trial", "conv_trial_bytes",
           "channel_scores"]


@dataclass(frozen=True)
class ConvLayer:
    """One weight array of a conv network, in the order of ``ConvNetwork.weights``.

    Attributes
    ----------
    name : str
        "conv1" … "convL", "shortcut{l}" (the projection of block l), "readout".
    kind : {"conv", "shortcut", "readout"}
    stride : int
        1 or 2 (a conv opening a stage, its projection).
    """

    name: str
    kind: str
    stride: int = 1


def check_stages(image_size, stages):
    """``stages`` as an int >= 1 whose stages can halve ``image_size`` (a checked int): h a
    multiple of 2^(stages − 1)."""
    S = check_int("stages", stages, 1)
    if image_size % 2 ** (S - 1):
        raise InputError(f"`image_size` == {image_size} with `stages` == {S}: must be a multiple "
                         f"of {2 ** (S - 1)} (each stage halves it)")
    return S


def conv_layout(arch, depth, stages=1):
    """The weight arrays of a conv network of ``depth`` conv layers, in order (module docstring).

    Parameters
    ----------
    arch : {"cnn", "conv_resnet", "conv_stable_resnet"}
    depth : int >= 1
    stages : int >= 1, default 1
        With ``stages`` > 1, ``depth`` must be > ``stages`` (a run of at least one layer a stage).

    Returns
    -------
    tuple of ConvLayer

    Examples
    --------
    >>> [l.name for l in conv_layout("conv_resnet", 5, stages=2)]
    ['conv1', 'conv2', 'conv3', 'conv4', 'shortcut4', 'conv5', 'readout']
    """
    arch = check_choice("arch", arch, CONV_ARCHS)
    L = check_int("depth", depth, 1)
    S = check_int("stages", stages, 1)
    if S > 1 and L <= S:
        raise InputError(f"`depth` == {L} with `stages` == {S}: the {S} stages need at least one "
                         f"conv layer each after the first; give depth >= {S + 1}")
    first = set()
    if S > 1:  # layers 2 … L in S runs, the earlier ones longer
        sizes = [len(r) for r in np.array_split(np.arange(L - 1), S)]
        first = {2 + sum(sizes[:s]) for s in range(1, S)}
    out = []
    for l in range(1, L + 1):
        stride = 2 if l in first else 1
        out.append(ConvLayer(f"conv{l}", "conv", stride))
        if stride == 2 and arch != "cnn":
            out.append(ConvLayer(f"shortcut{l}", "shortcut", 2))
    return tuple(out) + (ConvLayer("readout", "readout"),)


@dataclass(eq=False)
class ConvNetwork:
    """A random conv network (module docstring).

    Attributes
    ----------
    weights : list of ndarray
        In the order of ``layers``: conv weights (C_out, C_in, k, k), projections
        (C_out, C_in, 1, 1), the readout (classes, C_L).
    biases : list of ndarray or None
        (C_out,) per conv, None per projection, (classes,) for the readout.
    activation : Activation
    image_size : int
        h, the input's positions per side.
    sigma_w, sigma_b : float or None
    arch : {"cnn", "conv_resnet", "conv_stable_resnet"}, default "cnn"
    stages : int, default 1
    layers : tuple of ConvLayer
        Derived from the others.
    """

    weights: list
    biases: list
    activation: Activation
    image_size: int
    sigma_w: float | None = None
    sigma_b: float | None = None
    arch: str = "cnn"
    stages: int = 1
    layers: tuple = field(init=False)

    def __post_init__(self):
        self.activation = get_activation(self.activation)
        shortcuts = (self.stages - 1) if self.arch != "cnn" else 0
        self.layers = conv_layout(self.arch, len(self.weights) - 1 - shortcuts, self.stages)
        if len(self.layers) != len(self.weights):
            raise InputError(f"{len(self.weights)} weight arrays: arch={self.arch!r}, "
                             f"stages={self.stages} needs {len(self.layers)}")

    @property
    def depth(self):
        """L, the conv layers."""
        return sum(l.kind == "conv" for l in self.layers)

    @property
    def alpha(self):
        """The residual branches' scale (None for "cnn")."""
        return conv_branch_scale(self.arch, self.depth)

    @property
    def kernel_size(self):
        return self.weights[0].shape[2]

    @property
    def width(self):
        """N, the channels of the first stage."""
        return self.weights[0].shape[0]

    @property
    def in_channels(self):
        return self.weights[0].shape[1]

    @property
    def classes(self):
        return self.weights[-1].shape[0]

    @property
    def dtype(self):
        return self.weights[0].dtype

    @property
    def n_weights(self):
        return sum(w.size for w in self.weights)


def _shapes(layers, N, C0, k, classes):
    """The weight shapes of ``layers``: channels double at each stride-2 conv."""
    shapes, C = [], C0
    for layer in layers:
        if layer.kind == "conv":
            out = N if C == C0 and not shapes else C * layer.stride
            shapes.append((out, C, k, k))
            prev, C = C, out
        elif layer.kind == "shortcut":
            shapes.append((C, prev, 1, 1))
        else:
            shapes.append((classes, C))
    return shapes


def init_conv_network(activation, width, depth, sigma_w, sigma_b, *, image_size=8, kernel_size=3,
                      in_channels=None, classes=10, arch="cnn", stages=1, rng, dtype=np.float32):
    """Draw a random conv network (module docstring): every weight from N(0, σ_w²/fan_in), biases
    N(0, σ_b²), in the order of :func:`conv_layout` (each layer's weights, then its bias) from
    ``rng``.

    Parameters
    ----------
    activation : str or Activation
    width, depth : int >= 1
        N channels (of the first stage), L conv layers.
    sigma_w : float > 0
    sigma_b : float >= 0
    image_size : int >= 1, default 8
        h; with ``stages`` S it must be a multiple of 2^(S−1).
    kernel_size : odd int >= 1, default 3
    in_channels : int, default ``width``
    classes : int >= 2, default 10
    arch : {"cnn", "conv_resnet", "conv_stable_resnet"}, default "cnn"
    stages : int >= 1, default 1
    rng : numpy.random.Generator
    dtype : numpy.float32 or numpy.float64

    Returns
    -------
    ConvNetwork
    """
    act = get_activation(activation)
    N = check_int("width", width, 1)
    h = check_int("image_size", image_size, 1)
    k = check_kernel_size(kernel_size)
    C0 = N if in_channels is None else check_int("in_channels", in_channels, 1)
    C = check_int("classes", classes, 2)
    sw = float(check_array("sigma_w", sigma_w, scalar=True))
    sb = float(check_array("sigma_b", sigma_b, scalar=True))
    rng, dt = check_rng(rng), check_dtype(dtype)
    layers = conv_layout(arch, depth, stages)
    S = check_stages(h, stages)
    shapes = _shapes(layers, N, C0, k, C)
    n = sum(math.prod(s) for s in shapes)
    check_memory(f"`width` == {N}, `depth` == {depth}, `kernel_size` == {k} ({n} weights)",
                 n * np.dtype(dt).itemsize)
    weights, biases = [], []
    for layer, s in zip(layers, shapes):
        weights.append(standard_normal(rng, s, dt) * dt.type(sw / math.sqrt(math.prod(s[1:]))))
        biases.append(None if layer.kind == "shortcut"
                      else standard_normal(rng, (s[0],), dt) * dt.type(sb))
    return ConvNetwork(weights, biases, act, h, sw, sb, check_choice("arch", arch, CONV_ARCHS), S)


@jit_pass
def _im2col_kernel(H, k, s, P):
    """P[n, i, j, a, b, :] = H[n, (s i + a − r) mod h, (s j + b − r) mod h, :]: one contiguous
    run of C values at a time (numpy's slice copies of 16-value runs were the pass's slowest
    part)."""
    B, h, _, C = H.shape
    ho = P.shape[1]
    r = k // 2
    for n in range(B):
        for i in range(ho):
            for j in range(ho):
                for a in range(k):
                    ii = (s * i + a - r) % h
                    for b in range(k):
                        jj = (s * j + b - r) % h
                        for c in range(C):
                            P[n, i, j, a, b, c] = H[n, ii, jj, c]


@jit_pass
def _col2im_kernel(dP, k, s, out):
    """The adjoint: out[n, (s i + a − r) mod h, (s j + b − r) mod h, :] += dP[n, i, j, a, b, :]."""
    B, h, _, C = out.shape
    ho = dP.shape[1]
    r = k // 2
    for n in range(B):
        for i in range(ho):
            for j in range(ho):
                for a in range(k):
                    ii = (s * i + a - r) % h
                    for b in range(k):
                        jj = (s * j + b - r) % h
                        for c in range(C):
                            out[n, ii, jj, c] += dP[n, i, j, a, b, c]


def _im2col(H, k, s=1, name=None):
    """(B, h, h, C) → (B (h/s)², k² C) patches, circularly (module docstring); in the scratch
    buffer ``name`` if given (:func:`meanfield.nets._pass.scratch`)."""
    B, h, _, C = H.shape
    ho = h // s
    shape = (B, ho, ho, k, k, C)
    P = np.empty(shape, H.dtype) if name is None else scratch(name, shape, H.dtype)
    _im2col_kernel(np.ascontiguousarray(H), k, s, P)
    return P.reshape(B * ho * ho, k * k * C)


def _col2im(dP, shape, k, s=1, name=None):
    """The adjoint of :func:`_im2col`: (B (h/s)², k² C) → ``shape`` (B, h, h, C) (in the
    scratch buffer ``name`` if given)."""
    B, h, _, C = shape
    ho = h // s
    if name is None:
        out = np.zeros(shape, dP.dtype)
    else:
        out = scratch(name, shape, dP.dtype)
        out.fill(0)
    _col2im_kernel(np.ascontiguousarray(dP).reshape(B, ho, ho, k, k, C), k, s, out)
    return out


def _matrix(w):
    """A conv weight (N, C, k, k) as the (N, k² C) matrix that multiplies :func:`_im2col`."""
    return w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)


def _weight_grad(dY, P, shape):
    """∂ℒ/∂W (shape (N, C, k, k)) from dY (rows, N) and the patches P (rows, k² C)."""
    N, C, k, _ = shape
    return (dY.T @ P).reshape(N, k, k, C).transpose(0, 3, 1, 2)


def _phi(act, Y, order=0, name=None):
    # numpy's vectorised tanh for tanh (as the dense pass; into the scratch buffer ``name`` if
    # given), the compiled kernels otherwise
    if act.name == "tanh" and order == 0:
        return np.tanh(Y, out=None if name is None else scratch(name, Y.shape, Y.dtype))
    return act(Y, order).astype(Y.dtype, copy=False)


def _dphi(act, Y, H, name=None):
    # φ' = 1 − φ² for tanh, from the activations already made (as the dense pass)
    if act.name != "tanh":
        return act(Y, 1).astype(Y.dtype, copy=False)
    out = np.multiply(H, H, out=None if name is None else scratch(name, H.shape, H.dtype))
    return np.subtract(1.0, out, out=out)


def _check_images(net, X):
    X = np.asarray(X)
    h = net.image_size
    if X.ndim != 4 or X.shape[1:] != (net.in_channels, h, h):
        raise InputError(f"`X` has shape {X.shape}: must be (B, {net.in_channels}, {h}, {h})")
    return np.ascontiguousarray(X.transpose(0, 2, 3, 1), dtype=net.dtype)


def _check_labels(net, y, B):
    y = np.asarray(y)
    if y.shape != (B,) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 \
            or y.max() >= net.classes:
        raise InputError(f"`y` must be {B} integer labels in 0 … {net.classes - 1}")
    return y


def _forward(net, H0, W, V=None):
    """The forward pass with weights ``W`` (a list like ``net.weights``: the masked ones, or a
    float64 copy) and, given a direction ``V``, its tangents (dotted values, ``t`` + the name).

    Returns ``(cache, H, tH, z)``: per conv layer ``(l, P, tP, Y, tY, in_shape, sub, tsub,
    proj, H)`` (patches, pre-activations, the input's shape; for a block with a projection its
    index ``proj`` and the strided input ``sub`` it multiplies; the activations), the last
    activations φ(y^L) and their tangent, the logits."""
    act, k, alpha = net.activation, net.kernel_size, net.alpha
    tan = V is not None
    B = H0.shape[0]
    layers = net.layers
    cache = []
    H, tH, Yprev, tYprev = H0, None, None, None
    for l, layer in enumerate(layers):
        if layer.kind != "conv":
            continue
        s, w, i = layer.stride, W[l], len(cache)
        ho = H.shape[1] // s
        # the big arrays in scratch buffers, one per layer, reused from call to call (freshly
        # mapped memory cost as much as the products); none of them leaves the pass
        P = _im2col(H, k, s, ("conv_P", i))
        # (k² C, N) contiguous: numpy's product with the transposed view was 25 % slower
        U = np.matmul(P, np.ascontiguousarray(_matrix(w).T),
                      out=scratch(("conv_U", i), (P.shape[0], w.shape[0]), P.dtype))
        U += net.biases[l]
        tU = tP = None
        if tan:
            tU = P @ _matrix(V[l]).T
            if tH is not None:
                tP = _im2col(tH, k, s)
                tU += tP @ _matrix(w).T
        proj = l + 1 if layers[l + 1].kind == "shortcut" else None
        sub = tsub = None
        if alpha is not None and Yprev is not None:
            if proj is None:
                skip, tskip = Yprev.reshape(U.shape), tYprev
            else:
                sub = np.ascontiguousarray(Yprev[:, ::s, ::s, :]).reshape(B * ho * ho, -1)
                skip = sub @ W[proj][:, :, 0, 0].T
                if tan:
                    tsub = np.ascontiguousarray(tYprev.reshape(Yprev.shape)[:, ::s, ::s, :])
                    tsub = tsub.reshape(sub.shape)
                    tskip = tsub @ W[proj][:, :, 0, 0].T + sub @ V[proj][:, :, 0, 0].T
            tY = tskip.reshape(tU.shape) + alpha * tU if tan else None
            if alpha != 1.0:
                U *= U.dtype.type(alpha)
            U += skip
            Y = U
        else:
            Y, tY = U, tU
        Y = Y.reshape(B, ho, ho, -1)
        in_shape = H.shape
        H = _phi(act, Y, name=("conv_H", i))
        cache.append((l, P, tP, Y, tY, in_shape, sub, tsub, proj, H))
        tH = _dphi(act, Y, H) * tY.reshape(Y.shape) if tan else None
        Yprev, tYprev = Y, tY
    z = H.mean(axis=(1, 2)) @ W[-1].T + net.biases[-1]
    return cache, H, tH, z


def _pass(net, H0, y, W, V=None):
    """The loss, its gradients with respect to the weights ``W`` (as :func:`_forward`) and,
    given a direction ``V``, the Hessian-vector product H V, by forward-mode differentiation of
    this pass (Pearlmutter's R-operator; biases held fixed). Returns ``(loss, grads, hvp)``."""
    act, k, alpha = net.activation, net.kernel_size, net.alpha
    tan = V is not None
    cache, H, tH, z = _forward(net, H0, W, V)
    B, hL = H.shape[0], H.shape[1]
    pooled = H.mean(axis=(1, 2))
    z64 = z.astype(np.float64)
    z64 -= z64.max(axis=1, keepdims=True)
    p = np.exp(z64)
    p /= p.sum(axis=1, keepdims=True)
    loss = float(-np.log(p[np.arange(B), y]).mean())
    d = p.copy()
    d[np.arange(B), y] -= 1.0
    d = (d / B).astype(H.dtype)
    grads = [None] * len(W)
    hvp = [None] * len(W) if tan else None
    grads[-1] = d.T @ pooled
    wout, YL, tYL = W[-1], cache[-1][3], cache[-1][4]
    A = (d @ wout / H.dtype.type(hL * hL))[:, None, None, :]
    dY = np.multiply(A, _dphi(act, YL, H, "conv_d1"),
                     out=scratch(("conv_G", len(cache) % 2), H.shape, H.dtype))
    if tan:
        tpooled = tH.mean(axis=(1, 2))
        tz = tpooled @ wout.T + pooled @ V[-1].T
        td = p * (tz - (p * tz).sum(axis=1, keepdims=True)) / B
        hvp[-1] = td.T @ pooled + d.T @ tpooled
        tA = ((td @ wout + d @ V[-1]) / (hL * hL))[:, None, None, :]
        tdY = tA * _dphi(act, YL, H) + A * _phi(act, YL, 2) * tYL.reshape(YL.shape)
    for i in range(len(cache) - 1, -1, -1):
        l, P, tP, _, _, in_shape, sub, tsub, proj, _ = cache[i]
        s, w = net.layers[l].stride, W[l]
        N = w.shape[0]
        c = H.dtype.type(alpha if alpha is not None and i > 0 else 1.0)
        dU = dY.reshape(-1, N) if c == 1 else dY.reshape(-1, N) * c
        grads[l] = _weight_grad(dU, P, w.shape)
        if tan:
            tdU = tdY.reshape(-1, N) * c
            hvp[l] = _weight_grad(tdU, P, w.shape)
            if tP is not None:
                hvp[l] += _weight_grad(dU, tP, w.shape)
        if i == 0:
            break
        Yp, tYp, Hp = cache[i - 1][3], cache[i - 1][4], cache[i - 1][9]
        dP = np.matmul(dU, _matrix(w), out=scratch("conv_dP", (dU.shape[0], P.shape[1]),
                                                     dU.dtype))
        # ∂ℒ/∂y^{l−1} in the buffer of the other parity from dY's, which the skip still reads
        G = _col2im(dP, in_shape, k, s, ("conv_G", i % 2))
        d1 = _dphi(act, Yp, Hp, "conv_d1")
        if tan:
            tG = _col2im(tdU @ _matrix(w) + dU @ _matrix(V[l]), in_shape, k, s)
            ntdY = tG * d1 + G * _phi(act, Yp, 2) * tYp.reshape(Yp.shape)
        G *= d1
        ndY = G
        if alpha is not None:  # the skip's share of ∂ℒ/∂y^{l−1}
            if proj is None:
                ndY += dY
                if tan:
                    ntdY += tdY
            else:
                flat, pm = dY.reshape(-1, N), W[proj][:, :, 0, 0]
                grads[proj] = (flat.T @ sub)[:, :, None, None]
                view = ndY[:, ::s, ::s, :]
                view += (flat @ pm).reshape(view.shape)
                if tan:
                    tflat = tdY.reshape(-1, N)
                    hvp[proj] = (tflat.T @ sub + flat.T @ tsub)[:, :, None, None]
                    tview = ntdY[:, ::s, ::s, :]
                    tview += (tflat @ pm + flat @ V[proj][:, :, 0, 0]).reshape(tview.shape)
        dY = ndY
        if tan:
            tdY = ntdY
    return loss, grads, hvp


def _masked(net, masks):
    return net.weights if masks is None else [w * m for w, m in zip(net.weights, masks)]


def conv_forward(net, X, masks=None):
    """Logits (B, classes) of ``net`` for images ``X`` (B, C₀, h, h) (``masks``: as
    :func:`conv_loss_and_grads`)."""
    return _forward(net, _check_images(net, X), _masked(net, masks))[3]


def conv_loss_and_grads(net, X, y, masks=None):
    """The mean cross-entropy of ``net`` on (X, y) and its gradients with respect to the weights
    (shaped like ``net.weights``), by backpropagation through the im2col products.

    Parameters
    ----------
    net : ConvNetwork
    X : array_like, shape (B, C₀, h, h)
    y : array_like of int, shape (B,)
    masks : list of arrays shaped like the weights, optional
        0/1: the loss of the masked network and its gradients with respect to the kept weights
        (0 at the pruned ones), as :func:`meanfield.nets.loss_and_grads`.

    Returns
    -------
    (loss, grads) : (float, list of ndarray)
    """
    H0 = _check_images(net, X)
    y = _check_labels(net, y, H0.shape[0])
    loss, grads, _ = _pass(net, H0, y, _masked(net, masks))
    if masks is not None:  # the dense weights' gradient, as meanfield.nets.loss_and_grads
        grads = [g * m for g, m in zip(grads, masks)]
    return loss, grads


def conv_hessian_vector_product(net, X, y, v):
    """H v, the Hessian of the mean cross-entropy with respect to the weights times ``v``, exactly
    (Pearlmutter's R-operator on the pass, in float64; biases held fixed), as
    :func:`meanfield.pruning.hessian_vector_product` for the dense nets. Needs φ''.

    Parameters
    ----------
    net : ConvNetwork
    X : array_like, shape (B, C₀, h, h)
    y : array_like of int, shape (B,)
    v : list of array_like, shaped like ``net.weights``

    Returns
    -------
    list of ndarray, float64, shaped like ``net.weights``
    """
    H0 = _check_images(net, X).astype(np.float64)
    y = _check_labels(net, y, H0.shape[0])
    if len(v) != len(net.weights) or any(np.shape(a) != w.shape for a, w in zip(v, net.weights)):
        raise InputError("`v` must be a list of arrays shaped like the weights")
    if not net.activation.has_d2:
        raise InputError(f"activation {net.activation.name!r} has no second derivative: "
                         f"the Hessian-vector product needs one (build it with d2phi)")
    net64 = _as_float64(net)
    return _pass(net64, H0, y, net64.weights, [np.asarray(a, np.float64) for a in v])[2]


def _as_float64(net, readout_divisor=1.0):
    """A float64 copy of ``net``, its readout's weights and bias divided by ``readout_divisor``."""
    ws = [w.astype(np.float64) for w in net.weights]
    bs = [None if b is None else b.astype(np.float64) for b in net.biases]
    ws[-1] /= readout_divisor
    bs[-1] /= readout_divisor
    return ConvNetwork(ws, bs, net.activation, net.image_size, net.sigma_w, net.sigma_b,
                       net.arch, net.stages)


def conv_snip_scores(net, X, y):
    """SNIP scores |W ⊙ ∂ℒ/∂W| of every weight of a conv network (readout included), shaped like
    the weights (docs/theory.md §4)."""
    _, grads = conv_loss_and_grads(net, X, y)
    return [np.abs(w * g) for w, g in zip(net.weights, grads)]


def conv_grasp_scores(net, X, y, temperature):
    """GraSP scores S = −W ∘ (H g) of a conv network on the loss of softmax(z / T), in float64, as
    :func:`meanfield.pruning.grasp_scores` computes them for the dense nets (same derivation:
    the temperature divides the readout)."""
    H0 = _check_images(net, X).astype(np.float64)
    y = _check_labels(net, y, H0.shape[0])
    T = float(temperature)
    net64 = _as_float64(net, T)
    _, g, _ = _pass(net64, H0, y, net64.weights)
    g[-1] = g[-1] / (T * T)
    hg = _pass(net64, H0, y, net64.weights, g)[2]
    return [-w * v for w, v in zip(net64.weights, hg)]


def channel_scores(scores):
    """Per-layer 2-d arrays (fan_out, fan_in) of a conv network's scores for the "disconnect"
    event: a conv weight array (N, C, k, k) becomes its maximum over the k × k offsets (with
    circular padding and a global average, channel i reaches channel j through any kept offset),
    the readout stays as it is."""
    return [s.max(axis=(2, 3)) if s.ndim == 4 else s for s in scores]


def draw_conv_trial(act, width, depth, sigma_w, sigma_b, batch, classes, image_size, kernel_size,
                    rng, dtype=np.float32, arch="cnn", stages=1):
    """One Monte Carlo trial's draws, in this order from ``rng``: the conv network (in_channels =
    width), the images X ~ N(0, 1) of shape (batch, width, h, h) and labels uniform over the
    classes."""
    net = init_conv_network(act, width, depth, sigma_w, sigma_b, image_size=image_size,
                            kernel_size=kernel_size, classes=classes, arch=arch, stages=stages,
                            rng=rng, dtype=dtype)
    X = standard_normal(rng, (batch, width, image_size, image_size), dtype)
    return net, X, rng.integers(classes, size=batch)


def conv_trial_bytes(width, depth, batch, classes, image_size, kernel_size, stages=1):
    """Memory of one trial (float32), bounded above: the weights and their scores, the forward
    cache (Y and patches per layer) and the backward's buffers, all at the widest stage's
    channels (2^(S−1) N; the positions shrink as the channels grow). Python ints."""
    N, P, kk = width * 2 ** (stages - 1), batch * image_size ** 2, kernel_size ** 2
    weights = depth * N * N * kk + classes * N
    return 4 * (3 * weights + depth * P * N * (2 + kk) + 4 * P * N * kk + 2 * batch * classes)
