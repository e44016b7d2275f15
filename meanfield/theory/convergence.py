"""How the correlation of two inputs converges to its fixed point, layer by layer, in each phase:
exponentially off the Edge of Chaos, polynomially (β/l) on it (docs/theory.md §3). The table is the
data of Figure 4; :func:`meanfield.plotting.plot_correlation_convergence` draws it.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_int
from ..activations import get_activation
from .fixed import c_star, eoc_rate, q_star
from .maps import propagate
from .phases import eoc

__all__ = ["convergence_table"]


def convergence_table(activation="tanh", sigma_b=0.3, sigma_w=(0.8, None, 3.0), depth=1000,
                      c0=0.5):
    """|c^l − c*| for l = 0 … ``depth`` in the ordered phase, on the EOC and in the chaotic phase.

    Parameters
    ----------
    activation : str or Activation
    sigma_b : float
    sigma_w : (float, float or None, float)
        Ordered, EOC (None: computed at ``sigma_b``) and chaotic σ_w.
    depth : int, >= 1
    c0 : float
        Input correlation; the input variance is q*.

    Returns
    -------
    pandas.DataFrame
        Tidy: ``phase, sigma_w, sigma_b, layer, c, c_star, distance, beta``, with c* = 1 and β
        the EOC rate (:func:`meanfield.eoc_rate`) on the EOC rows, β = nan elsewhere.
    """


    import pandas as pd  # lazy: `import meanfield` stays light (tests/test_package.py)
    act = get_activation(activation)
    depth = check_int("depth", depth, low=1)
    ordered, at_eoc, chaotic = sigma_w
    if at_eoc is None:
        at_eoc = eoc(act, sigma_b)[0]
    frames = []
    for name, sw in (("ordered", ordered), ("eoc", at_eoc), ("chaotic", chaotic)):
        q0 = q_star(act, sw, sigma_b)
        _, c = propagate(act, q0, c0, sw, sigma_b, depth)
        cs = 1.0 if name == "eoc" else c_star(act, sw, sigma_b)
        beta = eoc_rate(act, sw, sigma_b) if name == "eoc" else np.nan
        frames.append(pd.DataFrame({"phase": name, "sigma_w": sw, "sigma_b": sigma_b,
                                    "layer": np.arange(depth + 1), "c": c, "c_star": cs,
                                    "distance": np.abs(c - cs), "beta": beta}))
    return pd.concat(frames, ignore_index=True)
