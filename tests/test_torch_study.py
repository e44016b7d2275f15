"""The conv study's pieces: the image loaders on tiny data sets written here in each layout,
the trainer's pruning and pairing guarantees, one run of the study and its analysis."""

import pickle

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402

import meanfield.torch as mt  # noqa: E402
from meanfield._validate import InputError  # noqa: E402
from meanfield.torch.data import load_images  # noqa: E402
from meanfield.torch.training import accuracy, fit  # noqa: E402
from simulations import conv_study  # noqa: E402


def _cifar(folder, rng):
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": [0, 1, 2, 3]}, f)
    return data


def test_cifar10_python_batches(tmp_path):
    last = _cifar(tmp_path, np.random.default_rng(0))
    Xtr, ytr, Xte, yte = load_images("cifar10", tmp_path)
    assert Xtr.shape == (20, 3, 32, 32) and Xte.shape == (4, 3, 32, 32)
    assert ytr.tolist() == [0, 1, 2, 3] * 5 and yte.dtype == torch.int64
    m = Xtr.mean(dim=(0, 2, 3))
    assert torch.allclose(m, torch.zeros(3), atol=1e-5)  # normalised by the training set
    raw = torch.from_numpy(last.reshape(4, 3, 32, 32) / 255.0)
    # the test images are the same affine map of their pixels, channel by channel
    c = np.corrcoef(raw[:, 0].flatten(), Xte[:, 0].flatten())[0, 1]
    assert c == pytest.approx(1.0, abs=1e-6)


def _png(path, value, size=(5, 5)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size + (3,), value, np.uint8)).save(path)


def test_image_folder_and_tiny_imagenet_layouts(tmp_path):
    for split in ("train", "val"):
        for c, v in (("cat", 10), ("dog", 200)):
            for k in range(2):
                _png(tmp_path / "a" / split / c / f"{k}.png", v + k)
    Xtr, ytr, Xte, yte = load_images("folder", tmp_path / "a")
    assert Xtr.shape == (4, 3, 5, 5) and ytr.tolist() == [0, 0, 1, 1] and yte.tolist() == [0, 0, 1, 1]
    assert (Xtr[2:] > Xtr[:2]).all()  # the brighter class stays brighter
    root = tmp_path / "tiny"
    for c, v in (("n01", 10), ("n02", 200)):
        _png(root / "train" / c / "images" / f"{c}_0.JPEG", v)
    _png(root / "val" / "images" / "val_0.JPEG", 200)
    _png(root / "val" / "images" / "val_1.JPEG", 10)
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn02\t0\t0\t5\t5\n"
                                                      "val_1.JPEG\tn01\t0\t0\t5\t5\n")
    Xtr, ytr, Xte, yte = load_images("folder", root)
    assert ytr.tolist() == [0, 1] and yte.tolist() == [1, 0]
    _png(root / "train" / "n02" / "images" / "big.JPEG", 3, size=(6, 6))
    with pytest.raises(InputError, match="share a size"):
        load_images("folder", root)
    with pytest.raises(InputError, match="no such folder"):
        load_images("cifar10", tmp_path / "missing")


def test_mnist5k_as_images():
    Xtr, ytr, Xte, yte = load_images("mnist5k")
    assert Xtr.shape == (4000, 1, 32, 32) and Xte.shape == (1000, 1, 32, 32)
    assert abs(Xtr.mean().item()) < 1e-4 and Xtr.std().item() == pytest.approx(1.0, abs=1e-3)
    assert torch.equal(Xtr[:, :, :2], Xtr[:, :, :2].new_full(Xtr[:, :, :2].shape, Xtr[0, 0, 0, 0]))


def test_fit_keeps_pruned_weights_at_zero_and_is_seeded():
    torch.manual_seed(0)
    X, y = torch.randn(64, 6), torch.randint(0, 3, (64,))

    def trained(seed):
        torch.manual_seed(1)
        net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
        mt.prune_at_init(net, X, y, "snip", 0.7)
        h = fit(net, X, y, X_val=X, y_val=y, epochs=3, batch=16, lr=0.1, seed=seed)
        return net, h

    net, h = trained(0)
    assert ((net[0].weight == 0) == (net[0].weight_mask == 0)).all() or \
        (net[0].weight[net[0].weight_mask == 0] == 0).all()
    assert (net[0].weight[net[0].weight_mask == 0] == 0).all()
    assert h.train_loss.iloc[-1] < h.train_loss.iloc[0]
    net2, h2 = trained(0)
    assert torch.equal(net[0].weight, net2[0].weight)
    assert accuracy(net, X, y) == h.val_accuracy.iloc[-1]


def test_one_run_of_the_conv_study():
    row = conv_study.run("mnist5k", None, "stable_resnet", "sbp_sr", 8, 2, 0.9, 0, 1, 0.05,
                         256, 64, 0.1, "cpu", 1)
    assert row["sparsity"] == 0.9 and 0 <= row["test_accuracy"] <= 1
    assert row["emptied"] == 0 and row["seconds"] > 0


def test_the_analysis_pairs_seeds_and_corrects_for_the_family():
    """A synthetic record where SBP-SR is 2 points above every other method at every seed but
    for a seed-level noise: the primary family's means are 0.02 and Holm's p >= the raw p."""
    rng = np.random.default_rng(0)
    rows = []
    for arch in conv_study.ARCHS:
        for seed in range(6):
            base = rng.normal(0.8, 0.05)
            for method in conv_study.METHODS:
                for s in (0.85, 0.9, 0.95):
                    acc = base + (0.02 if method == "sbp_sr" else 0.0) + rng.normal(0, 0.001)
                    rows.append(dict(arch=arch, method=method, depth=14, sparsity=s, seed=seed,
                                     test_accuracy=acc))
    primary, cells = conv_study.analyse(pd.DataFrame(rows))
    assert len(primary) == 11 and (primary.n_seeds == 6).all()
    within = primary.A.str.split().str[0] == primary.B.str.split().str[0]
    assert np.allclose(primary["mean"][within], 0.02, atol=0.002)
    # across architectures the seed's base accuracies differ (drawn per arch): only the mean
    # of 6 seeds' differences of two N(0.8, 0.05) draws, plus 0.02
    assert (np.abs(primary["mean"][~within] - 0.02) < 4 * 0.05 * np.sqrt(2 / 6)).all()
    assert (primary.p_holm >= primary.p).all() and (primary.p_holm[within] < 0.05).all()
    assert len(cells) == 2 * 5 * 3
