"""Inputs at the edges of the theory wing, found by fuzzing the public API and the command line:

* q = 0 without bias, where the correlation map is 0/0 (its limit q → 0 is the value);
* variances whose products (√(q_a q_b), σ_w² E[φ²]) over- or underflow;
* activation specs, parsed by one strict rule;
* requests that cannot finish: a depth of 10⁹, a grid of 10⁹ points.

References are independent of the code under test: the same map at a tiny q > 0, positive
homogeneity (ReLU, leaky ReLU, linear), closed forms in mpmath, and the local slopes of φ at 0.
"""

import ast
import contextlib
import io
import math
import pathlib
import warnings

import mpmath as mp
import numpy as np
import pytest

import meanfield as mf
from meanfield._validate import InputError, InputTypeError
from meanfield.cli import main as cli_main
from tests._timeouts import time_limit

SMOOTH = ["tanh", "erf", "gelu", "silu", "hard_tanh", "linear"]  # φ(0) = 0, φ'(0) ≠ 0, smooth at 0
KINKED = ["relu", "leaky_relu:0.2", "elu:0.5", "selu"]            # φ(0) = 0, φ' jumps at 0
C = np.array([-1.0, -0.7, 0.0, 0.3, 0.9, 1.0])
SELU_ALPHA = 1.6732632423543772848170429916717




# ------------------------------------------------------------------------------------------------
# q = 0 without bias: the limit q → 0
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("act", SMOOTH + KINKED)
def test_c_map_at_q_zero_is_its_limit(act):
    """F_c(c; 0) with σ_b = 0 is 0/0; the value is the limit, F_c at a tiny q (off by O(q) for a
    smooth φ, O(√q) at a kink)."""
    tiny = 1e-24 if act in SMOOTH else 1e-30
    got = mf.c_map(act, C, 0.7, 0.0, q=0.0)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, mf.c_map(act, C, 0.7, 0.0, q=tiny), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("act", SMOOTH)
def test_c_map_at_q_zero_is_the_identity_for_phi_linear_at_zero(act):
    """φ(x) = φ'(0) x + O(x²) with φ'(0) ≠ 0: the map tends to the linear one, c ↦ c."""
    np.testing.assert_allclose(mf.c_map(act, C, 0.7, 0.0, q=0.0), C, rtol=0, atol=2e-16)


@pytest.mark.parametrize("act, slope", [("relu", 0.0), ("leaky_relu:0.2", 0.2), ("elu:0.5", 0.5),
                                        ("selu", 1 / SELU_ALPHA)])
def test_c_map_at_q_zero_for_a_kink_is_the_leaky_relu_map(act, slope):
    """Near 0 a φ with one-sided slopes s₊, s₋ is s₊x⁺ + s₋x⁻: its correlation map is leaky
    ReLU's with slope s₋/s₊ (or s₊/s₋: φ(−x) has the same map), which is the same at every q."""
    ref = mf.c_map("relu" if slope == 0 else f"leaky_relu:{slope!r}", C, 1.0, 0.0, q=1.0)
    np.testing.assert_allclose(mf.c_map(act, C, 0.7, 0.0, q=0.0), ref, rtol=1e-13, atol=1e-15)


def test_c_map_at_its_fixed_point_q_star_zero():
    """Ordered phase without bias: q* = 0, and c_map(q=None) is the limit there, not NaN."""
    assert mf.q_star("tanh", 0.5, 0.0) == 0.0
    np.testing.assert_allclose(mf.c_map("tanh", C, 0.5, 0.0), C, rtol=0, atol=2e-16)
    np.testing.assert_allclose(mf.c_map("relu", C, 1.0, 0.0), mf.c_map("relu", C, 1.0, 0.0, q=1.0),
                               rtol=1e-14)


