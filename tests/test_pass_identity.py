"""Bit-identity of every branch of the passes across their reorganisation (the kernels issue):
the outputs of ``tests/pass_cases.py`` must hash to what the code before it computed."""

import json

import pytest

from tests.pass_cases import PATH, cases, evaluate

REFERENCE = json.loads(PATH.read_text())
CASES = cases()


def test_the_cases_are_the_recorded_ones():
    assert sorted(CASES) == sorted(REFERENCE)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bit_identical(name):
    assert evaluate(CASES[name]) == REFERENCE[name]
