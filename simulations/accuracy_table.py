"""Figure 10: test accuracy on mnist5k after pruning at initialization and training — a factorial,
paired experiment (issue 11): every method with and without the rescaling, on an ordered and an EOC
FFNN, standard and Stable ResNets, the layer-wise shuffle ablation, the data-aware first layer and
the dense nets, with paired differences (same seeds) and their 95 % t-intervals over seeds.

Design (full run; ``--quick`` is a few minutes: depth 20, 90 %, one seed, 3 epochs, a subset of arms):

- FFNN, tanh, width 100, σ_b = 0.3, init ∈ {ordered σ_w = 0.8, EOC}: method ∈ {snip, grasp, synflow,
  magnitude, random} × rescale ∈ {none, neuron}; snip and synflow also rescaled with
  ``shuffle_masks=True``; snip and random also with ``rescale="data"`` (EOC only); dense
  (``method="none"``).
- ResNet (``arch="resnet"``) and Stable ResNet, σ_w = 1, σ_b = 0.3: {snip, random} × rescale ∈
  {none, neuron, data}; dense.
- Depths 20, 30, 50; sparsities 0.85, 0.9, 0.95, 0.98; seeds ``--seed`` … ``--seed + 2``; 10 epochs,
  batch 128, momentum 0.9; ``val_fraction=0.1`` (400 of the 4 000 training digits held out,
  stratified; the 1 000 test digits untouched).
- One seed fixes the initial weights, the validation split, the scoring batch and the mini-batch
  order of every arm (``meanfield.train``'s streams): arms of one seed are paired.
- Learning rate: for each (architecture, init) group, every arm of the group is trained at depth
  30, sparsity 0.9 (dense: no sparsity) with the tuning seed 1000 (not a study seed) for each lr of
  ``LR_GRID``; the lr with the highest mean validation accuracy over the group's runs is used
  for the whole group. Test accuracy is never looked at to choose.

Writes ``accuracy_table.csv`` (one row per run), ``accuracy_table_lr.csv`` (the tuning runs and the
choice), ``accuracy_table_cells.csv`` (mean and 95 % CI per cell), ``accuracy_table_paired.csv``
(paired differences per cell, per depth and pooled, with seeds as the unit: meanfield.stats)
and ``accuracy_table_summary.md``. Runs are
stored as they finish and a rerun resumes; ``--analyse-only`` writes the tables from the runs stored
so far and trains nothing (cells missing a seed are left out).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from meanfield.stats import mean_ci, paired_comparisons
from meanfield.sweeps import TrialStore, run_tasks
from meanfield.training import train

from ._common import executor, finish, output, parse

DESIGN = ("arch", "init", "method", "rescale", "shuffle_masks")
KEY = (*DESIGN, "sparsity", "depth", "seed", "epochs", "lr")
LR_GRID = (0.01, 0.02, 0.05, 0.1)
TUNE_SEEDS = (1000,)
TUNE_DEPTH, TUNE_SPARSITY = 30, 0.9
VAL_FRACTION = 0.1
FFNN_METHODS = ("snip", "grasp", "synflow", "magnitude", "random")
RESNET_INIT = 1.0  # σ_w of both ResNets


def arms(quick=False):
    """The study's arms: dicts of the DESIGN columns (dense arms have method "none")."""
    out = []
    for init in ("ordered", "eoc"):
        if quick and init == "ordered":
            continue
        out.append(dict(arch="ffnn", init=init, method="none", rescale="none", shuffle_masks=False))
        methods = ("snip", "synflow", "magnitude", "random") if quick else FFNN_METHODS
        for method in methods:
            for rescale in ("none", "neuron"):
                out.append(dict(arch="ffnn", init=init, method=method, rescale=rescale,
                                shuffle_masks=False))
        for method in ("snip",) if quick else ("snip", "synflow"):
            out.append(dict(arch="ffnn", init=init, method=method, rescale="neuron",
                            shuffle_masks=True))
        if init == "eoc":
            for method in ("snip",) if quick else ("snip", "random"):
                out.append(dict(arch="ffnn", init=init, method=method, rescale="data",
                                shuffle_masks=False))
    for arch in ("resnet", "stable_resnet"):
        out.append(dict(arch=arch, init=str(RESNET_INIT), method="none", rescale="none",
                        shuffle_masks=False))
        for method in ("snip",) if quick else ("snip", "random"):
            for rescale in ("none", "neuron") if quick else ("none", "neuron", "data"):
                out.append(dict(arch=arch, init=str(RESNET_INIT), method=method, rescale=rescale,
                                shuffle_masks=False))
    return out


