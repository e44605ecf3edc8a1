"""sweep.py: the recipes it trains are the ones the validation icons chose over the seeds, and
the README's and the report's tables are what its summary makes of the committed manifests."""

import argparse
import json
from pathlib import Path

import pytest

import sweep
import train
from minimodel import recipes

LAB = Path(__file__).parents[1]
ONE_AT_A_TIME = argparse.Namespace(plan=False, jobs=1)


def test_each_run_trains_the_recipe_validation_chose():
    tried = json.loads(sweep.SELECTION.read_text())
    assert set(tried) == set(sweep.CANDIDATES) == set(sweep.CHOSEN) == set(sweep.RUNS)
    for run, candidates in tried.items():
        # simplest first, as tried; the candidates of a lever that lost stay in the file only
        assert [k for k in candidates if k in sweep.CANDIDATES[run]] == list(sweep.CANDIDATES[run])
        for label, c in candidates.items():
            assert c["args"] == sweep.CANDIDATES[run].get(label, c["args"])
            assert len(c["seeds"]) >= 3 and "test_accuracy" not in json.dumps(c)
        assert sweep.choose(candidates) == sweep.CHOSEN[run]
        assert [k for k, c in candidates.items() if c["chosen"]] == [sweep.CHOSEN[run]]



def test_the_recipe_table_is_what_validation_chose(tmp_path):
    """train.py trains a run with its chosen recipe (minimodel.recipes) as the candidate chosen
    in selection.json spelled it."""
    for run, label in sweep.CHOSEN.items():
        by_table = train.parse_args([*sweep.RUNS[run], "--out", str(tmp_path)])
        as_tried = train.parse_args([*sweep.CANDIDATES[run][label], "--out", str(tmp_path)])
        assert by_table.run == as_tried.run == run
        for key in ("task", "head", "split", *recipes.SPEC):
            assert getattr(by_table, key) == getattr(as_tried, key), (run, key)


def test_a_candidate_wins_only_by_more_than_the_spread():
    simple, close, clear = {"val": [90, 92, 94]}, {"val": [93, 94, 95]}, {"val": [97, 98, 99]}
    assert sweep.choose({"a": simple, "b": close}) == "a"  # +2 points, spread 4
    assert sweep.choose({"a": simple, "b": clear}) == "b"  # +6 points
    assert sweep.choose({"a": simple, "b": clear, "c": close}) == "b"
    noisy = {"val": [78, 94, 95]}  # a noisy choice is replaced by a steady, better one ...
    assert sweep.choose({"a": noisy, "b": clear}) == "b"
    lucky = {"val": [80, 99, 100]}  # ... but a noisy challenger must win by more than its noise
    assert sweep.choose({"a": simple, "b": lucky}) == "a"


def test_the_tables_are_made_from_the_manifests():
    """The README's table against the spec, and the report's results and selection tables, are
    what the summary makes of the committed manifests (a hand-edited figure fails this)."""
    found = sweep.collect()
    if not found:
        pytest.skip("no results/<run>/seed-*/manifest.json yet")
    assert sweep.spec_table(found) in (LAB / "README.md").read_text()
    report = (LAB / "docs" / "report.md").read_text()
    tried = sweep.read_selection()
    assert sweep.table(found, tried) in report and sweep.goals(found) in report
    assert sweep.selection_table(tried) in report


def test_the_report_scaling_paragraph_is_made_from_the_manifests():
    if not list(sweep.SCALING.glob("*/n-*/seed-*/manifest.json")):
        pytest.skip("no results/scaling/ yet")
    report = (LAB / "docs" / "report.md").read_text()
    assert sweep.scaling_text(*sweep.scaling_points()) in report


