"""The split, the schedule, and the lab end to end: generate -> train -> eval."""

import json
import math
import shutil
from collections import Counter

import numpy as np
import pytest

import eval as evaluate_script
import generate_icons as gi
import train
from minimodel.data import load_dataset
from vit import TinyViT


def test_split_is_stratified_and_keeps_two_training_icons_per_combination():
    labels = [gi.label(*item) for item in gi.icon_list(1000)]
    parts = gi.stratified_split(labels)
    tr, va, te = parts["train"], parts["val"], parts["test"]
    assert (len(tr), len(va), len(te)) == (700, 100, 200)
    assert not set(tr) & set(te) and not set(tr) & set(va) and not set(va) & set(te)
    tense = Counter(labels[i]["tense_id"] for i in te)
    assert tense == dict.fromkeys(range(5), 40)
    assert Counter(labels[i]["tense_id"] for i in va) == dict.fromkeys(range(5), 20)
    assert max(Counter(labels[i]["class_id"] for i in va).values()) == 1
    def tense_person(idx):
        return {(labels[i]["tense_id"], labels[i]["person_id"]) for i in idx}

    assert len(tense_person(tr)) == len(tense_person(va)) == len(tense_person(te)) == 15
    train_per_combo = Counter(labels[i]["class_id"] for i in tr)
    test_per_combo = Counter(labels[i]["class_id"] for i in te)
    assert min(train_per_combo.values()) >= 2 and len(train_per_combo) == 300
    assert len(test_per_combo) == 200 and max(test_per_combo.values()) == 1
    assert gi.stratified_split(labels) == parts  # deterministic


def test_cosine_schedule():
    assert train.cosine_lr(0, 100, 1e-3) == 1e-3
    assert train.cosine_lr(50, 100, 1e-3) == pytest.approx(5e-4)
    assert 0 < train.cosine_lr(99, 100, 1e-3) < 1e-6


@pytest.mark.slow
def test_same_seed_same_final_weights(data_300, trained, tmp_path):
    train.main(["--data", str(data_300), "--out", str(tmp_path), "--epochs", "1"])
    again, _ = TinyViT.load(tmp_path / "checkpoint.npz")
    first, _ = TinyViT.load(trained() / "checkpoint.npz")  # the same options, trained before
    other, _ = TinyViT.load(trained("--seed", 1) / "checkpoint.npz")
    assert np.array_equal(again.flat_params, first.flat_params)
    assert not np.array_equal(other.params["pos"], first.params["pos"])


@pytest.mark.slow
def test_acceptance_tense_task_from_fresh_icons(data_1000, tmp_path, capsys):
    """The lab's acceptance bar, >= 80% on the test icons, reached with the default recipe cut
    to 5 of its 20 epochs (the whole run is the README's first command; see manifest.json)."""
    train.main(["--data", str(data_1000), "--out", str(tmp_path), "--epochs", "5"])
    log = capsys.readouterr().out
    assert log.count("\nepoch ") + log.startswith("epoch ") == 5  # one line per epoch
    manifest = json.loads((tmp_path / "manifest.json").read_text())["runs"]["tense"]
    assert manifest["test_accuracy"] >= 0.80
    assert manifest["split_sizes"] == {"train": 700, "val": 100, "test": 200}
    assert manifest["dataset"]["fingerprint"] == load_dataset(data_1000).fingerprint
    for key in ("python", "numpy", "pillow", "matplotlib", "blas", "cpu", "cores", "git_commit"):
        assert key in manifest["environment"]
    acc, cm = evaluate_script.evaluate(tmp_path / "checkpoint.npz", data_1000)
    assert acc == manifest["test_accuracy"] and cm.sum() == 200 and cm.shape == (5, 5)
    assert math.isclose(cm.trace() / 200, acc)
    for png in ("loss.png", "accuracy.png", "confusion_matrix.png", "cls_attention.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    evaluated = json.loads((tmp_path / "manifest.json").read_text())["runs"]["tense"]["eval"]
    assert evaluated["test_accuracy"] == acc and len(evaluated["per_class_accuracy"]) == 5


@pytest.mark.slow
def test_eval_scores_the_held_out_icons_and_refuses_another_dataset(data_300, trained, tmp_path):
    out = shutil.copytree(trained(), tmp_path / "run")  # eval.py adds to its manifest
    entry = json.loads((out / "manifest.json").read_text())["runs"]["tense"]
    acc, cm = evaluate_script.evaluate(out / "checkpoint.npz", data_300)
    assert acc == entry["test_accuracy"] and cm.sum() == entry["split_sizes"]["test"]
    other = tmp_path / "other"
    gi.generate(other, n=300, seed=7)
    with pytest.raises(ValueError, match="not the dataset .* was trained on .* add --all"):
        evaluate_script.evaluate(out / "checkpoint.npz", other)
    acc_all, cm_all = evaluate_script.evaluate(out / "checkpoint.npz", other, all_icons=True)
    assert cm_all.sum() == 300
    fresh = json.loads((out / "manifest.json").read_text())["runs"]["tense"]["eval_all"]
    assert fresh["n_icons"] == 300 and fresh["accuracy"] == acc_all
    assert sum(p["n_icons"] for p in fresh["parts"].values()) == 300
    assert fresh["fingerprint"] == load_dataset(other).fingerprint


@pytest.mark.slow
def test_eval_draws_the_mistakes_and_keeps_the_labs_results_out_of_all(data_300, trained,
                                                                       tmp_path, monkeypatch):
    """eval.py writes mistakes.png (and names the icons in the manifest); --all on the lab's own
    checkpoint records into runs/lab/, leaving the lab's committed manifest.json alone (and a
    user's own runs/<run>/)."""
    lab = shutil.copytree(trained(), tmp_path / "lab")  # stands for the lab's top level
    monkeypatch.setattr(evaluate_script, "LAB", lab)
    monkeypatch.setattr(evaluate_script, "DATA", data_300)
    before = (lab / "manifest.json").read_bytes()
    evaluate_script.main(["--checkpoint", str(lab / "checkpoint.npz")])
    entry = json.loads((lab / "manifest.json").read_text())["runs"]["tense"]
    wrong = round((1 - entry["eval"]["test_accuracy"]) * entry["split_sizes"]["test"])
    assert len(entry["eval"]["mistakes"]) == wrong
    for png in ("mistakes.png", "cls_attention.png", "confusion_matrix.png"):
        assert (lab / png).read_bytes()[:4] == b"\x89PNG"
    before = (lab / "manifest.json").read_bytes()
    other = tmp_path / "other"
    gi.generate(other, n=300, seed=1)
    evaluate_script.main(["--checkpoint", str(lab / "checkpoint.npz"), "--data", str(other),
                          "--all"])
    assert (lab / "manifest.json").read_bytes() == before
    fresh = json.loads((lab / "runs" / "lab" / "manifest.json").read_text())
    assert fresh["runs"]["tense"]["eval_all"]["n_icons"] == 300
