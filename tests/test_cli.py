"""The command line: CSV out, one-line errors with exit status 2 for bad arguments, a traceback and
exit status 1 for anything else (a bug)."""

import subprocess
import sys

import pandas as pd
import pytest

import meanfield as mf
from meanfield import cli
from meanfield._validate import InputError, InputTypeError
from meanfield.cli import main


def _one_line_error(argv, needle):
    """The command exits with status 2 and one line on stderr that contains ``needle``."""
    proc = subprocess.run([sys.executable, "-m", "meanfield", *argv], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr


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
    (["train", "--dataset", "digits", "--width", "8", "--depth", "2", "--threads", "0"],
     "`threads` == 0"),
    (["train", "--init", "eoc", "--sigma-w", "1"], "either `--init` or `--sigma-w`"),
    (["train", "--rescale", "row"], "invalid choice: 'row'"),
    (["train", "--dataset", "digits", "--val-fraction", "1.5"], "`val_fraction` == 1.5"),
    (["train", "--dataset", "digits", "--grasp-temperature", "0"], "`grasp_temperature` == 0.0"),
    (["reproduce", "--quick", "--jobs", "0"], "`jobs` == 0"),
    (["train", "--dataset", "digits", "--val-fraction", "x"], "--val-fraction"),
])
def test_bad_arguments_one_line_exit_2(argv, needle):
    _one_line_error(argv, needle)


@pytest.mark.slow
def test_reproduce_quick_writes_figures_and_csv(tmp_path, capsys):
    # two figures at once, as CI has two cores; the summary keeps the pipeline's order
    assert main(["reproduce", "--quick", "--quiet", "--jobs", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for study, fig in [("phase_diagram", "fig1_phase_diagram"), ("eoc_curves", "fig2_eoc_curves"),
                       ("depth_scales", "fig3_depth_scales"),
                       ("correlation_convergence", "fig4_correlation_convergence")]:
        assert len(pd.read_csv(tmp_path / "results" / f"{study}.csv")) > 10
        for suffix in (".png", ".pdf"):
            assert (tmp_path / "figures" / f"{fig}{suffix}").stat().st_size > 1000
        assert f"{fig}.png" in out
    df = pd.read_csv(tmp_path / "results" / "eoc_curves.csv")
    tanh = df[df.activation == "tanh"]
    sw, _ = mf.eoc("tanh", tanh.sigma_b.to_numpy())
    assert tanh.sigma_w.to_numpy() == pytest.approx(sw, rel=1e-14)


def test_reproduce_outside_a_clone_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "--quick"]) == 2
    assert "inside a clone" in capsys.readouterr().err


