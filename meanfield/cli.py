"""The ``meanfield`` command line: parses, validates, calls the public API, writes CSV.

Conventions: tables go to stdout as CSV unless ``--out`` names a file; bad arguments print one line
``meanfield: error: …`` on stderr and exit with status 2, with no traceback. Any other exception is a
bug or a failure of the machine, not of the user's input: it shows its traceback and exits with 1, so
that it gets reported rather than mistaken for a usage error.

A bad argument is recognised by its class (``_validate.InputError`` / ``InputTypeError``, raised by
the checks of ``_validate`` and here), or, for the library's checks that still raise a plain
``ValueError`` / ``TypeError``, by the shape of their message, which starts with the parameter's
name in backticks (``"`sigma_w` == -1.0: must be > 0 and finite"``).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings

import numpy as np
import pandas as pd

from . import c_star, chi_1, chi_c, depth_scales, eoc_curve, phase_diagram, propagate, q_star, reproduce
from ._validate import INPUT_ERRORS, InputError, check_int, check_memory, parse_int, parse_real
from ._version import __version__
from .plotting import plot_eoc_curves, plot_phase_diagram
from .pruning.critical import DEFINITIONS
from .pruning.monte_carlo import sweep_critical_sparsity, sweep_kept_per_layer
from .pruning.scoring import GRASP_TEMPERATURE, METHODS
from .sweeps import open_executor
from .theory.archs import ARCHS, CONV_ARCHS
from .theory.phases import SIGMA_W_PRESETS
from .training.trainer import RESCALE_AS, RESCALE_OPTIONS, train

_EXIT_USAGE = 2
_EXIT_FAILURE = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints the whole usage otherwise)
        raise _UsageError(f"{self.prog}: error: {message}")


class _UsageError(Exception):
    pass


# bytes a command holds per value of one of its axes: the value itself, a table row of a dozen
# columns and the temporaries of the theory's solvers (a grid of two axes is checked again, as a
# product, by the command that builds it)
_BYTES_PER_POINT = 256


def _floats(text):
    """``"1.5"`` or ``"0.5,1,2"`` or ``"lo:hi:n"`` (n points, inclusive) → 1-d float array.

    Every number by the package's one rule (:func:`meanfield._validate.parse_real`: a decimal or
    scientific literal, no "1_0", "nan", "inf", "0x1"); n a positive integer in ASCII digits,
    refused here, before anything is allocated, when n values cannot fit in memory."""
    fail = argparse.ArgumentTypeError(
        f"{text!r} is not a finite decimal number (such as 0.5 or 1e-2), a comma-separated list "
        f"of them, or lo:hi:n with n a positive integer")
    if text.count(":") == 2:
        lo, hi, n = text.split(":")
        lo, hi, n = parse_real(lo), parse_real(hi), parse_int(n)
        if lo is None or hi is None or n is None or n < 1:
            raise fail
        try:
            check_memory(f"{text!r} ({n} points)", _BYTES_PER_POINT * n)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return np.linspace(lo, hi, n)
    values = [parse_real(v) for v in text.split(",")]
    if any(v is None for v in values):
        raise fail
    return np.array(values)


def _int(text):
    """One integer by the package's rule (ASCII digits and a sign: no "1_000", no "1e3")."""
    value = parse_int(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    return value


_FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def _write_table(df, out):
    if out is None:
        df.to_csv(sys.stdout, index=False)
        return
    if not out.lower().endswith(".csv"):
        raise InputError(f"`--out` == {out!r}: must end in .csv")
    try:
        df.to_csv(out, index=False)
    except OSError as exc:
        raise InputError(f"`--out` == {out!r}: cannot write ({exc.strerror})") from None
    print(f"wrote {out}", file=sys.stderr)


def _check_out(out):
    """``--out`` of a table-or-figure command, checked before any work is done."""
    if out is not None and not out.lower().endswith((".csv", *_FIGURE_SUFFIXES)):
        raise InputError(f"`--out` == {out!r}: must end in .csv, .png, .pdf or .svg")


def _write_table_or_figure(df, out, draw):
    """CSV (stdout or a .csv file), or a figure for .png/.pdf/.svg drawn by ``draw(df, ax)``."""
    _check_out(out)
    if out is None or not out.lower().endswith(_FIGURE_SUFFIXES):
        _write_table(df, out)
        return
    # only a command that draws pays for matplotlib, and it must choose its backend before pyplot
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8), constrained_layout=True)
    draw(df, ax)
    try:
        fig.savefig(out, dpi=150)
    except OSError as exc:
        raise InputError(f"`--out` == {out!r}: cannot write ({exc.strerror})") from None
    finally:
        plt.close(fig)
    print(f"wrote {out}", file=sys.stderr)


