"""Benchmark: one SGD training epoch of a deep tanh FFNN, meanfield vs plain numpy vs PyTorch.

What is compared
----------------
A 784 → 20 hidden layers × 300 tanh → 10 feed-forward network, trained for one epoch on 60 000
Gaussian float32 inputs (labels uniform over 10 classes; 1 000 test examples), mini-batch B = 128
(469 steps, the last one of 96), mean softmax cross-entropy, float32 SGD with momentum 0.9,
lr 0.01 (v ← μ v + g, W ← W − lr v, biases alike), in one run:

* **meanfield**: ``meanfield.train("tanh", data, width=300, depth=20, ..., threads=T)`` with
  T = 1 and T = the machine's cores. The time is the ``seconds`` column of the returned history:
  the wall clock of the epoch's loop (shuffle + all steps), which excludes the evaluation on the
  whole training / test set done after each epoch. A warm-up ``train`` on a tiny data set runs
  first, so numba compilation / cache loading is not timed. ``train`` cuts each mini-batch into
  fixed shards of 64 examples whose gradients are formed on T threads (one BLAS thread each) and
  summed in order, so both runs must end with bit-identical weights (checked and printed).
* **numpy**: the same training step written the obvious way in this file (per layer
  ``h @ W.T + b`` and ``np.tanh``; softmax cross-entropy gradient; backprop with
  ``(d @ W) * (1 - h**2)``, ``dW = d.T @ h``; ``v = mu*v + g; W -= lr*v``), with the machine's
  default BLAS threads and with threadpoolctl limiting BLAS to 1 thread.
* **torch**: ``nn.Sequential`` of ``Linear`` + ``Tanh``, ``CrossEntropyLoss``,
  ``torch.optim.SGD(momentum=0.9)``, with torch's default threads (and 1 thread, unless
  ``--no-torch-1``), if torch imports.

All of them start from the *same* initial weights (``meanfield.nets.init_network`` with the
generator ``train`` uses, σ_w = 1.3, σ_b = 0.2: W ~ N(0, σ_w²/fan_in)) and visit the *same*
batches in the same order (the permutations ``train`` draws from that generator), so their losses
after each epoch (mean cross-entropy on the whole training set, evaluated by one float64-softmax
numpy routine for all) should agree closely; they are not bit-identical (different float32
summation orders, amplified through 20 layers).

Each method runs ``--epochs`` consecutive epochs (default 2) and the best epoch time is reported,
except that numpy with default threads is timed for at most ``--cap`` seconds (default 15) of an
epoch and then extrapolated (n / examples done), the rest of that epoch running untimed on one
thread: on a 2-core machine shared with other jobs, multi-threaded OpenBLAS on these small
(128 × 300 × 300) products can be ~50× slower than one thread, and a full epoch would not fit the
benchmark's time budget. The matmul peaks are measured at the start and at the end of the run and
the larger value kept (the machine's load changes over the run; ``uptime`` is printed at both).

FLOPs: forward + backward of one example costs 6 · Σ_l fan_in_l · fan_out_l (2 for y = W h,
2 for dW, 2 for dh), i.e. 6 · B · S per full step with S = 784·300 + 19·300² + 300·10 = 1 948 200;
an epoch counts 6 · S · 60 000 = 701.4 GFLOP (the elementwise work and the unneeded input gradient
are not counted). "peak" is the best float32 GFLOP/s of ``A @ B`` measured in the same run with the
same thread count: for 2048 × 2048 matrices (the machine's BLAS peak) and for a 128 × 300 by
300 × 300 product (the size of this network's products).

Usage (from the repository's root)::

    PYTHONPATH=. python benchmarks/training.py [--epochs 2] [--cap 15] [--no-torch] [--no-torch-1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import meanfield as mf  # noqa: F401  (the package under test)
from meanfield.nets import init_network
from meanfield.training import train
from meanfield.training._sgd import available_cores, shard_count

N_IN, WIDTH, DEPTH, CLASSES = 784, 300, 20, 10
N_TRAIN, N_TEST, BATCH = 60_000, 1_000, 128
LR, MOMENTUM = 0.01, 0.9
SIGMA_W, SIGMA_B = 1.3, 0.2
SEED = 0


def log(msg):
    print(f"# {msg}", file=sys.stderr, flush=True)


def load():
    try:
        out = subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
        if out:
            return out
    except (OSError, subprocess.SubprocessError):
        pass
    return "loadavg " + " ".join(os.getloadavg().__repr__().strip("()").split(", "))


def blas_threads():
    return max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), default=1)


def flops_per_example():
    fans = [(N_IN, WIDTH)] + [(WIDTH, WIDTH)] * (DEPTH - 1) + [(WIDTH, CLASSES)]
    return 6 * sum(a * b for a, b in fans)


# ------------------------------------------------------------------------------------------------
# data, initial weights and batch order shared by all methods
# ------------------------------------------------------------------------------------------------

def make_data():
    rng = np.random.default_rng(12345)
    X_train = rng.standard_normal((N_TRAIN, N_IN), dtype=np.float32)
    y_train = rng.integers(0, CLASSES, N_TRAIN).astype(np.int64)
    X_test = rng.standard_normal((N_TEST, N_IN), dtype=np.float32)
    y_test = rng.integers(0, CLASSES, N_TEST).astype(np.int64)
    return X_train, y_train, X_test, y_test


def initial_state(epochs):
    """The initial network and the per-epoch permutations exactly as ``train(seed=SEED)`` draws
    them (method "none": init_network, then one ``rng.permutation(n)`` per epoch)."""
    rng = np.random.default_rng(SEED)
    net = init_network("tanh", WIDTH, DEPTH, SIGMA_W, SIGMA_B, n_in=N_IN, classes=CLASSES,
                       rng=rng)
    Ws = [np.array(w, np.float32) for w in net.weights]
    bs = [np.array(b, np.float32) for b in net.biases]
    orders = [rng.permutation(N_TRAIN) for _ in range(epochs)]
    return Ws, bs, orders


def full_loss(Ws, bs, X, y, chunk=4096):
    """Mean cross-entropy over (X, y): float32 forward, float64 log-softmax."""
    total = 0.0
    for s in range(0, X.shape[0], chunk):
        h = X[s:s + chunk]
        for W, b in zip(Ws[:-1], bs[:-1]):
            h = np.tanh(h @ W.T + b)
        z = (h @ Ws[-1].T + bs[-1]).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        total -= logp[np.arange(len(z)), y[s:s + chunk]].sum()
    return total / X.shape[0]


# ------------------------------------------------------------------------------------------------
# plain numpy, written the obvious way
# ------------------------------------------------------------------------------------------------

def numpy_step(Ws, bs, Vw, Vb, X, y, lr, mu):
    L = len(Ws) - 1
    hs = [X]
    h = X
    for W, b in zip(Ws[:-1], bs[:-1]):
        h = np.tanh(h @ W.T + b)
        hs.append(h)
    z = h @ Ws[-1].T + bs[-1]
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(X.shape[0])
    loss = -np.log(p[rows, y]).mean()
    d = p
    d[rows, y] -= 1
    d /= X.shape[0]
    for l in range(L, -1, -1):
        gW = d.T @ hs[l]
        gb = d.sum(axis=0)
        if l > 0:
            d = (d @ Ws[l]) * (1 - hs[l] ** 2)
        Vw[l] = mu * Vw[l] + gW
        Ws[l] -= lr * Vw[l]
        Vb[l] = mu * Vb[l] + gb
        bs[l] -= lr * Vb[l]
    return loss


def numpy_epoch(Ws, bs, Vw, Vb, X, y, order, batch=BATCH, cap=math.inf):
    """One epoch; returns (seconds, extrapolated). If the timed part passes ``cap`` seconds, the
    epoch time is extrapolated from the examples done so far (seconds · n / done) and the rest of
    the epoch is run untimed with 1 BLAS thread (so the weights, hence the loss check, are those
    of a full epoch)."""
    n = X.shape[0]
    t0 = time.perf_counter()
    for s in range(0, n, batch):
        idx = order[s:s + batch]
        numpy_step(Ws, bs, Vw, Vb, X[idx], y[idx], LR, MOMENTUM)
        elapsed = time.perf_counter() - t0
        done = min(s + batch, n)
        if elapsed > cap and done < n:
            with threadpool_limits(limits=1, user_api="blas"):
                for s2 in range(done, n, batch):
                    idx = order[s2:s2 + batch]
                    numpy_step(Ws, bs, Vw, Vb, X[idx], y[idx], LR, MOMENTUM)
            return elapsed * n / done, True
    return time.perf_counter() - t0, False


def run_numpy(data, epochs, threads, cap=math.inf):
    X, y = data[0], data[1]
    Ws, bs, orders = initial_state(epochs)
    Vw = [np.zeros_like(w) for w in Ws]
    Vb = [np.zeros_like(b) for b in bs]
    # warm-up on copies (first-touch allocations, BLAS thread start-up)
    cW, cb = [w.copy() for w in Ws], [b.copy() for b in bs]
    cVw, cVb = [v.copy() for v in Vw], [v.copy() for v in Vb]
    times, losses = [], []
    with threadpool_limits(limits=threads, user_api="blas"):
        used = blas_threads()
        numpy_epoch(cW, cb, cVw, cVb, X[:BATCH * 4], y[:BATCH * 4], np.arange(BATCH * 4))
        extrapolated = False
        for e in range(epochs):
            t, extra = numpy_epoch(Ws, bs, Vw, Vb, X, y, orders[e], cap=cap)
            times.append(t)
            losses.append(full_loss(Ws, bs, X, y))
            log(f"  numpy ({used} thr) epoch {e + 1}: {t:.2f} s"
                f"{' (extrapolated from a capped run)' if extra else ''}, loss {losses[-1]:.6f}")
            if extra:  # too slow to repeat within the time budget
                extrapolated = True
                break
    return times, losses, used, extrapolated


# ------------------------------------------------------------------------------------------------
# PyTorch
# ------------------------------------------------------------------------------------------------

def run_torch(torch, data, epochs, threads):
    from torch import nn

    X, y = data[0], data[1]
    Ws, bs, orders = initial_state(epochs)
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    used = torch.get_num_threads()
    try:
        layers = []
        for k, W in enumerate(Ws):
            lin = nn.Linear(W.shape[1], W.shape[0])
            layers.append(lin)
            if k < len(Ws) - 1:
                layers.append(nn.Tanh())
        model = nn.Sequential(*layers)
        with torch.no_grad():
            for lin, W, b in zip(model[::2], Ws, bs):
                lin.weight.copy_(torch.from_numpy(W))
                lin.bias.copy_(torch.from_numpy(b))
        loss_fn = nn.CrossEntropyLoss()
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

        def epoch(order, n=None):
            order_t = torch.from_numpy(order)
            n = Xt.shape[0] if n is None else n
            t0 = time.perf_counter()
            for s in range(0, n, BATCH):
                idx = order_t[s:s + BATCH]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(Xt[idx]), yt[idx])
                loss.backward()
                opt.step()
            return time.perf_counter() - t0

        # warm-up on a throw-away copy of the model (allocator, threads)
        saved_model = {k: v.clone() for k, v in model.state_dict().items()}
        epoch(np.arange(BATCH * 4), BATCH * 4)
        model.load_state_dict(saved_model)
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)  # fresh momentum

        times, losses = [], []
        for e in range(epochs):
            times.append(epoch(orders[e]))
            with torch.no_grad():
                tW = [lin.weight.numpy().copy() for lin in model[::2]]
                tb = [lin.bias.numpy().copy() for lin in model[::2]]
            losses.append(full_loss(tW, tb, X, y))
            log(f"  torch ({used} thr) epoch {e + 1}: {times[-1]:.2f} s, loss {losses[-1]:.6f}")
        return times, losses, used
    finally:
        torch.set_num_threads(old)


# ------------------------------------------------------------------------------------------------
# meanfield
# ------------------------------------------------------------------------------------------------

def run_meanfield(data, epochs, threads):
    X, y = data[0], data[1]
    kw = dict(width=WIDTH, depth=DEPTH, sigma_w=SIGMA_W, sigma_b=SIGMA_B, batch=BATCH, lr=LR,
              momentum=MOMENTUM, seed=SEED, threads=threads)
    # warm-up: numba compile / cache load and the scratch buffers, on a tiny data set
    tiny = (X[:BATCH * 3], y[:BATCH * 3], data[2][:64], data[3][:64])
    train("tanh", tiny, epochs=1, **kw)
    hist, net, _ = train("tanh", data, epochs=epochs, return_network=True, **kw)
    h = hist[hist.epoch >= 1]
    times = [float(s) for s in h.seconds]
    hist_losses = [float(v) for v in h.train_loss]
    # the common evaluation only for the final epoch (earlier weights are not returned); the
    # history's own train_loss (same definition, meanfield's forward) for every epoch
    final = full_loss([np.asarray(w) for w in net.weights], [np.asarray(b) for b in net.biases],
                      X, y)
    for e, (t, l) in enumerate(zip(times, hist_losses)):
        log(f"  meanfield ({threads} thr) epoch {e + 1}: {t:.2f} s, history train_loss {l:.6f}")
    return times, hist_losses, final, net


# ------------------------------------------------------------------------------------------------
# matmul peak
# ------------------------------------------------------------------------------------------------

def matmul_peak(m, k, n, threads, min_seconds=0.15, repeats=5):
    """Best float32 GFLOP/s of (m×k) @ (k×n) with BLAS limited to ``threads`` (None: default)."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((m, k), dtype=np.float32)
    B = rng.standard_normal((k, n), dtype=np.float32)
    C = np.empty((m, n), np.float32)
    flop = 2.0 * m * k * n
    with threadpool_limits(limits=threads, user_api="blas"):
        np.matmul(A, B, out=C)
        t0 = time.perf_counter()
        np.matmul(A, B, out=C)
        one = time.perf_counter() - t0
        reps = max(1, int(min_seconds / max(one, 1e-7)))
        best = math.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(reps):
                np.matmul(A, B, out=C)
            best = min(best, (time.perf_counter() - t0) / reps)
    return flop / best / 1e9


