"""Checks shared by the pruning wing: sparsities, score lists, the s_cr event."""

from __future__ import annotations

import math

import numpy as np

from .._validate import (
    InputError,
    InputTypeError,
    check_probability,
)

# ------------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------------

def _check_sparsity(sparsity):
    return check_probability("sparsity", sparsity)


def _check_scores(scores):
    if isinstance(scores, np.ndarray) or not hasattr(scores, "__len__") or len(scores) == 0:
        raise InputTypeError("`scores`: must be a non-empty list of arrays, one per layer")
    out = []
    for l, s in enumerate(scores):
        a = np.asarray(s)
        if a.size == 0:
            raise InputError(f"`scores[{l}]` is empty: every layer must have weights")
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise InputTypeError(f"`scores[{l}]` has dtype {a.dtype}: must be real")
        if np.isnan(a).any():
            raise InputError(f"`scores[{l}]` contains nan: scores must be comparable")
        out.append(a)
    return out


def _n_keep(sparsity, n):
    """⌊(1 − s) n⌋, taking (1 − s) n to be an integer when it is one up to rounding."""
    x = (1.0 - sparsity) * n
    r = round(x)
    return int(r) if abs(x - r) <= 1e-9 * max(1.0, x) else int(math.floor(x))

