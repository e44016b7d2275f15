"""Mean-field prediction of sensitivity-based pruning (SNIP) at initialization: the layer-wise
scale of the SNIP scores, their distribution, the critical sparsity s_cr and the fraction of
weights kept per layer. docs/theory.md §4; derivation and equation numbers in
``docs/critical_sparsity.md``.

Network (docs/theory.md §1): input x ∈ R^N with x ~ N(0, I_N) (N = ``width``), ``depth`` = L hidden
layers of width N with activation φ, a readout to ``classes`` logits (layer L + 1, scored too), weights
W^l_ij ~ N(0, σ_w²/fan_in), biases N(0, σ_b²), loss = mean cross-entropy over a batch of B inputs
with labels drawn uniformly over the classes. Score g^l_ij = |W^l_ij ∂ℒ/∂W^l_ij|.

What is exact and what is approximated is listed in the docs (§9). In short: the per-layer moments
of :func:`layer_gradient_scales` are the wide-limit values under the gradient-independence
assumption (Schoenholz et al. 2017). :func:`predict_critical_sparsity` and
:func:`predict_kept_per_layer` keep the B × C readout error matrix of the batch random and, by
default (``finite_width=True``) sample a width-N network's finite-width effects too: each draw
*simulates* the top few layers and the readout (docs §5c: near the readout the forward
kernel's fluctuations couple to the readout error), and below them samples the theory's
backward signal, its class-space covariance layer by layer from N rows, a product of Wishart
matrices whose rank collapses with the distance from the readout (docs §5a). Where that chain
is known to miss (FFNNs narrower than 50, near the EOC at L ≥ 0.6 N, "disconnect" near the EOC
deeper than 20: docs §5d) the functions warn (:class:`PredictionRangeWarning`) and
:func:`meanfield.pruning.simulate_critical_sparsity` is the tool; ``finite_width="simulated"``
simulates every layer for each draw, a Monte Carlo of the gradients, and is named as one;
``finite_width="analytic"`` is the finite-width theory with no simulated layer (docs §5e). Given
them, each layer's scores are treated as independent draws from their conditional law, and the
layers as independent. ``finite_width=False`` gives the wide limit at fixed B and C.
:func:`critical_sparsity_distribution` reports which route a value took. The comparison with
Monte Carlo is in docs §8.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np

from .._threads import one_blas_thread
from .._validate import (
    InputError,
    InputTypeError,
    _show,
    check_array,
    check_bool,
    check_choice,
    check_int,
    check_kernel_size,
    check_memory,
    check_probability,
    check_scalar,
)
from ..activations import get_activation
from ..pruning.critical import _check_definition as check_event
from ..theory import _expect
from ..theory.archs import ARCHS, CONV_ARCHS, DENSE_OF
from . import _analytic, _top_block
from . import _score_laws as laws
from ._moments import NoPrediction, forward_moments, layer_moments
from .bounds import fit_bound_constant, ordered_phase_bound

_MAX_DEPTH = 100_000
_MAX_COUNT = 2 ** 63 - 1     # n_l = fan_in · fan_out is an int64 (the ``n_weights`` columns)
# The score laws' tails T(t) come out of an FFT with an absolute error of about 3e-16, and the
# largest of a layer's n_l scores sits where T ~ 1/n_l: beyond 2^40 scores a layer
# P(max ≤ t) = (1 − T)^n_l would carry an error of n_l · 3e-16 > 3e-4 (the wide limit of s_cr
# falls apart between N = 2^25 and 2^27, n_l = 2^50 … 2^54).
_MAX_SCORES = 2 ** 40
_TINY = float(np.finfo(np.float64).tiny)

__all__ = [
    "PredictionRangeWarning",
    "layer_gradient_scales",
    "predict_critical_sparsity",
    "critical_sparsity_distribution",
    "predict_kept_per_layer",
    "ordered_phase_bound",
    "fit_bound_constant",
]


class PredictionRangeWarning(RuntimeWarning):
    """The finite-width prediction is asked outside the domain of its theory, where the
    class-space chain is known to miss the Monte Carlo (docs/critical_sparsity.md §5d): an FFNN
    narrower than 50, one near the EOC at least 0.6 times as deep as it is wide (ξ_c ≥ L), or,
    for ``definition="disconnect"``, one deeper than 20 with ξ_c ≥ 10. The prediction is still
    the chain's; there :func:`meanfield.pruning.simulate_critical_sparsity` is the tool (or
    ``finite_width="simulated"``, which simulates the whole network for each draw: a Monte Carlo
    of its gradients, not a theory)."""


#: the archs of the analytic finite-width route
ANALYTIC_ARCHS = ("ffnn", "resnet", "stable_resnet")
#: ``finite_width``'s routes by name (True is "chain", False is "wide").
FINITE_WIDTH = ("chain", "wide", "simulated", "analytic")


def _check_finite_width(finite_width):
    """``finite_width`` as one of :data:`FINITE_WIDTH`."""
    if isinstance(finite_width, (bool, np.bool_)):
        return "chain" if finite_width else "wide"
    if isinstance(finite_width, str):
        return check_choice("finite_width", finite_width, FINITE_WIDTH)
    raise InputTypeError(f"`finite_width` == {_show(finite_width)}: must be True (the finite-width "
                         f"chain), False (the wide limit) or one of {FINITE_WIDTH}")


def route(mode, depth, arch, definition="layer"):
    """What a prediction of ``finite_width`` route ``mode`` is made of (docs/critical_sparsity.md
    §5–§5d): "wide limit" (mean-field theory at fixed B and C), "finite-width chain + simulated
    top block" (the theory's class-space chain below a simulated top block; "+ simulated ends"
    for ``definition="disconnect"``, whose first layers are simulated too) or "simulated
    network" (every hidden layer simulated: asked for, or a network no deeper than its block)."""
    if mode == "wide":
        return "wide limit"
    if mode == "simulated":
        return "simulated network"
    if mode == "analytic":
        return "analytic finite-width theory"
    top = _top_block.top_layers(depth, arch, definition)
    bottom = _top_block.bottom_layers(depth, arch, definition, top)
    if top + bottom >= depth:
        return "simulated network"
    return "finite-width chain + simulated " + ("ends" if bottom else "top block")


