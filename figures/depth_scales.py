"""Figure 3: depth scales ξ_q, ξ_c along σ_w at σ_b = 0.3; ξ_c diverges at the EOC."""

from meanfield.plotting import plot_depth_scales

from ._common import axes, parse, read, save


def main(argv=None):
    args = parse(__doc__, argv)
    df = read(args, "depth_scales")
    fig, ax = axes()
    plot_depth_scales("tanh", float(df.sigma_b.iloc[0]), data=df, ax=ax)
    save(fig, args, "fig3_depth_scales")


if __name__ == "__main__":
    main()
