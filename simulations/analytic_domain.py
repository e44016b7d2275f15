"""Where the analytic finite-width route holds for ResNets: a grid of widths and depths,
200-net Monte Carlos against ``finite_width="analytic"`` and the wide limit
(docs/critical_sparsity.md §5e, "Where it holds for ResNets").

tanh, σ_w = 1, σ_b = 0.3, B = 128, C = 10, as the ResNet rows of ``prediction_check``; plain
ResNets at L = 10 … 100 and Stable ResNets at L = 10 … 200, N = 50 … 200. For each: the Monte
Carlo's mean and SE (seed 11, as the record), each route's value, own SE, gap, gap / SE, whether
it is on target (within max(3 SE, 0.004)) and whether the route warned that the configuration is
outside its domain. The domain rule of the route (``meanfield.prediction._analytic.outside``)
was set from this table; 20 nets per cell with ``--quick``.

Writes ``analytic_domain.csv``: one row per configuration.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from meanfield import simulate_critical_sparsity

from ._common import output, script_main
from .prediction_check import _counts, _yes, predict

GRID = [("resnet", n, L) for n, L in
        [(50, 10), (50, 20), (50, 40), (100, 10), (100, 30), (200, 20), (200, 50), (50, 70),
         (100, 70), (100, 100), (200, 100)]]
GRID += [("stable_resnet", n, L) for n, L in
         [(50, 10), (50, 40), (50, 100), (100, 100), (100, 200), (200, 50), (200, 200)]]
SIGMA_W, SIGMA_B = 1.0, 0.3


def run(args):
    trials = 20 if args.quick else 200
    grid = GRID[:2] + GRID[11:12] if args.quick else GRID
    path = output(args, "analytic_domain")
    rows = []
    for arch, n, L in grid:
        mc = simulate_critical_sparsity("tanh", n, L, SIGMA_W, SIGMA_B, arch=arch, trials=trials,
                                        seed=11 + args.seed)
        row = dict(arch=arch, sigma_w=SIGMA_W, sigma_b=SIGMA_B, width=n, depth=L,
                   trials=len(mc), mc=mc.s_cr.mean(),
                   mc_se=mc.s_cr.std(ddof=1) / np.sqrt(len(mc)))
        predict(row, "analytic", finite_width="analytic")
        predict(row, "wide", finite_width=False)
        rows.append(row)
        print(f"{arch} {n} x {L}: analytic {row['analytic_gap']:+.4f}, wide "
              f"{row['wide_gap']:+.4f}", flush=True)
    return pd.DataFrame(rows), path


def markdown(df):
    """The docs' table: the analytic route's and the wide limit's gaps on the grid."""
    lines = ["| network | N × L | MC ± SE | analytic: gap (gap / SE) | on target | in its domain "
             "| wide limit: gap (gap / SE) |",
             "|---|---|---|---|---|---|---|"]
    for r in df.itertuples():
        name = "ResNet" if r.arch == "resnet" else "Stable ResNet"
        lines.append(f"| {name} | {r.width} × {r.depth} | {r.mc:.4f} ± {r.mc_se:.4f} "
                     f"| {r.analytic_gap:+.4f} ({r.analytic_gap_in_se:+.1f}) "
                     f"| {_yes(r.analytic_on_target)} | {_yes(r.analytic_in_domain)} "
                     f"| {r.wide_gap:+.4f} ({r.wide_gap_in_se:+.1f}) |")
    domain = df.analytic_in_domain.astype(bool)
    lines += ["", f"Inside the route's domain it is on target at "
                  f"{_counts(df[domain], 'analytic')[1]} of {int(domain.sum())} configurations; "
                  f"outside, at {_counts(df[~domain], 'analytic')[1]} of {int((~domain).sum())}."]
    return "\n".join(lines)


def main(argv=None):
    script_main(__doc__, run, markdown, argv)


if __name__ == "__main__":
    main()