def _check_route(act, width, depths, sw, sb, arch, batch, mode, definition="layer"):
    """Warn where the chain is asked outside its domain; refuse a simulated network that is too
    large to simulate for each draw."""
    for L in np.unique(depths).tolist():
        if mode == "simulated" and not _top_block.whole_fits(width, L, batch):
            raise InputError(f"`finite_width` == 'simulated', `depth` == {L}, `width` == {width}, "
                             f"`batch` == {batch}: one draw of the simulated network would take "
                             f"L·N²·B = {L * width * width * batch:.3g} > 2^30 multiply-adds; use "
                             f"simulate_critical_sparsity, or a smaller network")
        # a network no deeper than its simulated block has no chain in it to leave its domain
        chained = (mode == "analytic"
                   or mode == "chain" and route(mode, L, arch, definition) != "simulated network")
        why = chained and (_top_block.collapse_range(act, width, L, sw, sb, arch, definition)
                           or mode == "analytic" and _analytic.outside(width, L, arch))
        if why:
            where = "analytic theory" if mode == "analytic" else "finite-width chain"
            warnings.warn(f"`depth` == {L}, `width` == {width}: {why}, outside the {where}'s "
                          f"domain, where it misses E[s_cr] (docs/critical_sparsity.md "
                          f"§5d, §5e); simulate_critical_sparsity is the tool there "
                          f"(finite_width='simulated' simulates the whole network for each draw)",
                          PredictionRangeWarning, stacklevel=3)
            return


# ---------------------------------------------------------------------------------------------
# validation


def _check_depths(depth):
    """``depth`` as a 1-d int array (and whether the input was a scalar)."""
    if not isinstance(depth, (list, tuple, np.ndarray)):
        return np.array([check_int("depth", depth, low=1, high=_MAX_DEPTH)]), True
    if isinstance(depth, np.ndarray) and depth.ndim == 0:
        return np.array([check_int("depth", depth.item(), low=1, high=_MAX_DEPTH)]), True
    empty = depth.size == 0 if isinstance(depth, np.ndarray) else len(depth) == 0
    arr = None if empty else check_array("depth", depth)
    if arr is None:
        raise InputError("`depth` == []: must hold at least one integer >= 1")
    fractional = arr != np.round(arr)
    if fractional.any():
        raise InputTypeError(f"`depth` == {float(arr[fractional][0])!r} (in {_show(depth)}): must be "
                             f"integers in [1, {_MAX_DEPTH}]")
    if arr.min() < 1 or arr.max() > _MAX_DEPTH:
        bad = arr.ravel()[np.flatnonzero((arr < 1) | (arr > _MAX_DEPTH))[0]]
        raise InputError(f"`depth` == {int(bad)!r} (in {_show(depth)}): must be integers in "
                         f"[1, {_MAX_DEPTH}]")
    # each distinct depth is a prediction of its own, at a cost proportional to it: together
    # they get the budget of one (a list of every depth up to 10^5 would run for weeks)
    unique = np.unique(arr)
    if unique.sum() > _MAX_DEPTH:
        raise InputError(f"`depth` == {_show(depth)}: its {unique.size} distinct depths add up to "
                         f"{int(unique.sum())} layers, more than the {_MAX_DEPTH} of one "
                         f"prediction; ask for fewer or shallower depths")
    return arr.astype(np.int64), False


def _check_common(activation, width, sigma_w, sigma_b, batch, classes, depth=1, draws=True,
                  finite=True, arch="ffnn", definition="layer", max_count=_MAX_COUNT,
                  whole=False):
    """Validate the common arguments and refuse sizes whose arrays cannot fit: ``draws`` if the
    caller draws readout errors, ``finite`` if also the finite-width chains and the exact
    layers of ``arch`` and ``definition`` (both checked by the caller; all of them if
    ``whole``); and widths whose layers hold more than ``max_count`` weights."""
    act = get_activation(activation)
    # sizes stay below 2^53, where a float still counts them exactly
    width = check_int("width", width, low=1, high=2 ** 53)
    sw = check_scalar("sigma_w", sigma_w, min_val=0.0, include_boundaries="neither")
    sb = check_scalar("sigma_b", sigma_b, min_val=0.0)
    batch = check_int("batch", batch, low=1, high=2 ** 53)
    classes = check_int("classes", classes, low=2, high=2 ** 53)
    count = width * max(width, classes)     # the largest layer's n_l, a Python int: exact
    if count > max_count:
        why = ("a 64-bit count holds" if max_count == _MAX_COUNT
               else "the score laws resolve (their tails are exact to ~3e-16, and the largest of "
                    "n scores needs them to ~1/n)")
        raise InputError(f"`width` == {width}, `classes` == {classes}: a layer of "
                         f"width · {max(width, classes)} = {count} weights is more than "
                         f"{_show_power(max_count)} = {max_count}, what {why}; choose a smaller "
                         f"`width`")
    # the largest arrays: the readout draws (draws × B × C, twice), the softmax moments
    # (≥ 4096 × C logits, four arrays), one backward chain (L × N × C normals, twice) and one
    # set of exact layers (their N × N weights and gradients, B × N activations of every
    # simulated layer)
    finite = draws and finite
    top = _top_block.exact_top(depth, arch, definition, whole) if finite else 0
    top += _top_block.bottom_layers(depth, arch, definition, top)
    block = width * (3 * top * width + 3 * (min(depth, top + _top_block.MAX_BURN_IN) + 1) * batch)
    readout_draws = (laws.DRAWS_FINITE if finite else laws.DRAWS) * draws
    nbytes = 8 * max(2 * readout_draws * batch * classes, 4 * 4096 * classes,
                     2 * depth * width * classes * finite, 4 * depth * laws.N_QMC * draws,
                     block * finite)
    check_memory(f"`width` == {width}, `depth` == {depth}, `batch` == {batch}, "
                 f"`classes` == {classes}", nbytes)
    return act, width, sw, sb, batch, classes


