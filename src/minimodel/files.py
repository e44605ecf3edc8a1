"""Files and the command line: safe reads, all-or-nothing writes, and how a script ends on a
user's mistake.

Scripts read what a user hands them through `read_file`/`read_json` (regular files only, size
bounded, never blocking), write a run's outputs through `Outputs` (staged, then put in place at
one commit point) and run under `run_cli`, so a mistake or an interrupt ends them with one line
on stderr and a non-zero status, never a traceback, and never with outputs half replaced.
"""

import codecs
import hashlib
import io
import json
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from minimodel import start


class LabError(ValueError):
    """A mistake in the user's input: reported as one line, exit status 2."""


def printable(text):
    """`text` with control characters escaped (\\x1b, \\n, ...): safe to print to a terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def from_here(path):
    """`path` as typed from the current folder (relative; absolute on another Windows drive),
    printable: what a message tells the user to type."""
    try:
        return printable(os.path.relpath(path))
    except ValueError:  # Windows: no relative path between two drives
        return printable(Path(path).resolve())
    except OSError:  # the current folder was deleted meanwhile: there is no "here"
        return printable(os.path.abspath(path) if os.path.isabs(path) else path)


def as_typed(path, lab):
    """`path` as a manifest records it: relative to the lab's top level when inside it (what a
    reader types there, on any machine), else absolute."""
    path = Path(path).resolve()
    return path.relative_to(lab).as_posix() if path.is_relative_to(lab) and path != lab \
        else str(path)


# eval.py's figures beside a checkpoint (a test checks that these are the ones it writes; the
# last with --heads only): a training that replaces the run they scored removes them with it
EVAL_FIGURES = ("confusion_matrix.png", "mistakes.png", "cls_attention.png", "cls_heads.png")


def committed(path, lab):
    """Which of the lab's committed places `path` is: "the lab's top level" (the folder
    itself), "data/" or "results/" (it or anything inside); None anywhere else (runs/, a
    folder of the user's). Only the commands that reproduce them write there."""
    path, lab = Path(path).resolve(), Path(lab).resolve()
    if path == lab:
        return "the lab's top level"
    for name in ("data", "results"):
        if path.is_relative_to(lab / name):
            return f"{name}/"
    return None


def manifest_runs(path):
    """The "runs" of manifest file `path` ({} if there is none), checked to be an object."""
    runs = read_manifest(path).get("runs", {})
    if not isinstance(runs, dict):
        raise LabError(f"{printable(path)}: expected JSON objects along runs; fix or delete it")
    return runs


# ---------------------------------------------------------------------------- reading


def read_file(path, max_bytes):
    """The bytes of `path`, which must be a regular file of at most max_bytes (check_regular)."""
    check_regular(path, max_bytes)
    with open(path, "rb") as f:
        return f.read(max_bytes + 1)[:max_bytes]


def check_regular(path, max_bytes):
    """Refuse `path` unless it is a regular file of at most max_bytes: a FIFO, a device or a
    socket is refused by its kind before it is opened, so nothing ever blocks on one.
    FileNotFoundError passes through, for the caller to say what is missing."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop, on some Pythons
        raise LabError(f"{printable(path)}: cannot read it ({getattr(e, 'strerror', None) or e})") \
            from None
    if not stat.S_ISREG(info.st_mode):
        raise LabError(f"{printable(path)}: not a regular file (a folder, FIFO, device or socket); "
                       f"point to a file")
    if info.st_size > max_bytes:
        raise LabError(f"{printable(path)}: {info.st_size:,} bytes, more than the {max_bytes:,} "
                       f"such a file can take")


def read_json(path, max_bytes, fix):
    """Parse the JSON file `path` (see read_file); any way it can fail is one LabError, ending
    with `fix`. Nesting too deep for Python's parser is refused, not a crash."""
    try:
        return json.loads(read_file(path, max_bytes))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError) else e
        raise LabError(f"{printable(path)}: not valid JSON ({reason}). {fix}") from None


# ---------------------------------------------------------------------------- writing


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


# what computes a run's numbers: the model, its layers, the loss, optimisers, training loop,
# data and tasks (plots and file handling are left out)
TRAINING_CODE = ("train.py", "vit.py", "src/minimodel/transformer/*.py",
                 "src/minimodel/parallel.py", "src/minimodel/data.py",
                 "src/minimodel/grammar/*.py")


