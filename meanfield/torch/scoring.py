"""Pruning scores of a torch model's weights: SNIP, GraSP, SynFlow, magnitude, random, with the
reference implementations' conventions (docs/torch.md; docs/theory.md §4 for the definitions)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .._validate import InputError, check_choice, check_int, check_probability, check_scalar
from ..pruning.masks import global_masks
from ..pruning.scoring import GRASP_TEMPERATURE, METHODS
from ._params import as_batches, check_model, effective_weight, prunable, scoring_copy

__all__ = ["scores", "METHODS", "linearised", "synflow_flow"]


def _dtype(model, dtype):
    if dtype is None:
        p = next((m.weight for _, m in prunable(model)), None)
        return p.dtype if p is not None and p.dtype.is_floating_point else torch.float32
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise InputError(f"`dtype` == {dtype!r}: must be a floating torch dtype "
                         f"(torch.float32 or torch.float64) or None")
    return dtype


def scores(model, X=None, y=None, method="snip", *, batches=None, sparsity=None,
           grasp_temperature=GRASP_TEMPERATURE, synflow_iterations=100, seed=None, dtype=None):
    """Scores of every prunable weight of ``model``, oriented so that pruning keeps the largest.

    Prunable: the ``weight`` of every ``nn.Linear`` and ``nn.Conv1d/2d/3d`` (the readout and 1 × 1
    shortcuts included; biases and normalisation layers are not scored). A layer that is already
    pruned is scored at its effective weight ``weight_orig * weight_mask``. The scores are
    computed on a copy of the model in eval mode (BatchNorm on its running statistics, as
    Synaptic-Flow's ``prune_loop`` does by default); the model itself is not changed.

    * ``"snip"``: |θ ⊙ ∂ℒ/∂θ|, ℒ the mean cross-entropy of the batch; over several batches the
      gradients add up (Lee et al. 2019; Synaptic-Flow's ``SNIP``).
    * ``"grasp"``: θ ⊙ (H g), g = ∂ℒ/∂θ and H its Hessian, ℒ on the logits divided by
      ``grasp_temperature``: GraSP's own score is S = −θ ⊙ Hg, of which it prunes the *largest*,
      so keeping the largest of θ ⊙ Hg is GraSP's mask (Wang et al. 2020; Synaptic-Flow's
      ``GraSP``, whose score this is).
    * ``"synflow"``: iterative SynFlow (Tanaka et al. 2020, Algorithm 1): every round scores
      |θ ⊙ ∂ℛ/∂θ| with ℛ the sum of the outputs of the model run on an all-ones input with every
      parameter replaced by its absolute value (the weights masked by the current mask), biases
      and BatchNorm's running means set to 0 and the activations to the identity (the
      linearised network of the paper's ℛ = 1ᵀ ∏|θ^l| 1; see :func:`linearised`), then prunes
      globally to s_k = 1 − (1 − s)^{k/n}, k = 1 … n; the last round's scores, divided by ℛ,
      are returned, so that the global top (1 − s) of them is SynFlow's mask at ``sparsity``
      (computed in float64, returned in ``dtype``).
      Needs ``sparsity`` unless ``synflow_iterations == 1`` (the one-shot scores). Needs no
      labels; ``X`` (or the first batch) gives the input's shape.
    * ``"magnitude"``: |θ|.   * ``"random"``: U[0, 1) draws from ``torch.Generator`` seeded by
      ``seed``.

    Parameters
    ----------
    model : torch.nn.Module
    X : tensor or array_like, shape (B, ...) (the model's input)
    y : tensor or array_like of int, shape (B,)
    method : {"snip", "grasp", "synflow", "magnitude", "random"}
    batches : iterable of (X, y), optional
        Instead of ``X, y`` (a DataLoader works).
    sparsity : float in [0, 1), optional
        SynFlow's target.
    grasp_temperature : float > 0, default 200.0
    synflow_iterations : int >= 1, default 100
    seed : int, optional
        For ``"random"`` (required there).
    dtype : torch.dtype, optional
        The precision of the computation; default the model's.

    Returns
    -------
    dict of {str: torch.Tensor}
        Keyed by the weights' state-dict names (:func:`meanfield.torch.prunable`), each shaped
        like its weight, detached.

    Examples
    --------
    >>> import torch
    >>> from meanfield.torch import scores
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    >>> s = scores(net, torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]), "snip")
    >>> {k: tuple(v.shape) for k, v in s.items()}
    {'0.weight': (8, 4), '2.weight': (3, 8)}
    """
    check_model(model)
    check_choice("method", method, METHODS)
    dtype = _dtype(model, dtype)
    if method == "magnitude":
        return {name: effective_weight(m).abs() for name, m in prunable(model)}
    if method == "random":
        if seed is None:
            raise InputError("`seed` == None: method 'random' needs an integer seed")
        seed = check_int("seed", seed, 0)
        gen = torch.Generator().manual_seed(seed)
        return {name: torch.rand(m.weight.shape, generator=gen, dtype=dtype)
                for name, m in prunable(model)}
    if method == "synflow":
        n = check_int("synflow_iterations", synflow_iterations, 1)
        if sparsity is None and n > 1:
            raise InputError("`sparsity` == None: iterative SynFlow's scores depend on the target "
                             "sparsity (a number in [0, 1)); pass it, or synflow_iterations=1 for "
                             "the one-shot scores")
        s = 0.0 if sparsity is None else check_probability("sparsity", sparsity)
        data = as_batches(X, y, batches, dtype, need_labels=False)
        return _synflow(model, tuple(data[0][0].shape[1:]), s, n, dtype)
    data = as_batches(X, y, batches, dtype)
    if method == "snip":
        return _snip(model, data, dtype)
    T = check_scalar("grasp_temperature", grasp_temperature, min_val=0.0,
                     include_boundaries="neither")
    return _grasp(model, data, T, dtype)


def _device(params):
    return params[0][1].device


def _unused(params, grads):
    missing = [name for (name, _), g in zip(params, grads) if g is None]
    if missing:
        raise InputError(f"layer(s) {', '.join(missing)} of the model are not used by its "
                         f"forward pass: they have no gradient to score")


def _snip(model, data, dtype):
    twin, params = scoring_copy(model, dtype)
    dev = _device(params)
    for xb, yb in data:
        F.cross_entropy(twin(xb.to(dev)), yb.to(dev)).backward()
    _unused(params, [p.grad for _, p in params])
    return {name: (p.grad * p).detach().abs() for name, p in params}


def _grasp(model, data, T, dtype):
    twin, params = scoring_copy(model, dtype)
    dev = _device(params)
    ws = [p for _, p in params]
    stopped = [torch.zeros_like(w) for w in ws]
    for xb, yb in data:
        g = torch.autograd.grad(F.cross_entropy(twin(xb.to(dev)) / T, yb.to(dev)), ws,
                                allow_unused=True)
        _unused(params, g)
        stopped = [a + b for a, b in zip(stopped, g)]
    hg = [torch.zeros_like(w) for w in ws]
    for xb, yb in data:
        g = torch.autograd.grad(F.cross_entropy(twin(xb.to(dev)) / T, yb.to(dev)), ws,
                                create_graph=True)
        gs = sum((a * b).sum() for a, b in zip(stopped, g))
        hg = [a + b for a, b in zip(hg, torch.autograd.grad(gs, ws))]
    return {name: (w * h).detach() for (name, _), w, h in zip(params, ws, hg)}


# The activations the linearised network replaces by the identity: the functions that torch's
# activation modules and their functional forms call (an in-place form returns its input as is).
_ACTIVATIONS = frozenset(f for f in (
    torch.tanh, torch.tanh_, torch.Tensor.tanh, torch.Tensor.tanh_, torch.relu, torch.relu_,
    torch.Tensor.relu, torch.Tensor.relu_, torch.sigmoid, torch.sigmoid_, torch.Tensor.sigmoid,
    torch.Tensor.sigmoid_, torch.erf, torch.Tensor.erf, torch.selu, torch.selu_, torch.celu,
    torch.celu_, F.relu, F.relu_, F.relu6, F.leaky_relu, F.leaky_relu_, F.elu, F.elu_, F.selu,
    F.celu, F.gelu, F.silu, F.mish, F.softplus, F.hardtanh, F.hardtanh_, F.hardswish,
    F.hardsigmoid, F.sigmoid, F.tanh, F.logsigmoid, F.softsign, F.tanhshrink, F.prelu,
    torch._C._nn.gelu, torch._C._nn.silu, torch._C._nn.elu, torch._C._nn.leaky_relu,
    torch._C._nn.hardtanh, torch._C._nn.softplus) if f is not None)


class linearised(TorchFunctionMode):
    """Within ``with linearised():`` torch's activation functions (module or functional form:
    tanh, relu, leaky_relu, elu, selu, gelu, silu, softplus, sigmoid, hardtanh, …) return their
    input: the network SynFlow's ℛ is defined on (Tanaka et al. 2020, eq. 9), whatever the
    activation. An activation written out of arithmetic (``x * torch.sigmoid(x)`` by hand) is
    not recognised as one."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _ACTIVATIONS:
            return args[0] if args else next(iter(kwargs.values()))
        return func(*args, **(kwargs or {}))