def _show_power(n):
    """2^40 for 2 ** 40, 2^63 − 1 for 2 ** 63 − 1."""
    return f"2^{n.bit_length()}" + " − 1" if n & (n + 1) == 0 else f"2^{n.bit_length() - 1}"


def _check_forward(act, sw, sb, depth, arch="ffnn"):
    """The forward moments (q, c) of :func:`forward_moments` for a depth-L network, refused
    (``InputError``) where the prediction has none in float64:

    * a variance q^l that is not a finite normal float. Without a bias (or with a tiny one) and
      σ_w² E[φ'(0)²] < 1, q^l decays geometrically to q* = 0 (docs/critical_sparsity.md eq. (4);
      e.g. tanh at σ_w = 0.5, σ_b = 0 loses a factor 4 a layer and underflows by layer ~510);
      a large σ_w makes it overflow; or a correlation c^l that is not finite (a guard: the
      correlation map has a value wherever q^l is a normal float, docs/theory.md §2);
    * E[φ'(y^l)²] = 0 at a hidden layer: the gradients of every layer below vanish (eq. (7)),
      and SNIP has no scores to rank (an activation flat where y^l lies, or one whose
      quadrature underflows at an extreme q^l).
    """
    q, c = forward_moments(act, sw, sb, depth, arch)
    names = (f"`activation` == {act.name!r}, `sigma_w` == {sw!r}, `sigma_b` == {sb!r}, "
             f"`depth` == {depth}")
    bad = ~(np.isfinite(q) & (q >= _TINY))
    if bad.any():
        i = int(np.argmax(bad))
        where = "the logits" if i == depth else f"layer {i + 1}"
        hint = ("a smaller `depth` or a larger `sigma_b`" if not q[i] >= _TINY
                else "a smaller `depth` or `sigma_w`")
        raise InputError(f"{names}: the forward variance q^l of {where} is {float(q[i])!r}, "
                         f"outside float64's normal range [{_TINY:.4g}, "
                         f"{np.finfo(np.float64).max:.4g}]; choose {hint}")
    if not np.all(np.isfinite(c)):      # a guard: the correlation map has a value wherever q does
        i = int(np.argmin(np.isfinite(c)))
        where = "the logits" if i == depth else f"layer {i + 1}"
        raise InputError(f"{names}: the forward correlation c^l of {where} is {float(c[i])!r} "
                         f"(q^l = {float(q[i])!r} is beyond what its Gaussian expectation holds in "
                         f"float64); choose a smaller `depth` or `sigma_w`")
    d11 = _expect.diag(act, 1, 1, 0, q[:depth])
    if not np.all(d11 > 0):
        i = int(np.argmin(d11 > 0))
        raise InputError(f"{names}: E[φ'(y^l)²] = {float(d11[i])!r} at layer {i + 1} (q^l = "
                         f"{float(q[i])!r}): the gradients of every layer below vanish, so SNIP "
                         f"has no scores to rank")
    return q, c


@contextlib.contextmanager
def _no_prediction(act, width, depth, sw, sb):
    """A draw that has no answer in float64 (``NoPrediction``, from inside the wing: a signal that
    vanishes exactly or scores that overflow, which the checks above cannot see before drawing)
    is refused with the arguments that led to it."""
    try:
        yield
    except NoPrediction as exc:
        raise InputError(f"`activation` == {act.name!r}, `width` == {width}, `depth` == {depth}, "
                         f"`sigma_w` == {sw!r}, `sigma_b` == {sb!r}: {exc}, "
                         f"{exc.consequence}") from None


# ---------------------------------------------------------------------------------------------
# the layer moments


