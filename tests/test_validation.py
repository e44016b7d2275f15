"""Bad input: a ValueError/TypeError that names the parameter, its value and what is allowed."""

import math

import numpy as np
import pytest

import meanfield as mf


@pytest.mark.parametrize("fn", [mf.q_star, mf.chi_1, mf.c_star, mf.chi_c, mf.depth_scales])
@pytest.mark.parametrize("sw, sb, match", [
    (0.0, 0.1, r"`sigma_w` == 0\.0: must be > 0"),
    (-1.0, 0.1, r"`sigma_w` == -1\.0: must be > 0"),
    (math.nan, 0.1, r"`sigma_w` == nan"),
    (math.inf, 0.1, r"`sigma_w` == inf"),
    (1.0, -0.5, r"`sigma_b` == -0\.5: must be >= 0"),
    (1.0, math.nan, r"`sigma_b` == nan"),
])
def test_bad_sigmas(fn, sw, sb, match):
    with pytest.raises(ValueError, match=match):
        fn("tanh", sw, sb)


def test_bad_q_c_depth():
    with pytest.raises(ValueError, match=r"`q` == -1\.0: must be >= 0"):
        mf.q_map("tanh", -1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"`c` == 1\.5 \(at index \(1,\)\): must be in \[-1, 1\]"):
        mf.c_map("tanh", [0.5, 1.5], 1.0, 0.0, q=1.0)
    with pytest.raises(ValueError, match=r"`c0` == -2\.0"):
        mf.propagate("tanh", 1.0, -2.0, 1.0, 0.0, 3)
    with pytest.raises(ValueError, match=r"`depth` == -1: must be an integer >= 0"):
        mf.propagate("tanh", 1.0, 0.5, 1.0, 0.0, -1)
    with pytest.raises(TypeError, match=r"`depth` == 2\.5"):
        mf.propagate("tanh", 1.0, 0.5, 1.0, 0.0, 2.5)
    with pytest.raises(ValueError, match=r"`cov` == 3\.0 with `q_a` == 1\.0, `q_b` == 4\.0: must satisfy"):
        mf.cov_map("tanh", 1.0, 4.0, 3.0, 1.0, 0.0)
    with pytest.raises(TypeError, match=r"`q` == 'a'"):
        mf.q_map("tanh", "a", 1.0, 0.0)
    with pytest.raises(ValueError, match=r"shapes do not broadcast"):
        mf.q_map("tanh", np.ones(2), np.ones(3), 0.0)


def test_bad_activation():
    with pytest.raises(ValueError, match=r"`activation` == 'tanhh': unknown; allowed: tanh"):
        mf.q_map("tanhh", 1.0, 1.0, 0.0)
    with pytest.raises(TypeError, match=r"`activation` == 3"):
        mf.q_map(3, 1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"parameter of elu must be a finite number > 0"):
        mf.get_activation("elu:-1")
    with pytest.raises(ValueError, match=r"parameter of leaky_relu must be in \[0, 1\)"):
        mf.get_activation("leaky_relu:abc")
    with pytest.raises(ValueError, match=r"only leaky_relu, elu take a parameter"):
        mf.get_activation("tanh:2")
    with pytest.raises(TypeError, match=r"`phi` == 3"):
        mf.Activation(3, math.cos)
    with pytest.raises(TypeError, match=r"could not be compiled by numba"):
        mf.Activation(lambda x: {"a": x}, lambda x: 1.0)


def test_scalars_in_floats_out_arrays_in_arrays_out():
    assert isinstance(mf.q_map("tanh", 1.0, 1.0, 0.1), float)
    out = mf.q_map("tanh", np.ones((2, 1)), np.ones(3), 0.1)
    assert isinstance(out, np.ndarray) and out.shape == (2, 3)
    xi_q, xi_c = mf.depth_scales("tanh", [1.0, 2.0], 0.1)
    assert xi_q.shape == xi_c.shape == (2,)


# ------------------------------------------------------------------------------------------------
# The vocabulary of _validate: one check per kind of argument, used by every public function
# ------------------------------------------------------------------------------------------------