def arm_name(arm):
    """A short label: 'ffnn eoc snip+neuron (shuffled)'."""
    r = "" if arm["rescale"] == "none" else f"+{arm['rescale']}"
    s = " (shuffled)" if str(arm["shuffle_masks"]) == "True" else ""
    init = "" if arm["arch"] != "ffnn" else f" {arm['init']}"
    method = "dense" if arm["method"] == "none" else arm["method"]
    return f"{arm['arch']}{init} {method}{r}{s}"


def _run(arch, init, method, rescale, shuffle_masks, sparsity, depth, seed, epochs, lr, threads,
         rescale_as="weights"):
    sigma_w = init if arch == "ffnn" else float(init)
    df, _, masks = train("tanh", "mnist5k", width=100, depth=depth, sigma_w=sigma_w, sigma_b=0.3,
                         arch=arch, method=method, sparsity=sparsity, rescale=rescale,
                         shuffle_masks=shuffle_masks, epochs=epochs, lr=lr, seed=seed,
                         threads=threads, val_fraction=VAL_FRACTION, return_network=True,
                         rescale_as=rescale_as)
    last = df.iloc[-1]
    row = {"arch": arch, "init": init, "method": method, "rescale": rescale,
           "shuffle_masks": shuffle_masks, "sparsity": sparsity, "depth": depth, "seed": seed,
           "epochs": epochs, "lr": lr, "val_accuracy": last.val_accuracy,
           "test_accuracy": last.test_accuracy, "train_accuracy": last.train_accuracy,
           "train_loss": last.train_loss, "seconds": float(df.seconds.sum())}
    # why an arm trains or not: what the mask kept (docs/theory.md §4)
    if masks is None:
        row.update(kept_first=1.0, kept_hidden_min=1.0, kept_hidden_median=1.0, kept_readout=1.0,
                   layers_emptied=0)
    else:
        kept = np.array([m.mean() for m in masks])
        row.update(kept_first=kept[0], kept_hidden_min=kept[1:-1].min(),
                   kept_hidden_median=float(np.median(kept[1:-1])), kept_readout=kept[-1],
                   layers_emptied=int((kept == 0).sum()))
    row.update(chi_summary(df.attrs["effective_chi"]))
    return row


def chi_summary(chi):
    """The pruned net's backward gains as training starts (``effective_chi``): their geometric
    mean over the hidden layers (1 on the EOC), the smallest, and log10 of their product, the
    factor by which the squared gradient shrinks (< 0) or grows from the last hidden layer to the
    first (docs/theory.md §2)."""
    with np.errstate(divide="ignore"):
        logs = np.log(np.asarray(chi, dtype=np.float64))
    return dict(chi_geomean=float(np.exp(logs.mean())), chi_min=float(np.min(chi)),
                chi_log10_product=float(logs.sum() / np.log(10.0)))


def _tasks(arm_list, sparsities, depths, seeds, epochs, lr_of, store, threads):
    tasks = []
    for arm in arm_list:
        for d in depths:
            for s in ([0.0] if arm["method"] == "none" else sparsities):
                for seed in seeds:
                    for lr in lr_of(arm):
                        row = dict(arm, sparsity=s, depth=d, seed=seed, epochs=epochs, lr=lr)
                        if not store.has(row):
                            tasks.append((*(arm[c] for c in DESIGN), s, d, seed, epochs, lr, threads))
    # depth 30 first, then 20, then 50: a run stopped early has whole depths, every arm and seed
    rank = {30: 0, 20: 1}
    return sorted(tasks, key=lambda t: (rank.get(t[6], 2), t[6], t[5], t[7]))


