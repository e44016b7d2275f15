"""The mean-field prediction of E[s_cr] against the Monte Carlo (docs/critical_sparsity.md §8):
tanh FFNNs in the three phases at widths 50–200 and depths 10–200 (σ_b = 0.2), and ResNets and
Stable ResNets (σ_w = 1, σ_b = 0.3), 200 trials each (8 with ``--quick``).

For every configuration: the Monte-Carlo mean and standard error; the default finite-width
prediction, the wide limit and the analytic finite-width theory
(``finite_width="analytic"``, with what its two 1/N terms add: :func:`finite_width_terms`), each
with its own standard error, its route (what it is made of:
``critical_sparsity_distribution(...)["route"]``) and whether the configuration is inside the
chain's domain (no ``PredictionRangeWarning``); where it is not, also the simulated network
(``finite_width="simulated"``, a Monte Carlo of the gradients, reported apart). Three verdicts
per prediction, as separate columns: |gap| ≤ 3 SE (the Monte Carlo's SE alone), |gap| ≤
max(3 SE, 0.004) (the target, with its floor) and |gap| ≤ 3 √(SE² + own SE²) (both sides'
errors combined). Also the time of each prediction and of the Monte Carlo.

Writes ``<results>/prediction_check.csv``; ``--analyse-only`` reads it back instead of running.
Either way prints the markdown table of docs §8 (:func:`markdown`) with the verdict counts; the
committed record is ``docs/data/prediction_check.csv``, and ``tests/test_docs_numbers.py`` checks
that the docs' table is this function's output for it.
"""

import sys
import time

import numpy as np
import pandas as pd

from meanfield import eoc
from meanfield.prediction import critical_sparsity_distribution, finite_width_terms
from meanfield.prediction.predict import ANALYTIC_ARCHS
from meanfield.pruning import simulate_critical_sparsity

from ._common import executor, finish, output, parse, predicted

SHAPES = [(50, 10), (64, 40), (100, 30), (150, 80), (200, 100), (100, 200)]
RESNET_SHAPES = [(100, 20), (64, 40), (100, 50)]
FLOOR = 0.004                # the target's floor, max(3 SE, FLOOR)


def configurations(quick):
    """(arch, sigma_w, sigma_b, width, depth) of the check."""
    sw_eoc = float(eoc("tanh", 0.2)[0])
    shapes = SHAPES[:3] if quick else SHAPES
    out = [("ffnn", sw, 0.2, n, L) for sw in (0.9, sw_eoc, 2.5) for n, L in shapes]
    out += [(arch, 1.0, 0.3, n, L) for arch in ("resnet", "stable_resnet")
            for n, L in (RESNET_SHAPES[:1] if quick else RESNET_SHAPES)]
    return out


def verdicts(row, name):
    """The gap of prediction ``name`` and its three verdicts, as columns of ``row``."""
    gap = row[name] - row["mc"]
    se, own = row["mc_se"], row[f"{name}_se"]
    own = 0.0 if not np.isfinite(own) else own
    row[f"{name}_gap"] = gap
    row[f"{name}_gap_in_se"] = gap / se
    row[f"{name}_within_3se"] = bool(abs(gap) <= 3 * se)
    row[f"{name}_on_target"] = bool(abs(gap) <= max(3 * se, FLOOR))
    row[f"{name}_within_combined"] = bool(abs(gap) <= 3 * np.hypot(se, own))


def predict(row, name, **kw):
    """One prediction into ``row``: value, own SE, route, domain, time and verdicts."""
    t = time.perf_counter()
    d, row[f"{name}_in_domain"] = predicted(
        critical_sparsity_distribution, "tanh", row["width"], row["depth"], row["sigma_w"],
        row["sigma_b"], arch=row["arch"], **kw)
    row[f"{name}_seconds"] = time.perf_counter() - t
    row[name], row[f"{name}_se"], row[f"{name}_route"] = d["mean"], d["se"], d["route"]
    verdicts(row, name)


def run(args):
    trials = 8 if args.quick else 200
    path = output(args, "prediction_check")
    rows = []
    with executor(args) as ex:
        for arch, sw, sb, n, L in configurations(args.quick):
            t = time.perf_counter()
            mc = simulate_critical_sparsity("tanh", n, L, sw, sb, arch=arch, trials=trials,
                                            seed=11 + args.seed, executor=ex,
                                            store=path.with_suffix(".trials.csv"),
                                            progress=args.progress)
            t_mc = time.perf_counter() - t
            row = dict(arch=arch, sigma_w=sw, sigma_b=sb, width=n, depth=L, trials=len(mc),
                       mc=mc.s_cr.mean(), mc_se=mc.s_cr.std(ddof=1) / np.sqrt(len(mc)),
                       mc_seconds=t_mc)
            predict(row, "finite", finite_width=True)
            predict(row, "wide", finite_width=False)
            if not row["finite_in_domain"]:
                predict(row, "simulated", finite_width="simulated")
            if arch in ANALYTIC_ARCHS:
                predict(row, "analytic", finite_width="analytic")
                terms, _ = predicted(finite_width_terms, "tanh", n, L, sw, sb, arch=arch)
                row["chain_term"], row["coupling_term"] = terms["chain_term"], terms["coupling_term"]
            rows.append(row)
    return pd.DataFrame(rows), path