def test_check_scalar_bounds_types_and_numpy_scalars():
    """numpy scalars are numbers (a float32 σ or sparsity from an array is common); bools and
    strings are not; each bound open or closed as asked; NaN and inf refused unless allowed."""
    from meanfield._validate import InputError, InputTypeError, check_scalar

    assert check_scalar("s", np.float32(0.5), min_val=0, max_val=1, include_boundaries="left") == 0.5
    assert check_scalar("n", np.int64(3), int, min_val=1) == 3
    assert type(check_scalar("n", np.int64(3), int)) is int
    assert check_scalar("s", 0.0, min_val=0, max_val=1, include_boundaries="left") == 0.0
    with pytest.raises(InputError, match=r"`s` == 1\.0: must be a finite real number in \[0, 1\)"):
        check_scalar("s", 1.0, min_val=0, max_val=1, include_boundaries="left")
    with pytest.raises(InputError, match=r"`t` == 0\.0: must be .* > 0"):
        check_scalar("t", 0, min_val=0, include_boundaries="neither")
    with pytest.raises(InputTypeError, match=r"`s` == True: .*not a bool"):
        check_scalar("s", True)
    with pytest.raises(InputTypeError, match=r"`n` == 2\.0: must be an integer"):
        check_scalar("n", 2.0, int)
    with pytest.raises(InputTypeError, match=r"`s` == '0\.5'"):
        check_scalar("s", "0.5")
    with pytest.raises(InputError, match=r"`s` == nan"):
        check_scalar("s", math.nan)
    with pytest.raises(InputError, match=r"`s` == inf"):
        check_scalar("s", math.inf)
    assert math.isinf(check_scalar("s", math.inf, allow_inf=True))
    with pytest.raises(InputError, match=r"`s` == 1000000"):  # beyond float range, cut short
        check_scalar("s", 10 ** 400)


def test_check_array_refuses_strings_bools_and_ragged():
    """np.asarray("1.5", float) is 1.5: a string where a number goes would pass unnoticed."""
    from meanfield._validate import InputTypeError

    for value, match in (("1.5", "not a string"), ([True], "not bools"),
                         ([[1.0], [1.0, 2.0]], "not ragged")):
        with pytest.raises(InputTypeError, match=r"`sigma_b` .*" + match):
            mf.q_star("tanh", 1.0, value)
    with pytest.raises(ValueError, match=r"`sigma_w` == .*must be a scalar"):
        mf.fixed_points("tanh", [1.0, 2.0], 0.0)


def test_sparsity_as_numpy_scalar_and_bad_sparsity_named():
    """From issue 15: np.float32(0.5) was refused by train; "abc" failed converting, None with a
    KeyError inside a worker. Now one check, naming `sparsity`."""
    df = mf.kept_per_layer("tanh", 4, 2, 1.0, 0.1, np.float32(0.5), trials=1, batch=2, classes=2)
    assert len(df) == 3
    for bad in ("abc", None, [0.5, None], 1.0, -0.1, math.nan):
        with pytest.raises((ValueError, TypeError), match=r"`sparsity` =="):
            mf.kept_per_layer("tanh", 4, 2, 1.0, 0.1, bad, trials=1, batch=2, classes=2)


def test_one_list_of_methods_architectures_and_presets():
    """The lists live in one place each; the CLI's choices are those lists."""
    from meanfield import cli
    from meanfield.nets import ARCHS
    from meanfield.pruning import METHODS
    from meanfield.theory import SIGMA_W_PRESETS

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    train = {a.dest: a for a in sub["train"]._actions}
    assert tuple(train["arch"].choices) == ARCHS
    assert tuple(train["method"].choices) == ("none", *METHODS)
    assert tuple(train["init"].choices) == ("eoc", *SIGMA_W_PRESETS)
    assert tuple({a.dest: a for a in sub["propagate"]._actions}["arch"].choices) == ARCHS