def test_c_map_at_q_zero_with_bias_or_phi0_is_one():
    """No 0/0 there: both inputs are the same constant after the layer (σ_b² + σ_w² φ(0)²)."""
    assert mf.c_map("tanh", 0.3, 0.7, 0.1, q=0.0) == 1.0
    assert mf.c_map("sigmoid", 0.3, 0.7, 0.0, q=0.0) == 1.0


def test_c_map_at_q_zero_is_refused_where_phi_has_no_slope_at_zero():
    """φ(0) = φ'(0±) = 0 (x³): the limit depends on higher derivatives; refused, naming q."""
    cube = mf.Activation(lambda x: x * x * x, lambda x: 3.0 * x * x, name="cube")
    with pytest.raises(InputError, match=r"`q` == 0\.0"):
        mf.c_map(cube, 0.5, 1.0, 0.0, q=0.0)
    with pytest.raises(InputError, match=r"\(`sigma_w`, `sigma_b`\) == \(0\.1, 0\.0\), where q\* == 0\.0"):
        mf.c_map(cube, 0.5, 0.1, 0.0)  # q = q* = 0 (E[x⁶] = 15: F_q(q) = 0.15 q³ from q⁰ = 1)
    with pytest.raises(InputError, match=r"\(`q0`, `sigma_b`\) == \(0\.0, 0\.0\)"):
        mf.propagate(cube, 0.0, 0.5, 1.0, 0.0, 3)
    assert mf.c_map(cube, 0.5, 1.0, 0.2, q=0.0) == 1.0  # with a bias there is no 0/0
    # a ResNet block keeps the skip: (c q + o(q)) / (q + o(q)) → c
    assert mf.c_map(cube, 0.5, 1.0, 0.0, q=0.0, arch="resnet") == pytest.approx(0.5, abs=1e-15)


def test_propagate_through_the_underflow_of_q():
    """Ordered phase without bias: q^l → 0 geometrically and underflows (~500 layers for tanh);
    c^l stays defined, and follows F_c layer by layer."""
    with time_limit(60):
        q, c = mf.propagate("tanh", 1.0, np.array([0.2, 0.5, 0.9]), 0.5, 0.0, 700)
    assert np.isfinite(c).all() and (q[-1] == 0.0).all()
    # below q ~ 1e-150 F_c(c; q) = c + O(q): c^l stays put (but for an ulp of rounding a layer)
    np.testing.assert_allclose(c[-1], c[300], rtol=1e-12)
    for layer in (1, 5, 400, 600, 700):
        np.testing.assert_allclose(c[layer], mf.c_map("tanh", c[layer - 1], 0.5, 0.0,
                                                       q=q[layer - 1]), rtol=1e-14)


def test_propagate_relu_is_independent_of_q_even_after_it_underflows():
    """ReLU without bias is positively homogeneous: c^l = F_c(c^{l-1}) whatever q^l, also after
    q^l = 0.125^l has underflowed (l > 360)."""
    with time_limit(60):
        q, c = mf.propagate("relu", 1.0, 0.3, 0.5, 0.0, 600)
    assert q[-1] == 0.0 and np.isfinite(c).all()
    np.testing.assert_allclose(c[1:], mf.c_map("relu", c[:-1], 1.0, 0.0, q=1.0), rtol=1e-14)


@pytest.mark.parametrize("act", ["tanh", "relu", "elu:0.5"])
@pytest.mark.parametrize("arch", ["resnet", "stable_resnet"])
def test_propagate_resnet_from_q_zero_is_its_limit(act, arch):
    q, c = mf.propagate(act, 0.0, np.array([-0.4, 0.5]), 0.9, 0.0, 5, arch=arch)
    _, c_ref = mf.propagate(act, 1e-30, np.array([-0.4, 0.5]), 0.9, 0.0, 5, arch=arch)
    assert (q == 0.0).all()
    np.testing.assert_allclose(c, c_ref, rtol=1e-9)


