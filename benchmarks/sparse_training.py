"""Benchmark: one SGD epoch of a pruned deep tanh FFNN, sparse against dense-masked training.

What is compared
----------------
The net of ``benchmarks/training.py`` — 784 → 20 hidden layers × 300 tanh → 10, float32, 60 000
Gaussian inputs (labels uniform over 10 classes), B = 128 (469 steps), SGD with momentum 0.9,
lr 0.01 — randomly pruned at initialization (``method="random"``: every layer keeps the same
fraction) at sparsity 0, 0.5, 0.8, 0.9, 0.95 and 0.98, trained for one epoch by:

* **mf sparse**: ``meanfield.train(..., sparse=True)`` — every layer as its kept weights alone
  (compressed sparse rows, a batch held feature-major; ``meanfield.training._sparse``), all layers packed
  so that a shard's forward and backward passes are one compiled call and a step's update one
  more;
* **mf dense**: ``meanfield.train(..., sparse=False)`` — dense layers, the mask multiplied in;
* **torch dense**: PyTorch ``nn.Linear`` layers pruned with ``torch.nn.utils.prune.
  custom_from_mask`` (the weight recomputed as weight_orig · mask at each forward, as a user of
  PyTorch's pruning gets), ``torch.optim.SGD(momentum=0.9)``, default threads (if torch imports);
* **scipy**: a ``scipy.sparse`` CSR training step written the obvious way: forward
  ``(W @ h.T).T + b``, input gradient ``(W.T @ d.T).T``, weight gradient at the kept positions
  only ``(d[:, rows] * h[:, cols]).sum(0)``, momentum on ``W.data``.

meanfield's time is the history's ``seconds`` (the epoch loop, evaluation excluded) on the
machine's cores (one thread per 64-example shard); the others time the same loop. Arms alternate
within each sparsity, and each arm but scipy runs ``--repeats`` times (best kept); an arm whose
epoch passes ``--cap`` seconds is stopped and its time extrapolated from the steps done (marked
*). All start from the same weights and masks (the ones ``train`` draws with this seed); torch
and scipy visit the batches in another order than meanfield, so their losses agree only loosely.

GFLOP/s are *useful* ones: the multiply-adds of the kept weights, 2 FLOPs each, in the forward
pass, the weight gradient and (above the first layer) the input gradient, per example — what an
ideal sparse method must do — divided by the epoch time, the same numerator for every arm.

Run:  ``python benchmarks/sparse_training.py`` (from a checkout with meanfield importable)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from meanfield.training import train

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import training as dense_bench  # noqa: E402  (the same net, data and helpers)

BATCH, CLASSES, DEPTH, LR, MOMENTUM = (dense_bench.BATCH, dense_bench.CLASSES, dense_bench.DEPTH,
                                       dense_bench.LR, dense_bench.MOMENTUM)
N_IN, N_TRAIN, WIDTH = dense_bench.N_IN, dense_bench.N_TRAIN, dense_bench.WIDTH
load, log, make_data = dense_bench.load, dense_bench.log, dense_bench.make_data

SPARSITIES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98)
KW = dict(width=WIDTH, depth=DEPTH, sigma_w=dense_bench.SIGMA_W, sigma_b=dense_bench.SIGMA_B,
          batch=BATCH, lr=LR, momentum=MOMENTUM, seed=dense_bench.SEED)


def pruned_start(data, sparsity):
    """The initial weights, biases and masks of ``train`` at this sparsity (float32 copies)."""
    method = "random" if sparsity > 0 else "none"
    tiny_test = (data[0], data[1], data[2][:10], data[3][:10])
    _, net, masks = train("tanh", tiny_test, method=method, sparsity=sparsity, epochs=0,
                          return_network=True, **KW)
    if masks is None:
        masks = [np.ones(w.shape, bool) for w in net.weights]
    return ([np.array(w) for w in net.weights], [np.array(b) for b in net.biases],
            [np.asarray(m, bool) for m in masks])


def useful_flops_per_example(masks):
    kept = [int(m.sum()) for m in masks]
    return 4 * kept[0] + 6 * sum(kept[1:])


def run_meanfield(data, sparsity, sparse):
    method = "random" if sparsity > 0 else "none"
    hist = train("tanh", data, method=method, sparsity=sparsity, epochs=1, sparse=sparse, **KW)
    return float(hist.seconds.iloc[-1]), float(hist.train_loss.iloc[-1]), False


def timed_epoch(step, X, y, order, cap):
    """Run ``step(Xb, yb)`` over the epoch's batches; stop after ``cap`` seconds and extrapolate.
    Returns (seconds, extrapolated)."""
    n = X.shape[0]
    t0 = time.perf_counter()
    for s in range(0, n, BATCH):
        idx = order[s:s + BATCH]
        step(X[idx], y[idx])
        elapsed = time.perf_counter() - t0
        done = min(s + BATCH, n)
        if elapsed > cap and done < n:
            return elapsed * n / done, True
    return time.perf_counter() - t0, False


# ------------------------------------------------------------------------------------------------
# PyTorch, dense-masked (torch.nn.utils.prune)
# ------------------------------------------------------------------------------------------------

def run_torch(torch, data, start, cap):
    from torch import nn
    from torch.nn.utils import prune

    X, y = data[0], data[1]
    Ws, bs, masks = start
    layers = []
    for k, (W, b, m) in enumerate(zip(Ws, bs, masks)):
        lin = nn.Linear(W.shape[1], W.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
        prune.custom_from_mask(lin, "weight", torch.from_numpy(m.astype(np.float32)))
        layers.append(lin)
        if k < len(Ws) - 1:
            layers.append(nn.Tanh())
    model = nn.Sequential(*layers)
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def step(Xb, yb):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(Xb), yb).backward()
        opt.step()

    order = torch.from_numpy(np.random.default_rng(1).permutation(X.shape[0]))
    step(Xt[:BATCH], yt[:BATCH])  # warm-up (allocator, threads); a step like any other
    seconds, extra = timed_epoch(step, Xt, yt, order, cap)
    with torch.no_grad():
        tW = [lin.weight.numpy().copy() for lin in model[::2]]
        tb = [lin.bias.numpy().copy() for lin in model[::2]]
    return seconds, dense_bench.full_loss(tW, tb, X, y), extra


# ------------------------------------------------------------------------------------------------
# scipy.sparse, written the obvious way
# ------------------------------------------------------------------------------------------------

def run_scipy(data, start, cap):
    import scipy.sparse as sp

    X, y = data[0], data[1]
    Ws, bs, masks = start
    Wc = [sp.csr_matrix(W * m) for W, m in zip(Ws, masks)]
    for W in Wc:  # a kept weight that is exactly 0 would be dropped: none is, at this init
        W.eliminate_zeros()
    coo = [W.tocoo() for W in Wc]
    rows, cols = [c.row for c in coo], [c.col for c in coo]
    bs = [b.copy() for b in bs]
    Vw = [np.zeros_like(W.data) for W in Wc]
    Vb = [np.zeros_like(b) for b in bs]

    def step(Xb, yb):
        hs = [Xb]
        h = Xb
        for W, b in zip(Wc[:-1], bs[:-1]):
            h = np.tanh((W @ h.T).T + b)
            hs.append(h)
        z = (Wc[-1] @ h.T).T + bs[-1]
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        d = p
        d[np.arange(len(yb)), yb] -= 1
        d /= len(yb)
        for k in range(len(Wc) - 1, -1, -1):
            g = (d[:, rows[k]] * hs[k][:, cols[k]]).sum(axis=0)  # CSR order: rows sorted
            gb = d.sum(axis=0)
            if k > 0:
                d = (Wc[k].T @ d.T).T * (1 - hs[k] ** 2)
            Vw[k] = MOMENTUM * Vw[k] + g
            Wc[k].data -= LR * Vw[k]
            Vb[k] = MOMENTUM * Vb[k] + gb
            bs[k] -= LR * Vb[k]

    order = np.random.default_rng(1).permutation(X.shape[0])
    seconds, extra = timed_epoch(step, X, y, order, cap)
    return seconds, dense_bench.full_loss([W.toarray() for W in Wc], bs, X, y), extra


# ------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=2,
                    help="epochs per arm (best kept); scipy runs once")
    ap.add_argument("--cap", type=float, default=20.0,
                    help="seconds after which an epoch's time is extrapolated (default 20)")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    ap.add_argument("--no-scipy", action="store_true", help="skip scipy.sparse")
    ap.add_argument("--sparsities", type=float, nargs="+", default=list(SPARSITIES))
    args = ap.parse_args()

    t_start = time.perf_counter()
    load_start = load()
    log(f"load at start: {load_start}")
    data = make_data()
    torch = None
    if not args.no_torch:
        try:
            import torch
        except Exception as exc:  # noqa: BLE001
            log(f"torch unavailable: {exc!r}")
    # warm-up: numba compilation / cache loading and the scratch buffers
    tiny = (data[0][:BATCH * 3], data[1][:BATCH * 3], data[2][:64], data[3][:64])
    for sparse in (True, False):
        train("tanh", tiny, method="random", sparsity=0.9, epochs=1, sparse=sparse, **KW)

    rows = []
    for s in args.sparsities:
        start = pruned_start(data, s)
        useful = useful_flops_per_example(start[2]) * N_TRAIN
        arms = {"mf sparse": (run_meanfield, (data, s, True)),
                "mf dense": (run_meanfield, (data, s, False))}
        if torch is not None:
            arms["torch dense"] = (run_torch, (torch, data, start, args.cap))
        results = {}
        for _ in range(args.repeats):
            for name, (fn, fn_args) in arms.items():
                seconds, loss, extra = fn(*fn_args)
                log(f"sparsity {s}: {name} {seconds:.2f} s{' *' if extra else ''}, loss {loss:.5f}")
                best = results.get(name)
                if best is None or seconds < best[0]:
                    results[name] = (seconds, loss, extra)
        if not args.no_scipy:
            results["scipy"] = run_scipy(data, start, args.cap)
            log(f"sparsity {s}: scipy {results['scipy'][0]:.2f} s, loss {results['scipy'][1]:.5f}")
        row = {"sparsity": s, "kept_weights": int(sum(m.sum() for m in start[2])),
               "useful_gflop_per_epoch": useful / 1e9}
        for name, (seconds, loss, extra) in results.items():
            row[name] = {"epoch_seconds": seconds, "useful_gflops": useful / seconds / 1e9,
                         "train_loss": loss, "extrapolated": extra}
        sparse_t = results["mf sparse"][0]
        row["x_mf_dense_over_sparse"] = results["mf dense"][0] / sparse_t
        row["x_torch_dense_over_sparse"] = (results["torch dense"][0] / sparse_t
                                            if "torch dense" in results else None)
        rows.append(row)
    load_end = load()

    names = ["mf sparse", "mf dense"] + (["torch dense"] if torch is not None else []) + \
            ([] if args.no_scipy else ["scipy"])
    print(f"one SGD epoch of a randomly pruned {N_IN} -> {DEPTH} x {WIDTH} tanh -> {CLASSES} FFNN,"
          f" float32, B = {BATCH}, n = {N_TRAIN}, momentum {MOMENTUM}; best of {args.repeats} "
          f"(scipy 1); meanfield on {os.cpu_count()} cores, torch "
          f"{torch.__version__ if torch is not None else 'n/a'} default threads")
    print(f"load at start: {load_start}")
    print(f"load at end:   {load_end}")
    print()
    head = f"{'sparsity':>8}{'kept':>10}" + "".join(f"{n + ' s':>15}" for n in names) + \
        "".join(f"{n + ' GF/s':>18}" for n in names) + f"{'dense/sparse':>14}{'torch/sparse':>14}"
    print(head)
    for r in rows:
        line = f"{r['sparsity']:>8.2f}{r['kept_weights']:>10d}"
        for n in names:
            v = r[n]
            line += f"{v['epoch_seconds']:>14.2f}{'*' if v['extrapolated'] else ' '}"
        for n in names:
            line += f"{r[n]['useful_gflops']:>18.1f}"
        xt = r["x_torch_dense_over_sparse"]
        line += f"{r['x_mf_dense_over_sparse']:>14.2f}{'-' if xt is None else format(xt, '.2f'):>14}"
        print(line)
    print()
    print("s: epoch seconds (* extrapolated from the first --cap seconds); GF/s: useful GFLOP/s "
          "(the kept weights' multiply-adds / epoch time); dense/sparse: mf dense-masked epoch / "
          "mf sparse epoch; torch/sparse: torch dense-masked epoch / mf sparse epoch")
    print(f"script wall time {time.perf_counter() - t_start:.0f} s")
    print(json.dumps({"benchmark": "sparse_training_epoch_ffnn_784_20x300_tanh_10",
                      "batch": BATCH, "n_train": N_TRAIN, "repeats": args.repeats,
                      "load_start": load_start, "load_end": load_end,
                      "torch": torch.__version__ if torch is not None else None,
                      "results": rows}))


if __name__ == "__main__":
    main()
