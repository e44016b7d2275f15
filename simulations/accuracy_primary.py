"""The accuracy study's primary family (issue 24): nine comparisons declared before the run, with
ten seeds, seed-level intervals and Holm's correction. Everything else in the accuracy study
(``simulations/accuracy_table.py``) is exploratory.

Declared before running (``PRIMARY``; A − B of test accuracy on mnist5k, the mean over a seed's
cells first, then over seeds):

1. SBP-SR (EOC FFNN, SNIP + per-neuron rescaling) vs random pruning + the same rescaling;
2. SBP-SR vs its layer-wise shuffle (the same counts per layer, positions permuted);
3.–7. rescaled (per neuron) vs not, for SNIP, GraSP, SynFlow, magnitude and random (EOC FFNN);
8. Stable ResNet SBP-SR vs standard ResNet SNIP (the paper's comparison);
9. data-aware first-layer rescaling vs per-neuron (EOC FFNN, SNIP).

Each rescaled arm runs in both forms of ``train``'s ``rescale_as``: the family is tested with
the paper's form, ``"multiplier"`` (ρ a fixed multiplier while W̃ trains), and the same nine
comparisons with ``"weights"`` (ρ folded into the trained weights) are reported beside it to say
for which form a conclusion holds (those nine are a second family, Holm-corrected on its own).

Design: tanh, width 100, σ_b = 0.3, depth 30, sparsities 0.9, 0.95 and 0.98, seeds
``--seed`` … ``--seed + 9``, 10 epochs, batch 128, momentum 0.9, ``val_fraction=0.1``. Learning
rates: each group (architecture, init, form) uses one lr for all its arms. The "weights" groups
(and the unrescaled arms) use the lr that the accuracy study chose on validation accuracy
(docs/training.md: EOC FFNN 0.02, ResNet 0.05, Stable ResNet 0.1); the "multiplier" groups, a
new form whose effective step is ρ² larger on rescaled rows, are tuned here the same way: every
arm of the group at sparsity 0.9, tuning seed 1000 (not a study seed), for each lr of
``MULTIPLIER_GRID`` (the study's grid and two smaller values, as the multiplier's steps are
larger), the best mean validation accuracy chosen. Test accuracy is never used
to choose.

Where a run either trains or stays near chance, a mean hides it: beside each comparison, the
seeds whose accuracy (mean over the seed's cells) exceeds ``TRAINED`` in each arm, with
McNemar's exact test (``meanfield.stats.trained_counts``).

Writes ``accuracy_study.csv`` (one row per run, with provenance: meanfield and numpy versions,
threads) and ``accuracy_primary.csv`` (``comparison, form, A, B, n_seeds, mean, lo, hi, p,
p_holm, trained_a, trained_b, p_exact``), and prints the markdown table of docs/training.md
(:func:`markdown`). Runs are stored as they finish and a rerun resumes; ``--analyse-only``
reads ``accuracy_study.csv`` and writes ``accuracy_primary.csv`` without training, as does
``python -m simulations.accuracy_table --analyse-only --results docs/data`` for the committed
record (docs/data/).
"""

from __future__ import annotations

import sys
import time

import numba
import numpy as np
import pandas as pd
from tqdm import tqdm

from meanfield import __version__
from meanfield.stats import holm, paired_comparisons, trained_counts
from meanfield.sweeps import TrialStore, run_tasks

from ._common import executor, finish, output, parse
from .accuracy_table import DESIGN, LR_GRID, TUNE_SEEDS, _run, choose_lr