def layer_gradient_scales(activation, width, depth, sigma_w, sigma_b, *, batch=128, classes=10):
    """Wide-limit scale of the SNIP scores layer by layer.

    For each layer l = 1 … L + 1 (L hidden layers, then the readout) the forward and backward
    second moments of mean-field theory and the variance of the batch-averaged gradient
    ∂ℒ/∂W^l_ij = (1/B) Σ_b δ^l_i(b) a^{l-1}_j(b) (a⁰ = x, a^l = φ(y^l)), eqs. (4)–(11) of
    ``docs/critical_sparsity.md``. Gradient independence (Schoenholz et al. 2017) is assumed:
    the backward errors δ are independent of the forward activations a.

    Parameters
    ----------
    activation : str or Activation
    width : int >= 1
        N: input dimension and width of every hidden layer.
    depth : int >= 1
        L: number of hidden layers (the readout is layer L + 1).
    sigma_w : float > 0
    sigma_b : float >= 0
    batch : int >= 1, default 128
        B: inputs in the mini-batch the loss is averaged over.
    classes : int >= 2, default 10
        Number of logits; labels are uniform over the classes.

    Returns
    -------
    pandas.DataFrame
        One row per layer, columns:

        ``layer`` (1 … L + 1), ``fan_in``, ``fan_out``, ``n_weights`` (= fan_in · fan_out);
        ``q`` — forward variance q^l of the pre-activations y^l (layer L + 1: the logits);
        ``c`` — forward correlation c^l of y^l between two inputs of the batch;
        ``act_sq`` — E[a²] of the layer's input a (1 for x, E[φ(√q^{l-1} Z)²] otherwise);
        ``act_cov`` — E[a(b) a(b')] between two inputs (0 for x);
        ``chi`` — σ_w² E[φ'(√q^l Z)²], the per-layer backward gain (nan for the readout);
        ``q_grad`` — backward variance q̃^l = E[δ^l_i(b)²];
        ``q_grad_offdiag`` — E[δ^l_i(b) δ^l_i(b')] for two inputs b ≠ b';
        ``grad_var`` — Var(∂ℒ/∂W^l_ij), batch-averaged, eq. (10);
        ``grad_var_single`` — the same for B = 1 (q̃^l · act_sq);
        ``weight_var`` — σ_w²/fan_in;
        ``score_scale`` — √(weight_var · grad_var) = √E[(g^l_ij)²];
        ``log_score_scale`` — its natural log (finite when score_scale over/underflows).

        Units: ``q``, ``act_sq`` … are in the squared units of the pre-activations; the backward
        quantities are per example (the 1/B of the mean loss is in ``grad_var`` only).

    Raises
    ------
    InputError, InputTypeError
        An argument out of its range or of the wrong type (the message names it, its value and
        what is allowed); a layer of more than 2^63 − 1 weights; a forward variance q^l outside
        float64's normal range (without a bias the ordered phase decays to q* = 0: tanh at
        σ_w = 0.5 underflows by depth ~510) or a correlation c^l its quadrature cannot hold;
        E[φ'(y^l)²] = 0 at a hidden layer (no gradient below it).

    References
    ----------
    Schoenholz et al. (2017), §4 (backpropagation of the error signal, q̃^l = q̃^{l+1} χ₁);
    docs/theory.md §2 and §5; ``docs/critical_sparsity.md`` eqs. (4)–(11).

    Examples
    --------
    >>> from meanfield.prediction import layer_gradient_scales
    >>> df = layer_gradient_scales("tanh", 100, 3, 0.8, 0.3)
    >>> df["layer"].tolist(), df["fan_out"].tolist()
    ([1, 2, 3, 4], [100, 100, 100, 10])
    """

    import pandas as pd  # lazy: `import meanfield` stays light (tests/test_package.py)
    depth = check_int("depth", depth, low=1, high=_MAX_DEPTH)
    act, width, sw, sb, batch, classes = _check_common(activation, width, sigma_w, sigma_b, batch,
                                                       classes, depth, draws=False)
    m = layer_moments(act, width, depth, sw, sb, batch, classes,
                      _check_forward(act, sw, sb, depth))
    L = depth
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        q_grad = np.exp(m.log_q_grad)
        q_grad_o = np.exp(m.log_q_grad + np.log(m.rho_grad))
        gv = np.exp(m.log_grad_var)
        gv_single = np.exp(m.log_q_grad + np.log(m.act_sq))
        log_score = 0.5 * (np.log(m.weight_var) + m.log_grad_var)
        score = np.exp(log_score)
    return pd.DataFrame({
        "layer": np.arange(1, L + 2),
        "fan_in": m.fan_in,
        "fan_out": m.fan_out,
        "n_weights": m.n_weights,
        "q": m.q,
        "c": m.c,
        "act_sq": m.act_sq,
        "act_cov": m.act_cov,
        "chi": m.chi,
        "q_grad": q_grad,
        "q_grad_offdiag": q_grad_o,
        "grad_var": gv,
        "grad_var_single": gv_single,
        "weight_var": m.weight_var,
        "score_scale": score,
        "log_score_scale": log_score,
    })


# ---------------------------------------------------------------------------------------------
# the law of s_cr


def _check_definition(definition, mode):
    definition = check_event(definition)
    if definition == "disconnect" and mode in ("wide", "analytic"):
        raise InputError(f"`definition` == 'disconnect' needs `finite_width=True`: the "
                         f"{route(mode, 1, 'ffnn')} has no network to find a path in")
    return definition


def _check_analytic(mode, arch):
    """The analytic route's archs (docs/critical_sparsity.md §5e)."""
    if mode == "analytic" and arch not in ANALYTIC_ARCHS:
        raise InputError(f"`finite_width` == 'analytic' with `arch` == {arch!r}: the analytic "
                         f"finite-width theory covers {ANALYTIC_ARCHS}; use finite_width=True")


def _check_arch(arch, conv=False):
    return check_choice("arch", arch, ARCHS + (CONV_ARCHS if conv else ()))


