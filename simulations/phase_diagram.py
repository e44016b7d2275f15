"""Figure 1: the tanh phase diagram (q*, χ₁, c*, χ_c, ξ_q, ξ_c, phase) over (σ_w, σ_b)."""

import time

import numpy as np

import meanfield as mf

from ._common import finish, output, parse


def main(argv=None):
    args = parse(__doc__, argv)
    t0 = time.perf_counter()
    n_w, n_b = (60, 40) if args.quick else (300, 200)
    df = mf.phase_diagram("tanh", np.linspace(0.5, 4.0, n_w), np.linspace(0.0, 2.0, n_b))
    df.insert(0, "activation", "tanh")
    finish(df, output(args, "phase_diagram"), t0)


if __name__ == "__main__":
    main()
