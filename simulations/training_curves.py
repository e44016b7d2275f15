"""Figure 9: training curves of a pruned deep tanh FFNN on mnist5k (depth 30, width 100, 90 %
sparsity by SNIP): ordered initialisation vs the EOC vs the EOC with the rescaling (SBP-SR)."""

import time

import pandas as pd

from meanfield._executors import run_tasks
from meanfield.training import train

from ._common import executor, finish, output, parse

RUNS = {"SNIP, ordered init": ("ordered", False), "SNIP, EOC init": ("eoc", False),
        "SBP-SR (EOC + rescaling)": ("eoc", True)}


def _run(label, init, rescale, seed, epochs):
    df = train("tanh", "mnist5k", width=100, depth=30, sigma_w=init, sigma_b=0.3, method="snip",
               sparsity=0.9, rescale=rescale, epochs=epochs, lr=0.02, seed=seed)
    return df.assign(run=label)


def main(argv=None):
    args = parse(__doc__, argv)
    t0 = time.perf_counter()
    epochs, seeds = (6, [args.seed]) if args.quick else (30, [args.seed + k for k in range(3)])
    tasks = [(label, init, rs, s, epochs) for label, (init, rs) in RUNS.items() for s in seeds]
    with executor(args) as ex:
        frames = [df for _, df in run_tasks(_run, tasks, ex)]
    finish(pd.concat(frames, ignore_index=True), output(args, "training_curves"), t0)


if __name__ == "__main__":
    main()
