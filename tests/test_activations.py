"""Activations: derivatives against mpmath, names, and user-defined activations through the maps."""

import math

import mpmath as mp
import numpy as np
import pytest
from conftest import assert_close

import meanfield as mf

MP = {
    "tanh": mp.tanh,
    "erf": mp.erf,
    "elu": lambda x: x if x > 0 else mp.expm1(x),
    "selu": lambda x: mp.mpf("1.0507009873554804934193349852946") * (
        x if x > 0 else mp.mpf("1.6732632423543772848170429916717") * mp.expm1(x)),
    "gelu": lambda x: x * mp.ncdf(x),
    "silu": lambda x: x / (1 + mp.exp(-x)),
    "softplus": lambda x: mp.log1p(mp.exp(x)),
    "sigmoid": lambda x: 1 / (1 + mp.exp(-x)),
    "relu": lambda x: max(x, 0),
    "leaky_relu:0.1": lambda x: x if x > 0 else x / 10,
    "hard_tanh": lambda x: min(max(x, -1), 1),
    "linear": lambda x: x,
}
X = [-7.3, -2.1, -0.4, 0.35, 1.7, 6.2]  # away from the kinks


@pytest.mark.parametrize("name", sorted(MP))
def test_derivatives_match_mpmath(name):
    mp.mp.dps = 30
    act = mf.get_activation(name)
    for k in (0, 1, 2):
        ref = [float(mp.diff(MP[name], mp.mpf(x), k)) for x in X]
        # exp(−x²) at |x| ≈ 7 carries x² · eps ≈ 5e-15 of rounding: the bound allows 1e-14
        assert_close(act(np.array(X), k), ref, 1e-14, 1e-30)  # mp.diff leaves ~1e-44 noise


def test_names_and_aliases():
    # an alias, or another spelling of the same parameter, gives the same object
    assert mf.get_activation("swish") is mf.get_activation("silu")
    assert mf.get_activation("swish").name == "silu"
    assert mf.get_activation("elu") is mf.get_activation("ELU:1.0")
    assert mf.get_activation("leaky_relu:0.1") is mf.get_activation("Leaky-ReLU:0.10")
    assert mf.get_activation("elu:0.5") is not mf.get_activation("elu")
    # names round the parameter to 6 digits; the objects keep it exact
    a, b = mf.get_activation("elu:0.1234567"), mf.get_activation("elu:0.1234568")
    assert a is not b and (a.param, b.param) == (0.1234567, 0.1234568)
    assert mf.get_activation("Leaky-ReLU:0.1").param == pytest.approx(0.1)
    assert mf.get_activation("elu:0.5")(-1.0) == pytest.approx(0.5 * math.expm1(-1.0), rel=1e-15)
    assert mf.get_activation("tanh") is mf.get_activation("tanh")
    assert set(mf.available_activations()) >= {"tanh", "relu", "elu", "silu", "gelu"}


def test_user_activation_matches_builtin():
    mine = mf.Activation(math.tanh, lambda x: 1.0 - math.tanh(x) ** 2,
                         lambda x: -2.0 * math.tanh(x) * (1.0 - math.tanh(x) ** 2), odd=True)
    for args in [(0.8, 0.3), (1.5, 0.3), (3.0, 0.3), (2.0, 0.0)]:
        assert_close(mf.q_star(mine, *args), mf.q_star("tanh", *args), 1e-15)
        assert_close(mf.chi_c(mine, *args), mf.chi_c("tanh", *args), 1e-14)
    assert_close(mf.c_map(mine, 0.3, 1.2, 0.1, q=2.0), mf.c_map("tanh", 0.3, 1.2, 0.1, q=2.0), 1e-15)


def test_user_kinked_activation_matches_relu_closed_form():
    mine = mf.Activation(lambda x: max(x, 0.0), lambda x: 1.0 if x > 0 else 0.0, kinks=[0.0],
                         scale=math.inf)
    c = np.linspace(-1, 1, 9)
    for q in (0.01, 1.0, 300.0):
        assert_close(mf.c_map(mine, c, 1.2, 0.2, q=q), mf.c_map("relu", c, 1.2, 0.2, q=q),
                     1e-13, 1e-16)


def test_eoc_rate_needs_second_derivative():
    mine = mf.Activation(math.tanh, lambda x: 1.0 - math.tanh(x) ** 2)
    with pytest.raises(ValueError, match="d2phi"):
        mine(0.3, k=2)


def _dtanh(x):
    return 1.0 - math.tanh(x) ** 2


@pytest.mark.parametrize("phi, match", [
    (lambda x: math.tanh(x) + 0.01, r"is not odd, φ\(0\.137\)"),        # not odd anywhere
    (lambda x: math.tanh(x) if x < 2 else 1.0, r"is not odd, φ\(2\.73\)"),  # odd near 0 only
    (lambda x: math.log(x), r"fails at x = ±0\.137 \(ValueError"),        # undefined at −x
    # odd at the five fixed points (all below 7), not beyond: caught by the grid up to 30
    (lambda x: math.tanh(x) if x > -7.0 else -0.5, r"is not odd, φ\((7|8|9|[12]\d)\.\d+\)"),
])
def test_odd_flag_is_checked_on_construction(phi, match):
    """``odd=True`` makes the maps take c* = 0 at sigma_b = 0: a wrong flag must not get through."""
    with pytest.raises(ValueError, match=r"`odd` == True: .*" + match):
        mf.Activation(phi, _dtanh, odd=True)
    mf.Activation(phi, _dtanh)  # the default, odd=False, is never refused


def test_odd_flag_only_shortcuts_c_star():
    """For an odd φ the flag gives the c* the solver finds without it (0 at sigma_b = 0)."""
    flagged = mf.Activation(math.tanh, _dtanh, odd=True, name="tanh_odd")
    solved = mf.Activation(math.tanh, _dtanh, name="tanh_solved")
    sw = [1.5, 2.0, 3.0]  # chaotic at sigma_b = 0
    assert mf.c_star(flagged, sw, 0.0).tolist() == [0.0, 0.0, 0.0]
    assert_close(mf.c_star(solved, sw, 0.0), [0.0, 0.0, 0.0], 0.0, 1e-12)
    assert_close(mf.chi_c(flagged, sw, 0.0), mf.chi_c(solved, sw, 0.0), 1e-12)


@pytest.mark.parametrize("name", mf.available_activations())
def test_builtin_odd_flags_match_the_functions(name):
    act = mf.get_activation(name)
    x = np.array(X)
    assert act.odd == bool(np.allclose(act(-x), -act(x), rtol=1e-15, atol=0.0))
