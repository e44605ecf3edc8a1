"""Render the grammar icons: colour is the tense, shape the person, the inner pattern the verb.

    uv run python generate_icons.py    # data/icons/*.png, labels.json, icons_sample.png

Every icon is drawn in NumPy from its own seeded generator (4×4 supersampled, then averaged), so
its pixels depend only on (seed, verb, tense, person, idx); Pillow writes and reads the PNGs.
This file also owns the data format for the other scripts: `load_dataset` reads and validates
what `generate` wrote, and `split` is the one train/test split that train.py and eval.py share.
"""

import argparse
import hashlib
import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from minimodel.files import (
    LabError,
    check_writable,
    interrupts_deferred,
    pyplot,
    run_cli,
    save_figure,
    update_manifest,
    write_json,
)
from minimodel.grammar.verbs import PERSONS, TENSES, VERBS

SIZE = 32  # icons are SIZE × SIZE RGB
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


def class_id(verb_id, tense_id, person_id):
    """The 300-class label: verb-major, then tense, then person."""
    return (verb_id * len(TENSES) + tense_id) * len(PERSONS) + person_id


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


def icon_list(n):
    """(verb_id, tense_id, person_id, idx) of every icon, ordered by class_id, then idx."""
    counts = samples_per_combo(n)
    return [(v, t, p, idx)
            for v in range(len(VERBS)) for t in range(len(TENSES)) for p in range(len(PERSONS))
            for idx in range(counts[class_id(v, t, p)])]


def label(v, t, p, idx):
    """The labels.json entry of one icon."""
    return {"filename": filename(VERBS[v], TENSES[t], PERSONS[p], idx), "verb_id": v,
            "tense_id": t, "person_id": p, "class_id": class_id(v, t, p)}


def render_dataset(n=1000, seed=0):
    """-> images (n, 32, 32, 3) uint8 and the labels.json list, in the same order."""
    items = icon_list(n)
    labels = [label(*item) for item in items]
    images = np.stack([render_icon(VERBS[v], TENSES[t], PERSONS[p], idx, seed=seed)
                       for v, t, p, idx in items])
    return images, labels


