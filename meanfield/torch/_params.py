"""Which tensors of a torch model are prunable, and the copies the scores are computed on."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import prune as tprune

from .._validate import InputError, InputTypeError

__all__ = ["prunable", "PRUNABLE_TYPES"]

#: the module types whose ``weight`` is scored and pruned (the readout and 1 × 1 shortcuts are
#: Linear / Conv layers like any other); biases and normalisation layers never are
PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def check_model(model):
    if not isinstance(model, nn.Module):
        raise InputTypeError(f"`model` == {type(model).__name__}: must be a torch.nn.Module")
    return model


def prunable(model):
    """The prunable layers of ``model``, in ``model.named_modules()`` order.

    Returns
    -------
    list of (str, torch.nn.Module)
        ``(name, module)`` with ``name`` the weight's state-dict name without the
        ``_orig`` of an already pruned layer (``"layer1.0.conv1.weight"``): every ``nn.Linear``
        and ``nn.Conv1d/2d/3d``.

    Raises
    ------
    InputError
        The model has no prunable layer.
    """
    check_model(model)
    out = [(f"{name}.weight" if name else "weight", m) for name, m in model.named_modules()
           if isinstance(m, PRUNABLE_TYPES)]
    if not out:
        raise InputError(f"`model` ({type(model).__name__}) has no Linear or Conv layer to prune")
    return out


def effective_weight(module):
    """The weight the forward pass uses: ``weight_orig * weight_mask`` for a pruned layer (the
    attribute its forward pre-hook sets), the parameter otherwise; without gradient."""
    with torch.no_grad():
        if hasattr(module, "weight_orig"):
            return module.weight_orig * module.weight_mask
        return module.weight.detach()


def scoring_copy(model, dtype):
    """A deep copy of ``model`` in ``dtype`` whose prunable weights are plain parameters equal to
    the effective (masked) weights, in eval mode (as Synaptic-Flow's ``prune_loop`` scores by
    default: BatchNorm uses its running statistics, dropout is off). The user's model is not
    touched. Returns (copy, [(name, weight parameter)])."""
    twin = copy.deepcopy(model)
    for _, m in prunable(twin):
        if tprune.is_pruned(m) and hasattr(m, "weight_orig"):
            tprune.remove(m, "weight")
    twin = twin.to(dtype).eval()
    for p in twin.parameters():
        p.requires_grad_(False)
    params = []
    for name, m in prunable(twin):
        m.weight.requires_grad_(True)
        params.append((name, m.weight))
    return twin, params


def as_batches(X, y, batches, dtype, need_labels=True):
    """The scoring data as a list of (inputs, labels) tensors: ``(X, y)`` or the iterable
    ``batches`` of such pairs (a DataLoader works), inputs cast to ``dtype``."""
    if batches is not None:
        if X is not None or y is not None:
            raise InputError("pass either `X, y` or `batches=`, not both")
        pairs = list(batches)
        if not pairs:
            raise InputError("`batches` is empty: need at least one (inputs, labels) batch")
    else:
        if X is None or (need_labels and y is None):
            raise InputError("`X` and `y` are needed (or `batches=`, an iterable of (X, y))")
        pairs = [(X, y)]
    out = []
    for i, pair in enumerate(pairs):
        try:
            xb, yb = pair[0], pair[1]
        except (TypeError, IndexError, KeyError) as err:
            raise InputTypeError(f"`batches[{i}]`: must be an (inputs, labels) pair") from err
        xb = torch.as_tensor(xb).to(dtype)
        if yb is None and need_labels:
            raise InputError(f"batch {i} has no labels: this method needs (inputs, labels)")
        if yb is not None:
            yb = torch.as_tensor(yb)
            if yb.dtype.is_floating_point or yb.dtype == torch.bool:
                raise InputTypeError(f"labels of batch {i} have dtype {yb.dtype}: must be integer "
                                     f"class indices")
            yb = yb.long()
            if yb.ndim != 1 or yb.shape[0] != xb.shape[0]:
                raise InputError(f"labels of batch {i} have shape {tuple(yb.shape)}: must be "
                                 f"({xb.shape[0]},), one per input")
        out.append((xb, yb))
    return out
