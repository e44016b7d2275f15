"""The paper's ResNets in torch: CIFAR-style ResNets of depth 6k + 2 and their Stable versions,
initialised on the Edge of Chaos (docs/torch.md, "Models").

Layout (He et al. 2016, CIFAR ResNets, in the pre-activation order of He et al. 2016b so that
each block is the mean-field residual block y ↦ y + α F(y) of docs/theory.md §1): a 3 × 3 stem
convolution to ``width`` channels; three stages of k blocks with ``width``, 2 ``width`` and
4 ``width`` channels, the first block of stages 2 and 3 halving the image with stride 2; each
block y ↦ P y + α · conv₂(φ(n₂(conv₁(φ(n₁(y)))))), P the identity or, where the shape changes, a
1 × 1 projection convolution (a weight, scored and pruned like any other); then φ, a global
average over positions and the dense readout. 6k convolutions + stem + readout = depth 6k + 2.
α = 1 for the ResNet, 1/√L with L = 3k blocks for the Stable ResNet (Hayou et al. 2021, §4).

Normalisation ``norm=None`` (default): n₁ = n₂ = identity and every conv has a bias, so the
network is the one the mean-field theory describes and EOC initialisation sets its variances;
``norm="batch"``: BatchNorm before each activation and no conv bias, as the usual CIFAR ResNets
— BatchNorm renormalises every channel whatever σ_w, so the EOC then says little about the
initial network (docs/torch.md); it is offered to compare with the usual practice.
"""

from __future__ import annotations

import math

from torch import nn

from .._validate import InputError, check_choice, check_int
from ._acts import torch_activation
from .init import init_eoc_

__all__ = ["ResNet", "resnet", "stable_resnet"]


class _Block(nn.Module):
    def __init__(self, cin, cout, stride, phi, alpha, norm):
        super().__init__()
        bias = norm is None
        self.norm1 = nn.BatchNorm2d(cin) if norm else nn.Identity()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=bias)
        self.norm2 = nn.BatchNorm2d(cout) if norm else nn.Identity()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=bias)
        self.shortcut = (nn.Conv2d(cin, cout, 1, stride, 0, bias=bias)
                         if stride != 1 or cin != cout else nn.Identity())
        self.phi, self.alpha = phi, alpha

    def forward(self, y):
        branch = self.conv2(self.phi(self.norm2(self.conv1(self.phi(self.norm1(y))))))
        return self.shortcut(y) + self.alpha * branch


class ResNet(nn.Module):
    """A CIFAR-style (Stable) ResNet; build it with :func:`resnet` or :func:`stable_resnet`.
    Input (B, in_channels, h, h), output (B, classes) logits."""

    def __init__(self, depth, *, classes, in_channels, width, activation, stable, norm):
        super().__init__()
        k = (depth - 2) // 6
        self.depth, self.blocks, self.activation = depth, 3 * k, activation
        self.alpha = 1.0 / math.sqrt(3 * k) if stable else 1.0
        phi = torch_activation(activation)
        self.phi = phi
        self.stem = nn.Conv2d(in_channels, width, 3, 1, 1, bias=norm is None)
        layers, cin = [], width
        for stage in range(3):
            cout = width * 2 ** stage
            for b in range(k):
                stride = 2 if stage > 0 and b == 0 else 1
                layers.append(_Block(cin, cout, stride, phi, self.alpha, norm))
                cin = cout
        self.stages = nn.Sequential(*layers)
        self.norm = nn.BatchNorm2d(cin) if norm else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        y = self.stages(self.stem(x))
        return self.fc(self.pool(self.phi(self.norm(y))).flatten(1))


def resnet(depth=32, *, classes=10, in_channels=3, width=16, activation="relu", sigma_b=0.0,
           sigma_w="eoc", norm=None, stable=False, seed=None):
    """A CIFAR-style ResNet of depth 6k + 2 (20, 32, 50 … 104), EOC-initialised.

    Parameters
    ----------
    depth : int, 6k + 2 with k >= 1
    classes, in_channels : int, default 10, 3
    width : int, default 16
        Channels of the first stage (then 2 ×, 4 ×).
    activation : str, default "relu"
    sigma_b, sigma_w : the initialisation, as :func:`meanfield.torch.init_eoc_` (ReLU's EOC is
        at σ_b = 0, σ_w = √2)
    norm : {None, "batch"}, default None
    stable : bool, default False
        Scale each residual branch by 1/√L, L = 3k blocks (the Stable ResNet).
    seed : int, optional
        Seeds the initialisation.

    Returns
    -------
    ResNet
        ``model.init_table`` holds :func:`init_eoc_`'s table.

    Examples
    --------
    >>> from meanfield.torch.models import resnet
    >>> net = resnet(20, width=4, activation="tanh", sigma_b=0.3, seed=0)
    >>> net.blocks, sum(p.numel() for n, p in net.named_parameters() if n.endswith("weight"))
    (9, 17132)
    """
    depth = check_int("depth", depth, 8)
    if (depth - 2) % 6:
        raise InputError(f"`depth` == {depth}: must be 6k + 2 (8, 14, 20, 32, 50, 104, ...)")
    if norm is not None:
        check_choice("norm", norm, ("batch",))
    model = ResNet(depth, classes=check_int("classes", classes, 2),
                   in_channels=check_int("in_channels", in_channels, 1),
                   width=check_int("width", width, 1), activation=activation,
                   stable=bool(stable), norm=norm)
    model.init_table = init_eoc_(model, activation, sigma_b, sigma_w,
                                 norm="keep" if norm else "error", seed=seed)
    return model


def stable_resnet(depth=32, **kwargs):
    """:func:`resnet` with ``stable=True``: each residual branch scaled by 1/√L."""
    return resnet(depth, stable=True, **kwargs)
