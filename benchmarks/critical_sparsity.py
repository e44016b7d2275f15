"""Benchmark: Monte Carlo trials of the critical sparsity s_cr of SNIP (docs/theory.md §4).

What is compared
----------------
One trial draws a tanh FFNN of width N and depth L (W ~ N(0, σ_w²/N), B ~ N(0, σ_b²), σ_b = 0.3,
readout to 10 classes), a batch X ~ N(0, I) of B = 128 inputs with uniform labels, computes the
SNIP scores |W ∘ ∂ℒ/∂W| of the mean cross-entropy and returns
s_cr = #{g <= m} / #{all}, m = min_l max_ij g^l_ij, at (N, L) ∈ {(100, 50), (100, 100), (512, 20)}
in the three phases: ordered σ_w = 0.8, EOC σ_w = 1.3955839751549, chaotic σ_w = 3.0. Methods:

* **meanfield**: ``meanfield.pruning.snip_critical_sparsity_trial`` (float32);
* **numpy**: plain numpy float32 "written the obvious way" (:func:`numpy_trial`): weights drawn
  with ``rng.standard_normal`` and cast, a loop over layers with ``@`` and ``np.tanh``, the
  softmax cross-entropy gradient, ``np.abs(W * G)``, min of the maxima, concatenate and count;
* **torch**: the same network and batch as numpy (drawn by the same code), forward in PyTorch,
  ``torch.autograd.grad`` of ``F.cross_entropy``, scores and count in torch (if torch imports);
* **floor** (not a trial: :func:`floor_trial`): the part of meanfield's trial that no faster
  implementation computing the same numbers could skip, each at the speed of the library that
  does it: the rng's random words (``rng.integers``, as many as meanfield's sampler draws), the
  three BLAS products per layer (y = h Wᵀ, ∂ℒ/∂W = uᵀ h, u W), the bias and numpy's float32
  ``np.tanh`` (on the trial's kind of network: tanh's speed depends on its arguments).
  meanfield computes exactly numpy's tanh and OpenBLAS's products (bit-identical results are a
  rule of the project), so numpy's time over the floor's is the largest speed-up over numpy
  that such an implementation could reach on this machine; meanfield's time over the floor's
  is what its sampler, bias, score and count work and its Python cost add.

Trial i of every configuration uses ``np.random.default_rng(SeedSequence(seed).spawn(n)[i])`` for
every method, so numpy and torch see identical trials; meanfield draws its normals with its own
(faster) sampler, so it sees different trials from the same distribution: its E[s_cr] is checked
against numpy's to 2 combined standard errors. Each method gets one untimed warm-up trial per
configuration (numba compilation or cache loading, torch start-up) right before its first timed
trial; then each method runs its trials back to back, as in a real Monte Carlo: meanfield and
numpy in A-B-B-A half blocks (so that drifting load on the machine hits both alike), torch last
and followed by a 1 s pause (its OpenMP threads keep spinning for a while after each call, which
would slow down, and bill CPU time to, whatever runs next).
Reported: trials/s = trials / total wall-clock time, and trials per CPU-second (process CPU
time, all threads), which is steadier than wall time on a machine shared with other jobs.

Threads: numpy's, scipy's and numba's BLAS (OpenBLAS) are set to ``--blas-threads`` (default 1,
through OPENBLAS_NUM_THREADS, before numpy is imported): these 100 × 100 × 128 products are too
small for threads to pay (on the 2-core test machine, with two OpenBLAS threads a 100 × 100 trial
took 0.03–2 s instead of 15–30 ms), and one thread keeps the comparison single-core. torch keeps
its default (``torch.get_num_threads()``, printed).

Usage::

    PYTHONPATH=. python benchmarks/critical_sparsity.py [--trials 20] [--seed 2021]

Prints a table on stdout and, last, one JSON line with the results; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time


def _blas_threads(argv):
    """Read --blas-threads early: it must be in the environment before numpy loads OpenBLAS."""
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--blas-threads", type=int, default=1)
    n = ap.parse_known_args(argv)[0].blas_threads
    if n > 0:
        os.environ["OPENBLAS_NUM_THREADS"] = str(n)
    return n


BLAS_THREADS = _blas_threads(sys.argv[1:]) if __name__ == "__main__" else 0

import numpy as np  # noqa: E402

import meanfield  # noqa: E402
import meanfield as mf  # noqa: E402
from meanfield.pruning import snip_critical_sparsity_trial  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover
    torch = None

SIGMA_B = 0.3
BATCH = 128
CLASSES = 10
SHAPES = [(100, 50), (100, 100), (512, 20)]
PHASES = [("ordered", 0.8), ("EOC", 1.3955839751549), ("chaotic", 3.0)]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# The baselines
# ------------------------------------------------------------------------------------------------

def draw(width, depth, sigma_w, sigma_b, batch, classes, rng):
    """Weights, biases, inputs and labels of one trial, float32, the obvious way."""
    sizes = [width] * depth + [classes]
    Ws = [(rng.standard_normal((n, width)) * (sigma_w / np.sqrt(width))).astype(np.float32)
          for n in sizes]
    bs = [(rng.standard_normal(n) * sigma_b).astype(np.float32) for n in sizes]
    X = rng.standard_normal((batch, width)).astype(np.float32)
    y = rng.integers(classes, size=batch)
    return Ws, bs, X, y


def numpy_trial(width, depth, sigma_w, sigma_b, batch, classes, rng):
    """SNIP s_cr in plain numpy float32: loops over layers, matmuls, np.tanh, backprop."""
    Ws, bs, X, y = draw(width, depth, sigma_w, sigma_b, batch, classes, rng)
    hs = [X]
    for W, b in zip(Ws[:-1], bs[:-1]):
        hs.append(np.tanh(hs[-1] @ W.T + b))
    logits = hs[-1] @ Ws[-1].T + bs[-1]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(batch), y] -= 1.0
    d = p / batch                                    # ∂ℒ/∂logits of the mean cross-entropy
    grads = [None] * len(Ws)
    for l in range(depth, -1, -1):
        grads[l] = d.T @ hs[l]
        if l > 0:
            d = (d @ Ws[l]) * (1.0 - hs[l] ** 2)     # through tanh
    scores = [np.abs(W * G) for W, G in zip(Ws, grads)]
    m = min(s.max() for s in scores)
    every = np.concatenate([s.ravel() for s in scores])
    return float(np.count_nonzero(every <= m) / every.size)


def torch_trial(width, depth, sigma_w, sigma_b, batch, classes, rng):
    """The same trial with PyTorch autograd (the same draws as :func:`numpy_trial`)."""
    Ws, bs, X, y = draw(width, depth, sigma_w, sigma_b, batch, classes, rng)
    Wt = [torch.from_numpy(W).requires_grad_() for W in Ws]
    bt = [torch.from_numpy(b) for b in bs]
    h = torch.from_numpy(X)
    for W, b in zip(Wt[:-1], bt[:-1]):
        h = torch.tanh(h @ W.T + b)
    loss = F.cross_entropy(h @ Wt[-1].T + bt[-1], torch.from_numpy(y))
    grads = torch.autograd.grad(loss, Wt)
    with torch.no_grad():
        scores = [(W * G).abs() for W, G in zip(Wt, grads)]
        m = torch.stack([s.max() for s in scores]).min()
        kept = sum(int((s <= m).sum()) for s in scores)
    return kept / sum(s.numel() for s in scores)


def floor_trial(width, depth, sigma_w, sigma_b, batch, classes, rng):
    """The floor (see the module's docstring): the random words, and per layer the products, the
    bias and tanh of a trial, on the trial's kind of weights (σ_w, σ_b: tanh's speed depends on
    its arguments) drawn once per configuration into buffers; returns 0.0 (no s_cr)."""
    key = (width, depth, sigma_w, sigma_b, batch, classes)
    if _FLOOR.get("key") != key:
        Ws, bs, X, _ = draw(width, depth, sigma_w, sigma_b, batch, classes,
                            np.random.default_rng(0))
        _FLOOR.update(key=key, W=Ws, b=bs, X=X, H=np.empty((depth, batch, width), np.float32),
                      u=(np.random.default_rng(1).standard_normal((batch, width))
                         / batch).astype(np.float32),
                      t=np.empty((batch, width), np.float32),
                      G=np.empty((width, width), np.float32),
                      z=np.empty((batch, classes), np.float32),
                      uz=np.zeros((batch, classes), np.float32),
                      Gz=np.empty((classes, width), np.float32))
    f = _FLOOR
    n = depth * width * width + classes * width + depth * width + classes + batch * width
    rng.integers(0, np.iinfo(np.uint64).max, size=(n + n // 16 + 64) // 2, dtype=np.uint64,
                 endpoint=True)
    rng.integers(classes, size=batch)
    W, b, H, h = f["W"], f["b"], f["H"], f["X"]
    for k in range(depth):
        np.dot(h, W[k].T, out=H[k])
        np.add(H[k], b[k], out=H[k])
        np.tanh(H[k], out=H[k])
        h = H[k]
    np.dot(h, W[depth].T, out=f["z"])
    np.dot(f["uz"].T, h, out=f["Gz"])
    np.dot(f["uz"], W[depth], out=f["t"])
    for k in range(depth - 1, -1, -1):
        np.dot(f["u"].T, f["X"] if k == 0 else H[k - 1], out=f["G"])
        if k > 0:
            np.dot(f["u"], W[k], out=f["t"])
    return 0.0


_FLOOR = {}


def meanfield_trial(width, depth, sigma_w, sigma_b, batch, classes, rng):
    return snip_critical_sparsity_trial("tanh", width, depth, sigma_w, sigma_b, batch=batch,
                                        classes=classes, rng=rng)


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------

def run_config(methods, width, depth, sigma_w, trials, seed):
    args = (width, depth, sigma_w, SIGMA_B, BATCH, CLASSES)
    children = np.random.SeedSequence(seed).spawn(trials)
    values = {name: [None] * trials for name in methods}
    wall = {name: 0.0 for name in methods}
    cpu = {name: 0.0 for name in methods}
    half = trials // 2
    order = [("meanfield", range(half)), ("numpy", range(half)), ("numpy", range(half, trials)),
             ("meanfield", range(half, trials))]
    order += [(name, range(trials)) for name in methods if name not in ("meanfield", "numpy")]
    warm = set()
    for name, block in order:
        fn = methods[name]
        if name not in warm:  # warm-up, untimed, right before the method's first block
            fn(*args, np.random.default_rng(seed + 1))
            warm.add(name)
        for i in block:
            rng = np.random.default_rng(children[i])
            c0, t0 = time.process_time(), time.perf_counter()
            values[name][i] = fn(*args, rng)
            wall[name] += time.perf_counter() - t0
            cpu[name] += time.process_time() - c0
    if "torch" in methods:
        time.sleep(1.0)  # let torch's OpenMP threads stop spinning before the next configuration
    out = {}
    for name in methods:
        v = np.array(values[name])
        out[name] = {"mean": float(v.mean()), "se": float(v.std(ddof=1) / math.sqrt(trials)),
                     "trials_per_s": trials / wall[name], "trials_per_cpu_s": trials / cpu[name]}
    return out


def both_cores(rows, opts, others):
    """meanfield's own Monte Carlo on both cores: ``simulate_critical_sparsity`` with a
    2-process executor (the way a sweep runs), the same trials; against the single-process rows.
    PyTorch uses both cores through its threads; numpy is the single-threaded baseline."""
    from concurrent.futures import ProcessPoolExecutor

    workers = os.cpu_count() or 2
    print(f"\nmeanfield.simulate_critical_sparsity on {workers} processes (same trials, same seed)")
    print(f"{'N':>4}{'L':>5} {'phase':<8}{'trials/s':>10}{'identical':>11}"
          + "".join(f"{'vs ' + m:>10}" for m in others))
    with ProcessPoolExecutor(workers) as pool:
        mf.simulate_critical_sparsity("tanh", 20, 5, 1.0, SIGMA_B, trials=4, executor=pool)
        for r in rows:
            t0 = time.perf_counter()
            df = mf.simulate_critical_sparsity("tanh", r["width"], r["depth"], r["sigma_w"],
                                               SIGMA_B, trials=opts.trials, batch=BATCH,
                                               classes=CLASSES, seed=opts.seed, executor=pool)
            rate = opts.trials / (time.perf_counter() - t0)
            serial = [meanfield_trial(r["width"], r["depth"], r["sigma_w"], SIGMA_B, BATCH, CLASSES,
                                      np.random.default_rng(c))
                      for c in np.random.SeedSequence(opts.seed).spawn(opts.trials)]
            same = bool(np.array_equal(df.s_cr.to_numpy(), np.array(serial)))
            r["processes_trials_per_s"] = rate
            r["processes_identical_to_serial"] = same
            for m in others:
                r[f"processes_speedup_vs_{m}"] = rate / r["results"][m]["trials_per_s"]
            print(f"{r['width']:>4}{r['depth']:>5} {r['phase']:<8}{rate:>10.1f}{str(same):>11}"
                  + "".join(f"{r[f'processes_speedup_vs_{m}']:>10.2f}" for m in others))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=2021)
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="OpenBLAS threads for numpy/meanfield (0: leave the environment alone)")
    ap.add_argument("--no-torch", action="store_true")
    opts = ap.parse_args(argv)

    methods = {"meanfield": meanfield_trial, "numpy": numpy_trial}
    if torch is not None and not opts.no_torch:
        methods["torch"] = torch_trial
    methods["floor"] = floor_trial
    others = [m for m in methods if m != "meanfield"]
    trials = [m for m in methods if m != "floor"]  # the methods that compute s_cr
    print(f"SNIP critical sparsity, tanh FFNN, sigma_b = {SIGMA_B}, batch {BATCH}, {CLASSES} "
          f"classes, {opts.trials} trials per configuration, seed {opts.seed}")
    print(f"meanfield {meanfield.__version__}, numpy {np.__version__}, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, torch "
          + (f"{torch.__version__} ({torch.get_num_threads()} threads)" if "torch" in methods
             else "not run") + f", {os.cpu_count()} CPUs, load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    rows = []
    for width, depth in SHAPES:
        for phase, sigma_w in PHASES:
            log(f"N={width} L={depth} {phase} ...")
            res = run_config(methods, width, depth, sigma_w, opts.trials, opts.seed)
            mf, nps = res["meanfield"], res["numpy"]
            z = abs(mf["mean"] - nps["mean"]) / max(math.hypot(mf["se"], nps["se"]), 1e-300)
            row = {"width": width, "depth": depth, "phase": phase, "sigma_w": sigma_w,
                   "results": res, "z_meanfield_vs_numpy": z, "agree": bool(z <= 2.0)}
            for m in others:
                row[f"speedup_vs_{m}"] = mf["trials_per_s"] / res[m]["trials_per_s"]
                row[f"cpu_speedup_vs_{m}"] = mf["trials_per_cpu_s"] / res[m]["trials_per_cpu_s"]
            row["ceiling_vs_numpy"] = res["floor"]["trials_per_cpu_s"] / nps["trials_per_cpu_s"]
            rows.append(row)

    print("\nE[s_cr] ± standard error")
    print(f"{'N':>4}{'L':>5} {'phase':<8}" + "".join(f"{m:>20}" for m in trials)
          + "   meanfield vs numpy")
    for r in rows:
        print(f"{r['width']:>4}{r['depth']:>5} {r['phase']:<8}"
              + "".join(f"{r['results'][m]['mean']:>11.4f} ± {r['results'][m]['se']:.4f}"
                        for m in trials)
              + f"   {'agree' if r['agree'] else 'DIFFER'} ({r['z_meanfield_vs_numpy']:.1f} SE)")
    print("\ntrials/s (wall clock), trials per CPU-second (all threads), meanfield's speed-up")
    print(f"{'N':>4}{'L':>5} {'phase':<8}" + "".join(f"{m + ' wall':>15}{'cpu':>8}" for m in methods)
          + "".join(f"{'vs ' + m:>16}" for m in others))
    for r in rows:
        print(f"{r['width']:>4}{r['depth']:>5} {r['phase']:<8}"
              + "".join(f"{r['results'][m]['trials_per_s']:>15.1f}"
                        f"{r['results'][m]['trials_per_cpu_s']:>8.1f}" for m in methods)
              + "".join(f"{r[f'speedup_vs_{m}']:>8.2f}/{r[f'cpu_speedup_vs_{m}']:<7.2f}"
                        for m in others))
    print("\nThe ceiling: numpy's CPU time over the floor's, the largest speed-up over numpy of an "
          "implementation that computes numpy's tanh and OpenBLAS's products")
    print(f"{'N':>4}{'L':>5} {'phase':<8}{'ceiling':>9}{'meanfield':>11}{'of ceiling':>12}")
    for r in rows:
        print(f"{r['width']:>4}{r['depth']:>5} {r['phase']:<8}{r['ceiling_vs_numpy']:>9.2f}"
              f"{r['cpu_speedup_vs_numpy']:>11.2f}"
              f"{r['cpu_speedup_vs_numpy'] / r['ceiling_vs_numpy']:>11.0%}")
    print(f"\n(speed-up: wall / cpu.) meanfield agrees with numpy (|Δ E[s_cr]| <= 2 combined SE) "
          f"in {sum(r['agree'] for r in rows)} of {len(rows)} configurations")
    both_cores(rows, opts, [m for m in others if m != "floor"])
    print(json.dumps({"benchmark": "critical_sparsity", "trials": opts.trials,
                      "seed": opts.seed, "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                      "torch_threads": torch.get_num_threads() if "torch" in methods else None,
                      "load_average": os.getloadavg(), "rows": rows}))


if __name__ == "__main__":
    main()
