"""Figure 7: E[s_cr] of SNIP against width at depth 50 in the three phases (tanh, σ_b = 0.3)."""

import time

from meanfield.pruning import sweep_critical_sparsity

from ._common import executor, finish, output, parse, phase_names, summarise


def main(argv=None):
    args = parse(__doc__, argv)
    t0 = time.perf_counter()
    widths = [25, 50, 100] if args.quick else [25, 50, 100, 200, 400]
    trials = 8 if args.quick else 100
    path = output(args, "scr_width")
    with executor(args) as ex:
        df = sweep_critical_sparsity("tanh", widths, 50, ["ordered", "eoc", "chaotic"], 0.3, trials=trials,
                                     seed=args.seed, executor=ex,
                                     store=path.with_suffix(".trials.csv"), progress=args.progress)
    df["phase"] = phase_names(df)
    finish(summarise(df, ["phase", "sigma_w", "sigma_b", "width", "depth"]), path, t0)


if __name__ == "__main__":
    main()
