"""What the rescaling does to the first layer on real data: the pre-activation variance of each
first-layer neuron over the mnist5k training set, after pruning and rescaling, divided by the dense
net's (issue 11, Deliver 1). Per-neuron rescaling assumes exchangeable inputs; pixels are not.

One row per (method, sparsity, rescale, seed): median and mean over the neurons that keep a weight
of the ratio Var_data(W̃_i · x) / Var_data(W_i · x), on the whole training set and on the scoring
batch, with the median number of pixels a neuron keeps and how many keep none."""

import time

import numpy as np

from meanfield.pruning import first_layer_variance
from meanfield.training import load_dataset, train
from meanfield.training.trainer import scoring_batch

from ._common import finish, output, parse

KW = dict(width=100, depth=30, sigma_w="eoc", sigma_b=0.3, epochs=0, return_network=True)


def rows(seed, methods=("snip", "random"), sparsities=(0.85, 0.9),
         rescales=("none", "neuron", "layer", "data")):
    X = load_dataset("mnist5k")[0]
    Xb = X[scoring_batch(X.shape[0], 128, seed)]
    _, dense, _ = train("tanh", "mnist5k", seed=seed, **KW)
    v_all, v_batch = first_layer_variance(dense.weights[0], X), first_layer_variance(dense.weights[0], Xb)
    out = []
    for method in methods:
        for s in sparsities:
            for r in rescales:
                _, net, masks = train("tanh", "mnist5k", seed=seed, method=method, sparsity=s,
                                      rescale=r, **KW)
                kept = masks[0].sum(axis=1)
                live = kept > 0
                ra = first_layer_variance(net.weights[0], X)[live] / v_all[live]
                rb = first_layer_variance(net.weights[0], Xb)[live] / v_batch[live]
                out.append(dict(method=method, sparsity=s, rescale=r, seed=seed,
                                median_ratio=float(np.median(ra)), mean_ratio=float(ra.mean()),
                                median_ratio_batch=float(np.median(rb)),
                                mean_ratio_batch=float(rb.mean()),
                                median_pixels_kept=float(np.median(kept)),
                                neurons_keeping_none=int((~live).sum())))
    return out


def main(argv=None):
    args = parse(__doc__, argv)
    t0 = time.perf_counter()
    seeds = [args.seed] if args.quick else [args.seed + k for k in range(5)]
    import pandas as pd

    df = pd.DataFrame([r for seed in seeds for r in rows(seed)])
    finish(df, output(args, "first_layer"), t0)


if __name__ == "__main__":
    main()
