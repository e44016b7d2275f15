"""Layer collapse in a model meanfield did not build (issue 23): torchvision's ResNet-18 with
random weights (its own initialisation, no download; 10 classes), pruned at initialization by
SNIP, GraSP and SynFlow. For each method: its critical sparsity s_cr ("layer": the smallest global
sparsity at which some prunable tensor is emptied; SynFlow's by bisection over its target, to
1e-3), the tensor that empties first, and at 90, 95 and 98 % which tensors are emptied, the
least-kept one, and what the three 1 × 1 downsample shortcuts keep; the time of each.

Scoring data: one batch of ``--batch`` Gaussian 3 × ``--side`` × ``--side`` images with uniform
random labels (seeded by ``--seed``). Needs the ``[torch]`` extra (torchvision).

Writes ``resnet18_collapse.csv`` (one row per method and sparsity) and prints its markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

SPARSITIES = (0.9, 0.95, 0.98)
METHODS = ("snip", "grasp", "synflow")


def measure(method, X, y, model):
    import meanfield.torch as mt

    t0 = time.perf_counter()
    s_cr = mt.critical_sparsity(model, X, y, method)
    t_scr = time.perf_counter() - t0
    at_scr = mt.kept_per_layer(model, X, y, method, min(s_cr, 0.999999))
    first = ", ".join(at_scr.name[at_scr.emptied]) or "(none)"
    rows = []
    for s in SPARSITIES:
        t0 = time.perf_counter()
        t = mt.kept_per_layer(model, X, y, method, s)
        least = t.sort_values("kept_fraction").iloc[0]
        short = t[t.name.str.contains("downsample")]
        rows.append(dict(method=method, s_cr=s_cr, scr_seconds=t_scr, first_emptied=first,
                         sparsity=s, emptied=", ".join(t.name[t.emptied]) or "(none)",
                         least_kept=least["name"], least_kept_fraction=least.kept_fraction,
                         shortcut_kept=" / ".join(f"{k:.4f}" for k in short.kept_fraction),
                         shortcut_emptied=bool(short.emptied.any()),
                         seconds=time.perf_counter() - t0))
    return rows


def markdown(df):
    lines = ["| method | s_cr (time) | first emptied | sparsity | emptied | least kept | "
             "downsample shortcuts kept | time |", "|---|---|---|---|---|---|---|---|"]
    for r in df.itertuples():
        lines.append(f"| {r.method} | {r.s_cr:.4f} ({r.scr_seconds:.1f} s) | {r.first_emptied} | "
                     f"{r.sparsity:.0%} | {r.emptied} | {r.least_kept} ({r.least_kept_fraction:.4f}) "
                     f"| {r.shortcut_kept} | {r.seconds:.1f} s |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--side", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results", default="results")
    args = p.parse_args(argv)
    import torch
    import torchvision

    torch.manual_seed(args.seed)
    model = torchvision.models.resnet18(num_classes=10)
    gen = torch.Generator().manual_seed(args.seed)
    X = torch.randn(args.batch, 3, args.side, args.side, generator=gen)
    y = torch.randint(0, 10, (args.batch,), generator=gen)
    rows = []
    for method in METHODS:
        rows += measure(method, X, y, model)
        print(f"{method} done", file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    df.insert(0, "torch", torch.__version__)
    df.insert(1, "threads", torch.get_num_threads())
    folder = Path(args.results)
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "resnet18_collapse.csv", index=False)
    sys.stdout.write(markdown(df))


if __name__ == "__main__":
    main()
