"""The mean-field prediction of E[s_cr] against the Monte Carlo (docs/critical_sparsity.md §8):
tanh FFNNs in the three phases at widths 50–200 and depths 10–200 (σ_b = 0.2), and ResNets and
Stable ResNets (σ_w = 1, σ_b = 0.3), 200 trials each (8 with ``--quick``). For every
configuration: the Monte-Carlo mean and standard error, the finite-width and the wide-limit
prediction with the prediction's own standard error, the gap in Monte-Carlo standard errors,
whether it is within the target max(3 SE, 0.004), and the time of one prediction and of the
Monte Carlo."""

import time

import numpy as np
import pandas as pd

from meanfield import eoc
from meanfield.prediction import critical_sparsity_distribution
from meanfield.pruning import simulate_critical_sparsity

from ._common import executor, finish, output, parse

SHAPES = [(50, 10), (64, 40), (100, 30), (150, 80), (200, 100), (100, 200)]
RESNET_SHAPES = [(100, 20), (64, 40), (100, 50)]


def configurations(quick):
    """(arch, sigma_w, sigma_b, width, depth) of the check."""
    sw_eoc = float(eoc("tanh", 0.2)[0])
    shapes = SHAPES[:3] if quick else SHAPES
    out = [("ffnn", sw, 0.2, n, L) for sw in (0.9, sw_eoc, 2.5) for n, L in shapes]
    out += [(arch, 1.0, 0.3, n, L) for arch in ("resnet", "stable_resnet")
            for n, L in (RESNET_SHAPES[:1] if quick else RESNET_SHAPES)]
    return out


def main(argv=None):
    args = parse(__doc__, argv)
    t0 = time.perf_counter()
    trials = 8 if args.quick else 200
    path = output(args, "prediction_check")
    rows = []
    with executor(args) as ex:
        for arch, sw, sb, n, L in configurations(args.quick):
            t = time.perf_counter()
            mc = simulate_critical_sparsity("tanh", n, L, sw, sb, arch=arch, trials=trials,
                                            seed=11 + args.seed, executor=ex,
                                            store=path.with_suffix(".trials.csv"),
                                            progress=args.progress)
            t_mc = time.perf_counter() - t
            mean, se = mc.s_cr.mean(), mc.s_cr.std(ddof=1) / np.sqrt(len(mc))
            row = dict(arch=arch, sigma_w=sw, sigma_b=sb, width=n, depth=L, trials=len(mc),
                       mc=mean, mc_se=se, mc_seconds=t_mc)
            for name, finite in (("finite", True), ("wide", False)):
                t = time.perf_counter()
                d = critical_sparsity_distribution("tanh", n, L, sw, sb, arch=arch,
                                                   finite_width=finite)
                row[name] = d["mean"]
                row[f"{name}_se"] = d["se"]
                row[f"{name}_seconds"] = time.perf_counter() - t
                row[f"{name}_gap_in_se"] = (d["mean"] - mean) / se
                row[f"{name}_on_target"] = abs(d["mean"] - mean) <= max(3 * se, 0.004)
            rows.append(row)
    finish(pd.DataFrame(rows), path, t0)


if __name__ == "__main__":
    main()
