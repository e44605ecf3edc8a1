"""The dataset format that generate_icons.py writes and train.py and eval.py read.

    data/icons/<filename>.png   32×32 RGB icons
    data/labels.json            [{filename, verb_id, tense_id, person_id, class_id}, ...]
    data/splits.json            {split: {"train": [filename, ...], "val": [...], "test": [...]}}

The splits travel on disk, so the icons a model was tested on are the icons that training held
out, whatever the code of the day would compute. `load_dataset` reads and validates all three;
the dataset's fingerprint hashes the decoded pixels, the labels and the splits.
"""

import hashlib
import json
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from minimodel.files import LabError, read_json, recover
from minimodel.grammar.verbs import PERSONS, TENSES, VERBS, class_id

SIZE = 32  # icons are SIZE × SIZE RGB
SPLITS = ("stratified", "combos")  # stratified over icons; combos holds whole verb forms out
PARTS = ("train", "val", "test")
MAX_JSON_BYTES = 64 * 1024 * 1024  # labels.json of 1000 icons is 130 KB
REGEN = "Run `uv run python generate_icons.py` to regenerate the dataset"


def fingerprint(images, labels, splits):
    """SHA-256 over the decoded pixels, the labels and the splits (PNG bytes vary with zlib)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    h.update(json.dumps(labels, sort_keys=True).encode())
    h.update(json.dumps(splits, sort_keys=True).encode())
    return h.hexdigest()


LABEL_FIELDS = ("filename", "verb_id", "tense_id", "person_id", "class_id")
MAX_PNG_BYTES = 64 * 1024  # a 32×32 RGB PNG is ~3 KB; anything far larger is not one of ours


@dataclass
class Dataset:
    images: np.ndarray  # (N, 32, 32, 3) uint8
    labels: list  # the entries of labels.json
    splits: dict  # splits.json: {split: {part: [filename, ...]}}
    fingerprint: str

    def ids(self, key):
        """One label column as an int array, e.g. ids('tense_id') -> (N,)."""
        return np.array([lab[key] for lab in self.labels], dtype=np.int64)

    def split(self, name):
        """{"train", "val", "test"} -> sorted index arrays into labels, for split `name`."""
        index = {lab["filename"]: i for i, lab in enumerate(self.labels)}
        return {part: np.array(sorted(index[f] for f in names), dtype=np.int64)
                for part, names in self.splits[name].items()}


def _bad(path, problems, fix):
    """One line naming the file, the first few problems and a count of the rest."""
    shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3
                                        else "")
    return LabError(f"{path}: {shown}. {fix}")


def check_inside(path, folder):
    """Refuse a link that leads out of its folder: a data folder is read, never followed."""
    try:
        leaves = path.resolve().parent != Path(folder).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        leaves = True
    if leaves:
        raise LabError(f"{path}: a link that leads out of {folder} (or in a loop); "
                       f"{REGEN[0].lower()}{REGEN[1:]}")


def read_labels(data):
    """Read and validate data/labels.json -> list of label dicts."""
    path = Path(data) / "labels.json"
    if not Path(data).is_dir():
        raise LabError(f"{data}: no such data folder. {REGEN}")
    if not (path.exists() or path.is_symlink()):
        raise LabError(f"{path}: missing. {REGEN}")
    check_inside(path, data)
    labels = read_json(path, MAX_JSON_BYTES, REGEN)
    if not isinstance(labels, list) or not labels:
        raise LabError(f"{path}: expected a non-empty list of labels. {REGEN}")
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
        raise _bad(path, problems, REGEN)
    return labels


def read_splits(data, labels):
    """Read and validate data/splits.json: every split has the three parts, each a list of
    filenames of labels.json, no icon in two parts."""
    path = Path(data) / "splits.json"
    if not (path.exists() or path.is_symlink()):
        raise LabError(f"{path}: missing. {REGEN}")
    check_inside(path, data)
    splits = read_json(path, MAX_JSON_BYTES, REGEN)
    if not isinstance(splits, dict) or set(splits) != set(SPLITS):
        raise LabError(f"{path}: expected an object with the splits {', '.join(SPLITS)}. {REGEN}")
    known = {lab["filename"] for lab in labels}
    for name, parts in splits.items():
        if not isinstance(parts, dict) or set(parts) != set(PARTS) or not all(
                isinstance(v, list) and v and all(isinstance(f, str) for f in v)
                for v in parts.values()):
            raise LabError(f"{path}: split {name} must have non-empty lists of filenames "
                           f"{', '.join(PARTS)}. {REGEN}")
        names = [f for part in PARTS for f in parts[part]]
        unknown = [f for f in names if f not in known]
        if unknown:
            raise _bad(path, [f"split {name} names {f!r}, which labels.json does not list"
                              for f in unknown], REGEN)
        if len(set(names)) != len(names):
            raise LabError(f"{path}: split {name} puts an icon in two parts. {REGEN}")
    return splits


def data_folder(given, default):
    """The --data folder: `default` (the lab's own data/) when none is given, else `given`,
    which must exist; a typo is named as one, with the default, and not blamed on the dataset."""
    if given is None:
        return Path(default)
    if not Path(given).is_dir():
        raise LabError(f"{given}: no such folder; leave out --data for the lab's own "
                       f"({default}), or give a folder made by `generate_icons.py --out`")
    return Path(given)


def load_dataset(data="data"):
    """Read data/labels.json, splits.json and every icon, validating all three -> Dataset.
    (A commit of generate_icons.py that a crash interrupted is finished first.)"""
    if Path(data).is_dir():
        recover(data)
    labels = read_labels(data)
    splits = read_splits(data, labels)
    icons = Path(data) / "icons"
    if not icons.is_dir():
        raise LabError(f"{icons}: missing. {REGEN}")
    inside = icons.resolve()
    images = np.empty((len(labels), SIZE, SIZE, 3), np.uint8)
    problems = []
    for i, lab in enumerate(labels):
        path = icons / lab["filename"]
        try:
            if path.resolve().parent != inside:  # a link out of icons/: never opened
                raise ValueError("resolves outside icons/")
            if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block the read
                raise ValueError("not a regular file")
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
        except (OSError, ValueError, SyntaxError, RuntimeError, Image.DecompressionBombError) \
                as e:  # RuntimeError: a symlink loop
            problems.append(f"{lab['filename']} is unreadable ({e})")
    if problems:
        raise _bad(icons, problems, "Run `uv run python generate_icons.py` to regenerate them")
    return Dataset(images, labels, splits, fingerprint(images, labels, splits))


