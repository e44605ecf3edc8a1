"""Block B, the icons: render_icon draws the tense as the shape's colour, the person as its shape,
the verb as ink on it; the dataset holds every icon once, labelled, saved as PNGs with
labels.json, and a grid of 20 to look at. `uv run pytest -m block_b`."""

import json

import numpy as np
import pytest
from PIL import Image

import generate_icons as gi
from minimodel.grammar.verbs import PERSONS, TENSES, VERBS, class_id

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


def test_icon_list_holds_every_icon_once():
    """n icons: for each combination, samples_per_combo(n)[its class_id], numbered from 0."""
    for n in (300, 1000):
        items = gi.icon_list(n)
        assert len(items) == n and len(set(items)) == n, \
            f"icon_list({n}) gave {len(items)} items, {len(set(items))} of them different, not {n}"
        counts = gi.samples_per_combo(n)
        for v, t, p, idx in items:
            assert 0 <= idx < counts[class_id(v, t, p)], \
                (f"icon_list({n}) has icon {idx} of ({VERBS[v]}, {TENSES[t]}, {PERSONS[p]}), "
                 f"which gets {counts[class_id(v, t, p)]} icons: numbered 0.."
                 f"{counts[class_id(v, t, p)] - 1}")


def icon_of(lab):
    """A label's verb, tense, person and icon index, read off its filename."""
    idx = int(lab["filename"].rsplit("_", 1)[1].removesuffix(".png"))
    return VERBS[lab["verb_id"]], TENSES[lab["tense_id"]], PERSONS[lab["person_id"]], idx


@pytest.fixture(scope="module")
def dataset():
    return gi.render_dataset(300, seed=0)


def test_render_dataset_draws_each_labelled_icon(dataset):
    images, labels = dataset
    assert images.shape == (300, 32, 32, 3) and images.dtype == np.uint8, \
        f"render_dataset(300) gave images {images.shape} {images.dtype}, not (300, 32, 32, 3) uint8"
    assert len(labels) == 300 and len({lab["filename"] for lab in labels}) == 300, \
        "render_dataset(300) must give 300 labels, one per icon, each with its own filename"
    for i in (0, 17, 150, 299):
        assert labels[i] == gi.label(VERBS.index(icon_of(labels[i])[0]), labels[i]["tense_id"],
                                     labels[i]["person_id"], icon_of(labels[i])[3]), \
            f"labels[{i}] is not label(...) of the icon it names"
        assert np.array_equal(images[i], gi.render_icon(*icon_of(labels[i]), seed=0)), \
            f"images[{i}] is not render_icon of the icon labels[{i}] names (seed 0)"


def test_render_dataset_follows_its_seed(dataset):
    images, labels = dataset
    other, other_labels = gi.render_dataset(300, seed=1)
    assert other_labels == labels and not np.array_equal(images, other), \
        "another seed must draw other jitter for the same icons: pass seed to render_icon"


def test_write_dataset_saves_pngs_under_their_names_and_labels_json(dataset, tmp_path):
    images, labels = dataset
    gi.write_dataset(tmp_path, images[:6], labels[:6])
    for img, lab in zip(images[:6], labels[:6]):
        path = tmp_path / "icons" / lab["filename"]
        assert path.is_file(), f"no icons/{lab['filename']}: each icon goes to icons/<filename>"
        with Image.open(path) as png:
            assert png.format == "PNG" and np.array_equal(np.asarray(png.convert("RGB")), img), \
                f"icons/{lab['filename']} is not that icon's pixels as a PNG (lossless)"
    written = json.loads((tmp_path / "labels.json").read_text())
    assert isinstance(written, list) and sorted(written, key=str) == sorted(labels[:6], key=str), \
        "labels.json must hold the labels as a JSON list, one entry an icon"


def shown(fig):
    """The (image, title) of every Axes of fig that shows an image."""
    return [(ax.get_images()[0].get_array(), ax.get_title()) for ax in fig.axes
            if ax.get_images()]


def test_the_sample_grid_shows_20_random_icons_with_their_labels(dataset):
    images, labels = dataset
    panels = shown(gi.sample_grid(images, labels, seed=0))
    assert len(panels) == 20, f"the sample grid shows {len(panels)} icons, not 20"
    picked = []
    for img, title in panels:
        same = [i for i in range(len(images)) if np.array_equal(np.asarray(img), images[i])]
        assert same, "a panel of the sample grid is not one of the icons"
        verb, tense, person, _ = icon_of(labels[same[0]])
        assert all(w in title for w in (verb, tense, person)), \
            f"the panel of {verb} · {tense} · {person} is titled {title!r}: name all three"
        picked.append(same[0])
    others = [np.asarray(img).tobytes() for img, _ in shown(gi.sample_grid(images, labels, 1))]
    assert len(set(picked)) == 20 and others != [images[i].tobytes() for i in picked], \
        "the 20 icons must be 20 different ones, drawn at random with the seed"
