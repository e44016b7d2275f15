"""Figure 10: the accuracy table (mean ± sd over seeds) as markdown and CSV, and as a bar chart."""

from pathlib import Path

import numpy as np

from ._common import axes, parse, read, save


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
    df = read(args, "accuracy_table")
    wide = table(df)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wide.to_csv(out / "fig10_accuracy_table.csv")
    (out / "fig10_accuracy_table.md").write_text(wide.to_markdown() + "\n")
    fig, ax = axes(figsize=(8.0, 4.5))
    agg = df.groupby(["label", "sparsity"], sort=False).test_accuracy.mean().unstack()
    agg.mul(100).plot.barh(ax=ax)
    ax.axvline(10, color="gray", ls=":")
    ax.set_xlabel("test accuracy (%)")
    ax.set_title("mnist5k after pruning at initialization")
    save(fig, args, "fig10_accuracy_table")


if __name__ == "__main__":
    main()
