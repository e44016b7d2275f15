"""Theory beside figure 10's accuracies: for every run of the accuracy study
(``accuracy_table.csv``, written by ``python -m simulations.accuracy_table``), the pruned,
rescaled network as training starts — the same weights, split, scoring batch and mask as the run,
rebuilt by ``train(..., epochs=0)`` with the run's parameters — and its backward gain per layer,
``meanfield.pruning.effective_chi`` on the scoring batch (docs/theory.md §2: χ < 1 ordered, = 1 on the
EOC, > 1 chaotic).

Writes ``accuracy_chi.csv`` (one row per run: the design, ``chi_geomean``, ``chi_min`` and
``chi_log10_product``, the log10 of the factor by which the squared gradient shrinks or grows from
the last hidden layer to the first), resumable, and ``accuracy_chi_summary.md``: per arm and depth
at 90 % sparsity, the median over seeds, beside the mean test accuracy of the same runs.
"""

from __future__ import annotations

import sys
import time

import pandas as pd

from meanfield.sweeps import TrialStore, run_tasks
from meanfield.training import train

from ._common import executor, finish, output, parse
from .accuracy_table import DESIGN, VAL_FRACTION, arm_name, chi_summary

KEY = (*DESIGN, "sparsity", "depth", "seed")


def _chi(arch, init, method, rescale, shuffle_masks, sparsity, depth, seed):
    sigma_w = init if arch == "ffnn" else float(init)
    df = train("tanh", "mnist5k", width=100, depth=int(depth), sigma_w=sigma_w, sigma_b=0.3,
               arch=arch, method=method, sparsity=float(sparsity), rescale=rescale,
               shuffle_masks=bool(shuffle_masks), epochs=0, seed=int(seed), threads=1,
               val_fraction=VAL_FRACTION)
    return {"arch": arch, "init": init, "method": method, "rescale": rescale,
            "shuffle_masks": bool(shuffle_masks), "sparsity": float(sparsity),
            "depth": int(depth), "seed": int(seed), **chi_summary(df.attrs["effective_chi"])}


def summary_table(chi, runs, sparsity=0.9):
    """Markdown: per arm and depth at ``sparsity`` (dense arms at 0), the median over seeds of
    the gains and the mean test accuracy of the same runs."""
    key = [*DESIGN, "depth"]
    acc = runs.groupby([*key, "sparsity"]).test_accuracy.mean().rename("test_accuracy")
    med = chi.groupby([*key, "sparsity"])[["chi_geomean", "chi_min", "chi_log10_product"]].median()
    both = med.join(acc).reset_index()
    both = both[(both.sparsity == sparsity) | (both.method == "none")]
    lines = ["| arm | depth | χ geometric mean | χ min | log10 ∏χ | test accuracy |",
             "|---|---|---|---|---|---|"]
    order = ["arch", "init", "method", "rescale", "shuffle_masks", "depth"]
    for r in both.sort_values(order).itertuples():
        name = arm_name(dict(arch=r.arch, init=r.init, method=r.method, rescale=r.rescale,
                             shuffle_masks=r.shuffle_masks))
        lines.append(f"| {name} | {r.depth} | {r.chi_geomean:.3f} | {r.chi_min:.3f} | "
                     f"{r.chi_log10_product:+.1f} | {100 * r.test_accuracy:.1f} % |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse(__doc__, argv)
    t0 = time.perf_counter()
    source = output(args, "accuracy_table")
    if not source.exists():
        sys.exit(f"{source} not found: run `python -m simulations.accuracy_table` first")
    runs = pd.read_csv(source)
    todo = runs[list(KEY)].drop_duplicates()
    path = output(args, "accuracy_chi")
    store = TrialStore(path.with_suffix(".runs.csv"), KEY)
    tasks = [tuple(r) for r in todo.itertuples(index=False)
             if not store.has(dict(zip(KEY, r)))]
    with executor(args) as ex:
        for _, row in run_tasks(_chi, tasks, ex):
            store.append([row])
    chi = store.frame
    finish(chi, path, t0)
    path.with_name("accuracy_chi_summary.md").write_text(summary_table(chi, runs))


if __name__ == "__main__":
    main()