def test_resolve_sigma_w_and_its_inverse():
    from meanfield.theory import SIGMA_W_PRESETS, preset_name, resolve_sigma_w

    sw_eoc = mf.eoc("tanh", 0.3)[0]
    assert resolve_sigma_w("tanh", "eoc", 0.3) == sw_eoc
    assert resolve_sigma_w("tanh", "ordered", 0.3) == SIGMA_W_PRESETS["ordered"]
    assert resolve_sigma_w("tanh", np.float32(1.5), 0.3) == 1.5
    assert preset_name("tanh", sw_eoc, 0.3) == "eoc"
    assert preset_name("tanh", 3.0, 0.3) == "chaotic"
    assert preset_name("tanh", 1.2, 0.3) is None  # was "eoc" for any σ_w but 0.8 and 3.0
    with pytest.raises(ValueError, match=r"`sigma_w` == 'edge': must be a number > 0 or one of"):
        resolve_sigma_w("tanh", "edge", 0.3)
    with pytest.raises(ValueError, match=r"`sigma_b` == 0\.3: relu has a single EOC point"):
        mf.simulate_critical_sparsity("relu", 4, 2, "eoc", 0.3, trials=1)
    with pytest.warns(RuntimeWarning, match="no EOC point"), pytest.raises(
            ValueError, match=r"`sigma_w` == 'eoc': softplus has no EOC point at sigma_b=0\.0"):
        mf.simulate_critical_sparsity("softplus", 4, 2, "eoc", 0.0, trials=1)


def test_studies_label_only_named_initialisations():
    """simulations' phase_names labelled every σ_w but 0.8 and 3.0 "eoc"; an unknown σ_w now
    raises instead of being averaged with the EOC rows."""
    import pandas as pd

    from simulations._common import phase_names

    sw_eoc = mf.eoc("tanh", 0.3)[0]
    df = pd.DataFrame({"activation": "tanh", "sigma_w": [0.8, sw_eoc, 3.0], "sigma_b": 0.3})
    assert phase_names(df) == ["ordered", "eoc", "chaotic"]
    with pytest.raises(ValueError, match=r"sigma_w = 1\.2 .* none of the named"):
        phase_names(df.assign(sigma_w=[0.8, 1.2, 3.0]))


def test_fixed_point_beyond_the_solvers_range():
    """tanh is bounded, so q* <= σ_b² + σ_w² is finite for every σ_w; the compiled solvers stop at
    q = 1e12 and called σ_w = 1e9 'no fixed point' (q* = inf, phase 'unbounded')."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NoFixedPointWarning any more
        q = mf.q_star("tanh", 1e9, 0.3)
        assert q == pytest.approx(0.09 + 1e18 * mf.q_map("tanh", q, 1.0, 0.0), rel=1e-13)
        assert mf.phase("tanh", 1e9, 0.3) == "chaotic"
        assert mf.q_star("silu", 1.0, 1e7) == pytest.approx(2e14, rel=1e-12)  # F_q ≈ σ_b² + q/2
    with pytest.warns(mf.NoFixedPointWarning):  # truly divergent stays so
        assert math.isinf(mf.q_star("silu", 5.0, 0.3))


def test_eoc_beyond_the_scan_and_no_silent_nan():
    """The EOC scan stopped at q = 1e8: tanh at σ_b = 1e5 came back (nan, nan), silently."""
    sw, q = mf.eoc("tanh", 1e5)
    assert mf.chi_1("tanh", sw, 1e5) == pytest.approx(1.0, abs=1e-9)
    assert q == pytest.approx(mf.q_star("tanh", sw, 1e5), rel=1e-9)
    with pytest.warns(RuntimeWarning, match=r"no EOC point found at sigma_b=0\.0"):
        assert math.isnan(mf.eoc("softplus", 0.0)[0])
    with pytest.warns(RuntimeWarning, match=r"no EOC point"):  # rounding noise is no root
        assert math.isnan(mf.eoc("softplus", 0.1)[0])


def test_overflowing_float32_trials_are_refused_not_counted():
    """σ_w = 1e38 overflows a float32 network: its SNIP scores are nan, and s_cr came out 0."""
    with pytest.raises(ValueError, match=r"`sigma_w` == 1e\+38.*overflow"):
        mf.simulate_critical_sparsity("tanh", 10, 5, 1e38, 0.3, trials=1)
    with pytest.raises(ValueError, match=r"`sigma_w` == 1e\+38.*overflow"):
        mf.kept_per_layer("tanh", 10, 5, 1e38, 0.3, 0.5, trials=1)