def _phase(row):
    if row.arch != "ffnn":
        return row.arch
    return {0.9: "ordered", 2.5: "chaotic"}.get(round(row.sigma_w, 6), "EOC")


def _yes(v):
    return "yes" if v else "no"


def _counts(df, name):
    """How many rows of ``df`` prediction ``name`` is within 3 SE, on target, within 3 combined
    SE."""
    return tuple(int(df[f"{name}_{v}"].astype(bool).sum())
                 for v in ("within_3se", "on_target", "within_combined"))


def markdown(df):
    """The table of docs/critical_sparsity.md §8 for a check's CSV, and the verdict counts."""
    lines = ["| network | N × L | MC ± SE | route | finite width ± own SE | gap (gap / SE) "
             "| 3 SE / target / combined | wide limit | gap (gap / SE) | 3 SE / target / combined "
             "| time: prediction / MC |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in df.itertuples():
        route = r.finite_route + ("" if r.finite_in_domain else ", **outside its domain**")
        lines.append(
            f"| {_phase(r)} | {r.width} × {r.depth} | {r.mc:.4f} ± {r.mc_se:.4f} | {route} "
            f"| {r.finite:.4f} ± {r.finite_se:.4f} | {r.finite_gap:+.4f} ({r.finite_gap_in_se:+.1f}) "
            f"| {_yes(r.finite_within_3se)} / {_yes(r.finite_on_target)} / "
            f"{_yes(r.finite_within_combined)} | {r.wide:.4f} | {r.wide_gap:+.4f} "
            f"({r.wide_gap_in_se:+.1f}) | {_yes(r.wide_within_3se)} / {_yes(r.wide_on_target)} / "
            f"{_yes(r.wide_within_combined)} | {r.finite_seconds:.1f} s / {r.mc_seconds:.1f} s |")
    inside = df[df.finite_in_domain]
    n, k = len(df), len(inside)
    a, b, c = _counts(inside, "finite")
    wa, wb, wc = _counts(df, "wide")
    lines += ["", f"Of {n} configurations, {k} are inside the finite-width chain's domain. There "
                  f"the finite-width prediction is within 3 SE at {a} of {k}, on target "
                  f"(max(3 SE, {FLOOR})) at {b} and within 3 combined SE at {c}; the wide limit "
                  f"at {wa}, {wb} and {wc} of all {n}."]
    if "simulated" in df and df.simulated.notna().any():
        out = df[~df.finite_in_domain]
        lines += ["", "Outside the domain, the simulated network (`finite_width=\"simulated\"`, "
                      "a Monte Carlo of the gradients):", ""]
        for r in out.itertuples():
            lines.append(f"- {_phase(r)} {r.width} × {r.depth}: {r.simulated:.4f} ± "
                         f"{r.simulated_se:.4f}, gap {r.simulated_gap:+.4f} "
                         f"({r.simulated_gap_in_se:+.1f} SE), on target: "
                         f"{_yes(r.simulated_on_target)}; {r.simulated_seconds:.1f} s")
    if "analytic" in df:
        lines += ["", analytic_markdown(df)]
    return "\n".join(lines) + "\n"


def analytic_markdown(df):
    """The analytic route's table (docs §5e): its gap and verdicts beside the default's, and
    what its two 1/N terms add to the wide limit (:func:`finite_width_terms`)."""
    lines = ["| network | N × L | MC ± SE | analytic ± own SE | gap (gap / SE) "
             "| 3 SE / target / combined | default's gap | wide limit's gap | chain term "
             "| coupling term | time |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = df[df.analytic.notna()]
    for r in rows.itertuples():
        where = "" if bool(r.analytic_in_domain) else " (**outside its domain**)"
        lines.append(
            f"| {_phase(r)} | {r.width} × {r.depth}{where} | {r.mc:.4f} ± {r.mc_se:.4f} "
            f"| {r.analytic:.4f} ± {r.analytic_se:.4f} | {r.analytic_gap:+.4f} "
            f"({r.analytic_gap_in_se:+.1f}) | {_yes(r.analytic_within_3se)} / "
            f"{_yes(r.analytic_on_target)} / {_yes(r.analytic_within_combined)} "
            f"| {r.finite_gap:+.4f} | {r.wide_gap:+.4f} | {r.chain_term:+.4f} "
            f"| {r.coupling_term:+.4f} | {r.analytic_seconds:.2f} s |")
    domain = rows.analytic_in_domain.astype(bool)
    inside = rows[domain]
    n, k = len(rows), len(inside)
    a, b, c = _counts(inside, "analytic")
    lines += ["", f"The analytic route covers {n} of the {len(df)} configurations; "
                  f"{k} are inside its domain. There it is within 3 SE at {a} of {k}, on target "
                  f"at {b} and within 3 combined SE at {c}; outside it, on target at "
                  f"{_counts(rows[~domain], 'analytic')[1]} of {n - k}."]
    return "\n".join(lines)


def main(argv=None):
    import argparse

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--analyse-only", action="store_true",
                     help="read <results>/prediction_check.csv instead of running the check")
    known, rest = pre.parse_known_args(argv)
    args = parse(__doc__, rest)
    t0 = time.perf_counter()
    if known.analyse_only:
        df = pd.read_csv(output(args, "prediction_check"))
    else:
        df, path = run(args)
        finish(df, path, t0)
    sys.stdout.write(markdown(df))


if __name__ == "__main__":
    main()
