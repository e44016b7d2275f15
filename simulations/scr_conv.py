"""Figure 11: pruning random conv nets at initialization (issue 22; docs/convolutional.md).

Part 1, E[s_cr] of SNIP against depth in the three phases: a CNN, a conv ResNet and a Stable conv
ResNet (tanh, σ_b = 0.2, N = 16 channels, 8 × 8 images, 3 × 3 kernels, batch 128; σ_w = 0.9
(ordered), the EOC, 2.5 (chaotic); "layer" s_cr), with the seconds per trial on one core and the
wide-limit prediction (``predict_critical_sparsity(..., arch=...)``) beside it; verdict: on target
if the gap is at most max(3 SE, 0.004), the rule of docs/critical_sparsity.md §8.

Part 2, which layer empties first in the CIFAR-style layout (3 stages: 8, 16, 32 channels on 8,
4, 2 positions; 16 conv layers; 1 × 1 projection shortcuts, which are weights), on the EOC, for
SNIP, GraSP and SynFlow: per trial the s_cr and the layers empty at it (SynFlow's: at the target
found by bisection).

Writes ``scr_conv.csv`` (part 1's summary), ``scr_conv.trials.csv`` (its trials, resumable) and
``scr_conv_layers.csv`` (part 2, one row per trial).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ._common import executor, finish, output, parse, predicted, summarise

ARCHS = ("cnn", "conv_resnet", "conv_stable_resnet")
SIGMA_B, WIDTH, IMAGE, KERNEL = 0.2, 16, 8, 3
PHASE_SIGMA_W = {"ordered": 0.9, "eoc": "eoc", "chaotic": 2.5}
LAYOUT = dict(width=8, depth=16, image_size=8, stages=3)
LAYOUT_METHODS = ("snip", "grasp", "synflow")


def phase_of(sigma_w):
    """The phase of the study's σ_w (tanh, σ_b = 0.2), by the theory."""
    from meanfield import phase

    return str(phase("tanh", sigma_w, SIGMA_B))


def depth_part(args, ex, depths, trials):
    from meanfield.prediction import predict_critical_sparsity
    from meanfield.pruning import sweep_critical_sparsity

    path = output(args, "scr_conv")
    rows = []
    for arch in ARCHS:
        for name, sw in PHASE_SIGMA_W.items():
            t0 = time.perf_counter()
            df = sweep_critical_sparsity("tanh", WIDTH, depths, sw, SIGMA_B, trials=trials,
                                         arch=arch, image_size=IMAGE, kernel_size=KERNEL,
                                         seed=args.seed, executor=ex, progress=args.progress,
                                         store=path.with_suffix(".trials.csv"))
            seconds = time.perf_counter() - t0
            df["phase"] = name
            s = summarise(df, ["arch", "phase", "sigma_w", "sigma_b", "width", "depth"])
            # core-seconds per trial over the depths of the sweep (a resumed sweep: 0)
            s["seconds_per_trial"] = seconds * (args.workers or 1) / (trials * len(depths))
            preds, seconds = [], []
            for r in s.itertuples():
                t0 = time.perf_counter()
                preds.append(predicted(predict_critical_sparsity, "tanh", WIDTH, int(r.depth),
                                       r.sigma_w, SIGMA_B, arch=arch, image_size=IMAGE,
                                       kernel_size=KERNEL))
                seconds.append(time.perf_counter() - t0)
            s["prediction"] = [v for v, _ in preds]
            s["prediction_in_domain"] = [inside for _, inside in preds]
            s["prediction_seconds"] = seconds
            rows.append(s)
    return pd.concat(rows, ignore_index=True), path


def layout_trial(arch, method, seed, trial, width=LAYOUT["width"]):
    """s_cr and the names of the layers empty at it, for one draw of the CIFAR-style layout."""
    from meanfield.nets.conv import draw_conv_trial
    from meanfield.pruning.conv import conv_critical_sparsity, conv_mask_event, conv_scores
    from meanfield.pruning.critical import bisect_target
    from meanfield.pruning.masks import global_masks
    from meanfield.pruning.monte_carlo import trial_seed
    from meanfield.pruning.scoring import iterate_synflow
    from meanfield.theory import eoc

    sw = float(eoc("tanh", SIGMA_B)[0])
    rng = np.random.default_rng(trial_seed(seed, trial))
    net, X, y = draw_conv_trial("tanh", width, LAYOUT["depth"], sw, SIGMA_B, 128, 10,
                                LAYOUT["image_size"], KERNEL, rng, arch=arch,
                                stages=LAYOUT["stages"])
    names = [layer.name for layer in net.layers]
    t0 = time.perf_counter()
    if method == "synflow":
        s_cr = bisect_target(lambda s: conv_mask_event(
            net, global_masks(iterate_synflow(net, s, 100), s), "layer"))
        masks = global_masks(iterate_synflow(net, s_cr, 100), s_cr)
        empty = [n for n, m in zip(names, masks) if not m.any()]
    else:
        sc = conv_scores(net, X, y, method)
        s_cr = conv_critical_sparsity(net, sc)
        top = [a.max() for a in sc]
        empty = [n for n, t in zip(names, top) if t <= min(top)]
    return dict(arch=arch, method=method, sigma_w=sw, sigma_b=SIGMA_B, trial=trial,
                s_cr=float(s_cr), first_emptied=" ".join(empty),
                seconds=time.perf_counter() - t0, **{**LAYOUT, "width": width})