def _linear_twin(model, dtype):
    """The model made into SynFlow's linearised network: a float64 (or ``dtype``) copy with every
    parameter |θ|, biases and BatchNorm's running means 0, eval mode. Returns (copy, params)."""
    twin, params = scoring_copy(model, dtype)
    with torch.no_grad():
        for name, p in twin.named_parameters():
            if name.rsplit(".", 1)[-1] == "bias":
                p.zero_()
            else:
                p.abs_()
        for name, buf in twin.named_buffers():
            if name.rsplit(".", 1)[-1] == "running_mean":
                buf.zero_()
    return twin, params


def synflow_flow(twin, ones):
    """ℛ of the linearised copy on the all-ones input (a 0-d tensor with a graph)."""
    with linearised():
        return twin(ones).sum()


def _synflow(model, shape, sparsity, n, dtype):
    twin, params = _linear_twin(model, torch.float64 if dtype == torch.float32 else dtype)
    dev = _device(params)
    absw = [p.detach().clone() for _, p in params]
    ones = torch.ones((1,) + shape, dtype=absw[0].dtype, device=dev)
    masks = [np.ones(tuple(a.shape), bool) for a in absw]
    for k in range(1, n + 1):
        with torch.no_grad():
            for (_, p), a, m in zip(params, absw, masks):
                p.copy_(a * torch.from_numpy(m).to(dev))
                p.grad = None
        R = synflow_flow(twin, ones)
        if not math.isfinite(R.item()):
            raise InputError(f"SynFlow's flow ℛ overflows float64 on this model ({R.item()}): "
                             f"its |weights| multiply past 1e308 along the depth")
        R.backward()
        _unused(params, [p.grad for _, p in params])
        sc = [(p.grad * p).detach().abs() / (R.item() if R.item() > 0 else 1.0) for _, p in params]
        if k < n:
            masks = global_masks([s.cpu().numpy() for s in sc], 1.0 - (1.0 - sparsity) ** (k / n))
    # in the model's dtype like the other methods' (computed in float64: ℛ's products overflow
    # float32 early)
    return {name: s.to(dtype) for (name, _), s in zip(params, sc)}
