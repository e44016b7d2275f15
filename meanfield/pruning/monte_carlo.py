"""Monte Carlo of pruning at initialization on finite random networks: the critical sparsity s_cr
and the fraction of weights kept per layer, over grids of parameters, on any executor, resumable.
docs/theory.md §4 (Hayou, Ton, Doucet, Teh 2021).

Randomness: trial i of every configuration draws everything (weights, biases, inputs, labels) from
``numpy.random.default_rng(SeedSequence(seed).spawn(trials)[i])`` — so results are bit-identical
whatever the executor and the number of workers, and every configuration of a sweep sees the same
streams (common random numbers, which sharpen comparisons between phases).
"""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path

import numpy as np

from .._progress import progress_bar
from .._threads import with_one_blas_thread
from .._validate import (
    InputError,
    InputTypeError,
    check_array,
    check_bool,
    check_choice,
    check_int,
    check_kernel_size,
    check_memory,
    check_path,
    check_probability,
)
from ..activations import get_activation
from ..nets.conv import check_stages, conv_layout, conv_trial_bytes, draw_conv_trial
from ..nets.network import check_finite, parameter_count
from ..sweeps._executors import run_tasks
from ..sweeps._store import TrialStore
from ..theory.archs import ARCHS, CONV_ARCHS
from ..theory.phases import resolve_sigma_w
from .conv import conv_critical_sparsity_trial, conv_scores
from .critical import DEFINITIONS
from .masks import global_masks, kept_fraction
from .scoring import METHODS, scores
from .trial import (
    _trial_inputs,
    critical_sparsity_trial,
    snip_critical_sparsity_trial,
)

__all__ = ["simulate_critical_sparsity", "kept_per_layer", "sweep_critical_sparsity",
           "sweep_kept_per_layer"]

_PARAMS = ("activation", "width", "depth", "sigma_w", "sigma_b", "batch", "classes", "method",
           "arch", "seed")
_CHUNK_SECONDS = 0.5  # aim for tasks of about this long, so scheduling costs stay small


def trial_seed(seed, trial):
    """The SeedSequence of trial ``trial``: ``SeedSequence(seed).spawn(n)[trial]`` for any n > trial."""
    return np.random.SeedSequence(seed, spawn_key=(int(trial),))


def _is_scalar(value):
    """A string, or anything numpy sees as 0-d (a ragged nest is a list, not a scalar)."""
    if isinstance(value, (str, bytes)):
        return True
    try:
        return np.ndim(value) == 0
    except ValueError:  # ragged
        return False


def _as_list(name, value):
    if _is_scalar(value):
        return [value]
    try:
        values = list(value)
    except TypeError:
        raise InputTypeError(f"`{name}` == {value!r}: must be a value or a list of them") from None
    if not values:
        raise InputError(f"`{name}` is empty: give at least one value")
    return values


def _trial_bytes(cfg):
    """Memory one trial needs (float32): the network, the inputs, the forward cache (H and Y, L×B×N
    each), the backward's four B×N buffers, the logits and their gradient, the scores (one per
    weight). Python ints, so an absurd request is measured, not overflowed."""
    w, d, b, c = cfg["width"], cfg["depth"], cfg["batch"], cfg["classes"]
    if "image_size" in cfg:
        return conv_trial_bytes(w, d, b, c, cfg["image_size"], cfg["kernel_size"],
                                cfg["stages"])
    params = parameter_count(w, d, w, c)
    return 4 * (2 * params + b * w * (1 + 2 * d + 4) + 2 * b * c)


_NOT_KEPT = object()  # the `sparsity` of an s_cr sweep: none (None itself is a bad sparsity)


