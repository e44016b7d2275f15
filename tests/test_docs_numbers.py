"""The docs' tables of measured numbers are the output of the script that measured them, for the
record committed beside them (docs/data/): a rerun that changes a number changes the record, and
the docs cannot drift from it by hand."""

from pathlib import Path

import pandas as pd
import pytest

from simulations import prediction_check

DOCS = Path(__file__).resolve().parent.parent / "docs"


def between(text, name):
    """The text between ``<!-- name: begin -->`` and ``<!-- name: end -->``."""
    begin, end = f"<!-- {name}: begin -->\n", f"<!-- {name}: end -->"
    assert text.count(begin) == 1 and text.count(end) == 1, name
    return text[text.index(begin) + len(begin):text.index(end)]


def test_the_prediction_check_table_is_the_record_s():
    """docs/critical_sparsity.md §8 against docs/data/prediction_check.csv, through
    simulations/prediction_check.py's ``markdown``."""
    record = pd.read_csv(DOCS / "data" / "prediction_check.csv")
    assert len(record) == 24 and (record.trials == 200).all()
    text = (DOCS / "critical_sparsity.md").read_text(encoding="utf-8")
    assert between(text, "prediction_check") == prediction_check.markdown(record)


def test_the_primary_family_table_is_the_record_s():
    """docs/training.md's primary family against docs/data/accuracy_primary.csv (through
    simulations/accuracy_primary.py's ``markdown``), and that CSV against the per-run record
    docs/data/accuracy_study.csv it is computed from (``analyse``)."""
    from simulations import accuracy_primary

    runs = pd.read_csv(DOCS / "data" / "accuracy_study.csv")
    runs["init"] = runs["init"].astype(str)
    assert runs.seed.nunique() == 10 and len(runs) == 660
    record = pd.read_csv(DOCS / "data" / "accuracy_primary.csv")
    pd.testing.assert_frame_equal(accuracy_primary.analyse(runs), record, check_exact=False,
                                  rtol=1e-12)
    text = (DOCS / "training.md").read_text(encoding="utf-8")
    assert between(text, "accuracy_primary") == accuracy_primary.markdown(record)


def test_the_exploratory_study_s_tables_are_the_record_s():
    """docs/training.md's per-cell tables and its paired-differences table are
    simulations/accuracy_table.py's output for the committed 3-seed record
    docs/data/accuracy_table.runs.csv."""
    from simulations import accuracy_chi
    from simulations import accuracy_table as at

    runs = pd.read_csv(DOCS / "data" / "accuracy_table.runs.csv")
    runs["init"] = runs["init"].astype(str)
    assert runs.seed.nunique() == 3 and len(runs) == 1404
    text = (DOCS / "training.md").read_text(encoding="utf-8")
    assert between(text, "accuracy_cells") == at.docs_cell_tables(runs)
    sparsities = sorted(runs.loc[runs.method != "none", "sparsity"].unique())
    assert between(text, "accuracy_paired") == at.docs_paired(at.paired_table(runs, sparsities))
    assert between(text, "accuracy_kept") == at.docs_kept(runs)
    at30 = runs[runs.depth == 30]
    assert between(text, "accuracy_chi") == accuracy_chi.summary_table(at30, at30)


def test_the_conv_study_tables_are_the_record_s():
    """docs/torch.md's conv study tables are simulations/conv_study.py's output for the committed
    record (docs/data/conv_study.csv and conv_study_lr.csv)."""
    from simulations import conv_study

    text = (DOCS / "torch.md").read_text(encoding="utf-8")
    runs = pd.read_csv(DOCS / "data" / "conv_study.csv")
    tuning = pd.read_csv(DOCS / "data" / "conv_study_lr.csv")
    assert len(tuning) == 30 and runs.seed.nunique() == 4 and len(runs) == 120
    assert between(text, "conv_study") == conv_study.docs_tables(runs, tuning)


def test_the_resnet18_table_is_the_record_s():
    """docs/torch.md's ResNet-18 table is simulations/resnet18_collapse.py's output for the
    committed record docs/data/resnet18_collapse.csv."""
    from simulations import resnet18_collapse

    text = (DOCS / "torch.md").read_text(encoding="utf-8")
    r18 = pd.read_csv(DOCS / "data" / "resnet18_collapse.csv")
    assert len(r18) == 9 and set(r18.method) == {"snip", "grasp", "synflow"}
    assert between(text, "resnet18") == resnet18_collapse.markdown(r18)


def test_the_conv_pruning_tables_are_the_record_s():
    """docs/convolutional.md's tables are simulations/scr_conv.py's output for the committed
    record; the summary is the trials' own, and the Must-show rows (CNN, depths 8 and 16, three
    phases) have 200 trials each."""
    from simulations import scr_conv

    text = (DOCS / "convolutional.md").read_text(encoding="utf-8")
    summary = pd.read_csv(DOCS / "data" / "scr_conv.csv")
    trials = pd.read_csv(DOCS / "data" / "scr_conv.trials.csv")
    layers = pd.read_csv(DOCS / "data" / "scr_conv_layers.csv")
    assert len(summary) == 27 and (summary.trials == 200).all() and len(trials) == 27 * 200
    means = trials.groupby(["arch", "sigma_w", "depth"]).s_cr.mean()
    for r in summary.itertuples():
        assert means[(r.arch, r.sigma_w, r.depth)] == pytest.approx(r.s_cr_mean, abs=1e-12)
    assert between(text, "scr_conv_depth") == scr_conv.depth_table(summary)
    assert between(text, "scr_conv_layout") == scr_conv.layout_table(layers)


def test_the_score_law_assumptions_table_is_the_record_s():
    """docs/critical_sparsity.md §9's table of what the score laws' assumptions cost on
    networks is simulations/scr_approximations.py's output for the committed record (200
    networks a configuration), and every variant's paired difference is its mean minus the
    networks' own."""
    from simulations import scr_approximations

    record = pd.read_csv(DOCS / "data" / "scr_approximations.csv")
    assert (record.trials == 200).all() and set(record.variant) == set(scr_approximations.VARIANTS)
    for _, g in record.groupby(["arch", "width", "depth"]):
        g = g.set_index("variant")
        for v in scr_approximations.VARIANTS:
            assert g.loc[v, "diff"] == pytest.approx(g.loc[v, "s_cr"] - g.loc["nets", "s_cr"],
                                                     abs=1e-12)
    text = (DOCS / "critical_sparsity.md").read_text(encoding="utf-8")
    assert between(text, "scr_approximations") == scr_approximations.markdown(record) + "\n"


def test_the_analytic_domain_table_is_the_record_s():
    """docs/critical_sparsity.md §5e's ResNet grid is simulations/analytic_domain.py's output for
    the committed record (200 networks a configuration), and the route's domain rule
    (``_analytic.outside``) is what the record says it was when it ran."""
    from meanfield.prediction import _analytic
    from simulations import analytic_domain

    record = pd.read_csv(DOCS / "data" / "analytic_domain.csv")
    assert (record.trials == 200).all() and len(record) == len(analytic_domain.GRID)
    for r in record.itertuples():
        assert r.analytic_in_domain == (_analytic.outside(r.width, r.depth, r.arch) == "")
    text = (DOCS / "critical_sparsity.md").read_text(encoding="utf-8")
    assert between(text, "analytic_domain") == analytic_domain.markdown(record) + "\n"
