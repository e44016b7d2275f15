"""Benchmark: the mean-field prediction of E[s_cr] against the Monte Carlo it stands in for.

What is compared
----------------
For tanh FFNNs (σ_b = 0.2; ordered σ_w = 0.9, the EOC, chaotic σ_w = 2.5), batch B = 128 and 10
classes, at each width N and depth L:

* **prediction**: one call of ``meanfield.prediction.critical_sparsity_distribution`` with its
  defaults (finite width; docs/critical_sparsity.md §5–§5d): E[s_cr] and its own standard error;
* **Monte Carlo**: ``meanfield.simulate_critical_sparsity`` with ``--trials`` nets (default 200,
  as in docs §8), serial: E[s_cr] ± its standard error.

Both run on one core (OpenBLAS and numba on one thread; the Monte Carlo without
an executor), one after the other on the same configuration, each after an untimed warm-up on a
small configuration (numba compilation or cache loading). Reported per configuration: both
estimates, the gap in combined standard errors, the wall-clock time of each and their ratio.

Usage::

    PYTHONPATH=. python benchmarks/prediction.py [--trials 200] [--sizes 200x100,500x50,1000x30]

Prints a table on stdout and, last, one JSON line with the results; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sizes(text):
    """"200x100,500x50" → [(200, 100), (500, 50)]."""
    try:
        out = [tuple(int(v) for v in part.lower().split("x")) for part in text.split(",")]
    except ValueError:
        out = []
    if not out or any(len(p) != 2 or min(p) < 1 for p in out):
        raise argparse.ArgumentTypeError(f"--sizes {text!r}: must be NxL pairs such as 200x100,500x50")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--sizes", type=sizes, default=sizes("200x100,500x50,1000x30"))
    ap.add_argument("--seed", type=int, default=11)
    opts = ap.parse_args(argv)

    import numpy as np

    import meanfield
    from meanfield.prediction import critical_sparsity_distribution

    sb = 0.2
    phases = {"ordered": 0.9, "EOC": float(meanfield.eoc("tanh", sb)[0]), "chaotic": 2.5}
    log("warm-up")
    critical_sparsity_distribution("tanh", 20, 5, 1.0, sb)
    meanfield.simulate_critical_sparsity("tanh", 20, 5, 1.0, sb, trials=2, seed=0)

    rows = []
    for n, depth in opts.sizes:
        for phase, sw in phases.items():
            log(f"{n} x {depth} {phase}: prediction")
            t = time.perf_counter()
            d = critical_sparsity_distribution("tanh", n, depth, sw, sb)
            t_pred = time.perf_counter() - t
            log(f"{n} x {depth} {phase}: Monte Carlo, {opts.trials} nets")
            t = time.perf_counter()
            mc = meanfield.simulate_critical_sparsity("tanh", n, depth, sw, sb,
                                                      trials=opts.trials, seed=opts.seed)
            t_mc = time.perf_counter() - t
            mean, se = float(mc.s_cr.mean()), float(mc.s_cr.std(ddof=1) / math.sqrt(len(mc)))
            rows.append(dict(width=n, depth=depth, phase=phase, sigma_w=sw, prediction=d["mean"],
                             prediction_se=d["se"], draws=d["draws"], mc=mean, mc_se=se,
                             gap_in_se=(d["mean"] - mean) / math.hypot(se, d["se"]),
                             prediction_seconds=t_pred, mc_seconds=t_mc))

    print(f"E[s_cr] of SNIP, tanh FFNN, sigma_b = {sb}, batch 128, 10 classes; meanfield "
          f"{meanfield.__version__}, numpy {np.__version__}, one core")
    print(f"{'N':>5}{'L':>5} {'phase':<8}{'prediction':>18}{'Monte Carlo':>18}{'gap/SE':>8}"
          f"{'pred s':>9}{'MC s':>9}{'MC/pred':>9}")
    for r in rows:
        print(f"{r['width']:>5}{r['depth']:>5} {r['phase']:<8}"
              f"{r['prediction']:>10.4f} ± {r['prediction_se']:.4f}"
              f"{r['mc']:>10.4f} ± {r['mc_se']:.4f}{r['gap_in_se']:>+8.1f}"
              f"{r['prediction_seconds']:>9.1f}{r['mc_seconds']:>9.1f}"
              f"{r['mc_seconds'] / r['prediction_seconds']:>9.1f}")
    print(f"\n(gap/SE: prediction − Monte Carlo over √(SE² + own SE²); Monte Carlo of "
          f"{opts.trials} nets, seed {opts.seed}.)")
    print(json.dumps({"benchmark": "prediction", "trials": opts.trials, "rows": rows}))


if __name__ == "__main__":
    main()
