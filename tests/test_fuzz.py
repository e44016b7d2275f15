"""Fuzzing the public API: every function of ``meanfield.__all__`` and every command of the CLI,
called with one argument replaced by a bad value, must either refuse it with a ``ValueError`` /
``TypeError`` whose message names that argument, or return a valid result -- never another
exception, a hang, an out-of-bounds read, or a NaN that no warning announced.

Why one argument at a time: the rest of the call is a small valid baseline, so whatever happens
is the bad value's doing, and the message can be asked to name it. The bad values are the classic
ones (NaN, ±inf, negative, zero, bools, strings where numbers go, None, empty and ragged arrays,
complex numbers) and sizes that cannot fit in memory, which must be refused before anything is
allocated, with the size they would need. Valid but extreme numbers (σ_w = 1e300, σ_b = 1e-300)
come from hypothesis's float strategy: they must give a finite answer, or NaN/inf together with a
warning that says why (``NoFixedPointWarning``), or a named error.

Sizes: a width of 4, depth 2, batch 2, two classes, one trial; a few examples per function, so
the whole file runs in well under a minute. Each call is bounded by an alarm (a hang fails).
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import meanfield as mf
from meanfield.cli import main as cli_main
from tests._timeouts import time_limit as _time_limit

HUGE = 10 ** 12  # a size no machine holds: width², trials, depth, num … must be refused early

BAD = [
    math.nan, math.inf, -math.inf, -1, -1.0, 0, 0.0, -1e308, True, False, None, "abc", "1.0", "",
    [], [[1.0, 2.0], [3.0]], np.array([]), np.array([np.nan]), [1.0, math.nan], 1j,
    {"a": 1}, object(), HUGE, 2 ** 64, -(2 ** 64), np.float32(np.nan), np.int64(-3),
    10 ** 400, np.array([[0.5, 0.5]]),
]


def _bad_values():
    return st.one_of(
        st.sampled_from(BAD),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(2 ** 70), max_value=-1),
        st.sampled_from([HUGE, 2 ** 40 + 1, 10 ** 15]),
    )


_TINY_DATA = (np.random.default_rng(0).standard_normal((12, 4)).astype(np.float32),
              np.arange(12) % 2, np.random.default_rng(1).standard_normal((6, 4)), np.arange(6) % 2)

SIM = dict(activation="tanh", width=4, depth=2, sigma_w=1.2, sigma_b=0.1, trials=1, batch=2,
           classes=2, method="snip", arch="ffnn", seed=0)

# name -> (function, baseline keyword arguments); every public function of meanfield.__all__
BASELINES = {
    "q_map": (mf.q_map, dict(activation="tanh", q=1.0, sigma_w=1.2, sigma_b=0.1, arch="ffnn",
                             depth=None)),
    "c_map": (mf.c_map, dict(activation="tanh", c=0.5, sigma_w=1.2, sigma_b=0.1, q=None,
                             arch="ffnn", depth=None)),
    "cov_map": (mf.cov_map, dict(activation="tanh", q_a=1.0, q_b=2.0, cov=0.5, sigma_w=1.2,
                                 sigma_b=0.1, arch="resnet", depth=3)),
    "propagate": (mf.propagate, dict(activation="tanh", q0=1.0, c0=0.5, sigma_w=1.2, sigma_b=0.1,
                                     depth=3, arch="ffnn")),
    "backward_gains": (mf.backward_gains, dict(activation="tanh", q=1.0, sigma_w=1.2, c=0.5,
                                               arch="stable_resnet", depth=4)),
    "q_star": (mf.q_star, dict(activation="tanh", sigma_w=1.2, sigma_b=0.1, q0=1.0)),
    "chi_1": (mf.chi_1, dict(activation="tanh", sigma_w=1.2, sigma_b=0.1)),
    "c_star": (mf.c_star, dict(activation="tanh", sigma_w=2.0, sigma_b=0.1)),
    "chi_c": (mf.chi_c, dict(activation="tanh", sigma_w=2.0, sigma_b=0.1)),
    "depth_scales": (mf.depth_scales, dict(activation="tanh", sigma_w=1.2, sigma_b=0.1)),
    "eoc_rate": (mf.eoc_rate, dict(activation="relu", sigma_w=2 ** 0.5, sigma_b=0.0)),
    "conv_cov_map": (mf.conv_cov_map, dict(
        activation="tanh", cov=0.5 * np.eye(4).reshape(2, 2, 2, 2), sigma_w=1.2, sigma_b=0.1,
        kernel_size=3, arch="cnn", depth=None)),
    "propagate_spatial": (mf.propagate_spatial, dict(
        activation="tanh", cov0=0.5 * np.eye(4).reshape(2, 2, 2, 2), sigma_w=1.2, sigma_b=0.1,
        depth=2, kernel_size=3, arch="cnn")),
    "conv_input_covariance": (mf.conv_input_covariance, dict(
        x=np.arange(8.0).reshape(2, 1, 2, 2), sigma_w=1.2, sigma_b=0.1, kernel_size=3)),
    "conv_depth_scales": (mf.conv_depth_scales, dict(activation="tanh", sigma_w=2.0, sigma_b=0.1,
                                                     kernel_size=3, image_size=4)),
    "conv_phase_diagram": (mf.conv_phase_diagram, dict(activation="tanh", sigma_w=[0.8, 3.0],
                                                       sigma_b=[0.3], kernel_size=3,
                                                       image_size=4)),
    "eoc": (mf.eoc, dict(activation="tanh", sigma_b=0.3)),
    "eoc_curve": (mf.eoc_curve, dict(activation="tanh", sigma_b=None, num=3)),
    "phase": (mf.phase, dict(activation="tanh", sigma_w=1.2, sigma_b=0.1, tol=1e-9)),
    "phase_diagram": (mf.phase_diagram, dict(activation="tanh", sigma_w=[0.8, 3.0],
                                             sigma_b=[0.3], tol=1e-9, progress=False)),
    "fixed_points": (mf.fixed_points, dict(activation="silu", sigma_w=1.5756, sigma_b=0.3,
                                           q_max=1e4)),
    "get_activation": (mf.get_activation, dict(activation="tanh")),
    "available_activations": (mf.available_activations, {}),
    "available_datasets": (mf.available_datasets, {}),
    "load_dataset": (mf.load_dataset, dict(name="teacher")),
    "layer_gradient_scales": (mf.layer_gradient_scales, dict(
        activation="tanh", width=4, depth=2, sigma_w=1.2, sigma_b=0.1, batch=2, classes=2)),
    "ordered_phase_bound": (mf.ordered_phase_bound, dict(width=4, depth=2, constant=1.0)),
    "predict_critical_sparsity": (mf.predict_critical_sparsity, dict(
        activation="tanh", width=4, depth=2, sigma_w=1.2, sigma_b=0.1, batch=2, classes=2,
        return_std=False, finite_width=False)),
    "predict_kept_per_layer": (mf.predict_kept_per_layer, dict(
        activation="tanh", width=4, depth=2, sigma_w=1.2, sigma_b=0.1, sparsity=0.5, batch=2,
        classes=2, finite_width=False)),
    "simulate_critical_sparsity": (mf.simulate_critical_sparsity, dict(SIM, definition="layer")),
    "sweep_critical_sparsity": (mf.sweep_critical_sparsity, dict(SIM, definition="layer")),
    "kept_per_layer": (mf.kept_per_layer, dict(SIM, sparsity=0.5, per_trial=False)),
    "sweep_kept_per_layer": (mf.sweep_kept_per_layer, dict(SIM, sparsity=0.5, per_trial=False)),
    "train": (mf.train, dict(
        activation="tanh", dataset=_TINY_DATA, width=4, depth=2, sigma_w=1.2, sigma_b=0.1,
        arch="ffnn", method="snip", sparsity=0.5, rescale=False, epochs=1, batch=4, lr=0.01,
        momentum=0.9, weight_decay=0.0, seed=0, threads=1, sparse="auto", shuffle_masks=False,
        val_fraction=0.0, grasp_temperature=200.0)),
}

# the name the message gives when it is not the parameter's own
ALIASES = {("load_dataset", "name"): "dataset"}
# outputs that are documented to hold NaN: no validation split, a diverged run; the spread of a
# single trial
DOCUMENTED_NAN = {"train": {"val_accuracy", "train_loss", "train_accuracy", "test_accuracy"},
                  "layer_gradient_scales": {"chi"},       # the readout has no φ': nan by design
                  "kept_per_layer": {"kept_sd", "kept_se"},
                  "sweep_kept_per_layer": {"kept_sd", "kept_se"}}
# valid alternatives a bad value can happen to be, whose results are checked like any other
NOT_ARGUMENTS = {"progress", "return_std"}

CLASSES = [mf.Activation, mf.NoFixedPointWarning, mf.UnstableEOCWarning, mf.PredictionRangeWarning]

def test_the_table_covers_every_public_function():
    """A function added to ``meanfield.__all__`` without a baseline here would go unfuzzed."""
    public = {n for n in mf.__all__ if getattr(mf, n) not in CLASSES}
    assert public == set(BASELINES)




def _nan_outside(result, documented=()):
    """The NaN in a result (float, array, tuple of them, DataFrame), except documented columns."""
    if isinstance(result, pd.DataFrame):
        cols = [c for c in result.columns if c not in documented
                and pd.api.types.is_numeric_dtype(result[c])]
        return bool(result[cols].isna().to_numpy().any())
    if isinstance(result, (tuple, list)):
        return any(_nan_outside(r, documented) for r in result)
    if isinstance(result, (float, np.floating, np.ndarray)):
        arr = np.asarray(result)
        return arr.dtype.kind == "f" and bool(np.isnan(arr).any())
    return False


def _check_call(name, param, value):
    fn, base = BASELINES[name]
    kwargs = dict(base, **{param: value})
    with warnings.catch_warnings(record=True) as caught, _time_limit(60):
        warnings.simplefilter("always")
        try:
            result = fn(**kwargs)
        except (ValueError, TypeError) as exc:
            named = ALIASES.get((name, param), param)
            assert f"`{named}`" in str(exc), (
                f"{name}({param}={value!r}) raised {type(exc).__name__} not naming `{named}`: "
                f"{exc}")
            return
    # a valid result: NaN only where a warning says why, or in a documented column
    if _nan_outside(result, DOCUMENTED_NAN.get(name, ())):
        assert any(issubclass(w.category, RuntimeWarning) for w in caught), (
            f"{name}({param}={value!r}) returned NaN silently: {result!r}")


def _params(name):
    return sorted(BASELINES[name][1])


@pytest.mark.parametrize("name", sorted(n for n in BASELINES if _params(n)))
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_public_function(name, data):
    """One argument bad, the rest the baseline: a named ValueError/TypeError, or a valid result."""
    param = data.draw(st.sampled_from(_params(name)), label="param")
    value = data.draw(_bad_values(), label="value")
    _check_call(name, param, value)


@pytest.mark.parametrize("name", sorted(n for n in BASELINES if _params(n)))
def test_every_argument_with_every_classic_bad_value(name):
    """The fixed list, exhaustively (hypothesis samples; this one does not miss a pair)."""
    for param in _params(name):
        for value in BAD:
            _check_call(name, param, value)


# ------------------------------------------------------------------------------------------------
# Sizes that cannot fit: refused before allocating, with the size needed
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda: mf.simulate_critical_sparsity("tanh", 10 ** 7, 3, 1.0, 0.0, trials=1),
    lambda: mf.kept_per_layer("tanh", 4, 10 ** 12, 1.0, 0.0, 0.5, trials=1),
    lambda: mf.simulate_critical_sparsity("tanh", 4, 2, 1.0, 0.0, trials=10 ** 12),
    lambda: mf.train("tanh", _TINY_DATA, width=10 ** 7, depth=3, sigma_w=1.0, sigma_b=0.0,
                     epochs=1),
    lambda: mf.propagate("tanh", 1.0, 0.5, 1.0, 0.0, 10 ** 12),
    lambda: mf.eoc_curve("tanh", num=10 ** 12),
], ids=["simulate-width", "kept-depth", "simulate-trials", "train-width", "propagate-depth",
        "eoc_curve-num"])
def test_requests_that_cannot_fit_are_refused_with_their_size(call):
    """Refused before allocating (a MemoryError, or the OOM killer, is what the user saw), the
    message giving the size in GiB."""
    with _time_limit(30), pytest.raises(ValueError, match=r"needs [0-9.e+]+ GiB of memory"):
        call()


def test_init_network_refuses_a_network_that_cannot_fit():
    from meanfield.nets import init_network

    with pytest.raises(ValueError, match=r"`width` == 10000000.*needs [0-9.e+]+ GiB"):
        init_network("tanh", 10 ** 7, 3, 1.0, 0.0, rng=np.random.default_rng(0))


# ------------------------------------------------------------------------------------------------
# Indices that reach a numba kernel
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("labels", [[0, 2, 1], [-1, 0, 1], [0, 1, 10 ** 9], [0.0, 1.0, 2.5],
                                    [True, False, True], ["a", "b", "c"], [0, 1]])
def test_labels_out_of_range_never_reach_a_kernel(labels):
    """``_softmax_xent`` reads ``z[b, labels[b]]`` unchecked: a label >= C or < 0 would read
    another row or outside the array. Every public entry that takes labels refuses it first."""
    from meanfield.nets import init_network, loss_and_grads
    from meanfield.pruning import grasp_scores, hessian_vector_product, snip_scores

    net = init_network("tanh", 4, 2, 1.2, 0.1, n_in=3, classes=2, rng=np.random.default_rng(0))
    X = np.ones((3, 3))
    v = [np.ones_like(w) for w in net.weights]
    for call in (lambda: loss_and_grads(net, X, labels), lambda: snip_scores(net, X, labels),
                 lambda: grasp_scores(net, X, labels),
                 lambda: hessian_vector_product(net, X, labels, v)):
        with pytest.raises((ValueError, TypeError), match=r"`y`"):
            call()


def test_train_labels_define_the_classes_and_are_checked():
    """train's class count comes from the labels; a negative label must be refused, not used as an
    index from the end (numba wraps negative indices: no crash, a wrong class)."""
    X, y, Xt, yt = _TINY_DATA
    with pytest.raises((ValueError, TypeError), match=r"`dataset`|`y`"):
        mf.train("tanh", (X, np.where(y == 0, -1, y), Xt, yt), width=4, depth=2, sigma_w=1.2,
                 sigma_b=0.1, epochs=1)


# ------------------------------------------------------------------------------------------------
# The command line: bad values give one line and exit 2, never a traceback (exit 1)
# ------------------------------------------------------------------------------------------------

SIM_ARGS = ["--width", "4", "--depth", "2", "--sigma-w", "1.2", "--sigma-b", "0.1", "--trials",
            "1", "--batch", "2", "--classes", "2", "--quiet"]
COMMANDS = {
    "info": ["--sigma-w", "1.2", "--sigma-b", "0.1"],
    "propagate": ["--sigma-w", "1.2", "--sigma-b", "0.1", "--q0", "1", "--c0", "0.5", "--depth",
                  "3", "--arch", "ffnn"],
    "eoc": ["--sigma-b", "0:1:3"],
    "phase-diagram": ["--sigma-w", "0.8,3", "--sigma-b", "0.3", "--quiet"],
    "scr": SIM_ARGS + ["--method", "snip", "--arch", "ffnn", "--definition", "layer"],
    "kept": SIM_ARGS + ["--sparsity", "0.5", "--method", "snip"],
    "train": ["--dataset", "teacher:4:2", "--width", "4", "--depth", "2", "--sigma-w", "1.2",
              "--sigma-b", "0.1", "--epochs", "1", "--batch", "64", "--method", "snip",
              "--sparsity", "0.5", "--threads", "1", "--quiet"],
}
BAD_WORDS = ["nan", "inf", "-inf", "-1", "0", "abc", "", "1e400", str(HUGE), "0:1:0",
             "0:1:99999999999", "1,,2", "eoc", "-0.5,1", "1.5", "tanh", "2.5", "0x10", "None"]


def _run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _time_limit(60), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = cli_main(argv)
        except SystemExit as exc:  # argparse's --help / --version only
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def _flag_values(command):
    args = COMMANDS[command]
    return [i for i, a in enumerate(args) if a.startswith("--") and i + 1 < len(args)
            and not args[i + 1].startswith("--")]


def test_cli_baselines_run():
    """The baselines themselves are valid (else every fuzzed call would fail for them)."""
    for command in ("info", "propagate", "eoc", "phase-diagram"):
        code, out, err = _run_cli([command, *COMMANDS[command]])
        assert code == 0, err


@pytest.mark.parametrize("command", sorted(COMMANDS))
@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_cli(command, data):
    """One option's value replaced: exit 0 with no NaN in the table, or exit 2 with one line
    naming the option -- never exit 1 (a traceback: a bug)."""
    args = list(COMMANDS[command])
    i = data.draw(st.sampled_from(_flag_values(command)), label="option")
    args[i + 1] = data.draw(st.sampled_from(BAD_WORDS), label="value")
    code, out, err = _run_cli([command, *args])
    flag = args[i]
    assert code in (0, 2), f"{command} {flag} {args[i + 1]!r}: exit {code}\n{err}"
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("meanfield"), err
        param = flag.lstrip("-").replace("-", "_")
        assert flag in err or f"`{param}`" in err or (param == "dataset" and "`dataset`" in err), (
            f"{command} {flag} {args[i + 1]!r}: the message does not name the option: {err}")
    else:
        assert "nan" not in out.lower(), f"{command} {flag} {args[i + 1]!r}: NaN in\n{out}"
