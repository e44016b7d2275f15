"""The critical sparsity s_cr of a list of scores, for either event (docs/critical_sparsity.md,
"Which event s_cr marks").
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import jit
from .._validate import (
    InputError,
    check_choice,
)
from ..theory.archs import ARCHS
from ._checks import _check_scores

# what "critical" means (docs/critical_sparsity.md, "Which event s_cr marks"): "layer", the paper's
# (some layer is fully pruned); "disconnect", the output no longer depends on the input
DEFINITIONS = ("layer", "disconnect")


# ------------------------------------------------------------------------------------------------
# Kernels
# ------------------------------------------------------------------------------------------------

@jit
def _widest_step(G, b, residual, out):
    """One layer of the widest-path recursion of the "disconnect" critical sparsity:
    out_i = max_j min(G_ij, b_j), then max(out_i, b_i) if ``residual`` (the skip y^{l−1}_i → y^l_i,
    never pruned). G (n_out, n_in) scores, b (n_in,) float64, out (n_out,) float64."""
    n_out, n_in = G.shape
    for i in range(n_out):
        best = -np.inf
        for j in range(n_in):
            v = min(float(G[i, j]), b[j])
            if v > best:
                best = v
        if residual and b[i] > best:
            best = b[i]
        out[i] = best


@jit
def _count_le(s, m):
    """#{i : s[i] <= m}, one vectorised pass."""
    c = 0
    for i in range(s.size):
        c += s[i] <= m
    return c


def _check_definition(definition):
    if not isinstance(definition, str) or definition not in DEFINITIONS:
        raise InputError(f"`definition` == {definition!r}: must be one of "
                         f"{', '.join(map(repr, DEFINITIONS))}")
    return definition


def _disconnect_threshold(scores, arch):
    """m* = the largest score threshold τ at which some path from an input to a logit keeps all its
    weights (g > τ): the max over paths of the min score on the path, the skips of a ResNet's
    blocks counting as unprunable edges. By dynamic programming over the layers (``b_i``: the best
    path's bottleneck to unit i), O(#weights). ``scores``: 2-d arrays shaped like the weights
    (checked by the caller)."""
    L = len(scores) - 1
    b = np.full(scores[0].shape[1], np.inf)
    for k, G in enumerate(scores):
        out = np.empty(G.shape[0])
        _widest_step(G, b, arch != "ffnn" and 0 < k < L, out)
        b = out
    return b.max()


def _check_chain(scores, arch):
    """The shapes "disconnect" needs: 2-d arrays (fan_out, fan_in) that chain, square blocks."""
    L = len(scores) - 1
    for l, a in enumerate(scores):
        if a.ndim != 2 or (l > 0 and a.shape[1] != scores[l - 1].shape[0]):
            raise InputError(f"`scores[{l}]` has shape {a.shape}: definition='disconnect' needs "
                             f"one 2-d array per layer shaped like the weights, (fan_out, fan_in), "
                             f"each fan_in the previous fan_out")
        if arch != "ffnn" and 0 < l < L and a.shape[0] != a.shape[1]:
            raise InputError(f"`scores[{l}]` has shape {a.shape}: a residual block of "
                             f"arch={arch!r} must be square")