def _check_conv(arch, finite_width, image_size, kernel_size):
    """The route of ``finite_width`` (None: the chain for a dense arch, the wide limit for a conv
    one, the only route it has) and the conv sizes (h, k), (1, 1) for a dense arch."""
    if arch not in CONV_ARCHS:
        return _check_finite_width(True if finite_width is None else finite_width), (1, 1)
    mode = "wide" if finite_width is None else _check_finite_width(finite_width)
    if mode != "wide":
        raise InputError(f"`finite_width` == {finite_width!r} with `arch` == {arch!r}: the conv "
                         f"prediction is the wide limit (finite_width=False or None); for a "
                         f"finite conv net use simulate_critical_sparsity")
    h = check_int("image_size", image_size, low=1, high=2 ** 12)
    return mode, (h, check_kernel_size(kernel_size))


def _warn_conv(arch, width, depths, sw, sb, act):
    """Warn where the conv prediction (the wide limit) is asked outside its measured domain
    (docs/convolutional.md, "The prediction"): a CNN in the chaotic phase at depths of half its
    width or more, where it missed the Monte Carlo at L = 16 by +0.012 (N = 16, 4 SE) and +0.009
    (N = 32, 4 SE), and met it at N = 64 (+0.005, 2.8 SE): the chaotic phase's finite-width
    coupling, which the dense wide limit misses too (docs/critical_sparsity.md §5c)."""
    from ..theory import phase

    deep = [int(L) for L in np.unique(depths) if 2 * L >= width]
    # the phase by the theory's own tolerance: χ₁ on the EOC is 1 only to rounding
    if arch == "cnn" and deep and str(phase(act, sw, sb)) == "chaotic":
        warnings.warn(f"`arch` == 'cnn', `depth` == {deep[0]} >= `width` / 2 == {width / 2:g} in the "
                      f"chaotic phase: outside the conv prediction's measured domain (the wide "
                      f"limit; docs/convolutional.md), where it overestimates E[s_cr] (+0.012 at "
                      f"N = 16, L = 16); simulate_critical_sparsity is the tool there",
                      PredictionRangeWarning, stacklevel=3)


def _predict(act, width, depth, sw, sb, batch, classes, fwd, mode="chain", arch="ffnn",
             definition="layer", conv=(1, 1)):
    """Average over the draws of the per-draw law of s_cr: (mean, std, p_first, se, draws), se
    the standard error of the mean from the number of draws averaged (NaN for one draw);
    ``fwd``: the checked forward moments (:func:`_check_forward`); ``mode``: the route;
    ``conv``: (h, k) of a conv arch."""
    with _no_prediction(act, width, depth, sw, sb):
        return _predict_draws(act, width, depth, sw, sb, batch, classes, fwd, mode, arch,
                              definition, conv)


def _predict_draws(act, width, depth, sw, sb, batch, classes, fwd, mode, arch, definition,
                   conv=(1, 1)):
    finite = mode != "wide"
    m = layer_moments(act, width, depth, sw, sb, batch, classes, fwd, arch, *conv)
    n = m.n_weights
    means, seconds, p_first = [], [], []
    with one_blas_thread():
        cond = laws.forward_conditionals(act, m, classes,
                                         laws.N_QMC_FINITE if finite else laws.N_QMC)
        count = 0
        analytic = {"analytic": True, "analytic chain": "chain"}.get(mode, False)
        for draws, back in laws.draw_chunks(act, m, cond, width, sw, sb, batch, classes, finite,
                                            definition, mode == "simulated", analytic):
            groups = laws.score_laws(m, cond, draws, back, batch * m.positions, classes)
            d = laws.scr_law(groups, n)
            if definition == "disconnect":      # one threshold per draw: s(m*) is a sample
                d["mean"] = laws.s_at(groups, n, back.m_star)
                d["second"] = d["mean"] ** 2
            means.append(d["mean"])
            seconds.append(d["second"])
            p_first.append(d["p_first"])
            count += len(draws)
            # the finite-width average stops at a block's end once its own SE is small enough
            if finite and count % laws.DRAW_BLOCK == 0:
                done = np.concatenate(means)
                if done.std(ddof=1) / math.sqrt(done.size) <= laws.DRAW_SE_TARGET:
                    break
    means, seconds = np.concatenate(means), np.concatenate(seconds)
    mean = float(means.mean())
    std = math.sqrt(max(float(seconds.mean()) - mean ** 2, 0.0))
    se = float(means.std(ddof=1) / math.sqrt(means.size)) if means.size > 1 else math.nan
    return mean, std, np.concatenate(p_first).mean(axis=0), se, means.size


