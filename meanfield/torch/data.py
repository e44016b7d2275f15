"""Image data sets for the conv study (docs/torch.md, "The paper's experiment"): CIFAR-10's
python batches, an ImageFolder tree (Tiny ImageNet's layout too), and meanfield's mnist5k as
1 × 32 × 32 images. Each loader returns ``(X_train, y_train, X_test, y_test)``: float32 tensors
(n, channels, h, w) normalised per channel by the training set's mean and standard deviation,
int64 labels."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from .._validate import InputError, check_choice, check_int

__all__ = ["load_images", "DATASETS"]

DATASETS = ("mnist5k", "cifar10", "folder")
_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


def load_images(dataset="mnist5k", path=None, *, pad_to=32):
    """Load an image data set.

    Parameters
    ----------
    dataset : {"mnist5k", "cifar10", "folder"}
        ``"mnist5k"``: :func:`meanfield.load_dataset`'s 5 000 digits and its train / test split
        (extra ``[data]``), the raw 28 × 28 pixels zero-padded to ``pad_to``, then normalised
        per channel like the others (not per pixel: a conv layer shares its weights over
        positions, and per-pixel scaling would blow up the rarely inked border pixels).
        ``"cifar10"``: ``path`` is the folder of CIFAR-10's python version (``data_batch_1`` …
        ``data_batch_5``, ``test_batch``). ``"folder"``: ``path`` holds ``train/<class>/*`` and
        ``val/<class>/*`` (or ``test/``), or Tiny ImageNet's ``val/images`` with
        ``val/val_annotations.txt``; classes are the sorted folder names of ``train``; all
        images must share one size (PNG / JPEG / BMP, read with Pillow).
    path : str or Path
    pad_to : int, default 32
        mnist5k's image side.

    Returns
    -------
    (X_train, y_train, X_test, y_test)
    """
    check_choice("dataset", dataset, DATASETS)
    if dataset == "mnist5k":
        from ..training.datasets import _mnist5k, _split

        side = check_int("pad_to", pad_to, 28)
        X, y = _mnist5k()
        train, test = _split(X, y, 0.2)  # the split of meanfield.load_dataset("mnist5k")
        lo = (side - 28) // 2
        img = np.zeros((X.shape[0], 1, side, side), np.float32)
        img[:, 0, lo:lo + 28, lo:lo + 28] = X.reshape(-1, 28, 28) / 255.0
        return _tensors(img[train], y[train], img[test], y[test])
    if path is None:
        raise InputError(f"`path` == None: dataset {dataset!r} is read from a folder (--data PATH)")
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"`path` == {str(path)!r}: no such folder")
    if dataset == "cifar10":
        return _cifar10(root)
    return _folder(root)


def _tensors(Xtr, ytr, Xte, yte, normalise=True):
    Xtr, Xte = np.asarray(Xtr, np.float32), np.asarray(Xte, np.float32)
    if normalise:
        mean = Xtr.mean(axis=(0, 2, 3), keepdims=True)
        std = Xtr.std(axis=(0, 2, 3), keepdims=True)
        std[std == 0] = 1.0
        Xtr, Xte = (Xtr - mean) / std, (Xte - mean) / std
    return (torch.from_numpy(np.ascontiguousarray(Xtr)), torch.as_tensor(ytr, dtype=torch.int64),
            torch.from_numpy(np.ascontiguousarray(Xte)), torch.as_tensor(yte, dtype=torch.int64))


def _unpickle(file):
    if not file.exists():
        raise InputError(f"{str(file)!r} is missing: `path` must be CIFAR-10's python folder "
                         f"(data_batch_1 … data_batch_5, test_batch)")
    with open(file, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    return np.asarray(d[b"data"], np.float32).reshape(-1, 3, 32, 32) / 255.0, np.asarray(d[b"labels"])


def _cifar10(root):
    parts = [_unpickle(root / f"data_batch_{k}") for k in range(1, 6)]
    Xte, yte = _unpickle(root / "test_batch")
    return _tensors(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                    Xte, yte)


def _images(files):
    from PIL import Image

    arrays = []
    for f in files:
        with Image.open(f) as im:
            a = np.asarray(im.convert("RGB"), np.float32) / 255.0
        if arrays and a.shape != arrays[0].shape:
            raise InputError(f"{str(f)!r} is {a.shape[1]} × {a.shape[0]}, the first image "
                             f"{arrays[0].shape[1]} × {arrays[0].shape[0]}: all must share a size")
        arrays.append(a)
    return np.stack(arrays).transpose(0, 3, 1, 2)


def _class_files(folder, classes):
    files, labels = [], []
    for k, c in enumerate(classes):
        found = sorted(p for p in (folder / c).rglob("*") if p.suffix.lower() in _SUFFIXES)
        files += found
        labels += [k] * len(found)
    return files, labels


def _folder(root):
    train = root / "train"
    if not train.is_dir():
        raise InputError(f"`path` == {str(root)!r}: has no train/ folder of class folders")
    classes = sorted(p.name for p in train.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise InputError(f"{str(train)!r} has {len(classes)} class folder(s): need at least 2")
    files, labels = _class_files(train, classes)
    test = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
    if test is None:
        raise InputError(f"`path` == {str(root)!r}: has no val/ or test/ folder")
    notes = test / "val_annotations.txt"
    if notes.exists():  # Tiny ImageNet: val/images/<file> and "<file>\t<class>\t..." lines
        index = {c: k for k, c in enumerate(classes)}
        pairs = [line.split("\t")[:2] for line in notes.read_text().splitlines() if line.strip()]
        tfiles = [test / "images" / f for f, _ in pairs]
        unknown = sorted({c for _, c in pairs} - set(index))
        if unknown:
            raise InputError(f"{str(notes)!r} names class(es) {', '.join(unknown[:3])} that "
                             f"train/ has no folder for")
        tlabels = [index[c] for _, c in pairs]
    else:
        tfiles, tlabels = _class_files(test, classes)
    if not files or not tfiles:
        raise InputError(f"`path` == {str(root)!r}: no images found in train/ or {test.name}/")
    return _tensors(_images(files), labels, _images(tfiles), tlabels)