def test_the_scaling_paragraph_answers_from_the_manifests(monkeypatch, tmp_path):
    """Where each head's seed mean crosses 95% and 99% on the grid, how many times fewer icons
    the factorised head needs, what the unseen forms gain, and what a point costs: all read
    from the manifests."""
    monkeypatch.setattr(sweep, "RESULTS", tmp_path)
    monkeypatch.setattr(sweep, "SCALING", tmp_path / "scaling")
    accuracy = {"full": {500: (80, 90), 1000: (94, 97), 2000: (98, 99), 4000: (99, 99.5)},
                "full_factorised": {500: (96, 98), 1000: (99, 99.4), 2000: (99.5, 99.9)},
                "full_factorised_combos": {500: (89, 91), 1000: (95, 95)}}
    for run, by_n in accuracy.items():
        split = "combos" if run.endswith("combos") else "stratified"
        for n, seeds in by_n.items():
            for seed, acc in enumerate(seeds):
                entry = {"split": split, "split_sizes": {"train": n * 4 // 5},
                         "training_seconds": 100 + seed, "environment": {"training_code": "c"},
                         "recipe": {"epochs": 300_000 // n, "seed": seed},
                         "eval_all": {"accuracy": acc / 200 if split == "combos" else acc / 100,
                                      "parts": {"test": {"accuracy": acc / 100}}}}
                folder = tmp_path / "scaling" / run / f"n-{n}" / f"seed-{seed}"
                folder.mkdir(parents=True)
                (folder / "manifest.json").write_text(json.dumps({"runs": {run: entry}}))
    text, fig = sweep.scaling_summary()
    text = " ".join(text.split())  # the paragraph is wrapped at 100
    assert len(fig.axes) == 2
    assert ("| 500 | 1.3 | 240,000 | 85.0 (80.0–90.0) | 97.0 (96.0–98.0) | "
            "90.0 (89.0–91.0) | 100 |") in text
    assert "| 4000 | 10.7 | 240,000 | 99.2 (99.0–99.5) | — | — | 100 |" in text
    assert ("**95%** (seed mean on the fresh icons) needs full 1.3–2.7; full_factorised 1.3 "
            "or fewer training icons per verb form: full_factorised needs fewer (how many times, "
            "this grid cannot tell).") in text
    assert ("**99%** (seed mean on the fresh icons) needs full 5.3–10.7; full_factorised "
            "1.3–2.7 training icons per verb form: full_factorised needs 2× to 8× "
            "fewer.") in text
    assert ("**Unseen forms.** full_factorised_combos, trained on the 240 forms it sees, on the "
            "fresh icons of the 60 it never saw: 1.7 icons per seen form → 90.0%, 3.3 icons per "
            "seen form → 95.0%.") in text  # the held-out part, not all 1000 fresh icons
    assert ("0% more icons shown at most), so each costs about 100 s on the machine that ran it "
            "(median of the 18 trainings, 100–101 s)") in text
    assert "a run on 4000 icons cost 4× the 1000-icon run, about 7 min" in text


def test_scaling_refuses_runs_that_are_not_300_class(capsys):
    with pytest.raises(SystemExit) as stop:
        sweep.main(["--scaling", "--runs", "full", "tense"])
    assert stop.value.code == 2
    assert "--scaling trains the 300-class runs" in capsys.readouterr().err


def test_how_many_times_fewer_is_bounded_by_both_intervals():
    inf = float("inf")  # (lo, hi]: the icons per verb form a head needs, as the grid tells
    assert sweep.fewer({"a": (0.0, 1.3), "b": (0.0, 1.3)}) == \
        "this grid cannot tell which needs fewer"
    assert sweep.fewer({"a": (1.3, 2.7), "b": (2.0, 4.0)}) == \
        "this grid cannot tell which needs fewer"  # the intervals overlap
    assert sweep.fewer({"a": (5.7, 12.3), "b": (0.0, 1.3)}) == "b needs more than 4× fewer"
    assert sweep.fewer({"a": (5.7, inf), "b": (1.3, 2.7)}) == "b needs more than 2× fewer"
    assert sweep.fewer({"a": (2.7, 5.7), "b": (1.3, 2.7)}) == "b needs fewer, at most 5× fewer"
    assert sweep.fewer({"a": (1.3, 2.7), "b": (0.0, 1.3)}) == \
        "b needs fewer (how many times, this grid cannot tell)"
    assert sweep.fewer({"a": (8.0, 16.0), "b": (1.0, 2.0)}) == "b needs 4× to 16× fewer"


@pytest.mark.slow
def test_the_scaling_experiment_end_to_end_on_a_tiny_grid(monkeypatch, tmp_path):
    """Two small datasets, one seed, one epoch's worth of steps: each point is trained, scored on
    the fresh icons, and drawn; the paragraph's numbers are read from the manifests."""
    monkeypatch.setattr(sweep, "RESULTS", tmp_path)
    monkeypatch.setattr(sweep, "SCALING", tmp_path / "scaling")
    monkeypatch.setattr(sweep, "recipe", lambda run: {**recipes.recipe(run), "epochs": 1})
    monkeypatch.setattr(sweep, "DATA_CACHE", tmp_path / "runs" / "sweep-data")
    sweep.scaling((300, 600), range(1), ["full_factorised"], ONE_AT_A_TIME)
    found = sorted((tmp_path / "scaling").glob("full_factorised/n-*/seed-0/manifest.json"))
    assert [p.parents[1].name for p in found] == ["n-300", "n-600"]
    entries = [json.loads(p.read_text())["runs"]["full_factorised"] for p in found]
    assert [e["recipe"]["epochs"] for e in entries] == [3, 2]  # the same steps: 1 × 1000 / n
    assert [e["split_sizes"]["train"] for e in entries] == [240, 480]  # train + validation
    assert all(e["eval_all"]["n_icons"] == 1000 and e["test_accuracy"] is None for e in entries)
    text, fig = sweep.scaling_summary()
    assert len(fig.axes) == 2
    for n, e in zip((300, 600), entries):
        assert f"| {n} | {e['split_sizes']['train'] / 300:.1f} | " \
               f"{e['split_sizes']['train'] * e['recipe']['epochs']:,} | " \
               f"{100 * e['eval_all']['accuracy']:.1f} |" in text
    before = [p.read_bytes() for p in found]
    sweep.scaling((300, 600), range(1), ["full_factorised"], ONE_AT_A_TIME)  # all done
    assert [p.read_bytes() for p in found] == before


def test_same_code_follows_the_recorded_checks(tmp_path, monkeypatch):
    from minimodel import files

    monkeypatch.setattr(files, "training_code", lambda lab: "c")
    assert files.same_code(tmp_path) == {"c"}
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "same_code.json").write_text(json.dumps({
        "c": {"same_weights_as": "b"}, "b": {"same_weights_as": "a"},
        "x": {"same_weights_as": "c"}}))  # x is another branch's: not ours
    assert files.same_code(tmp_path) == {"a", "b", "c"}


def test_every_committed_result_was_trained_by_this_code_or_checked_same():
    """A change to the training code either leaves the weights bit for bit (recorded by
    `sweep.py --same-as REV`) or obliges a rerun of the committed results."""
    from minimodel.files import same_code

    same = same_code(LAB)
    for path in sorted((LAB / "results").rglob("manifest.json")):
        for run, entry in json.loads(path.read_text())["runs"].items():
            assert entry["environment"]["training_code"] in same, (path, run)
