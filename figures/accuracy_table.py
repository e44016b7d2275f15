"""Figure 10: the accuracy table (mean ± sd over seeds) as markdown and CSV, and as a bar chart."""

from pathlib import Path

import numpy as np

from simulations.accuracy_table import METHODS

from ._common import parse, read, save


def _in_study_order(df):
    """The rows in the study's order of methods (the stored CSV is sorted by label)."""
    rank = {label: k for k, label in enumerate(METHODS)}
    return df.sort_values(["depth", "sparsity"]).sort_values(
        "label", key=lambda s: s.map(rank).fillna(len(rank)), kind="stable")


def table(df):
    """Rows: method; columns: sparsity (per depth); cells: mean ± sd of the test accuracy (%)."""
    agg = df.groupby(["depth", "label", "sparsity"], sort=False).test_accuracy.agg(["mean", "std"])
    agg["cell"] = [f"{100 * m:.2f}" if np.isnan(s) else f"{100 * m:.2f} ± {100 * s:.2f}"
                   for m, s in zip(agg["mean"], agg["std"])]  # one seed: no spread to show
    wide = agg["cell"].unstack(["depth", "sparsity"])
    wide.columns = [f"depth {d}, {100 * s:g} %" for d, s in wide.columns]
    return wide


def main(argv=None):
    args = parse(__doc__, argv)
    df = _in_study_order(read(args, "accuracy_table"))
    wide = table(df)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wide.to_csv(out / "fig10_accuracy_table.csv")
    (out / "fig10_accuracy_table.md").write_text(wide.to_markdown() + "\n")
    # one panel per depth (averaging depths would mix nets that train with nets that do not);
    # bars: mean over seeds, whiskers: sd
    import matplotlib.pyplot as plt

    depths = sorted(df.depth.unique())
    order = list(dict.fromkeys(df.label))[::-1]  # the study's order, top to bottom
    fig, axs = plt.subplots(1, len(depths), figsize=(max(6.4, 4.8 * len(depths)), 0.45 * len(order) + 1.9),
                            sharey=True, constrained_layout=True, squeeze=False)
    for ax, depth in zip(axs[0], depths):
        g = df[df.depth == depth].groupby(["label", "sparsity"]).test_accuracy
        mean = g.mean().unstack().reindex(order).mul(100)
        sd = g.std().unstack().reindex(order).mul(100).fillna(0.0)
        mean.plot.barh(ax=ax, xerr=sd, width=0.8, legend=ax is axs[0][-1], capsize=1.5)
        ax.axvline(10, color="gray", ls=":")
        ax.set_xlim(0, 100)
        ax.set_xlabel("test accuracy (%)")
        ax.set_ylabel("")
        ax.set_title(f"depth {depth}")
    axs[0][-1].legend(title="sparsity", loc="center right", fontsize="small")  # clear of the bars
    fig.suptitle("mnist5k, tanh width 100, after pruning at initialization\n"
                 "(mean ± sd over seeds; dotted: chance)")
    save(fig, args, "fig10_accuracy_table")


if __name__ == "__main__":
    main()
