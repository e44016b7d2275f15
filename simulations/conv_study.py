"""The paper's conv ResNet experiment (issue 23; Hayou et al. 2021, Table 2): ResNets and Stable
ResNets pruned at initialization by SBP-SR, SNIP, GraSP, SynFlow and random pruning + rescaling,
trained, and compared on test accuracy — paired by seed, the learning rate chosen on validation.

Declared before running (``PRIMARY``; A − B of test accuracy, a seed's cells (sparsities) averaged
first, then the t-interval and paired t-test over seeds, Holm's correction over the family):
for each architecture (ResNet, Stable ResNet), SBP-SR vs SNIP, vs GraSP, vs SynFlow and vs random
+ rescaling; and the paper's comparison, the Stable ResNet with SBP-SR vs the ResNet with SNIP,
GraSP and SynFlow — eleven comparisons. The per-sparsity table is exploratory.

Arms: SBP-SR = SNIP + the per-output-channel rescaling of ``meanfield.torch.prune_at_init``
(``rescale="neuron"``) on the EOC-initialised network; "random + rescaling" = random scores + the
same rescaling; SNIP, GraSP (T = 200), SynFlow (100 rounds) without. The same seed gives every arm
of a cell the same initial weights, validation split, scoring batch (``--score-batch`` training
images) and batch order.

Learning rate: for each (architecture, method) group, every lr of ``--lr-grid`` is run at sparsity
0.9 on the tuning seed 1000 (not a study seed), and the one with the best validation accuracy is
used for all the group's runs (ties: the smaller). Test accuracy is never used to choose.

On a CPU (the defaults): mnist5k's digits as 1 × 32 × 32 images (3 600 train, 400 validation,
1 000 test), ReLU networks of depth 14 and width 8 (channels 8, 16, 32), no normalisation layer
(the network the theory describes), 4 epochs, batch 32, 4 seeds, sparsities 0.85, 0.9, 0.95.
The paper's scale on a GPU (CIFAR-10's python batches in PATH)::

    python -m simulations.conv_study --device cuda --dataset cifar10 --data PATH \\
        --depths 32 50 104 --width 16 --epochs 160 --seeds 5 --score-batch 1280

(``--dataset folder --data PATH`` reads an ImageFolder tree such as Tiny ImageNet.)

Writes ``conv_study.csv`` (one row per run, with provenance) and ``conv_study_lr.csv`` (the
tuning runs), ``conv_study_primary.csv`` and ``conv_study_cells.csv``; prints the markdown
tables of docs/torch.md. Runs are stored as they finish and a rerun resumes; ``--analyse-only``
reads the CSVs without training.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from meanfield import __version__
from meanfield.stats import holm, paired_comparisons
from meanfield.sweeps import TrialStore, open_executor, run_tasks

ARCHS = ("resnet", "stable_resnet")
METHODS = ("sbp_sr", "snip", "grasp", "synflow", "random_rescaled")
#: method → (meanfield.torch score, rescale)
ARMS = {"sbp_sr": ("snip", "neuron"), "snip": ("snip", False), "grasp": ("grasp", False),
        "synflow": ("synflow", False), "random_rescaled": ("random", "neuron")}
#: the declared family, (arm A, arm B) with an arm (architecture, method): SBP-SR against every
#: other method on the same architecture, and the paper's comparison, the Stable ResNet with
#: SBP-SR against the standard ResNet pruned by SNIP, GraSP and SynFlow
PRIMARY = ([((arch, "sbp_sr"), (arch, other)) for arch in ARCHS for other in METHODS[1:]]
           + [(("stable_resnet", "sbp_sr"), ("resnet", other))
              for other in ("snip", "grasp", "synflow")])
TUNE_SEED = 1000
KEY = ("dataset", "arch", "method", "depth", "width", "sparsity", "seed", "epochs", "lr")
_DATA = {}


def _data(dataset, path):
    from meanfield.torch.data import load_images

    if (dataset, path) not in _DATA:
        _DATA[(dataset, path)] = load_images(dataset, path)
    return _DATA[(dataset, path)]


def run(dataset, path, arch, method, depth, width, sparsity, seed, epochs, lr, batch,
        score_batch, val_fraction, device, threads):
    """One training: prune at init, train, score on validation and test. A dict (a row)."""
    import torch

    import meanfield.torch as mt
    from meanfield.torch.models import resnet
    from meanfield.torch.training import accuracy, fit

    if threads:
        torch.set_num_threads(threads)
    Xtr, ytr, Xte, yte = _data(dataset, path)
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(Xtr.shape[0], generator=gen)
    n_val = int(round(val_fraction * Xtr.shape[0]))
    val, train = perm[:n_val], perm[n_val:]
    model = resnet(depth, classes=int(ytr.max()) + 1, in_channels=Xtr.shape[1], width=width,
                   activation="relu", sigma_b=0.0, stable=arch == "stable_resnet", seed=seed)
    score, rescale = ARMS[method]
    sb = train[:score_batch]
    t0 = time.perf_counter()
    table = mt.prune_at_init(model, Xtr[sb], ytr[sb], score, sparsity, rescale=rescale,
                             seed=seed)
    t_prune = time.perf_counter() - t0
    hist = fit(model.to(device), Xtr[train], ytr[train], X_val=Xtr[val], y_val=ytr[val],
               epochs=epochs, batch=batch, lr=lr, seed=seed, device=device)
    return dict(dataset=dataset, arch=arch, method=method, depth=depth, width=width,
                sparsity=sparsity, seed=seed, epochs=epochs, lr=lr,
                val_accuracy=float(hist.val_accuracy.iloc[-1]),
                test_accuracy=accuracy(model, Xte, yte, device=device),
                train_loss=float(hist.train_loss.iloc[-1]),
                emptied=int(table.emptied.sum()), prune_seconds=t_prune,
                seconds=time.perf_counter() - t0, torch=torch.__version__, meanfield=__version__,
                threads=threads or 0)


def choose_lr(tuning):
    """Per (depth, arch, method): the lr with the best mean validation accuracy (ties: the
    smaller)."""
    g = tuning.groupby(["depth", "arch", "method", "lr"]).val_accuracy.mean().reset_index()
    best = g.sort_values(["val_accuracy", "lr"], ascending=[False, True])
    group = ["depth", "arch", "method"]
    return best.groupby(group).head(1).set_index(group).lr.to_dict()


def _this_design(df, args):
    """The rows of this run's design (a results folder may hold other data sets or sizes)."""
    keep = (df.dataset == args.dataset) & (df.width == args.width) & (df.epochs == args.epochs)
    return df[keep & df.depth.isin(args.depths)]


