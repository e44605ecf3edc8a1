"""Render the grammar icons: colour is the tense, shape the person, the inner pattern the verb.

    uv run python generate_icons.py    # data/icons/*.png, labels.json, icons_sample.png
    uv run python generate_icons.py --out fresh --seed 1    # 1000 other icons, for scoring

data/ holds the lab's committed icons: only the first command writes there (other icons need
--out, outside the lab's top level, data/ and results/).

Every icon is drawn in NumPy from its own seeded generator (4×4 supersampled, then averaged), so
its pixels depend only on (seed, verb, tense, person, idx); Pillow writes the PNGs. The
train/validation/test splits are drawn here too and written beside the labels (splits.json), so
train.py and eval.py read the same icons off the disk; src/minimodel/data.py reads it all back.
"""

try:  # the lab's packages live in the environment uv makes; without it, say so in one line
    from minimodel.start import quiet_start
except ModuleNotFoundError as missing:
    raise SystemExit(f"error: {missing.name} is not installed for this Python; run the lab "
                     f"through uv: `uv run python generate_icons.py`") from None
quiet_start(__name__)  # Ctrl-C from here on: one line, even while NumPy loads

import argparse
import json
import math
import re
from pathlib import Path

import numpy as np
from PIL import Image

from minimodel.data import MAX_JSON_BYTES, PARTS, SIZE, fingerprint
from minimodel.files import (
    LabError,
    Outputs,
    check_only_own,
    check_writable,
    committed,
    figure_writer,
    from_here,
    pyplot,
    read_file,
    read_manifest,
    run_cli,
)
from minimodel.grammar.verbs import PERSONS, TENSES, VERBS, class_id

LAB = Path(__file__).resolve().parent
DATA = LAB / "data"
MAX_ICONS = 100_000  # 300 MB of pixels in memory while rendering
FRESH_SEED = 1  # the seed of the fresh icons, which no run trains on (training icons use 0)
SS = 4  # supersampling: each pixel averages SS × SS samples
RADIUS = 11.0  # half the width of a shape, in pixels
BACKGROUND = (30, 30, 36)
INK = (245, 245, 245)  # the verb's pattern

TENSE_COLOR = {
    "infinitive": (128, 128, 128),  # gray
    "present_simple": (50, 100, 200),  # blue
    "past_simple": (200, 50, 50),  # red
    "past_participle": (50, 200, 100),  # green
    "future": (160, 80, 200),  # purple
}
PERSON_SHAPE = {"1sg": "circle", "2sg": "square", "3sg": "triangle"}
VERB_PATTERN = {
    "work": "stripes_horizontal", "play": "stripes_vertical",
    "go": "stripes_diagonal", "see": "stripes_antidiagonal",
    "eat": "wide_stripes_horizontal", "write": "wide_stripes_vertical",
    "read": "grid", "run": "diagonal_grid",
    "speak": "dots", "take": "big_dots",
    "give": "small_checks", "make": "large_checks",
    "come": "rings", "know": "waves_horizontal",
    "think": "waves_vertical", "drink": "plus",
    "sleep": "x_cross", "swim": "center_dot",
    "sing": "spokes", "buy": "plain",
}  # fmt: skip
assert list(TENSE_COLOR) == list(TENSES) and list(PERSON_SHAPE) == list(PERSONS)
assert list(VERB_PATTERN) == list(VERBS) and len(set(VERB_PATTERN.values())) == len(VERBS)


# ---------------------------------------------------------------------------- drawing


def stripes(t, period, width):
    return np.mod(t, period) < width


