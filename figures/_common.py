"""What every figure shares: reading results, saving PNG + PDF."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def parse(description, argv=None):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--results", default="results", help="folder with the studies' CSV")
    p.add_argument("--out", default="figures/out", help="folder for the PNG and PDF")
    return p.parse_args(argv)


def read(args, study):
    path = Path(args.results) / f"{study}.csv"
    if not path.exists():
        sys.exit(f"figures: {path} not found; run `python -m simulations.{study}` first")
    return pd.read_csv(path)


def axes(figsize=(6.0, 4.5)):
    return plt.subplots(figsize=figsize, constrained_layout=True)


def save(fig, args, name):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=120)
    fig.savefig(paths[1])
    plt.close(fig)
    print(f"wrote {paths[0]} and {paths[1]}", file=sys.stderr)
    return paths
