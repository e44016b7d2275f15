"""The architectures every wing takes (``arch=``) and the scale of their residual branches
(docs/theory.md §1): the one home of both rules.

* ``"ffnn"``:           y^l = W^l φ(y^{l−1}) + B^l                  (no skip)
* ``"resnet"``:         y^l = y^{l−1} + (W^l φ(y^{l−1}) + B^l)       α = 1
* ``"stable_resnet"``:  y^l = y^{l−1} + (W^l φ(y^{l−1}) + B^l) / √L  α = 1/√L (Hayou et al. 2021)
"""

from __future__ import annotations

import math

#: the architectures every module takes (``arch=``): the one list, read by the theory, the nets,
#: pruning, the predictions, training and the command line
ARCHS = ("ffnn", "resnet", "stable_resnet")
#: the convolutional architectures (docs/convolutional.md): the theory's spatial maps take all
#: three, as does the Monte Carlo of finite nets (meanfield.nets.conv)
CONV_ARCHS = ("cnn", "conv_resnet", "conv_stable_resnet")


#: the dense counterpart of each conv architecture: its branch scale, and its maps on spatially
#: uniform inputs (docs/convolutional.md)
DENSE_OF = {"cnn": "ffnn", "conv_resnet": "resnet", "conv_stable_resnet": "stable_resnet"}


def conv_branch_scale(arch, depth):
    """α of a conv architecture: as :func:`branch_scale` of its dense counterpart."""
    return branch_scale(DENSE_OF[arch], depth)


def branch_scale(arch, depth):
    """α, the scale of the residual branches of a validated ``arch`` at ``depth`` L: None for
    ``"ffnn"`` (no skip), 1.0 for ``"resnet"``, 1/√L for ``"stable_resnet"`` (``depth`` required
    there, an int >= 1, as the caller checked)."""
    if arch == "ffnn":
        return None
    if arch == "resnet":
        return 1.0
    return 1.0 / math.sqrt(depth)
