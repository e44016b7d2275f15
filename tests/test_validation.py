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
    with pytest.raises(ValueError, match=r"`cov` == 3\.0: must satisfy"):
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
