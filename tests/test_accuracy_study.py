"""The accuracy study's design and statistics (simulations/accuracy_table.py) on synthetic runs:
the factorial arms, the learning rate chosen on validation only, and paired differences that pair
by seed (dense runs against every sparsity)."""

import itertools

import numpy as np
import pandas as pd
import pytest

from simulations.accuracy_table import (
    DESIGN,
    arm_name,
    arms,
    choose_lr,
    paired_table,
    summary,
)


def test_the_design_is_factorial():
    full = [arm_name(a) for a in arms()]
    assert len(full) == len(set(full)) == 42
    for init, method, rescale in itertools.product(("ordered", "eoc"),
                                                   ("snip", "grasp", "synflow", "magnitude", "random"),
                                                   ("", "+neuron")):
        assert f"ffnn {init} {method}{rescale}" in full
    for init in ("ordered", "eoc"):
        assert f"ffnn {init} dense" in full
        assert f"ffnn {init} snip+neuron (shuffled)" in full
        assert f"ffnn {init} synflow+neuron (shuffled)" in full
    for arch in ("resnet", "stable_resnet"):
        assert f"{arch} dense" in full
        for method, rescale in itertools.product(("snip", "random"), ("", "+neuron", "+data")):
            assert f"{arch} {method}{rescale}" in full
    quick = [arm_name(a) for a in arms(quick=True)]
    # --quick: both rescale arms of four methods, a dense run, a standard ResNet, a shuffled run
    assert sum(f"ffnn eoc {m}+neuron" in quick and f"ffnn eoc {m}" in quick
               for m in ("snip", "synflow", "magnitude", "random")) == 4
    assert {"ffnn eoc dense", "resnet snip", "ffnn eoc snip+neuron (shuffled)"} <= set(quick)


def test_lr_is_chosen_on_validation_never_on_test():
    rows = []
    for arch, lr, val, test in [("ffnn", 0.01, 0.5, 0.9), ("ffnn", 0.02, 0.7, 0.1),
                                ("ffnn", 0.05, 0.6, 0.95), ("resnet", 0.01, 0.8, 0.5),
                                ("resnet", 0.02, 0.8, 0.9)]:
        for seed in (1000, 1001):
            rows.append(dict(arch=arch, init="eoc", lr=lr, seed=seed, val_accuracy=val + 0.01 * seed % 2,
                             test_accuracy=test))
    t = choose_lr(pd.DataFrame(rows))
    chosen = {r.arch: r.lr for r in t[t.chosen].itertuples()}
    assert chosen == {"ffnn": 0.02, "resnet": 0.01}  # best validation; a tie goes to the smaller lr
    assert (t.runs == 2).all()


def _synthetic_runs():
    rng = np.random.default_rng(0)
    rows = []
    for depth, s, seed in itertools.product((20, 30), (0.9, 0.95), range(4)):
        base = rng.normal(0.0, 0.05)  # a seed effect shared by both arms: pairing removes it
        for method, rescale, effect in (("snip", "neuron", 0.7), ("random", "neuron", 0.75),
                                        ("snip", "none", 0.1)):
            rows.append(dict(arch="ffnn", init="eoc", method=method, rescale=rescale,
                             shuffle_masks=False, depth=depth, sparsity=s, seed=seed,
                             test_accuracy=effect + base + rng.normal(0, 0.005),
                             val_accuracy=0.5, lr=0.02))
    for depth, seed in itertools.product((20, 30), range(4)):
        rows.append(dict(arch="ffnn", init="eoc", method="none", rescale="none",
                         shuffle_masks=False, depth=depth, sparsity=0.0, seed=seed,
                         test_accuracy=0.85, val_accuracy=0.5, lr=0.02))
    return pd.DataFrame(rows)


