"""The propositions of Hayou, Ton, Doucet & Teh (2021, *Robust Pruning at Initialization*, ICLR) on the
critical sparsity s_cr of SNIP (sensitivity-based pruning), checked as statistical tests on the
Monte Carlo of :func:`meanfield.simulate_critical_sparsity`. docs/propositions.md states each one
(with its source), how it is checked, and the numbers measured.

The propositions are asymptotic (L → ∞, in the wide limit) and give rates, not constants, so no
finite simulation proves them; what a test can do is check the finite-size consequence that would
fail if the statement were false at these sizes, and check that the same statistic *does* fail
where the paper says the statement fails (the EOC). Every assertion below compares Monte Carlo
means that could land on either side.

Sizes: tanh, σ_b = 0.2, batch 128, 10 classes (the simulator's defaults); FFNN widths 32 and 64
(small on purpose, so that L = 200 is cheap; the EOC caveat at L ≫ N is in docs/propositions.md);
100 trials per configuration. Its run time is stated once, in docs/propositions.md.

Tolerances. Each configuration is an independent Monte Carlo run (its own fixed seed, derived from
the configuration, so different configurations never share random numbers): the mean of T = 100
i.i.d. s_cr is close to normal (CLT; s_cr ∈ [0, 1] has all moments), with standard error
SE = sd/√T from the sample sd. A difference of independent means has SE √(SE₁² + SE₂²). The
least-squares constant C = Σ s_k f_k / Σ f_k² (``fit_bound_constant``) is linear in the means, so
SE(C) = √(Σ f_k² SE_k²) / Σ f_k². A one-sided claim "a ≤ b" is asserted as a − b ≤ K·SE(a − b) with
K = 3: if the claim holds with a = b, that assertion fails with probability 0.13 % (normal tail).
The file makes 50 one-sided assertions at K SE, 28 of them of that form; were every claim at its
boundary, a change of seeds would fail one of the 28 with probability up to 3.8 % (Bonferroni),
not 0.13 % (docs/propositions.md). A claim that a gap is large ("many SE") is asserted as
gap ≥ 10·SE. The seeds are fixed, so every run gives the same numbers; K guards against a change
of seed or platform arithmetic, not against flakiness.
"""

import math
import zlib
from functools import cache

import numpy as np
import pytest

import meanfield as mf
from meanfield.prediction import fit_bound_constant, ordered_phase_bound

SIGMA_B = 0.2
PHASES = {"ordered": 0.8, "chaotic": 2.5}   # χ₁ < 1 and χ₁ > 1 at σ_b = 0.2 (checked below)
WIDTHS = (32, 64)
FIT_DEPTHS = (20, 30, 40)       # where C is fitted (L = 10 is left out: there C·f(L) > 1 ≥ s_cr)
CHECK_DEPTHS = (60, 100, 200)   # where the fitted rate is tested
TRIALS = 100
K = 3.0       # one-sided tolerance in SE (0.13 % per assertion at the claim's boundary)
MANY = 10.0   # "many SE": a gap this large is not a Monte Carlo accident


def _eoc_sigma_w():
    return mf.eoc("tanh", SIGMA_B)[0]


@cache
def mc(sigma_w, width, depth, arch="ffnn", activation="tanh", trials=TRIALS):
    """(mean, SE) of s_cr over ``trials`` networks; the seed is a hash of the configuration."""
    key = f"{activation}/{sigma_w:.9f}/{width}/{depth}/{arch}/{trials}"
    s = mf.simulate_critical_sparsity(activation, width, depth, sigma_w, SIGMA_B, trials=trials,
                                      arch=arch, seed=zlib.crc32(key.encode())).s_cr.to_numpy()
    return float(s.mean()), float(s.std(ddof=1) / math.sqrt(len(s)))


def fitted_constant(sigma_w, width):
    """Least-squares C of C·f(L) on FIT_DEPTHS, and its SE (C is linear in the means)."""
    est = [mc(sigma_w, width, L) for L in FIT_DEPTHS]
    f = np.asarray(ordered_phase_bound(width, FIT_DEPTHS))
    C = fit_bound_constant(FIT_DEPTHS, [m for m, _ in est], width)
    se = math.sqrt(sum((fk * s) ** 2 for fk, (_, s) in zip(f, est))) / float(f @ f)
    return C, se


def test_the_phases_are_what_the_tests_say():
    # the sizes above are only a test of the ordered/chaotic propositions if χ₁ is on the right side
    chi = mf.chi_1("tanh", [PHASES["ordered"], _eoc_sigma_w(), PHASES["chaotic"]], SIGMA_B)
    assert chi[0] < 0.9 and abs(chi[1] - 1) < 1e-9 and chi[2] > 1.1