@pytest.mark.parametrize("act", KINKED + ["tanh", "gelu"])
@pytest.mark.parametrize("c", [None, -0.5, 0.3])
def test_backward_gains_at_q_zero_are_their_limit(act, c):
    """E[φ'(√q Z)²] → (φ'(0+)² + φ'(0−)²)/2 as q → 0 (each side has probability 1/2), not the
    one-sided φ'(0)²."""
    got = mf.backward_gains(act, 0.0, 0.9, c=c)
    np.testing.assert_allclose(got, mf.backward_gains(act, 1e-30, 0.9, c=c), rtol=1e-9)


@pytest.mark.parametrize("act", ["selu", "elu:0.5"])
def test_eoc_at_zero_bias_is_continuous_for_a_kink(act):
    """At σ_b = 0 the EOC's q* is 0 and σ_w = 1/√lim E[φ'²], the limit of the curve as σ_b → 0:
    χ₁ = 1 there (the one-sided φ'(0)² gave a σ_w off the EOC)."""
    sw0, q0 = mf.eoc(act, 0.0)
    sw_near, _ = mf.eoc(act, 1e-9)  # q* ~ 1e-12: σ_w off by O(√q*)
    assert q0 == 0.0
    assert sw0 == pytest.approx(sw_near, rel=1e-4)
    assert mf.chi_1(act, sw0, 0.0) == pytest.approx(1.0, abs=1e-6)


def test_eoc_rate_at_zero_bias_where_q_star_is_zero_is_refused():
    """On the EOC at σ_b = 0 (φ(0) = 0, not ReLU-like) q* = 0 and F_c''(1) = 0: no β/l law. The
    solvers' q* of rounding size (1.5e-16 for tanh) gave β ~ 1e31."""
    for act in ("tanh", "erf", "selu"):
        sw, _ = mf.eoc(act, 0.0)
        with pytest.raises(InputError, match=r"\(`sigma_w`, `sigma_b`\) == .*q\* = 0"):
            mf.eoc_rate(act, sw, 0.0)
    assert mf.eoc_rate("relu", 2 ** 0.5, 0.0) == pytest.approx(9 * math.pi ** 2 / 2, rel=1e-14)


@pytest.mark.parametrize("act", SMOOTH + KINKED)
def test_fixed_point_quantities_at_q_star_zero_are_finite(act):
    """Ordered phase without bias, q* = 0: c* = 1 and χ_c = χ₁ = σ_w² lim E[φ'²], no 0/0."""
    sw = 0.5
    assert mf.q_star(act, sw, 0.0) == 0.0
    assert mf.c_star(act, sw, 0.0) == 1.0
    chi = mf.chi_1(act, sw, 0.0)
    assert mf.chi_c(act, sw, 0.0) == chi
    assert np.isfinite(mf.depth_scales(act, sw, 0.0)).all()
    assert chi == pytest.approx(mf.backward_gains(act, 0.0, sw), rel=1e-14)


# ------------------------------------------------------------------------------------------------
# Products of variances that over- or underflow
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sw", [1e-160, 1e-200, 1e-300])
def test_c_map_without_bias_does_not_depend_on_sigma_w(sw):
    """σ_b = 0: σ_w² cancels from F_c; σ_w² E[φ²] underflowing must not make it 0/0 or noise."""
    ref = mf.c_map("tanh", C, 1.0, 0.0, q=1.0)
    np.testing.assert_allclose(mf.c_map("tanh", C, sw, 0.0, q=1.0), ref, rtol=1e-14)


@pytest.mark.parametrize("act", ["relu", "leaky_relu:0.2", "linear"])
@pytest.mark.parametrize("q, sw", [(1e300, 1e10), (1e300, 1.0), (1e-300, 1.0), (1e-300, 1e-10)])
def test_c_map_of_homogeneous_activations_at_extreme_scales(act, q, sw):
    ref = mf.c_map(act, C, 1.0, 0.0, q=1.0)
    np.testing.assert_allclose(mf.c_map(act, C, sw, 0.0, q=q), ref, rtol=1e-14)


