"""A meanfield :class:`~meanfield.nets.Network` as a torch module with the same weights."""

from __future__ import annotations

import torch
from torch import nn

from ..nets.network import check_network
from ._acts import torch_activation

__all__ = ["from_network", "DenseNet"]


class DenseNet(nn.Module):
    """The FFNN / ResNet / Stable ResNet of :mod:`meanfield.nets.network` in torch: ``layers`` is
    an ``nn.ModuleList`` of L + 1 ``nn.Linear`` (W¹ … W^L, readout), y¹ = W¹x + B¹, then
    y^l = W^l φ(y^{l−1}) + B^l (FFNN) or y^l = y^{l−1} + α (W^l φ(y^{l−1}) + B^l) (ResNets), logits
    = W^out φ(y^L) + B^out (docs/theory.md §1)."""

    def __init__(self, sizes, activation, residual=False, alpha=1.0):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activation = activation
        self.phi = torch_activation(activation)
        self.residual, self.alpha = residual, float(alpha)

    def forward(self, x):
        *hidden, out = self.layers
        y = hidden[0](x)
        for lin in hidden[1:]:
            z = lin(self.phi(y))
            y = y + self.alpha * z if self.residual else z
        return out(self.phi(y))


def from_network(net, dtype=None):
    """A torch module computing the same function as the meanfield network ``net``, with its
    weights copied (``layers[k].weight`` is ``net.weights[k]``).

    Parameters
    ----------
    net : meanfield.nets.Network
    dtype : torch.dtype, optional
        Default: the network's own (float32 or float64).

    Returns
    -------
    DenseNet
        Its prunable weights are named ``"layers.0.weight"`` … ``"layers.L.weight"``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from meanfield.nets import init_network, forward
    >>> from meanfield.torch import from_network
    >>> net = init_network("tanh", 5, 3, 1.3, 0.2, arch="resnet", dtype=np.float64,
    ...                    rng=np.random.default_rng(0))
    >>> X = np.random.default_rng(1).standard_normal((4, 5))
    >>> bool(np.allclose(from_network(net)(torch.from_numpy(X)).detach().numpy(), forward(net, X)))
    True
    """
    net = check_network(net)
    sizes = [net.n_in] + [w.shape[0] for w in net.weights]
    model = DenseNet(sizes, net.activation.name, net.arch != "ffnn", net.alpha)
    dt = dtype or {"float32": torch.float32, "float64": torch.float64}[str(net.dtype)]
    model = model.to(dt)
    with torch.no_grad():
        for lin, w, b in zip(model.layers, net.weights, net.biases):
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
    return model
