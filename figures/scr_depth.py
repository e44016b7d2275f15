"""Figure 5: E[s_cr] against depth per phase: Monte Carlo (±2 SE), mean-field prediction, and the
rate of the ordered-phase proposition, C (log(LN²)/L + 1/√(LN²)), with C fitted by least squares to
the ordered-phase points. The proposition gives the rate, not C; a least-squares C puts the curve
above the data at small L and below it at large L, so the legend calls it a fitted rate, not a
bound (docs/propositions.md)."""

import numpy as np

from meanfield.plotting import plot_scr
from meanfield.prediction import fit_bound_constant, ordered_phase_bound

from ._common import axes, parse, read, save


def main(argv=None):
    args = parse(__doc__, argv)
    df = read(args, "scr_depth")
    ordered = df[df.phase == "ordered"].sort_values("depth")
    width = int(df.width.iloc[0])
    constant = fit_bound_constant(ordered.depth.to_numpy(), ordered.s_cr_mean.to_numpy(), width)
    depths = np.geomspace(df.depth.min(), df.depth.max(), 100)
    fig, ax = axes()
    label = (f"fitted rate $C\\,(\\log(LN^2)/L + 1/\\sqrt{{LN^2}})$\n"
             f"C = {constant:.2f}, least squares on the ordered points")
    plot_scr(df, "depth", "phase", bound=(depths, ordered_phase_bound(width, depths, constant)),
             bound_label=label, ax=ax)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"SNIP on tanh FFNNs, width {width}, $\\sigma_b$ = {df.sigma_b.iloc[0]:g}")
    save(fig, args, "fig5_scr_depth")


if __name__ == "__main__":
    main()