def analyse(df):
    """The primary family (one row per declared comparison; Holm over the family of each depth,
    a separate experiment) and the exploratory cells. ``df``: the runs of one design."""
    rows = []
    for depth in sorted(df.depth.unique()):
        d = df[df.depth == depth]
        part = []
        for a, b in PRIMARY:
            t = paired_comparisons(d, {"arch": a[0], "method": a[1]},
                                   {"arch": b[0], "method": b[1]},
                                   match=["sparsity", "seed"]).iloc[0]
            part.append(dict(depth=depth, A=" ".join(a), B=" ".join(b), n_seeds=int(t.n),
                             mean=t["mean"], lo=t.ci_low, hi=t.ci_high, p=t.p))
        for r, q in zip(part, holm([r["p"] for r in part])):
            r["p_holm"] = q
        rows += part
    cells = (df.groupby(["depth", "arch", "method", "sparsity"]).test_accuracy
             .agg(["mean", "std", "count"]).reset_index())
    cells["se"] = cells["std"] / np.sqrt(cells["count"])
    return pd.DataFrame(rows), cells


def markdown(primary, cells):
    lines = ["| depth | A | B | seeds | A − B [95 % CI] (points) | p | p (Holm) |",
             "|---|---|---|---|---|---|---|"]
    for r in primary.itertuples():
        mark = "**" if r.p_holm <= 0.05 else ""
        lines.append(f"| {r.depth} | {r.A} | {r.B} | {r.n_seeds} | {mark}"
                     f"{100 * r.mean:+.1f}{mark} [{100 * r.lo:+.1f}, {100 * r.hi:+.1f}] | "
                     f"{r.p:.2g} | {r.p_holm:.2g} |")
    lines += ["", "| depth | architecture | method | " + " | ".join(
        f"{s:.0%}" for s in sorted(cells.sparsity.unique())) + " |",
        "|---|---|---|" + "---|" * cells.sparsity.nunique()]
    for depth in sorted(cells.depth.unique()):
        for arch in ARCHS:
            for method in METHODS:
                part = cells[(cells.depth == depth) & (cells.arch == arch)
                             & (cells.method == method)]
                if len(part):
                    vals = " | ".join(f"{100 * r.mean:.1f} ± {100 * r.se:.1f}" for r in
                                      part.sort_values("sparsity").itertuples())
                    lines.append(f"| {depth} | {arch} | {method} | {vals} |")
    return "\n".join(lines) + "\n"