def critical_sparsity(scores, *, definition="layer", arch="ffnn"):
    """Critical sparsity s_cr = #{g ≤ m} / #{all}: the smallest global sparsity at which pruning by
    these scores (ties at m pruned together, as in :func:`global_masks`) makes the event of
    ``definition`` happen. docs/critical_sparsity.md, "Which event s_cr marks".

    * ``"layer"`` (the paper's): some layer is fully pruned, m = min_l max_ij g^l_ij. An emptied
      FFNN layer makes the output a constant; an emptied residual block of a ResNet does not (its
      skip carries y^{l−1} on), so for ResNets this is not a loss of the input.
    * ``"disconnect"``: the output no longer depends on the input: no path from an input to a logit
      keeps all its weights. m = m* = max over such paths of the smallest score on the path (a
      ResNet's skips count as edges that are never pruned): at threshold τ >= m* every path has
      lost a weight, at τ < m* the best path is whole. In a ResNet (:mod:`meanfield.nets`:
      y¹ = W¹x + B¹ and the readout have no skip) every path crosses W¹ and W^out, so
      m* <= min(max g¹, max g^out): emptying the input layer (y¹ = B¹) or the readout
      (logits = B^out) disconnects, but the paths are usually cut earlier, once the few weights
      left in W¹ and W^out no longer meet. In an FFNN m* <= the "layer" m (a path crosses every
      layer), with equality unless a path is cut before any layer is empty.

    O(#weights) either way (one pass for the maxima or for the widest-path recursion, one to
    count).

    Parameters
    ----------
    scores : list of array_like
        One array per layer (W¹ first, readout last), no nan. For ``"disconnect"``, 2-d arrays
        shaped like the weights, (fan_out, fan_in).
    definition : {"layer", "disconnect"}, default "layer"
    arch : {"ffnn", "resnet", "stable_resnet"}, default "ffnn"
        The architecture the scores come from (used by ``"disconnect"`` only).

    Returns
    -------
    float

    References
    ----------
    Hayou, Ton, Doucet, Teh (2021), *Robust Pruning at Initialization*, §3; docs/theory.md §4.

    Examples
    --------
    >>> from meanfield.pruning import critical_sparsity
    >>> critical_sparsity([[0.5, 2.0, 0.1], [1.0, 0.7]])  # m = 1.0: 4 of 5 scores are <= m
    0.8
    >>> sc = [[[0.5, 2.0]], [[0.3]], [[4.0]]]  # 2 inputs -> 1 unit -> 1 unit -> 1 logit
    >>> critical_sparsity(sc, definition="disconnect")  # every path crosses the 0.3
    0.25
    >>> critical_sparsity(sc, definition="disconnect", arch="resnet")  # the skip bypasses it
    0.75
    """
    definition = _check_definition(definition)
    check_choice("arch", arch, ARCHS)
    sc = _check_scores(scores)
    if definition == "disconnect":
        _check_chain(sc, arch)
        m = _disconnect_threshold(sc, arch)
    else:
        m = min(a.max() for a in sc)
    return sum(int(np.count_nonzero(a <= m)) for a in sc) / sum(a.size for a in sc)


def bisect_target(event, tol=1e-4):
    """The critical sparsity of a method whose scores depend on its target sparsity (SynFlow):
    the smallest target s at which ``event(s)`` happens, by bisection over [0, 1 − tol/4] to
    ``tol``, assuming that once the event has happened it happens at every larger target.

    The target, not the sparsity of the mask found there, is returned: for SynFlow the two part
    at the event, because once a round cuts the last path its flow is 0, every later score ties
    at 0 and the whole network is pruned (a mask of sparsity 1 at every target past the event).

    Parameters
    ----------
    event : callable
        ``event(target) -> bool``: prune to ``target`` and say whether the event (an emptied
        layer, a disconnection) happened.
    tol : float in (0, 0.5], default 1e-4

    Returns
    -------
    float
        The smallest target found with the event, to within ``tol`` above the true one; nan if
        even 1 − tol/4 has none. About log2(1/tol) + 1 calls of ``event``.

    Examples
    --------
    >>> from meanfield.pruning.critical import bisect_target
    >>> round(bisect_target(lambda s: s >= 0.7), 3)
    0.7
    """
    lo, hi = 0.0, 1.0 - tol / 4
    if not event(hi):
        return math.nan
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if event(mid):
            hi = mid
        else:
            lo = mid
    return hi


def mask_event(masks, definition, arch):
    """Whether boolean ``masks`` (one per layer, shaped like the weights) make the event of
    ``definition`` happen: an emptied layer ("layer"), or no path of kept weights from an input
    to a logit ("disconnect", a ResNet's skips counting as kept edges)."""
    if definition == "layer":
        return any(not m.any() for m in masks)
    return _disconnect_threshold([m.astype(np.float64) for m in masks], arch) <= 0.0