def _cmd_eoc(args):


    frames = [eoc_curve(a, sigma_b=args.sigma_b) for a in args.activation]
    df = pd.concat(frames, ignore_index=True)
    _write_table_or_figure(df, args.out, lambda d, ax: plot_eoc_curves(args.activation, data=d,
                                                                          ax=ax))


def _cmd_phase_diagram(args):

    _check_out(args.out)
    df = phase_diagram(args.activation, args.sigma_w, args.sigma_b, progress=not args.quiet)
    df.insert(0, "activation", args.activation)
    _write_table_or_figure(df, args.out, lambda d, ax: plot_phase_diagram(
        args.activation, data=d, quantity=args.quantity, ax=ax))


def _grid(args):
    # the grid is the product of two axes each checked alone at parsing: check it as a whole
    check_memory(f"`--sigma-w` ({args.sigma_w.size} values) x `--sigma-b` ({args.sigma_b.size} "
                 f"values)", _BYTES_PER_POINT * args.sigma_w.size * args.sigma_b.size)
    sw, sb = np.meshgrid(args.sigma_w, args.sigma_b, indexing="ij")
    return sw.ravel(), sb.ravel()


def _cmd_info(args):


    sw, sb = _grid(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xi_q, xi_c = depth_scales(args.activation, sw, sb)
        df = pd.DataFrame({
            "activation": args.activation, "sigma_w": sw, "sigma_b": sb,
            "q_star": q_star(args.activation, sw, sb), "chi_1": chi_1(args.activation, sw, sb),
            "c_star": c_star(args.activation, sw, sb), "chi_c": chi_c(args.activation, sw, sb),
            "xi_q": xi_q, "xi_c": xi_c,
        })
    _write_table(df, args.out)


def _cmd_propagate(args):


    q, c = propagate(args.activation, args.q0, args.c0[:, None], args.sigma_w, args.sigma_b,
                     args.depth, arch=args.arch)
    depth = q.shape[0] - 1
    layer = np.repeat(np.arange(depth + 1), args.c0.size)
    df = pd.DataFrame({"activation": args.activation, "sigma_w": args.sigma_w,
                       "sigma_b": args.sigma_b, **({"arch": args.arch} if args.arch != "ffnn" else {}),
                       "layer": layer,
                       "c0": np.tile(args.c0, depth + 1), "q": q.ravel(), "c": c.ravel()})
    _write_table(df, args.out)


def _sigma_ws(text):
    """Like _floats, but the word 'eoc' (the EOC value at each sigma_b) may stand in the list."""
    if "eoc" not in text.lower():
        return list(_floats(text))
    return ["eoc" if p.strip().lower() == "eoc" else _scalar(p) for p in text.split(",")]


def _ints(text):
    values = [parse_int(v) for v in text.split(",")]
    if any(v is None for v in values):
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer or a comma-separated list "
                                         f"of them")
    return values


def _words(text):
    return [w.strip() for w in text.split(",") if w.strip()]


