"""Figure 2: EOC curves of tanh, erf, ELU, SiLU, softplus, and the ReLU point."""

import time
import warnings

import numpy as np
import pandas as pd

import meanfield as mf

from ._common import finish, output, parse

ACTIVATIONS = ("tanh", "erf", "elu", "silu", "softplus", "relu")


def main(argv=None):
    args = parse(__doc__, argv)
    t0 = time.perf_counter()
    sb = np.linspace(0.0, 2.0, 50 if args.quick else 400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mf.UnstableEOCWarning)
        frames = [mf.eoc_curve(a, sigma_b=None if a == "relu" else sb) for a in ACTIVATIONS]
    finish(pd.concat(frames, ignore_index=True), output(args, "eoc_curves"), t0)


if __name__ == "__main__":
    main()
