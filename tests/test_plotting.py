"""Plots draw what the library computes (checked on the artists' data), and return their Axes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield import plotting  # noqa: E402
from meanfield.prediction import fit_bound_constant  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_phase_diagram_plot_draws_the_eoc_curve():
    ax = plotting.plot_phase_diagram("tanh", np.linspace(0.5, 3, 12), np.linspace(0, 1, 5))
    line = ax.get_lines()[0]
    sw, _ = mf.eoc("tanh", line.get_xdata())
    np.testing.assert_allclose(line.get_ydata(), sw, rtol=1e-14)
    assert {t.get_text() for t in ax.texts} == {"ordered", "chaotic"}


def test_eoc_curves_plot_marks_unstable_and_missing():
    ax = plotting.plot_eoc_curves(("tanh", "silu", "softplus", "relu"), sigma_b=np.linspace(0, 1, 9))
    labels = [l.get_label() for l in ax.get_lines()]
    assert "silu (unstable q*)" in labels and "relu (single point)" in labels
    assert any("softplus" in t.get_text() for t in ax.texts)


def test_depth_scales_plot_and_convergence_table():
    ax = plotting.plot_depth_scales("tanh", 0.3, np.linspace(0.8, 3, 20))
    assert len(ax.get_lines()) == 3
    df = plotting.convergence_table("tanh", 0.3, depth=150)
    assert set(df.phase) == {"ordered", "eoc", "chaotic"}
    eoc_rows = df[df.phase == "eoc"]
    assert eoc_rows.beta.iloc[0] == pytest.approx(mf.eoc_rate("tanh", mf.eoc("tanh", 0.3)[0], 0.3))
    # exponential off the EOC, polynomial on it
    last = df[df.layer == 150].set_index("phase").distance
    assert last["ordered"] < 1e-6 and last["chaotic"] < 1e-6 and last["eoc"] > 1e-2
    ax = plotting.plot_correlation_convergence("tanh", data=df)
    assert ax.get_yscale() == "log"


def test_bad_quantity():
    with pytest.raises(ValueError, match="`quantity` == 'chi'"):
        plotting.plot_phase_diagram("tanh", [1.0], [0.1], quantity="chi")


def test_scr_plot_labels_the_fitted_rate_as_a_fitted_rate():
    # The proposition's C is not known: a least-squares C puts C·f(L) above the data at some
    # depths and below at others, so the legend must not call that curve a bound.
    import pandas as pd

    df = pd.DataFrame({"phase": "ordered", "depth": [10, 20, 40], "s_cr_mean": [0.9, 0.6, 0.3],
                       "se": 0.01})
    L = np.array([10.0, 20.0, 40.0])
    C = fit_bound_constant(L, df.s_cr_mean, 32)
    ax = plotting.plot_scr(df, bound=(L, mf.ordered_phase_bound(32, L, C)))
    line = [ln for ln in ax.get_lines() if ln.get_label() == plotting.BOUND_LABEL]
    assert len(line) == 1 and "fitted rate" in plotting.BOUND_LABEL
    assert "bound" not in plotting.BOUND_LABEL
    np.testing.assert_allclose(line[0].get_ydata(), mf.ordered_phase_bound(32, L, C))
    ax = plotting.plot_scr(df, bound=(L, mf.ordered_phase_bound(32, L, C)), bound_label="C = 1.3")
    assert "C = 1.3" in [ln.get_label() for ln in ax.get_lines()]


def test_predictions_outside_the_domain_are_marked():
    """A prediction made outside the chain's domain (docs/critical_sparsity.md §5d) is drawn
    apart: "×" at exactly those depths in plot_scr, a dotted, labelled line in
    plot_kept_per_layer."""
    import pandas as pd

    df = pd.DataFrame({"phase": "eoc", "depth": [10, 20, 40], "s_cr_mean": [0.99, 0.98, 0.95],
                       "se": 0.01, "prediction": [0.991, 0.982, 0.97],
                       "prediction_in_domain": [True, True, False]})
    ax = plotting.plot_scr(df)
    marked = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert len(marked) == 1 and list(marked[0].get_xdata()) == [40]
    assert "outside the theory's domain" in marked[0].get_label()
    assert not [ln for ln in plotting.plot_scr(df.assign(prediction_in_domain=True)).get_lines()
                if ln.get_marker() == "x"]
    kept = pd.DataFrame({"layer": [1, 2, 3], "kept_fraction": 0.3, "kept_se": 0.01,
                         "phase": "eoc", "prediction": 0.3, "prediction_in_domain": False})
    ax = plotting.plot_kept_per_layer(kept)
    pred = [ln for ln in ax.get_lines() if "mean field" in ln.get_label()]
    assert len(pred) == 1 and pred[0].get_linestyle() == ":"
    assert "outside the theory's domain" in pred[0].get_label()
