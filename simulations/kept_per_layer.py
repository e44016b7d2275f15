"""Figure 6: % of weights kept per layer by SNIP at 70 % sparsity, 100 × 100 tanh FFNN
(σ_b = 0.3): chaotic phase (σ_w = 3) vs the EOC, with the mean-field prediction."""

import time

import pandas as pd

from meanfield.prediction import predict_kept_per_layer
from meanfield.pruning import sweep_kept_per_layer

from ._common import executor, finish, output, parse, phase_names, predicted


def main(argv=None):
    args = parse(__doc__, argv)
    t0 = time.perf_counter()
    trials = 4 if args.quick else 50
    path = output(args, "kept_per_layer")
    with executor(args) as ex:
        df = sweep_kept_per_layer("tanh", 100, 100, ["chaotic", "eoc"], 0.3, 0.7, trials=trials,
                                  seed=args.seed, executor=ex,
                                  store=path.with_suffix(".trials.csv"), progress=args.progress)
    df["phase"] = phase_names(df)
    preds = []
    for sw in df.sigma_w.unique():
        p, inside = predicted(predict_kept_per_layer, "tanh", 100, 100, float(sw), 0.3, 0.7)
        preds.append(p.assign(sigma_w=sw, prediction_in_domain=inside)
                     [["sigma_w", "layer", "kept_fraction", "prediction_in_domain"]]
                     .rename(columns={"kept_fraction": "prediction"}))
    df = df.merge(pd.concat(preds), on=["sigma_w", "layer"], how="left")
    finish(df, path, t0)


if __name__ == "__main__":
    main()