def group_of(arm):
    """The (architecture, init) group whose learning rate an arm uses."""
    return (arm["arch"], str(arm["init"]))


def choose_lr(tuning):
    """Per (arch, init) group: the lr of the grid with the highest mean validation accuracy over
    the group's tuning runs (ties: the smaller lr). A table ``arch, init, lr, val_accuracy,
    runs, chosen``."""
    g = (tuning.groupby(["arch", "init", "lr"]).val_accuracy.agg(["mean", "count"])
         .reset_index().rename(columns={"mean": "val_accuracy", "count": "runs"}))
    g["chosen"] = False
    for _, part in g.groupby(["arch", "init"]):
        best = part.sort_values(["val_accuracy", "lr"], ascending=[False, True]).index[0]
        g.loc[best, "chosen"] = True
    return g


def _with_dense_per_sparsity(df, sparsities):
    """The runs with each dense run repeated at every sparsity (to pair pruned arms with it)."""
    import pandas as pd

    dense = df[df.method == "none"]
    pruned = df[df.method != "none"]
    parts = [pruned] + [dense.assign(sparsity=s) for s in sparsities]
    return pd.concat(parts, ignore_index=True)


def comparisons(df):
    """The paired comparisons of the study: (title, arm A, arm B), A − B."""
    present = {arm_name(a) for a in df[list(DESIGN)].drop_duplicates().to_dict("records")}
    eoc = dict(arch="ffnn", init="eoc", shuffle_masks=False)
    sbp_sr = dict(eoc, method="snip", rescale="neuron")
    out = []
    for a in df[list(DESIGN)].drop_duplicates().to_dict("records"):
        if a["arch"] == "ffnn" and a != sbp_sr:
            out.append(("SBP-SR vs every other FFNN arm", sbp_sr, a))
    for init in ("eoc", "ordered"):
        ff = dict(arch="ffnn", init=init, shuffle_masks=False)
        for method in FFNN_METHODS:
            out.append(("rescaling (neuron) vs none", dict(ff, method=method, rescale="neuron"),
                        dict(ff, method=method, rescale="none")))
        for method in ("snip", "synflow"):
            out.append(("own mask vs layer-wise shuffle (both rescaled)",
                        dict(ff, method=method, rescale="neuron"),
                        dict(ff, method=method, rescale="neuron", shuffle_masks=True)))
        out.append(("SNIP vs random, both rescaled", dict(ff, method="snip", rescale="neuron"),
                    dict(ff, method="random", rescale="neuron")))
    out.append(("EOC vs ordered", dict(eoc, method="none", rescale="none"),
                dict(eoc, init="ordered", method="none", rescale="none")))
    for method in FFNN_METHODS:
        for rescale in ("none", "neuron"):
            out.append(("EOC vs ordered", dict(eoc, method=method, rescale=rescale),
                        dict(eoc, init="ordered", method=method, rescale=rescale)))
    for arch in ("ffnn", "resnet", "stable_resnet"):
        base = eoc if arch == "ffnn" else dict(arch=arch, init=str(RESNET_INIT), shuffle_masks=False)
        for method in ("snip", "random"):
            out.append(("data-aware first layer vs per-neuron", dict(base, method=method, rescale="data"),
                        dict(base, method=method, rescale="neuron")))
    st = dict(arch="stable_resnet", init=str(RESNET_INIT), shuffle_masks=False)
    rn = dict(st, arch="resnet")
    out.append(("Stable ResNet SBP-SR vs standard ResNet SNIP (the paper's comparison)",
                dict(st, method="snip", rescale="neuron"), dict(rn, method="snip", rescale="none")))
    for method in ("snip", "random"):
        for rescale in ("none", "neuron"):
            out.append(("Stable ResNet vs standard ResNet", dict(st, method=method, rescale=rescale),
                        dict(rn, method=method, rescale=rescale)))
        out.append(("rescaling (neuron) vs none", dict(st, method=method, rescale="neuron"),
                    dict(st, method=method, rescale="none")))
        out.append(("rescaling (neuron) vs none", dict(rn, method=method, rescale="neuron"),
                    dict(rn, method=method, rescale="none")))
    out.append(("SNIP vs random, both rescaled", dict(st, method="snip", rescale="neuron"),
                dict(st, method="random", rescale="neuron")))
    out.append(("SNIP vs random, neither rescaled", dict(rn, method="snip", rescale="none"),
                dict(rn, method="random", rescale="none")))
    out.append(("Stable ResNet vs standard ResNet", dict(st, method="none", rescale="none"),
                dict(rn, method="none", rescale="none")))
    for arch in (st, rn):
        out.append(("pruned vs dense", dict(arch, method="snip", rescale="none"),
                    dict(arch, method="none", rescale="none")))
        out.append(("pruned vs dense", dict(arch, method="snip", rescale="neuron"),
                    dict(arch, method="none", rescale="none")))
    out.append(("Stable ResNet SBP-SR vs SBP-SR (FFNN)", dict(st, method="snip", rescale="neuron"),
                sbp_sr))
    full = []
    for title, a, b in out:
        a = {**dict(shuffle_masks=False), **a}
        b = {**dict(shuffle_masks=False), **b}
        if arm_name(a) in present and arm_name(b) in present:
            full.append((title, a, b))
    return full


