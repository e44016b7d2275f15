"""What the theory wing's public functions share: their parameters' checks (broadcast, memory) and
the variance map F_q (docs/theory.md §2)."""

from __future__ import annotations

import math

import numpy as np

from .._validate import (
    broadcast,
    check_array,
    check_memory,
)
from ..activations import get_activation
from . import _expect


class NoFixedPointWarning(RuntimeWarning):
    """The variance map has no finite fixed point: q^l → ∞ with depth (e.g. ReLU with σ_w > √2)."""


# float64 values a function holds per point of its broadcast inputs, besides the inputs: outputs,
# and the temporaries of the expectations and solvers (a generous count: it only has to refuse
# what cannot fit, such as a (10⁶, 1) array broadcast against a (10⁶,) one)
_WORK_PER_POINT = 12


def _params(activation, **named):
    act = get_activation(activation)
    arrays = broadcast(**{k: check_array(k, v) for k, v in named.items()})
    shape = arrays[0].shape
    size = math.prod(shape)
    if size > 1:  # before the broadcast views are copied into flat arrays
        names = ", ".join(f"`{k}`" for k in named)
        check_memory(f"{names} broadcast to shape {shape}",
                     8 * size * (len(arrays) + _WORK_PER_POINT))
    return act, shape, [np.ascontiguousarray(a, dtype=np.float64).ravel() for a in arrays]


def _q_map(act, q, sw, sb):
    return sb * sb + sw * sw * _expect.diag(act, 0, 0, 0, q)


