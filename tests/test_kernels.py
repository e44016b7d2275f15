"""The passes' kernels: named structures, few arguments, the activation called by its address."""

import ast
import math
import pathlib

import numpy as np
import pytest
from numba import njit, types

import meanfield as mf
from meanfield._jit import call_activation
from meanfield.activations import KERNEL_SIGNATURE, get_activation
from meanfield.nets import forward, init_network, loss_and_grads
from meanfield.nets._layer import Block, blocks, is_tanh, phi_of

PACKAGE = pathlib.Path(mf.__file__).parent
#: the modules of the passes and of what calls them (training, pruning, nets)
PASS_MODULES = sorted([*PACKAGE.glob("nets/*.py"), PACKAGE / "training" / "_sparse.py",
                       PACKAGE / "training" / "_sgd.py", *PACKAGE.glob("pruning/*.py")])


def _kernels(path):
    """(name, number of arguments) of each numba-compiled function of a module."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(
                "jit" in ast.unparse(d) for d in node.decorator_list):
            yield node.name, len(node.args.args)


def test_no_kernel_of_the_passes_takes_more_than_8_arguments():
    # long positional lists let two arrays of one dtype be swapped silently: the kernels take
    # named structures instead (meanfield.nets._layer)
    found = {f"{p.relative_to(PACKAGE)}:{name}": n for p in PASS_MODULES for name, n in _kernels(p)}
    assert len(found) > 20  # the scan sees the kernels
    assert {k: n for k, n in found.items() if n > 8} == {}


@njit
def _by_address(address, x, p, k, out):
    for i in range(x.size):
        out[i] = call_activation(address, x[i], p, k)


def _user_softsign():
    return mf.Activation(lambda x: x / (1.0 + abs(x)), lambda x: 1.0 / (1.0 + abs(x)) ** 2,
                         kinks=[0.0])


@pytest.mark.parametrize("name", ["tanh", "relu", "elu:0.5", "leaky_relu:0.1", "silu", "erf",
                                  "user"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_activation_called_by_its_address_is_its_kernel_bit_for_bit(name, dtype):
    act = _user_softsign() if name == "user" else get_activation(name)
    x = np.concatenate([np.linspace(-6, 6, 241), [0.0, -0.0, 1e-30, 40.0]]).astype(dtype)
    for k in (0, 1):
        got = np.empty(x.size)
        _by_address(act.kernel.address, x, act.param, k, got)
        want = np.array([act.kernel.ctypes(float(v), act.param, k) for v in x])
        np.testing.assert_array_equal(got, want)


def test_the_address_call_assumes_the_kernel_signature():
    assert KERNEL_SIGNATURE == types.float64(types.float64, types.float64, types.int64)


def test_phi_and_blocks_describe_the_network():
    tanh, elu = get_activation("tanh"), get_activation("elu:0.5")
    assert is_tanh(tanh) and not is_tanh(elu)
    assert phi_of(tanh, np.float32) == (0, 0.0, np.float32(1))
    phi = phi_of(elu, np.float64)
    assert phi.kernel == elu.kernel.address and phi.p == 0.5 and phi.one.dtype == np.float64
    net = init_network("tanh", 4, 3, 1.0, 0.1, arch="stable_resnet", rng=np.random.default_rng(0))
    c = 1 / math.sqrt(3)
    assert blocks(net) == (Block(False, c, True), Block(True, c, False), Block(True, c, False),
                           Block(False, 1.0, False))


def test_a_user_activation_runs_through_the_passes():
    # φ and φ' from the user's compiled kernel, by its address, in both passes
    act = _user_softsign()
    rng = np.random.default_rng(3)
    net = init_network(act, 6, 3, 1.2, 0.1, n_in=5, classes=3, arch="resnet", rng=rng,
                       dtype=np.float64)
    X, y = rng.standard_normal((7, 5)), rng.integers(3, size=7)

    def logits(weights):
        h = X @ weights[0].T + net.biases[0]
        for k in range(1, net.depth):
            h = h + (h / (1 + np.abs(h))) @ weights[k].T + net.biases[k]
        return (h / (1 + np.abs(h))) @ weights[-1].T + net.biases[-1]

    np.testing.assert_allclose(forward(net, X), logits(net.weights), rtol=1e-13, atol=1e-13)

    def loss(weights):
        z = logits(weights)
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))

    _, gw, _ = loss_and_grads(net, X, y)
    h, W = 1e-6, [w.copy() for w in net.weights]
    for k, (i, j) in [(0, (1, 2)), (1, (0, 5)), (3, (2, 4))]:
        W[k][i, j] += h
        up = loss(W)
        W[k][i, j] -= 2 * h
        down = loss(W)
        W[k][i, j] += h
        assert gw[k][i, j] == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-9)


def test_no_kernel_takes_a_function_inside_a_tuple():
    """numba types a function inside a tuple as an experimental first-class function and warns
    at every call (90 times in one prediction, and CI runs with warnings as errors): the kernels
    take φ as an argument of its own. The theory's maps, an EOC, a prediction and a trial run
    with that warning as an error."""
    import warnings

    from numba.core.errors import NumbaExperimentalFeatureWarning

    import meanfield as mf
    with warnings.catch_warnings():
        warnings.simplefilter("error", NumbaExperimentalFeatureWarning)
        mf.c_map("erf", 0.5, 1.3, 0.2)
        mf.eoc("swish", 1.0)
        mf.predict_critical_sparsity("softplus", 50, 5, 1.0, 0.3, batch=16)
        mf.simulate_critical_sparsity("selu", 20, 3, 1.0, 0.2, trials=2)