def paired_table(df, sparsities):
    """Paired differences of test accuracy (A − B, same seed, same depth and sparsity) for every
    comparison: per cell, per depth and pooled over the cells."""
    import pandas as pd

    # a pruned arm against a dense one: the dense run of a seed pairs with each sparsity's run;
    # two dense arms: as they are. Over several cells the pairs of a seed are averaged first and
    # the interval is over seeds (meanfield.stats: the cells of one seed are not independent)
    spread = _with_dense_per_sparsity(df, sparsities)
    spread["arm"] = [arm_name(r) for r in spread[list(DESIGN)].to_dict("records")]
    plain = df.copy()
    plain["arm"] = [arm_name(r) for r in plain[list(DESIGN)].to_dict("records")]
    match = ["depth", "sparsity", "seed"]
    parts = []
    for title, a, b in comparisons(df):
        A, B = arm_name(a), arm_name(b)
        data = plain if (a["method"] == "none") == (b["method"] == "none") else spread
        for level, by in (("cell", ["depth", "sparsity"]), ("depth", ["depth"]), ("all", [])):
            t = paired_comparisons(data, {"arm": A}, {"arm": B}, match=match, by=by)
            t.insert(0, "level", level)
            t.insert(0, "b", B)
            t.insert(0, "a", A)
            t.insert(0, "comparison", title)
            parts.append(t)
    return pd.concat(parts, ignore_index=True)


def cell_table(df):
    """Mean test accuracy with its 95 % t-interval over seeds, per arm and cell."""
    import pandas as pd

    rows = []
    for key, g in df.groupby([*DESIGN, "depth", "sparsity"], sort=False):
        iv = mean_ci(g.test_accuracy)
        rows.append({**dict(zip([*DESIGN, "depth", "sparsity"], key)),
                     "arm": arm_name(dict(zip(DESIGN, key))),
                     "lr": g.lr.iloc[0], "seeds": iv.n, "mean": iv.mean, "ci_low": iv.low,
                     "ci_high": iv.high, "sd": iv.sd, "val_mean": g.val_accuracy.mean()})
    return pd.DataFrame(rows)


def _fmt(r):
    """A difference in points with its interval, bold when the interval excludes 0."""
    if r is None or np.isnan(r["mean"]):
        return "–"
    ci = "" if np.isnan(r["ci_low"]) else f" [{100 * r['ci_low']:+.1f}, {100 * r['ci_high']:+.1f}]"
    mark = "**" if r["clear"] else ""
    return f"{mark}{100 * r['mean']:+.1f}{mark}{ci}"


