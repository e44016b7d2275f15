"""The two events s_cr can mark (docs/critical_sparsity.md, "Which event s_cr marks"): "layer" (the
paper's: some layer fully pruned) and "disconnect" (the output no longer depends on the input), for
FFNNs and ResNets: against a brute-force enumeration of paths, and against the pruned networks
themselves (forward passes on two inputs)."""

import itertools

import numpy as np
import pytest

from meanfield.nets import forward, init_network
from meanfield.pruning import (
    critical_sparsity,
    critical_sparsity_trial,
    global_masks,
    snip_critical_sparsity_trial,
    snip_scores,
)

ARCHS = ("ffnn", "resnet", "stable_resnet")


def _brute_force_threshold(scores, arch):
    """max over every input → logit path of the smallest score on it, by enumerating the paths
    (a unit sequence j₀, j₁, …, j_{L+1}; in a ResNet block a step i → i may take the skip, which is
    never pruned)."""
    L = len(scores) - 1
    sizes = [scores[0].shape[1]] + [g.shape[0] for g in scores]
    best = -np.inf
    for path in itertools.product(*[range(n) for n in sizes]):
        low = np.inf
        for k, g in enumerate(scores):
            i, j = path[k + 1], path[k]
            edge = g[i, j]
            if arch != "ffnn" and 0 < k < L and i == j:
                edge = np.inf  # the skip
            low = min(low, edge)
        best = max(best, low)
    return best


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("seed", range(6))
def test_disconnect_threshold_is_the_widest_path(arch, seed):
    rng = np.random.default_rng(seed)
    n_in, width, depth, classes = 3, 3, 3, 2
    shapes = [(width, n_in)] + [(width, width)] * (depth - 1) + [(classes, width)]
    # sparse-ish scores with ties, so that path cuts happen before layers empty
    scores = [rng.integers(0, 12, size=s).astype(float) for s in shapes]
    m = _brute_force_threshold(scores, arch)
    n = sum(g.size for g in scores)
    expected = sum(int((g <= m).sum()) for g in scores) / n
    assert critical_sparsity(scores, definition="disconnect", arch=arch) == expected


def test_hand_made_scores():
    sc = [[0.5, 2.0, 0.1, 0.3], [1.0, 0.7], [3.0, 0.2]]
    # the paper's definition, any arch: m = min(2, 1, 3) = 1, 6 of 8 scores <= 1
    for arch in ARCHS:
        assert critical_sparsity(sc, arch=arch) == 0.75
    assert critical_sparsity(sc) == critical_sparsity(sc, definition="layer") == 0.75
    # a chain 2 inputs -> 1 -> 1 -> 1 logit: every FFNN path crosses the block's 0.3; a ResNet's
    # skip bypasses it, and the best path's weakest weight is W¹'s 2.0
    chain = [[[0.5, 2.0]], [[0.3]], [[4.0]]]
    assert critical_sparsity(chain, definition="disconnect") == 1 / 4
    assert critical_sparsity(chain, definition="layer") == 1 / 4
    for arch in ("resnet", "stable_resnet"):
        assert critical_sparsity(chain, definition="disconnect", arch=arch) == 3 / 4
    # FFNN, a path cut before any layer is empty: 1 input, hidden units 0 and 1, 2 logits. Past
    # 0.3, W¹ keeps only the weight into unit 0 and W² only the weights out of unit 1
    cut = [np.array([[0.9], [0.1]]), np.array([[0.2, 0.8], [0.3, 0.95]])]
    assert critical_sparsity(cut, definition="layer") == 5 / 6  # m = min(0.9, 0.95)
    # widest path: via unit 0, min(0.9, max(0.2, 0.3)) = 0.3; via unit 1, min(0.1, 0.95) = 0.1
    assert critical_sparsity(cut, definition="disconnect") == 3 / 6