def fingerprint(images, labels):
    """SHA-256 over the decoded pixels and the labels; PNG bytes vary with the zlib build."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    h.update(json.dumps(labels, sort_keys=True).encode())
    return h.hexdigest()


def generate(out, n=1000, seed=0, manifest=None):
    """Render the dataset into out/: icons/, labels.json, icons_sample.png, and record its
    fingerprint in `manifest` (a path) if given. Returns the fingerprint.

    The icons are written to a staging folder first, then swapped in with the labels, so
    out/icons/ holds exactly the new dataset (no stale icons). An interrupt or a crash while
    rendering leaves the old dataset intact; one during the swap waits for it to finish.
    """
    out = Path(out)
    images, labels = render_dataset(n, seed)
    fp = fingerprint(images, labels)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".icons-new-", dir=out))
    old = stage.with_name(stage.name.replace("-new-", "-old-"))
    try:
        for img, lab in zip(images, labels):
            Image.fromarray(img).save(stage / lab["filename"])
        with interrupts_deferred():  # icons, labels and manifest change together
            replacing = (out / "icons").exists()
            if replacing:
                (out / "icons").rename(old)
            stage.rename(out / "icons")
            if replacing:
                shutil.rmtree(old)  # only once the new icons are in place
            write_json(out / "labels.json", labels)
            save_sample_grid(images, labels, out / "icons_sample.png", seed)
            if manifest is not None:
                update_manifest(manifest, {"n_icons": n, "seed": seed, "fingerprint": fp},
                                "dataset")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return fp


def save_sample_grid(images, labels, path, seed, n=20):
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
    save_figure(fig, path, dpi=80)


# ---------------------------------------------------------------------------- reading it back

LABEL_FIELDS = ("filename", "verb_id", "tense_id", "person_id", "class_id")
MAX_PNG_BYTES = 64 * 1024  # a 32×32 RGB PNG is ~3 KB; anything far larger is not one of ours


@dataclass
class Dataset:
    images: np.ndarray  # (N, 32, 32, 3) uint8
    labels: list  # the entries of labels.json
    fingerprint: str

    def ids(self, key):
        """One label column as an int array, e.g. ids('tense_id') -> (N,)."""
        return np.array([lab[key] for lab in self.labels], dtype=np.int64)


def _bad(path, problems, fix):
    """One line naming the file, the first few problems and a count of the rest."""
    shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3
                                        else "")
    return LabError(f"{path}: {shown}. {fix}")


def read_labels(data):
    """Read and validate data/labels.json -> list of label dicts."""
    path = Path(data) / "labels.json"
    regen = "Run `uv run python generate_icons.py` to regenerate the dataset"
    if not Path(data).is_dir():
        raise LabError(f"{data}: no such data folder. {regen}")
    if not path.is_file():
        raise LabError(f"{path}: missing. {regen}")
    try:
        labels = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LabError(f"{path}: not valid JSON ({e}). {regen}") from None
    if not isinstance(labels, list) or not labels:
        raise LabError(f"{path}: expected a non-empty list of labels. {regen}")
    problems, seen = [], set()
    limits = {"verb_id": len(VERBS), "tense_id": len(TENSES), "person_id": len(PERSONS),
              "class_id": len(VERBS) * len(TENSES) * len(PERSONS)}
    for i, lab in enumerate(labels):
        if not isinstance(lab, dict) or set(lab) != set(LABEL_FIELDS):
            problems.append(f"entry {i} must have exactly the fields {', '.join(LABEL_FIELDS)}")
            continue
        name = lab["filename"]
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", "..") \
                or "\\" in name or "\0" in name or not name.endswith(".png"):
            problems.append(f"entry {i}: filename {name!r} must be a plain .png name inside "
                            f"icons/")
            continue
        if name in seen:
            problems.append(f"entry {i}: duplicate filename {name}")
        seen.add(name)
        for key, limit in limits.items():
            if type(lab[key]) is not int or not 0 <= lab[key] < limit:
                problems.append(f"entry {i} ({name}): {key}={lab[key]!r} must be an int in "
                                f"[0, {limit})")
                break
        else:
            if lab["class_id"] != class_id(lab["verb_id"], lab["tense_id"], lab["person_id"]):
                problems.append(f"entry {i} ({name}): class_id={lab['class_id']} does not match "
                                f"its ids (expected "
                                f"{class_id(lab['verb_id'], lab['tense_id'], lab['person_id'])})")
    if problems:
        raise _bad(path, problems, regen)
    return labels


def load_dataset(data="data"):
    """Read data/labels.json and every icon it lists, validating both -> Dataset."""
    labels = read_labels(data)
    icons = Path(data) / "icons"
    if not icons.is_dir():
        raise LabError(f"{icons}: missing. Run `uv run python generate_icons.py` to regenerate "
                       f"the dataset")
    inside = icons.resolve()
    images = np.empty((len(labels), SIZE, SIZE, 3), np.uint8)
    problems = []
    for i, lab in enumerate(labels):
        path = icons / lab["filename"]
        try:
            if path.resolve().parent != inside:  # a link out of icons/: never opened
                raise ValueError("resolves outside icons/")
            if path.stat().st_size > MAX_PNG_BYTES:
                raise ValueError(f"{path.stat().st_size} bytes, too large for a {SIZE}×{SIZE} "
                                 f"icon")
            with Image.open(path, formats=["PNG"]) as im:
                if im.size != (SIZE, SIZE) or im.mode != "RGB":
                    raise ValueError(f"{im.mode} {im.size[0]}×{im.size[1]}, expected RGB "
                                     f"{SIZE}×{SIZE}")
                images[i] = np.asarray(im)
        except FileNotFoundError:
            problems.append(f"{lab['filename']} is missing")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            problems.append(f"{lab['filename']} is unreadable ({e})")
    if problems:
        raise _bad(icons, problems, "Run `uv run python generate_icons.py` to regenerate them")
    return Dataset(images, labels, fingerprint(images, labels))


def split(labels, seed=0, test_fraction=0.2):
    """The train/test split: (train_idx, test_idx), each a sorted int array into `labels`.

    Stratified by tense and by combination: each tense gives the same number of test icons; a
    combination gives at most one, and those with the most samples give first (a seeded
    choice among equals). For the default 1000 icons: 800/200, 40 test icons per tense, and
    every combination keeps at least 2 training icons; 100 combinations have no test icon.
    """
    rng = np.random.default_rng(seed)
    by_combo = {}
    for i, lab in enumerate(labels):
        by_combo.setdefault(lab["class_id"], []).append(i)
    n_test = round(len(labels) * test_fraction)
    test = []
    for t in range(len(TENSES)):
        quota = n_test // len(TENSES) + (t < n_test % len(TENSES))
        combos = [c for c, idx in by_combo.items() if labels[idx[0]]["tense_id"] == t]
        key = rng.random(len(combos))  # the seeded tie-break
        order = sorted(range(len(combos)), key=lambda j: (-len(by_combo[combos[j]]), key[j]))
        for j in order[:quota]:
            members = by_combo[combos[j]]
            test.append(members[rng.integers(len(members))])
    test = np.array(sorted(test), dtype=np.int64)
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, test


def combo_split(labels, seed=0):
    """Unseen verb forms: (train_idx, test_idx), the test set being every icon of 60 of the
    300 combinations (20%), none of which is ever seen in training.

    A balanced design, shuffled by the seed: each verb loses 3 of its 15 combinations, each
    tense 12 of its 60 and each person 20 of its 100, so every verb, tense and person is still
    trained on and only their combination is new.
    """
    rng = np.random.default_rng(seed)
    verbs, tenses, persons = (rng.permutation(len(f)) for f in (VERBS, TENSES, PERSONS))
    held_out = {class_id(verbs[v], tenses[(3 * v + j) % 5], persons[(v + j) % 3])
                for v in range(len(VERBS)) for j in range(3)}
    test = np.array([i for i, lab in enumerate(labels) if lab["class_id"] in held_out])
    return np.setdiff1d(np.arange(len(labels)), test), test


SPLITS = {"stratified": split, "combos": combo_split}  # --split of train.py and eval.py


# ---------------------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Render the grammar icons (colour = tense, shape = person, pattern = verb).")
    ap.add_argument("--out", default="data", help="output folder (default: data)")
    ap.add_argument("--seed", type=int, default=0, help="jitter seed (default: 0)")
    ap.add_argument("--n", type=int, default=1000, help="number of icons, ≥ 300 (default: 1000)")
    ap.add_argument("--manifest", default="manifest.json",
                    help="where to record the dataset fingerprint (default: manifest.json)")
    args = ap.parse_args(argv)
    if args.n < 300:
        ap.error(f"--n must be at least 300 (one icon per combination), got {args.n}")
    for folder in (args.out, Path(args.manifest).parent):
        try:
            check_writable(folder)
        except LabError as e:
            ap.error(str(e))
    fp = generate(args.out, args.n, args.seed, manifest=args.manifest)
    print(f"wrote {args.n} icons to {Path(args.out) / 'icons'}, labels.json and icons_sample.png")
    print(f"dataset fingerprint (sha256 of pixels + labels): {fp}")


if __name__ == "__main__":
    run_cli(main)
