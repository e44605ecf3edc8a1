"""Datasets rendered once per test session and shared by every test that only reads them."""

import pytest

import generate_icons as gi


@pytest.fixture(scope="session")
def data_300(tmp_path_factory):
    """300 icons, one per combination: the smallest complete dataset."""
    out = tmp_path_factory.mktemp("data300")
    gi.generate(out, n=300, seed=0)
    return out


@pytest.fixture(scope="session")
def data_1000(tmp_path_factory):
    """The default 1000 icons, rendered anew (not the committed ones)."""
    out = tmp_path_factory.mktemp("data1000")
    gi.generate(out, n=1000, seed=0)
    return out