def _simulate(args, fn, **extra):

    if args.workers is not None:
        check_int("--workers", args.workers, 1)
    with open_executor(args.workers, args.scheduler) as executor:
        return fn(args.activation[0] if len(args.activation) == 1 else args.activation, args.width,
                  args.depth, args.sigma_w, list(args.sigma_b), trials=args.trials,
                  batch=args.batch, classes=args.classes, method=args.method, arch=args.arch,
                  seed=args.seed, executor=executor, store=args.store, progress=not args.quiet,
                  image_size=args.image_size, kernel_size=args.kernel_size,
                  stages=args.stages, **extra)


def _cmd_scr(args):

    _write_table(_simulate(args, sweep_critical_sparsity, definition=args.definition), args.out)


def _cmd_kept(args):

    _write_table(_simulate(args, sweep_kept_per_layer, sparsity=args.sparsity), args.out)


def _add_simulation_arguments(p):

    p.add_argument("--activation", "-a", action="append", default=None)
    p.add_argument("--width", type=_ints, required=True, help="integer or list, e.g. 100")
    p.add_argument("--depth", type=_ints, required=True, help="integer or list, e.g. 10,20,50")
    p.add_argument("--sigma-w", type=_sigma_ws, required=True,
                   help="value, list, lo:hi:n, or 'eoc' (the EOC value at each sigma_b)")
    p.add_argument("--sigma-b", type=_floats, default=np.array([0.0]))
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--method", type=_words, default=["snip"],
                   help=f"{', '.join(METHODS)} (or a list)")
    p.add_argument("--arch", type=_words, default=["ffnn"], help=", ".join(ARCHS + CONV_ARCHS))
    p.add_argument("--image-size", type=int, default=8,
                   help="h, for the conv archs (default 8)")
    p.add_argument("--kernel-size", type=int, default=3,
                   help="k (odd), for the conv archs (default 3)")
    p.add_argument("--stages", type=int, default=1,
                   help="for the conv archs: stages of doubling channels, halving positions, "
                        "1x1 projection shortcuts in the ResNets (default 1)")
    p.add_argument("--seed", type=int, default=0)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, help="processes on this machine")
    group.add_argument("--scheduler", help="address of a dask scheduler (pip install "
                       "'meanfield-toolkit[dask]')")
    p.add_argument("--store", help="CSV file results are appended to as trials finish; rerun "
                   "with it to resume")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--out", "-o", help="CSV file (default: stdout)")


def _cmd_train(args):

    if args.sigma_w is not None and args.init is not None:
        raise InputError("give either `--init` or `--sigma-w`, not both")
    sigma_w = args.sigma_w if args.sigma_w is not None else (args.init or "eoc")
    df = train(args.activation[0], args.dataset, width=args.width, depth=args.depth,
               sigma_w=sigma_w, sigma_b=args.sigma_b, arch=args.arch, method=args.method,
               sparsity=args.sparsity, rescale=False if args.rescale == "none" else args.rescale,
               epochs=args.epochs, batch=args.batch,
               lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay, seed=args.seed,
               progress=not args.quiet, threads=args.threads,
               sparse={"on": True, "off": False}.get(args.sparse, args.sparse),
               shuffle_masks=args.shuffle_masks, val_fraction=args.val_fraction,
               rescale_as=args.rescale_as,
               grasp_temperature=args.grasp_temperature)
    _write_table(df, args.out)


def _cmd_reproduce(args):

    rows = reproduce.run(quick=args.quick, out=args.out, workers=args.workers,
                         scheduler=args.scheduler, progress=not args.quiet, jobs=args.jobs)
    if any(r[1].startswith("FAILED") for r in rows):
        raise SystemExit(1)


def _scalar(text):
    values = _floats(text)
    if values.size != 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected one number")
    return float(values[0])


