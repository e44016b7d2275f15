"""Figure 9: test accuracy during training after 90 % SNIP pruning: ordered vs EOC vs SBP-SR."""

from ._common import parse, read, save


def main(argv=None):
    args = parse(__doc__, argv)
    df = read(args, "training_curves")
    fig, (left, right) = _two()
    for label, runs in df.groupby("run", sort=False):
        mean = runs.groupby("epoch")[["test_accuracy", "train_loss"]].mean()
        left.plot(mean.index, 100 * mean.test_accuracy, marker="o", ms=3, label=label)
        right.semilogy(mean.index, mean.train_loss, marker="o", ms=3, label=label)
    left.axhline(10, color="gray", ls=":", label="chance")
    left.set_xlabel("epoch")
    left.set_ylabel("test accuracy (%)")
    right.set_xlabel("epoch")
    right.set_ylabel("training loss")
    left.legend(fontsize=8)
    left.set_title("mnist5k, tanh FFNN 30 x 100, 90 % pruned by SNIP")
    save(fig, args, "fig9_training_curves")


def _two():
    import matplotlib.pyplot as plt

    return plt.subplots(1, 2, figsize=(11.0, 4.2), constrained_layout=True)


if __name__ == "__main__":
    main()
