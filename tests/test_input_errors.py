"""One validation path (issue 21, Deliver 2): every error a user can cause is an InputError /
InputTypeError naming the parameter, raised at the public edge, and the CLI tells usage errors from
bugs by the exception's type alone."""

import numpy as np
import pytest

import meanfield as mf
from meanfield import cli
from meanfield._validate import InputError, InputTypeError
from meanfield.sweeps import TrialStore


def _digits(n=40, features=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, features)).astype(np.float32), rng.integers(0, 3, n)


@pytest.mark.parametrize("store, err", [(123, InputTypeError), (1.5, InputTypeError)])
def test_a_store_that_is_not_a_path(store, err):
    with pytest.raises(err, match=r"`store` == "):
        mf.simulate_critical_sparsity("tanh", 8, 2, 1.0, 0.1, trials=1, batch=4, store=store)


def test_a_store_of_other_columns_is_named(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="other.csv"):
        TrialStore(path, ("a",))


def test_train_refuses_test_inputs_with_other_features():
    X, y = _digits()
    Xt, yt = _digits(features=5, seed=1)
    with pytest.raises(InputError, match=r"`dataset` test inputs have 5 features, the training inputs 6"):
        mf.train("tanh", (X, y, Xt, yt), width=8, depth=2, sigma_w=1.0, sigma_b=0.1, epochs=1)


def test_train_refuses_an_empty_training_set():
    X, y = _digits()
    with pytest.raises(InputError, match=r"`dataset` train part has 0 examples"):
        mf.train("tanh", (X[:0], y[:0], X, y), width=8, depth=2, sigma_w=1.0, sigma_b=0.1, epochs=1)


@pytest.mark.parametrize("bad", ["complex", "nan", "bool"])
def test_train_refuses_inputs_that_are_not_finite_reals(bad):
    X, y = _digits()
    if bad == "complex":
        Xb, err = X + 1j, InputTypeError
    elif bad == "bool":
        Xb, err = X > 0, InputTypeError
    else:
        Xb, err = X.copy(), InputError
        Xb[3, 2] = np.nan
    with pytest.raises(err, match=r"`dataset` train inputs"):
        mf.train("tanh", (Xb, y, X, y), width=8, depth=2, sigma_w=1.0, sigma_b=0.1, epochs=1)


@pytest.mark.parametrize("name", ["teacher:10:2:0", "teacher:1_0", "teacher:0", "teacher:5:1",
                                  "teacher:x", "teacher:-3", "teacher: 4"])
def test_teacher_specs_are_parsed_strictly(name):
    with pytest.raises(InputError, match=r"`dataset` == "):
        mf.load_dataset(name)


def test_teacher_spec_with_its_two_integers():
    X_train, y_train, X_test, _ = mf.load_dataset("teacher:8:3")
    assert X_train.shape[1] == X_test.shape[1] == 8
    assert set(np.unique(y_train)) <= {0, 1, 2}


def test_the_cli_tells_usage_errors_by_type_not_by_message():
    assert cli._is_usage_error(InputError("anything at all"))
    assert cli._is_usage_error(InputTypeError("anything at all"))
    # a plain ValueError worded like a usage error is still a bug: only the type counts
    assert not cli._is_usage_error(ValueError("`width` == -1: must be >= 1"))
    assert not cli._is_usage_error(TypeError("`store` == 123: must be a file path"))


def test_the_cli_exits_2_with_one_line_for_a_store_of_other_columns(tmp_path, capsys):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    code = cli.main(["scr", "--activation", "tanh", "--width", "8", "--depth", "2", "--sigma-w", "1",
                     "--sigma-b", "0.1", "--trials", "1", "--store", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "other.csv" in err[0]