# ---------------------------------------------------------------------------------------------
# Proposition (ordered phase): E[s_cr] = O(log(LN²)/L + 1/√(LN²)), and E[s_cr] → 0 as L → ∞.
# "Similar results can be proven for the Chaotic phase": the same tests with σ_w = 2.5.


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("phase", sorted(PHASES))
def test_the_ratio_to_the_rate_stays_bounded(phase, width):
    """E[s_cr] = O(f(L)) means E[s_cr]/f(L) is bounded in L. Its finite-size consequence: the ratio
    at L = 60, 100, 200 is not above the constant C fitted at L = 20–40 (beyond K SE). A slower
    decay than f (1/√L, a constant, ...) makes the ratio grow and fails this; the EOC does (below)."""
    sw = PHASES[phase]
    C, se_C = fitted_constant(sw, width)
    for L in CHECK_DEPTHS:
        m, se = mc(sw, width, L)
        f = ordered_phase_bound(width, L)
        excess = m / f - C
        assert excess <= K * math.hypot(se / f, se_C), (phase, width, L, m / f, C, se / f, se_C)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("phase", sorted(PHASES))
def test_scr_decreases_with_depth_towards_zero(phase, width):
    """E[s_cr] → 0: it falls at every step of L = 20, 30, 40, 60, 100, 200 (each fall > K SE of the
    difference), and at L = 200 it is below 0.15 by K SE, where the EOC at the same size is above
    0.5 (test_on_the_eoc_the_bound_fails)."""
    sw = PHASES[phase]
    depths = FIT_DEPTHS + CHECK_DEPTHS
    est = [mc(sw, width, L) for L in depths]
    for (L0, (m0, s0)), (L1, (m1, s1)) in zip(zip(depths, est), zip(depths[1:], est[1:])):
        assert m0 - m1 >= K * math.hypot(s0, s1), (phase, width, L0, m0, L1, m1)
    m, se = est[-1]
    assert m + K * se <= 0.15, (phase, width, m, se)


# ---------------------------------------------------------------------------------------------
# Proposition (EOC): "the upper bound no longer holds" — E[s_cr] stays high.


@pytest.mark.parametrize("width", WIDTHS)
def test_on_the_eoc_the_bound_fails(width):
    """On the EOC the statistic of test_the_ratio_to_the_rate_stays_bounded fails by many SE: at
    L = 200 E[s_cr]/f(L) is far above the C fitted in the ordered phase (and above its own value at
    L = 20, so no constant fits the EOC), and E[s_cr] is above 0.5 and many SE above the ordered
    phase's at the same size."""
    sw = _eoc_sigma_w()
    C, se_C = fitted_constant(PHASES["ordered"], width)
    m, se = mc(sw, width, 200)
    f = ordered_phase_bound(width, 200)
    assert m / f - C >= MANY * math.hypot(se / f, se_C), (width, m / f, C)
    m20, se20 = mc(sw, width, 20)
    f20 = ordered_phase_bound(width, 20)
    assert m / f - m20 / f20 >= MANY * math.hypot(se / f, se20 / f20), (width, m / f, m20 / f20)
    assert m - K * se >= 0.5, (width, m, se)
    m_ord, se_ord = mc(PHASES["ordered"], width, 200)
    assert m - m_ord >= MANY * math.hypot(se, se_ord), (width, m, m_ord)


# ---------------------------------------------------------------------------------------------
# Stable ResNet (y^l = y^{l-1} + F(W^l, y^{l-1})/√L): well-conditioned, so s_cr does not collapse
# with depth; the plain ResNet (no 1/√L) and the ordered FFNN do. Paper's s_cr (first layer
# emptied), the simulator's default.

RESNET_DEPTHS = (10, 30, 100, 200)


@pytest.mark.parametrize("activation, sigma_w, depths, trials", [
    ("tanh", PHASES["ordered"], RESNET_DEPTHS, TRIALS),
    ("relu", math.sqrt(2.0), (30, 200), 60),   # the paper's theorem is stated for ReLU
])
def test_stable_resnet_scr_does_not_collapse_with_depth(activation, sigma_w, depths, trials):
    """Stable ResNet: E[s_cr] does not fall with L (E[s_cr](L) ≥ E[s_cr](L_min) − K SE at every L)
    and stays ≥ 0.95 (by K SE). The plain ResNet of the same σ_w falls with L (by > K SE from the
    shallowest to L = 200), and at L = 200 is many SE below the Stable ResNet: the 1/√L scaling,
    not the skip connection alone, is what keeps s_cr up."""
    width = 32
    stable = [mc(sigma_w, width, L, "stable_resnet", activation, trials) for L in depths]
    plain = [mc(sigma_w, width, L, "resnet", activation, trials) for L in depths]
    m0, s0 = stable[0]
    for L, (m, se) in zip(depths, stable):
        if L != depths[0]:     # at the shallowest depth the comparison is with itself
            assert m - m0 >= -K * math.hypot(se, s0), (activation, L, m, m0)
        assert m - K * se >= 0.95, (activation, L, m, se)
    (p0, ps0), (p1, ps1) = plain[0], plain[-1]
    assert p0 - p1 >= K * math.hypot(ps0, ps1), (activation, p0, p1)
    (m1, s1) = stable[-1]
    assert m1 - p1 >= MANY * math.hypot(s1, ps1), (activation, m1, p1)
    if activation == "tanh":   # same σ_w as the ordered FFNN, which collapses (test above)
        f_m, f_se = mc(sigma_w, width, 200)
        assert m1 - f_m >= MANY * math.hypot(s1, f_se), (m1, f_m)