def _configs(activation, width, depth, sigma_w, sigma_b, batch, classes, method, arch, seed,
             sparsity=_NOT_KEPT, image_size=8, kernel_size=3, stages=1):
    """Validated configurations (dicts) of the Cartesian product of the list-valued arguments.
    ``sigma_w`` may be a number or a word of :func:`meanfield.theory.resolve_sigma_w` ("eoc": the EOC
    value at that σ_b). A configuration whose trial cannot fit in memory is refused here, before
    any worker allocates it."""

    seed = check_int("seed", seed)
    batch = check_int("batch", batch, low=1)
    classes = check_int("classes", classes, low=2)
    out = []
    grid = itertools.product(_as_list("activation", activation), _as_list("width", width),
                             _as_list("depth", depth), _as_list("sigma_b", sigma_b),
                             _as_list("sigma_w", sigma_w), _as_list("method", method),
                             _as_list("arch", arch), _as_list("sparsity", sparsity))
    for act, w, d, sb, sw, m, a, s in grid:
        act_obj = get_activation(act)
        sb = float(check_array("sigma_b", sb, scalar=True))
        cfg = {"activation": act_obj.name,
               "width": check_int("width", w, low=1), "depth": check_int("depth", d, low=1),
               "sigma_w": resolve_sigma_w(act_obj, sw, sb), "sigma_b": sb, "batch": batch,
               "classes": classes, "method": check_choice("method", m, METHODS),
               "arch": check_choice("arch", a, ARCHS + CONV_ARCHS), "seed": seed}
        if cfg["arch"] in CONV_ARCHS:
            cfg.update(_conv_config(cfg, image_size, kernel_size, stages))
        check_memory(f"`width` == {cfg['width']}, `depth` == {cfg['depth']}, `batch` == {batch}, "
                     f"`classes` == {classes} (one trial)", _trial_bytes(cfg))
        if s is not _NOT_KEPT:
            cfg["sparsity"] = check_probability("sparsity", s)
        out.append((act, cfg))
    if len({"image_size" in cfg for _, cfg in out}) > 1:
        raise InputError(f"`arch` == {arch!r}: dense and convolutional architectures make tables "
                         f"of different columns; sweep them separately")
    return out


def _conv_config(cfg, image_size, kernel_size, stages):
    """The conv networks' own entries of a configuration, checked (h a multiple of 2^(S−1), and
    enough layers for the stages)."""
    h = check_int("image_size", image_size, low=1)
    k = check_kernel_size(kernel_size)
    S = check_stages(h, stages)
    conv_layout(cfg["arch"], cfg["depth"], S)
    return {"image_size": h, "kernel_size": k, "stages": S}


def _n_layers(cfg):
    """The weight arrays of a configuration's network (the rows of a kept-per-layer trial)."""
    if "image_size" in cfg:
        return len(conv_layout(cfg["arch"], cfg["depth"], cfg["stages"]))
    return cfg["depth"] + 1


def _scores(act, cfg, rng):
    """The scores of one trial: the same draws (network, X, y) as the SNIP fast path."""

    if "image_size" in cfg:
        net, X, y = draw_conv_trial(get_activation(act), cfg["width"], cfg["depth"],
                                    cfg["sigma_w"], cfg["sigma_b"], cfg["batch"], cfg["classes"],
                                    cfg["image_size"], cfg["kernel_size"], rng,
                                    arch=cfg["arch"], stages=cfg["stages"])
        sc = conv_scores(net, X, y, cfg["method"], sparsity=cfg.get("sparsity"), rng=rng)
        return check_finite(net, sc, f"{cfg['method']} scores")
    net, X, y = _trial_inputs(act, cfg["width"], cfg["depth"], cfg["sigma_w"], cfg["sigma_b"],
                              cfg["batch"], cfg["classes"], cfg["arch"], rng, np.float32)
    sc = scores(net, X, y, cfg["method"], sparsity=cfg.get("sparsity"), rng=rng)
    return check_finite(net, sc, f"{cfg['method']} scores")


@with_one_blas_thread
def _scr_trials(act, cfg, trials):
    """Rows ``{**cfg, trial, s_cr}`` for the given trial indices (runs in a worker)."""

    rows = []
    for i in trials:
        rng = np.random.default_rng(trial_seed(cfg["seed"], i))
        args = (act, cfg["width"], cfg["depth"], cfg["sigma_w"], cfg["sigma_b"])
        kw = dict(batch=cfg["batch"], classes=cfg["classes"], arch=cfg["arch"], rng=rng,
                  definition=cfg.get("definition", "layer"))
        if "image_size" in cfg:
            s_cr = conv_critical_sparsity_trial(*args, method=cfg["method"],
                                                image_size=cfg["image_size"],
                                                kernel_size=cfg["kernel_size"],
                                                stages=cfg["stages"], **kw)
        elif cfg["method"] == "snip":
            s_cr = snip_critical_sparsity_trial(*args, **kw)
        else:
            s_cr = critical_sparsity_trial(*args, method=cfg["method"], **kw)
        rows.append({**cfg, "trial": int(i), "s_cr": float(s_cr)})
    return rows


