"""What every study shares: its command line and where it writes."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def parse(description, argv=None):
    """``--quick``, ``--results DIR``, ``--workers N | --scheduler ADDRESS``, ``--seed``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes: minutes on a laptop")
    p.add_argument("--results", default="results", help="folder for the CSV (default results/)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", type=int, help="processes on this machine")
    g.add_argument("--scheduler", help="address of a dask scheduler")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action="store_true", help="progress bar on stderr")
    return p.parse_args(argv)


def output(args, name):
    folder = Path(args.results)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.csv"


def executor(args):
    """The executor of ``--workers`` / ``--scheduler`` (None: serial), as a context that shuts it
    down on exit."""
    from meanfield.sweeps import open_executor

    return open_executor(args.workers, args.scheduler)


def phase_names(df):
    """The named initialisation of each row of a sweep's table: "ordered", "chaotic" (the σ_w of
    ``meanfield.theory.SIGMA_W_PRESETS``) or "eoc" (σ_w the EOC value at the row's σ_b, for its
    activation). Any other σ_w is no named initialisation: it raises ``ValueError`` rather than
    being labelled "eoc" (as every σ_w but 0.8 and 3.0 once was) and averaged with the EOC rows."""
    from meanfield.theory import preset_name

    names = {}
    for key in set(zip(df.activation, df.sigma_w, df.sigma_b)):
        names[key] = preset_name(*key)
        if names[key] is None:
            raise ValueError(f"sigma_w = {key[1]!r} at sigma_b = {key[2]!r} ({key[0]}) is none of "
                             f"the named initialisations (ordered, eoc, chaotic)")
    return [names[key] for key in zip(df.activation, df.sigma_w, df.sigma_b)]


def summarise(df, by):
    """Mean, sd, count and standard error of s_cr per group (tidy)."""
    import numpy as np

    out = df.groupby(by).s_cr.agg(["mean", "std", "count"]).reset_index()
    out["se"] = out["std"] / np.sqrt(out["count"])
    return out.rename(columns={"mean": "s_cr_mean", "std": "s_cr_sd", "count": "trials"})


def predicted(fn, *args, **kw):
    """``fn(*args, **kw)`` (a prediction function) and whether it was asked inside its theory's
    domain: False where it warned with a ``PredictionRangeWarning`` (docs/critical_sparsity.md
    §5d), which is recorded, not printed."""
    import warnings

    from meanfield import PredictionRangeWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PredictionRangeWarning)
        out = fn(*args, **kw)
    return out, not any(issubclass(w.category, PredictionRangeWarning) for w in caught)


def finish(df, path, t0):
    df.to_csv(path, index=False)
    print(f"wrote {path} ({len(df)} rows, {time.perf_counter() - t0:.1f} s)", file=sys.stderr)


def script_main(doc, run, markdown, argv=None):
    """A simulation's ``main``: parse the arguments (the description: ``doc``'s first line),
    ``run`` them into (table, path), write the table and print its ``markdown``."""
    args = parse(doc.splitlines()[0], argv)
    t0 = time.perf_counter()
    df, path = run(args)
    finish(df, path, t0)
    print(markdown(df))
