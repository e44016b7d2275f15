"""Figure 11: pruning random conv nets at initialization. Top: E[s_cr] of SNIP against depth in
the three phases for a CNN, a conv ResNet and a Stable conv ResNet, with the wide-limit
prediction (dashed). Bottom: in the CIFAR-style layout (3 stages, 1 × 1 projection shortcuts),
which layer empties first under SNIP, GraSP and SynFlow."""

import matplotlib.pyplot as plt

from meanfield.plotting import plot_scr

from ._common import parse, read, save

TITLES = {"cnn": "CNN", "conv_resnet": "conv ResNet", "conv_stable_resnet": "Stable conv ResNet"}


def main(argv=None):
    args = parse(__doc__, argv)
    df = read(args, "scr_conv")
    layers = read(args, "scr_conv_layers")
    fig = plt.figure(figsize=(13.0, 8.0), constrained_layout=True)
    grid = fig.add_gridspec(2, 3)
    for i, (arch, title) in enumerate(TITLES.items()):
        ax = fig.add_subplot(grid[0, i])
        plot_scr(df[df.arch == arch], "depth", "phase", ax=ax)
        depths = sorted(df.depth.unique())
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.minorticks_off()
        ax.set_ylim(0.55, 1.01)
        ax.set_title(f"{title} (SNIP, tanh, N = {int(df.width.iloc[0])}, 8×8, k = 3)", fontsize=9)
        if i:
            ax.get_legend().remove()
        else:
            ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[1, :])
    counts = (layers.assign(first=layers.first_emptied.str.split(" ").str[0])
              .groupby(["arch", "method", "first"]).size().unstack(fill_value=0))
    counts = counts.div(counts.sum(axis=1), axis=0)
    names = sorted(counts.columns, key=lambda n: (n == "readout", n.startswith("shortcut"),
                                                  int("".join(filter(str.isdigit, n)) or 0)))
    counts = counts[names]
    counts.index = [f"{a.replace('_', ' ')}\n{m}" for a, m in counts.index]
    counts.plot.bar(stacked=True, ax=ax, width=0.7, colormap="tab20")
    ax.set_ylabel("share of trials")
    ax.set_xlabel("")
    ax.set_title("CIFAR-style layout (3 stages, 8/16/32 channels, 16 conv layers, EOC): the layer "
                 "that empties first (of several at once, the first listed)")
    ax.legend(ncol=1, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.tick_params(axis="x", rotation=0)
    save(fig, args, "fig11_scr_conv")


if __name__ == "__main__":
    main()
