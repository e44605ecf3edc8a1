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
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8, \
        f"render_icon gave {img.shape} {img.dtype}, not a (32, 32, 3) uint8 array"


@pytest.mark.parametrize("tense", list(gi.TENSE_COLOR))
def test_the_tense_is_the_shapes_colour_on_the_background(tense):
    img = gi.render_icon("buy", tense, "2sg", 0, jitter=False)  # buy: a plain shape, no ink
    assert near(img[16, 16], gi.TENSE_COLOR[tense]), \
        f"the middle of a {tense} square is {img[16, 16]}, not {tense}'s {gi.TENSE_COLOR[tense]}"
    corners = np.concatenate([img[:4, :4], img[-4:, -4:]]).reshape(-1, 3)
    assert np.ptp(corners, axis=0).max() == 0, \
        "with jitter=False the background varies: add noise only when jitter=True"
    assert near(corners[0], gi.BACKGROUND), \
        f"the corners are {corners[0]}, not the background {gi.BACKGROUND}"


def body_colour(img):
    """The median colour of a plain icon's shape: its pixels far from the background."""
    far = np.abs(img.astype(int) - gi.BACKGROUND).max(axis=-1) > 60
    return np.median(img[far].astype(int), axis=0)


@pytest.mark.parametrize("tense", list(gi.TENSE_COLOR))
def test_jittered_colours_stay_nearest_their_tense(tense):
    """Jitter varies the shade a little (the spec: slight colour noise); a tense's icons must
    never drift towards another tense's colour."""
    colours = {t: np.array(c) for t, c in gi.TENSE_COLOR.items()}
    for idx in range(12):
        shade = body_colour(gi.render_icon("buy", tense, ("1sg", "2sg", "3sg")[idx % 3], idx))
        off = np.abs(shade - colours[tense]).max()
        nearest = min(colours, key=lambda t: np.abs(shade - colours[t]).max())
        assert nearest == tense and off <= 25, \
            (f"icon {idx} of {tense} has the colour {shade}, {off:.0f} off {tense}'s "
             f"{gi.TENSE_COLOR[tense]} (nearest tense: {nearest}): keep the jitter slight")


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
    shapes = {p: shape_of(p) for p in gi.PERSON_SHAPE}
    for person, name in gi.PERSON_SHAPE.items():
        assert 100 < shapes[person].sum() < 700, \
            (f"the {name} ({person}) covers {shapes[person].sum()} of the 1024 pixels: draw it "
             f"about 22 pixels across (RADIUS = 11 from the centre)")
    circle, square, triangle = shapes.values()  # 1sg, 2sg, 3sg
    assert fill_of_box(square) > 0.9, \
        f"the square fills {fill_of_box(square):.0%} of its bounding box, not all of it"
    assert 0.7 < fill_of_box(circle) < 0.86, \
        f"the circle fills {fill_of_box(circle):.0%} of its bounding box, not about π/4 = 79%"
    assert top_over_bottom(triangle) < 0.7, \
        (f"the triangle's top half holds {top_over_bottom(triangle):.2f}× its bottom half's "
         f"pixels: it must point up, narrow at the top (v grows downward)")
    for name, m in (("circle", circle), ("square", square)):
        assert 0.85 < top_over_bottom(m) < 1.15, \
            f"the {name} is not symmetric top to bottom ({top_over_bottom(m):.2f})"


def test_the_verb_is_ink_inside_the_shape():
    img = gi.render_icon("work", "future", "1sg", 0, jitter=False)  # horizontal stripes
    inked = [near(p, gi.INK, 40) for p in img[8:24, 16]]
    assert any(inked) and not all(inked), \
        "work's horizontal stripes must show ink and colour in turn down the middle"
    assert not any(near(p, gi.INK, 40) for p in img[0]), \
        "ink on the background: the verb's pattern belongs inside the shape only"


def test_jitter_varies_icons_reproducibly():
    a, b = (gi.render_icon("play", "present_simple", "3sg", i) for i in (0, 1))
    assert not np.array_equal(a, b), "icons 0 and 1 of a combination must differ (jitter)"
    assert np.array_equal(a, gi.render_icon("play", "present_simple", "3sg", 0)), \
        "the same icon drawn twice differs: draw its jitter from a generator seeded by its ids"
    assert np.array_equal(gi.render_icon("play", "future", "3sg", 0, jitter=False),
                          gi.render_icon("play", "future", "3sg", 5, jitter=False)), \
        "with jitter=False every icon of a combination must be the same prototype"


def test_labels_name_each_icon():
    lab = gi.label(2, 3, 1, 4)  # go, past_participle, 2sg, the fifth icon
    want = {"filename": "verb_go_tense_past_participle_person_2sg_4.png", "verb_id": 2,
            "tense_id": 3, "person_id": 1, "class_id": (2 * 5 + 3) * 3 + 1}
    assert set(lab) == set(want), f"a label has the fields {sorted(want)}, got {sorted(lab)}"
    for key, value in want.items():
        assert lab[key] == value, (f"label(2, 3, 1, 4) (go, past_participle, 2sg, icon 4): "
                                   f"{key} is {lab[key]!r}, expected {value!r}"
                                   + (" = (verb·5 + tense)·3 + person" * (key == "class_id")))


def test_the_generator_writes_icons_and_labels(tmp_path):
    gi.generate(tmp_path, n=300, seed=0)
    labels = json.loads((tmp_path / "labels.json").read_text())
    assert len(labels) == 300 and len({lab["class_id"] for lab in labels}) == 300
    assert all((tmp_path / "icons" / lab["filename"]).exists() for lab in labels)
