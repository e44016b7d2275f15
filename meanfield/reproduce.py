"""``meanfield reproduce``: run every study, then every figure, and print a summary.

The studies and figures of the paper land one issue at a time; until a piece exists its row in the
summary says what it needs. What runs today is the signal-propagation table of the theory core.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

#: (figure, what it needs) for the pieces that are not in the library yet
PENDING = [
    ("1 phase diagram", "needs the EOC module (eoc.py)"),
    ("2 EOC curves", "needs the EOC module (eoc.py)"),
    ("5-8 critical sparsity", "needs the pruning simulations (sparsity.py)"),
    ("9-10 training", "needs the trainer (training.py)"),
]


def _signal_table(quick):
    """q*, χ₁, c*, χ_c, ξ_q, ξ_c over σ_w at σ_b = 0.3 for several activations (tidy)."""
    import pandas as pd

    from . import c_star, chi_1, chi_c, depth_scales, q_star

    sigma_w = np.linspace(0.5, 3.0, 11 if quick else 101)
    sigma_b = 0.3
    frames = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for act in ("tanh", "erf", "relu", "elu", "silu"):
            xi_q, xi_c = depth_scales(act, sigma_w, sigma_b)
            frames.append(pd.DataFrame({
                "activation": act, "sigma_w": sigma_w, "sigma_b": sigma_b,
                "q_star": q_star(act, sigma_w, sigma_b), "chi_1": chi_1(act, sigma_w, sigma_b),
                "c_star": c_star(act, sigma_w, sigma_b), "chi_c": chi_c(act, sigma_w, sigma_b),
                "xi_q": xi_q, "xi_c": xi_c}))
    return pd.concat(frames, ignore_index=True)


def run(quick=False, out="meanfield-results"):
    """Run what exists of the reproduction into ``out``; return the summary rows."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"`--out` == {str(out)!r}: cannot create ({exc.strerror})") from None
    rows = []
    t0 = time.perf_counter()
    table = _signal_table(quick)
    path = out / "signal_propagation.csv"
    table.to_csv(path, index=False)
    rows.append(("signal propagation table", str(path), f"{time.perf_counter() - t0:.1f}"))
    rows += [(name, need, "-") for name, need in PENDING]
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'file':<48}  seconds", file=sys.stdout)
    for name, file, secs in rows:
        print(f"{name:<{width}}  {file:<48}  {secs}", file=sys.stdout)
    return rows
