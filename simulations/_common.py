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
    from meanfield.tasks import open_executor

    return open_executor(args.workers, args.scheduler)


def phase_names(sigma_w):
    """'ordered' (σ_w = 0.8), 'chaotic' (3.0) or 'eoc' for the σ_w of the tanh studies."""
    import numpy as np

    return np.select([np.asarray(sigma_w) == 0.8, np.asarray(sigma_w) == 3.0],
                     ["ordered", "chaotic"], "eoc")


def summarise(df, by):
    """Mean, sd, count and standard error of s_cr per group (tidy)."""
    import numpy as np

    out = df.groupby(by).s_cr.agg(["mean", "std", "count"]).reset_index()
    out["se"] = out["std"] / np.sqrt(out["count"])
    return out.rename(columns={"mean": "s_cr_mean", "std": "s_cr_sd", "count": "trials"})


def finish(df, path, t0):
    df.to_csv(path, index=False)
    print(f"wrote {path} ({len(df)} rows, {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