def _paired_cells(g):
    """One comparison's row after its names: pooled (n seeds), per depth, cells +/−/unclear."""
    pooled = g[g.level == "all"]
    pooled = pooled.iloc[0] if len(pooled) else None
    per_depth = {int(r["depth"]): r for _, r in g[g.level == "depth"].iterrows()}
    cells = g[g.level == "cell"]
    pos = int((cells.clear & (cells["mean"] > 0)).sum())
    neg = int((cells.clear & (cells["mean"] < 0)).sum())
    n = "" if pooled is None else f" ({int(pooled['n'])})"
    return (f"{_fmt(pooled)}{n} | " + " | ".join(_fmt(per_depth.get(d)) for d in (20, 30, 50))
            + f" | {pos}/{neg}/{len(cells) - pos - neg} |")


#: the comparisons docs/training.md shows (A, B), in its order
DOCS_PAIRS = [
    ("ffnn eoc snip+neuron", "ffnn eoc random+neuron"),
    ("ffnn eoc snip+neuron", "ffnn eoc snip+neuron (shuffled)"),
    ("ffnn eoc synflow+neuron", "ffnn eoc synflow+neuron (shuffled)"),
    ("ffnn eoc snip+neuron", "ffnn eoc synflow+neuron"),
    ("ffnn eoc snip+neuron", "ffnn eoc dense"),
    *((f"ffnn eoc {m}+neuron", f"ffnn eoc {m}") for m in FFNN_METHODS),
    ("resnet snip+neuron", "resnet snip"), ("resnet random+neuron", "resnet random"),
    ("stable_resnet snip+neuron", "stable_resnet snip"),
    ("stable_resnet random+neuron", "stable_resnet random"),
    ("ffnn eoc dense", "ffnn ordered dense"),
    ("ffnn eoc snip+neuron", "ffnn ordered snip+neuron"),
    ("ffnn eoc random+neuron", "ffnn ordered random+neuron"),
    ("ffnn eoc snip+data", "ffnn eoc snip+neuron"), ("ffnn eoc random+data", "ffnn eoc random+neuron"),
    ("resnet snip+data", "resnet snip+neuron"), ("stable_resnet snip+data", "stable_resnet snip+neuron"),
    ("stable_resnet snip+neuron", "resnet snip"), ("stable_resnet snip", "resnet snip"),
    ("stable_resnet snip+neuron", "resnet snip+neuron"), ("stable_resnet random", "resnet random"),
    ("stable_resnet dense", "resnet dense"),
    ("stable_resnet snip+neuron", "stable_resnet random+neuron"), ("resnet snip", "resnet random"),
    ("stable_resnet snip+neuron", "stable_resnet dense"), ("resnet snip", "resnet dense"),
]


def docs_paired(paired):
    """The paired-differences table of docs/training.md (``DOCS_PAIRS``, seed-level)."""
    lines = ["| A | B | all cells (n seeds) | depth 20 | depth 30 | depth 50 | cells +/−/unclear |",
             "|---|---|---|---|---|---|---|"]
    for a, b in DOCS_PAIRS:
        g = paired[(paired.a == a) & (paired.b == b)]
        g = g[g.comparison == g.comparison.iloc[0]] if len(g) else g
        lines.append(f"| {a} | {b} | " + _paired_cells(g))
    return "\n".join(lines) + "\n"


