"""Figure 4: |c^l − c*| against l: exponential off the EOC, β/l on it."""

from meanfield.plotting import plot_correlation_convergence

from ._common import axes, parse, read, save


def main(argv=None):
    args = parse(__doc__, argv)
    df = read(args, "correlation_convergence")
    fig, ax = axes()
    plot_correlation_convergence("tanh", float(df.sigma_b.iloc[0]), data=df, ax=ax)
    save(fig, args, "fig4_correlation_convergence")


if __name__ == "__main__":
    main()
