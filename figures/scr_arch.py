"""Figure 8: E[s_cr] against depth for an FFNN, a ResNet and a Stable ResNet."""

from meanfield.plotting import plot_scr

from ._common import axes, parse, read, save


def main(argv=None):
    args = parse(__doc__, argv)
    df = read(args, "scr_arch")
    fig, ax = axes()
    plot_scr(df, "depth", "arch", ax=ax)
    ax.set_title(f"SNIP, tanh, $\\sigma_w$ = {df.sigma_w.iloc[0]:g}, "
                 f"$\\sigma_b$ = {df.sigma_b.iloc[0]:g}, width {int(df.width.iloc[0])}")
    save(fig, args, "fig8_scr_arch")


if __name__ == "__main__":
    main()
