"""What the score laws' independence assumptions cost, measured on networks
(docs/critical_sparsity.md §6, §9; issue 25's ordered-phase bias).

The prediction takes, given the readout error, every layer's scores as independent draws from
the layer's law (eq. (17)), the layers as independent (eq. (18)), and W independent of its
gradient G. Each assumption can be imposed on real networks without touching the rest, and its
effect on E[s_cr] read off:

* ``nets``: s_cr of the networks as drawn (SNIP, "layer" event);
* ``fresh_weights``: |W' ∘ G| with W' a fresh draw of the weights' law in place of W: the
  dependence of W on its own gradient dropped, as the score laws drop it;
* ``layers_across_nets``: layer l taken from network (t + o_l) mod T, offsets o_l fixed and
  random: every layer's law kept, all dependence between the layers of one net dropped. This
  is more than the prediction drops (its draws share the readout error and the chain's scales
  between layers): an upper bound on what the independence of layers given a draw can cost.

(Resampling a layer's own scores to make them i.i.d. is no test: the largest of n draws with
replacement from n values is at most their largest, so it lowers s_cr by construction.)

For each: the mean and SE over the T networks, and the mean paired difference from ``nets``
with its SE (networks are the unit; ``layers_across_nets`` pairs pseudo-network t with
network t). tanh, σ_b = 0.2, B = 128, C = 10; the six ordered rows of
``prediction_check`` (σ_w = 0.9) and, for comparison, the plain ResNet (σ_w = 1, σ_b = 0.3)
whose wide limit missed by −0.01 before each neuron's own stream scale (docs §5b). 200
networks each (20 with ``--quick``).

Writes ``scr_approximations.csv``: one row per configuration and variant.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ._common import output, script_main

CONFIGS = [("ffnn", 0.9, 0.2, n, L) for n, L in
           [(50, 10), (64, 40), (100, 30), (150, 80), (200, 100), (100, 200)]]
CONFIGS += [("resnet", 1.0, 0.3, 100, 50)]
VARIANTS = ("nets", "fresh_weights", "layers_across_nets")


def network_grads(arch, sw, sb, width, depth, seed, t):
    """W and G = ∂ℒ/∂W of network t, one flat float64 array per layer."""
    from meanfield.nets import init_network, loss_and_grads

    rng = np.random.default_rng([seed, t])
    net = init_network("tanh", width, depth, sw, sb, arch=arch, rng=rng, dtype=np.float64)
    X = rng.standard_normal((128, width))
    y = rng.integers(10, size=128)
    grads = loss_and_grads(net, X, y)[1]
    return ([np.asarray(w, dtype=np.float64).ravel() for w in net.weights],
            [np.asarray(g, dtype=np.float64).ravel() for g in grads])


def s_cr(layers):
    """The "layer" event's s_cr of per-layer score arrays."""
    m = min(float(s.max()) for s in layers)
    return sum(int((s <= m).sum()) for s in layers) / sum(s.size for s in layers)


def variants(config, seed, trials, rng):
    """s_cr of every network under each variant, arrays (T,) by name. Two passes over the
    networks (each redrawn from its seed), so that memory holds one network at a time: the
    first takes every layer's largest score, which sets each pseudo-network's threshold; the
    second counts, for layer l of network u, the scores at or below the threshold of the
    pseudo-network that takes it, u − o_l mod T."""
    arch, sw, sb, width, depth = config
    T, L1 = trials, depth + 1
    scale = sw / np.sqrt(width)         # every layer's fan-in is N (n_in = width)
    offsets = rng.integers(0, T, L1)
    out = {name: np.empty(T) for name in VARIANTS}
    top = np.empty((T, L1))
    for t in range(T):
        W, G = network_grads(arch, sw, sb, width, depth, seed, t)
        scores = [np.abs(w * g) for w, g in zip(W, G)]
        top[t] = [s.max() for s in scores]
        out["nets"][t] = s_cr(scores)
        out["fresh_weights"][t] = s_cr([np.abs(rng.standard_normal(g.size) * scale * g)
                                        for g in G])
    layer = np.arange(L1)
    m = top[(np.arange(T)[:, None] + offsets[None, :]) % T, layer[None, :]].min(axis=1)
    below = np.zeros(T)
    for u in range(T):
        W, G = network_grads(arch, sw, sb, width, depth, seed, u)
        for l, (w, g) in enumerate(zip(W, G)):
            below[(u - offsets[l]) % T] += int((np.abs(w * g) <= m[(u - offsets[l]) % T]).sum())
    out["layers_across_nets"] = below / sum(w.size for w in W)
    return out


def run(args):
    trials = 20 if args.quick else 200
    configs = CONFIGS[:3] if args.quick else CONFIGS
    path = output(args, "scr_approximations")
    rows = []
    for arch, sw, sb, width, depth in configs:
        t0 = time.perf_counter()
        rng = np.random.default_rng([args.seed, width, depth, 25])
        s = variants((arch, sw, sb, width, depth), args.seed, trials, rng)
        base = s["nets"]
        for name in VARIANTS:
            d = s[name] - base
            rows.append(dict(arch=arch, sigma_w=sw, sigma_b=sb, width=width, depth=depth,
                             trials=trials, variant=name, s_cr=s[name].mean(),
                             se=s[name].std(ddof=1) / np.sqrt(trials), diff=d.mean(),
                             diff_se=d.std(ddof=1) / np.sqrt(trials),
                             seconds=time.perf_counter() - t0))
        print(f"{arch} {width} x {depth}: " + ", ".join(
            f"{r['variant']} {r['diff']:+.4f} ± {r['diff_se']:.4f}" for r in rows[-3:]),
            flush=True)
    return pd.DataFrame(rows), path


def markdown(df):
    """The docs' table: the effect of each variant on E[s_cr] (paired difference ± SE)."""
    lines = ["| network | N × L | nets: E[s_cr] ± SE | fresh W | layers across nets |",
             "|---|---|---|---|---|"]
    for key, g in df.groupby(["arch", "width", "depth"], sort=False):
        g = g.set_index("variant")
        name = "ordered FFNN" if key[0] == "ffnn" else "ResNet"
        cells = [f"{g.loc[v, 'diff']:+.4f} ± {g.loc[v, 'diff_se']:.4f}" for v in VARIANTS[1:]]
        lines.append(f"| {name} | {key[1]} × {key[2]} | {g.loc['nets', 's_cr']:.4f} ± "
                     f"{g.loc['nets', 'se']:.4f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    script_main(__doc__, run, markdown, argv)


if __name__ == "__main__":
    main()
