"""The pruning wing: pruning at initialization on finite random networks (docs/critical_sparsity.md).

``scoring`` (SNIP, GraSP, SynFlow, magnitude, random), ``masks`` (global masks, kept fractions,
rescaling, shuffles), ``critical`` (s_cr of either event), ``chi`` (the measured backward gain),
``trial`` (one Monte Carlo trial of s_cr), ``conv`` (the scores, s_cr and trial of conv nets) and
``monte_carlo`` (the sweeps over configurations and trials: :func:`simulate_critical_sparsity`,
:func:`kept_per_layer`).
"""

from .chi import effective_chi
from .conv import (
    conv_critical_sparsity,
    conv_critical_sparsity_trial,
    conv_mask_event,
    conv_scores,
)
from .critical import DEFINITIONS, critical_sparsity
from .masks import (
    RESCALE_MODES,
    first_layer_variance,
    global_masks,
    kept_fraction,
    rescale,
    rescale_factors,
    shuffle_masks,
)
from .monte_carlo import (
                    kept_per_layer,
                    simulate_critical_sparsity,
                    sweep_critical_sparsity,
                    sweep_kept_per_layer,
)
from .scoring import (
                    GRASP_TEMPERATURE,
                    METHODS,
                    grasp_scores,
                    hessian_vector_product,
                    magnitude_scores,
                    random_scores,
                    scores,
                    snip_scores,
                    synflow_scores,
)
from .trial import critical_sparsity_trial, snip_critical_sparsity_trial

__all__ = ["snip_scores", "grasp_scores", "synflow_scores", "magnitude_scores", "random_scores",
           "scores", "global_masks", "critical_sparsity", "kept_fraction", "rescale",
           "rescale_factors",
           "shuffle_masks", "RESCALE_MODES", "first_layer_variance", "effective_chi",
           "hessian_vector_product", "snip_critical_sparsity_trial", "critical_sparsity_trial",
           "METHODS", "GRASP_TEMPERATURE", "DEFINITIONS", "simulate_critical_sparsity", "kept_per_layer",
           "sweep_critical_sparsity", "sweep_kept_per_layer", "conv_scores",
           "conv_critical_sparsity", "conv_mask_event", "conv_critical_sparsity_trial"]