def training_code(lab):
    """SHA-256 (first 16 hex digits) over the files of TRAINING_CODE under the lab folder: two
    runs with the same fingerprint and recipe were trained by the same code."""
    h = hashlib.sha256()
    for path in sorted(p for pattern in TRAINING_CODE for p in Path(lab).glob(pattern)):
        h.update(path.relative_to(lab).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def same_code(lab):
    """The training-code fingerprints whose runs this code repeats weight for weight: its own,
    and those that results/same_code.json records as checked against it, link by link
    (`sweep.py --same-as REV` trains short runs at both commits and compares every array)."""
    code, path = training_code(lab), Path(lab) / "results" / "same_code.json"
    known = read_json(path, MANIFEST_BYTES, "fix or delete it") if path.exists() else {}
    same = {code}
    while isinstance(known.get(code), dict) and known[code].get("same_weights_as") not in same:
        code = known[code]["same_weights_as"]
        same.add(code)
    return same


def pyplot():
    """matplotlib's pyplot, drawing off-screen: the scripts save figures, they never show them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_writer(fig, dpi=100):
    """A figure laid out and freed -> write(f), which writes it as a PNG to a file object."""
    if fig.get_layout_engine() is None:  # (a figure made with its own layout keeps it)
        fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(fig)
    return lambda f: f.write(buffer.getvalue())


def save_figure(fig, path, dpi=100):
    """Write a figure as a PNG through atomic_write, and free it."""
    atomic_write(path, figure_writer(fig, dpi))


MANIFEST_BYTES = 64 * 1024 * 1024


def columns(rows):
    """A run's per-epoch records, [{key: value or {part: value}}] -> {key: [value per epoch]}
    (a dict of parts -> {part: [value per epoch]}): the same numbers, each key written once.
    `rows` undoes it."""
    out = {}
    for key in rows[0]:
        values = [row.get(key) for row in rows]
        if all(isinstance(v, dict) for v in values):
            out[key] = {part: [v.get(part) for v in values] for part in values[0]}
        else:
            out[key] = values
    return out


def rows(per_epoch):
    """A manifest's per-epoch records as a list of one dict an epoch, from either form (a list
    of rows, as manifests had them, or `columns`)."""
    if isinstance(per_epoch, list):
        return per_epoch
    n = len(per_epoch["epoch"])
    return [{key: ({part: v[i] for part, v in values.items()} if isinstance(values, dict)
                   else values[i]) for key, values in per_epoch.items()} for i in range(n)]


def dumps(value, depth=0):
    """JSON for people and for git: objects indented, a list of numbers on one line."""
    pad = "  " * (depth + 1)
    if isinstance(value, dict) and value:
        return "{\n" + ",\n".join(f"{pad}{json.dumps(k)}: {dumps(v, depth + 1)}"
                                   for k, v in value.items()) + "\n" + "  " * depth + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return "[\n" + ",\n".join(pad + dumps(v, depth + 1) for v in value) + "\n" + \
            "  " * depth + "]"
    return json.dumps(value)


def read_manifest(path):
    """The JSON object in manifest file `path` ({} if there is none): what a run adds its entry
    to. Scripts call it before their long work, so a bad manifest stops them at once."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return {}
    manifest = read_json(path, MANIFEST_BYTES, "fix or delete it")
    if not isinstance(manifest, dict):
        raise LabError(f"{printable(path)}: expected a JSON object; fix or delete it")
    return manifest


