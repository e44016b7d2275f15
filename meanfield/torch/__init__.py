"""meanfield on a user's own PyTorch model (the optional extra ``[torch]``; docs/torch.md).

The rest of meanfield never imports torch; this wing does, and says so when it is missing::

    pip install "meanfield-toolkit[torch]"

* :func:`init_eoc_`        re-draw Linear / Conv weights on the Edge of Chaos, per-layer table
* :func:`scores`           SNIP, GraSP, SynFlow, magnitude, random, {parameter name: tensor}
* :func:`prune_at_init`    global masks in ``torch.nn.utils.prune``'s conventions, SBP-SR rescaling
* :func:`critical_sparsity`, :func:`kept_per_layer`   the model's s_cr and what each layer keeps
* :func:`save_masks`, :func:`load_masks`              the masks and a JSON sparsity report
* :func:`from_network`     a :class:`meanfield.nets.Network` as a torch module (same weights)
* :mod:`meanfield.torch.models`   CIFAR-style ResNets 6k + 2 and Stable ResNets
"""

try:
    import torch as _torch  # noqa: F401
except ImportError as err:  # pragma: no cover - the extra is installed wherever the tests run
    raise ImportError("meanfield.torch needs PyTorch, which meanfield's core does not install: "
                      "pip install \"meanfield-toolkit[torch]\"") from err

from . import models
from ._params import prunable
from .convert import from_network
from .init import init_eoc_
from .masks import critical_sparsity, kept_per_layer, load_masks, prune_at_init, save_masks
from .scoring import METHODS, scores

__all__ = ["init_eoc_", "scores", "prune_at_init", "critical_sparsity", "kept_per_layer",
           "save_masks", "load_masks", "from_network", "prunable", "models", "METHODS"]
