"""Figure 10: test accuracy on mnist5k after pruning at initialization and training, by method and
sparsity, for a deep tanh FFNN and a Stable ResNet (mean ± sd over seeds)."""

import time

from meanfield.tasks import TrialStore, run_tasks
from meanfield.training import train

from ._common import executor, finish, output, parse

KEY = ("label", "sparsity", "depth", "seed", "epochs")

#: label → (arch, init, method, rescale)
METHODS = {
    "SNIP (ordered init)": ("ffnn", "ordered", "snip", False),
    "SNIP (EOC)": ("ffnn", "eoc", "snip", False),
    "SBP-SR": ("ffnn", "eoc", "snip", True),
    "GraSP": ("ffnn", "eoc", "grasp", False),
    "SynFlow": ("ffnn", "eoc", "synflow", False),
    "magnitude": ("ffnn", "eoc", "magnitude", False),
    "random": ("ffnn", "eoc", "random", False),
    "Stable ResNet SNIP": ("stable_resnet", 1.0, "snip", False),
    "Stable ResNet SBP-SR": ("stable_resnet", 1.0, "snip", True),
}


def _run(label, arch, init, method, rescale, sparsity, depth, seed, epochs, threads):
    df = train("tanh", "mnist5k", width=100, depth=depth, sigma_w=init, sigma_b=0.3, arch=arch,
               method=method, sparsity=sparsity, rescale=rescale, epochs=epochs, lr=0.02,
               seed=seed, threads=threads)
    last = df.iloc[-1]
    return {"label": label, "arch": arch, "init": str(init), "method": method,
            "rescale": rescale, "sparsity": sparsity, "depth": depth, "seed": seed,
            "epochs": epochs, "test_accuracy": last.test_accuracy,
            "train_accuracy": last.train_accuracy}


def main(argv=None):
    args = parse(__doc__, argv)
    t0 = time.perf_counter()
    if args.quick:
        sparsities, depths, seeds, epochs = [0.9], [30], [args.seed], 3
    else:
        sparsities, depths, epochs = [0.85, 0.9, 0.95, 0.98], [20, 30, 50], 10
        seeds = [args.seed + k for k in range(3)]
    path = output(args, "accuracy_table")
    store = TrialStore(path.with_suffix(".runs.csv"), KEY)  # resume: finished runs are kept
    # one core a run under an executor (--workers 1 is serial: all cores for each run)
    threads = 1 if (args.workers or 0) > 1 or args.scheduler else None
    tasks = [(label, *spec, s, d, seed, epochs, threads) for label, spec in METHODS.items()
             for s in sparsities for d in depths for seed in seeds
             if not store.has(dict(label=label, sparsity=s, depth=d, seed=seed, epochs=epochs))]
    with executor(args) as ex:
        for _, row in run_tasks(_run, tasks, ex):
            store.append([row])
    done = store.frame
    df = done[done.sparsity.isin(sparsities) & done.depth.isin(depths) & done.seed.isin(seeds)
              & (done.epochs == epochs)]
    finish(df.sort_values(["depth", "sparsity", "label", "seed"]), path, t0)


if __name__ == "__main__":
    main()