class Outputs:
    """Everything one run writes, staged and checked first, then put in place at one point.

        with Outputs(folder) as out:       # finishes an earlier commit a crash interrupted
            out.file(path, write)          # staged now, beside path
            out.manifest(path, value, *keys)   # read, checked and merged now, under a lock
        # here, and only if the block succeeded, every staged file replaces its target

    Until the block ends nothing the user had is touched: a mistake, an error or Ctrl-C inside
    it leaves every earlier output as it was. The commit itself writes a journal of its moves
    first and removes it last, with interrupts held; after a crash in between (SIGKILL, power)
    the next Outputs or `recover` on that folder finishes the moves. So the folder always holds
    one run's outputs, all of the old or all of the new. Staged files and journals carry their
    process id, so that a recovery never touches the work of a run still going.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.steps = []  # ["move", staged, final] or ["remove", path]: the commit, in order
        self.staged, self.locks = [], []
        self.token = f"{os.getpid()}-{time.time_ns()}"

    def __enter__(self):
        recover(self.folder)
        return self

    def stage(self, path):
        """The name to stage the new `path` under, beside it; removed unless committed."""
        self.staged.append(Path(path).with_name(f".{Path(path).name}.new-{self.token}"))
        return self.staged[-1]

    def file(self, path, write):
        """Stage write(f) as the new content of `path`."""
        tmp = self.stage(path)
        try:
            with open(tmp, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise OSError(e.errno, e.strerror, str(path)) from None
        self.steps.append(["move", str(tmp), str(path)])

    def remove(self, path):
        """Remove `path` (a file of an earlier run that the new one replaces) at the commit."""
        self.steps.append(["remove", str(path)])

    def folder_swap(self, staged, final, is_own):
        """Stage a whole folder (already written at `staged`) to replace `final`, which may
        hold only files this script writes (`is_own(name)`): anything else is refused."""
        final = Path(final)
        check_only_own(final, is_own)
        if final.exists() or final.is_symlink():
            old = final.with_name(f".{final.name}.old-{self.token}")
            self.steps.append(["move", str(final), str(old)])
            self.steps.append(["move", str(staged), str(final)])
            self.steps.append(["remove", str(old)])
        else:
            self.steps.append(["move", str(staged), str(final)])

    def manifest(self, path, value, *keys):
        """Stage manifest[keys[0]][keys[1]]... = value in the JSON file `path`, keeping every
        other entry. The file is locked from now until the commit, so that two runs writing to
        one manifest at once both keep their entries."""
        path = Path(path)
        self.locks.append(lock(path))
        manifest = read_manifest(path)
        node = manifest
        for key in keys[:-1]:
            if not isinstance(node, dict):
                break
            node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise LabError(f"{printable(path)}: expected JSON objects along "
                           f"{'.'.join(keys[:-1])}; fix or delete it")
        node[keys[-1]] = value
        self.file(path, lambda f: f.write((dumps(manifest) + "\n").encode()))

    def __exit__(self, kind, error, tb):
        try:
            if kind is None:
                with interrupts_deferred():
                    apply(self.folder / f".commit-{self.token}.json", self.steps)
        finally:
            for path in self.staged:  # whatever was staged and not put in place
                remove(path)
            for held in self.locks:
                held.unlink(missing_ok=True)


def check_only_own(folder, is_own):
    """Refuse to replace or remove `folder` if it holds anything the script did not make (a
    file `is_own(name)` does not claim, or any subfolder): the user's notes, own icons or a
    .gitkeep are never deleted with it."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return
    foreign = sorted(p.name for p in folder.iterdir() if p.is_dir() or not is_own(p.name))
    if foreign:
        named = ", ".join(printable(n) for n in foreign[:3]) + (
            f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise LabError(f"{printable(folder)}: holds files this script did not make ({named}), "
                       f"which replacing the folder would delete; move them out, or choose "
                       f"another --out")


def remove(path):
    """Delete a file, a link (not what it points to) or a folder tree, if it is there."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def apply(journal, steps):
    """Carry out a commit's steps, keeping in `journal` the ones still to do, so that a crash at
    any point can be finished by `recover`. A move whose source is gone was done already."""
    for i, step in enumerate(steps):
        todo = json.dumps(steps[i:]).encode()
        atomic_write(journal, lambda f, todo=todo: f.write(todo))
        if step[0] == "move" and (Path(step[1]).exists() or Path(step[1]).is_symlink()):
            os.replace(step[1], step[2])
        elif step[0] == "remove":
            remove(step[1])
    journal.unlink(missing_ok=True)


def recover(folder):
    """Finish the commits that a crash interrupted in `folder`, and clear what runs that died
    before their commit left staged. Runs still alive are left alone."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for journal in sorted(folder.glob(".commit-*.json")):
        if owner_gone(journal):
            apply(journal, read_json(journal, MANIFEST_BYTES, "delete it to start afresh"))
    for pattern in (".*.new-*", ".*.old-*", ".*.tmp[0-9]*"):
        for leftover in folder.glob(pattern):
            if owner_gone(leftover):
                remove(leftover)


def owner_gone(path, max_age=600.0):
    """Has the process that named `path` (.x.new-PID-..., .x.tmpPID, .commit-PID-...) ended?
    Asked of the OS where it can tell (POSIX); elsewhere, a file older than max_age s is taken
    as left behind."""
    digits = re.search(r"(?:new-|old-|tmp|commit-)(\d+)", path.name)
    try:
        age = time.time() - path.lstat().st_mtime
    except OSError:
        return False
    return age > max_age or (digits is not None and pid_gone(int(digits[1])))


def pid_gone(pid):
    """True if no process has this id; False where the OS cannot say cheaply (not POSIX).
    (On Windows os.kill would end the process, so it is never asked there.)"""
    if os.name != "posix" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def lock(path, wait=60.0):
    """Take path's lock file (path.lock), waiting up to `wait` s for another run to finish with
    it. A lock whose owner has died (or that is older than `wait`) is taken over."""
    held = path.with_name(path.name + ".lock")
    deadline = time.monotonic() + wait
    while True:
        try:
            fd = os.open(held, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            return held
        except FileExistsError:
            if _stale(held, wait):
                held.unlink(missing_ok=True)
                continue
            if time.monotonic() > deadline:
                raise LabError(f"{printable(held)}: another run has held this lock for over "
                               f"{wait:.0f} s; if none is running, delete the file") from None
            time.sleep(0.05)


def _stale(held, wait):
    """Is the lock file's owner gone? Checked by its pid where the OS can tell, else by age."""
    try:
        pid, age = int(held.read_text() or 0), time.time() - held.stat().st_mtime
    except (OSError, ValueError):
        return False  # being written or removed right now: look again
    return age > wait or pid_gone(pid)


def check_writable(folder):
    """Make `folder` if needed and prove a file can be created in it, before any long work."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise LabError(f"{printable(folder)}: cannot write there ({e.strerror or e})") from None


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


_interrupted = []


def _interrupt_once(_signum, _frame):
    """A script's Ctrl-C and SIGTERM: a KeyboardInterrupt, once. A second signal while the
    first unwinds (Ctrl-C pressed twice, or the SIGTERM a sweep sends its training after the
    terminal's Ctrl-C reached both) is ignored, so that the one line is said whole."""
    if not _interrupted:
        _interrupted.append(True)
        raise KeyboardInterrupt


# what an output that cannot show a character (an ASCII or cp1252 console) gets instead
PLAIN = {"→": "->", "←": "<-", "—": "-", "–": "-", "×": "x", "≥": ">=", "≤": "<=", "…": "...",
         "·": ".", "÷": "/", "±": "+-", "²": "^2", "³": "^3", "√": "sqrt", "≈": "~", "★": "*",
         "✓": "v", "‘": "'", "’": "'", "“": '"', "”": '"', "−": "-", "ε": "eps"}


def _plain(error):
    """Encoding error handler: a character the output cannot show, as PLAIN has it, else ?."""
    bad = error.object[error.start:error.end]
    return "".join(PLAIN.get(c, "?") for c in bad), error.end


codecs.register_error("lab-plain", _plain)


def plain_output():
    """stdout and stderr never crash on a character their encoding lacks: it is written plain
    (→ as ->, × as x, ...), as on a Windows console or under PYTHONIOENCODING=ascii."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="lab-plain")


def run_cli(main, argv=None):
    """Run a script's main(argv) as a user should see it: a LabError, an OS error or an
    interrupt (Ctrl-C, or SIGTERM, treated alike) ends it with one line on stderr; output
    falls back to plain characters where the console cannot show ours. (Before it, while the
    script imports, minimodel.start's handler does the same.)"""
    if signal.getsignal(signal.SIGTERM) is start.starting:  # a script run as a program
        for s in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(s) is start.starting:  # (not a SIGINT ignored from the start)
                signal.signal(s, _interrupt_once)
    else:  # main called inside another program (a test)
        signal.signal(signal.SIGTERM, _interrupt)
    plain_output()
    try:
        main(argv)
    except LabError as e:
        print(f"error: {printable(e)}", file=sys.stderr)
        sys.exit(2)
    except NotImplementedError as e:  # the student edition: a part still to be written
        print(f"error: {printable(e)} (not written yet; STUDENT.md says how to grade it)",
              file=sys.stderr)
        sys.exit(2)
    except MemoryError:
        print("error: out of memory; close other programs, or ask for a smaller model or "
              "dataset", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as e:
        start.interrupted("interrupted after this run's files were saved" if e.args == ("saved",)
                          else f"interrupted: {e.args[0]}" if e.args else start.INTERRUPTED)
        sys.exit(130)
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as e:  # the disk, not the user: still one line, not a traceback
        where = f"{printable(e.filename)}: " if e.filename else ""
        print(f"error: {where}{printable(e.strerror or e)}", file=sys.stderr)
        sys.exit(1)