@with_one_blas_thread
def _kept_trials(act, cfg, trials):
    """Rows ``{**cfg, trial, layer, kept_fraction}`` (layers 1 … depth + 1, the readout last;
    a conv network's in the order of :func:`meanfield.nets.conv.conv_layout`, with a
    ``layer_name``)."""

    rows = []
    for i in trials:
        rng = np.random.default_rng(trial_seed(cfg["seed"], i))
        kept = kept_fraction(global_masks(_scores(act, cfg, rng), cfg["sparsity"]))
        names = ({"layer_name": layer.name} for layer in
                 conv_layout(cfg["arch"], cfg["depth"], cfg["stages"])) \
            if "image_size" in cfg else itertools.repeat({})
        rows += [{**cfg, "trial": int(i), "layer": layer + 1, **name, "kept_fraction": float(k)}
                 for (layer, k), name in zip(enumerate(kept), names)]
    return rows


def _chunk_size(cfg):
    """Trials per task: about _CHUNK_SECONDS of work, from the multiply-adds of one trial."""
    flops = 6.0 * cfg["batch"] * cfg["width"] ** 2 * (cfg["depth"] + 1)
    if "image_size" in cfg:
        flops *= cfg["image_size"] ** 2 * cfg["kernel_size"] ** 2
    return max(1, min(64, int(_CHUNK_SECONDS * 5e9 / flops)))


def _run(worker, configs, trials, executor, store, progress, key):
    """Run ``trials`` trials of every configuration; returns all rows (stored and new)."""



    import pandas as pd  # lazy: `import meanfield` stays light (tests/test_package.py)
    trials = check_int("trials", trials, low=1)
    progress = check_bool("progress", progress)
    # the trial indices to run and the rows they return (a few hundred bytes each, kept in
    # memory until the table is made): refused before the loop that would list them
    rows_per_trial = max(_n_layers(cfg) if "sparsity" in cfg else 1 for _, cfg in configs)
    check_memory(f"`trials` == {trials} over {len(configs)} configuration(s)",
                 trials * len(configs) * rows_per_trial * 512)
    st = TrialStore(store, key)  # store=None: in memory
    unique = {}  # a value given twice in a grid is one configuration
    for act, cfg in configs:
        unique.setdefault(tuple(cfg.items()), (act, cfg))
    configs = list(unique.values())
    tasks, total, done = [], 0, 0
    for act, cfg in configs:
        # a trial's rows are written in order: its last row present means the trial is done
        last = {**cfg, "layer": _n_layers(cfg)}
        todo = [i for i in range(trials) if not st.has({**last, "trial": i})]
        done += trials - len(todo)
        total += trials
        size = _chunk_size(cfg)
        tasks += [(act, cfg, tuple(todo[j:j + size])) for j in range(0, len(todo), size)]
    # closing: an error or interrupt here, between two results, cancels the tasks not yet run
    # at once, not whenever the generator is collected
    with progress_bar(total, progress, desc="trials", initial=done) as bar, \
            contextlib.closing(run_tasks(worker, tasks, executor)) as results:
        for task, result in results:
            st.append(result)
            bar.update(len(task[2]))
    # the rows of these configurations, earlier runs' included
    stored = st.frame
    wanted = pd.DataFrame([cfg for _, cfg in configs])
    out = stored.merge(wanted, on=list(wanted.columns), how="inner")
    out = out[out.trial < trials][list(stored.columns)]
    sort = [k for k in key if k in out.columns]
    return out.sort_values(sort, kind="stable").reset_index(drop=True)


def sweep_critical_sparsity(activation, width, depth, sigma_w, sigma_b, *, trials, batch=128,
                            classes=10, method="snip", arch="ffnn", seed=0, executor=None,
                            store=None, progress=False, definition="layer", image_size=8,
                            kernel_size=3, stages=1):
    """Monte Carlo critical sparsity over the grid of every list-valued argument.

    Each of ``activation, width, depth, sigma_w, sigma_b, method, arch`` may be a scalar or a list;
    the sweep runs the Cartesian product. ``sigma_w="eoc"`` means the EOC value at each σ_b
    (``"ordered"``, ``"chaotic"``: :data:`meanfield.theory.SIGMA_W_PRESETS`).
    ``definition`` is one value for the whole sweep. Other arguments as in
    :func:`simulate_critical_sparsity`.

    Returns
    -------
    pandas.DataFrame
        One row per (configuration, trial): the parameters, ``trial`` and ``s_cr``; with a
        ``definition`` other than ``"layer"``, a ``definition`` column after ``seed``.
    """

    definition = check_choice("definition", definition, DEFINITIONS)
    configs = _configs(activation, width, depth, sigma_w, sigma_b, batch, classes, method, arch,
                       seed, image_size=image_size, kernel_size=kernel_size, stages=stages)
    params = _params_of(configs)
    key = params + ("trial",)
    if definition != "layer":  # the default keeps the columns (and stores) of before
        configs = [(act, {**cfg, "definition": definition}) for act, cfg in configs]
        key = params + ("definition", "trial")
    elif store is not None:
        _check_store_definition(store)
    return _run(_scr_trials, configs, trials, executor, store, progress, key)


