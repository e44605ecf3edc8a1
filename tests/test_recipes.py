"""What a recipe can change beyond the spec's (training on train + validation), its range checks,
and where a run's outputs go. (AdamW, weight decay, label smoothing and warm-up were tried and
lost on validation: results/selection.json.)"""

import json
import os

import pytest
from conftest import snapshot

import train
from minimodel.files import from_here


@pytest.mark.parametrize("args, needle", [
    (("--train-on", "test"), "invalid choice: 'test'"),
    (("--shift", "9"), "--shift must be between 0 and 8 pixels"),
])
def test_lever_options_are_range_checked(cli, data, previous, args, needle):
    before = snapshot(previous)
    code, err = cli(train.main, "--data", data, "--out", previous, *args)
    assert code == 2 and needle in err, err
    assert snapshot(previous) == before


def test_experiments_go_to_runs_and_the_default_run_to_the_top_level(monkeypatch, data_60,
                                                                      tmp_path):
    monkeypatch.setattr(train, "LAB", tmp_path)
    monkeypatch.setattr(train, "DATA", data_60)
    assert train.parse_args([]).out == tmp_path  # the README's first command
    assert train.parse_args(["--epochs", "5"]).out == tmp_path / "runs" / "tense"
    assert train.parse_args(["--seed", "1", "--task", "full", "--head", "factorised"]).out == \
        tmp_path / "runs" / "full_factorised-seed1"  # a seed other than 0: a folder of its own
    assert train.parse_args(["--data", str(tmp_path)]).out == tmp_path / "runs" / "tense"
    assert str(train.parse_args(["--epochs", "5", "--out", str(tmp_path / "x")]).out) == \
        str(tmp_path / "x")


def test_training_on_train_and_validation(data_60, tmp_path, capsys):
    train.main(["--data", str(data_60), "--out", str(tmp_path), "--epochs", "2",
                "--train-on", "train+val"])
    entry = json.loads((tmp_path / "manifest.json").read_text())["runs"]["tense"]
    splits = json.loads((data_60 / "splits.json").read_text())["stratified"]
    assert entry["split_sizes"] == {"train": len(splits["train"]) + len(splits["val"]),
                                    "val": 0, "test": len(splits["test"])}
    assert entry["val_accuracy"] is None and entry["test_accuracy"] is not None
    assert entry["recipe"]["train_on"] == "train+val"
    assert "val acc    —" in capsys.readouterr().out
    for png in ("loss.png", "accuracy.png", "diagnostics.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_messages_give_paths_as_typed_from_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    monkeypatch.chdir(tmp_path / "docs")  # a learner in docs/ is told ../runs/..., not runs/...
    assert from_here(tmp_path / "runs" / "tense") == os.path.join("..", "runs", "tense")
    assert from_here(tmp_path / "docs" / "x.npz") == "x.npz"