@pytest.mark.parametrize("q", [1e-300, 1e-200, 1e160, 1e300])
def test_erf_c_map_at_extreme_q_against_mpmath(q):
    mp.mp.dps = 40
    qm = mp.mpf(q)

    def k(c):
        return mp.asin(2 * qm * mp.mpf(c) / (1 + 2 * qm))

    ref = [float(k(c) / k(1)) for c in C]
    np.testing.assert_allclose(mf.c_map("erf", C, 1.0, 0.0, q=q), ref, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e-160, 1e160, 1e200, 1e300])
@pytest.mark.parametrize("act", ["relu", "leaky_relu:0.2", "linear"])
def test_cov_map_scales_for_homogeneous_activations(scale, act):
    """Without bias, the covariance map of a positively homogeneous φ at (s q_a, s q_b, s cov) is
    s times the one at (q_a, q_b, cov): no overflow of q_a q_b, no underflow."""
    ref = np.array(mf.cov_map(act, 0.7, 1.3, 0.4, 1.1, 0.0))
    got = np.array(mf.cov_map(act, 0.7 * scale, 1.3 * scale, 0.4 * scale, 1.1, 0.0))
    np.testing.assert_allclose(got / scale, ref, rtol=1e-13)


@pytest.mark.parametrize("qa, qb, cov", [(1e-200, 1e-200, 0.5e-200), (1e200, 1e200, 0.5e200),
                                         (1e300, 1e300, -0.9e300), (1e-200, 1e200, 0.5),
                                         (1e-300, 1e-100, 1e-201)])
def test_erf_cov_map_at_extreme_variances_against_mpmath(qa, qb, cov):
    mp.mp.dps = 40
    a, b, v = mp.mpf(qa), mp.mpf(qb), mp.mpf(cov)
    ref = float(2 / mp.pi * mp.asin(2 * v / mp.sqrt((1 + 2 * a) * (1 + 2 * b))))
    assert mf.cov_map("erf", qa, qb, cov, 1.0, 0.0)[2] == pytest.approx(ref, rel=1e-13)


@pytest.mark.parametrize("scale, ref", [(1e-200, 0.5e-200), (1e160, 1 / 3), (1e200, 1 / 3)])
def test_tanh_cov_map_at_extreme_variances(scale, ref):
    """tanh is linear near 0 (E[φ(u_a)φ(u_b)] → cov) and a sign at large scale (→ (2/π) arcsin c);
    c = cov/√(q_a q_b) = 1/2 must not be lost to the overflow of q_a q_b."""
    got = mf.cov_map("tanh", scale, scale, 0.5 * scale, 1.0, 0.0)[2]
    assert got == pytest.approx(ref, rel=1e-12)


def test_cov_map_bound_is_checked_at_every_scale():
    with pytest.raises(InputError, match=r"`cov` == 2e-200"):
        mf.cov_map("tanh", 1e-200, 1e-200, 2e-200, 1.0, 0.0)
    with pytest.raises(InputError, match=r"`cov` == 2e\+200"):
        mf.cov_map("tanh", 1e200, 1e200, 2e200, 1.0, 0.0)


@pytest.mark.parametrize("act", ["erf", "tanh", "relu"])
def test_backward_gains_at_huge_q_are_finite(act):
    got = mf.backward_gains(act, 1e300, 0.9, c=0.3)
    assert np.isfinite(got) and got >= 0.0
    if act == "erf":  # (4/π) σ_w² / √((1+2q)² − 4q²c²), in mpmath
        mp.mp.dps = 40
        q = mp.mpf(1e300)
        ref = float(mp.mpf(0.9) ** 2 * 4 / mp.pi / mp.sqrt((1 + 2 * q) ** 2 - 4 * q * q * mp.mpf(0.3) ** 2))
        assert got == pytest.approx(ref, rel=1e-13)