def _params_of(configs):
    """The parameter columns of a sweep's table: the conv nets' add ``image_size, kernel_size,
    stages``."""
    return _PARAMS + (("image_size", "kernel_size", "stages") if "image_size" in configs[0][1]
                      else ())


def _check_store_definition(store):
    """A store with a ``definition`` column holds s_cr of another event: the default's key, which
    has no such column, would take its trials for its own."""

    path = Path(check_path("store", store))
    if path.is_file():
        with path.open() as f:
            header = f.readline().rstrip("\n").split(",")
        if "definition" in header:
            raise InputError(f"`store` == {str(store)!r}: holds s_cr with a `definition` column "
                             f"(not the default 'layer'); use another file or that definition")


def simulate_critical_sparsity(activation, width, depth, sigma_w, sigma_b, *, trials, batch=128,
                               classes=10, method="snip", arch="ffnn", seed=0, executor=None,
                               store=None, progress=False, definition="layer", image_size=8,
                               kernel_size=3, stages=1):
    """Monte Carlo estimate of the critical sparsity s_cr of pruning at initialization.

    Each trial draws a random network (docs/theory.md §1: ``depth`` hidden layers of ``width`` units,
    a linear readout to ``classes`` logits, counted as a layer), a batch of ``batch`` inputs
    N(0, I_width) with labels uniform over the classes, scores every weight by ``method`` on the
    mean cross-entropy, and records s_cr = #{g ≤ m}/#{weights} with m = min_l max_ij g^l_ij: the
    smallest global sparsity at which some layer is fully pruned (docs/theory.md §4); or, with
    ``definition="disconnect"``, at which the output no longer depends on the input
    (:func:`meanfield.pruning.critical_sparsity`).

    Parameters
    ----------
    activation : str or Activation
    width, depth : int, >= 1
    sigma_w : float, > 0, or {"eoc", "ordered", "chaotic"}
        "eoc": the EOC value at ``sigma_b``; "ordered", "chaotic": the values of
        ``meanfield.theory.SIGMA_W_PRESETS`` (:func:`meanfield.theory.resolve_sigma_w`); the rows record
        the number.
    sigma_b : float, >= 0
    trials : int, >= 1
    batch : int, default 128
    classes : int, default 10
    method : {"snip", "grasp", "synflow", "magnitude", "random"}, default "snip"
        SynFlow's s_cr (every arch) is found by bisection over its target
        (:func:`meanfield.pruning.critical_sparsity_trial`): its scores depend on the target.
    arch : {"ffnn", "resnet", "stable_resnet", "cnn", "conv_resnet", "conv_stable_resnet"}
        Default "ffnn". The conv archs: the random conv networks of :mod:`meanfield.nets.conv`
        (``width`` channels, ``depth`` conv layers, circular padding, global average pooling,
        dense readout; the ResNets' blocks as the dense ones') on N(0, 1) images of ``width``
        channels, every method (docs/convolutional.md).
    seed : int, default 0
        Trial i uses ``SeedSequence(seed).spawn(trials)[i]``.
    executor : None, concurrent.futures.Executor or dask.distributed.Client
        Where trials run; results do not depend on it.
    store : str or Path, optional
        CSV file that each finished trial is appended to; a rerun with the same file skips the
        trials already there (resume after an interruption). Each row records the versions of
        meanfield, numpy and numba that computed it, and a file written with other versions is
        refused (a ``ValueError`` saying what to do) rather than mixed; see
        ``meanfield.sweeps.TrialStore``.
    progress : bool, default False
        A tqdm progress bar on stderr.
    definition : {"layer", "disconnect"}, default "layer"
        Which event s_cr marks: some layer fully pruned (the paper's), or the output cut from the
        input (no path of kept weights; a ResNet's skips are never pruned). For ResNets they
        differ: an emptied residual block leaves the skip. For a CNN, a path runs through
        channels (any kept offset of a kernel connects its two channels).
    image_size, kernel_size : int, default 8, 3
        For the conv archs: h and k (odd); the table then has the columns ``image_size,
        kernel_size, stages`` after ``seed``.
    stages : int, default 1
        For the conv archs: the CIFAR-style layout (:func:`meanfield.nets.conv.conv_layout`:
        channels doubling, positions halving at each stage, 1 × 1 projection shortcuts in the
        ResNets, which are weights and are scored); ``image_size`` a multiple of 2^(stages−1).

    Returns
    -------
    pandas.DataFrame
        One row per trial: ``activation, width, depth, sigma_w, sigma_b, batch, classes, method,
        arch, seed, trial, s_cr``, and ``definition`` after ``seed`` unless it is ``"layer"``.

    References
    ----------
    Hayou, Ton, Doucet, Teh (2021), §3, Proposition 1; docs/theory.md §4.
    """
    for name, value in (("width", width), ("depth", depth), ("sigma_w", sigma_w),
                        ("sigma_b", sigma_b), ("method", method), ("arch", arch)):
        if not _is_scalar(value):
            raise InputTypeError(f"`{name}` == {value!r}: must be a scalar; use "
                                 f"sweep_critical_sparsity for grids")
    return sweep_critical_sparsity(activation, width, depth, sigma_w, sigma_b, trials=trials,
                                   batch=batch, classes=classes, method=method, arch=arch,
                                   seed=seed, executor=executor, store=store, progress=progress,
                                   definition=definition, image_size=image_size,
                                   kernel_size=kernel_size, stages=stages)


