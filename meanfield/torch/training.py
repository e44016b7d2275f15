"""SGD training of a (pruned) torch model, for the conv study (docs/torch.md)."""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F

from .._validate import InputError, check_int, check_scalar
from ._params import check_model

__all__ = ["fit", "accuracy"]


@torch.no_grad()
def accuracy(model, X, y, *, batch=1000, device="cpu"):
    """Fraction of ``X`` (n, ...) classified as ``y`` (n,), in eval mode, ``batch`` at a time."""
    if X.shape[0] == 0:
        raise InputError("`X` is empty: no examples to score")
    model.eval()
    right = 0
    for i in range(0, X.shape[0], batch):
        out = model(X[i:i + batch].to(device))
        right += int((out.argmax(1).cpu() == y[i:i + batch]).sum())
    return right / X.shape[0]


def fit(model, X, y, *, X_val=None, y_val=None, epochs=10, batch=128, lr=0.05, momentum=0.9,
        weight_decay=5e-4, seed=0, device="cpu"):
    """Train ``model`` in place by SGD with momentum on the mean cross-entropy.

    Pruned layers stay pruned: ``torch.nn.utils.prune``'s hook multiplies ``weight_orig`` by the
    mask at every forward pass, so a pruned weight gets no gradient. The order of the batches is a
    function of ``seed`` alone (``torch.Generator``), so two arms trained with the same seed see
    the same batches.

    Parameters
    ----------
    model : torch.nn.Module
    X : tensor (n, ...), y : tensor of int64 (n,)
    X_val, y_val : tensors, optional
        Scored after every epoch.
    epochs, batch : int
    lr, momentum, weight_decay : float
    seed : int
    device : str

    Returns
    -------
    pandas.DataFrame
        One row per epoch: ``epoch``, ``train_loss`` (mean over the epoch's batches),
        ``val_accuracy`` (nan without validation data).
    """
    check_model(model)
    epochs, batch = check_int("epochs", epochs, 1), check_int("batch", batch, 1)
    lr = check_scalar("lr", lr, min_val=0.0, include_boundaries="neither")
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(check_int("seed", seed, 0))
    rows = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(X.shape[0], generator=gen)
        total, count = 0.0, 0
        for i in range(0, X.shape[0], batch):
            idx = order[i:i + batch]
            loss = F.cross_entropy(model(X[idx].to(device)), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, count = total + loss.item(), count + 1
        val = accuracy(model, X_val, y_val, device=device) if X_val is not None else float("nan")
        rows.append((epoch, total / count, val))
    return pd.DataFrame(rows, columns=["epoch", "train_loss", "val_accuracy"])