# ------------------------------------------------------------------------------------------------
# Activation specs: one strict rule for every parameter
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, family, param", [
    ("leaky_relu:1e-2", "leaky_relu", 0.01), ("Leaky-ReLU:1E-2", "leaky_relu", 0.01),
    ("leaky_relu:0.1", "leaky_relu", 0.1), ("leaky_relu:0", "leaky_relu", 0.0),
    ("elu:.5", "elu", 0.5), ("elu:+2", "elu", 2.0), ("elu: 0.5 ", "elu", 0.5), ("elu:2.", "elu", 2.0),
    ("elu:5e-1", "elu", 0.5), ("elu:1e+0", "elu", 1.0), ("leaky_relu", "leaky_relu", 0.01),
])
def test_activation_parameters_read_by_one_rule(spec, family, param):
    act = mf.get_activation(spec)
    assert act.name.partition(":")[0] == family and act.param == param


@pytest.mark.parametrize("spec", [
    "elu:1_0", "leaky_relu:0_1", "elu:nan", "elu:NaN", "elu:inf", "elu:-inf", "elu:infinity",
    "elu:0x1", "elu:1e400", "elu:", "elu:1,5", "elu:1e", "elu:e1", "elu:--1", "elu:1 0",
    "elu:\uff11", "elu:\u0661", "leaky_relu:-0.1", "leaky_relu:1", "leaky_relu:-1e-2", "elu:0",
    "elu:-1", "tanh:2", "tanh:", "elu:1:2",
])
def test_bad_activation_parameters_are_refused_naming_activation(spec):
    with pytest.raises(InputError, match=r"`activation` == "):
        mf.get_activation(spec)


def test_activation_errors_are_input_errors():
    with pytest.raises(InputTypeError, match=r"`activation` == 3"):
        mf.get_activation(3)
    with pytest.raises(InputError, match=r"`activation` == 'tanhh': unknown"):
        mf.get_activation("tanhh")
    with pytest.raises(InputTypeError, match=r"`phi` == 3"):
        mf.Activation(3, math.cos)
    with pytest.raises(InputTypeError, match=r"`dphi` == 'x'"):
        mf.Activation(math.sin, "x")
    with pytest.raises(InputTypeError, match=r"`phi`/`dphi`.*could not be compiled"):
        mf.Activation(lambda x: {"a": x}, lambda x: 1.0)
    act = mf.Activation(math.sin, math.cos, name="sine")
    with pytest.raises(InputError, match=r"`k` == 3: must be 0, 1 or 2"):
        act(0.5, 3)
    with pytest.raises(InputError, match=r"`k` == 2: .*without `d2phi`"):
        act(0.5, 2)


def test_no_plain_value_or_type_error_left_in_the_theory_wing():
    """Errors a user can cause are InputError / InputTypeError (the CLI tells them from bugs by
    their type)."""
    root = pathlib.Path(mf.__file__).parent
    files = [root / "activations.py", *sorted((root / "theory").glob("*.py"))]
    plain = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(exc, ast.Name) and exc.id in ("ValueError", "TypeError"):
                    plain.append(f"{path.name}:{node.lineno}")
    assert plain == []


# ------------------------------------------------------------------------------------------------
# Requests that cannot finish
# ------------------------------------------------------------------------------------------------

def test_propagate_refuses_a_depth_beyond_its_bound():
    with time_limit(20), pytest.raises(InputError, match=r"`depth` == 1000000000"):
        mf.propagate("tanh", 1.0, 0.5, 1.0, 0.0, 10 ** 9)
    with time_limit(20), pytest.raises(InputError, match=r"`depth` == 1000001"):
        mf.propagate("tanh", 1.0, 0.5, 1.0, 0.0, 10 ** 6 + 1, arch="resnet")


