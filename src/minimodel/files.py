"""Writing files so that a crash never leaves half of one, and the error type for user mistakes."""

import json
import os
from pathlib import Path


class LabError(ValueError):
    """A mistake in the user's input: the scripts print it as one line and exit with status 2."""


def atomic_write(path, write):
    """Call write(f) on a temporary file beside `path`, then move it into place.

    Readers see either the old file or the new one, never a partial write.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path, obj):
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))


def update_manifest(path, value, *keys):
    """Set manifest[keys[0]][keys[1]]... = value in a JSON file, keeping every other entry."""
    path = Path(path)
    manifest = {}
    if path.exists():
        try:
            manifest = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise LabError(f"{path}: not valid JSON ({e}); fix or delete it") from None
    node = manifest
    for key in keys[:-1]:
        if not isinstance(node, dict):
            break
        node = node.setdefault(key, {})
    if not isinstance(node, dict):
        raise LabError(f"{path}: expected JSON objects along {'.'.join(keys[:-1])}; "
                       f"fix or delete it")
    node[keys[-1]] = value
    write_json(path, manifest)