def critical_sparsity_distribution(activation, width, depth, sigma_w, sigma_b, *, batch=128,
                                   classes=10, finite_width=None, arch="ffnn", definition="layer",
                                   image_size=8, kernel_size=3):
    """Mean-field summary of the law of the critical sparsity at one depth.

    Parameters
    ----------
    activation, width, depth, sigma_w, sigma_b, batch, classes, finite_width, arch, definition,
    image_size, kernel_size
        As in :func:`predict_critical_sparsity`; ``depth`` a single int.

    Returns
    -------
    dict
        ``mean`` and ``std`` of s_cr (floats, as :func:`predict_critical_sparsity` with
        ``return_std=True``); ``p_first`` (ndarray, length L + 1): probability that layer l
        (index l − 1) is the one fully pruned first, i.e. has the smallest maximum score (the
        paper's event, whatever ``definition``);
        ``se``: the standard error of ``mean`` from the finite number of fixed-seed draws it
        averages (the prediction's own Monte-Carlo error; compare it with a simulation's);
        ``draws``: how many draws it averages; ``route`` (str): what the value is made of
        (:func:`route`): "wide limit", "finite-width chain + simulated top block" (or "+
        simulated ends" for "disconnect") or "simulated network".

    Raises
    ------
    InputError, InputTypeError
        As :func:`predict_critical_sparsity`.

    Examples
    --------
    >>> from meanfield.prediction import critical_sparsity_distribution
    >>> d = critical_sparsity_distribution("tanh", 100, 20, 3.0, 0.3)
    >>> int(d["p_first"].argmax()) + 1   # chaotic: the last hidden layer empties first
    20
    """
    depth = check_int("depth", depth, low=1, high=_MAX_DEPTH)
    arch = _check_arch(arch, conv=True)
    mode, conv = _check_conv(arch, finite_width, image_size, kernel_size)
    definition = _check_definition(definition, mode)
    dense = DENSE_OF.get(arch, arch)
    _check_analytic(mode, arch)
    act, width, sw, sb, batch, classes = _check_common(activation, width, sigma_w, sigma_b, batch,
                                                       classes, depth,
                                                       finite=mode in ("chain", "simulated"),
                                                       arch=dense, definition=definition,
                                                       max_count=_MAX_SCORES,
                                                       whole=mode == "simulated")
    fwd = _check_forward(act, sw, sb, depth, dense)
    _check_route(act, width, np.array([depth]), sw, sb, dense, batch, mode, definition)
    _warn_conv(arch, width, [depth], sw, sb, act)
    mean, std, p_first, se, draws = _predict(act, width, depth, sw, sb, batch, classes, fwd,
                                             mode=mode, arch=arch, definition=definition,
                                             conv=conv)
    return dict(mean=mean, std=std, p_first=p_first, se=se, draws=draws,
                route=route(mode, depth, dense, definition))


