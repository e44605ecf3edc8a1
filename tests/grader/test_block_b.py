"""Block B, the icons: render_icon draws the tense as the shape's colour, the person as its shape,
the verb as ink on it, and the labels name each icon. `uv run pytest -m block_b`."""

import json

import numpy as np
import pytest

import generate_icons as gi

pytestmark = pytest.mark.block_b


def near(pixel, colour, tol=3):
    return bool(np.all(np.abs(pixel.astype(int) - np.array(colour)) <= tol))


def test_render_icon_is_a_32x32_rgb_image():
    img = gi.render_icon("work", "future", "1sg", 0)
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8


@pytest.mark.parametrize("tense", list(gi.TENSE_COLOR))
def test_the_tense_is_the_shapes_colour_on_the_background(tense):
    img = gi.render_icon("buy", tense, "2sg", 0, jitter=False)  # buy: a plain shape, no ink
    assert near(img[16, 16], gi.TENSE_COLOR[tense]), img[16, 16]
    assert near(img[0, 0], gi.BACKGROUND) and near(img[31, 31], gi.BACKGROUND)


def shape_of(person):
    """Where a plain icon (verb buy, no jitter) shows the tense's colour: its shape."""
    img = gi.render_icon("buy", "past_simple", person, 0, jitter=False)
    return np.abs(img.astype(int) - gi.TENSE_COLOR["past_simple"]).max(axis=-1) <= 40


def fill_of_box(mask):
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return mask.sum() / ((rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1))


def top_over_bottom(mask):
    rows = np.flatnonzero(mask.any(axis=1))
    middle = (rows[0] + rows[-1] + 1) / 2
    y = np.arange(32)[:, None]
    return (mask & (y < middle)).sum() / (mask & (y >= middle)).sum()


def test_the_person_is_the_shape():
    """Any circle, square and up-pointing triangle: the square fills its bounding box, the circle
    about π/4 of it; the triangle is narrow at the top, the others symmetric."""
    circle, square, triangle = (shape_of(p) for p in gi.PERSON_SHAPE)  # 1sg, 2sg, 3sg
    assert all(m.sum() > 100 for m in (circle, square, triangle))
    assert fill_of_box(square) > 0.9 and 0.7 < fill_of_box(circle) < 0.86
    assert top_over_bottom(triangle) < 0.7
    assert 0.85 < top_over_bottom(circle) < 1.15 and 0.85 < top_over_bottom(square) < 1.15


def test_the_verb_is_ink_inside_the_shape():
    img = gi.render_icon("work", "future", "1sg", 0, jitter=False)  # horizontal stripes
    inked = [near(p, gi.INK, 40) for p in img[8:24, 16]]
    assert any(inked) and not all(inked)  # stripes: some ink, some colour, down the middle
    assert not any(near(p, gi.INK, 40) for p in img[0])  # never on the background


def test_jitter_varies_icons_reproducibly():
    a, b = (gi.render_icon("play", "present_simple", "3sg", i) for i in (0, 1))
    assert not np.array_equal(a, b)
    assert np.array_equal(a, gi.render_icon("play", "present_simple", "3sg", 0))
    assert np.array_equal(gi.render_icon("play", "future", "3sg", 0, jitter=False),
                          gi.render_icon("play", "future", "3sg", 5, jitter=False))


def test_labels_name_each_icon():
    lab = gi.label(2, 3, 1, 4)  # go, past_participle, 2sg, the fifth icon
    assert lab == {"filename": "verb_go_tense_past_participle_person_2sg_4.png", "verb_id": 2,
                   "tense_id": 3, "person_id": 1, "class_id": (2 * 5 + 3) * 3 + 1}


def test_the_generator_writes_icons_and_labels(tmp_path):
    gi.generate(tmp_path, n=300, seed=0)
    labels = json.loads((tmp_path / "labels.json").read_text())
    assert len(labels) == 300 and len({lab["class_id"] for lab in labels}) == 300
    assert all((tmp_path / "icons" / lab["filename"]).exists() for lab in labels)