def lr_table(tuning):
    """Markdown: the tuning runs' validation accuracy per (architecture, method) and lr, the
    chosen lr in bold."""
    chosen = choose_lr(tuning)
    g = tuning.groupby(["depth", "arch", "method", "lr"]).val_accuracy.mean()
    lrs = sorted(tuning.lr.unique())
    lines = ["| depth | architecture | method | " + " | ".join(f"lr {lr:g}" for lr in lrs)
             + " |", "|---|---|---|" + "---|" * len(lrs)]
    for depth in sorted(tuning.depth.unique()):
        for arch in ARCHS:
            for method in METHODS:
                cells = []
                for lr in lrs:
                    v = g.get((depth, arch, method, lr), float("nan"))
                    txt = f"{100 * v:.1f}"
                    cells.append(f"**{txt}**" if chosen.get((depth, arch, method)) == lr else txt)
                lines.append(f"| {depth} | {arch} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def docs_tables(runs, tuning):
    """docs/torch.md's block: the primary family, the per-sparsity cells (test accuracy, % ±
    SE over seeds) and the validation accuracies the learning rates were chosen on."""
    primary, cells = analyse(runs)
    return (markdown(primary, cells) + "\nValidation accuracy (%) of the tuning runs (seed "
            f"{TUNE_SEED}, 90 %), the chosen learning rate in bold:\n\n" + lr_table(tuning))


def _parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist5k", choices=("mnist5k", "cifar10", "folder"))
    p.add_argument("--data", help="folder of the data set (cifar10, folder)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--depths", type=int, nargs="+", default=[14])
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--seed", type=int, default=0, help="first study seed")
    p.add_argument("--sparsities", type=float, nargs="+", default=[0.85, 0.9, 0.95])
    p.add_argument("--lr-grid", type=float, nargs="+", default=[0.01, 0.03, 0.1])
    p.add_argument("--score-batch", type=int, default=128)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--workers", type=int, help="processes on this machine")
    p.add_argument("--results", default="results")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--analyse-only", action="store_true")
    return p


def _tasks(args, methods_lr, sparsities, seeds, store, threads):
    out = []
    for depth in args.depths:
        for (arch, method), lrs in methods_lr(depth).items():
            for s in sparsities:
                for seed in seeds:
                    for lr in lrs:
                        row = dict(dataset=args.dataset, arch=arch, method=method, depth=depth,
                                   width=args.width, sparsity=s, seed=seed, epochs=args.epochs,
                                   lr=lr)
                        if not store.has(row):
                            out.append((args.dataset, args.data, arch, method, depth, args.width,
                                        s, seed, args.epochs, lr, args.batch, args.score_batch,
                                        args.val_fraction, args.device, threads))
    return sorted(out, key=lambda t: t[7])  # seed by seed: a stopped run has whole seeds


def _phase(name, args, ex, store, lrs, sparsities, seeds, threads):
    tasks = _tasks(args, lrs, sparsities, seeds, store, threads)
    bar = tqdm(total=len(tasks), disable=not args.progress, unit="run", desc=name)
    for _, row in run_tasks(run, tasks, ex):
        store.append([row])
        bar.update()
    bar.close()


def main(argv=None):
    args = _parser().parse_args(argv)
    folder = Path(args.results)
    folder.mkdir(parents=True, exist_ok=True)
    path, tune_path = folder / "conv_study.csv", folder / "conv_study_lr.csv"
    t0 = time.perf_counter()
    if not args.analyse_only:
        threads = 1 if (args.workers or 0) > 1 else None
        tune, store = TrialStore(tune_path, KEY), TrialStore(path, KEY)
        groups = [(a, m) for a in ARCHS for m in METHODS]
        seeds = [args.seed + k for k in range(args.seeds)]
        with open_executor(args.workers, None) as ex:
            _phase("tuning", args, ex, tune, lambda d: {g: args.lr_grid for g in groups}, [0.9],
                   [TUNE_SEED], threads)
            chosen = choose_lr(_this_design(tune.frame, args))
            _phase("study", args, ex, store, lambda d: {g: [chosen[(d, *g)]] for g in groups},
                   args.sparsities, seeds, threads)
        print(f"{len(store.frame)} runs in {path} ({time.perf_counter() - t0:.0f} s)",
              file=sys.stderr)
    df, tuning = (_this_design(pd.read_csv(f), args) for f in (path, tune_path))
    primary, cells = analyse(df)
    primary.to_csv(folder / "conv_study_primary.csv", index=False)
    cells.to_csv(folder / "conv_study_cells.csv", index=False)
    sys.stdout.write(docs_tables(df, tuning))

if __name__ == "__main__":
    main()
