"""A small mini-batch SGD trainer for (pruned) FFNNs, ResNets and Stable ResNets, to check the
theory against real pruning (docs/theory.md §4–5; Hayou, Ton, Doucet, Teh 2021, §4–5).

Pruning at initialization, then training with the mask applied throughout: a pruned weight is zero
before the first step and stays exactly zero (its gradient and momentum are masked too). SBP-SR is
``method="snip", rescale=True`` on an EOC FFNN or a Stable ResNet.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .._progress import progress_bar
from .._threads import blas_threads
from .._validate import (
    InputError,
    InputTypeError,
    check_bool,
    check_choice,
    check_indices,
    check_int,
    check_probability,
    check_scalar,
)
from ..activations import get_activation
from ..nets._pass import _softmax_xent
from ..nets.network import init_network
from ..pruning.chi import effective_chi
from ..pruning.masks import RESCALE_MODES, global_masks, rescale_factors
from ..pruning.masks import rescale as rescale_net
from ..pruning.masks import shuffle_masks as shuffle
from ..pruning.scoring import GRASP_TEMPERATURE, METHODS, check_temperature, scores
from ..theory.phases import SIGMA_W_PRESETS, resolve_sigma_w
from ._sgd import DataParallelSGD, check_sparse, shard_count
from .datasets import load_dataset

__all__ = ["train", "INIT_PRESETS"]

#: σ_w of the named initialisations at a given σ_b (tanh-like activations): "eoc" is computed
#: (the same presets as :data:`meanfield.theory.SIGMA_W_PRESETS`)
INIT_PRESETS = SIGMA_W_PRESETS

#: the epochs' history must fit in memory too: a bound well above any real run
MAX_EPOCHS = 1_000_000


def _dataset(dataset):

    if isinstance(dataset, str):
        return load_dataset(dataset)
    try:
        X_train, y_train, X_test, y_test = dataset
    except (TypeError, ValueError):
        raise InputTypeError("`dataset` must be a name or a tuple (X_train, y_train, X_test, "
                             "y_test)") from None
    out = []
    for name, X, y in (("train", X_train, y_train), ("test", X_test, y_test)):
        X = np.asarray(X)
        if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
            # a complex X would lose its imaginary part in the cast to float32, silently (bool is
            # not an integer dtype to numpy, so it is refused here too)
            raise InputTypeError(f"`dataset` {name} inputs have dtype {X.dtype}: must be real "
                                 f"numbers (float or integer)")
        X = np.ascontiguousarray(X, dtype=np.float32)
        y = np.asarray(y)
        if X.ndim != 2 or y.shape != (X.shape[0],) or not np.issubdtype(y.dtype, np.integer):
            raise InputError(f"`dataset` {name} part: need X of shape (n, features) and integer "
                             f"labels y of shape (n,); got {X.shape} and {y.shape} {y.dtype}")
        if name == "train" and X.shape[0] == 0:
            raise InputError("`dataset` train part has 0 examples: training needs at least one")
        if X.shape[1] == 0:
            raise InputError(f"`dataset` {name} inputs have 0 features: need at least one")
        if not np.isfinite(X).all():
            raise InputError(f"`dataset` {name} inputs hold nan or inf (or values beyond float32): "
                             f"inputs must be finite")
        if name == "test" and X.shape[1] != out[0].shape[1]:
            raise InputError(f"`dataset` test inputs have {X.shape[1]} features, the training "
                             f"inputs {out[0].shape[1]}: they must have the same")
        # labels index the readout's rows in numba kernels, which check no bounds: a label −1
        # would train as the last class
        if y.size and y.min() < 0:
            raise InputError(f"`dataset` {name} labels hold {int(y.min())}: labels must be "
                             f"integers >= 0 (the classes are 0 … max label)")
        out += [X, check_indices(f"dataset {name} labels", y, 2 ** 31)]
    return tuple(out)


#: the values of ``rescale`` besides False/True: no rescaling, or a mode of
#: :func:`meanfield.pruning.rescale`
RESCALE_OPTIONS = ("none", *RESCALE_MODES)
#: how a rescaled net is trained: ρ folded into the trained weights, or a fixed multiplier
RESCALE_AS = ("weights", "multiplier")


def _check_rescale(rescale):
    """``rescale`` as None (no rescaling), "neuron", "layer" or "data"."""
    if isinstance(rescale, (bool, np.bool_)):
        return "neuron" if rescale else None
    if isinstance(rescale, str) and rescale in RESCALE_OPTIONS:
        return None if rescale == "none" else rescale
    err = InputError if isinstance(rescale, str) else InputTypeError
    *rest, last = map(repr, RESCALE_OPTIONS)
    raise err(f"`rescale` == {rescale!r}: must be False, True (= 'neuron'), {', '.join(rest)} "
              f"or {last}")


_STREAMS = {"split": 1, "scores_batch": 2, "scores": 3, "shuffle": 4, "batches": 5}


def _stream(seed, name):
    """The generator of one of the run's random streams (see ``seed`` in :func:`train`).

    Separate streams make a paired design: the weights never depend on whether a run prunes, a
    shuffle never moves the mini-batch order, and so on."""
    if name == "init":
        return np.random.default_rng(seed)
    return np.random.default_rng([seed, _STREAMS[name]])


def scoring_batch(n, batch, seed):
    """Indices of the ``min(batch, n)`` training examples :func:`train` scores (and, for
    ``rescale="data"``, rescales) on: drawn without replacement from the run's own stream, so the
    same for every method of one seed."""
    return _stream(seed, "scores_batch").choice(n, size=min(batch, n), replace=False)


def _check_val_fraction(val_fraction):
    if isinstance(val_fraction, (bool, np.bool_)) or not isinstance(
            val_fraction, (int, float, np.integer, np.floating)):
        raise InputTypeError(f"`val_fraction` == {val_fraction!r}: must be a number in [0, 1)")
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"`val_fraction` == {val_fraction!r}: must be a number in [0, 1)")
    return float(val_fraction)


def _stratified_split(y, fraction, rng):
    """Indices (train, validation) of a stratified split of labels ``y``, both sorted.

    The validation part takes n_val = round(fraction · n) examples, n_c,val of class c being
    ⌊fraction · n_c⌋ or ⌈fraction · n_c⌉ (largest remainders first, ties to the lower class),
    drawn at random within the class by ``rng``. Raises InputError when the split would leave
    a class with no training example, or the validation part empty."""
    n = y.size
    counts = np.bincount(y)
    target = fraction * counts
    take = np.floor(target).astype(np.int64)
    extra = int(round(fraction * n)) - int(take.sum())
    if extra > 0:
        order = np.argsort(-(target - take), kind="stable")
        take[order[:extra]] += 1
    if take.sum() == 0:
        raise InputError(f"`val_fraction` == {fraction!r}: leaves no validation example of the "
                         f"{n} training examples; use 0 for no split or a larger fraction")
    short = np.flatnonzero((counts > 0) & (counts - take < 1))
    if short.size:
        raise InputError(f"`val_fraction` == {fraction!r}: leaves class {int(short[0])} "
                         f"({int(counts[short[0]])} examples) no training example; "
                         f"must leave every class at least one")
    val = []
    for c in np.flatnonzero(take):
        members = np.flatnonzero(y == c)
        val.append(rng.choice(members, size=int(take[c]), replace=False))
    val = np.sort(np.concatenate(val))
    keep = np.ones(n, bool)
    keep[val] = False
    return np.flatnonzero(keep), val


def _accuracy_and_loss(logits_of, X, y, mapper=None, chunk=512):
    """Accuracy and mean cross-entropy over a data set, in chunks, ``logits_of(X_chunk)`` giving
    the logits (B, C) (the loss of the networks module's own softmax cross-entropy kernel);
    ``mapper(fn, items)`` may spread the chunks over threads (the chunks' sums are added in
    order, so the result does not depend on it)."""

    def one(s):
        logits = logits_of(X[s:s + chunk])
        labels = y[s:s + chunk]
        loss = _softmax_xent(logits, labels, np.empty_like(logits)) * labels.size
        return int((logits.argmax(axis=1) == labels).sum()), loss

    parts = (mapper or (lambda fn, items: [fn(i) for i in items]))(one, range(0, X.shape[0], chunk))
    correct, loss = 0, 0.0
    for c, l in parts:
        correct += c
        loss += l
    return correct / X.shape[0], loss / X.shape[0]


def train(activation, dataset, *, width, depth, sigma_w, sigma_b, arch="ffnn", method="none",
          sparsity=0.0, rescale=False, epochs=10, batch=128, lr=0.01, momentum=0.9,
          weight_decay=0.0, seed=0, progress=False, return_network=False, threads=None,
          sparse="auto", shuffle_masks=False, val_fraction=0.0, grasp_temperature=GRASP_TEMPERATURE,
          rescale_as="weights"):
    """Prune a random network at initialization, then train it by mini-batch SGD with momentum.

    Parameters
    ----------
    activation : str or Activation
    dataset : str or tuple
        ``"mnist5k"``, ``"digits"``, ``"teacher"`` (:func:`meanfield.load_dataset`) or
        ``(X_train, y_train, X_test, y_test)``.
    width, depth : int
        Hidden width and number of hidden layers (the readout is added).
    sigma_w : float or {"eoc", "ordered", "chaotic"}
        Weight scale; "eoc" is the EOC value at ``sigma_b``, "ordered" 0.8, "chaotic" 3.0.
    sigma_b : float
    arch : {"ffnn", "resnet", "stable_resnet"}
    method : {"none", "snip", "grasp", "synflow", "magnitude", "random"}
        Pruning criterion, scored on one mini-batch of ``batch`` training examples.
    sparsity : float in [0, 1)
        Global fraction of weights pruned.
    rescale : {False, True, "none", "neuron", "layer", "data"}
        Rescale the pruned weights to restore their variance (docs/theory.md §5), whatever the
        ``method``: True or "neuron", one factor per neuron (SBP-SR), ρ^l_i =
        √(Σ_j (W^l_ij)² / Σ_j (δ^l_ij W^l_ij)²); "layer", one factor per layer, ρ^l =
        √(Σ_ij (W^l_ij)² / Σ_ij (δ^l_ij W^l_ij)²); "data", per neuron above the first layer
        and, for the first layer, the factor that restores each neuron's pre-activation
        variance on the scoring batch, ρ¹_i = √(Var(W¹_i · x) / Var((δ¹ ∘ W¹)_i · x)) — the
        norm factor assumes exchangeable inputs, which pixels are not
        (:func:`meanfield.pruning.rescale`). False and "none": no rescaling. No effect without
        pruning.
    rescale_as : {"weights", "multiplier"}, default "weights"
        How the rescaled net is trained. "weights": ρ folded into the weights, which SGD then
        trains (W ← ρ ∘ δ ∘ W at step 0). "multiplier": the paper's form, y^l = ρ^l ∘ (δ^l ∘ W̃^l)
        y^{l−1} + b^l with ρ a fixed multiplier and W̃ trained — the same network at step 0, but
        SGD moves a rescaled row's effective weights ρ² times as far (for a first-layer neuron
        keeping 5 of 784 pixels, ρ² ≈ 150); trained as gradient gains ρ² on the effective
        weights (:class:`meanfield.training._sgd.DataParallelSGD`, exact). No effect without
        ``rescale``.
    epochs, batch : int
    lr, momentum, weight_decay : float
    seed : int
        Everything random comes from ``seed``, through separate streams so that every arm of a
        paired comparison shares what it can: the initial weights from
        ``numpy.random.default_rng(seed)`` (as before), the validation split from
        ``default_rng([seed, 1])``, the scoring batch from ``[seed, 2]``, random scores from
        ``[seed, 3]``, the mask shuffle from ``[seed, 4]`` and the order of the mini-batches
        from ``[seed, 5]``. So two runs with one seed that differ in ``method``, ``sparsity``,
        ``rescale``, ``shuffle_masks`` or ``lr`` start from the same weights, score on the same
        batch and see the same mini-batches in the same order (a paired design); equal
        parameters give bit-identical histories.
    progress : bool
        A progress bar over epochs.
    return_network : bool
        Also return the trained :class:`~meanfield.nets.Network` and the masks (None when
        not pruned).
    threads : int or None
        Threads for the training steps and the evaluations (None: the machine's cores, when a
        step is large enough to gain), at most one per shard: each mini-batch is cut into
        ``max(1, batch // 64)`` fixed shards whose gradients are summed in order, so on a given
        machine the history is bit-identical for any ``threads``.
    sparse : {"auto", True, False}
        How a pruned network's layers are trained: True, each layer as its kept weights alone in
        compressed sparse rows, costing in proportion to them; False, dense with the mask
        applied; "auto", sparse the layers that keep at most ``SPARSE_MAX_DENSITY`` (0.2) of
        their weights (below it sparse is faster, measured). The two give the same history up
        to float32 rounding (a different summation order); pruned weights stay exactly 0 either
        way. No effect without pruning.
    shuffle_masks : bool, default False
        After pruning (before any rescaling), permute the kept positions at random within each
        layer, each layer keeping its count (:func:`meanfield.pruning.shuffle_masks`; the
        layer-wise shuffle ablation of Frankle et al. 2021), with the run's generator.
    val_fraction : float in [0, 1), default 0.0
        Hold out this fraction of the training set as a stratified validation split (each
        class gives ⌊f n_c⌋ or ⌈f n_c⌉ examples, round(f n) in all; every class must keep a
        training example), drawn from a generator of its own seeded by ``seed`` (so the
        initial weights do not depend on it). The network is pruned and trained on the rest;
        the test set is untouched.
    grasp_temperature : float > 0, default 200.0
        For ``method="grasp"``: the logits are divided by T when scoring (T = 200 in the
        reference implementations; :func:`meanfield.pruning.grasp_scores`).

    Returns
    -------
    pandas.DataFrame (or ``(DataFrame, Network, masks)`` with ``return_network``)
        One row per epoch (epoch 0: before training): ``epoch, train_loss, train_accuracy,
        test_accuracy, val_accuracy, seconds, kept_weights, sparse_layers, flops`` and the
        parameters (``rescale`` as "none", "neuron", "layer" or "data"; ``rescale_as`` "none"
        without rescaling). ``val_accuracy`` is nan
        without a validation split.
        ``train_loss`` and ``train_accuracy`` are measured on the whole training set after the
        epoch; a diverged run shows nan losses. ``kept_weights``: weights not pruned;
        ``sparse_layers``: layers trained sparse; ``flops``: floating-point operations of the
        epoch's layer products as computed (2 per multiply-add; a dense-masked layer counts in
        full, a sparse one its kept weights; the elementwise work not counted), 0 for epoch 0.
        ``history.attrs["effective_chi"]``: the backward gain χ^l of hidden layers 1 … L − 1 of
        the net as training starts (pruned and rescaled), measured on the scoring batch
        (:func:`meanfield.pruning.effective_chi`).

    References
    ----------
    Hayou, Ton, Doucet, Teh (2021), Algorithm 1 (SBP-SR); docs/theory.md §5.
    """


    import pandas as pd  # lazy: `import meanfield` stays light (tests/test_package.py)
    act = get_activation(activation)
    epochs = check_int("epochs", epochs, low=0, high=MAX_EPOCHS)
    batch = check_int("batch", batch, low=1)
    seed = check_int("seed", seed)
    if threads is not None:
        threads = check_int("threads", threads, low=1)
    sparse = check_sparse(sparse)
    rescale_mode = _check_rescale(rescale)
    rescale_as = check_choice("rescale_as", rescale_as, RESCALE_AS)
    shuffle_masks = check_bool("shuffle_masks", shuffle_masks)
    val_fraction = _check_val_fraction(val_fraction)
    grasp_temperature = check_temperature(grasp_temperature, "grasp_temperature")
    method = check_choice("method", method, ("none", *METHODS))
    sparsity = check_probability("sparsity", sparsity)
    if method == "none" and sparsity > 0:
        raise InputError(f"`sparsity` == {sparsity!r} with `method` == 'none': choose a pruning "
                         f"method")
    lr = check_scalar("lr", lr, min_val=0.0)
    momentum = check_scalar("momentum", momentum, min_val=0.0)
    weight_decay = check_scalar("weight_decay", weight_decay, min_val=0.0)
    init = sigma_w
    sigma_w = resolve_sigma_w(act, sigma_w, sigma_b)
    X_train, y_train, X_test, y_test = _dataset(dataset)
    classes = int(max(y_train.max(), y_test.max())) + 1
    X_val = y_val = None
    if val_fraction > 0:
        tr, va = _stratified_split(y_train, val_fraction, _stream(seed, "split"))
        X_train, y_train, X_val, y_val = X_train[tr], y_train[tr], X_train[va], y_train[va]
    net = init_network(act, width, depth, sigma_w, sigma_b, n_in=X_train.shape[1],
                       classes=classes, arch=arch, rng=_stream(seed, "init"))
    masks = gains = None
    pick = scoring_batch(X_train.shape[0], batch, seed)
    if method != "none":
        sc = scores(net, X_train[pick], y_train[pick], method, sparsity=sparsity,
                    rng=_stream(seed, "scores"), grasp_temperature=grasp_temperature)
        masks = global_masks(sc, sparsity)
        if shuffle_masks:
            masks = shuffle(masks, _stream(seed, "shuffle"))
        if rescale_mode is not None:
            if rescale_as == "multiplier":
                gains = [rho * rho for rho in
                         rescale_factors(net, masks, rescale_mode, X=X_train[pick])]
            net = rescale_net(net, masks, rescale_mode, X=X_train[pick])
        for w, m in zip(net.weights, masks):
            w *= m
    # why a net trains or not: the backward gain of each layer of the net as training starts
    chi = effective_chi(net, X_train[pick]) if depth > 1 else np.empty(0)
    params = {"activation": act.name, "width": width, "depth": depth, "sigma_w": sigma_w,
              "init": init if isinstance(init, str) else "custom", "sigma_b": sigma_b,
              "arch": arch, "method": method, "sparsity": sparsity, "rescale": rescale_mode or "none",
              "rescale_as": rescale_as if rescale_mode else "none",
              "shuffle_masks": bool(shuffle_masks), "val_fraction": val_fraction,
              "grasp_temperature": grasp_temperature,
              "epochs": epochs, "batch": batch, "lr": lr, "momentum": momentum,
              "weight_decay": weight_decay, "seed": seed}

    def evaluate(epoch, seconds):
        with np.errstate(all="ignore"):
            train_acc, train_loss = _accuracy_and_loss(sgd.logits, X_train, y_train, sgd.map)
            test_acc, _ = _accuracy_and_loss(sgd.logits, X_test, y_test, sgd.map)
            val_acc = (math.nan if X_val is None else
                       _accuracy_and_loss(sgd.logits, X_val, y_val, sgd.map)[0])
        return {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc,
                "test_accuracy": test_acc, "val_accuracy": val_acc, "seconds": seconds,
                "kept_weights": sgd.kept_weights,
                "sparse_layers": sum(sl is not None for sl in sgd.layers),
                "flops": float(sgd.flops_per_example * n * (epoch > 0)), **params}

    n = X_train.shape[0]
    # one BLAS thread per stepping thread: on products of B × width² OpenBLAS's own threads cost
    # more than they bring (and far more on a busy machine); a single shard of a net wider than
    # 512 keeps BLAS's own threads
    blas = blas_threads(1 if width <= 512 or shard_count(batch) > 1 else None)
    with (blas, DataParallelSGD(net, masks, batch, lr, momentum, weight_decay, threads,
                                sparse, gains) as sgd,
          progress_bar(epochs, progress, desc="epochs", unit="epoch") as bar):
        rows = [evaluate(0, 0.0)]
        rng = _stream(seed, "batches")
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            order = rng.permutation(n)
            with np.errstate(all="ignore"):
                for s in range(0, n, batch):
                    idx = order[s:s + batch]
                    sgd.step(X_train[idx], y_train[idx])
            rows.append(evaluate(epoch, time.perf_counter() - t0))
            bar.update()
            bar.set_postfix_str(f"test accuracy {rows[-1]['test_accuracy']:.3f}")
        sgd.sync()
    history = pd.DataFrame(rows)
    history.attrs["effective_chi"] = chi
    return (history, net, masks) if return_network else history
