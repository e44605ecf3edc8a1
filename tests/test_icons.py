"""The grammar icons: reproducible, complete, and encoding what they claim to."""

import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import generate_icons as gi
from minimodel.data import fingerprint, load_dataset
from minimodel.grammar.verbs import PERSONS, TENSES, VERBS

LAB = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def default_render(data_1000):
    """The default 1000 icons, freshly rendered (conftest's folder), read back."""
    dataset = load_dataset(data_1000)
    return dataset.images, dataset.labels


@pytest.mark.slow
def test_same_seed_same_icons_other_seed_other_pixels(data_300):
    """Seed 0 rendered now equals seed 0 rendered for the committed icons; seed 1 differs."""
    committed = load_dataset(data_300)
    images, labels = gi.render_dataset(300, seed=0)
    other, labels_other = gi.render_dataset(300, seed=1)
    assert np.array_equal(images, committed.images) and labels == committed.labels
    assert labels_other == labels and not np.array_equal(images, other)


@pytest.mark.slow
def test_default_seed_reproduces_the_committed_dataset(default_render):
    committed = json.loads((LAB / "manifest.json").read_text())["dataset"]
    assert committed["seed"] == 0 and committed["n_icons"] == 1000
    images, labels = default_render
    assert fingerprint(images, labels, gi.draw_splits(labels)) == committed["fingerprint"]
    assert load_dataset(LAB / "data").fingerprint == committed["fingerprint"]  # as committed


@pytest.mark.slow
def test_1000_icons_with_consistent_labels(default_render):
    images, labels = default_render
    files = sorted(p.name for p in (LAB / "data" / "icons").iterdir())
    assert len(files) == 1000 and files == sorted(lab["filename"] for lab in labels)
    assert json.loads((LAB / "data" / "labels.json").read_text()) == labels
    per_combo = Counter(lab["class_id"] for lab in labels)
    assert len(per_combo) == 300 and set(per_combo.values()) == {3, 4}
    assert Counter(lab["tense_id"] for lab in labels) == dict.fromkeys(range(5), 200)
    for lab in labels:
        v, t, p = lab["verb_id"], lab["tense_id"], lab["person_id"]
        assert 0 <= v < 20 and 0 <= t < 5 and 0 <= p < 3
        assert lab["class_id"] == (v * 5 + t) * 3 + p
        assert lab["filename"].startswith(f"verb_{VERBS[v]}_tense_{TENSES[t]}_person_{PERSONS[p]}_")
    assert images.shape == (1000, 32, 32, 3) and images.dtype == np.uint8


def test_colour_encodes_tense(data_300):
    """In each icon, one per combination, the mean colour of the shape's own pixels (no
    pattern, no background) is its tense's."""
    palette = np.array(list(gi.TENSE_COLOR.values()), dtype=float)
    dataset = load_dataset(data_300)
    for icon, lab in zip(dataset.images, dataset.labels):
        v, t, p = lab["verb_id"], lab["tense_id"], lab["person_id"]
        args = (VERBS[v], TENSES[t], PERSONS[p], 0)  # index 0: as the icon was drawn
        shape, ink, _ = gi.render_masks(*args)
        body = (shape == 1) & (ink == 0)
        assert body.sum() >= 20, f"{args}: too little of the colour shows"
        mean = icon[body].mean(axis=0)
        assert np.argmin(((palette - mean) ** 2).sum(axis=1)) == t, args


def test_the_20_patterns_are_pairwise_different():
    for person in ("2sg", "3sg"):  # the roomiest and the tightest shape
        ink = [gi.render_masks(verb, "infinitive", person, 0, jitter=False)[1] for verb in VERBS]
        gaps = [np.abs(a - b).mean() for a, b in itertools.combinations(ink, 2)]
        assert min(gaps) > 0.04, person  # at least ~40 of the 1024 pixels differ fully


def test_the_three_shapes_differ():
    shapes = [gi.render_masks("buy", "infinitive", p, 0, jitter=False)[0] > 0.5 for p in PERSONS]
    for a, b in itertools.combinations(shapes, 2):
        assert (a & b).sum() / (a | b).sum() < 0.85  # intersection over union


def test_jitter_off_gives_the_prototype():
    proto = gi.render_icon("work", "future", "1sg", 0, jitter=False)
    assert np.array_equal(proto, gi.render_icon("work", "future", "1sg", 3, jitter=False))
    assert not np.array_equal(proto, gi.render_icon("work", "future", "1sg", 0))


@pytest.mark.slow
def test_generate_replaces_stale_icons(tmp_path, data_300):
    (tmp_path / "icons").mkdir()
    stale = "verb_work_tense_future_person_1sg_9.png"  # its own name, from a bigger --n
    (tmp_path / "icons" / stale).write_bytes(b"stale")
    fp = gi.generate(tmp_path, n=300, seed=0)
    names = sorted(p.name for p in (tmp_path / "icons").iterdir())
    assert len(names) == 300 and stale not in names
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "icons", "icons_sample.png", "labels.json", "splits.json"]  # nothing staged left
    assert load_dataset(tmp_path).fingerprint == fp
    assert load_dataset(data_300).fingerprint == fp  # the tests' shortcut is the same dataset
