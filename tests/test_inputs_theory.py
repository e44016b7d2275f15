"""Inputs at the edges of the theory wing, found by fuzzing the public API and the command line:

* q = 0 without bias, where the correlation map is 0/0 (its limit q → 0 is the value);
* variances whose products (√(q_a q_b), σ_w² E[φ²]) over- or underflow;
* activation specs, parsed by one strict rule;
* requests that cannot finish: a depth of 10⁹, a grid of 10⁹ points.

References are independent of the code under test: the same map at a tiny q > 0, positive
homogeneity (ReLU, leaky ReLU, linear), closed forms in mpmath, and the local slopes of φ at 0.
"""

import ast
import math
import pathlib

import pytest

import meanfield as mf
from meanfield._validate import InputError, InputTypeError

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
