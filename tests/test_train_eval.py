"""The split, the schedule, and the lab end to end: generate -> train -> eval."""

import json
import math
from collections import Counter

import numpy as np
import pytest

import eval as evaluate_script
import generate_icons as gi
import train
from vit import TinyViT


@pytest.fixture(scope="module")
def fresh_data(tmp_path_factory):
    """The default 1000 icons, generated anew (not the committed ones)."""
    out = tmp_path_factory.mktemp("data")
    gi.generate(out, n=1000, seed=0)
    return out


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    gi.generate(out, n=300, seed=0)
    return out


def test_split_is_stratified_and_keeps_two_training_icons_per_combination():
    labels = [gi.label(*item) for item in gi.icon_list(1000)]
    tr, te = gi.split(labels)
    assert len(tr) == 800 and len(te) == 200 and not set(tr) & set(te)
    tense = Counter(labels[i]["tense_id"] for i in te)
    assert tense == dict.fromkeys(range(5), 40)
    def tense_person(idx):
        return {(labels[i]["tense_id"], labels[i]["person_id"]) for i in idx}

    assert len(tense_person(tr)) == len(tense_person(te)) == 15  # every class on both sides
    train_per_combo = Counter(labels[i]["class_id"] for i in tr)
    test_per_combo = Counter(labels[i]["class_id"] for i in te)
    assert min(train_per_combo.values()) >= 2 and len(train_per_combo) == 300
    assert len(test_per_combo) == 200 and max(test_per_combo.values()) == 1
    again = gi.split(labels)
    assert np.array_equal(again[0], tr) and np.array_equal(again[1], te)  # deterministic


def test_cosine_schedule():
    assert train.cosine_lr(0, 100, 1e-3) == 1e-3
    assert train.cosine_lr(50, 100, 1e-3) == pytest.approx(5e-4)
    assert 0 < train.cosine_lr(99, 100, 1e-3) < 1e-6


def test_same_seed_same_final_weights(small_data, tmp_path):
    def run(out):
        train.main(["--data", str(small_data), "--out", str(out), "--epochs", "1"])
        model, _ = TinyViT.load(out / "checkpoint.npz")
        return {name: p for name, p, _ in model.named_parameters()}

    a, b = run(tmp_path / "a"), run(tmp_path / "b")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    train.main(["--data", str(small_data), "--out", str(tmp_path / "c"), "--epochs", "1",
                "--seed", "1"])
    c, _ = TinyViT.load(tmp_path / "c" / "checkpoint.npz")
    assert not np.array_equal(c.params["pos"], a["pos"])


def test_acceptance_tense_task_from_fresh_icons(fresh_data, tmp_path, capsys):
    """The lab's acceptance run: the default recipe, >= 80% on the test icons."""
    train.main(["--data", str(fresh_data), "--out", str(tmp_path)])
    log = capsys.readouterr().out
    assert log.count("\nepoch ") + log.startswith("epoch ") == 20  # one line per epoch
    manifest = json.loads((tmp_path / "manifest.json").read_text())["runs"]["tense"]
    assert manifest["test_accuracy"] >= 0.80
    assert manifest["split_sizes"] == {"train": 800, "test": 200}
    assert manifest["dataset"]["fingerprint"] == gi.load_dataset(fresh_data).fingerprint
    for key in ("python", "numpy", "pillow", "matplotlib", "blas", "cpu", "cores", "git_commit"):
        assert key in manifest["environment"]
    acc, cm = evaluate_script.evaluate(tmp_path / "checkpoint.npz", fresh_data)
    assert acc == manifest["test_accuracy"] and cm.sum() == 200 and cm.shape == (5, 5)
    assert math.isclose(cm.trace() / 200, acc)
    for png in ("loss.png", "accuracy.png", "confusion_matrix.png", "cls_attention.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    evaluated = json.loads((tmp_path / "manifest.json").read_text())["runs"]["tense"]["eval"]
    assert evaluated["test_accuracy"] == acc and len(evaluated["per_class_accuracy"]) == 5
