"""Figure 5: E[s_cr] of SNIP against depth in the ordered phase, on the EOC and in the chaotic
phase (tanh, σ_b = 0.3, width 100), with the mean-field prediction and the proposition's rate
C·(log(LN²)/L + 1/√(LN²)) with C fitted to the ordered points (a fitted rate, not a bound)."""

import time

from meanfield.prediction import predict_critical_sparsity
from meanfield.pruning import sweep_critical_sparsity

from ._common import executor, finish, output, parse, phase_names, predicted, summarise

PHASES = ("ordered", "eoc", "chaotic")  # σ_w by meanfield.theory.resolve_sigma_w


def main(argv=None):
    args = parse(__doc__, argv)
    t0 = time.perf_counter()
    width, sb = 100, 0.3
    depths = [5, 10, 20, 50, 100] if args.quick else [5, 10, 20, 30, 50, 75, 100, 150, 200]
    trials = 8 if args.quick else 100
    path = output(args, "scr_depth")
    with executor(args) as ex:
        df = sweep_critical_sparsity("tanh", width, depths, list(PHASES), sb,
                                     trials=trials, seed=args.seed, executor=ex,
                                     store=path.with_suffix(".trials.csv"), progress=args.progress)
    df["phase"] = phase_names(df)
    summary = summarise(df, ["phase", "sigma_w", "sigma_b", "width", "depth"])
    preds = [predicted(predict_critical_sparsity, "tanh", int(r.width), int(r.depth), r.sigma_w,
                       r.sigma_b) for r in summary.itertuples()]
    summary["prediction"] = [float(v) for v, _ in preds]
    summary["prediction_in_domain"] = [inside for _, inside in preds]
    finish(summary, path, t0)


if __name__ == "__main__":
    main()