def pattern_mask(name, u, v):
    """Where the pattern puts ink, in the shape's own coordinates u (right), v (down), pixels."""
    d1, d2 = (u + v) / math.sqrt(2), (u - v) / math.sqrt(2)  # the two diagonals
    r = np.hypot(u, v)

    def dots(period, radius):
        du, dv = np.mod(u, period) - period / 2, np.mod(v, period) - period / 2
        return du * du + dv * dv < radius * radius

    masks = {
        "stripes_horizontal": lambda: stripes(v, 4, 2),
        "stripes_vertical": lambda: stripes(u, 4, 2),
        "stripes_diagonal": lambda: stripes(d1, 4, 2),
        "stripes_antidiagonal": lambda: stripes(d2, 4, 2),
        "wide_stripes_horizontal": lambda: stripes(v, 8, 4),
        "wide_stripes_vertical": lambda: stripes(u, 8, 4),
        "grid": lambda: stripes(u, 5, 1.5) | stripes(v, 5, 1.5),
        "diagonal_grid": lambda: stripes(d1, 5, 1.5) | stripes(d2, 5, 1.5),
        "dots": lambda: dots(5, 1.3),
        "big_dots": lambda: dots(8, 2.6),
        "small_checks": lambda: (np.floor(u / 3) + np.floor(v / 3)) % 2 == 0,
        "large_checks": lambda: (np.floor(u / 6) + np.floor(v / 6)) % 2 == 0,
        "rings": lambda: stripes(r, 4, 2),
        "waves_horizontal": lambda: stripes(v + 1.5 * np.sin(2 * np.pi * u / 8), 5, 2),
        "waves_vertical": lambda: stripes(u + 1.5 * np.sin(2 * np.pi * v / 8), 5, 2),
        "plus": lambda: (np.abs(u) < 1.6) | (np.abs(v) < 1.6),
        "x_cross": lambda: (np.abs(d1) < 1.6) | (np.abs(d2) < 1.6),
        "center_dot": lambda: r < 4.5,
        "spokes": lambda: np.floor(np.arctan2(v, u) / (np.pi / 4)) % 2 == 0,
        "plain": lambda: np.zeros_like(u, dtype=bool),
    }
    return masks[name]()


def shape_mask(name, u, v):
    # BEGIN BLOCK B: True inside the person's shape (u, v: from the centre)
    if name == "circle":
        return u * u + v * v <= RADIUS**2
    if name == "square":
        return (np.abs(u) <= 0.85 * RADIUS) & (np.abs(v) <= 0.85 * RADIUS)
    # triangle pointing up, centred on its centroid: inside all three edges' half-planes
    R = 1.25 * RADIUS  # circumradius; its area is near the circle's and the square's
    inside = np.ones_like(u, dtype=bool)
    for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3):
        inside &= u * math.cos(a) - v * math.sin(a) >= -R / 2  # distance to an edge is R/2
    return inside
    # END BLOCK B


def render_masks(verb, tense, person, idx, jitter=True, seed=0):
    """Coverage of the shape and of the ink, each (SIZE, SIZE) in [0, 1], and the icon's rng."""
    rng = np.random.default_rng(
        [seed, VERBS.index(verb), TENSES.index(tense), PERSONS.index(person), idx])
    if jitter:
        dx, dy = rng.uniform(-2.0, 2.0, 2)  # pixels
        angle = math.radians(rng.uniform(-12.0, 12.0))
        scale = rng.uniform(0.9, 1.05)
    else:
        dx, dy, angle, scale = 0.0, 0.0, 0.0, 1.0
    c = (np.arange(SIZE * SS) + 0.5) / SS  # sample centres, in pixels
    y, x = np.meshgrid(c, c, indexing="ij")  # (SIZE·SS, SIZE·SS)
    x, y = x - SIZE / 2 - dx, y - SIZE / 2 - dy
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = (cos * x + sin * y) / scale, (-sin * x + cos * y) / scale  # rotate into the shape
    shape = shape_mask(PERSON_SHAPE[person], u, v)
    ink = shape & pattern_mask(VERB_PATTERN[verb], u, v)

    def coverage(m):  # (SIZE·SS, SIZE·SS) -> (SIZE, SS, SIZE, SS) -> mean over the samples
        return m.reshape(SIZE, SS, SIZE, SS).mean(axis=(1, 3))

    return coverage(shape), coverage(ink), rng


def render_icon(verb, tense, person, idx, jitter=True, seed=0):
    """One icon, a (32, 32, 3) uint8 array. jitter=False gives the canonical prototype."""
    # BEGIN BLOCK B: background, shape in the tense's colour, the verb's ink; jitter
    shape, ink, rng = render_masks(verb, tense, person, idx, jitter, seed)
    color = np.array(TENSE_COLOR[tense], dtype=float)
    if jitter:
        color += rng.uniform(-10, 10, 3)  # this icon's shade of the tense colour
    body = shape - ink  # coloured part of the shape
    img = ((1 - shape)[..., None] * BACKGROUND + body[..., None] * color
           + ink[..., None] * np.array(INK, dtype=float))  # (SIZE, SIZE, 3)
    if jitter:
        img += rng.normal(0, 3, img.shape)  # pixel noise
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
    # END BLOCK B


