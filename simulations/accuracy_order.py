"""How much a training run moves with float32 summation order, and whether the primary family's
verdicts move with it (issue 24).

The thread count cannot move a run: ``train`` cuts every mini-batch into fixed shards whose
gradients are summed in order, so a history is bit-identical for any ``threads``
(tests/test_sgd.py). The order of the sums inside a layer's products can: ``sparse=False``
trains every pruned layer dense with its mask (BLAS's summation order), the default
``sparse="auto"`` trains the sparsest layers in compressed rows (the kernels' order). The two
differ by float32 rounding at every step, which chaotic training dynamics can amplify.

This reruns the arms of the primary family's first two comparisons (SBP-SR, random + rescaling and
SNIP's shuffled mask, each in both ``rescale_as`` forms; ``simulations/accuracy_primary.py``) at
every sparsity and seed of the record ``docs/data/accuracy_study.csv`` with ``sparse=False``, at
the record's learning rates, and reports per arm the spread of the change in test accuracy, and
the two comparisons under the other summation order. Writes ``accuracy_order.csv``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from meanfield.stats import paired_comparisons
from meanfield.sweeps import TrialStore, run_tasks
from meanfield.training import train

from ._common import executor, finish, output, parse
from .accuracy_primary import DESIGN_P, KEY_P, arm_label, primary
from .accuracy_table import VAL_FRACTION

RECORD = Path(__file__).resolve().parent.parent / "docs" / "data" / "accuracy_study.csv"


def _run(arch, init, method, rescale, shuffle_masks, rescale_as, sparsity, depth, seed, epochs,
         lr, threads):
    df = train("tanh", "mnist5k", width=100, depth=depth, sigma_w=init if arch == "ffnn" else float(init),
               sigma_b=0.3, arch=arch,
               method=method, sparsity=sparsity, rescale=rescale, shuffle_masks=shuffle_masks,
               epochs=epochs, lr=lr, seed=seed, threads=threads, val_fraction=VAL_FRACTION,
               rescale_as="weights" if rescale_as == "none" else rescale_as, sparse=False)
    return {"arch": arch, "init": init, "method": method, "rescale": rescale,
            "shuffle_masks": shuffle_masks, "rescale_as": rescale_as, "sparsity": sparsity,
            "depth": depth, "seed": seed, "epochs": epochs, "lr": lr,
            "test_accuracy": df.test_accuracy.iloc[-1]}


def arms():
    out = {}
    for form in ("multiplier", "weights"):
        for _, a, b in primary(form)[:2]:
            for arm in (a, b):
                out[arm_label(arm)] = arm
    return out


def compare(record, rerun):
    """Per arm: the change in test accuracy (rerun − record); per comparison: both orders."""
    both = record.merge(rerun, on=list(KEY_P), suffixes=("", "_dense"))
    both["change"] = both.test_accuracy_dense - both.test_accuracy
    rows = []
    for name, g in both.groupby("arm"):
        rows.append(dict(arm=name, runs=len(g), moved=int((g.change != 0).sum()),
                         mean_abs=g.change.abs().mean(), max_abs=g.change.abs().max()))
    arms_t = pd.DataFrame(rows)
    comp = []
    for form in ("multiplier", "weights"):
        for title, a, b in primary(form)[:2]:
            for label, col in (("record", "test_accuracy"), ("dense-masked", "test_accuracy_dense")):
                t = paired_comparisons(both, {"arm": arm_label(a)}, {"arm": arm_label(b)},
                                       match=["sparsity", "seed"], value=col).iloc[0]
                comp.append(dict(comparison=title, form=form, order=label, mean=t["mean"],
                                 lo=t.ci_low, hi=t.ci_high, p=t.p))
    return arms_t, pd.DataFrame(comp)


def main(argv=None):
    args = parse(__doc__, argv)
    t0 = time.perf_counter()
    path = output(args, "accuracy_order")
    record = pd.read_csv(RECORD)
    record["init"] = record["init"].astype(str)
    record["arm"] = [arm_label(r) for r in record[list(DESIGN_P)].to_dict("records")]
    record = record[record.arm.isin(arms())]
    threads = 1 if (args.workers or 0) > 1 or args.scheduler else None
    store = TrialStore(path, KEY_P)
    tasks = [(*(r[c] for c in KEY_P), threads) for r in record.to_dict("records")
             if not store.has(r)]
    with executor(args) as ex:
        for _, row in tqdm(run_tasks(_run, tasks, ex), total=len(tasks),
                           disable=not args.progress, unit="run"):
            store.append([row])
    rerun = store.frame
    rerun["init"] = rerun["init"].astype(str)
    finish(rerun, path, t0)
    arms_t, comp = compare(record, rerun.drop(columns=[c for c in rerun if c not in
                                                       (*KEY_P, "test_accuracy")]))
    print(arms_t.assign(mean_abs=100 * arms_t.mean_abs, max_abs=100 * arms_t.max_abs)
           .round(2).to_string(index=False))
    print(comp.assign(mean=100 * comp["mean"], lo=100 * comp.lo, hi=100 * comp.hi)
          .round(3).to_string(index=False))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
