"""The theory wing: infinite-width signal propagation (docs/theory.md).

Gaussian expectations (``_gauss``, ``_expect``, ``_qtable``), fixed points and their solvers
(``_solve``), the q, c and covariance maps, χ₁, χ_c and depth scales (``maps``), the Edge of Chaos,
phases and phase diagrams (``eoc``), and the convergence of correlations (``convergence``).
"""

from .convergence import convergence_table
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
           "preset_name", "convergence_table"]