# ---------------------------------------------------------------------------- the dataset


def samples_per_combo(n):
    """How many icons each class_id gets: n // 300, plus one for the first n % 300 in a fixed
    order that puts (verb + tense + person) % 3 == 0 first (for n = 1000, exactly those 100,
    which spreads the extra icons evenly over tenses and verbs)."""
    n_combos = len(VERBS) * len(TENSES) * len(PERSONS)
    if n < n_combos:
        raise LabError(f"--n {n} is too small: every one of the {n_combos} combinations needs "
                       f"an icon")
    combos = [(v, t, p) for v in range(len(VERBS)) for t in range(len(TENSES))
              for p in range(len(PERSONS))]
    order = sorted(combos, key=lambda c: ((c[0] + c[1] + c[2]) % 3 != 0, class_id(*c)))
    counts = {class_id(*c): n // n_combos for c in combos}
    for c in order[: n % n_combos]:
        counts[class_id(*c)] += 1
    return counts


def filename(verb, tense, person, idx):
    return f"verb_{verb}_tense_{tense}_person_{person}_{idx}.png"


ICON_NAME = re.compile(f"verb_({'|'.join(VERBS)})_tense_({'|'.join(TENSES)})_person_"
                       f"({'|'.join(PERSONS)})_[0-9]+\\.png")


def is_icon(name):
    """Whether `name` is a file this script writes into icons/ (the only ones it replaces)."""
    return ICON_NAME.fullmatch(name) is not None


def icon_list(n):
    """(verb_id, tense_id, person_id, idx) of every icon, ordered by class_id, then idx: for
    each combination, samples_per_combo(n)[its class_id] icons."""
    # BEGIN BLOCK B: loop over verbs, tenses, persons and each combination's icon indices
    counts = samples_per_combo(n)
    return [(v, t, p, idx)
            for v in range(len(VERBS)) for t in range(len(TENSES)) for p in range(len(PERSONS))
            for idx in range(counts[class_id(v, t, p)])]
    # END BLOCK B


def label(v, t, p, idx):
    """The labels.json entry of one icon."""
    # BEGIN BLOCK B: {filename, verb_id, tense_id, person_id, class_id}
    return {"filename": filename(VERBS[v], TENSES[t], PERSONS[p], idx), "verb_id": v,
            "tense_id": t, "person_id": p, "class_id": class_id(v, t, p)}
    # END BLOCK B


def render_dataset(n=1000, seed=0):
    """-> images (n, 32, 32, 3) uint8 and the labels.json list, in the same order."""
    # BEGIN BLOCK B: render_icon (with seed) and label for each icon of icon_list
    items = icon_list(n)
    labels = [label(*item) for item in items]
    images = np.stack([render_icon(VERBS[v], TENSES[t], PERSONS[p], idx, seed=seed)
                       for v, t, p, idx in items])
    return images, labels
    # END BLOCK B


def write_dataset(folder, images, labels):
    """Save each image as a PNG under its label's filename in folder/icons/, and the labels as
    folder/labels.json (a JSON list, an entry an icon)."""
    # BEGIN BLOCK B: icons/ with one PNG an icon (Pillow), then labels.json
    (Path(folder) / "icons").mkdir(parents=True, exist_ok=True)
    for img, lab in zip(images, labels):
        Image.fromarray(img).save(Path(folder) / "icons" / lab["filename"])
    (Path(folder) / "labels.json").write_text(json.dumps(labels, indent=2) + "\n")
    # END BLOCK B


def generate(out, n=1000, seed=0, manifest=None):
    """Render the dataset into out/: icons/, labels.json, splits.json, icons_sample.png, and
    record its fingerprint in `manifest` (a path) if given. Returns the fingerprint.

    Everything is staged first (the icons in a folder beside icons/), and then put in place at
    one commit point, so out/icons/ holds exactly the new dataset (no stale icons), and an
    error, an interrupt or a crash leaves the old dataset, labels and manifest entry as they
    were (or, after a crash during the commit itself, finishes it the next time).
    """
    out = Path(out)
    check_only_own(out / "icons", is_icon)  # files we would delete stop us now, not after
    images, labels = render_dataset(n, seed)
    splits = draw_splits(labels)
    fp = fingerprint(images, labels, splits)
    out.mkdir(parents=True, exist_ok=True)
    sample = figure_writer(sample_grid(images, labels, seed), dpi=80)
    with Outputs(out) as outputs:
        if manifest is not None:  # first: a manifest we cannot add to stops the run here
            outputs.manifest(manifest, {"n_icons": n, "seed": seed, "fingerprint": fp},
                             "dataset")
        stage = outputs.stage(out / "icons")  # a new folder beside icons/, for write_dataset
        stage.mkdir()
        write_dataset(stage, images, labels)
        outputs.folder_swap(stage / "icons", out / "icons", is_icon)
        written = read_file(stage / "labels.json", MAX_JSON_BYTES)
        outputs.file(out / "labels.json", lambda f: f.write(written))
        text = (json.dumps(splits, indent=2) + "\n").encode()
        outputs.file(out / "splits.json", lambda f: f.write(text))
        outputs.file(out / "icons_sample.png", sample)
    return fp


def sample_grid(images, labels, seed, n=20):
    """A matplotlib Figure (generate() saves it) of n icons drawn at random (with `seed`), each
    titled with its verb (and pattern), tense and person: what to look at before training."""
    # BEGIN BLOCK B: n random icons in a grid, each titled with its labels
    plt = pyplot()
    pick = np.random.default_rng(seed).choice(len(labels), n, replace=False)
    fig, axes = plt.subplots(4, 5, figsize=(10, 9.2))
    for ax, i in zip(axes.flat, pick):
        lab = labels[i]
        ax.imshow(images[i], interpolation="nearest")
        ax.set_title(f"{VERBS[lab['verb_id']]} ({VERB_PATTERN[VERBS[lab['verb_id']]]})\n"
                     f"{TENSES[lab['tense_id']]} · {PERSONS[lab['person_id']]}", fontsize=8.5)
        ax.axis("off")
    fig.suptitle("20 random grammar icons: colour = tense, shape = person, pattern = verb")
    return fig
    # END BLOCK B


def one_per_combination(labels, pool, n, rng):
    """n icons from `pool` (indices into labels): the same number from each tense, at most one
    from a combination, the combinations with the most icons in the pool first (a seeded choice
    among equals)."""
    # BEGIN BLOCK D: a quota per tense, at most one icon per combination, fullest first
    by_combo = {}
    for i in pool:
        by_combo.setdefault(labels[i]["class_id"], []).append(i)
    taken = []
    for t in range(len(TENSES)):
        quota = n // len(TENSES) + (t < n % len(TENSES))
        combos = [c for c, idx in by_combo.items() if labels[idx[0]]["tense_id"] == t]
        key = rng.random(len(combos))  # the seeded tie-break
        order = sorted(range(len(combos)), key=lambda j: (-len(by_combo[combos[j]]), key[j]))
        for j in order[:quota]:
            members = by_combo[combos[j]]
            taken.append(members[rng.integers(len(members))])
    return taken
    # END BLOCK D


def stratified_split(labels, seed=0, test_fraction=0.2, val_fraction=0.1):
    """{"train", "val", "test"}: sorted index lists into `labels`, stratified by tense and by
    combination. The test icons are drawn first, then the validation icons from what is left,
    each tense giving the same number and a combination at most one to each.

    For the default 1000 icons: 700/100/200, 40 test and 20 validation icons per tense, and every
    combination keeps at least 2 training icons; 100 combinations have no test icon.
    """
    # BEGIN BLOCK D: test icons drawn first, then validation from the rest, stratified by tense
    rng = np.random.default_rng(seed)
    test = one_per_combination(labels, range(len(labels)), round(len(labels) * test_fraction),
                               rng)
    rest = sorted(set(range(len(labels))) - set(test))
    val = one_per_combination(labels, rest, round(len(labels) * val_fraction), rng)
    train = sorted(set(rest) - set(val))
    return {"train": train, "val": sorted(val), "test": sorted(test)}
    # END BLOCK D


def combo_split(labels, seed=0):
    """Unseen verb forms: every icon of 60 of the 300 combinations (20%) is a test icon, and of
    20 others a validation icon; neither is ever seen in training.

    A balanced design, shuffled by the seed: each verb loses 3 of its 15 combinations to the
    test set and 1 to validation, each tense 12 (and 4), each person 20 (and 6 or 7), so every
    verb, tense and person is still trained on and only their combination is new.
    """
    rng = np.random.default_rng(seed)
    verbs, tenses, persons = (rng.permutation(len(f)) for f in (VERBS, TENSES, PERSONS))

    def held_out(js):  # verb v's j-th held-out combination: tense 3v + j, person v + j
        return {class_id(verbs[v], tenses[(3 * v + j) % 5], persons[(v + j) % 3])
                for v in range(len(VERBS)) for j in js}

    test, val = held_out(range(3)), held_out([3])
    parts = {"train": [], "val": [], "test": []}
    for i, lab in enumerate(labels):
        c = lab["class_id"]
        parts["test" if c in test else "val" if c in val else "train"].append(i)
    return parts


SPLIT_RULES = {"stratified": stratified_split, "combos": combo_split}


def draw_splits(labels):
    """splits.json: {split: {"train" | "val" | "test": [filename, ...]}}."""
    splits = {name: rule(labels) for name, rule in SPLIT_RULES.items()}
    return {name: {part: [labels[i]["filename"] for i in parts[part]] for part in PARTS}
            for name, parts in splits.items()}


# ---------------------------------------------------------------------------- main


def check_places(out, manifest, seed, n):
    """The lab's committed files are written only by the commands that reproduce them: data/
    (and the dataset entry of the lab's manifest.json) by this script with its defaults, and
    nothing of this script's anywhere else in the top level, data/ or results/."""
    own = out.resolve() == DATA.resolve()
    if own and (seed, n) != (0, 1000):
        raise LabError(f"{from_here(out)}/ holds the lab's committed icons (seed 0, 1000 icons), "
                       f"which only the default command draws; write these elsewhere with --out "
                       f"(e.g. --out fresh)")
    for option, path, folder in (("--out", out, out), ("--manifest", manifest, manifest.parent)):
        lab = committed(folder, LAB)
        if lab and not (own and path.resolve() in (DATA.resolve(), LAB / "manifest.json")):
            raise LabError(f"{option} {from_here(path)}: in {lab}, which holds the lab's "
                           f"committed files; choose a folder of your own (e.g. --out fresh)")


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Render the grammar icons (colour = tense, shape = person, pattern = verb).")
    ap.add_argument("--out", default=str(DATA), help=f"output folder (default: {DATA})")
    ap.add_argument("--seed", type=int, default=0, help="jitter seed (default: 0)")
    ap.add_argument("--n", type=int, default=1000, help="number of icons, ≥ 300 (default: 1000)")
    ap.add_argument("--manifest", help="where to record the dataset fingerprint (default: the "
                    "lab's manifest.json for its own data/, else manifest.json in --out)")
    args = ap.parse_args(argv)
    if args.manifest is None:
        own = Path(args.out).resolve() == DATA
        args.manifest = LAB / "manifest.json" if own else Path(args.out) / "manifest.json"
    if not 300 <= args.n <= MAX_ICONS:
        ap.error(f"--n must be between 300 (one icon per combination) and {MAX_ICONS:,}, got "
                 f"{args.n}")
    if not 0 <= args.seed < 2**32:
        ap.error(f"--seed must be between 0 and 2**32 - 1, got {args.seed}")
    check_places(Path(args.out), Path(args.manifest), args.seed, args.n)
    for folder in (args.out, Path(args.manifest).parent):
        try:
            check_writable(folder)
        except LabError as e:
            ap.error(str(e))
    read_manifest(args.manifest)  # a bad one stops us now, not after the rendering
    fp = generate(args.out, args.n, args.seed, manifest=args.manifest)
    print(f"wrote {args.n} icons to {Path(args.out) / 'icons'}, labels.json, splits.json and "
          f"icons_sample.png")
    print(f"dataset fingerprint (sha256 of pixels, labels and splits): {fp}")


if __name__ == "__main__":
    run_cli(main)
