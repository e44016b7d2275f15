"""Masks of a torch model in ``torch.nn.utils.prune``'s conventions: pruning at initialization
with SBP-SR, the model's critical sparsity, what each layer keeps, and the masks on disk
(docs/torch.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.nn.utils import prune as tprune

from .._validate import InputError, check_choice, check_path, check_probability, check_scalar
from ..pruning.critical import DEFINITIONS, bisect_target, mask_event
from ..pruning.critical import critical_sparsity as _core_critical
from ..pruning.masks import global_masks, row_factors
from ..pruning.scoring import GRASP_TEMPERATURE
from ._params import check_model, effective_weight, prunable
from .scoring import _linear_twin, scores, synflow_flow

__all__ = ["prune_at_init", "critical_sparsity", "kept_per_layer", "save_masks", "load_masks"]

SCOPES = ("global", "local")
RESCALES = (False, True, "neuron", "layer")


def _arrays(model, sc):
    """The scores as float64 numpy arrays, a weight that an earlier pruning removed scored −inf
    (below every live weight, so that a new mask keeps none of them and counts what is left)."""
    out = []
    for (_, m), v in zip(prunable(model), sc.values()):
        a = v.detach().cpu().double().numpy().copy()
        if hasattr(m, "weight_mask"):
            a[m.weight_mask.detach().cpu().numpy() == 0] = -np.inf
        out.append(a)
    return out


def _masks(model, sc, sparsity, scope):
    arrays = _arrays(model, sc)
    if scope == "global":
        return global_masks(arrays, sparsity)
    return [global_masks([a], sparsity)[0] for a in arrays]


def _table(model, masks):
    rows = []
    for (name, m), mask in zip(prunable(model), masks):
        kept = int(np.count_nonzero(mask))
        rows.append((name, type(m).__name__, tuple(mask.shape), mask.size, kept, kept / mask.size,
                     kept == 0))
    return pd.DataFrame(rows, columns=["name", "type", "shape", "weights", "kept", "kept_fraction",
                                       "emptied"])


def kept_per_layer(model, X=None, y=None, method="snip", sparsity=0.9, *, scope="global",
                   batches=None, grasp_temperature=GRASP_TEMPERATURE, synflow_iterations=100,
                   seed=None, dtype=None):
    """What each prunable layer of ``model`` keeps when it is pruned to ``sparsity`` by ``method``
    (the model is not changed).

    Parameters as :func:`prune_at_init` (``scope`` too).

    Returns
    -------
    pandas.DataFrame
        One row per prunable layer, in ``model.named_modules()`` order: ``name``, ``type``,
        ``shape``, ``weights``, ``kept`` (a count), ``kept_fraction``, ``emptied``.
    """
    s = check_probability("sparsity", sparsity)
    check_choice("scope", scope, SCOPES)
    sc = scores(model, X, y, method, batches=batches, sparsity=s if method == "synflow" else None,
                grasp_temperature=grasp_temperature, synflow_iterations=synflow_iterations,
                seed=seed, dtype=dtype)
    return _table(model, _masks(model, sc, s, scope))


def prune_at_init(model, X=None, y=None, method="snip", sparsity=0.9, *, rescale=False,
                  scope="global", batches=None, grasp_temperature=GRASP_TEMPERATURE,
                  synflow_iterations=100, seed=None, dtype=None):
    """Prune ``model`` in place at initialization, the way ``torch.nn.utils.prune`` does.

    Scores every prunable weight (:func:`meanfield.torch.scores`), keeps the (1 − s) fraction with
    the largest scores over the whole model (``scope="global"``; ties at the threshold pruned
    together, as :func:`meanfield.pruning.global_masks`) or in each layer (``"local"``), and
    applies ``torch.nn.utils.prune.custom_from_mask``: each layer then carries ``weight_orig``,
    ``weight_mask`` and the forward pre-hook that sets ``weight = weight_orig * weight_mask``
    (an already pruned layer combines its masks, as torch does).

    With ``rescale`` (SBP-SR, Hayou et al. 2021, Algorithm 1; docs/theory.md §5) each output unit
    / output channel's kept weights are scaled by ρ_i = √(Σ_j W_ij² / Σ_j (δ_ij W_ij)²) over its
    fan-in (``True`` or ``"neuron"``), or each layer's by one ρ (``"layer"``); ρ = 1 where a unit
    keeps nothing. The factor is folded into ``weight_orig``, so the forward pass needs nothing
    more and ``torch.nn.utils.prune.remove`` leaves the rescaled pruned weights.

    Parameters
    ----------
    model : torch.nn.Module
    X, y, batches : the scoring data, as :func:`meanfield.torch.scores`
    method : {"snip", "grasp", "synflow", "magnitude", "random"}
    sparsity : float in [0, 1)
    rescale : {False, True, "neuron", "layer"}
    scope : {"global", "local"}
    grasp_temperature, synflow_iterations, seed, dtype : as :func:`meanfield.torch.scores`

    Returns
    -------
    pandas.DataFrame
        As :func:`kept_per_layer`, with the mean factor ``rho`` of each layer (1.0 without
        rescaling).

    Examples
    --------
    >>> import torch
    >>> from meanfield.torch import prune_at_init
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Linear(20, 20), torch.nn.Tanh(), torch.nn.Linear(20, 3))
    >>> t = prune_at_init(net, torch.randn(8, 20), torch.arange(8) % 3, "snip", 0.9, rescale=True)
    >>> int(t.kept.sum()), hasattr(net[0], "weight_orig"), hasattr(net[0], "weight_mask")
    (46, True, True)
    """
    check_model(model)
    s = check_probability("sparsity", sparsity)
    check_choice("scope", scope, SCOPES)
    if rescale not in RESCALES or rescale is None:
        raise InputError(f"`rescale` == {rescale!r}: must be one of False, True, 'neuron', 'layer'")
    mode = "neuron" if rescale is True else rescale
    sc = scores(model, X, y, method, batches=batches, sparsity=s if method == "synflow" else None,
                grasp_temperature=grasp_temperature, synflow_iterations=synflow_iterations,
                seed=seed, dtype=dtype)
    masks = _masks(model, sc, s, scope)
    rhos = []
    for (_, m), mask in zip(prunable(model), masks):
        w = getattr(m, "weight_orig", m.weight)
        tmask = torch.from_numpy(mask).to(dtype=w.dtype, device=w.device)
        if mode:
            dense = effective_weight(m).cpu().double().numpy()
            rho = row_factors(dense, mask, mode)
        tprune.custom_from_mask(m, "weight", tmask)
        if mode:
            with torch.no_grad():
                shape = (-1,) + (1,) * (w.ndim - 1)
                m.weight_orig.mul_(torch.from_numpy(rho).to(dtype=w.dtype, device=w.device)
                                   .view(shape))
                m.weight = m.weight_orig * m.weight_mask  # as the hook will at the next forward
            rhos.append(float(rho.mean()))
        else:
            rhos.append(1.0)
    # what the layers keep now (an earlier mask and the new one combined, as torch combines them)
    table = _table(model, [m.weight_mask.detach().cpu().numpy() != 0 for _, m in prunable(model)])
    table["rho"] = rhos
    return table


def _layer_event(masks):
    return mask_event(masks, "layer", None)


class _Flow:
    """Whether a mask disconnects the model's output from its input: the linearised model
    (:func:`meanfield.torch.scoring.linearised`, biases 0, normalisation scales 1) with each
    weight replaced by mask / fan_in is run on an all-ones input; its output sum is > 0 exactly
    when some path from an input to an output keeps all its weights (every term is >= 0, and the
    1 / fan_in keeps an average, not a count, so nothing overflows; a surviving path's product
    would have to fall under 1e-308 to be missed)."""

    def __init__(self, model, shape):
        self.twin, self.params = _linear_twin(model, torch.float64)
        with torch.no_grad():
            for name, p in self.twin.named_parameters():
                if name.rsplit(".", 1)[-1] != "bias" and all(p is not q for _, q in self.params):
                    p.fill_(1.0)
        self.fan = [p[0].numel() for _, p in self.params]
        self.device = self.params[0][1].device
        self.ones = torch.ones((1,) + tuple(shape), dtype=torch.float64, device=self.device)

    def connected(self, masks):
        with torch.no_grad():
            for (_, p), m, f in zip(self.params, masks, self.fan):
                p.copy_(torch.from_numpy(m).to(dtype=torch.float64, device=self.device) / f)
            return synflow_flow(self.twin, self.ones).item() > 0


def _disconnect(flat, masks_at, flow):
    """Smallest k such that pruning every score <= the k-th smallest distinct value disconnects,
    by bisection over the distinct values (pruning more never reconnects)."""
    values = np.unique(flat)
    if flow.connected(masks_at(values[-1])):
        return math.nan  # a path of unprunable edges: pruning everything does not disconnect
    lo, hi = -1, values.size - 1  # pruning <= values[hi] (everything) disconnects
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if flow.connected(masks_at(values[mid])):
            lo = mid
        else:
            hi = mid
    return int(np.count_nonzero(flat <= values[hi])) / flat.size


def critical_sparsity(model, X=None, y=None, method="snip", definition="layer", *, batches=None,
                      grasp_temperature=GRASP_TEMPERATURE, synflow_iterations=100, seed=None,
                      dtype=None, tol=1e-3):
    """The critical sparsity s_cr of ``model`` under ``method``: the smallest global sparsity at
    which pruning makes the event of ``definition`` happen (docs/critical_sparsity.md).

    * ``"layer"`` (the paper's): some prunable tensor is emptied. For a score-based method
      m = min over tensors of their largest score and s_cr = #{scores <= m} / #weights (ties at m
      pruned together), as :func:`meanfield.pruning.critical_sparsity`.
    * ``"disconnect"``: no path from the input to the output keeps all its weights (skips,
      pooling and normalisation count as unprunable edges): found by bisection over the score
      thresholds, each step a pass of the linearised model on the masks (exact: pruning more
      never reconnects).

    SynFlow's scores depend on its target sparsity, so there is no single score list: its s_cr
    is the smallest target at which the event happens, found by bisection to ``tol``, each step
    a full iterative SynFlow (``synflow_iterations`` rounds)
    (:func:`meanfield.pruning.critical.bisect_target`, which says why the target and not the
    mask's sparsity).

    Parameters
    ----------
    model : torch.nn.Module
    X, y, batches, method, grasp_temperature, synflow_iterations, seed, dtype :
        as :func:`meanfield.torch.scores`
    definition : {"layer", "disconnect"}
    tol : float in (0, 0.5], default 1e-3
        SynFlow's bisection tolerance on the target.

    Returns
    -------
    float

    Examples
    --------
    >>> import torch
    >>> from meanfield.torch import critical_sparsity
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.Tanh(), torch.nn.Linear(10, 2))
    >>> s = critical_sparsity(net, torch.randn(16, 10), torch.arange(16) % 2, "magnitude")
    >>> 0 < s < 1
    True
    """
    check_model(model)
    check_choice("definition", definition, DEFINITIONS)
    if batches is not None:
        batches = list(batches)  # read once: a generator would be spent by the first use
    kw = dict(batches=batches, grasp_temperature=grasp_temperature,
              synflow_iterations=synflow_iterations, seed=seed, dtype=dtype)
    flow = None
    if definition == "disconnect":
        shape = _input_shape(X, batches)
        flow = _Flow(model, shape)
    if method != "synflow":
        arrays = _arrays(model, scores(model, X, y, method, **kw))
        if definition == "layer":
            return _core_critical([a.ravel() for a in arrays])
        flat = np.concatenate([a.ravel() for a in arrays])
        return _disconnect(flat, lambda t: [a > t for a in arrays], flow)
    tol = check_scalar("tol", tol, min_val=0.0, max_val=0.5, include_boundaries="right")

    def event(target):
        masks = _masks(model, scores(model, X, y, "synflow", sparsity=target, **kw), target,
                       "global")
        return _layer_event(masks) if flow is None else not flow.connected(masks)

    return bisect_target(event, tol)


def _input_shape(X, batches):
    if batches is not None:
        first = next(iter(batches))
        return tuple(torch.as_tensor(first[0]).shape[1:])
    if X is None:
        raise InputError("`X` is needed (or `batches=`): the input's shape")
    return tuple(torch.as_tensor(X).shape[1:])


def _mask_path(path):
    if path is None:
        raise InputError("`path` == None: must be a file path (str or Path)")
    path = Path(check_path("path", path))
    if path.suffix == ".json":
        raise InputError(f"`path` == {str(path)!r}: the masks' file cannot end in .json, the "
                         f"name of the sparsity report written beside it (use .pt)")
    return path, path.with_suffix(".json")


def save_masks(model, path):
    """Write the ``*_mask`` buffers of ``model``'s pruned layers to ``path`` (``torch.save`` of a
    dict keyed by their state-dict names, ``"layer1.0.conv1.weight_mask"``) and a sparsity
    report beside it, ``path`` with the suffix ``.json``: ``{"total", "unpruned", "sparsity",
    "layers": {name: {"shape", "total", "unpruned"}}}`` over every prunable layer (an unpruned
    one counts whole).

    Returns
    -------
    dict
        The report.
    """
    check_model(model)
    path, report_path = _mask_path(path)
    masks, layers = {}, {}
    for name, m in prunable(model):
        stem = name[: -len("weight")]
        if hasattr(m, "weight_mask"):
            masks[stem + "weight_mask"] = m.weight_mask.detach().cpu().clone()
            kept = int(m.weight_mask.count_nonzero())
        else:
            kept = m.weight.numel()
        layers[name] = {"shape": list(m.weight.shape), "total": m.weight.numel(),
                        "unpruned": kept}
    total = sum(v["total"] for v in layers.values())
    unpruned = sum(v["unpruned"] for v in layers.values())
    report = {"total": total, "unpruned": unpruned, "sparsity": 1 - unpruned / total,
              "layers": layers}
    torch.save(masks, path)
    report_path.write_text(json.dumps(report, indent=1))
    return report


def load_masks(model, path):
    """Apply the masks written by :func:`save_masks` to ``model`` in place: a layer already pruned
    has its ``weight_mask`` replaced, any other is pruned with ``custom_from_mask``. Every mask
    must name a prunable layer of ``model`` and match its weight's shape (checked before anything
    changes). Returns ``model``."""
    check_model(model)
    path, _ = _mask_path(path)
    if not path.exists():
        raise InputError(f"`path` == {str(path)!r}: no such file")
    masks = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(masks, dict):
        raise InputError(f"`path` == {str(path)!r}: not a file of masks written by save_masks")
    layers = {name[: -len("weight")] + "weight_mask": m for name, m in prunable(model)}
    for key, mask in masks.items():
        if key not in layers:
            raise InputError(f"mask {key!r} in {str(path)!r} names no prunable layer of the model")
        m = layers[key]
        w = getattr(m, "weight_orig", m.weight)
        if tuple(mask.shape) != tuple(w.shape):
            raise InputError(f"mask {key!r} has shape {tuple(mask.shape)}, the layer's weight "
                             f"{tuple(w.shape)}")
    for key, mask in masks.items():
        m = layers[key]
        w = getattr(m, "weight_orig", m.weight)
        mask = mask.to(dtype=w.dtype, device=w.device)
        if hasattr(m, "weight_mask"):
            with torch.no_grad():
                m.weight_mask.copy_(mask)
                m.weight = m.weight_orig * m.weight_mask
        else:
            tprune.custom_from_mask(m, "weight", mask)
    return model
