"""The theory wing: infinite-width signal propagation (docs/theory.md).

Gaussian expectations (``_gauss``, ``_expect``, ``_qtable``), fixed points and their solvers
(``_solve``), the q, c and covariance maps and backward gains (``maps``), the fixed points, χ₁, χ_c,
depth scales and the EOC rate (``fixed``), the Edge of Chaos,
phases and phase diagrams (``eoc``), the convergence of correlations (``convergence``), and
the convolutional networks' spatial covariance map (``conv``).
"""

from ._base import NoFixedPointWarning
from .conv import (
    conv_cov_map,
    conv_depth_scales,
    conv_input_covariance,
    conv_phase_diagram,
    propagate_spatial,
)
from .convergence import convergence_table
from .fixed import c_star, chi_1, chi_c, depth_scales, eoc_rate, q_star
from .maps import backward_gains, c_map, cov_map, propagate, q_map
from .phases import (
    SIGMA_W_PRESETS,
    UnstableEOCWarning,
    eoc,
    eoc_curve,
    fixed_points,
    phase,
    phase_diagram,
    preset_name,
    resolve_sigma_w,
)

__all__ = ["q_map", "c_map", "cov_map", "propagate", "backward_gains", "q_star", "c_star", "chi_1",
           "chi_c", "depth_scales", "eoc_rate", "NoFixedPointWarning", "eoc", "eoc_curve", "phase",
           "phase_diagram", "fixed_points", "UnstableEOCWarning", "SIGMA_W_PRESETS", "resolve_sigma_w",
           "preset_name", "convergence_table", "conv_cov_map", "propagate_spatial",
           "conv_input_covariance", "conv_depth_scales", "conv_phase_diagram"]