def _pair_differs(net, masks, X):
    out = forward(net, X, masks)
    return not np.array_equal(out[0], out[1])


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("seed", range(3))
def test_disconnect_is_when_the_output_stops_depending_on_the_input(arch, seed):
    rng = np.random.default_rng(seed)
    net = init_network("tanh", 24, 5, 1.3, 0.2, classes=4, arch=arch, rng=rng,
                       dtype=np.float64)
    X = rng.standard_normal((16, 24))
    y = rng.integers(4, size=16)
    sc = snip_scores(net, X, y)
    n = sum(g.size for g in sc)
    s_disc = critical_sparsity(sc, definition="disconnect", arch=arch)
    X2 = rng.standard_normal((2, 24))
    # at s_cr the logits of two different inputs are identical; one weight fewer pruned, not
    assert not _pair_differs(net, global_masks(sc, s_disc), X2)
    assert _pair_differs(net, global_masks(sc, s_disc - 1 / n), X2)
    s_layer = critical_sparsity(sc, arch=arch)
    if arch == "ffnn":
        # every path crosses every layer: disconnection comes no later than an empty layer
        assert s_disc <= s_layer
        assert not _pair_differs(net, global_masks(sc, s_layer), X2)
    else:
        # the paper's event empties a residual block; the skips keep the input
        assert s_layer < s_disc
        masks = global_masks(sc, s_layer)
        assert min(m.sum() for m in masks[1:-1]) == 0
        assert _pair_differs(net, masks, X2)


@pytest.mark.parametrize("arch", ARCHS)
def test_fast_trial_is_the_generic_one(arch):
    for definition in ("layer", "disconnect"):
        kw = dict(batch=8, classes=3, arch=arch, dtype=np.float64, definition=definition)
        fast = snip_critical_sparsity_trial("tanh", 16, 4, 1.2, 0.1, rng=np.random.default_rng(5),
                                            **kw)
        slow = critical_sparsity_trial("tanh", 16, 4, 1.2, 0.1, rng=np.random.default_rng(5),
                                       **kw)
        assert fast == slow
    default = snip_critical_sparsity_trial("tanh", 16, 4, 1.2, 0.1, batch=8, classes=3, arch=arch,
                                           rng=np.random.default_rng(5))
    assert default == snip_critical_sparsity_trial("tanh", 16, 4, 1.2, 0.1, batch=8, classes=3,
                                                   arch=arch, rng=np.random.default_rng(5),
                                                   definition="layer")


def test_errors():
    with pytest.raises(ValueError, match="`definition` == 'path'.*'layer', 'disconnect'"):
        critical_sparsity([[1.0]], definition="path")
    with pytest.raises(ValueError, match="`arch` == 'cnn'"):
        critical_sparsity([[1.0]], arch="cnn")
    with pytest.raises(ValueError, match=r"`scores\[0\]` has shape \(3,\)"):
        critical_sparsity([[1.0, 2.0, 3.0], [1.0]], definition="disconnect")
    with pytest.raises(ValueError, match=r"`scores\[1\]` has shape \(2, 3\)"):
        critical_sparsity([np.ones((2, 2)), np.ones((2, 3)), np.ones((1, 2))],
                          definition="disconnect")
    with pytest.raises(ValueError, match="must be square"):
        critical_sparsity([np.ones((3, 2)), np.ones((2, 3)), np.ones((1, 2))],
                          definition="disconnect", arch="resnet")
    with pytest.raises(ValueError, match="`definition`"):
        snip_critical_sparsity_trial("tanh", 8, 2, 1.0, 0.0, rng=np.random.default_rng(0),
                                     definition=None)


# --- the Monte Carlo and the command line -------------------------------------------------------