# ------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=2, help="epochs per method (best is reported)")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    ap.add_argument("--no-torch-1", action="store_true", help="skip PyTorch with 1 thread")
    ap.add_argument("--cap", type=float, default=15.0,
                    help="numpy with default threads: seconds after which an epoch's time is "
                         "extrapolated from the steps done (default 15)")
    args = ap.parse_args()
    epochs = args.epochs

    t_start = time.perf_counter()
    load_start = load()
    default_threads = blas_threads()
    cores = min(available_cores(), shard_count(BATCH))  # the threads train() uses (one a shard)
    log(f"load at start: {load_start}")

    data = make_data()
    flop_epoch = flops_per_example() * N_TRAIN

    peak = {}

    def measure_peaks(when):
        log(f"matmul peaks ({when}) ...")
        for thr in sorted({1, default_threads, cores}):
            key = thr
            big = matmul_peak(2048, 2048, 2048, thr, min_seconds=0.3, repeats=3)
            small = matmul_peak(BATCH, WIDTH, WIDTH, thr)
            old = peak.get(key, {"big": 0.0, "small": 0.0})
            peak[key] = {"big": max(big, old["big"]), "small": max(small, old["small"])}
            log(f"  {key} thread(s): 2048^3 {big:.1f} GFLOP/s, 128x300x300 {small:.1f} GFLOP/s")

    measure_peaks("start")

    log("meanfield, 1 thread ...")
    mf1_times, mf1_hist_losses, mf1_final, mf1_net = run_meanfield(data, epochs, 1)
    log(f"meanfield, {cores} threads (data-parallel shards) ...")
    mf_times, mf_hist_losses, mf_final, mf_net = run_meanfield(data, epochs, cores)
    identical = all(np.array_equal(a, b) for a, b in zip(mf1_net.weights + mf1_net.biases,
                                                         mf_net.weights + mf_net.biases))
    log(f"  final weights bit-identical for 1 and {cores} threads: {identical}")

    log("numpy, 1 BLAS thread ...")
    np1_times, np1_losses, _, _ = run_numpy(data, epochs, 1)
    log(f"numpy, default BLAS threads ({default_threads}) ...")
    npd_times, npd_losses, _, npd_extra = run_numpy(data, epochs, None, cap=args.cap)

    torch = None
    if not args.no_torch:
        try:
            import torch
        except Exception as exc:  # noqa: BLE001
            log(f"torch unavailable: {exc!r}")
    th_default = th_one = None
    if torch is not None:
        log("torch, default threads ...")
        th_default = run_torch(torch, data, epochs, None)
        if not args.no_torch_1:
            log("torch, 1 thread ...")
            th_one = run_torch(torch, data, epochs, 1)

    measure_peaks("end")
    load_end = load()

    # -------------------------------------------------------------------------------- table
    rows = []  # name, threads, times, losses(per epoch, common eval), ref numpy secs

    def row(name, threads, times, final_loss, epoch1_loss):
        best = min(times)
        gflops = flop_epoch / best / 1e9
        pk = peak.get(threads, peak[default_threads])
        return {"method": name, "threads": threads, "epoch_seconds": best,
                "epoch_seconds_all": times, "gflops": gflops,
                "share_peak_2048": gflops / pk["big"], "share_peak_128x300x300": gflops / pk["small"],
                "loss_epoch1": epoch1_loss, "loss_final": final_loss}

    rows.append(row("meanfield", 1, mf1_times, mf1_final, mf1_hist_losses[0]))
    rows.append(row("meanfield", cores, mf_times, mf_final, mf_hist_losses[0]))
    rows.append(row("numpy", 1, np1_times, np1_losses[-1], np1_losses[0]))
    rows.append(row("numpy", default_threads, npd_times, npd_losses[-1], npd_losses[0]))
    rows[-1]["extrapolated"] = npd_extra
    if th_default is not None:
        rows.append(row("torch", th_default[2], th_default[0], th_default[1][-1],
                        th_default[1][0]))
    if th_one is not None:
        rows.append(row("torch", th_one[2], th_one[0], th_one[1][-1], th_one[1][0]))

    def seconds(method, threads):
        for r in rows:
            if r["method"] == method and r["threads"] == threads:
                return r["epoch_seconds"]
        return None

    t_torch_def = seconds("torch", th_default[2]) if th_default is not None else None
    for r in rows:
        t_np = seconds("numpy", r["threads"])
        t_th = seconds("torch", r["threads"])
        r["x_vs_numpy_same_threads"] = t_np / r["epoch_seconds"] if t_np else None
        r["x_vs_torch_same_threads"] = t_th / r["epoch_seconds"] if t_th else None
        r["x_vs_torch_default"] = t_torch_def / r["epoch_seconds"] if t_torch_def else None

    finals = [r["loss_final"] for r in rows if len(r["epoch_seconds_all"]) == epochs]
    firsts = [r["loss_epoch1"] for r in rows]
    spread_final = (max(finals) - min(finals)) / abs(np.mean(finals))
    spread_first = (max(firsts) - min(firsts)) / abs(np.mean(firsts))
    losses_ok = spread_final < 1e-2 and spread_first < 1e-2
    init_loss = full_loss(*initial_state(0)[:2], data[0], data[1])

    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    print(f"one SGD epoch: {N_IN} -> {DEPTH} x {WIDTH} tanh -> {CLASSES} FFNN, float32, "
          f"B = {BATCH}, n = {N_TRAIN} Gaussian inputs, lr {LR}, momentum {MOMENTUM}; "
          f"sigma_w {SIGMA_W}, sigma_b {SIGMA_B}")
    print(f"flops/epoch (6 * sum fan_in*fan_out * n) = {flop_epoch / 1e9:.1f} GFLOP; "
          f"best of {epochs} epoch(s) per method; meanfield time = history 'seconds' "
          f"(epoch loop, evaluation excluded)")
    print(f"load at start: {load_start}")
    print(f"load at end:   {load_end}")
    print(f"cores {os.cpu_count()}, default BLAS threads {default_threads}, torch "
          f"{torch.__version__ if torch is not None else 'n/a'} default threads "
          f"{th_default[2] if th_default is not None else '-'}")
    print("float32 matmul peak [GFLOP/s]:  " + ";  ".join(
        f"{k} thr: 2048^3 {v['big']:.1f}, 128x300x300 {v['small']:.1f}" for k, v in peak.items()))
    print()
    hdr = (f"{'method':<10}{'thr':>4}{'epoch s':>9}{'all epochs s':>16}{'GFLOP/s':>9}"
           f"{'%pk2048':>9}{'%pk128':>8}{'x numpy':>9}{'x torch':>9}{'x torch':>9}"
           f"{'loss ep1':>11}{'loss end':>11}")
    print(hdr)
    print(f"{'':<10}{'':>4}{'':>9}{'':>16}{'':>9}{'':>9}{'':>8}{'same thr':>9}{'same thr':>9}"
          f"{'default':>9}")
    for r in rows:
        name = r["method"] + ("*" if r.get("extrapolated") else "")
        print(f"{name:<10}{r['threads']:>4}{r['epoch_seconds']:>9.2f}"
              f"{'/'.join(f'{t:.2f}' for t in r['epoch_seconds_all']):>16}{r['gflops']:>9.1f}"
              f"{100 * r['share_peak_2048']:>8.1f}%{100 * r['share_peak_128x300x300']:>7.1f}%"
              f"{fmt(r['x_vs_numpy_same_threads'], '>9.2f')}"
              f"{fmt(r['x_vs_torch_same_threads'], '>9.2f')}"
              f"{fmt(r['x_vs_torch_default'], '>9.2f')}"
              f"{r['loss_epoch1']:>11.6f}{r['loss_final']:>11.6f}")
    print()
    print("x = (other's epoch seconds) / (this row's epoch seconds); > 1: this row is faster; "
          "%pk: GFLOP/s / matmul peak at the row's thread count (best of start and end)")
    if npd_extra:
        print(f"* epoch time extrapolated from the first {args.cap:g} s of the epoch (too slow to "
              f"finish timed; the rest ran untimed on 1 thread, so 'loss' is a full epoch's)")
    print(f"losses (mean train cross-entropy; initial {init_loss:.6f}): relative spread after "
          f"epoch 1 {spread_first:.2e}, after epoch {epochs} {spread_final:.2e} (rows that ran "
          f"{epochs} epochs) -> "
          f"{'similar' if losses_ok else 'NOT similar'}  (meanfield epoch 1 from its history; "
          f"history epoch-{epochs} loss {mf_hist_losses[-1]:.6f})")
    t_mf = seconds("meanfield", cores)
    t_np1, t_npd = seconds("numpy", 1), seconds("numpy", default_threads)
    x_np1, x_npd = t_np1 / t_mf, t_npd / t_mf
    x_torch = t_torch_def / t_mf if t_torch_def else None
    need = 1.5 * flop_epoch / min(t_np1, t_npd) / 1e9  # GFLOP/s that 1.5x the faster numpy needs
    print(f"meanfield ({cores} threads): {x_np1:.2f}x numpy (1 BLAS thread), {x_npd:.2f}x numpy "
          f"({default_threads} BLAS threads), {fmt(x_torch, '.2f')}x torch (default threads); "
          f"1 vs {cores} threads bit-identical: {identical}")
    print(f"1.5x the faster numpy row would need {need:.0f} GFLOP/s = "
          f"{100 * need / peak[cores]['small']:.0f}% of the {cores}-thread 128x300x300 matmul peak "
          f"and {100 * need / peak[cores]['big']:.0f}% of the 2048^3 one")
    print(f"script wall time {time.perf_counter() - t_start:.0f} s")
    print(json.dumps({
        "benchmark": "training_epoch_ffnn_784_20x300_tanh_10",
        "batch": BATCH, "n_train": N_TRAIN, "epochs_timed": epochs,
        "flop_per_epoch": flop_epoch,
        "load_start": load_start, "load_end": load_end,
        "peak_gflops": {str(k): v for k, v in peak.items()},
        "results": rows,
        "loss_relative_spread_epoch1": spread_first,
        "loss_relative_spread_final": spread_final,
        "losses_similar": bool(losses_ok),
        "meanfield_threads": cores,
        "meanfield_speedup_vs_numpy_1thread": x_np1,
        "meanfield_speedup_vs_numpy_default_threads": x_npd,
        "meanfield_speedup_vs_torch_default": x_torch,
        "gflops_needed_for_1p5x_faster_numpy": need,
        "meanfield_threads_bit_identical": bool(identical),
    }))


if __name__ == "__main__":
    main()
