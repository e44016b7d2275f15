"""Figure 3: depth scales ξ_q and ξ_c of tanh along σ_w at σ_b = 0.3 (ξ_c diverges at the EOC)."""

import time

import numpy as np

import meanfield as mf

from ._common import finish, output, parse

SIGMA_B = 0.3


def main(argv=None):
    args = parse(__doc__, argv)
    t0 = time.perf_counter()
    sw = np.linspace(0.5, 4.0, 80 if args.quick else 1000)
    sw = np.sort(np.append(sw, mf.eoc("tanh", SIGMA_B)[0]))  # the EOC point itself: ξ_c = inf
    df = mf.phase_diagram("tanh", sw, [SIGMA_B])
    df.insert(0, "activation", "tanh")
    finish(df, output(args, "depth_scales"), t0)


if __name__ == "__main__":
    main()
