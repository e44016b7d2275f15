"""meanfield: the mean-field theory of deep random networks and what it says about pruning at
initialization (Hayou, Ton, Doucet, Teh, ICLR 2021), computed exactly.

The public API is re-exported here; everything else is private.
"""

from .activations import Activation, available_activations, get_activation
from .datasets import available_datasets, load_dataset
from .eoc import UnstableEOCWarning, eoc, eoc_curve, fixed_points, phase, phase_diagram
from .maps import (
    NoFixedPointWarning,
    backward_gains,
    c_map,
    c_star,
    chi_1,
    chi_c,
    cov_map,
    depth_scales,
    eoc_rate,
    propagate,
    q_map,
    q_star,
)
from .prediction import (
    PredictionRangeWarning,
    layer_gradient_scales,
    ordered_phase_bound,
    predict_critical_sparsity,
    predict_kept_per_layer,
)
from .sparsity import (
    kept_per_layer,
    simulate_critical_sparsity,
    sweep_critical_sparsity,
    sweep_kept_per_layer,
)
from .training import train

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "NoFixedPointWarning",
    "available_activations",
    "available_datasets",
    "backward_gains",
    "load_dataset",
    "c_map",
    "c_star",
    "chi_1",
    "chi_c",
    "cov_map",
    "depth_scales",
    "eoc",
    "eoc_curve",
    "eoc_rate",
    "fixed_points",
    "phase",
    "phase_diagram",
    "UnstableEOCWarning",
    "PredictionRangeWarning",
    "get_activation",
    "propagate",
    "q_map",
    "q_star",
    "train",
    "kept_per_layer",
    "layer_gradient_scales",
    "ordered_phase_bound",
    "predict_critical_sparsity",
    "predict_kept_per_layer",
    "simulate_critical_sparsity",
    "sweep_critical_sparsity",
    "sweep_kept_per_layer",
]
