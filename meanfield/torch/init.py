"""Edge-of-Chaos initialisation of a torch model (docs/torch.md, "Initialisation")."""

from __future__ import annotations

import math

import pandas as pd
import torch
from torch import nn

from .._validate import InputError, check_choice, check_int, check_scalar
from ..activations import get_activation
from ..theory import eoc
from ._acts import module_activation
from ._params import PRUNABLE_TYPES, check_model

__all__ = ["init_eoc_", "NORM_TYPES", "NEUTRAL_TYPES"]

NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
#: modules with no parameters that the mean-field picture passes through unchanged in law
#: (reshapes, dropout — off at initialisation's analysis —, averages over positions)
NEUTRAL_TYPES = (nn.Identity, nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
                 nn.Dropout3d, nn.AlphaDropout, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
                 nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)


def _fan_in(m):
    return m.weight[0].numel()


def init_eoc_(model, activation="tanh", sigma_b=0.3, sigma_w="eoc", *, norm="error",
              unknown="error", seed=None):
    """Re-draw every ``nn.Linear`` / ``nn.Conv`` weight of ``model`` in place on the Edge of Chaos.

    Each weight entry ~ N(0, σ_w² / fan_in) (fan_in = in_features, or in_channels / groups × the
    kernel's size, so that a conv layer is the CNN of Xiao et al. 2018 with W ~ N(0, σ_w²/(N k²))),
    each bias ~ N(0, σ_b²); σ_w = the EOC point :func:`meanfield.eoc` (``activation``, σ_b)
    unless a number is given. The readout is drawn alike (as in :mod:`meanfield.nets`).

    The model is checked first, and nothing is changed if a module cannot be placed:

    * activation modules (``nn.Tanh``, ``nn.ReLU``, ``nn.ELU(α)``, …) must be ``activation``;
      an activation applied functionally in ``forward`` cannot be seen and is taken on trust;
    * normalisation layers (BatchNorm, GroupNorm, LayerNorm) rescale each channel to unit
      variance whatever σ_w, so the EOC does not describe their network: ``norm="error"``
      (default) raises; ``norm="keep"`` leaves them as they are and lists them in the table;
    * any other module with parameters, or a parameter-free module that is neither an
      activation nor neutral in law (``nn.MaxPool2d``, ``nn.Softmax``, attention):
      ``unknown="error"`` (default) raises; ``unknown="ignore"`` leaves it and lists it.

    Parameters
    ----------
    model : torch.nn.Module
    activation : str or Activation, default "tanh"
    sigma_b : float >= 0, default 0.3
    sigma_w : "eoc" or float > 0, default "eoc"
    norm : {"error", "keep"}, default "error"
    unknown : {"error", "ignore"}, default "error"
    seed : int, optional
        Seeds a ``torch.Generator`` for the draws (default: torch's global generator).

    Returns
    -------
    pandas.DataFrame
        One row per module it drew or left: ``name``, ``type``, ``fan_in``, ``sigma_w``,
        ``sigma_b``, ``treatment`` (``"eoc"``, ``"kept"``, ``"ignored"``).

    Raises
    ------
    InputError
        An activation module other than ``activation``, a norm or unknown module under
        ``"error"``, or no EOC for ``activation`` at σ_b (ReLU's needs σ_b = 0).

    Examples
    --------
    >>> import torch
    >>> from meanfield.torch import init_eoc_
    >>> net = torch.nn.Sequential(torch.nn.Linear(100, 50), torch.nn.Tanh(), torch.nn.Linear(50, 10))
    >>> table = init_eoc_(net, "tanh", 0.3, seed=0)
    >>> table[["name", "fan_in", "sigma_w"]].round(4).to_string(index=False)
    'name  fan_in  sigma_w\\n   0     100   1.3956\\n   2      50   1.3956'
    """
    check_model(model)
    act = get_activation(activation)
    sb = check_scalar("sigma_b", sigma_b, min_val=0.0)
    check_choice("norm", norm, ("error", "keep"))
    check_choice("unknown", unknown, ("error", "ignore"))
    if isinstance(sigma_w, str):
        check_choice("sigma_w", sigma_w, ("eoc",))
        sw = float(eoc(act, sb)[0])
        if not math.isfinite(sw):
            raise InputError(f"`sigma_b` == {sb!r}: activation {act.name!r} has no Edge of Chaos "
                             f"there (see meanfield.eoc_curve); ReLU's is at sigma_b = 0")
    else:
        sw = check_scalar("sigma_w", sigma_w, min_val=0.0, include_boundaries="neither")
    gen = None if seed is None else torch.Generator().manual_seed(check_int("seed", seed, 0))

    rows, draw = [], []
    for name, m in model.named_modules():
        own = list(m.parameters(recurse=False))
        kind = type(m).__name__
        if isinstance(m, PRUNABLE_TYPES):
            draw.append((name, m))
            rows.append((name, kind, _fan_in(m), sw, sb, "eoc"))
        elif isinstance(m, NORM_TYPES):
            if norm == "error":
                raise InputError(f"module {name!r} is a {kind}: normalisation rescales each "
                                 f"channel whatever sigma_w, so the Edge of Chaos does not describe "
                                 f"it; pass norm='keep' to leave it as it is (docs/torch.md)")
            rows.append((name, kind, None, None, None, "kept"))
        elif any(True for _ in m.children()) and not own:
            continue  # a container: its children are looked at one by one
        elif not own and isinstance(m, NEUTRAL_TYPES):
            continue
        elif not own and module_activation(m) is not None:
            if get_activation(module_activation(m)) is not act:
                raise InputError(f"module {name!r} is {m!r}, activation "
                                 f"{module_activation(m)!r}, but `activation` == {act.name!r}: "
                                 f"the EOC is the activation's own; pass the model's")
        elif unknown == "error":
            raise InputError(f"module {name!r} ({kind}) has no place in the mean-field picture "
                             f"meanfield.torch knows (Linear / Conv, activations, "
                             f"normalisation, pooling by averages); pass unknown='ignore' to "
                             f"leave it as it is")
        else:
            rows.append((name, kind, None, None, None, "ignored"))
    with torch.no_grad():
        for _, m in draw:
            std = sw / math.sqrt(_fan_in(m))
            w = getattr(m, "weight_orig", m.weight)  # a pruned layer's dense parameter
            w.copy_(torch.randn(w.shape, generator=gen, dtype=w.dtype) * std)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen, dtype=m.bias.dtype) * sb)
    return pd.DataFrame(rows, columns=["name", "type", "fan_in", "sigma_w", "sigma_b",
                                       "treatment"])