def docs_cells(df, depth):
    """docs/training.md's per-cell table at ``depth`` (markdown): a sentence on the ordered-FFNN
    arms (at chance or not), then every other arm's mean ± half-width of the 95 % t-interval
    over seeds, in %, per sparsity and for the dense nets."""
    import pandas as pd

    cells = cell_table(df[df.depth == depth])
    cells["txt"] = [f"{100 * m:.1f} ± {100 * (h - m):.1f}" if np.isfinite(h) else f"{100 * m:.1f}"
                    for m, h in zip(cells["mean"], cells.ci_high)]
    ordered = cells[(cells.arch == "ffnn") & (cells.init == "ordered")]
    rest = cells[~cells.index.isin(ordered.index)]
    cols = {s: ("dense" if s == 0 else f"{100 * s:g} %") for s in sorted(rest.sparsity.unique())}
    names = set(rest.arm)
    order = [n for n in (arm_name(a) for a in arms()) if n in names]
    wide = rest.pivot_table(index="arm", columns="sparsity", values="txt", aggfunc="first")
    wide = wide.reindex(order)[sorted(cols, key=lambda s: (s == 0, s))].fillna("")
    wide.columns = [cols[s] for s in wide.columns]
    lines = []
    if len(ordered):
        count = ordered.arm.nunique()
        lo, hi = 100 * ordered["mean"].min(), 100 * ordered["mean"].max()
        lines.append(f"The {count} ordered-FFNN arms (σ_w = 0.8, the dense net included) have cell "
                     f"means {lo:.1f}–{hi:.1f} (chance: 10).")
        lines.append("")
    lines.append(pd.DataFrame(wide).rename_axis("arm").reset_index().to_markdown(index=False))
    return "\n".join(lines) + "\n"


def docs_cell_tables(df):
    """Every depth's table of :func:`docs_cells`, each under its heading."""
    return "\n".join(f"#### Depth {d}\n\n" + docs_cells(df, d) for d in sorted(df.depth.unique()))


def docs_kept(df):
    """docs/training.md's table of what the FFNN masks kept at 90 % and 98 %: the mean over the
    depths and seeds of the ``kept_*`` columns (masks before rescaling; the rescaled arms keep
    the same), one row per init and method."""
    part = df[(df.arch == "ffnn") & (df.method != "none") & (df.rescale == "none")
              & ~df.shuffle_masks.astype(str).eq("True") & df.sparsity.isin([0.9, 0.98])]
    g = part.groupby(["init", "method", "sparsity"])[
        ["kept_first", "kept_hidden_median", "kept_hidden_min", "kept_readout",
         "layers_emptied"]].mean().reset_index()
    lines = ["| init | method | sparsity | first layer | median hidden | smallest hidden | readout "
             "| layers emptied (mean) |", "|---|---|---|---|---|---|---|---|"]
    for r in g.itertuples():
        lines.append(f"| {r.init} | {r.method} | {100 * r.sparsity:g} % | {r.kept_first:.4f} | "
                     f"{r.kept_hidden_median:.3f} | {r.kept_hidden_min:.4f} | {r.kept_readout:.3f} "
                     f"| {r.layers_emptied:.1f} |")
    return "\n".join(lines) + "\n"


