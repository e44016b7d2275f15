"""``meanfield reproduce``: run every study of the paper's argument, then every figure, and print
a summary table (figure, file, seconds).

The studies (``simulations/``) and figure scripts (``figures/``) live beside the library in the
repository, and data flows one way (theory → simulation → results → figures): this runner starts
each of them as ``python -m simulations.<study>`` / ``python -m figures.<figure>`` from the
repository's root, so the library never imports them.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

from ._progress import progress_bar
from ._validate import InputError, check_int

#: (figure, study, figure script, the optional package the study needs: the real data sets ship
#: in the ``[data]`` extra)
PIPELINE = [
    ("1 phase diagram", "phase_diagram", "phase_diagram", None),
    ("2 EOC curves", "eoc_curves", "eoc_curves", None),
    ("3 depth scales", "depth_scales", "depth_scales", None),
    ("4 correlation convergence", "correlation_convergence", "correlation_convergence", None),
    ("5 s_cr vs depth", "scr_depth", "scr_depth", None),
    ("6 kept per layer", "kept_per_layer", "kept_per_layer", None),
    ("7 s_cr vs width", "scr_width", "scr_width", None),
    ("8 FFNN vs ResNets", "scr_arch", "scr_arch", None),
    ("9 training curves", "training_curves", "training_curves", "mlxtend"),
    ("10 accuracy table", "accuracy_table", "accuracy_table", "mlxtend"),
    ("11 conv nets", "scr_conv", "scr_conv", None),
]


def find_root(start=None):
    """The repository root: the first folder upwards from ``start`` (default: the working
    directory) holding ``simulations/`` and ``figures/``."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "simulations" / "__init__.py").exists() and (folder / "figures").is_dir():
            return folder
    raise InputError(f"no simulations/ and figures/ above {str(here)!r}: run `meanfield reproduce` "
                     f"inside a clone of the meanfield repository")


def _available(module):
    if module is None:
        return True

    return importlib.util.find_spec(module) is not None


def _run(root, args, log):
    """``python -m <args>`` from the repository's root; its output appended to the list ``log``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root),
                                                                      os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", *args], cwd=root, env=env, capture_output=True,
                          text=True)
    log.append(f"$ python -m {' '.join(args)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"python -m {args[0]} failed: {tail}")


def _step(root, step, results, figures, extra):
    """One figure of the pipeline, its study then its figure script: (summary row, log lines)."""
    name, study, figure, needs = step
    log = []
    t0 = time.perf_counter()
    if not (root / "simulations" / f"{study}.py").exists():
        return (name, f"needs simulations/{study}.py (not in this version)", "-"), log
    if not _available(needs):
        return (name, f"needs {needs}: pip install 'meanfield-toolkit[data]'", "-"), log
    try:
        _run(root, [f"simulations.{study}", "--results", str(results), *extra], log)
        _run(root, [f"figures.{figure}", "--results", str(results), "--out", str(figures)], log)
        made = sorted(p.name for p in figures.glob(f"fig{name.split()[0]}_*.png"))
        row = (name, str(figures / made[0]) if made else "(no png)",
               f"{time.perf_counter() - t0:.1f}")
    except RuntimeError as exc:
        row = (name, f"FAILED: {exc}", f"{time.perf_counter() - t0:.1f}")
    return row, log


def run(quick=False, out=None, workers=None, scheduler=None, progress=True, jobs=1):
    """Run the pipeline; return the summary rows (figure, file or status, seconds). ``jobs``
    figures are made at once (each its own processes; the studies write separate files); the
    log and the summary keep the pipeline's order."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    jobs = check_int("jobs", jobs, low=1, high=len(PIPELINE))
    root = find_root()
    out = Path(out).resolve() if out else root
    results = out / "results"
    figures = out / "figures" if out != root else root / "figures" / "out"
    try:
        results.mkdir(parents=True, exist_ok=True)
        figures.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"`--out` == {str(out)!r}: cannot create ({exc.strerror})") from None
    extra = (["--quick"] if quick else []) + (["--workers", str(workers)] if workers else []) + (
        ["--scheduler", scheduler] if scheduler else [])
    total_start = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool, progress_bar(len(PIPELINE), progress, desc="figures",
                                                        unit="figure") as bar:
        futures = [pool.submit(_step, root, step, results, figures, extra) for step in PIPELINE]
        for _ in as_completed(futures):
            bar.update()
    done = [f.result() for f in futures]
    with open(out / "reproduce.log", "w") as log:
        log.write("".join(line for _, lines in done for line in lines))
    rows = [row for row, _ in done]
    rows.append(("total", str(out), f"{time.perf_counter() - total_start:.1f}"))
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'file':<60}  seconds")
    for name, file, secs in rows:
        print(f"{name:<{width}}  {file:<60}  {secs}")
    if any(r[1].startswith("FAILED") for r in rows):
        print(f"some steps failed; see {out / 'reproduce.log'}", file=sys.stderr)
    return rows
