"""The nets wing: finite random networks (docs/theory.md §1).

``network`` holds the :class:`Network`, its initialisation and the public forward pass and
gradients; ``_pass`` the one forward and backward pass behind them and behind training's sparse
passes (the layer loop, and numba layer kernels around BLAS products); ``_layer`` a layer's
elementwise work and the named structures the kernels take; ``_sampler`` the Gaussian draws;
``conv`` the conv nets (CNN, conv ResNets, the CIFAR-style stage layout; docs/convolutional.md).
"""

from ._sampler import standard_normal
from .conv import (
    ConvLayer,
    ConvNetwork,
    conv_forward,
    conv_hessian_vector_product,
    conv_layout,
    conv_loss_and_grads,
    init_conv_network,
)
from .network import ARCHS, Network, forward, init_network, loss_and_grads, parameter_count

__all__ = ["ARCHS", "Network", "init_network", "forward", "loss_and_grads", "parameter_count",
           "standard_normal", "ConvNetwork", "ConvLayer", "conv_layout", "init_conv_network",
           "conv_forward", "conv_loss_and_grads", "conv_hessian_vector_product"]