def test_eoc_csv_and_png(tmp_path, capsys):
    assert main(["eoc", "-a", "tanh", "-a", "erf", "--sigma-b", "0:1:3"]) == 0
    df = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert df.activation.tolist() == ["tanh"] * 3 + ["erf"] * 3
    sw, q = mf.eoc("tanh", [0.0, 0.5, 1.0])
    assert df.sigma_w[:3].to_numpy() == pytest.approx(sw, rel=1e-15)
    png = tmp_path / "eoc.png"
    assert main(["eoc", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_phase_diagram_csv_and_plot(tmp_path):
    csv = tmp_path / "pd.csv"
    assert main(["phase-diagram", "--sigma-w", "0.8,3", "--sigma-b", "0.3", "--out", str(csv)]) == 0
    df = pd.read_csv(csv)
    assert df.phase.tolist() == ["ordered", "chaotic"]
    assert df.c_star.to_numpy() == pytest.approx(mf.c_star("tanh", [0.8, 3.0], 0.3), rel=1e-14)
    pdf = tmp_path / "pd.pdf"
    assert main(["phase-diagram", "--sigma-w", "0.5:3:6", "--sigma-b", "0:1:4", "--quantity",
                 "xi_c", "--out", str(pdf)]) == 0
    assert pdf.read_bytes()[:4] == b"%PDF"


@pytest.mark.parametrize("argv, needle", [
    (["eoc", "-a", "relu", "--sigma-b", "0.5"], "single EOC point"),
    (["phase-diagram", "--out", "x.txt"], "must end in .csv, .png, .pdf or .svg"),
    (["phase-diagram", "--sigma-w", "1:2:0"], "lo:hi:n"),
    (["eoc", "--out", "/nonexistent/dir/e.png"], "`--out`"),
])
def test_eoc_commands_bad_arguments(argv, needle):
    _one_line_error(argv, needle)


def test_scr_and_kept_commands(tmp_path, capsys):
    out = tmp_path / "scr.csv"
    assert main(["scr", "--width", "10", "--depth", "3,4", "--sigma-w", "0.8,eoc", "--sigma-b",
                 "0.3", "--trials", "2", "--batch", "8", "-q", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert len(df) == 8 and set(df.depth) == {3, 4}
    api = mf.sweep_critical_sparsity("tanh", 10, [3, 4], [0.8, "eoc"], 0.3, trials=2, batch=8)
    assert df.s_cr.tolist() == api.s_cr.tolist()
    assert main(["kept", "--width", "10", "--depth", "3", "--sigma-w", "1", "--sigma-b", "0.3",
                 "--sparsity", "0.5", "--trials", "2", "--batch", "8", "-q"]) == 0
    kept = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert kept.layer.tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize("argv, needle", [
    (["scr", "--width", "10", "--depth", "3", "--sigma-w", "1", "--trials", "0"], "`trials` == 0"),
    (["scr", "--width", "10", "--depth", "3", "--sigma-w", "1", "--workers", "0"], "`--workers`"),
    (["scr", "--width", "10", "--depth", "3", "--sigma-w", "1", "--method", "x"], "`method`"),
    (["kept", "--width", "10", "--depth", "3", "--sigma-w", "1", "--sparsity", "1.2"],
     "`sparsity` == 1.2"),
])
def test_simulation_commands_bad_arguments(argv, needle):
    _one_line_error(argv, needle)


def _raise(exc):
    def command(args):
        raise exc
    return command


@pytest.mark.parametrize("exc", [
    ZeroDivisionError("float division by zero"),
    # plain ValueError/TypeError from inside the library or numpy: bugs, not usage errors
    ValueError("operands could not be broadcast together with shapes (3,) (4,)"),
    TypeError("unsupported operand type(s) for +: 'int' and 'str'"),
    KeyError("sparsity"),
])
def test_internal_error_shows_its_traceback_and_exits_1(exc, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_cmd_info", _raise(exc))
    assert main(["info", "--sigma-w", "1"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and f"{type(exc).__name__}: " in err
    assert ", in command\n" in err  # down to the frame that raised
    assert "meanfield: error:" not in err and "please report it" in err.splitlines()[-1]


@pytest.mark.parametrize("exc, line", [
    # the checks' own classes, whatever their message's shape
    (InputError("no simulations/ here"), "meanfield: error: no simulations/ here"),
    (InputError("`sparsity` == 1.5: must be in [0, 1)\nmore"),
     "meanfield: error: `sparsity` == 1.5: must be in [0, 1)"),
    (InputTypeError("(`sigma_w`, `sigma_b`) == (1, 2): not on the EOC"),
     "meanfield: error: (`sigma_w`, `sigma_b`) == (1, 2): not on the EOC"),
])
def test_input_errors_are_one_line_exit_2(exc, line, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_cmd_info", _raise(exc))
    assert main(["info", "--sigma-w", "1"]) == 2
    assert capsys.readouterr().err.splitlines() == [line]


@pytest.mark.parametrize("exc", [ValueError("`sparsity` == 1.5: must be in [0, 1)"),
                                 TypeError("(`sigma_w`, `sigma_b`) == (1, 2): not on the EOC")])
def test_a_plain_error_worded_like_a_usage_error_is_a_bug(exc, monkeypatch, capsys):
    """The type decides, not the message: every error a user can cause is an InputError."""
    monkeypatch.setattr(cli, "_cmd_info", _raise(exc))
    assert main(["info", "--sigma-w", "1"]) == 1
    assert "please report it" in capsys.readouterr().err


def test_internal_error_exit_status_of_the_process():
    """The process, not only ``main``, exits 1 and prints the traceback."""
    code = ("import sys, meanfield.cli as cli\n"
            "def boom(args):\n    return 1 / 0\n"
            "cli._cmd_info = boom\n"
            "sys.exit(cli.main(['info', '--sigma-w', '1']))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ZeroDivisionError" in proc.stderr
    assert "in boom" in proc.stderr and proc.stdout == ""


def test_train_new_options(tmp_path):
    base = ["train", "--dataset", "digits", "--width", "8", "--depth", "2", "--epochs", "0",
            "--method", "snip", "--sparsity", "0.5", "--quiet"]
    for extra, rescale in (([], "none"), (["--rescale"], "neuron"), (["--rescale", "layer"], "layer"),
                           (["--rescale", "data"], "data")):
        out = tmp_path / f"{rescale}.csv"
        assert main([*base, *extra, "--out", str(out)]) == 0
        assert (pd.read_csv(out).rescale == rescale).all()
    out = tmp_path / "all.csv"
    assert main([*base, "--shuffle-masks", "--val-fraction", "0.1", "--grasp-temperature", "50",
                 "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert df.shuffle_masks.all() and (df.val_fraction == 0.1).all()
    assert (df.grasp_temperature == 50.0).all() and df.val_accuracy.notna().all()
