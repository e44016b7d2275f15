"""Figure 6: % of weights kept per layer by SNIP at 70 % sparsity, chaotic phase vs EOC."""

from meanfield.plotting import plot_kept_per_layer

from ._common import axes, parse, read, save


def main(argv=None):
    args = parse(__doc__, argv)
    df = read(args, "kept_per_layer")
    fig, ax = axes()
    plot_kept_per_layer(df, "phase", ax=ax)
    ax.set_title(f"SNIP at {100 * df.sparsity.iloc[0]:.0f} % sparsity, "
                 f"{int(df.width.iloc[0])} x {int(df.depth.iloc[0])} tanh FFNN")
    save(fig, args, "fig6_kept_per_layer")


if __name__ == "__main__":
    main()