DESIGN_P = (*DESIGN, "rescale_as")
KEY_P = (*DESIGN_P, "sparsity", "depth", "seed", "epochs", "lr")
SEEDS, DEPTH, SPARSITIES, EPOCHS = 10, 30, (0.9, 0.95, 0.98), 10
#: the learning rates the accuracy study chose on validation (docs/training.md)
STUDY_LR = {("ffnn", "eoc"): 0.02, ("resnet", "1.0"): 0.05, ("stable_resnet", "1.0"): 0.1}
#: a seed "trains" when its mean test accuracy over the cells exceeds this (chance: 0.1)
TRAINED = 0.5
FORMS = ("multiplier", "weights")
#: the multiplier groups' grid: the study's, and two steps below it (the multiplier moves a
#: rescaled row's effective weights ρ² times as far: ρ² ≈ 10–150 at these sparsities)
MULTIPLIER_GRID = (0.002, 0.005, *LR_GRID)


def _arm(arch="ffnn", method="snip", rescale="none", shuffle=False, form="none"):
    init = "eoc" if arch == "ffnn" else "1.0"
    return dict(arch=arch, init=init, method=method, rescale=rescale, shuffle_masks=shuffle,
                rescale_as=form if rescale != "none" else "none")


def primary(form):
    """The nine declared comparisons (title, arm A, arm B) with rescaled arms in ``form``."""
    sbp_sr = _arm(rescale="neuron", form=form)
    out = [("SBP-SR vs random + rescaling", sbp_sr, _arm(method="random", rescale="neuron",
                                                          form=form)),
           ("SBP-SR vs its layer-wise shuffle", sbp_sr, _arm(rescale="neuron", shuffle=True,
                                                             form=form))]
    for m in ("snip", "grasp", "synflow", "magnitude", "random"):
        out.append((f"rescaled vs not: {m}", _arm(method=m, rescale="neuron", form=form),
                    _arm(method=m)))
    out.append(("Stable ResNet SBP-SR vs ResNet SNIP",
                _arm("stable_resnet", rescale="neuron", form=form), _arm("resnet")))
    out.append(("data-aware vs per-neuron (SNIP)", _arm(rescale="data", form=form), sbp_sr))
    return out


def arms():
    """Every arm the two families need, once."""
    seen = {}
    for form in FORMS:
        for _, a, b in primary(form):
            for arm in (a, b):
                seen[tuple(arm[c] for c in DESIGN_P)] = arm
    return list(seen.values())


def arm_label(arm):
    """'ffnn snip+neuron (shuffled) [multiplier]'."""
    r = "" if arm["rescale"] == "none" else f"+{arm['rescale']}"
    s = " (shuffled)" if str(arm["shuffle_masks"]) == "True" else ""
    f = "" if arm["rescale_as"] == "none" else f" [{arm['rescale_as']}]"
    return f"{arm['arch']} {arm['method']}{r}{s}{f}"


def group(arm):
    """The arm's learning-rate group: (arch, init, form)."""
    return arm["arch"], str(arm["init"]), "multiplier" if arm["rescale_as"] == "multiplier" else ""


def _run_p(arch, init, method, rescale, shuffle_masks, rescale_as, sparsity, depth, seed, epochs,
           lr, threads):
    row = _run(arch, init, method, rescale, shuffle_masks, sparsity, depth, seed, epochs, lr,
               threads, rescale_as="weights" if rescale_as == "none" else rescale_as)
    row.update(rescale_as=rescale_as, meanfield=__version__, numpy=np.__version__,
               numba=numba.__version__, threads=threads or 0)
    return row


def _tasks(arm_list, sparsities, seeds, lr_of, store, threads):
    tasks = []
    for arm in arm_list:
        for s in sparsities:
            for seed in seeds:
                for lr in lr_of(arm):
                    row = dict(arm, sparsity=s, depth=DEPTH, seed=seed, epochs=EPOCHS, lr=lr)
                    if not store.has(row):
                        tasks.append((*(arm[c] for c in DESIGN_P), s, DEPTH, seed, EPOCHS, lr,
                                      threads))
    return sorted(tasks, key=lambda t: (t[9], t[6]))  # seed by seed: a stopped run has whole seeds


