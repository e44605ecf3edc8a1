"""Beyond the tense task: the factorised head, unseen verb forms, and every run end to end."""

import json
import shutil
from collections import Counter

import numpy as np
import pytest
from conftest import SMOKE_RUNS, smoke_options
from gradcheck import TOL, numerical_grad, rel_error

import eval as eval_script
import generate_icons as gi
import train
from minimodel.data import Dataset
from minimodel.grammar.tasks import Task
from vit import TinyViT, cross_entropy, tiny_config

rng = np.random.default_rng(0)
LABELS = [gi.label(*item) for item in gi.icon_list(1000)]


def test_factorised_loss_gradient():
    """Float64 central differences on the logits, through three softmaxes (3 + 2 + 2); from the
    logits on, the backward pass is the one the whole-model check covers (test_vit.py)."""
    groups = (3, 2, 2)
    logits = rng.normal(size=(4, sum(groups)))
    y = np.stack([rng.integers(0, g, 4) for g in groups], axis=1)  # (B, 3) factor ids
    _, dlogits = cross_entropy(logits, y, groups)
    num = numerical_grad(lambda: cross_entropy(logits, y, groups)[0], logits)
    assert rel_error(dlogits, num) < TOL


def test_factorised_loss_is_the_sum_of_the_factor_losses():
    logits, y = rng.normal(size=(5, 28)), np.stack([rng.integers(0, n, 5) for n in (20, 5, 3)], 1)
    loss, d = cross_entropy(logits, y, (20, 5, 3))
    parts = [cross_entropy(logits[:, a:b], y[:, i]) for i, (a, b) in
             enumerate([(0, 20), (20, 25), (25, 28)])]
    assert loss == pytest.approx(sum(p[0] for p in parts))
    assert np.allclose(d, np.concatenate([p[1] for p in parts], axis=1))


@pytest.mark.parametrize("name", ["tense", "tense_person", "full"])
def test_both_heads_decode_to_the_same_classes(name):
    """A head that is sure of the right answer predicts the icon's class, flat or factorised."""
    dataset = Dataset(np.zeros((len(LABELS), 32, 32, 3), np.uint8), LABELS, {}, "")
    flat, fact = Task(name, "flat"), Task(name, "factorised")
    classes = flat.targets(dataset)
    assert np.array_equal(fact.classes(fact.targets(dataset)), classes)
    if name == "full":
        assert np.array_equal(classes, dataset.ids("class_id"))
    sure_flat = np.eye(flat.n_outputs)[classes]
    sure_fact = np.concatenate([np.eye(n)[fact.targets(dataset)[:, i]]
                                for i, n in enumerate(fact.sizes)], axis=1)
    assert np.array_equal(flat.decode(sure_flat), classes)
    assert np.array_equal(fact.decode(sure_fact), classes)
    assert len(flat.class_names) == flat.n_outputs == np.prod(fact.sizes)


def test_combo_split_holds_whole_combinations_out():
    parts = gi.combo_split(LABELS)
    tr, va, te = parts["train"], parts["val"], parts["test"]

    def combos(idx):
        return {LABELS[i]["class_id"] for i in idx}

    assert not combos(tr) & combos(te)  # no test combination is ever seen in training
    assert not combos(tr) & combos(va) and not combos(va) & combos(te)  # nor a validation one
    assert len(combos(te)) == 60 and len(combos(va)) == 20 and len(combos(tr)) == 220
    assert len(tr) + len(va) + len(te) == 1000
    held_out = {LABELS[i]["class_id"]: LABELS[i] for i in te}.values()  # one per combination
    for key, n, per_value in (("verb_id", 20, 3), ("tense_id", 5, 12), ("person_id", 3, 20)):
        assert {LABELS[i][key] for i in tr} == set(range(n))  # every value still trained on
        assert set(Counter(lab[key] for lab in held_out).values()) == {per_value}  # evenly
    assert gi.combo_split(LABELS) == parts
    assert gi.combo_split(LABELS, seed=1)["test"] != te


@pytest.mark.parametrize("task, head, split, name", SMOKE_RUNS)
@pytest.mark.slow
def test_smoke_runs_of_each_task_and_head(trained, data_300, tmp_path, task, head, split, name):
    run = shutil.copytree(trained(*smoke_options(task, head, split)), tmp_path / "run")
    acc, cm = eval_script.evaluate(run / "checkpoint.npz", data_300)  # adds to the manifest
    entry = json.loads((run / "manifest.json").read_text())["runs"][name]
    assert (entry["task"], entry["head"], entry["split"]) == (task, head, split)
    assert entry["eval"]["test_accuracy"] == acc and cm.sum() == entry["split_sizes"]["test"]
    assert entry["recipe"]["shift"] == 1
    assert (run / "cls_attention.png").exists()


def test_shift_moves_images_within_bounds():
    x = np.arange(2 * 6 * 6 * 1, dtype=np.float32).reshape(2, 6, 6, 1)
    moved = train.shift(x, 2, np.random.default_rng(0))
    assert moved.shape == x.shape and train.shift(x, 0, None) is x
    assert set(np.unique(moved)) <= set(np.unique(x))  # edge pixels repeated, nothing new


def test_cls_attention_maps_are_distributions():
    model = TinyViT(tiny_config(n_blocks=3))
    last, rollout = eval_script.cls_attention(model, np.zeros((8, 8, 3), np.float32))
    assert last.shape == rollout.shape == (2, 2)
    assert 0 < last.sum() <= 1 and 0 < rollout.sum() <= 1  # [CLS] keeps the rest for itself
