"""Benchmark: the cost of the analytic finite-width prediction against the width N.

What is compared
----------------
For tanh FFNNs (σ_b = 0.2; ordered σ_w = 0.9, the EOC, chaotic σ_w = 2.5) of depth L = 50
(``--depth``), batch B = 128 and 10 classes, at each width N (``--widths``, default 64, 256,
1024, 4096):

* **analytic**: one call of ``critical_sparsity_distribution(..., finite_width="analytic")``
  (docs/critical_sparsity.md §5e: no simulated layer; C × C Wishart draws);
* **chain + simulated top block**: the same call with the default route (docs §5c), whose
  simulated top layers cost O(N² B) per draw; only for N ≤ ``--max-block-width`` (default
  1024): beyond, one prediction would take minutes.

Both on one core (OpenBLAS and numba on one thread), one after the other on the same
configuration, after an untimed warm-up of each route on a small network at each σ_w (numba
compilation or cache loading). Reported per configuration: both values with their own standard
errors, the draws each averaged, and their wall-clock times.

Usage::

    PYTHONPATH=. python benchmarks/analytic_prediction.py [--depth 50] [--widths 64,256,1024,4096]

Prints a table on stdout and, last, one JSON line with the results; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def widths(text):
    """"64,256" → [64, 256]."""
    try:
        out = [int(v) for v in text.split(",")]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"--widths {text!r}: must be positive integers such as "
                                         f"64,256,1024")
    return out


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--widths", type=widths, default=widths("64,256,1024,4096"))
    ap.add_argument("--max-block-width", type=int, default=1024)
    opts = ap.parse_args(argv)

    import warnings

    import numpy as np

    import meanfield
    from meanfield.prediction import critical_sparsity_distribution as csd

    warnings.simplefilter("ignore")         # the domain warnings are not what is measured here
    sb, L = 0.2, opts.depth
    phases = {"ordered": 0.9, "EOC": float(meanfield.eoc("tanh", sb)[0]), "chaotic": 2.5}
    log("warm-up")
    # at each phase's σ_w: the domain checks reach the chaotic phase's numba kernels (c*, χ_c)
    # only where χ₁ > 1, and compiling them into an empty cache took 12 s of the first such cell
    for sw in phases.values():
        csd("tanh", 60, 5, sw, sb, finite_width="analytic")
        csd("tanh", 60, 5, sw, sb)

    rows = []
    for n in opts.widths:
        for phase, sw in phases.items():
            log(f"{n} x {L} {phase}")
            d, t = timed(csd, "tanh", n, L, sw, sb, finite_width="analytic")
            row = dict(width=n, depth=L, phase=phase, sigma_w=sw, analytic=d["mean"],
                       analytic_se=d["se"], analytic_draws=d["draws"], analytic_seconds=t,
                       block=None, block_se=None, block_draws=None, block_seconds=None)
            if n <= opts.max_block_width:
                d, t = timed(csd, "tanh", n, L, sw, sb)
                row.update(block=d["mean"], block_se=d["se"], block_draws=d["draws"],
                           block_seconds=t)
            rows.append(row)

    print(f"One prediction of E[s_cr] (SNIP), tanh FFNN, L = {L}, sigma_b = {sb}, batch 128, 10 "
          f"classes; meanfield {meanfield.__version__}, numpy {np.__version__}, one core")
    print(f"{'N':>5} {'phase':<8}{'analytic':>18}{'draws':>6}{'seconds':>9}"
          f"{'chain + block':>18}{'draws':>6}{'seconds':>9}")
    for r in rows:
        block = ("" if r["block"] is None else
                 f"{r['block']:>10.4f} ± {r['block_se']:.4f}{r['block_draws']:>6}"
                 f"{r['block_seconds']:>9.2f}")
        print(f"{r['width']:>5} {r['phase']:<8}{r['analytic']:>10.4f} ± {r['analytic_se']:.4f}"
              f"{r['analytic_draws']:>6}{r['analytic_seconds']:>9.2f}" + (block or "   (skipped)"))
    print(json.dumps({"benchmark": "analytic_prediction", "depth": L, "rows": rows}))


if __name__ == "__main__":
    main()