def summary(paired, lr_table, seconds=None):
    """Markdown: the learning rates chosen and, per comparison, the pooled and per-depth paired
    differences (percentage points, 95 % CI) and how many cells are clearly positive/negative."""
    lines = ["# Accuracy study: paired comparisons (generated)", ""]
    if seconds is not None:
        lines += [f"Wall time of this run: {seconds / 60:.1f} min.", ""]
    lines += ["Learning rates (mean validation accuracy of the tuning runs):", "",
              "| arch | init | lr | val accuracy | runs | chosen |", "|---|---|---|---|---|---|"]
    for r in lr_table.itertuples():
        lines.append(f"| {r.arch} | {r.init} | {r.lr:g} | {100 * r.val_accuracy:.1f} | {r.runs} | "
                     f"{'**yes**' if r.chosen else ''} |")
    lines += ["", "Differences A − B of test accuracy in points: over several cells, the mean over "
              "seeds of each seed's mean difference, with the 95 % t-interval over seeds (n seeds); "
              "in a cell, the paired t-interval. Uncorrected for multiplicity: exploratory (the "
              "primary family, with Holm's correction, is in its own table). **bold**: the interval "
              "excludes 0; cells +/−: cells (depth, sparsity) whose own interval is above/below 0.",
              "",
              "| comparison | A | B | pooled (n seeds) | depth 20 | depth 30 | depth 50 "
              "| cells +/−/unclear |",
              "|---|---|---|---|---|---|---|---|"]

    for (title, a, b), g in paired.groupby(["comparison", "a", "b"], sort=False):
        lines.append(f"| {title} | {a} | {b} | " + _paired_cells(g))
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    # --analyse-only: write the tables from the runs stored so far, training nothing (a study
    # stopped early: cells missing a seed are left out)
    analyse_only = "--analyse-only" in argv
    argv = [a for a in argv if a != "--analyse-only"]
    args = parse(__doc__, argv)
    t0 = time.perf_counter()
    if analyse_only:
        # the primary family's record (simulations/accuracy_primary.py) where the folder holds it;
        # imported here: that module builds on this one
        from .accuracy_primary import markdown, write_primary

        folder = output(args, "accuracy_table").parent
        if (folder / "accuracy_study.csv").exists():
            sys.stdout.write(markdown(write_primary(folder)))
        if not (folder / "accuracy_table.runs.csv").exists():
            return
    if args.quick:
        sparsities, depths, seeds, epochs = [0.9], [20], [args.seed], 3
        grid, tune_seeds, tune_depth = (0.01, 0.05), (TUNE_SEEDS[0],), 20
    else:
        sparsities, depths, epochs = [0.85, 0.9, 0.95, 0.98], [20, 30, 50], 10
        seeds = [args.seed + k for k in range(3)]
        grid, tune_seeds, tune_depth = LR_GRID, TUNE_SEEDS, TUNE_DEPTH
    arm_list = arms(args.quick)
    path = output(args, "accuracy_table")
    threads = 1 if (args.workers or 0) > 1 or args.scheduler else None
    tune_store = TrialStore(path.with_name("accuracy_table_lr.runs.csv"), KEY)
    study_store = TrialStore(path.with_suffix(".runs.csv"), KEY)
    with executor(args) as ex:
        # 1. the learning rate of each (arch, init) group, on validation accuracy only
        tasks = _tasks(arm_list, [TUNE_SPARSITY], [tune_depth], tune_seeds, epochs,
                       lambda arm: grid, tune_store, threads)
        for _, row in run_tasks(_run, [] if analyse_only else tasks, ex):
            tune_store.append([row])
        tuning = tune_store.frame
        tuning = tuning[tuning.lr.isin(grid) & tuning.seed.isin(tune_seeds) & (tuning.epochs == epochs)
                        & (tuning.depth == tune_depth)]
        tuning["init"] = tuning["init"].astype(str)
        lr_table = choose_lr(tuning)
        chosen = {(r.arch, r.init): r.lr for r in lr_table[lr_table.chosen].itertuples()}
        lr_table.to_csv(path.with_name("accuracy_table_lr.csv"), index=False)
        # 2. the study, every arm at its group's lr
        tasks = _tasks(arm_list, sparsities, depths, seeds, epochs,
                       lambda arm: [chosen[group_of(arm)]], study_store, threads)
        for _, row in run_tasks(_run, [] if analyse_only else tasks, ex):
            study_store.append([row])
    done = study_store.frame
    done["init"] = done["init"].astype(str)
    names = {arm_name(a) for a in arm_list}
    done = done[[arm_name(r) in names for r in done[list(DESIGN)].to_dict("records")]]
    at_lr = np.array([chosen[group_of(r)] == lr
                      for r, lr in zip(done[list(DESIGN)].to_dict("records"), done.lr)], bool)
    df = done[(done.sparsity.isin(sparsities) | (done.method == "none")) & done.depth.isin(depths)
              & done.seed.isin(seeds) & (done.epochs == epochs) & at_lr]
    complete = df.groupby([*DESIGN, "depth", "sparsity"]).seed.transform("nunique") == len(seeds)
    df = df[complete].sort_values(["depth", "sparsity", *DESIGN, "seed"])
    cell_table(df).to_csv(path.with_name("accuracy_table_cells.csv"), index=False)
    paired = paired_table(df, sparsities)
    paired.to_csv(path.with_name("accuracy_table_paired.csv"), index=False)
    path.with_name("accuracy_table_summary.md").write_text(
        summary(paired, lr_table, None if analyse_only else time.perf_counter() - t0))
    finish(df, path, t0)


if __name__ == "__main__":
    main()