def predict_critical_sparsity(activation, width, depth, sigma_w, sigma_b, *, batch=128, classes=10,
                              return_std=False, finite_width=None, arch="ffnn",
                              definition="layer", image_size=8, kernel_size=3):
    """Mean-field prediction of E[s_cr], the expected critical sparsity of SNIP.

    Model (``docs/critical_sparsity.md`` §5–§6, eqs. (12)–(20)): in the wide limit at fixed batch size B and
    number of classes C, everything but the B × C readout error matrix Δ of the batch is
    deterministic. Given Δ, the n_l = fan_in · fan_out scores of layer l are treated as
    independent draws of g = √(σ_w²/fan_in) · |Z_W| · |G| with the weight Z_W ~ N(0, 1) and the
    gradient G drawn from its wide-limit conditional law, and the layers as independent. Then
    P(max_ij g^l_ij ≤ t) = F_l(t)^{n_l}, m = min_l max_ij g^l_ij has
    P(m > t) = Π_l (1 − F_l(t)^{n_l}), and E[s_cr | Δ] = ∫ s(t) dP(m ≤ t) with
    s(t) = Σ_l n_l F_l(t) / Σ_l n_l. The result is averaged over fixed-seed draws of Δ and, with
    ``finite_width``, of the exact top layers and the backward chain of a width-N network, so
    the function is deterministic.

    Parameters
    ----------
    activation : str or Activation
    width : int >= 1
        N (input dimension and hidden width).
    depth : int >= 1 or array_like of them
        L, the number of hidden layers; an array gives one prediction per depth.
    sigma_w : float > 0
    sigma_b : float >= 0
    batch : int >= 1, default 128
    classes : int >= 2, default 10
    return_std : bool, default False
        Also return the predicted standard deviation of s_cr over networks and batches.
    finite_width : {None, True, False, "chain", "wide", "simulated", "analytic"}, default None
        The route (docs §5–§5e; :func:`critical_sparsity_distribution` reports it). None: the
        chain (True) for the dense archs, the wide limit for the conv archs (their only route).

        * ``True`` or ``"chain"``: a width-N network, part theory and part simulation: its
          top layers (3 hidden layers of an FFNN, 6 of a ResNet; for
          ``definition="disconnect"`` see there) and readout **simulated**, and below them the
          mean-field theory's backward signal, its class-space covariance sampled from N rows
          (a product of Wishart matrices; docs §5a, §5c). Outside the chain's domain (FFNNs
          narrower than 50, near the EOC at L ≥ 0.6 N; docs §5d) it misses the Monte Carlo,
          and a :class:`PredictionRangeWarning` says so.
        * ``False`` or ``"wide"``: the wide limit at fixed B and C (theory; 32 draws of the
          readout error only).
        * ``"simulated"``: every hidden layer simulated for each draw, scored by its realised
          gradients: a Monte Carlo of the network's gradients fed to the score laws of §6, not a
          theory (what the chain's domain check used to switch to silently); refused beyond
          L · N² · B = 2^30 multiply-adds per draw.
        * ``"analytic"``: the finite-width theory with no simulated layer (FFNNs and ResNets;
          docs §5e): the readout error of the mean-field logits, the class-space chain drawn as
          C × C Wishart matrices (a cost independent of N), and each layer's E[G²] raised by
          the 1/N coupling of the forward kernel's fluctuations with the backward kernel,
          computed from mean-field quantities. Its domain and gaps: docs §5e, §8; it warns
          outside (plain ResNets deeper than 30 among them).

        Finite-width routes average fixed-seed draws in blocks of 32, up to 128, until the
        average's own standard error is ≤ 5e-4; all routes are deterministic. How each compares
        with 200-net Monte Carlos: docs §8.
    arch : {"ffnn", "resnet", "stable_resnet", "cnn", "conv_resnet", "conv_stable_resnet"}
        Default "ffnn". The network of :func:`meanfield.nets.init_network`: for ResNets the
        forward maps of the residual stream and the backward signal of its gradient (docs
        §5b). The conv archs (:mod:`meanfield.nets.conv`, ``stages=1``, on N(0, 1) images of
        ``width`` channels): the wide limit, the dense theory with the B h² (image, position)
        pairs as its batch (docs/convolutional.md, "The prediction"); it warns outside its
        measured domain (a CNN in the chaotic phase at depths of half its width or more).
    image_size, kernel_size : int, default 8, 3
        h and k (odd) of a conv arch; ignored for the dense ones.
    definition : {"layer", "disconnect"}, default "layer"
        The event s_cr marks, as in :func:`meanfield.pruning.critical_sparsity`: the paper's
        (the first layer fully pruned; a ResNet is then not disconnected) or "the output no
        longer depends on the input" (no input-to-logit path keeps all its weights). For
        "disconnect" (finite width only) each draw finds the widest path's bottleneck m*
        through exact layers at both ends of the net (10 of an FFNN at each end, or all of it
        up to depth 20; a ResNet's first layer and top block), the layers between taken as
        connecting every unit (FFNN) or as skips (ResNet), and averages s(m*) (docs §10).
        Near the EOC (ξ_c ≥ 10) deeper than 20, where the middle layers do not connect every
        unit, this is outside the chain's domain: it warns (docs §5d). Within max(3 SE,
        0.004) of 100-net Monte Carlos at 12 configurations (docs §10).

    Returns
    -------
    float or ndarray
        E[s_cr] ∈ [0, 1] (a fraction of all weights, readout included); an array of the shape of
        ``depth`` if ``depth`` is an array. With ``return_std``, a pair (mean, std).

    Raises
    ------
    InputError, InputTypeError
        As :func:`layer_gradient_scales`, and: a layer of more than 2^40 scores (width > 2^20),
        beyond what the score laws resolve; distinct depths adding up to more than 100 000
        layers; arrays that cannot fit in memory; a draw without an answer in float64 (a
        layer's scores all exactly zero, e.g. a softmax saturated by logits of variance ≫ 1,
        or a backward signal that vanishes exactly).

    References
    ----------
    Hayou, Ton, Doucet, Teh (2021), Robust Pruning at Initialization (critical sparsity);
    docs/theory.md §4; ``docs/critical_sparsity.md``.

    Examples
    --------
    >>> from meanfield.prediction import predict_critical_sparsity
    >>> s = predict_critical_sparsity("tanh", 100, [10, 40], 0.8, 0.3)
    >>> bool(s[0] > s[1])      # ordered phase: s_cr falls with depth
    True
    """
    depths, scalar = _check_depths(depth)
    arch = _check_arch(arch, conv=True)
    mode, conv = _check_conv(arch, finite_width, image_size, kernel_size)
    definition = _check_definition(definition, mode)
    dense = DENSE_OF.get(arch, arch)
    _check_analytic(mode, arch)
    act, width, sw, sb, batch, classes = _check_common(activation, width, sigma_w, sigma_b, batch,
                                                       classes, int(depths.max()),
                                                       finite=mode in ("chain", "simulated"),
                                                       arch=dense,
                                                       definition=definition,
                                                       max_count=_MAX_SCORES,
                                                       whole=mode == "simulated")
    return_std = check_bool("return_std", return_std)
    # an FFNN's moments at depth L are the first rows of a deeper one's; a ResNet's are not
    # (its last row is the readout, and a Stable ResNet's branch scale is 1/√L)
    if dense == "ffnn":
        deepest = _check_forward(act, sw, sb, int(depths.max()))
        fwds = dict.fromkeys(np.unique(depths).tolist(), deepest)
    else:
        fwds = {L: _check_forward(act, sw, sb, L, dense) for L in np.unique(depths).tolist()}
    _check_route(act, width, depths, sw, sb, dense, batch, mode, definition)
    _warn_conv(arch, width, depths, sw, sb, act)
    means, stds = np.empty(depths.size), np.empty(depths.size)
    for L in fwds:                          # once per distinct depth
        mean, std, *_ = _predict(act, width, L, sw, sb, batch, classes, fwds[L], mode, arch,
                                 definition, conv)
        means[depths.ravel() == L], stds[depths.ravel() == L] = mean, std
    if scalar:
        out = (float(means[0]), float(stds[0]))
    else:
        out = (means.reshape(np.shape(depth)), stds.reshape(np.shape(depth)))
    return out if return_std else out[0]


