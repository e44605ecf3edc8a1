"""Files and the command line: atomic writes, and how a script ends on a user's mistake.

Every script writes through `atomic_write` (a temporary file beside the target, then a rename)
and runs under `run_cli`, so a mistake or an interrupt ends it with one line on stderr and a
non-zero status, never a traceback, and never with a half-written file on disk.
"""

import json
import os
import signal
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path


class LabError(ValueError):
    """A mistake in the user's input: reported as one line, exit status 2."""


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


def pyplot():
    """matplotlib's pyplot, drawing off-screen: the scripts save figures, they never show them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi=100):
    """Lay a figure out, write it as a PNG through atomic_write, and free it."""
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
    pyplot().close(fig)


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


def check_writable(folder):
    """Make `folder` if needed and prove a file can be created in it, before any long work."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise LabError(f"{folder}: cannot write there ({e.strerror or e})") from None


@contextmanager
def interrupts_deferred():
    """Hold Ctrl-C and SIGTERM until the block ends, so a group of files is written whole:
    a run stopped while it saves still saves everything, then stops."""
    received = []
    handlers = {s: signal.signal(s, lambda n, _frame: received.append(n))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
        if received:
            raise KeyboardInterrupt("saved")


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt


def run_cli(main, argv=None):
    """Run a script's main(argv) as a user should see it: a LabError, an OS error or an
    interrupt (Ctrl-C, or SIGTERM, treated alike) ends it with one line on stderr."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        main(argv)
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as e:
        print("interrupted after this run's files were saved" if e.args else
              "interrupted: files from before this run are as they were", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as e:  # the disk, not the user: still one line, not a traceback
        print(f"error: {e.filename or ''}{': ' if e.filename else ''}{e.strerror or e}",
              file=sys.stderr)
        sys.exit(1)
