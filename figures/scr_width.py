"""Figure 7: E[s_cr] against width at fixed depth per phase (Monte Carlo, ±2 SE)."""

from meanfield.plotting import plot_scr

from ._common import axes, parse, read, save


def main(argv=None):
    args = parse(__doc__, argv)
    df = read(args, "scr_width")
    fig, ax = axes()
    plot_scr(df, "width", "phase", ax=ax)
    ax.set_title(f"SNIP on tanh FFNNs, depth {int(df.depth.iloc[0])}")
    save(fig, args, "fig7_scr_width")


if __name__ == "__main__":
    main()
