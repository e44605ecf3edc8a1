"""sweep.py: the recipes it trains are the ones the validation icons chose, and the README's
results table is what its summary makes of the committed manifests."""

import json
from pathlib import Path

import pytest

import sweep

LAB = Path(__file__).parents[1]


def test_each_recipe_is_the_validation_choice():
    tried = json.loads((LAB / "results" / "selection.json").read_text())
    assert set(tried) == set(sweep.CANDIDATES) == set(sweep.CHOSEN)
    for run, candidates in tried.items():
        assert set(candidates) == set(sweep.CANDIDATES[run])
        assert sweep.best(candidates) == sweep.CHOSEN[run]
        assert candidates[sweep.CHOSEN[run]]["args"] == sweep.RUNS[run]


def test_the_readme_table_is_made_from_the_manifests():
    found = sweep.collect()
    if not found:
        pytest.skip("no results/<run>/seed-*/manifest.json yet")
    readme = (LAB / "README.md").read_text()
    assert sweep.table(found) in readme