def test_propagate_past_the_fixed_point_repeats_it_quickly_and_exactly():
    """Once a layer repeats the previous one bit for bit, every later layer does: the rows are
    the same as computed one by one, and a deep ordered-phase run ends at once."""
    short = mf.propagate("tanh", 1.0, np.array([0.1, 0.6]), 0.8, 0.3, 300)
    with time_limit(20):
        deep = mf.propagate("tanh", 1.0, np.array([0.1, 0.6]), 0.8, 0.3, 10 ** 6)
    for s, d in zip(short, deep):
        np.testing.assert_array_equal(d[:301], s)
        np.testing.assert_array_equal(d[-1], s[-1])


def test_a_broadcast_grid_that_cannot_fit_is_refused():
    with time_limit(20), pytest.raises(InputError, match=r"needs [0-9.e+]+ GiB of memory"):
        mf.q_map("tanh", np.ones((10 ** 6, 1)), np.ones(10 ** 6), 0.1)
    with time_limit(20), pytest.raises(InputError, match=r"needs [0-9.e+]+ GiB of memory"):
        mf.chi_1("tanh", np.ones((10 ** 6, 1)), np.ones(10 ** 6))


def _cli(argv):
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err), \
            time_limit(30), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = cli_main(argv)
    return code, err.getvalue()


@pytest.mark.parametrize("argv, needle", [
    (["info", "--sigma-w", "0:1:1000000000"], "--sigma-w"),
    (["info", "--sigma-w", "1", "--sigma-b", "0:1:1000000000"], "--sigma-b"),
    (["info", "--sigma-w", "0:1:100000", "--sigma-b", "0:1:100000"], "--sigma-w"),
    (["phase-diagram", "--sigma-w", "0:1:1000000000"], "--sigma-w"),
    (["phase-diagram", "--sigma-w", "0:1:100000", "--sigma-b", "0:1:100000"], "sigma_w"),
    (["eoc", "--sigma-b", "0:1:1000000000"], "--sigma-b"),
    (["propagate", "--sigma-w", "1", "--c0", "0:1:1000000000"], "--c0"),
    (["propagate", "--sigma-w", "1", "--depth", "1000000000"], "`depth` == 1000000000"),
    (["propagate", "--sigma-w", "1", "--depth", "1_000"], "--depth"),
    (["scr", "--width", "4", "--depth", "2", "--sigma-w", "0:1:1000000000"], "--sigma-w"),
    (["kept", "--width", "4", "--depth", "2", "--sigma-w", "1", "--sparsity", "0:1:1000000000"],
     "--sparsity"),
    (["info", "--sigma-w", "1_0"], "--sigma-w"),
    (["info", "--sigma-w", "0:1:1_0"], "--sigma-w"),
    (["info", "--sigma-w", "0:1_0:3"], "--sigma-w"),
    (["info", "--sigma-w", "\uff11"], "--sigma-w"),
    (["info", "--sigma-w", "nan"], "--sigma-w"),
    (["info", "--sigma-w", "1e400"], "--sigma-w"),
    (["info", "--sigma-w", "0:1:-3"], "--sigma-w"),
    (["info", "--sigma-w", "0:1:2.5"], "--sigma-w"),
    (["scr", "--width", "1_0", "--depth", "2", "--sigma-w", "1"], "--width"),
    (["info", "-a", "elu:1_0", "--sigma-w", "1"], "`activation` == 'elu:1_0'"),
])
def test_cli_refuses_at_parse_time_in_one_line(argv, needle):
    code, err = _cli(argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and needle in lines[0], err


def test_cli_numbers_by_the_strict_rule():
    """What the rule accepts still works: signs, exponents, a leading point, spaces in lists."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main(["info", "--sigma-w", "8e-1, +3", "--sigma-b", ".3"]) == 0
    assert out.getvalue().count("\n") == 3
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main(["info", "-a", "leaky_relu:1e-2", "--sigma-w", "0.5:1.5:3"]) == 0
