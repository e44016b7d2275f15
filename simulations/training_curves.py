"""Figure 9: training curves of a pruned deep tanh FFNN on mnist5k (depth 30, width 100, 90 %
sparsity by SNIP): ordered initialisation vs the EOC vs the EOC with the rescaling (SBP-SR)."""

import time

from meanfield.sweeps import TrialStore, run_tasks
from meanfield.training import train

from ._common import executor, finish, output, parse

RUNS = {"SNIP, ordered init": ("ordered", False), "SNIP, EOC init": ("eoc", False),
        "SBP-SR (EOC + rescaling)": ("eoc", True)}


def _run(label, init, rescale, seed, epochs, threads):
    df = train("tanh", "mnist5k", width=100, depth=30, sigma_w=init, sigma_b=0.3, method="snip",
               sparsity=0.9, rescale=rescale, epochs=epochs, lr=0.02, seed=seed, threads=threads)
    return df.assign(run=label)


def main(argv=None):
    args = parse(__doc__, argv)
    t0 = time.perf_counter()
    epochs, seeds = (6, [args.seed]) if args.quick else (30, [args.seed + k for k in range(3)])
    path = output(args, "training_curves")
    key = ("run", "seed", "epochs", "epoch")
    store = TrialStore(path.with_suffix(".runs.csv"), key)  # resume: finished runs are kept
    # a run's rows (one per epoch) are written in order: its last one present means it is done
    # one core a run under an executor (--workers 1 is serial: all cores for each run)
    threads = 1 if (args.workers or 0) > 1 or args.scheduler else None
    tasks = [(label, init, rs, s, epochs, threads) for label, (init, rs) in RUNS.items() for s in seeds
             if not store.has(dict(run=label, seed=s, epochs=epochs, epoch=epochs))]
    with executor(args) as ex:
        for _, df in run_tasks(_run, tasks, ex):
            store.append(df.to_dict("records"))
    done = store.frame
    finish(done[done.seed.isin(seeds) & (done.epochs == epochs)].reset_index(drop=True), path, t0)


if __name__ == "__main__":
    main()