def finite_width_terms(activation, width, depth, sigma_w, sigma_b, *, batch=128, classes=10,
                       arch="ffnn"):
    """What the 1/N terms of the analytic finite-width theory add to E[s_cr] of an FFNN or a
    ResNet (docs/critical_sparsity.md §5e): the wide limit, then the class-space chain (the backward
    covariance sampled at width N: its rank loss and the layer scales' log-normal spread), then
    the coupling of the forward kernel's fluctuations with the backward kernel (the full
    ``finite_width="analytic"`` prediction).

    Parameters
    ----------
    activation, width, depth, sigma_w, sigma_b, batch, classes, arch
        As in :func:`predict_critical_sparsity`; ``depth`` a single int; ``arch`` one of
        :data:`ANALYTIC_ARCHS`.

    Returns
    -------
    dict
        ``wide``, ``chain`` (wide limit + chain), ``analytic`` (+ coupling): E[s_cr] of each;
        ``chain_term`` = chain − wide and ``coupling_term`` = analytic − chain; ``se``: the
        own standard errors of the three, by name. Chain and analytic use the same draws block
        by block (the coupling only rescales layers), so their difference is sharper than
        either.

    Raises
    ------
    InputError, InputTypeError
        As :func:`predict_critical_sparsity`.

    Examples
    --------
    >>> t = finite_width_terms("tanh", 64, 10, 2.5, 0.2)
    >>> bool(t["coupling_term"] > 0.01)       # chaotic, B/N = 2: the coupling raises s_cr
    True
    """
    depth = check_int("depth", depth, low=1, high=_MAX_DEPTH)
    act, width, sw, sb, batch, classes = _check_common(activation, width, sigma_w, sigma_b, batch,
                                                       classes, depth, finite=False,
                                                       max_count=_MAX_SCORES)
    arch = _check_arch(arch)
    _check_analytic("analytic", arch)
    fwd = _check_forward(act, sw, sb, depth, arch)
    _check_route(act, width, np.array([depth]), sw, sb, arch, batch, "analytic")
    out, se = {}, {}
    for key, mode in (("wide", "wide"), ("chain", "analytic chain"), ("analytic", "analytic")):
        out[key], _, _, se[key], _ = _predict(act, width, depth, sw, sb, batch, classes, fwd,
                                              mode=mode, arch=arch)
    out["chain_term"] = out["chain"] - out["wide"]
    out["coupling_term"] = out["analytic"] - out["chain"]
    out["se"] = se
    return out


def predict_kept_per_layer(activation, width, depth, sigma_w, sigma_b, sparsity, *, batch=128,
                           classes=10, finite_width=True, arch="ffnn"):
    """Mean-field fraction of weights SNIP keeps in each layer at a global sparsity s.

    The global threshold t solves Σ_l n_l (1 − F_l(t)) = (1 − s) Σ_l n_l (eq. (21) of the docs;
    in the wide limit the fraction of scores above t concentrates on its mean) and layer l keeps
    1 − F_l(t), with F_l the score law of :func:`predict_critical_sparsity`.

    Parameters
    ----------
    activation, width, depth, sigma_w, sigma_b, batch, classes, finite_width, arch
        As in :func:`predict_critical_sparsity`; ``depth`` a single int.
    sparsity : float in [0, 1)
        s, the fraction of all weights (readout included) removed.

    Returns
    -------
    pandas.DataFrame
        Columns ``layer`` (1 … L + 1), ``n_weights``, ``kept_fraction`` (in [0, 1]); the
        weighted mean Σ n_l kept_l / Σ n_l equals 1 − s up to ~1e-12. Like E[s_cr], the kept
        fractions are averaged over the fixed-seed draws;
        ``df.attrs["threshold"]`` holds the geometric mean of the thresholds t (score units).

    Raises
    ------
    InputError, InputTypeError
        As :func:`predict_critical_sparsity`, with layers of up to 2^63 − 1 weights (the kept
        fractions need no tail of the score laws).

    Examples
    --------
    >>> from meanfield.prediction import predict_kept_per_layer
    >>> df = predict_kept_per_layer("tanh", 100, 10, 1.3955839751549, 0.3, 0.7)
    >>> round(float((df.kept_fraction * df.n_weights).sum() / df.n_weights.sum()), 6)
    0.3
    """
    import pandas as pd  # lazy: `import meanfield` stays light (tests/test_package.py)
    depth = check_int("depth", depth, low=1, high=_MAX_DEPTH)
    mode = _check_finite_width(finite_width)
    finite_width = mode != "wide"
    arch = _check_arch(arch)
    _check_analytic(mode, arch)
    act, width, sw, sb, batch, classes = _check_common(activation, width, sigma_w, sigma_b, batch,
                                                       classes, depth,
                                                       finite=mode in ("chain", "simulated"),
                                                       arch=arch, whole=mode == "simulated")

    s = check_probability("sparsity", sparsity)
    fwd = _check_forward(act, sw, sb, depth, arch)
    _check_route(act, width, np.array([depth]), sw, sb, arch, batch, mode)
    m = layer_moments(act, width, depth, sw, sb, batch, classes, fwd, arch)
    n = m.n_weights.astype(np.float64)
    if s == 0.0:
        kept, log_thr = np.ones(depth + 1), -math.inf
    else:
        kept, log_thr, count = np.zeros(depth + 1), 0.0, 0
        with one_blas_thread(), _no_prediction(act, width, depth, sw, sb):
            cond = laws.forward_conditionals(act, m, classes,
                                             laws.N_QMC_FINITE if finite_width else laws.N_QMC)
            for draws, back in laws.draw_chunks(act, m, cond, width, sw, sb, batch, classes,
                                                finite_width, whole=mode == "simulated",
                                                analytic=mode == "analytic"):
                law = laws.score_laws(m, cond, draws, back, batch, classes)
                for d in range(len(draws)):
                    k, lt = laws.kept_fractions(law, n, d, s)
                    kept += k
                    log_thr += lt
                    count += 1
        kept, log_thr = kept / count, log_thr / count
    df = pd.DataFrame({"layer": np.arange(1, depth + 2), "n_weights": n.astype(np.int64),
                       "kept_fraction": kept})
    df.attrs["threshold"] = math.exp(log_thr)
    return df


