"""Plots of the theory (matplotlib). Each function draws on ``ax`` (a new figure if None) and
returns the Axes. They take the library's tidy tables, or compute them when given parameters.

Import this module only when plotting: it imports matplotlib.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from ._validate import InputError
from .activations import get_activation
from .theory.convergence import convergence_table  # the table is theory; the name here still works
from .theory.phases import _relu_like, eoc, eoc_curve, phase_diagram

__all__ = ["plot_phase_diagram", "plot_eoc_curves", "plot_depth_scales",
           "plot_correlation_convergence", "convergence_table", "plot_scr", "plot_kept_per_layer"]

_PHASE_COLOURS = {"ordered": "tab:blue", "eoc": "black", "chaotic": "tab:red"}


def _axes(ax):
    if ax is not None:
        return ax
    # pyplot (and its backend) only when a figure is made: a caller drawing on its own axes, or
    # a headless CLI that set the Agg backend first, never loads an interactive one
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.0, 4.5), constrained_layout=True)[1]


def plot_phase_diagram(activation="tanh", sigma_w=None, sigma_b=None, *, data=None,
                       quantity="chi_1", ax=None):
    """Phase diagram: ``quantity`` (``"chi_1"`` or ``"xi_c"``) as a colour map over (σ_b, σ_w), the EOC
    curve over it, the ordered and chaotic phases labelled.

    Parameters
    ----------
    activation : str or Activation
    sigma_w, sigma_b : array_like, 1-d, optional
        Grid axes (default σ_w ∈ [0.5, 4] and σ_b ∈ [0, 2], 120 × 80 points); ignored with ``data``.
    data : pandas.DataFrame, optional
        A :func:`meanfield.phase_diagram` table.
    quantity : {"chi_1", "xi_c"}
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    from matplotlib.colors import LogNorm, TwoSlopeNorm  # with pyplot, where a figure is made


    if quantity not in ("chi_1", "xi_c"):
        raise InputError(f"`quantity` == {quantity!r}: must be 'chi_1' or 'xi_c'")
    act = get_activation(activation)
    if data is None:
        sigma_w = np.linspace(0.5, 4.0, 120) if sigma_w is None else sigma_w
        sigma_b = np.linspace(0.0, 2.0, 80) if sigma_b is None else sigma_b
        data = phase_diagram(act, sigma_w, sigma_b)
    sw = np.unique(data.sigma_w.to_numpy())
    sb = np.unique(data.sigma_b.to_numpy())
    grid = (data.pivot(index="sigma_w", columns="sigma_b", values=quantity)
            .reindex(index=sw, columns=sb).to_numpy())
    ax = _axes(ax)
    if quantity == "chi_1":
        finite = grid[np.isfinite(grid)]
        norm = TwoSlopeNorm(vcenter=1.0, vmin=min(finite.min(), 0.99), vmax=max(finite.max(), 1.01))
        mesh = ax.pcolormesh(sb, sw, grid, shading="auto", cmap="RdBu_r", norm=norm)
        label = r"$\chi_1$"
    else:
        shown = np.where(np.isfinite(grid), grid, np.nan)
        mesh = ax.pcolormesh(sb, sw, shown, shading="auto", cmap="viridis",
                             norm=LogNorm(vmin=max(np.nanmin(shown), 1e-2), vmax=np.nanmax(shown)))
        label = r"$\xi_c$ (layers)"
    ax.figure.colorbar(mesh, ax=ax, label=label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curve = eoc_curve(act, sigma_b=sb) if act.closed_form is None else eoc_curve(act)
    ax.plot(curve.sigma_b, curve.sigma_w, color="black", lw=2, label="Edge of Chaos")
    if len(curve) > 1:
        mid = curve.iloc[len(curve) // 2]
        ax.text(mid.sigma_b, mid.sigma_w * 0.6, "ordered", ha="center", color="white",
                fontsize=12, weight="bold")
        ax.text(mid.sigma_b, min(mid.sigma_w * 1.5, sw.max() * 0.95), "chaotic", ha="center",
                color="white", fontsize=12, weight="bold")
    ax.set_xlim(sb.min(), sb.max())
    ax.set_ylim(sw.min(), sw.max())
    ax.set_xlabel(r"$\sigma_b$")
    ax.set_ylabel(r"$\sigma_w$")
    ax.set_title(f"{act.name}: phase diagram")
    ax.legend(loc="upper left")
    return ax


def _single_point(activation):
    """ReLU-like activations have a single EOC point (σ_b = 0)."""

    return _relu_like(get_activation(activation))


def plot_eoc_curves(activations=("tanh", "erf", "elu", "silu", "softplus"), sigma_b=None, *,
                    data=None, ax=None):
    """EOC curves σ_w(σ_b) of several activations on one axes; unstable stretches dashed,
    ReLU-like activations as a single point.

    Parameters
    ----------
    activations : sequence of str or Activation
    sigma_b : array_like, optional
        Default 200 points in [0, 2].
    data : pandas.DataFrame, optional
        Concatenated :func:`meanfield.eoc_curve` tables (with their ``activation`` column).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """


    if data is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = pd.concat([eoc_curve(a, sigma_b=None if _single_point(a) else sigma_b)
                              for a in activations], ignore_index=True)
    ax = _axes(ax)
    for name, df in data.groupby("activation", sort=False):
        if len(df) == 1:
            ax.plot(df.sigma_b, df.sigma_w, "o", ms=8, label=f"{name} (single point)")
            continue
        line, = ax.plot(df.sigma_b.where(df.stable), df.sigma_w.where(df.stable), lw=2, label=name)
        if not df.stable.all():
            ax.plot(df.sigma_b.where(~df.stable), df.sigma_w.where(~df.stable), lw=2, ls="--",
                    color=line.get_color(), label=f"{name} (unstable q*)")
    missing = [n for n in (get_activation(a).name for a in activations)
               if n not in set(data.activation)]
    if missing:
        ax.text(0.02, 0.02, "no EOC: " + ", ".join(missing), transform=ax.transAxes, fontsize=9)
    ax.set_xlabel(r"$\sigma_b$")
    ax.set_ylabel(r"$\sigma_w$ on the EOC")
    ax.set_title("Edge of Chaos curves")
    ax.legend(fontsize=9)
    return ax


def plot_depth_scales(activation="tanh", sigma_b=0.3, sigma_w=None, *, data=None, ax=None):
    """Depth scales ξ_q and ξ_c along σ_w at fixed σ_b (log scale); ξ_c diverges at the EOC.

    Parameters
    ----------
    activation : str or Activation
    sigma_b : float
    sigma_w : array_like, optional
        Default 300 points in [0.5, 4].
    data : pandas.DataFrame, optional
        A table with columns ``sigma_w, xi_q, xi_c`` (e.g. :func:`meanfield.phase_diagram` at one σ_b).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """

    act = get_activation(activation)
    if data is None:
        sigma_w = np.linspace(0.5, 4.0, 300) if sigma_w is None else sigma_w
        data = phase_diagram(act, sigma_w, [sigma_b])
    ax = _axes(ax)
    ax.semilogy(data.sigma_w, data.xi_q, lw=2, label=r"$\xi_q$")
    ax.semilogy(data.sigma_w, data.xi_c, lw=2, label=r"$\xi_c$")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            sw_eoc = eoc(act, sigma_b)[0]
        except ValueError:
            sw_eoc = math.nan
    if math.isfinite(sw_eoc):
        ax.axvline(sw_eoc, color="black", ls=":", label=f"EOC ($\\sigma_w$ = {sw_eoc:.4f})")
    ax.set_xlabel(r"$\sigma_w$")
    ax.set_ylabel("depth scale (layers)")
    ax.set_title(f"{act.name}, $\\sigma_b$ = {sigma_b:g}")
    ax.legend()
    return ax


def plot_correlation_convergence(activation="tanh", sigma_b=0.3, sigma_w=(0.8, None, 3.0),
                                 depth=1000, c0=0.5, *, data=None, ax=None):
    """|c^l − c*| against l (log–log) in the ordered phase, on the EOC and in the chaotic phase:
    exponential convergence off the EOC, polynomial (β/l) on it, with β from
    :func:`meanfield.eoc_rate` drawn as a line.

    Parameters
    ----------
    activation : str or Activation
    sigma_b : float
    sigma_w : (float, float or None, float)
        Ordered, EOC (None: computed) and chaotic σ_w.
    depth : int
    c0 : float
        Input correlation; the input variance is q*.
    data : pandas.DataFrame, optional
        Columns ``phase, layer, distance`` (and ``beta`` on the EOC rows), as this function
        computes with :func:`meanfield.theory.convergence_table`.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if data is None:
        data = convergence_table(activation, sigma_b, sigma_w, depth, c0)
    ax = _axes(ax)
    for name, df in data.groupby("phase", sort=False):
        keep = df.distance > 0
        ax.loglog(df.layer[keep], df.distance[keep], lw=2, color=_PHASE_COLOURS.get(name),
                  label=f"{name} ($\\sigma_w$ = {df.sigma_w.iloc[0]:.4g})")
        if name == "eoc" and np.isfinite(df.beta.iloc[0]):
            layer = df.layer.to_numpy()[1:]
            ax.loglog(layer, df.beta.iloc[0] / layer, color="gray", ls="--",
                      label=f"$\\beta/l$, $\\beta$ = {df.beta.iloc[0]:.4f}")
    ax.set_ylim(1e-16, 2)
    ax.set_xlabel("layer $l$")
    ax.set_ylabel(r"$|c^l - c^*|$")
    ax.set_title(f"{get_activation(activation).name}, $\\sigma_b$ = {sigma_b:g}")
    ax.legend(fontsize=9)
    return ax


#: Legend of the ``bound`` curve of :func:`plot_scr`: what the curve is (a rate with a fitted C).
BOUND_LABEL = r"fitted rate $C\,(\log(LN^2)/L + 1/\sqrt{LN^2})$"


def plot_scr(data, x="depth", group="phase", *, prediction=True, bound=None, bound_label=None,
             ax=None):
    """E[s_cr] (mean ± 2 standard errors) against ``x`` per ``group``, with the mean-field
    prediction (dashed) where the table has a ``prediction`` column and an optional bound curve.

    Parameters
    ----------
    data : pandas.DataFrame
        Columns ``x, group, s_cr_mean, se`` (as the simulations write them), optionally
        ``prediction`` and ``prediction_in_domain``.
    x : str
        ``"depth"`` or ``"width"``.
    group : str
        ``"phase"`` or ``"arch"``.
    prediction : bool
        Draw the ``prediction`` column if present; where a ``prediction_in_domain`` column is
        False, the point is marked "×", outside the theory's domain
        (docs/critical_sparsity.md §5d).
    bound : (array, array), optional
        x and y of a fitted rate curve to draw, e.g. C·(log(LN²)/L + 1/√(LN²)) from
        :func:`meanfield.prediction.ordered_phase_bound` with C from
        :func:`meanfield.prediction.fit_bound_constant`. It is labelled as a fitted rate, not as
        a bound: the proposition gives the rate only, and a least-squares C puts the curve above
        the data at some depths and below at others, so it bounds nothing.
    bound_label : str, optional
        Legend of the ``bound`` curve; default :data:`BOUND_LABEL`.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    for name, df in data.groupby(group, sort=False):
        df = df.sort_values(x)
        colour = _PHASE_COLOURS.get(name)
        bar = ax.errorbar(df[x], df.s_cr_mean, yerr=2 * df.se, marker="o", capsize=3,
                          color=colour, label=f"{name} (Monte Carlo, ±2 SE)")
        if prediction and "prediction" in df:
            ax.plot(df[x], df.prediction, ls="--", color=bar[0].get_color(),
                    label=f"{name} (mean field)")
            if "prediction_in_domain" in df and not df.prediction_in_domain.all():
                out = df[~df.prediction_in_domain.astype(bool)]
                ax.plot(out[x], out.prediction, ls="none", marker="x", color=bar[0].get_color(),
                        label=f"{name}: outside the theory's domain")
    if bound is not None:
        ax.plot(*bound, color="gray", ls=":", label=BOUND_LABEL if bound_label is None else bound_label)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel({"depth": "depth $L$", "width": "width $N$"}.get(x, x))
    ax.set_ylabel(r"$E[s_{cr}]$")
    ax.legend(fontsize=8)
    return ax


def plot_kept_per_layer(data, group="phase", *, ax=None):
    """Percentage of weights kept in each layer after global pruning, per ``group``, with the
    spread over trials (±2 SE) and the mean-field prediction where present.

    Parameters
    ----------
    data : pandas.DataFrame
        Columns ``layer, kept_fraction, kept_se, group`` (as :func:`meanfield.kept_per_layer`
        returns plus a group column), optionally ``prediction`` (dotted, and labelled so, where
        a ``prediction_in_domain`` column is False: docs/critical_sparsity.md §5d).
    group : str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    for name, df in data.groupby(group, sort=False):
        df = df.sort_values("layer")
        colour = _PHASE_COLOURS.get(name)
        line, = ax.plot(df.layer, 100 * df.kept_fraction, color=colour, lw=1.5,
                        label=f"{name} (Monte Carlo)")
        ax.fill_between(df.layer, 100 * (df.kept_fraction - 2 * df.kept_se),
                        100 * (df.kept_fraction + 2 * df.kept_se), color=line.get_color(),
                        alpha=0.25)
        if "prediction" in df:
            inside = "prediction_in_domain" not in df or df.prediction_in_domain.all()
            ax.plot(df.layer, 100 * df.prediction, ls="--" if inside else ":",
                    color=line.get_color(),
                    label=f"{name} (mean field" + (")" if inside else
                                                   ", outside the theory's domain)"))
    ax.set_xlabel("layer")
    ax.set_ylabel("% of weights kept")
    ax.legend(fontsize=8)
    return ax