def build_parser():
    # the one list of each: architectures, pruning methods, named initialisations

    presets = ", ".join(f"{v:g} ({k})" for k, v in SIGMA_W_PRESETS.items())
    parser = _Parser(prog="meanfield", description="Mean-field theory of deep random networks and "
                     "pruning at initialization (Hayou et al., ICLR 2021).")

    parser.add_argument("--version", action="version", version=f"meanfield {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    p = sub.add_parser("info", help="q*, chi_1, c*, chi_c and depth scales on a (sigma_w, sigma_b) "
                       "grid, as CSV")
    p.add_argument("--activation", "-a", default="tanh", help="e.g. tanh, relu, elu:0.5")
    p.add_argument("--sigma-w", type=_floats, required=True, help="value, list a,b,c or lo:hi:n")
    p.add_argument("--sigma-b", type=_floats, default=np.array([0.0]),
                   help="value, list a,b,c or lo:hi:n (default 0)")
    p.add_argument("--out", "-o", help="CSV file (default: stdout)")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("propagate", help="q^l and c^l through the layers, as CSV")
    p.add_argument("--activation", "-a", default="tanh")
    p.add_argument("--sigma-w", type=_scalar, required=True)
    p.add_argument("--sigma-b", type=_scalar, default=0.0)
    p.add_argument("--q0", type=_scalar, default=1.0, help="input variance (default 1)")
    p.add_argument("--c0", type=_floats, default=np.array([0.5]),
                   help="input correlation(s): value, list or lo:hi:n (default 0.5)")
    p.add_argument("--depth", type=_int, default=50)
    p.add_argument("--arch", default="ffnn", choices=ARCHS,
                   help="for ResNets --q0/--c0 are layer 1's and --depth is the network's L: rows "
                   "1 … L−1 are the residual blocks, row L the logits (default ffnn)")
    p.add_argument("--out", "-o", help="CSV file (default: stdout)")
    p.set_defaults(func=_cmd_propagate)

    p = sub.add_parser("eoc", help="the Edge of Chaos curve(s), as CSV or a plot")
    p.add_argument("--activation", "-a", action="append", default=None,
                   help="repeat for several curves (default tanh)")
    p.add_argument("--sigma-b", type=_floats, default=None,
                   help="value, list or lo:hi:n (default 0:2:200)")
    p.add_argument("--out", "-o", help="file.csv, or file.png/.pdf/.svg for a plot (default: CSV "
                   "to stdout)")
    p.set_defaults(func=_cmd_eoc)

    p = sub.add_parser("phase-diagram", help="q*, chi_1, c*, chi_c, depth scales and phase over a "
                       "(sigma_w, sigma_b) grid, as CSV or a plot")
    p.add_argument("--activation", "-a", default="tanh")
    p.add_argument("--sigma-w", type=_floats, default=np.linspace(0.5, 4.0, 100),
                   help="lo:hi:n or a list (default 0.5:4:100)")
    p.add_argument("--sigma-b", type=_floats, default=np.linspace(0.0, 2.0, 60),
                   help="lo:hi:n or a list (default 0:2:60)")
    p.add_argument("--quantity", choices=("chi_1", "xi_c"), default="chi_1",
                   help="colour of the plot (default chi_1)")
    p.add_argument("--out", "-o", help="file.csv, or file.png/.pdf/.svg for a plot (default: CSV "
                   "to stdout)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_phase_diagram)

    p = sub.add_parser("scr", help="Monte Carlo critical sparsity of pruning at initialization, "
                       "one row per trial (CSV)")
    _add_simulation_arguments(p)
    p.add_argument("--definition", default="layer", choices=DEFINITIONS,
                   help="the event s_cr marks: some layer fully pruned (the paper's; default) or "
                   "the output no longer depending on the input (differs for ResNets, whose skips "
                   "bypass an emptied block)")
    p.set_defaults(func=_cmd_scr)

    p = sub.add_parser("kept", help="fraction of weights kept per layer after pruning (CSV)")
    _add_simulation_arguments(p)
    p.add_argument("--sparsity", type=_floats, required=True, help="e.g. 0.7 (or a list)")
    p.set_defaults(func=_cmd_kept)

    p = sub.add_parser("train", help="prune a random net at initialization, train it, and write "
                       "the history (CSV)")
    p.add_argument("--dataset", default="mnist5k", help="mnist5k, digits or teacher")
    p.add_argument("--activation", "-a", action="append", default=None)
    p.add_argument("--width", type=int, default=100)
    p.add_argument("--depth", type=int, default=30)
    p.add_argument("--init", choices=("eoc", *SIGMA_W_PRESETS),
                   help=f"sigma_w: the EOC value at sigma_b, {' or '.join(presets.split(', '))}; "
                   "default eoc")
    p.add_argument("--sigma-w", type=_scalar)
    p.add_argument("--sigma-b", type=_scalar, default=0.3)
    p.add_argument("--arch", default="ffnn", choices=ARCHS)
    p.add_argument("--method", default="none", choices=("none", *METHODS))
    p.add_argument("--sparsity", type=_scalar, default=0.0)
    p.add_argument("--rescale", nargs="?", const="neuron", default="none",
                   choices=RESCALE_OPTIONS,
                   help="rescale the pruned weights to restore their variance: one factor per "
                   "neuron (SBP-SR; `--rescale` alone means this), per layer, or 'data' (per "
                   "neuron, the first layer restoring each neuron's pre-activation variance on "
                   "the scoring batch); default none")
    p.add_argument("--rescale-as", default="weights", choices=RESCALE_AS,
                   help="train the rescaled net with ρ folded into its weights (default) or as a "
                   "fixed multiplier on each row, as the paper writes SBP-SR")
    p.add_argument("--shuffle-masks", action="store_true",
                   help="permute the kept positions at random within each layer after pruning")
    p.add_argument("--val-fraction", type=_scalar, default=0.0,
                   help="stratified validation split carved from the training set, in [0, 1) "
                   "(default 0: none)")
    p.add_argument("--grasp-temperature", type=_scalar, default=GRASP_TEMPERATURE,
                   help="GraSP's logit temperature when scoring (default 200)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=_scalar, default=0.01)
    p.add_argument("--momentum", type=_scalar, default=0.9)
    p.add_argument("--weight-decay", type=_scalar, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="threads for the training steps, at most one per "
                   "64 examples of the batch, 16 at most (default: the machine's cores; the "
                   "results do not depend on it)")
    p.add_argument("--sparse", default="auto", choices=("auto", "on", "off"),
                   help="train pruned layers as their kept weights alone: on, off (dense with "
                   "the mask), or auto (the layers keeping at most 20 %% of their weights; "
                   "default). The same results up to float32 rounding")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--out", "-o", help="CSV file (default: stdout)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("reproduce", help="run the paper's studies and figures")
    p.add_argument("--quick", action="store_true", help="small sizes: minutes on a laptop")
    p.add_argument("--out", help="folder for results/ and figures/ (default: results/ and "
                   "figures/out/ of the repository)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, help="processes on this machine")
    group.add_argument("--scheduler", help="address of a dask scheduler")
    p.add_argument("--jobs", "-j", type=int, default=1,
                   help="figures made at once, each in its own processes (default 1)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_reproduce)
    return parser


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return _EXIT_USAGE
        if getattr(args, "activation", "") is None:
            args.activation = ["tanh"]
        args.func(args)
    except KeyboardInterrupt:
        print("meanfield: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `meanfield ... | head`: the reader left, nothing is wrong

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if not _is_usage_error(exc):
            traceback.print_exc()
            print(f"meanfield: unexpected {type(exc).__name__} (traceback above); with valid "
                  f"arguments this is a bug, please report it", file=sys.stderr)
            return _EXIT_FAILURE
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not msg.startswith("meanfield"):
            msg = f"meanfield: error: {msg}"
        print(msg, file=sys.stderr)
        return _EXIT_USAGE
    return 0


def _is_usage_error(exc):
    """A bad argument (one line, exit 2), as opposed to a bug (traceback, exit 1): told by the
    exception's type alone. Every error a user can cause is an InputError / InputTypeError
    (meanfield/_validate.py), so rewording a message never turns a typo into a bug report."""
    return isinstance(exc, (_UsageError, *INPUT_ERRORS))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