def analyse(df):
    """The two families' table: one row per (form, comparison)."""
    df = df.copy()
    df["arm"] = [arm_label(r) for r in df[list(DESIGN_P)].to_dict("records")]
    rows = []
    for form in FORMS:
        part = []
        for title, a, b in primary(form):
            A, B = arm_label(a), arm_label(b)
            t = paired_comparisons(df, {"arm": A}, {"arm": B}, match=["sparsity", "seed"]).iloc[0]
            per_seed = {name: df[df.arm == name].groupby("seed").test_accuracy.mean()
                        for name in (A, B)}
            both = per_seed[A].index.intersection(per_seed[B].index)
            tc = trained_counts(per_seed[A][both], per_seed[B][both], TRAINED)
            part.append(dict(comparison=title, form=form, A=A, B=B, n_seeds=int(t.n),
                             mean=t["mean"], lo=t.ci_low, hi=t.ci_high, p=t.p,
                             trained_a=tc.a, trained_b=tc.b, p_exact=tc.p))
        adjusted = holm([r["p"] for r in part])
        for r, q in zip(part, adjusted):
            r["p_holm"] = q
        rows += part
    cols = ["comparison", "form", "A", "B", "n_seeds", "mean", "lo", "hi", "p", "p_holm",
            "trained_a", "trained_b", "p_exact"]
    return pd.DataFrame(rows)[cols]


def markdown(table):
    """The primary family's table of docs/training.md (points; Holm within each form)."""
    lines = ["| comparison | form | seeds | A − B [95 % CI] (points) | p | p (Holm) | seeds "
             "trained A / B | p (exact) |", "|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        mark = "**" if r.p_holm <= 0.05 else ""
        lines.append(f"| {r.comparison} | {r.form} | {r.n_seeds} | {mark}{100 * r.mean:+.1f}{mark} "
                     f"[{100 * r.lo:+.1f}, {100 * r.hi:+.1f}] | {r.p:.2g} | {r.p_holm:.2g} | "
                     f"{r.trained_a} / {r.trained_b} | {r.p_exact:.2g} |")
    return "\n".join(lines) + "\n"


def _bar(results, tasks, args):
    return tqdm(results, total=len(tasks), disable=not args.progress, unit="run")


def write_primary(folder):
    """Read ``folder/accuracy_study.csv``, write ``folder/accuracy_primary.csv``; the table."""
    df = pd.read_csv(folder / "accuracy_study.csv")
    df["init"] = df["init"].astype(str)
    table = analyse(df)
    table.to_csv(folder / "accuracy_primary.csv", index=False)
    return table


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    analyse_only = "--analyse-only" in argv
    args = parse(__doc__, [a for a in argv if a != "--analyse-only"])
    t0 = time.perf_counter()
    path = output(args, "accuracy_study")
    if not analyse_only:
        seeds = [args.seed + k for k in range(SEEDS)]
        threads = 1 if (args.workers or 0) > 1 or args.scheduler else None
        tune_store = TrialStore(path.with_name("accuracy_study_lr.csv"), KEY_P)
        store = TrialStore(path, KEY_P)
        arm_list = arms()
        with executor(args) as ex:
            tuned = [a for a in arm_list if group(a)[2]]
            tasks = _tasks(tuned, [0.9], TUNE_SEEDS, lambda arm: MULTIPLIER_GRID, tune_store,
                           threads)
            for _, row in _bar(run_tasks(_run_p, tasks, ex), tasks, args):
                tune_store.append([row])
            tuning = tune_store.frame.assign(init=lambda d: d.init.astype(str))
            lr = {(*k, ""): v for k, v in STUDY_LR.items()}
            for r in choose_lr(tuning).query("chosen").itertuples():
                lr[(r.arch, r.init, "multiplier")] = r.lr
            tasks = _tasks(arm_list, SPARSITIES, seeds, lambda arm: [lr[group(arm)]], store,
                           threads)
            for _, row in _bar(run_tasks(_run_p, tasks, ex), tasks, args):
                store.append([row])
        finish(store.frame, path, t0)
    sys.stdout.write(markdown(write_primary(path.parent)))


if __name__ == "__main__":
    main()
