"""Figure 8: E[s_cr] of SNIP against depth for an FFNN, a ResNet and a Stable ResNet
(tanh, σ_w = 1, σ_b = 0.3, width 100), with the mean-field prediction of each."""

import time

from meanfield.prediction import predict_critical_sparsity
from meanfield.pruning import sweep_critical_sparsity

from ._common import executor, finish, output, parse, predicted, summarise


def main(argv=None):
    args = parse(__doc__, argv)
    t0 = time.perf_counter()
    depths = [5, 10, 20, 50] if args.quick else [5, 10, 20, 30, 50, 75, 100, 150, 200]
    trials = 6 if args.quick else 100
    path = output(args, "scr_arch")
    with executor(args) as ex:
        df = sweep_critical_sparsity("tanh", 100, depths, 1.0, 0.3,
                                     arch=["ffnn", "resnet", "stable_resnet"], trials=trials,
                                     seed=args.seed, executor=ex,
                                     store=path.with_suffix(".trials.csv"), progress=args.progress)
    summary = summarise(df, ["arch", "sigma_w", "sigma_b", "width", "depth"])
    preds = [predicted(predict_critical_sparsity, "tanh", int(r.width), int(r.depth), r.sigma_w,
                       r.sigma_b, arch=r.arch) for r in summary.itertuples()]
    summary["prediction"] = [float(v) for v, _ in preds]
    summary["prediction_in_domain"] = [inside for _, inside in preds]
    finish(summary, path, t0)


if __name__ == "__main__":
    main()
