"""The command line: CSV out, one-line errors with exit status 2, no traceback."""

import subprocess
import sys

import pandas as pd
import pytest

import meanfield as mf
from meanfield.cli import main


def test_info_csv_round_trip(tmp_path):
    out = tmp_path / "info.csv"
    assert main(["info", "-a", "tanh", "--sigma-w", "0.8,3", "--sigma-b", "0.3",
                 "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == ["activation", "sigma_w", "sigma_b", "q_star", "chi_1", "c_star",
                                "chi_c", "xi_q", "xi_c"]
    assert df.chi_1.tolist() == pytest.approx(mf.chi_1("tanh", [0.8, 3.0], 0.3).tolist(), rel=1e-15)


def test_propagate_to_stdout(capsys):
    assert main(["propagate", "-a", "relu", "--sigma-w", "1.2", "--c0", "0:0.5:3",
                 "--depth", "2"]) == 0
    df = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert len(df) == 9 and set(df.layer) == {0, 1, 2}
    q, c = mf.propagate("relu", 1.0, [0.0, 0.25, 0.5], 1.2, 0.0, 2)
    assert df.c.to_numpy() == pytest.approx(c.ravel(), rel=1e-15)


@pytest.mark.parametrize("argv, needle", [
    (["info", "--sigma-w", "abc"], "--sigma-w"),
    (["info", "--sigma-w=-1"], "`sigma_w` == -1.0"),
    (["info", "-a", "nope", "--sigma-w", "1"], "`activation` == 'nope'"),
    (["propagate", "--sigma-w", "1", "--depth", "-3"], "`depth` == -3"),
    (["info", "--sigma-w", "1", "--out", "/nonexistent/dir/x.csv"], "`--out`"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_one_line_exit_2(argv, needle):
    proc = subprocess.run([sys.executable, "-m", "meanfield.cli", *argv], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr


def test_reproduce_quick_writes_the_core_table(tmp_path, capsys):
    assert main(["reproduce", "--quick", "--out", str(tmp_path)]) == 0
    df = pd.read_csv(tmp_path / "signal_propagation.csv")
    assert {"tanh", "relu"} <= set(df.activation)
    assert "signal propagation table" in capsys.readouterr().out
