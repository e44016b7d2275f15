"""The layers next to the readout, sampled exactly for the finite-width prediction
(``docs/critical_sparsity.md`` §5c).

Near the readout the finite-width fluctuations of the forward kernel and the readout error Δ are
not independent: the logits, hence Δ, are made from the very activations whose realised batch
kernel enters the gradient G = δᵀa / B. A pair of examples that happens to be more alike than
the mean-field kernel says has more alike outputs and a larger Δ_b · Δ_b′; summed over the B²
pairs this raises E[G²] of the last hidden layers by a factor of order 1 + B/N (1.5× at N = 50,
B = 128, chaotic tanh), which no class-space summary of the backward signal can carry. So each
draw simulates the top of a width-N network: :func:`burn_in` layers started from the mean-field law
of their pre-activations (so that the kernel entering the top layers fluctuates as in a deep
net), then the ``TOP_LAYERS`` hidden layers below the readout, the readout and a batch with
uniform labels. The top layers' gradients are kept exactly; their scores are laws of |W| · |G|
over the realised entries G_ij, with W a fresh Gaussian (the dependence of W on its own gradient
moves E[s_cr] by ≤ 0.001 for tanh). The backward signal the block passes down is written in the class
space of the chain below: rows v_i fitted to Δ by least squares, the rest per-example noise.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..nets._pass import _is_tanh
from ..nets._sampler import standard_normal
from ..pruning.critical import _widest_step
from ..theory.fixed import depth_scales
from ..theory.maps import _branch_scale

TOP_LAYERS = {"ffnn": 3, "resnet": 6, "stable_resnet": 6}
BURN_IN_DEPTH_SCALES = 2.5   # burn-in, in units of the forward depth scale max(ξ_q, ξ_c) …
MAX_BURN_IN = 16             # … at most this many layers (ξ_c is infinite on the EOC)
RESNET_BURN_IN = 2
MAX_ATOMS = 2 ** 20          # gradient entries kept per layer (evenly spaced quantiles beyond)
DISCONNECT_LAYERS = 10       # exact layers at each end of an FFNN for definition="disconnect"
# the chain's domain (collapse_range): an FFNN narrower than this is outside it …
WHOLE_WIDTH = 50
WHOLE_DEPTH_RATIO = 0.6      # … and, near the EOC, one at least this × N deep …
DISCONNECT_XI_C = 10.0       # … and, for "disconnect", one deeper than its exact ends from ξ_c ≥ this
MAX_WHOLE_WORK = 2 ** 30     # the largest L · N² · B of one draw of the simulated network


def top_layers(depth, arch, definition="layer"):
    """How many hidden layers of a depth-L network are in the exact block: the last three of an
    FFNN (the coupling decays like the forward kernel's fluctuations, over ξ_c layers, and the
    gap it leaves is ≤ 0.001 with the last two), the last six of a ResNet, whose first emptied
    layer is spread over its top layers (the stream's gradient grows by 1 + α²σ_w²E[φ'²] per
    layer, not geometrically). For ``definition="disconnect"`` an FFNN's last
    ``DISCONNECT_LAYERS`` (all of it up to twice that depth): the widest path is decided where
    layers are sparse, at the top in the chaotic phase."""
    if definition == "disconnect" and arch == "ffnn":
        return depth if depth <= 2 * DISCONNECT_LAYERS else DISCONNECT_LAYERS
    return min(TOP_LAYERS[arch], depth)


def bottom_layers(depth, arch, definition="layer", top=None):
    """How many layers from the inputs up are simulated exactly below the chain
    (:func:`simulate_bottom`): none for the paper's event; for "disconnect" the first
    ``DISCONNECT_LAYERS`` of an FFNN and the first layer of a ResNet, unless the top block
    (``top`` layers, default :func:`top_layers`) already reaches them."""
    top = top_layers(depth, arch, definition) if top is None else top
    if definition != "disconnect" or depth <= top:
        return 0
    return DISCONNECT_LAYERS if arch == "ffnn" else 1


def collapse_range(act, width, depth, sw, sb, arch, definition="layer"):
    """Why an FFNN is outside the domain of the class-space chain below the block, where it
    misses the Monte Carlo (``docs/critical_sparsity.md`` §5d); "" if it is not:

    * narrower than ``WHOLE_WIDTH``, where N Gaussian rows per layer are too few for the
      chain's law (−0.015 to +0.028 at N = 24–40; the whole network costs no more there);
    * near the EOC (ξ_c ≥ L) at least ``WHOLE_DEPTH_RATIO`` · N deep, where the batch's examples
      collapse onto a few directions, which a chain that treats them as exchangeable cannot
      follow (+0.006 at 100 × 70, +0.033 at 100 × 200, tanh);
    * for "disconnect", deeper than its exact ends with ξ_c ≥ ``DISCONNECT_XI_C``, where the
      middle layers that the chain takes as connecting every unit do not (+0.020 at 100 × 60).
    """
    if arch != "ffnn":
        return ""
    if width < WHOLE_WIDTH:
        return f"narrower than {WHOLE_WIDTH}"
    xi_c = float(quiet_depth_scales(act, sw, sb)[1])      # NaN: no
    if definition == "disconnect":
        if depth > 2 * DISCONNECT_LAYERS and xi_c >= DISCONNECT_XI_C:
            return (f"'disconnect' deeper than {2 * DISCONNECT_LAYERS} near the EOC "
                    f"(ξ_c = {xi_c:.3g} >= {DISCONNECT_XI_C:g})")
        return ""
    if depth >= WHOLE_DEPTH_RATIO * width and xi_c >= depth:
        return f"near the EOC (ξ_c = {xi_c:.3g} >= depth >= {WHOLE_DEPTH_RATIO:g} x width)"
    return ""


def whole_fits(width, depth, batch):
    """Whether one draw of the whole network (L · N² · B multiply-adds a pass) is cheap enough
    to be simulated for each of the prediction's draws (``MAX_WHOLE_WORK``), the route
    ``finite_width="simulated"``."""
    return depth * width * width * batch <= MAX_WHOLE_WORK


def exact_top(depth, arch, definition="layer", whole=False):
    """How many hidden layers the block simulates: all ``depth`` if ``whole`` (the simulated
    network, ``finite_width="simulated"``), else :func:`top_layers`."""
    return depth if whole else top_layers(depth, arch, definition)


def quiet_depth_scales(act, sw, sb):
    """(ξ_q, ξ_c) of :func:`meanfield.theory.depth_scales` without its warnings, NaN where it has
    no answer (no finite q*, or σ it refuses): the rules here only compare them."""

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(depth_scales(act, sw, sb), dtype=np.float64)
    except (ValueError, ArithmeticError):
        return np.full(2, np.nan)


def burn_in(act, sw, sb, arch):
    """Simulated layers below the block: ``BURN_IN_DEPTH_SCALES`` forward depth scales, so that
    the fluctuations of the kernel entering the block are those of a deep net (FFNN), at most
    ``MAX_BURN_IN``; two for a ResNet, whose block inputs are carried by the stream."""
    if arch != "ffnn":
        return RESNET_BURN_IN
    xi = float(np.max(quiet_depth_scales(act, sw, sb)))   # NaN if either is NaN: the cap
    if not xi < MAX_BURN_IN / BURN_IN_DEPTH_SCALES:
        return MAX_BURN_IN
    return max(1, math.ceil(BURN_IN_DEPTH_SCALES * xi))


def _quantile_atoms(x, size):
    """``size`` evenly spaced quantiles of the values x (all of them, in any order, if there are
    no more than ``size``)."""
    x = x.ravel()
    if x.size <= size:
        return x
    x = np.sort(x)
    return x[((np.arange(size) + 0.5) * (x.size / size)).astype(np.int64)]


class Block:
    """One draw of the top of the network.

    Attributes:

    * ``delta`` (B, C): the readout error softmax(z) − onehot(y);
    * ``hidden`` (T, A): log|G_ij| + ½ log Var(W_ij) of the T exact hidden layers
      L − T + 1 … L, a row per layer holding all its N² entries (A = N²) or, beyond
      ``MAX_ATOMS``, A evenly spaced quantiles of them;
    * ``readout`` (C · N,): the same for the readout;
    * ``rows`` (N, C) and ``noise`` (float): the backward signal of hidden layer L − T in class
      space, h_i(b) = Δ_b · rows_i + e_i(b) with Σ_b e_i(b)² = ``noise`` on average over i;
      None and 0 when the block reaches layer 1. For an FFNN the signal is
      h^l = (W^{l+1})ᵀ δ^{l+1} (before φ'), for a ResNet the residual stream's gradient
      g^l = ∂ℒ/∂y^l, as in :func:`meanfield.prediction._score_laws.backward_finite`;
    * ``above`` (N,), for ``definition="disconnect"`` only (else None): each unit's widest-path
      bottleneck to the logits (:func:`simulate`).
    """

    __slots__ = ("delta", "hidden", "readout", "rows", "noise", "above")


def _activation_pair(act):
    """φ and φ' (given y and a = φ(y)): φ' from φ for tanh, one transcendental per layer."""
    if _is_tanh(act):
        def phi(y):
            return np.tanh(y)

        def dphi(y, a):
            return (1.0 - a) * (1.0 + a)
    else:
        def phi(y):
            return act(y)

        def dphi(y, a):
            return act(y, 1)
    return phi, dphi


def _gauss(rng, *shape):
    return standard_normal(rng, shape, out=np.empty(shape))


def _forward_step(rng, a, y_prev, scale, sb, alpha):
    """One layer on inputs a (B, N): W ~ N(0, scale²) (N × N), then the bias, drawn in that
    order; y = a Wᵀ + B, or y_prev + α (a Wᵀ + B) for a residual block. Returns (W, y)."""
    W = _gauss(rng, a.shape[1], a.shape[1]) * scale
    pre = a @ W.T + sb * _gauss(rng, a.shape[1])
    return W, (pre if y_prev is None else y_prev + alpha * pre)


def _burn_step(rng, a, y_prev, scale, sb, alpha):
    """One layer whose weights are not needed again (the burn-in), drawn in batch space where
    that is cheaper (N > 3B): each unit's pre-activations over the batch are
    N(0, scale² a aᵀ + sb² 11ᵀ), independent over units, which is the law of a Wᵀ + B, at
    O(B² N) and B · N normals instead of O(B N²) and N² normals; the B × B eigendecomposition
    makes it pay only from N ≈ 3B on (measured at B = 128: 2.1 against 2.9 ms at N = 500, 1.6
    against 0.4 ms at N = 200). Returns y."""
    B, N = a.shape
    if N <= 3 * B:
        return _forward_step(rng, a, y_prev, scale, sb, alpha)[1]
    lam, vec = np.linalg.eigh(a @ a.T)
    root = vec * np.sqrt(np.maximum(lam, 0.0))       # root rootᵀ = a aᵀ
    pre = scale * (root @ _gauss(rng, B, N)) + sb * _gauss(rng, N)
    return pre if y_prev is None else y_prev + alpha * pre


def _propagate(g, W, y_in, a_in, a_l, skip, dphi):
    """Backpropagate g = ∂ℒ/∂y^l through layer l (weights W, branch scale a_l) to y^{l−1}
    (a_in = φ(y_in)): returns the signal before φ'(y^{l−1}) and ∂ℒ/∂y^{l−1} (the skip adds g)."""
    signal = a_l * (g @ W)
    back = signal * dphi(y_in, a_in)
    return signal, (g + back if skip else back)


def _widest_back(S, above, skip):
    """One layer of the reverse widest path: for each input unit j of a layer with scores S
    (n_out, n_in), the best bottleneck max_i min(S_ij, above_i) to the logits, or through the
    skip (above_j) if ``skip``: the forward step of ``pruning.critical_sparsity`` on Sᵀ."""
    return _widest_forward(S.T, above, skip)


def _widest_forward(S, below, skip):
    """One layer of the widest path from the inputs: max_j min(S_ij, below_j) (and below_i
    through the skip), by the kernel ``pruning.critical_sparsity`` uses."""
    out = np.empty(S.shape[0])
    _widest_step(S, np.asarray(below, dtype=np.float64), skip, out)
    return out


def simulate(act, m, width, sw, sb, batch, classes, burn, rng, definition="layer", top=None):
    """Draw one :class:`Block` (``m``: :func:`meanfield.prediction._moments.layer_moments`; ``burn``:
    :func:`burn_in`; ``top``: how many hidden layers are exact, default :func:`top_layers`, all
    L for the whole network). With ``definition="disconnect"`` the block also holds ``above``
    (N,): for each unit of hidden layer L − T (or each input, when the block reaches layer 1)
    the widest path's bottleneck from it to the logits through the block's exact scores
    |W ∘ G|."""
    L = m.depth
    residual = m.arch != "ffnn"
    alpha = _branch_scale(m.arch, L)
    top = top_layers(L, m.arch, definition) if top is None else top
    disconnect = definition == "disconnect"
    first = max(1, L - top - burn + 1)               # the first simulated layer
    scale = sw / math.sqrt(width)

    phi, dphi = _activation_pair(act)

    # pre-activations y^l (B, N) of layers first … L; for the top layers (l > L − top) their
    # weights and inputs (the burn-in's are dropped as the pass goes)
    weights, inputs = {}, {}
    if first == 1:
        x = _gauss(rng, batch, width)                # the inputs, as in a trial
        if L - top < 1:
            weights[1], y = _forward_step(rng, x, None, scale, sb, alpha)
            inputs[1] = x
        else:
            y = _burn_step(rng, x, None, scale, sb, alpha)
    else:
        q, c = float(m.q_hidden[first - 1]), float(m.c_hidden[first - 1])
        y = (math.sqrt(q * (1.0 - c)) * _gauss(rng, batch, width)
             + math.sqrt(q * c) * _gauss(rng, 1, width))
    ys = {first: y}
    for layer in range(first + 1, L + 1):
        a = phi(ys[layer - 1])
        y_prev = ys[layer - 1] if residual else None
        if layer > L - top:
            weights[layer], ys[layer] = _forward_step(rng, a, y_prev, scale, sb, alpha)
            inputs[layer] = a
        else:
            ys[layer] = _burn_step(rng, a, y_prev, scale, sb, alpha)
            ys.pop(layer - 1)
    a_top = phi(ys[L])
    V = _gauss(rng, classes, width) * scale
    z = a_top @ V.T + sb * _gauss(rng, classes)
    labels = rng.integers(classes, size=batch)
    z -= z.max(axis=1, keepdims=True)
    delta = np.exp(z)
    delta /= delta.sum(axis=1, keepdims=True)
    delta[np.arange(batch), labels] -= 1.0

    out = Block()
    out.delta = delta
    half_log_var = 0.5 * np.log(m.weight_var)
    G = delta.T @ a_top / batch
    with np.errstate(divide="ignore"):
        out.readout = np.log(np.abs(G)).ravel() + half_log_var[L]
    above = np.abs(V * G).max(axis=0) if disconnect else None
    g = (delta @ V) * dphi(ys[L], a_top)             # ∂ℒ/∂y^L, per example (no 1/B)
    size = min(MAX_ATOMS, width * width)
    out.hidden = np.empty((top, size))
    signal = None
    for layer in range(L, L - top, -1):
        a_l = alpha if residual and layer > 1 else 1.0
        G = (a_l / batch) * (g.T @ inputs[layer])
        with np.errstate(divide="ignore"):
            out.hidden[layer - (L - top + 1)] = (_quantile_atoms(np.log(np.abs(G)), size)
                                                 + half_log_var[layer - 1])
        if disconnect:
            above = _widest_back(np.abs(weights[layer] * G), above, residual and layer > 1)
        if layer == 1:
            break
        signal, g = _propagate(g, weights[layer], ys[layer - 1], inputs[layer], a_l, residual,
                               dphi)
    if L - top >= 1:
        R = (g if residual else signal).T            # (N, B)
        gram = delta.T @ delta
        rows = np.linalg.lstsq(gram, delta.T @ R.T, rcond=None)[0].T   # (N, C)
        rest = R - rows @ delta.T
        out.rows, out.noise = rows, float((rest * rest).sum(axis=1).mean())
    else:
        out.rows, out.noise = None, 0.0
    out.above = above
    return out


def simulate_bottom(act, m, width, sw, sb, batch, layers, signal, rng):
    """The first ``layers`` layers of the network, exact, for definition="disconnect": inputs
    x ~ N(0, I), their weights, and the backward signal of layer ``layers`` given as ``signal``
    (B, N): h^K (before φ'(y^K)) for an FFNN, the stream's gradient g¹ for a ResNet (K = 1).
    Returns the widest path's bottleneck from the inputs to each unit of layer K, (N,)."""
    residual = m.arch != "ffnn"
    alpha = _branch_scale(m.arch, m.depth)
    scale = sw / math.sqrt(width)
    phi, dphi = _activation_pair(act)
    a = _gauss(rng, batch, width)
    ins, ys, ws = [], [], []
    for layer in range(1, layers + 1):
        W, y = _forward_step(rng, a, ys[-1] if residual and layer > 1 else None, scale, sb,
                             alpha)
        ins.append(a)
        ys.append(y)
        ws.append(W)
        a = phi(y)
    scores = [None] * layers
    g = signal if residual else signal * dphi(ys[-1], a)
    for layer in range(layers, 0, -1):
        a_l = alpha if residual and layer > 1 else 1.0
        scores[layer - 1] = np.abs(ws[layer - 1] * ((a_l / batch) * (g.T @ ins[layer - 1])))
        if layer > 1:
            _, g = _propagate(g, ws[layer - 1], ys[layer - 2], ins[layer - 1], a_l, residual,
                              dphi)
    below = np.full(width, np.inf)
    for layer in range(1, layers + 1):
        below = _widest_forward(scores[layer - 1], below, residual and layer > 1)
    return below
