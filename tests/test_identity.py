"""Bit-identity of the package's outputs across its reorganisation (the wings issue, Deliver 7).

``tests/identity_cases.py`` lists small calls of the public API over every path (maps, fixed points,
EOC, phase diagram, the Monte Carlo of each method and architecture, kept fractions, every
prediction route, training dense and sparse); ``tests/data/identity.npz`` holds their outputs as
computed before the reorganisation. A refactoring must reproduce them exactly; a change meant to
alter results re-records the file (``python -m tests.identity_cases``) and says why in its commit.
"""

import pathlib

import numpy as np
import pytest

from tests.identity_cases import cases, evaluate

with np.load(pathlib.Path(__file__).parent / "data" / "identity.npz") as _npz:
    REFERENCE = dict(_npz)  # read now: the file may be re-recorded while a run is going on
CASES = cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_bit_identical(name):
    got = evaluate(CASES[name])
    want = [REFERENCE[k] for k in sorted((k for k in REFERENCE if k.rsplit("#", 1)[0] == name),
                                         key=lambda k: int(k.rsplit("#", 1)[1]))]
    assert len(got) == len(want), name
    for g, w in zip(got, want):
        assert g.shape == w.shape
        # equal_nan: a NaN recorded (e.g. chi_c where c* is undefined) must stay a NaN
        np.testing.assert_array_equal(g, w, strict=True)