def test_simulate_with_definition(tmp_path):
    import meanfield as mf
    from meanfield.pruning.monte_carlo import trial_seed

    kw = dict(trials=3, batch=8, classes=3, arch="resnet")
    disc = mf.simulate_critical_sparsity("tanh", 12, 4, 1.0, 0.2, definition="disconnect", **kw)
    assert disc.definition.tolist() == ["disconnect"] * 3
    ref = [snip_critical_sparsity_trial("tanh", 12, 4, 1.0, 0.2, batch=8, classes=3,
                                        arch="resnet", rng=np.random.default_rng(trial_seed(0, i)),
                                        definition="disconnect") for i in range(3)]
    assert disc.s_cr.tolist() == ref
    layer = mf.simulate_critical_sparsity("tanh", 12, 4, 1.0, 0.2, **kw)
    assert "definition" not in layer.columns
    assert np.all(layer.s_cr.to_numpy() < disc.s_cr.to_numpy())
    # stores: the definition is part of the key; a store of one event is refused for the other
    store = tmp_path / "disc.csv"
    first = mf.simulate_critical_sparsity("tanh", 12, 4, 1.0, 0.2, definition="disconnect",
                                          store=store, **kw)
    again = mf.simulate_critical_sparsity("tanh", 12, 4, 1.0, 0.2, definition="disconnect",
                                          store=store, **kw)
    assert first.s_cr.tolist() == again.s_cr.tolist() == ref
    with pytest.raises(ValueError, match="`store`.*definition"):
        mf.simulate_critical_sparsity("tanh", 12, 4, 1.0, 0.2, store=store, **kw)
    plain = tmp_path / "layer.csv"
    mf.simulate_critical_sparsity("tanh", 12, 4, 1.0, 0.2, store=plain, **kw)
    with pytest.raises(ValueError, match="`store`"):
        mf.simulate_critical_sparsity("tanh", 12, 4, 1.0, 0.2, definition="disconnect",
                                      store=plain, **kw)
    with pytest.raises(ValueError, match="`definition` == 'all'"):
        mf.sweep_critical_sparsity("tanh", 12, 4, 1.0, 0.2, definition="all", **kw)


def test_cli_definition_and_arch(tmp_path, capsys):
    import io

    import pandas as pd

    import meanfield as mf
    from meanfield.cli import main

    out = tmp_path / "scr.csv"
    assert main(["scr", "--width", "10", "--depth", "3", "--sigma-w", "1", "--arch",
                 "stable_resnet", "--trials", "2", "--batch", "8", "--definition", "disconnect",
                 "-q", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    api = mf.simulate_critical_sparsity("tanh", 10, 3, 1.0, 0.0, trials=2, batch=8,
                                        arch="stable_resnet", definition="disconnect")
    assert df.definition.tolist() == ["disconnect"] * 2
    assert df.s_cr.tolist() == api.s_cr.tolist()
    assert main(["scr", "--width", "10", "--depth", "3", "--sigma-w", "1", "--definition", "x"]) == 2
    assert "--definition" in capsys.readouterr().err
    assert main(["propagate", "--sigma-w", "1", "--depth", "4", "--arch", "resnet", "-a",
                 "relu", "--c0", "0.5"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    q, _ = mf.propagate("relu", 1.0, 0.5, 1.0, 0.0, 4, arch="resnet")
    assert table.arch.tolist() == ["resnet"] * 5 and table.q.tolist() == q.tolist()


def test_synflow_critical_sparsity_is_its_maximal_compression():
    """SynFlow's s_cr by bisection over its target: iterative SynFlow keeps a path until fewer
    weights than layers remain (Tanaka et al. 2020, Theorem 3, maximal critical compression), so
    on an FFNN with n weights and L + 1 layers the event starts at the first target t with
    ⌊(1 − t) n⌋ <= L, i.e. s_cr lies in (1 − (L + 1)/n, 1 − (L + 1)/n + 10⁻⁴]; both
    definitions agree there (a path needs one weight per layer). The same with meanfield.torch
    on the same network (its tolerance set to the core's)."""
    import meanfield as mf

    L, N = 4, 12
    n = N * N * L + 10 * N
    df = mf.simulate_critical_sparsity("tanh", N, L, 1.3956, 0.3, trials=2, method="synflow",
                                       batch=8, seed=3)
    lo = 1 - (L + 1) / n
    assert ((df.s_cr > lo) & (df.s_cr <= lo + 1e-4)).all()
    dis = mf.simulate_critical_sparsity("tanh", N, L, 1.3956, 0.3, trials=2, method="synflow",
                                        batch=8, seed=3, definition="disconnect")
    assert np.array_equal(dis.s_cr.values, df.s_cr.values)


def test_synflow_critical_sparsity_from_the_cli(tmp_path):
    from meanfield.cli import main

    out = tmp_path / "scr.csv"
    assert main(["scr", "-a", "tanh", "--width", "8", "--depth", "3", "--sigma-w", "1.4",
                 "--sigma-b", "0.3", "--trials", "2", "--method", "synflow", "--batch", "8",
                 "--quiet", "--out", str(out)]) in (0, None)
    import pandas as pd

    s = pd.read_csv(out).s_cr
    assert ((s > 1 - 4 / (8 * 8 * 3 + 80)) & (s < 1)).all()
