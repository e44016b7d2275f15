"""meanfield: the mean-field theory of deep random networks and what it says about pruning at
initialization (Hayou, Ton, Doucet, Teh, ICLR 2021), computed exactly.

The public API is re-exported here. The package is laid out in wings, each answering one question
(imports run downward: theory <- nets <- pruning <- prediction; training and sweeps beside them):

* ``meanfield.theory``     infinite width: maps, fixed points, the Edge of Chaos, phase diagrams
* ``meanfield.nets``       finite random networks: initialisation, the forward and backward pass
* ``meanfield.pruning``    scores, masks, rescaling, s_cr, the Monte Carlo
* ``meanfield.prediction`` the mean-field prediction of s_cr and of what each layer keeps
* ``meanfield.training``   train(), data-parallel SGD, sparse kernels, data sets
* ``meanfield.sweeps``     executors and resumable stores for long sweeps

and at the top ``activations``, ``stats``, ``plotting``, ``cli`` and ``_validate`` (the one
vocabulary of input checks).
"""

from ._version import __version__ as __version__
from .activations import Activation, available_activations, get_activation
from .prediction import (
    PredictionRangeWarning,
    layer_gradient_scales,
    ordered_phase_bound,
    predict_critical_sparsity,
    predict_kept_per_layer,
)
from .pruning import kept_per_layer, simulate_critical_sparsity, sweep_critical_sparsity, sweep_kept_per_layer
from .theory import (
    NoFixedPointWarning,
    UnstableEOCWarning,
    backward_gains,
    c_map,
    c_star,
    chi_1,
    chi_c,
    conv_cov_map,
    conv_depth_scales,
    conv_input_covariance,
    conv_phase_diagram,
    cov_map,
    depth_scales,
    eoc,
    eoc_curve,
    eoc_rate,
    fixed_points,
    phase,
    phase_diagram,
    propagate,
    propagate_spatial,
    q_map,
    q_star,
)
from .training import available_datasets, load_dataset, train

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
    "conv_cov_map",
    "conv_depth_scales",
    "conv_input_covariance",
    "conv_phase_diagram",
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
    "propagate_spatial",
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