def layout_part(args, ex, trials, width):
    from meanfield.sweeps import run_tasks

    path = output(args, "scr_conv_layers")
    done = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["arch", "method",
                                                                         "trial"])
    have = set(zip(done.arch, done.method, done.trial))
    todo = [(a, m, i) for a in ARCHS[1:] for m in LAYOUT_METHODS for i in range(trials)
            if (a, m, i) not in have]
    tasks = [(a, m, args.seed, i, width) for a, m, i in todo]
    new = [row for _, row in run_tasks(layout_trial, tasks, ex)]
    out = pd.concat([done, pd.DataFrame(new)], ignore_index=True) if new else done
    out = out[out.trial < trials].sort_values(["arch", "method", "trial"], kind="stable")
    return out.reset_index(drop=True), path


def depth_table(summary):
    """docs/convolutional.md's table of part 1: E[s_cr] ± SE per architecture, phase and depth."""
    lines = ["| architecture | phase (σ_w) | depth | Monte Carlo E[s_cr] ± SE | trials | s / trial "
             "| wide-limit prediction | gap (gap / SE) | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in summary.itertuples():
        gap = r.prediction - r.s_cr_mean
        verdict = "on target" if abs(gap) <= max(3 * r.se, 0.004) else "misses"
        if not r.prediction_in_domain:
            verdict += " (warned: outside the domain)"
        lines.append(f"| {r.arch} | {r.phase} ({r.sigma_w:.4g}) | {r.depth} | "
                     f"{r.s_cr_mean:.4f} ± {r.se:.4f} | {r.trials} | {r.seconds_per_trial:.2f} | "
                     f"{r.prediction:.4f} | {gap:+.4f} ({gap / r.se:+.1f}) | {verdict} |")
    return "\n".join(lines) + "\n"


def layout_table(layers):
    """docs/convolutional.md's table of part 2: E[s_cr], the layers that most often empty first,
    and in how many trials a 1 × 1 shortcut is among the first emptied."""
    lines = ["| architecture | method | E[s_cr] ± SE | trials | first emptied, most often (trials) "
             "| trials with several emptied at once | with a shortcut among them | s / trial |",
             "|---|---|---|---|---|---|---|---|"]
    order = {m: i for i, m in enumerate(LAYOUT_METHODS)}
    layers = layers.sort_values(["arch", "method"], key=lambda c: c.map(order) if c.name ==
                                "method" else c, kind="stable")
    for (arch, method), g in layers.groupby(["arch", "method"], sort=False):
        sets = g.first_emptied.str.split(" ")
        counts = sets.explode().value_counts()
        first = ", ".join(f"{name} ({n})" for name, n in counts.head(4).items())
        several = int((sets.str.len() > 1).sum())
        shortcut = int(sets.map(lambda s: any(n.startswith("shortcut") for n in s)).sum())
        se = g.s_cr.std(ddof=1) / np.sqrt(len(g))
        lines.append(f"| {arch} | {method} | {g.s_cr.mean():.4f} ± {se:.4f} | {len(g)} | {first} "
                     f"| {several} | {shortcut} | {g.seconds.mean():.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse(__doc__, argv)
    t0 = time.perf_counter()
    depths = [4, 8] if args.quick else [4, 8, 16]
    # one pool for both parts: its workers are forked once, before this process runs any
    # threaded kernel (a later fork of a process using OpenMP is unsafe, and GNU OpenMP aborts)
    with executor(args) as ex:
        summary, path = depth_part(args, ex, depths, 6 if args.quick else 200)
        # --quick: 4 channels a stage-1 layer, not 8 (SynFlow's 15 bisection steps of 100
        # rounds dominate the quick run)
        layers, layers_path = layout_part(args, ex, 1 if args.quick else 40,
                                          4 if args.quick else LAYOUT["width"])
    layers.to_csv(layers_path, index=False)
    finish(summary, path, t0)
    print(depth_table(summary))
    print(layout_table(layers))


if __name__ == "__main__":
    main()
