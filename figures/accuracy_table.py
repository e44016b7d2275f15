"""Figure 10: test accuracy vs sparsity after pruning at initialization and training (mnist5k), one
panel per (architecture, init) and depth; one colour per method, solid = rescaled (per neuron),
dashed = not, dotted = data-aware first layer, dash-dot = rescaled with layer-wise shuffled masks;
the dense net as a grey band (its mean ± 95 % CI over seeds); the ResNet rows start at 50 %. Also
the table (mean ± 95 % CI) as markdown and CSV."""

from pathlib import Path

import numpy as np

from simulations.accuracy_table import DESIGN, arm_name, cell_table

from ._common import parse, read, save

COLOURS = {"snip": "C0", "grasp": "C1", "synflow": "C2", "magnitude": "C3", "random": "C4"}
STYLES = {("neuron", False): "-", ("none", False): "--", ("data", False): ":",
          ("neuron", True): "-."}
GROUPS = [("ffnn", "ordered", "FFNN, ordered (σ_w = 0.8)"), ("ffnn", "eoc", "FFNN, EOC"),
          ("resnet", "1.0", "ResNet"), ("stable_resnet", "1.0", "Stable ResNet")]


def table(df):
    """Rows: arm; columns: depth and sparsity; cells: mean [95 % CI] of the test accuracy (%)."""
    cells = cell_table(df)
    cells["cell"] = [f"{100 * m:.1f}" if np.isnan(lo) else f"{100 * m:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
                     for m, lo, hi in zip(cells["mean"], cells.ci_low, cells.ci_high)]
    cells["column"] = [f"d{d} dense" if s == 0 else f"d{d} {100 * s:g} %"
                       for d, s in zip(cells.depth, cells.sparsity)]
    wide = cells.pivot_table(index="arm", columns="column", values="cell", aggfunc="first",
                             sort=False)
    return wide.fillna("–")


def _shuffled(v):
    return str(v) == "True"


def main(argv=None):
    args = parse(__doc__, argv)
    df = read(args, "accuracy_table")
    df["init"] = df["init"].astype(str)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wide = table(df)
    wide.to_csv(out / "fig10_accuracy_table.csv")
    (out / "fig10_accuracy_table.md").write_text(wide.to_markdown() + "\n")
    import matplotlib.pyplot as plt

    groups = [g for g in GROUPS if ((df.arch == g[0]) & (df.init == g[1])).any()]
    depths = sorted(df.depth.unique())
    size = (3.2 * len(depths) + 2.2, 2.7 * len(groups) + 0.6)
    fig, axs = plt.subplots(len(groups), len(depths), figsize=size, sharex=True,
                            sharey="row", constrained_layout=True, squeeze=False)
    cells = cell_table(df)
    for k, (row, (arch, init, title)) in enumerate(zip(axs, groups)):
        for ax, depth in zip(row, depths):
            part = cells[(cells.arch == arch) & (cells.init == init) & (cells.depth == depth)]
            dense = part[part.method == "none"]
            if len(dense):
                d = dense.iloc[0]
                lo = d.ci_low if np.isfinite(d.ci_low) else d["mean"]
                hi = d.ci_high if np.isfinite(d.ci_high) else d["mean"]
                ax.axhspan(100 * lo, 100 * hi, color="0.8", zorder=0)
                ax.axhline(100 * d["mean"], color="0.5", lw=0.8, zorder=0)
            for (method, rescale, shuffled), g in part[part.method != "none"].groupby(
                    ["method", "rescale", "shuffle_masks"], sort=False):
                g = g.sort_values("sparsity")
                err = [100 * (g["mean"] - g.ci_low).fillna(0), 100 * (g.ci_high - g["mean"]).fillna(0)]
                name = arm_name(dict(arch=arch, init=init, method=method, rescale=rescale,
                                     shuffle_masks=shuffled))
                ax.errorbar(100 * g.sparsity, 100 * g["mean"], yerr=err,
                            color=COLOURS[method], ls=STYLES[(rescale, _shuffled(shuffled))],
                            marker="o", ms=3, lw=1.2, capsize=1.5, elinewidth=0.6,
                            label=name.split(" ", 2 if arch == "ffnn" else 1)[-1])
            ax.axhline(10, color="gray", ls=":", lw=0.8)
            # the ResNets stay within 60-95 %: their own scale shows the differences
            ax.set_ylim(0 if arch == "ffnn" else 50, 100)
            ax.set_xticks([85, 90, 95, 98])
            ax.set_title(f"{title}, depth {depth}", fontsize="small")
            if ax is row[0]:
                ax.set_ylabel("test accuracy (%)")
            if k == len(groups) - 1:
                ax.set_xlabel("sparsity (%)")
        handles = {}  # every arm of the row, whichever panel has it
        for ax in row:
            for h, label in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(label, h)
        row[-1].legend(handles.values(), handles.keys(), fontsize="x-small", loc="center left",
                       bbox_to_anchor=(1.02, 0.5))
    fig.suptitle("mnist5k, tanh width 100, pruned at initialization, 10 epochs: mean and 95 % CI "
                 "over seeds\n(grey band: dense; dotted line: chance)", fontsize="small")
    save(fig, args, "fig10_accuracy_table")


__all__ = ["DESIGN", "main", "table"]

if __name__ == "__main__":
    main()
