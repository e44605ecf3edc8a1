"""A grid's trainings side by side (--jobs) give what they give one after the other; --plan prints
them as commands; Ctrl-C stops every child."""

import _thread
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from minimodel import grid
from minimodel.parallel import cpu_count

LAB = Path(__file__).parents[1]


def trainings(data, out):
    return [grid.Training(f"tense, seed {seed}", [
        ["train.py", "--data", data, "--out", out / f"seed-{seed}", "--seed", seed, "--epochs",
         "2", "--shift", "1"]], out / f"seed-{seed}") for seed in (0, 1, 2)]


def without_timings(entry):
    entry = {k: v for k, v in entry.items() if k not in ("training_seconds", "environment")}
    entry["per_epoch"] = {k: v for k, v in entry["per_epoch"].items() if k != "seconds"}
    return entry


@pytest.mark.slow
def test_two_at_once_give_what_one_at_a_time_gives(data_60, tmp_path, capsys):
    one, two = trainings(data_60, tmp_path / "one"), trainings(data_60, tmp_path / "two")
    grid.run_all(one, LAB, jobs=1)
    finished = []
    grid.run_all(two, LAB, jobs=2, on_done=finished.append, logs=tmp_path / "logs")
    out = capsys.readouterr().out
    assert "[3/3 done] " in out and "min left" in out and len(finished) == 3
    for a, b in zip(one, two):
        with np.load(a.out / "checkpoint.npz") as x, np.load(b.out / "checkpoint.npz") as y:
            assert x.files == y.files
            assert all(np.array_equal(x[k], y[k]) for k in x.files if k != "meta")
        first, second = (json.loads((t.out / "manifest.json").read_text())["runs"]["tense"]
                         for t in (a, b))
        assert first["environment"]["cores"] == min(2, cpu_count())
        assert second["environment"]["cores"] == 1  # its share of two cores
        assert without_timings({**first, "command": None}) == \
            without_timings({**second, "command": None})


def test_the_plan_is_plain_commands_from_the_lab_folder(tmp_path, capsys):
    t = grid.Training("x", [["train.py", "--out", LAB / "results" / "x", "--seed", 3],
                            ["eval.py", "--checkpoint", LAB / "results" / "x" / "c.npz"]])
    grid.plan([t], LAB, before=[["generate_icons.py", "--out", LAB / "runs" / "d"]])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# 1 trainings to do")
    assert lines[1] == f"uv run python generate_icons.py --out {os.path.join('runs', 'd')}"
    assert lines[2].startswith("uv run python train.py --out results") and " && uv run " \
        "python eval.py --checkpoint " in lines[2] and "--seed 3" in lines[2]


def test_ctrl_c_stops_every_child_and_counts_only_what_finished(tmp_path):
    quick, slow = tmp_path / "quick.py", tmp_path / "slow.py"
    quick.write_text("")
    slow.write_text("import time\ntime.sleep(60)\nopen(__file__ + '.done', 'w')\n")
    finished = []

    def on_done(training):
        finished.append(training.what)
        threading.Timer(0.5, _thread.interrupt_main).start()  # Ctrl-C, once the quick one is done

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        grid.run_all([grid.Training("slow", [[slow]]), grid.Training("quick", [[quick]]),
                      grid.Training("never started", [[slow]])], tmp_path, jobs=2,
                     on_done=on_done, logs=tmp_path / "logs")
    assert time.monotonic() - t0 < 30 and finished == ["quick"]
    assert not Path(str(slow) + ".done").exists()


def test_a_failed_step_names_itself_and_its_log(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nprint('what went wrong')\nsys.exit(3)\n")
    with pytest.raises(grid.LabError, match=r"bad.py` failed \(exit 3\); its output: .*000.log"):
        grid.run_all([grid.Training("bad", [[bad]])], tmp_path, jobs=2, logs=tmp_path / "logs")
    assert "what went wrong" in (tmp_path / "logs" / "000.log").read_text()


def test_default_jobs_gives_each_training_two_cores(monkeypatch):
    monkeypatch.setattr(grid, "cpu_count", lambda: 8)
    assert grid.default_jobs() == 4
    monkeypatch.setattr(grid, "cpu_count", lambda: 1)
    assert grid.default_jobs() == 1


def test_a_training_takes_the_share_of_cores_it_is_given(monkeypatch):
    monkeypatch.setenv("MINIMODEL_CORES", "1")
    assert cpu_count() == 1
    monkeypatch.setenv("MINIMODEL_CORES", "many")  # not a count: ignored
    assert cpu_count() >= 1
