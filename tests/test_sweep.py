"""sweep.py: the recipes it trains are the ones the validation icons chose over the seeds, and
the README's results table is what its summary makes of the committed manifests."""

import json
from pathlib import Path

import pytest

import sweep

LAB = Path(__file__).parents[1]


def test_each_run_trains_the_recipe_validation_chose():
    tried = json.loads(sweep.SELECTION.read_text())
    assert set(tried) == set(sweep.CANDIDATES) == set(sweep.CHOSEN) == set(sweep.RUNS)
    for run, candidates in tried.items():
        assert list(candidates) == list(sweep.CANDIDATES[run])  # simplest first, as tried
        for label, c in candidates.items():
            assert c["args"] == sweep.CANDIDATES[run][label]
            assert len(c["seeds"]) >= 3 and "test_accuracy" not in json.dumps(c)
        assert sweep.choose(candidates) == sweep.CHOSEN[run]
        assert [k for k, c in candidates.items() if c["chosen"]] == [sweep.CHOSEN[run]]
        assert sweep.RUNS[run] == candidates[sweep.CHOSEN[run]]["args"]


def test_a_candidate_wins_only_by_more_than_the_spread():
    simple, close, clear = {"val": [90, 92, 94]}, {"val": [93, 94, 95]}, {"val": [97, 98, 99]}
    assert sweep.choose({"a": simple, "b": close}) == "a"  # +2 points, spread 4
    assert sweep.choose({"a": simple, "b": clear}) == "b"  # +6 points
    assert sweep.choose({"a": simple, "b": clear, "c": close}) == "b"


def test_the_readme_table_is_made_from_the_manifests():
    found = sweep.collect()
    if not found:
        pytest.skip("no results/<run>/seed-*/manifest.json yet")
    readme = (LAB / "README.md").read_text()
    assert sweep.table(found, json.loads(sweep.SELECTION.read_text())) in readme
    assert sweep.goals(found) in readme
