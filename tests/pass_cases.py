"""Every branch of the forward and backward passes, fingerprinted (the kernels issue, Deliver 3:
"what the package computes must not change, bit for bit").

``tests/identity_cases.py`` covers the public calls at one setting each; this covers the passes'
branches those leave out: φ by numpy's tanh or by a compiled kernel, the three architectures,
float32 and float64, the gradients with and without masks, the SNIP trial of both definitions,
and each way a training step runs (dense, dense-masked, sparse and dense layers mixed, every
layer packed), on one thread and on two. ``tests/data/pass_identity.json`` holds the SHA-256 of
each output as computed before the passes were reorganised (``python -m tests.pass_cases``
re-records it: only for a change meant to alter results, said in its commit).
"""

import hashlib
import json
import pathlib

import numpy as np

from meanfield.nets import forward, init_network, loss_and_grads
from meanfield.pruning import scores, snip_critical_sparsity_trial
from meanfield.training._sgd import DataParallelSGD

PATH = pathlib.Path(__file__).parent / "data" / "pass_identity.json"
ACTIVATIONS = ("tanh", "elu:0.5")  # numpy's tanh, φ' from φ; a compiled kernel for φ and φ'
ARCHS = ("ffnn", "resnet", "stable_resnet")
DTYPES = (np.float32, np.float64)


def _masks(net, densities, rng):
    return [rng.random(w.shape) < d for w, d in zip(net.weights, densities)]


def _flat(*arrays):
    return np.concatenate([np.ravel(a).astype(np.float64) for a in arrays])


def _passes(act, arch, dtype):
    rng = np.random.default_rng(11)
    net = init_network(act, 13, 3, 1.4, 0.2, n_in=9, classes=4, arch=arch, rng=rng, dtype=dtype)
    X, y = rng.standard_normal((21, 9)), rng.integers(4, size=21)
    loss, gw, gb = loss_and_grads(net, X, y)
    out = {"forward": forward(net, X), "grads": _flat([loss], *gw, *gb)}
    loss, gw, gb = loss_and_grads(net, X, y, masks=_masks(net, [0.5] * 4, rng))
    out["grads_masked"] = _flat([loss], *gw, *gb)
    out["snip"] = _flat(*scores(net, X, y, "snip"))
    for definition in ("layer", "disconnect"):
        out[f"trial_{definition}"] = np.array([snip_critical_sparsity_trial(
            act, width, 4, 1.3, 0.2, batch=batch, arch=arch, rng=np.random.default_rng(seed),
            dtype=dtype, definition=definition) for seed, width, batch in ((1, 16, 20), (2, 33, 7))])
    return out


def _steps(act, arch, dtype, mode, threads):
    """Final weights, biases, logits and velocities after four steps (the last two smaller than
    a batch: a last shard short, and one example)."""
    rng = np.random.default_rng(5)
    net = init_network(act, 37, 3, 1.3, 0.2, n_in=19, classes=5, arch=arch, rng=rng, dtype=dtype)
    masks = None if mode == "dense" else _masks(
        net, [0.15, 0.5, 0.1, 0.6] if mode == "mixed" else [0.3] * 4, rng)
    sparse = {"dense": "auto", "masked": False, "mixed": "auto", "packed": True}[mode]
    sgd = DataParallelSGD(net, masks, 130, 0.05, 0.9, 1e-4, threads=threads, sparse=sparse)
    X, y = rng.standard_normal((300, 19)).astype(dtype), rng.integers(5, size=300)
    with sgd:
        for a, b in ((0, 130), (130, 260), (260, 300), (0, 1)):
            sgd.step(X[a:b], y[a:b])
        logits = sgd.logits(X[:17])
        sgd.sync()
    vel = sgd.vel_w if isinstance(sgd.vel_w, np.ndarray) else _flat(*sgd.vel_w)
    return _flat(*net.weights, *net.biases, logits, vel)


def cases():
    """Name -> zero-argument callable returning a dict of arrays (or one array)."""
    c = {}
    for act in ACTIVATIONS:
        for arch in ARCHS:
            for dt in DTYPES:
                c[f"passes/{act}/{arch}/{np.dtype(dt).name}"] = (
                    lambda a=act, r=arch, d=dt: _passes(a, r, d))
    for mode in ("dense", "masked", "mixed", "packed"):
        for act in ACTIVATIONS:
            for arch in ("ffnn", "stable_resnet"):
                c[f"steps/{mode}/{act}/{arch}/float32/1"] = (
                    lambda m=mode, a=act, r=arch: _steps(a, r, np.float32, m, 1))
        c[f"steps/{mode}/tanh/resnet/float64/1"] = lambda m=mode: _steps(
            "tanh", "resnet", np.float64, m, 1)
        c[f"steps/{mode}/tanh/ffnn/float32/2"] = lambda m=mode: _steps(
            "tanh", "ffnn", np.float32, m, 2)
    return c


def digest(array):
    """SHA-256 of an array's dtype, shape and bytes."""
    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def evaluate(fn):
    """name suffix -> digest of each output of a case."""
    out = fn()
    if not isinstance(out, dict):
        out = {"": out}
    return {k: digest(v) for k, v in sorted(out.items())}


if __name__ == "__main__":
    record = {name: evaluate(fn) for name, fn in cases().items()}
    PATH.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"{sum(len(v) for v in record.values())} digests -> {PATH}")
