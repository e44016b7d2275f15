"""The training wing: train pruned networks and record what happens (docs/training.md).

``train`` holds :func:`train`; ``_sgd`` the data-parallel SGD; ``_sparse`` the sparse-layer kernels;
``datasets`` the data sets.
"""

from .datasets import available_datasets, load_dataset
from .trainer import INIT_PRESETS, train

__all__ = ["train", "INIT_PRESETS", "load_dataset", "available_datasets"]
