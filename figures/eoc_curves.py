"""Figure 2: EOC curves of several activations (unstable stretches dashed, the ReLU point)."""

from meanfield.plotting import plot_eoc_curves

from ._common import axes, parse, read, save


def main(argv=None):
    args = parse(__doc__, argv)
    df = read(args, "eoc_curves")
    fig, ax = axes()
    plot_eoc_curves(("tanh", "erf", "elu", "silu", "softplus", "relu"), data=df, ax=ax)
    save(fig, args, "fig2_eoc_curves")


if __name__ == "__main__":
    main()