def test_paired_table_pairs_seeds_and_dense():
    df = _synthetic_runs()
    paired = paired_table(df, [0.9, 0.95])
    snip_random = paired[(paired.comparison == "SNIP vs random, both rescaled")]
    pooled = snip_random[snip_random.level == "all"].iloc[0]
    assert (pooled.n, pooled.pairs) == (4, 16)  # 4 seeds, the unit; 16 (cell, seed) pairs
    assert pooled["mean"] == pytest.approx(-0.05, abs=0.005)
    assert pooled.clear  # the seed effect (sd 0.05) is paired out; the noise is 0.005
    cells = snip_random[snip_random.level == "cell"]
    assert len(cells) == 4 and (cells.n == 4).all()
    vs_dense = paired[(paired.a == "ffnn eoc snip+neuron") & (paired.b == "ffnn eoc dense")
                      & (paired.level == "all")].iloc[0]
    # each dense run pairs with the pruned runs of every sparsity; still 4 seeds
    assert (vs_dense.n, vs_dense.pairs) == (4, 16)
    a = df[(df.method == "snip") & (df.rescale == "neuron")].sort_values(["depth", "sparsity", "seed"])
    assert vs_dense["mean"] == pytest.approx(a.test_accuracy.mean() - 0.85, abs=1e-12)
    text = summary(paired, choose_lr(df.assign(init="eoc")))
    assert "SNIP vs random, both rescaled" in text and "**-5." in text


def test_design_columns():
    assert DESIGN == ("arch", "init", "method", "rescale", "shuffle_masks")


def test_two_dense_arms_pair_once_per_seed():
    df = _synthetic_runs()
    ordered = df[df.method == "none"].assign(init="ordered", test_accuracy=0.1)
    paired = paired_table(pd.concat([df, ordered]), [0.9, 0.95])
    row = paired[(paired.a == "ffnn eoc dense") & (paired.b == "ffnn ordered dense")
                 & (paired.level == "all")].iloc[0]
    assert (row.n, row.pairs) == (4, 8)  # 2 depths x 4 seeds, not repeated per sparsity
    assert row["mean"] == pytest.approx(0.75)


def test_the_primary_family_is_declared_and_holm_corrected_per_form():
    """simulations/accuracy_primary.py on synthetic runs: nine declared comparisons per form,
    the seed as the unit (10 seeds, 3 sparsities each), Holm within each form, and the seeds
    that train counted per arm with McNemar's exact test."""
    from meanfield.stats import holm
    from simulations.accuracy_primary import (
        DESIGN_P,
        FORMS,
        SPARSITIES,
        analyse,
        arm_label,
        arms,
        markdown,
        primary,
    )

    assert all(len(primary(f)) == 9 for f in FORMS) and len(arms()) == 22
    rng = np.random.default_rng(1)
    seed_effect = rng.normal(0, 0.05, 10)
    rows = []
    for arm in arms():
        label = arm_label(arm)
        # SBP-SR [multiplier] is 3 points above everything; the shuffled [weights] arm trains
        # only at seeds 0-2 (accuracy 0.1 elsewhere: at chance)
        effect = 0.03 if label == "ffnn snip+neuron [multiplier]" else 0.0
        for seed in range(10):
            for s in SPARSITIES:
                acc = 0.8 + effect + seed_effect[seed] + rng.normal(0, 0.002)
                if label == "ffnn snip+neuron (shuffled) [weights]" and seed > 2:
                    acc = 0.1
                rows.append({**{c: arm[c] for c in DESIGN_P}, "sparsity": s, "seed": seed,
                             "test_accuracy": acc})
    table = analyse(pd.DataFrame(rows))
    assert len(table) == 18 and (table.n_seeds == 10).all()
    first = table[(table.form == "multiplier")
                  & (table.comparison == "SBP-SR vs random + rescaling")].iloc[0]
    assert first["mean"] == pytest.approx(0.03, abs=0.002) and first.p_holm < 1e-6
    for _form, part in table.groupby("form"):
        np.testing.assert_allclose(part.p_holm, holm(part.p), rtol=1e-15)
    shuffle = table[(table.form == "weights")
                    & (table.comparison == "SBP-SR vs its layer-wise shuffle")].iloc[0]
    assert (shuffle.trained_a, shuffle.trained_b) == (10, 3)
    assert shuffle.p_exact == pytest.approx(2 / 2 ** 7, rel=1e-12)  # 7 discordant, all one way
    assert markdown(table).count("\n") == 20
