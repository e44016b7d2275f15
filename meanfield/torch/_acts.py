"""meanfield's built-in activations as torch functions and modules, both ways."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import InputError
from ..activations import get_activation

__all__ = ["torch_activation", "module_activation"]


def torch_activation(activation):
    """The torch function computing meanfield's activation ``activation`` (a name or a built-in
    :class:`meanfield.Activation`). InputError for an activation torch has no form of here (one
    built from Python functions)."""
    act = get_activation(activation)
    family, _, _ = act.name.partition(":")
    p = act.param
    table = {
        "tanh": torch.tanh, "erf": torch.erf, "relu": F.relu, "selu": F.selu,
        "gelu": F.gelu, "silu": F.silu, "softplus": F.softplus, "sigmoid": torch.sigmoid,
        "hard_tanh": F.hardtanh, "linear": lambda x: x,
        "leaky_relu": functools.partial(F.leaky_relu, negative_slope=p if p is not None else 0.01),
        "elu": functools.partial(F.elu, alpha=p if p is not None else 1.0),
    }
    if family not in table:
        raise InputError(f"`activation` == {act.name!r}: meanfield.torch knows the built-in "
                         f"activations only ({', '.join(sorted(table))})")
    return table[family]


def module_activation(module):
    """The meanfield activation name of a torch activation module (``nn.Tanh()`` → ``"tanh"``,
    ``nn.LeakyReLU(0.1)`` → ``"leaky_relu:0.1"``), None if ``module`` is not one it knows."""
    if isinstance(module, nn.Tanh):
        return "tanh"
    if isinstance(module, (nn.ReLU,)):
        return "relu"
    if isinstance(module, nn.LeakyReLU):
        return f"leaky_relu:{module.negative_slope!r}"
    if isinstance(module, nn.ELU):
        return f"elu:{module.alpha!r}"
    if isinstance(module, nn.GELU):
        return "gelu" if module.approximate == "none" else None
    names = {nn.SELU: "selu", nn.SiLU: "silu", nn.Sigmoid: "sigmoid", nn.Hardtanh: "hard_tanh",
             nn.Identity: None}
    for cls, name in names.items():
        if type(module) is cls:
            if cls is nn.Hardtanh and (module.min_val, module.max_val) != (-1.0, 1.0):
                return None
            return name
    if type(module) is nn.Softplus and module.beta == 1.0:
        return "softplus"
    return None
