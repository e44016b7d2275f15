"""Benchmark: one SNIP critical-sparsity trial of a random CNN, meanfield against PyTorch on the
CPU (issue 22).

What is compared
----------------
A trial draws a tanh CNN (N channels, L conv layers of k × k kernels, circular padding, stride
1, global average pooling, dense readout to 10 classes; W ~ N(0, σ_w²/(C k²)), biases
N(0, σ_b²)), a batch of B images N(0, 1) of N channels and h × h pixels with uniform labels,
computes the SNIP scores |W ⊙ ∂ℒ/∂W| of the mean cross-entropy and returns
s_cr = #{g <= m} / #{all}, m = min over layers of their largest score.

* **meanfield**: ``meanfield.pruning.conv.conv_critical_sparsity_trial`` (float32; numpy's
  im2col and OpenBLAS products);
* **torch**: the same trial written in PyTorch the usual way (float32): weights from
  ``torch.randn`` with a seeded generator, ``F.pad(mode="circular")`` and ``F.conv2d`` per layer,
  ``torch.autograd.grad`` of ``F.cross_entropy``, the scores and the count in torch.

Both on one thread (OpenBLAS through OPENBLAS_NUM_THREADS before numpy is imported; torch through
``torch.set_num_threads(1)``), one untimed warm-up trial each, then ``--trials`` trials back to
back in A-B-B-A half blocks. The two see different draws of the same law: their mean s_cr is
printed with its standard error. Separately, on one network drawn by meanfield and copied into
torch, the two s_cr are compared exactly (they count the same scores up to float32 rounding).

Usage::

    PYTHONPATH=. python benchmarks/conv_scr.py [--trials 20] [--width 16] [--depth 8]

Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def torch_trial(width, depth, sigma_w, sigma_b, batch, h, k, gen, weights=None, X=None, y=None):
    import torch
    import torch.nn.functional as F

    if weights is None:
        shapes = [(width, width, k, k)] * depth + [(10, width)]
        weights = [torch.randn(s, generator=gen) * (sigma_w / np.sqrt(np.prod(s[1:])))
                   for s in shapes]
        biases = [torch.randn(s[0], generator=gen) * sigma_b for s in shapes]
        X = torch.randn((batch, width, h, h), generator=gen)
        y = torch.randint(0, 10, (batch,), generator=gen)
    else:
        weights, biases = weights
    ws = [w.clone().requires_grad_(True) for w in weights]
    r = k // 2
    a = X
    for w, b in zip(ws[:-1], biases[:-1]):
        a = torch.tanh(F.conv2d(F.pad(a, (r, r, r, r), mode="circular"), w, b))
    logits = a.mean(dim=(2, 3)) @ ws[-1].T + biases[-1]
    grads = torch.autograd.grad(F.cross_entropy(logits, y), ws)
    sc = [(w * g).abs() for w, g in zip(ws, grads)]
    m = min(s.max() for s in sc)
    return float(sum((s <= m).sum() for s in sc)) / sum(s.numel() for s in sc)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--image-size", type=int, default=8)
    p.add_argument("--kernel-size", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seed", type=int, default=2021)
    o = p.parse_args(argv)
    import torch

    from meanfield import eoc
    from meanfield.nets.conv import draw_conv_trial
    from meanfield.pruning.conv import conv_critical_sparsity_trial

    torch.set_num_threads(1)
    sw, sb = float(eoc("tanh", 0.2)[0]), 0.2
    args = (o.width, o.depth, sw, sb)
    kw = dict(batch=o.batch, image_size=o.image_size, kernel_size=o.kernel_size)

    def mf_run(i):
        return conv_critical_sparsity_trial("tanh", *args, rng=np.random.default_rng([o.seed, i]),
                                            **kw)

    def torch_run(i):
        return torch_trial(*args, o.batch, o.image_size, o.kernel_size,
                           torch.Generator().manual_seed(o.seed * 1000 + i))

    mf_run(10 ** 6), torch_run(10 ** 6)  # warm-up (numba, torch start-up), not a timed trial
    times = {"meanfield": 0.0, "torch": 0.0}
    out = {"meanfield": [], "torch": []}
    half = o.trials // 2
    for name, rng_ in (("meanfield", range(half)), ("torch", range(half)),
                       ("torch", range(half, o.trials)), ("meanfield", range(half, o.trials))):
        fn = mf_run if name == "meanfield" else torch_run
        t0 = time.perf_counter()
        for i in rng_:
            out[name].append(fn(i))
        times[name] += time.perf_counter() - t0
    # the same network in both
    net, X, y = draw_conv_trial("tanh", *args, o.batch, 10, o.image_size, o.kernel_size,
                                np.random.default_rng(7))
    from meanfield.nets.conv import conv_snip_scores
    from meanfield.pruning import critical_sparsity

    s_mf = critical_sparsity([s.ravel() for s in conv_snip_scores(net, X, y)])
    s_t = torch_trial(*args, o.batch, o.image_size, o.kernel_size, None,
                      weights=([torch.from_numpy(w) for w in net.weights],
                               [torch.from_numpy(b) for b in net.biases]),
                      X=torch.from_numpy(X), y=torch.from_numpy(y))
    rows = []
    for name in ("meanfield", "torch"):
        v = np.array(out[name])
        rows.append(dict(method=name, trials=len(v), seconds_per_trial=times[name] / len(v),
                         s_cr_mean=float(v.mean()), s_cr_se=float(v.std(ddof=1) / np.sqrt(len(v)))))
    ratio = rows[1]["seconds_per_trial"] / rows[0]["seconds_per_trial"]
    print(f"SNIP s_cr trial of a tanh CNN: N = {o.width}, L = {o.depth}, h = {o.image_size}, "
          f"k = {o.kernel_size}, B = {o.batch}, sigma_w = {sw:.4f} (EOC), sigma_b = {sb}; "
          f"one thread; torch {torch.__version__}")
    print("| method | trials | s per trial | E[s_cr] ± SE |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['trials']} | {r['seconds_per_trial']:.4f} | "
              f"{r['s_cr_mean']:.4f} ± {r['s_cr_se']:.4f} |")
    print(f"meanfield is {ratio:.2f}x torch's speed; the same network: s_cr {s_mf:.6f} (meanfield) "
          f"vs {s_t:.6f} (torch)")
    print(json.dumps({"benchmark": "conv_scr", "width": o.width, "depth": o.depth,
                      "image_size": o.image_size, "kernel_size": o.kernel_size, "batch": o.batch,
                      "rows": rows, "speedup_vs_torch": ratio, "same_net": [s_mf, s_t]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