def sweep_kept_per_layer(activation, width, depth, sigma_w, sigma_b, sparsity, *, trials,
                         batch=128, classes=10, method="snip", arch="ffnn", seed=0, executor=None,
                         store=None, progress=False, per_trial=False, image_size=8, kernel_size=3,
                         stages=1):
    """:func:`kept_per_layer` over the grid of every list-valued argument (``sparsity`` too)."""
    per_trial = check_bool("per_trial", per_trial)
    configs = _configs(activation, width, depth, sigma_w, sigma_b, batch, classes, method, arch,
                       seed, sparsity=sparsity, image_size=image_size, kernel_size=kernel_size,
                       stages=stages)
    params = _params_of(configs)
    key = params + ("sparsity", "trial", "layer")
    rows = _run(_kept_trials, configs, trials, executor, store, progress, key)
    if per_trial:
        return rows
    group = list(params) + ["sparsity", "layer"] + (["layer_name"] if "layer_name" in rows
                                                    else [])
    agg = rows.groupby(group, sort=True).kept_fraction.agg(["mean", "std", "count"]).reset_index()
    agg = agg.rename(columns={"mean": "kept_fraction", "std": "kept_sd", "count": "trials"})
    agg["kept_se"] = agg.kept_sd / np.sqrt(agg.trials)
    return agg


def kept_per_layer(activation, width, depth, sigma_w, sigma_b, sparsity, *, trials, batch=128,
                   classes=10, method="snip", arch="ffnn", seed=0, executor=None, store=None,
                   progress=False, per_trial=False, image_size=8, kernel_size=3, stages=1):
    """Fraction of weights kept in each layer after global pruning at ``sparsity``.

    Parameters
    ----------
    sparsity : float, in [0, 1)
        Global fraction of weights pruned.
    per_trial : bool, default False
        Return one row per (trial, layer) instead of the summary.
    activation, width, depth, sigma_w, sigma_b
        As in :func:`simulate_critical_sparsity`.
    trials, batch, classes, method, arch, seed, executor, store, progress, image_size, kernel_size,
    stages
        As in :func:`simulate_critical_sparsity`.

    Returns
    -------
    pandas.DataFrame
        One row per layer (1 … depth + 1, the readout last; a conv network's weight arrays in
        the order of :func:`meanfield.nets.conv.conv_layout`, named in ``layer_name``, its
        projections their own layers): the parameters, ``layer, kept_fraction`` (mean over
        trials), ``kept_sd``, ``trials``, ``kept_se`` (``kept_sd`` and ``kept_se`` are nan with a
        single trial: one draw has no spread to estimate).

    References
    ----------
    Hayou, Ton, Doucet, Teh (2021), Figure 2; docs/theory.md §4.
    """
    return sweep_kept_per_layer(activation, width, depth, sigma_w, sigma_b, sparsity,
                                trials=trials, batch=batch, classes=classes, method=method,
                                arch=arch, seed=seed, executor=executor, store=store,
                                progress=progress, per_trial=per_trial, image_size=image_size,
                                kernel_size=kernel_size, stages=stages)
