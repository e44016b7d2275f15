"""Figure 1: χ₁ of tanh over (σ_b, σ_w) with the EOC curve; the ordered and chaotic phases."""

from meanfield.plotting import plot_phase_diagram

from ._common import parse, read, save


def main(argv=None):
    args = parse(__doc__, argv)
    df = read(args, "phase_diagram")
    fig, (left, right) = _two()
    plot_phase_diagram("tanh", data=df, quantity="chi_1", ax=left)
    plot_phase_diagram("tanh", data=df, quantity="xi_c", ax=right)
    save(fig, args, "fig1_phase_diagram")


def _two():
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(1, 2, figsize=(11.0, 4.5), constrained_layout=True)
    return fig, axs


if __name__ == "__main__":
    main()
