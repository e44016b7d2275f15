"""The prediction wing: the mean-field prediction of s_cr and of what each layer keeps
(docs/critical_sparsity.md §5–§10).

``predict`` holds the public predictions; ``_moments`` the layers' forward and backward moments,
``_score_laws`` and ``_product_law`` the laws of the scores, ``_top_block`` the exactly simulated
top of a finite network, ``_vertex`` and ``_analytic`` the analytic finite-width theory (the 1/N
coupling and the class-space Wishart chain), ``bounds`` the ordered-phase bound.
"""

from .bounds import fit_bound_constant, ordered_phase_bound
from .predict import (
    PredictionRangeWarning,
    critical_sparsity_distribution,
    finite_width_terms,
    layer_gradient_scales,
    predict_critical_sparsity,
    predict_kept_per_layer,
)

__all__ = ["PredictionRangeWarning", "layer_gradient_scales", "predict_critical_sparsity",
           "critical_sparsity_distribution", "finite_width_terms", "predict_kept_per_layer",
           "ordered_phase_bound", "fit_bound_constant"]
