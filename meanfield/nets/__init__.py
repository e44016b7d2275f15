"""The nets wing: finite random networks (docs/theory.md §1).

``network`` holds the :class:`Network`, its initialisation and the public forward pass and
gradients; ``_pass`` the one forward and backward pass behind them and behind training's sparse
passes (the layer loop, and numba layer kernels around BLAS products); ``_layer`` a layer's
elementwise work and the named structures the kernels take; ``_sampler`` the Gaussian draws.
"""

from ._sampler import standard_normal
from .network import ARCHS, Network, forward, init_network, loss_and_grads, parameter_count

__all__ = ["ARCHS", "Network", "init_network", "forward", "loss_and_grads", "parameter_count",
           "standard_normal"]
